//! Authentication of the plain-HTTP staff endpoints (import uploads, audience exports) as
//! GraphQL does it: `Authorization: Bearer <JWT or secret API key>`, rate-limited per IP and
//! then per principal, with errors in the GraphQL error shape.

use super::{AppState, graphql};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode};
use kernel::ErrorCode;
use tenancy::Actor;

/// An error answer with the status that matches its code.
pub(super) fn refuse(code: ErrorCode, message: &str) -> HttpResponse {
    let status = match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    graphql::error_response(status, code, message)
}

/// The caller, or the answer that refuses them.
pub(super) async fn actor(state: &AppState, req: &HttpRequest) -> Result<Actor, HttpResponse> {
    let credential = graphql::bearer(req).map(|raw| state.tenancy.identify(raw));
    let principal = credential.as_ref().and_then(|c| c.as_ref().ok()).map(|c| c.rate_limit_key());
    if let Some(refused) = graphql::limit_client(state, req, principal.as_deref()).await {
        return Err(refused);
    }
    let Some(credential) = credential else {
        return Err(refuse(
            ErrorCode::Unauthenticated,
            "an `Authorization: Bearer` token or secret key is required",
        ));
    };
    let Ok(credential) = credential else {
        return Err(refuse(ErrorCode::Unauthenticated, "the credential is invalid or expired"));
    };
    match state.tenancy.authenticate(credential).await {
        Ok(actor) => Ok(actor),
        Err(error) if error.code() == ErrorCode::Internal => {
            tracing::error!(error = %error, "authentication failed internally");
            Err(refuse(ErrorCode::Internal, "temporarily unavailable; retry"))
        }
        Err(_) => Err(refuse(ErrorCode::Unauthenticated, "the credential is invalid or expired")),
    }
}
