//! Prometheus metrics: request counts and latency histograms per route,
//! method and status.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    rejected: Family<ClassLabels, Counter>,
    subscribers: Gauge,
    sessions: Family<SourceLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    pub class: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ironcase");
        let requests = Family::<RequestLabels, Counter>::default();
        // 0.1 ms … ~3.3 s
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 16)));
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        let rejected = Family::<ClassLabels, Counter>::default();
        registry.register("rate_limited", "Requests refused by a rate limit, by route class", rejected.clone());
        let subscribers = Gauge::default();
        registry.register("live_subscribers", "Event streams (SSE and WebSocket) held open on this node", subscribers.clone());
        let sessions = Family::<SourceLabels, Counter>::default();
        registry.register(
            "session_lookups",
            "Sessions behind access tokens, found in this node's memory or read from the database",
            sessions.clone(),
        );
        Metrics { registry, requests, latency, rejected, subscribers, sessions }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status: status.to_string() };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    pub fn rate_limited(&self, class: &'static str) {
        self.rejected.get_or_create(&ClassLabels { class }).inc();
    }

    /// The text exposition format, with the live subscriber count and the
    /// session lookups (from memory, from the database) read now.
    pub fn render(&self, subscribers: i64, sessions: (u64, u64)) -> String {
        self.subscribers.set(subscribers);
        for (source, n) in [("memory", sessions.0), ("database", sessions.1)] {
            let c = self.sessions.get_or_create(&SourceLabels { source });
            c.inc_by(n.saturating_sub(c.get()));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
