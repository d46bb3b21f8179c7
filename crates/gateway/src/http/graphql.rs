//! `POST /graphql`: body limit, batching refused, rate limits, authentication, execution.

use super::AppState;
use crate::RequestContext;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use futures::StreamExt;
use kernel::ErrorCode;
use platform::{RateDecision, RateQuota};
use std::{
    collections::HashSet,
    net::IpAddr,
    sync::{Mutex, OnceLock},
    time::Instant,
};
use tracing::Instrument;

/// Distinct operation names kept as metric labels; past this, names report as `other`, so a
/// client inventing names cannot blow up the metrics' cardinality.
const MAX_OPERATION_LABELS: usize = 256;

pub(super) async fn graphiql(state: web::Data<AppState>) -> HttpResponse {
    if !state.settings.graphiql {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(async_graphql::http::GraphiQLSource::build().endpoint("/graphql").title("Passerelle").finish())
}

pub(super) async fn execute(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    // The credential is checked locally first (no I/O), so that one limiter round trip covers
    // both the client IP and the principal before any database or cache work.
    let credential = bearer(&req).map(|raw| state.tenancy.identify(raw)).transpose();
    let principal_key =
        credential.as_ref().ok().and_then(Option::as_ref).map(tenancy::Credential::rate_limit_key);
    if let Some(refused) = limit_client(&state, &req, principal_key.as_deref()).await {
        return refused;
    }

    let body = match read_body(payload, state.settings.body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return error_response(
            actix_web::http::StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "batched requests are not supported; send one operation per request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => {
            return error_response(
                actix_web::http::StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the body must be a JSON object with a `query`",
            );
        }
    };

    let workspace_header = match req.headers().get("x-workspace-id").map(|v| v.to_str().unwrap_or("")) {
        None => None,
        Some(raw) => match raw.parse() {
            Ok(id) => Some(id),
            Err(_) => return graphql_error(ErrorCode::BadUserInput, "X-Workspace-Id is not a valid id"),
        },
    };
    let (actor, credential_rejected) = match credential {
        Ok(None) => (None, false),
        Ok(Some(credential)) => match state.tenancy.authenticate(credential).await {
            Ok(actor) => (Some(actor), false),
            Err(e) if e.code() == ErrorCode::Internal => {
                tracing::error!(error = ?e, "authentication failed internally");
                return graphql_error(ErrorCode::Internal, "internal error");
            }
            Err(_) => (None, true),
        },
        Err(_) => (None, true),
    };

    let operation = operation_label(request.operation_name.as_deref());
    let request = request.data(RequestContext { actor, credential_rejected, workspace_header });
    let span = tracing::info_span!(
        "graphql",
        otel.name = %format_args!("graphql {operation}"),
        otel.status_code = tracing::field::Empty,
        graphql.operation.name = %operation,
    );
    let mut response = state.schema.execute(request).instrument(span.clone()).await;
    crate::limits::ensure_codes(&mut response.errors);
    let outcome = if response.errors.is_empty() { "ok" } else { "error" };
    if !response.errors.is_empty() {
        span.record("otel.status_code", "ERROR");
    }
    state.ops.metrics.graphql_requests.with_label_values(&[operation.as_str(), outcome]).inc();
    state
        .ops
        .metrics
        .graphql_duration
        .with_label_values(&[operation.as_str()])
        .observe(started.elapsed().as_secs_f64());
    HttpResponse::Ok().json(response)
}

/// Applies the per-IP quota and, for a request with a credential, the per-principal one, in
/// one limiter round trip: what every staff and integration endpoint does first.
pub(super) async fn limit_client(
    state: &AppState,
    req: &HttpRequest,
    principal_key: Option<&str>,
) -> Option<HttpResponse> {
    let limits = &state.settings.rate_limits;
    let ip_key = format!("ip:{}", client_ip(req, limits.trust_forwarded_for));
    let mut quotas = vec![(
        ip_key.as_str(),
        RateQuota { per_second: limits.per_ip_per_second, burst: limits.per_ip_burst },
    )];
    if let Some(key) = principal_key {
        let quota =
            RateQuota { per_second: limits.per_principal_per_second, burst: limits.per_principal_burst };
        quotas.push((key, quota));
    }
    rate_limit(state, &quotas).await
}

pub(super) async fn rate_limit(state: &AppState, quotas: &[(&str, RateQuota)]) -> Option<HttpResponse> {
    match state.limiter.check_all(quotas).await {
        Ok(RateDecision::Allowed) => None,
        Ok(RateDecision::Limited { retry_after, limit }) => {
            let which = if limit == 0 { "ip" } else { "principal" };
            state.ops.metrics.rate_limited.with_label_values(&[which]).inc();
            let seconds = kernel::retry_after_seconds(retry_after);
            let body = serde_json::json!({ "errors": [{
                "message": format!("rate limit exceeded; retry in {seconds} s"),
                "extensions": { "code": ErrorCode::RateLimited.as_str(), "retryAfter": seconds },
            }]});
            Some(
                HttpResponse::TooManyRequests()
                    .insert_header((header::RETRY_AFTER, seconds.to_string()))
                    .json(body),
            )
        }
        Err(e) => {
            // A cache outage must not take the API down with it: fail open, loudly.
            tracing::error!(error = %e, "rate limiter unavailable; request allowed");
            None
        }
    }
}

pub(super) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, HttpResponse> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            error_response(
                actix_web::http::StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the body could not be read",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(error_response(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadUserInput,
                &format!("the body exceeds {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(super) fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credential.trim())
}

/// The peer address, or behind a trusted proxy the address that proxy saw: the right-most
/// `X-Forwarded-For` hop, the only one a client cannot write itself.
pub(super) fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(proxy_seen) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return proxy_seen.to_string();
    }
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) =
        name.filter(|n| n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    else {
        return "anonymous".into();
    };
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if seen.contains(name) || seen.len() < MAX_OPERATION_LABELS {
        seen.insert(name.to_owned());
        name.to_owned()
    } else {
        "other".into()
    }
}

fn error_body(code: ErrorCode, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] })
}

pub(super) fn error_response(
    status: actix_web::http::StatusCode,
    code: ErrorCode,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(error_body(code, message))
}

/// A request-level GraphQL error (no operation ran), answered with 200 as GraphQL clients
/// expect.
fn graphql_error(code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(error_body(code, message))
}
