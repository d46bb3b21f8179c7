//! The Prometheus registry the whole process reports into (`GET /metrics`).

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub graphql_requests: IntCounterVec,
    pub graphql_duration: HistogramVec,
    pub rate_limited: IntCounterVec,
    /// Events committed by the tracking API and GraphQL ingestion.
    pub events_accepted: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("passerelle".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status class"),
            &["route", "status"],
        )?;
        let graphql_requests = IntCounterVec::new(
            Opts::new("graphql_requests_total", "GraphQL requests by operation and outcome"),
            &["operation", "outcome"],
        )?;
        let graphql_duration = HistogramVec::new(
            HistogramOpts::new("graphql_request_duration_seconds", "GraphQL request latency by operation")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            &["operation"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by the rate limiter"),
            &["limit"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(graphql_requests.clone()))?;
        registry.register(Box::new(graphql_duration.clone()))?;
        let events_accepted = IntCounter::new("events_accepted_total", "Events committed to the inbox")?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(events_accepted.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            graphql_requests,
            graphql_duration,
            rate_limited,
            events_accepted,
        })
    }

    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}
