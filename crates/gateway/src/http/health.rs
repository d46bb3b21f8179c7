use super::Ops;
use actix_web::{HttpResponse, web};

pub(super) async fn livez() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when both the database and the cache answer.
pub(super) async fn readyz(state: web::Data<Ops>) -> HttpResponse {
    let database = state.db.ping().await;
    let cache = state.cache.ping().await;
    if let Err(e) = &database {
        tracing::warn!(error = %e, "readiness: database unavailable");
    }
    if let Err(e) = &cache {
        tracing::warn!(error = %e, "readiness: cache unavailable");
    }
    let body = serde_json::json!({
        "database": if database.is_ok() { "ok" } else { "unavailable" },
        "cache": if cache.is_ok() { "ok" } else { "unavailable" },
    });
    if database.is_ok() && cache.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub(super) async fn metrics(state: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

pub(super) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({ "error": { "code": "NOT_FOUND", "message": "no such route" } }))
}
