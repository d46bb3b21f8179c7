use kernel::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum MeasurementError {
    /// Input a caller must fix (a malformed path file, a parameter out of range).
    #[error("{0}")]
    InvalidInput(String),
}

pub type Result<T, E = MeasurementError> = std::result::Result<T, E>;

impl MeasurementError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::BadUserInput,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}
