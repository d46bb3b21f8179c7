use kernel::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ProfilesError {
    #[error("{0}")]
    InvalidInput(String),
    /// A payload over its size limit (HTTP 413 on the tracking API).
    #[error("{0}")]
    TooLarge(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Tenancy(#[from] tenancy::TenancyError),
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ProfilesError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) | Self::TooLarge(_) => ErrorCode::BadUserInput,
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Tenancy(inner) => inner.code(),
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<sea_orm::DbErr> for ProfilesError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for ProfilesError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}
