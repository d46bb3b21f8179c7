use kernel::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum SegmentsError {
    #[error("{0}")]
    InvalidInput(String),
    /// The text form could not be read: where, and what was expected there.
    #[error("line {line}, column {column}: {message}")]
    Syntax { line: usize, column: usize, message: String },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Tenancy(#[from] tenancy::TenancyError),
    #[error(transparent)]
    Profiles(#[from] profiles::ProfilesError),
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = SegmentsError> = std::result::Result<T, E>;

impl SegmentsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) | Self::Syntax { .. } => ErrorCode::BadUserInput,
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Tenancy(inner) => inner.code(),
            Self::Profiles(inner) => inner.code(),
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<sea_orm::DbErr> for SegmentsError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for SegmentsError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}
