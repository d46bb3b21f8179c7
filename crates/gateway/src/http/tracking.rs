//! The Segment-compatible tracking API (DESIGN §6): `POST /v1/{identify,track,page,screen,
//! group,alias,batch}` (and the one-letter paths analytics.js uses), `GET /v1/pixel/{type}`.
//! `200` means the events are committed; `400` only for what a retry cannot fix; `5xx` and
//! `429` tell SDKs to retry.

use super::AppState;
use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use base64::{Engine, engine::general_purpose};
use kernel::ErrorCode;
use platform::{RateDecision, RateQuota};
use profiles::{
    ProfilesError,
    message::{self, EventType, MAX_BATCH_BYTES, TrackingRequest},
};
use serde_json::json;

/// The smallest transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/pixel/{kind}", web::get().to(pixel))
        .route("/v1/m", web::post().to(sdk_metrics))
        .route("/v1/{kind}", web::post().to(post))
        .route("/v1/{kind}", web::method(actix_web::http::Method::OPTIONS).to(preflight));
}

fn event_type(path: &str) -> Option<Option<EventType>> {
    Some(match path {
        "batch" | "b" | "import" => None,
        "identify" | "i" => Some(EventType::Identify),
        "track" | "t" => Some(EventType::Track),
        "page" | "p" => Some(EventType::Page),
        "screen" | "s" => Some(EventType::Screen),
        "group" | "g" => Some(EventType::Group),
        "alias" | "a" => Some(EventType::Alias),
        _ => return None,
    })
}

fn cors(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("Authorization, Content-Type"),
    );
    headers
        .insert(header::ACCESS_CONTROL_ALLOW_METHODS, header::HeaderValue::from_static("POST, GET, OPTIONS"));
    response
}

fn failure(status: StatusCode, code: ErrorCode, message: &str) -> HttpResponse {
    cors(
        HttpResponse::build(status)
            .json(json!({ "success": false, "code": code.as_str(), "message": message })),
    )
}

async fn preflight() -> HttpResponse {
    cors(HttpResponse::NoContent().finish())
}

/// analytics.js reports its own delivery metrics here; accepted and ignored.
async fn sdk_metrics() -> HttpResponse {
    cors(HttpResponse::Ok().json(json!({ "success": true })))
}

/// The write key from HTTP Basic (key as user, empty password), as server SDKs send it.
fn basic_write_key(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let key = text.split(':').next()?.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

async fn post(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(implied) = event_type(&path) else {
        return failure(StatusCode::NOT_FOUND, ErrorCode::NotFound, "unknown tracking endpoint");
    };
    let body = match super::graphql::read_body(payload, MAX_BATCH_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadUserInput,
                &format!("the body exceeds {MAX_BATCH_BYTES} bytes"),
            );
        }
    };
    let received_at = chrono::Utc::now();
    let parsed = message::parse_request(&body, implied, received_at);
    accept(&req, &state, parsed).await
}

/// `GET /v1/pixel/{type}?data=<base64 JSON>`: for email opens and places where only an
/// image can be loaded. Always a GIF, whatever happened, so a broken image never shows.
async fn pixel(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<std::collections::HashMap<String, String>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let gif = || {
        HttpResponse::Ok()
            .content_type("image/gif")
            .insert_header((header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"))
            .body(PIXEL)
    };
    let Some(Some(kind)) = event_type(&path) else { return gif() };
    let Some(data) = query.get("data") else { return gif() };
    let decoded = general_purpose::STANDARD
        .decode(data.trim())
        .or_else(|_| general_purpose::URL_SAFE_NO_PAD.decode(data.trim().trim_end_matches('=')))
        .or_else(|_| general_purpose::STANDARD_NO_PAD.decode(data.trim().trim_end_matches('=')));
    let Ok(decoded) = decoded else { return gif() };
    let parsed = message::parse_request(&decoded, Some(kind), chrono::Utc::now());
    let response = accept(&req, &state, parsed).await;
    if !response.status().is_success() {
        tracing::debug!(status = response.status().as_u16(), "pixel event refused");
    }
    gif()
}

async fn accept(
    req: &HttpRequest,
    state: &AppState,
    parsed: Result<TrackingRequest, ProfilesError>,
) -> HttpResponse {
    // A write key in the header is checked first, so that even a malformed body is answered
    // 401 rather than 400 when the key is wrong.
    let header_key = basic_write_key(req);
    let request = match parsed {
        Ok(request) => request,
        Err(error) => {
            let status = if matches!(error, ProfilesError::TooLarge(_)) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return failure(status, ErrorCode::BadUserInput, &error.to_string());
        }
    };
    let Some(key) = header_key.or(request.write_key.clone()) else {
        return failure(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "a write key is required (HTTP Basic user, or `writeKey` in the body)",
        );
    };
    if let Ok(credential) = state.tenancy.identify(&key) {
        let limits = &state.settings.rate_limits;
        let quota =
            RateQuota { per_second: limits.ingest_per_key_per_second, burst: limits.ingest_per_key_burst };
        let limit_key = format!("ingest:{}", credential.rate_limit_key());
        match state.limiter.check_all(&[(limit_key.as_str(), quota)]).await {
            Ok(RateDecision::Limited { retry_after, .. }) => {
                state.ops.metrics.rate_limited.with_label_values(&["ingest"]).inc();
                let seconds = kernel::retry_after_seconds(retry_after);
                let mut response = failure(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    &format!("rate limit exceeded; retry in {seconds} s"),
                );
                if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
            Ok(RateDecision::Allowed) => {}
            Err(error) => tracing::error!(error = %error, "rate limiter unavailable; ingestion allowed"),
        }
    }
    let (scope, key) = match state.tenancy.ingestion_scope(&key).await {
        Ok(found) => found,
        Err(error) => {
            return match error.code() {
                ErrorCode::Forbidden => failure(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Forbidden,
                    "this key may not send events (use a write key or a secret key with the write scope)",
                ),
                ErrorCode::Internal => {
                    tracing::error!(error = %error, "write key check failed");
                    failure(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::Internal,
                        "temporarily unavailable; retry",
                    )
                }
                _ => {
                    failure(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, "the write key is invalid")
                }
            };
        }
    };
    match state.profiles.ingest(&scope, &format!("key:{}", key.key_id), &request.accepted).await {
        Ok(outcome) => {
            state.ops.metrics.events_accepted.inc_by(outcome.accepted as u64);
            let rejected: Vec<_> =
                request.rejected.iter().map(|r| json!({ "index": r.index, "message": r.message })).collect();
            cors(HttpResponse::Ok().json(json!({
                "success": true,
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "rejected": rejected,
            })))
        }
        Err(error) => {
            tracing::error!(error = %error, "storing events failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Internal, "temporarily unavailable; retry")
        }
    }
}
