//! One middleware for every request: a request id (taken from `X-Request-Id` when it is
//! sane, else generated), a tracing span carrying it, one structured log line per request,
//! and the HTTP metrics. Paths are logged by route pattern; no query strings, headers or
//! bodies, so neither personal data nor secrets reach the logs.

use super::Ops;
use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use std::time::Instant;
use tracing::Instrument;

pub(super) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let ops = req.app_data::<web::Data<Ops>>().cloned();
    // `otel.*` and `http.*` name the span for trace exporters (OpenTelemetry conventions).
    let span = tracing::info_span!(
        "http_request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    platform::telemetry::continue_trace(&span, header("traceparent"), header("tracestate"));
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "request finished"));
    if let Some(ops) = ops {
        ops.metrics.http_requests.with_label_values(&[route.as_str(), status_class(status)]).inc();
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
