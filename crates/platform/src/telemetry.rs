//! Structured logs, and traces over OpenTelemetry.
//!
//! Logs are JSON by default (one object per line, with the request id as a span field);
//! `pretty` for a terminal. Personal data and secrets are never passed to a log macro or a span
//! field. Logs go to stderr so that stdout carries only what a command prints for its user.
//!
//! Traces are exported over OTLP/HTTP (protobuf) when the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; the other standard variables apply too
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`). The spans are the tracing spans the code opens:
//! one per HTTP request (continuing the caller's W3C `traceparent`), one per GraphQL
//! operation, one per database statement (sea-orm's, without the statement's values) and one
//! per cache call. Logs and traces have separate filters: `PASSERELLE_LOG` for the logs (the
//! database and cache spans stay out of them), `PASSERELLE_TRACE` for the exported spans.

use crate::settings::LogFormat;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// The spans exported by default: the HTTP and GraphQL ones, and the database statements and
/// cache calls made while serving a request. The workers' statements are left out: their
/// loops poll several times a second and would fill the trace store with idle one-span traces
/// (`PASSERELLE_TRACE=info` exports them too). The exporter's own HTTP client is kept out, or
/// exporting would trace itself.
const DEFAULT_TRACE_FILTER: &str = "info,sea_orm=off,platform::cache=off,[http_request]=info,h2=off,hyper=off,\
     hyper_util=off,reqwest=off,opentelemetry=off";
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,platform::cache=warn";

/// Keeps the trace exporter alive; dropping it flushes the spans still buffered.
#[must_use = "dropping the guard stops exporting traces"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("passerelle: flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber once; later calls (tests build many apps) only return a
/// guard that exports nothing. Call it outside the async runtime: the exporter's blocking
/// HTTP client must not be built inside one.
pub fn init(format: LogFormat) -> Telemetry {
    let log_filter =
        EnvFilter::try_from_env("PASSERELLE_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Pretty => {
            fmt::layer().compact().with_writer(std::io::stderr).with_filter(log_filter).boxed()
        }
    };
    let (traces, provider) = match otlp_configured().then(trace_exporter) {
        Some(Ok(provider)) => {
            let trace_filter = EnvFilter::try_from_env("PASSERELLE_TRACE")
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_TRACE_FILTER));
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("passerelle"))
                .with_filter(trace_filter)
                .boxed();
            (Some(layer), Some(provider))
        }
        Some(Err(error)) => {
            eprintln!("passerelle: OTLP trace exporter not started: {error}");
            (None, None)
        }
        None => (None, None),
    };
    let installed = tracing_subscriber::registry().with(logs).with(traces).try_init().is_ok();
    if installed && provider.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Telemetry { traces: if installed { provider } else { None } }
}

/// Whether the standard OTLP endpoint variables ask for traces.
fn otlp_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
        && std::env::var("OTEL_SDK_DISABLED").map_or(true, |v| !v.eq_ignore_ascii_case("true"))
}

fn trace_exporter() -> Result<SdkTracerProvider, String> {
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        && !protocol.is_empty()
        && protocol != "http/protobuf"
    {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported; use http/protobuf (the \
             collector's port 4318)"
        ));
    }
    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_http().build().map_err(|e| e.to_string())?;
    // The builder's defaults read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without them
    // the service is `passerelle`.
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("passerelle");
    }
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}

/// Makes `span` continue the caller's trace when the request carried a W3C `traceparent`
/// (and `tracestate`). Without trace export, or with a malformed header, nothing happens.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else { return };
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    // Refused only when the span is already closed or not exported: nothing to continue then.
    let _ = span.set_parent(parent);
}
