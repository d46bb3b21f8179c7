//! Cross-origin access to the staff endpoints (`/graphql`, imports, exports) for a web console
//! served from another origin: only the configured origins, exactly. Staff authenticate with a
//! bearer token, never a cookie, so no credentials mode. Requests without an `Origin` (servers,
//! the CLI) are untouched; with none configured, nothing changes at all. The tracking API keeps
//! its own answer to every origin, which analytics SDKs on clients' websites need.

use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::middleware::Condition;

pub(super) type StaffCors = Condition<Cors>;

/// The middleware for one staff resource (built per worker thread, as actix builds apps).
pub(super) fn staff(origins: &[String]) -> StaffCors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PUT])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-workspace-id"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([header::HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    Condition::new(!origins.is_empty(), cors)
}
