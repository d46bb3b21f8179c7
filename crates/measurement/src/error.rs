use kernel::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum MeasurementError {
    /// Input a caller must fix (a malformed path file, a parameter out of range).
    #[error("{0}")]
    InvalidInput(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Tenancy(#[from] tenancy::TenancyError),
    #[error(transparent)]
    Campaigns(#[from] campaigns::CampaignsError),
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = MeasurementError> = std::result::Result<T, E>;

impl MeasurementError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::BadUserInput,
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Tenancy(inner) => inner.code(),
            Self::Campaigns(inner) => inner.code(),
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<sea_orm::DbErr> for MeasurementError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(e))
    }
}
