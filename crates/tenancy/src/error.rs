use kernel::ErrorCode;
use std::time::Duration;

/// Everything a tenancy operation can refuse. Messages are safe to show a client; internal
/// causes travel in `Internal` and are logged by the gateway, never returned.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("authentication required or credentials invalid")]
    Unauthenticated,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; retry in {} s", kernel::retry_after_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl TenancyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => ErrorCode::Unauthenticated,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotFound => ErrorCode::NotFound,
            Self::InvalidInput(_) => ErrorCode::BadUserInput,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<sea_orm::DbErr> for TenancyError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<platform::PlatformError> for TenancyError {
    fn from(e: platform::PlatformError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for TenancyError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}
