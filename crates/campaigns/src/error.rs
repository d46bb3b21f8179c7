use kernel::ErrorCode;

/// One thing wrong with a journey or a piece of content, as the builder shows it: a stable
/// code, where (a step, a variant, a field, a line) and a sentence a marketer understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub location: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CampaignsError {
    #[error("{0}")]
    InvalidInput(String),
    /// A journey or content that cannot be published, with everything wrong with it.
    #[error("{}", summary(.0))]
    Invalid(Vec<Problem>),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Tenancy(#[from] tenancy::TenancyError),
    #[error(transparent)]
    Profiles(#[from] profiles::ProfilesError),
    #[error(transparent)]
    Segments(#[from] segments::SegmentsError),
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "invalid".to_owned(),
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more problems)", first.message, rest.len()),
    }
}

pub type Result<T, E = CampaignsError> = std::result::Result<T, E>;

impl CampaignsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) | Self::Invalid(_) => ErrorCode::BadUserInput,
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Tenancy(inner) => inner.code(),
            Self::Profiles(inner) => inner.code(),
            Self::Segments(inner) => inner.code(),
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<sea_orm::DbErr> for CampaignsError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for CampaignsError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}
