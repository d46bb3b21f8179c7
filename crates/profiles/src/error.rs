use kernel::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ProfilesError {
    #[error("{0}")]
    InvalidInput(String),
}

impl ProfilesError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::BadUserInput,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}
