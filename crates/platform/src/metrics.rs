//! The Prometheus registry the whole process reports into (`GET /metrics`), on the gateway and
//! on `passerelle worker` alike.
//!
//! Two kinds of metric live here. Counters and gauges that the code moves as things happen
//! (requests, events accepted, a worker's rounds), and *sampled* metrics, read from state the
//! process keeps anyway (cache hit counters, the database pool) when Prometheus scrapes, so that
//! nothing has to push them and the domain crates need not know about Prometheus.

pub use prometheus::Error as PrometheusError;
use prometheus::core::{Collector, Desc, Describer as _};
use prometheus::proto::MetricFamily;
use prometheus::{
    CounterVec, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub graphql_requests: IntCounterVec,
    pub graphql_duration: HistogramVec,
    pub rate_limited: IntCounterVec,
    /// Events committed by the tracking API and GraphQL ingestion.
    pub events_accepted: IntCounter,
    /// Events the ingestion worker finished, by outcome (`processed`, `suppressed`).
    pub events_processed: IntCounterVec,
    /// How long the oldest event of the worker's last round waited between its acceptance and
    /// its processing; 0 after a round that found nothing to do.
    pub ingestion_lag: Gauge,
    /// People the executor enrolled into journeys.
    pub journey_enrollments: IntCounter,
    /// Enrollments that were due when the executor's last round ran (its backlog).
    pub journey_due: IntGauge,
    /// How late the most overdue enrollment of the executor's last round was.
    pub journey_lag: Gauge,
    /// Journey steps the executor carried out.
    pub journey_steps: IntCounter,
    /// Journey sends by outcome: `queued` by the executor, then `sent`, `retried` or `dead`
    /// by delivery.
    pub journey_sends: IntCounterVec,
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
        let events_accepted = IntCounter::new("events_accepted_total", "Events committed to the inbox")?;
        let events_processed = IntCounterVec::new(
            Opts::new("events_processed_total", "Events the ingestion worker finished, by outcome"),
            &["outcome"],
        )?;
        let ingestion_lag = Gauge::new(
            "ingestion_lag_seconds",
            "Wait between acceptance and processing of the oldest event of the last ingestion round",
        )?;
        let journey_enrollments =
            IntCounter::new("journey_enrollments_total", "People enrolled into journeys")?;
        let journey_due = IntGauge::new(
            "journey_enrollments_due",
            "Enrollments that were due when the executor's last round ran",
        )?;
        let journey_lag = Gauge::new(
            "journey_lag_seconds",
            "How late the most overdue enrollment of the executor's last round was",
        )?;
        let journey_steps = IntCounter::new("journey_steps_total", "Journey steps carried out")?;
        let journey_sends = IntCounterVec::new(
            Opts::new("journey_sends_total", "Journey sends by outcome (queued, sent, retried, dead)"),
            &["outcome"],
        )?;
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn Collector>,
            Box::new(graphql_requests.clone()),
            Box::new(graphql_duration.clone()),
            Box::new(rate_limited.clone()),
            Box::new(events_accepted.clone()),
            Box::new(events_processed.clone()),
            Box::new(ingestion_lag.clone()),
            Box::new(journey_enrollments.clone()),
            Box::new(journey_due.clone()),
            Box::new(journey_lag.clone()),
            Box::new(journey_steps.clone()),
            Box::new(journey_sends.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(Self {
            registry,
            http_requests,
            graphql_requests,
            graphql_duration,
            rate_limited,
            events_accepted,
            events_processed,
            ingestion_lag,
            journey_enrollments,
            journey_due,
            journey_lag,
            journey_steps,
            journey_sends,
        })
    }

    /// Registers a counter read at scrape time: `read` returns each label set's total so far.
    pub fn sample_counter(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        read: impl Fn() -> Vec<(Vec<String>, f64)> + Send + Sync + 'static,
    ) -> Result<(), prometheus::Error> {
        self.sample(Sampled::new(Kind::Counter, name, help, labels, Box::new(read))?)
    }

    /// Registers a gauge read at scrape time: `read` returns each label set's current value.
    pub fn sample_gauge(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        read: impl Fn() -> Vec<(Vec<String>, f64)> + Send + Sync + 'static,
    ) -> Result<(), prometheus::Error> {
        self.sample(Sampled::new(Kind::Gauge, name, help, labels, Box::new(read))?)
    }

    fn sample(&self, sampled: Sampled) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(sampled))
    }

    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

enum Kind {
    Counter,
    Gauge,
}

type Read = Box<dyn Fn() -> Vec<(Vec<String>, f64)> + Send + Sync>;

/// A metric family built afresh from `read` on every scrape.
struct Sampled {
    kind: Kind,
    /// Name, help and label names; each scrape builds its family from these.
    opts: Opts,
    desc: Desc,
    read: Read,
}

impl Sampled {
    fn new(
        kind: Kind,
        name: &str,
        help: &str,
        labels: &[&str],
        read: Read,
    ) -> Result<Self, prometheus::Error> {
        let opts = Opts::new(name, help).variable_labels(labels.iter().map(|l| (*l).to_owned()).collect());
        let desc = opts.describe()?;
        Ok(Self { kind, opts, desc, read })
    }
}

impl Collector for Sampled {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let labels = label_refs(&self.opts.variable_labels);
        let opts = Opts { variable_labels: Vec::new(), ..self.opts.clone() };
        let samples = (self.read)();
        match self.kind {
            Kind::Counter => {
                let Ok(family) = CounterVec::new(opts, &labels) else { return Vec::new() };
                for (label_values, value) in &samples {
                    if let Ok(counter) = family.get_metric_with_label_values(&label_refs(label_values)) {
                        counter.inc_by(value.max(0.0));
                    }
                }
                family.collect()
            }
            Kind::Gauge => {
                let Ok(family) = GaugeVec::new(opts, &labels) else { return Vec::new() };
                for (label_values, value) in &samples {
                    if let Ok(gauge) = family.get_metric_with_label_values(&label_refs(label_values)) {
                        gauge.set(*value);
                    }
                }
                family.collect()
            }
        }
    }
}

fn label_refs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn sampled_metrics_are_read_at_each_scrape() {
        let metrics = Metrics::new().expect("registry");
        let hits = Arc::new(AtomicU64::new(3));
        let read = hits.clone();
        metrics
            .sample_counter("cache_hits_total", "Hits", &["cache"], move || {
                vec![(vec!["segments".into()], read.load(Ordering::Relaxed) as f64)]
            })
            .expect("registered");
        metrics
            .sample_gauge("db_pool_connections", "Connections", &["state"], || {
                vec![(vec!["idle".into()], 2.0), (vec!["in_use".into()], 1.0)]
            })
            .expect("registered");
        let first = metrics.render();
        assert!(first.contains("# TYPE passerelle_cache_hits_total counter"), "{first}");
        assert!(first.contains("passerelle_cache_hits_total{cache=\"segments\"} 3"), "{first}");
        assert!(first.contains("passerelle_db_pool_connections{state=\"in_use\"} 1"), "{first}");
        hits.store(7, Ordering::Relaxed);
        let second = metrics.render();
        assert!(second.contains("passerelle_cache_hits_total{cache=\"segments\"} 7"), "{second}");
        // A second metric of the same name is refused, not silently shadowed.
        assert!(metrics.sample_gauge("db_pool_connections", "again", &["state"], Vec::new).is_err());
    }
}
