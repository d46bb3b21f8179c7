//! The one mapper from domain errors to GraphQL errors with `extensions.code` (DESIGN §6).
//! Internal causes are logged here and never sent.

use async_graphql::ErrorExtensions;
use kernel::ErrorCode;

pub(crate) fn coded(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

pub(crate) trait IntoGraphqlError {
    fn into_graphql(self) -> async_graphql::Error;
}

impl IntoGraphqlError for tenancy::TenancyError {
    fn into_graphql(self) -> async_graphql::Error {
        let code = self.code();
        match &self {
            tenancy::TenancyError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                coded(code, "internal error")
            }
            tenancy::TenancyError::RateLimited { retry_after } => {
                let seconds = kernel::retry_after_seconds(*retry_after);
                async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                    e.set("code", code.as_str());
                    e.set("retryAfter", seconds);
                })
            }
            _ => coded(code, self.to_string()),
        }
    }
}

impl IntoGraphqlError for profiles::ProfilesError {
    fn into_graphql(self) -> async_graphql::Error {
        match self {
            profiles::ProfilesError::Tenancy(inner) => inner.into_graphql(),
            profiles::ProfilesError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                coded(kernel::ErrorCode::Internal, "internal error")
            }
            other => coded(other.code(), other.to_string()),
        }
    }
}

impl IntoGraphqlError for segments::SegmentsError {
    fn into_graphql(self) -> async_graphql::Error {
        match self {
            segments::SegmentsError::Tenancy(inner) => inner.into_graphql(),
            segments::SegmentsError::Profiles(inner) => inner.into_graphql(),
            segments::SegmentsError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                coded(kernel::ErrorCode::Internal, "internal error")
            }
            segments::SegmentsError::Syntax { line, column, ref message } => {
                let text = self.to_string();
                let message = message.clone();
                async_graphql::Error::new(text).extend_with(|_, e| {
                    e.set("code", kernel::ErrorCode::BadUserInput.as_str());
                    e.set("line", line as u64);
                    e.set("column", column as u64);
                    e.set("reason", message.as_str());
                })
            }
            other => coded(other.code(), other.to_string()),
        }
    }
}

impl IntoGraphqlError for campaigns::CampaignsError {
    fn into_graphql(self) -> async_graphql::Error {
        match self {
            campaigns::CampaignsError::Tenancy(inner) => inner.into_graphql(),
            campaigns::CampaignsError::Profiles(inner) => inner.into_graphql(),
            campaigns::CampaignsError::Segments(inner) => inner.into_graphql(),
            campaigns::CampaignsError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                coded(ErrorCode::Internal, "internal error")
            }
            // Every problem, so the builder can show them all at once.
            campaigns::CampaignsError::Invalid(ref problems) => {
                let problems: Vec<async_graphql::Value> = problems
                    .iter()
                    .map(|p| {
                        let mut fields = async_graphql::indexmap::IndexMap::new();
                        fields.insert(
                            async_graphql::Name::new("code"),
                            async_graphql::Value::from(p.code.as_str()),
                        );
                        fields.insert(
                            async_graphql::Name::new("location"),
                            p.location
                                .as_deref()
                                .map_or(async_graphql::Value::Null, async_graphql::Value::from),
                        );
                        fields.insert(
                            async_graphql::Name::new("message"),
                            async_graphql::Value::from(p.message.as_str()),
                        );
                        async_graphql::Value::Object(fields)
                    })
                    .collect();
                async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                    e.set("code", ErrorCode::BadUserInput.as_str());
                    e.set("problems", async_graphql::Value::List(problems.clone()));
                })
            }
            other => coded(other.code(), other.to_string()),
        }
    }
}

impl IntoGraphqlError for measurement::MeasurementError {
    fn into_graphql(self) -> async_graphql::Error {
        match self {
            measurement::MeasurementError::Tenancy(inner) => inner.into_graphql(),
            measurement::MeasurementError::Campaigns(inner) => inner.into_graphql(),
            measurement::MeasurementError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                coded(ErrorCode::Internal, "internal error")
            }
            other => coded(other.code(), other.to_string()),
        }
    }
}

impl IntoGraphqlError for kernel::CursorError {
    fn into_graphql(self) -> async_graphql::Error {
        coded(ErrorCode::BadUserInput, self.to_string())
    }
}

impl IntoGraphqlError for kernel::IdParseError {
    fn into_graphql(self) -> async_graphql::Error {
        coded(ErrorCode::BadUserInput, self.to_string())
    }
}

/// `result.gql()?` in resolvers.
pub(crate) trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: IntoGraphqlError> GqlResult<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(IntoGraphqlError::into_graphql)
    }
}
