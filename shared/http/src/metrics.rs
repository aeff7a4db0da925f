//! The registry's own numbers: requests by protocol, operation and status, latency, bytes in
//! and out, upload sessions open, purge runs and what they removed. Served in Prometheus' text
//! format by the local server (`--metrics-listen`); on Lambda each request is also one
//! CloudWatch embedded-metric-format line, from which CloudWatch makes the same metrics.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use stowage_service::PurgeReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    protocol: String,
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemovedLabels {
    what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

type Latency = Family<ProtocolLabels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    bytes_in: Family<ProtocolLabels, Counter>,
    bytes_out: Family<ProtocolLabels, Counter>,
    uploads_open: Gauge,
    purge_runs: Family<OutcomeLabels, Counter>,
    purge_removed: Family<RemovedLabels, Counter>,
}

/// 1 ms to about 33 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("stowage");
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register("requests", "Requests answered", requests.clone());
    let latency: Latency = Family::new_with_constructor(latency_histogram);
    registry.register(
        "request_duration_seconds",
        "Time to answer a request (its headers)",
        latency.clone(),
    );
    let bytes_in = Family::<ProtocolLabels, Counter>::default();
    registry.register(
        "request_bytes",
        "Request bodies received (as announced)",
        bytes_in.clone(),
    );
    let bytes_out = Family::<ProtocolLabels, Counter>::default();
    registry.register(
        "response_bytes",
        "Response bodies sent (of known length)",
        bytes_out.clone(),
    );
    let uploads_open = Gauge::default();
    registry.register(
        "upload_sessions_open",
        "Upload sessions this process opened and no request finished, cancelled or expired",
        uploads_open.clone(),
    );
    let purge_runs = Family::<OutcomeLabels, Counter>::default();
    registry.register("purge_runs", "Purge runs, by outcome", purge_runs.clone());
    let purge_removed = Family::<RemovedLabels, Counter>::default();
    registry.register(
        "purge_removed",
        "What purge runs removed",
        purge_removed.clone(),
    );
    Metrics {
        registry,
        requests,
        latency,
        bytes_in,
        bytes_out,
        uploads_open,
        purge_runs,
        purge_removed,
    }
});

/// The protocol a path belongs to; the web interface has every other path.
pub(crate) fn protocol_of(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next() {
        Some("v2") => "oci",
        Some("npm") => "npm",
        Some("maven") => "maven",
        Some("api") => "admin",
        _ => "web",
    }
}

/// One answered request.
pub(crate) struct Answered<'a> {
    pub protocol: &'static str,
    pub operation: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
}

pub(crate) fn record(answered: &Answered<'_>) {
    let metrics = &*METRICS;
    let protocol = ProtocolLabels {
        protocol: answered.protocol.to_owned(),
    };
    metrics
        .requests
        .get_or_create(&RequestLabels {
            protocol: answered.protocol.to_owned(),
            operation: answered.operation.to_owned(),
            status: answered.status,
        })
        .inc();
    metrics
        .latency
        .get_or_create(&protocol)
        .observe(answered.latency.as_secs_f64());
    if let Some(bytes) = answered.bytes_in {
        metrics.bytes_in.get_or_create(&protocol).inc_by(bytes);
    }
    if let Some(bytes) = answered.bytes_out {
        metrics.bytes_out.get_or_create(&protocol).inc_by(bytes);
    }
    // A session opens with a 202 to its POST and ends with its final PUT or its DELETE.
    match (answered.operation, answered.status) {
        ("oci.upload.post", 202) => {
            metrics.uploads_open.inc();
        }
        ("oci.upload.put", 201) | ("oci.upload.delete", 204) => {
            metrics.uploads_open.dec();
        }
        _ => {}
    }
}

/// One run of the purge: finished, stopped by its budget, or failed; and what it removed.
pub fn record_purge(report: Option<&PurgeReport>) {
    let metrics = &*METRICS;
    let outcome = match report {
        Some(report) if report.finished => "finished",
        Some(_) => "budget_ran_out",
        None => "failed",
    };
    metrics
        .purge_runs
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
    let Some(report) = report else { return };
    let removed = [
        ("targets", report.purged.len() as u64),
        ("items", report.items_deleted),
        ("objects", report.objects_deleted),
        ("uploads", report.uploads_expired),
        ("blobs", report.blobs_collected),
        ("orphans", report.orphans_deleted),
        ("audit_events", report.audit_events_expired),
    ];
    for (what, count) in removed {
        metrics
            .purge_removed
            .get_or_create(&RemovedLabels { what: what.into() })
            .inc_by(count);
    }
    let open = metrics.uploads_open.get();
    let expired = i64::try_from(report.uploads_expired).unwrap_or(i64::MAX);
    metrics.uploads_open.set((open - expired).max(0));
}

/// Everything, in Prometheus' text format.
pub fn render() -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &METRICS.registry);
    text
}

/// The request as a CloudWatch embedded-metric-format line (Lambda's log is CloudWatch's):
/// the same requests, latency and bytes, by protocol and status class.
pub(crate) fn embedded_metric_line(answered: &Answered<'_>, at_millis: i64) -> String {
    let class = format!("{}xx", answered.status / 100);
    serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": "Stowage",
                "Dimensions": [["Protocol"], ["Protocol", "StatusClass"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "BytesIn", "Unit": "Bytes"},
                    {"Name": "BytesOut", "Unit": "Bytes"},
                ],
            }],
        },
        "Protocol": answered.protocol,
        "StatusClass": class,
        "Operation": answered.operation,
        "Requests": 1,
        "Latency": answered.latency.as_secs_f64() * 1000.0,
        "BytesIn": answered.bytes_in.unwrap_or(0),
        "BytesOut": answered.bytes_out.unwrap_or(0),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Answered<'static> {
        Answered {
            protocol: "npm",
            operation: "npm.document.put",
            status,
            latency: Duration::from_millis(12),
            bytes_in: Some(2048),
            bytes_out: None,
        }
    }

    #[test]
    fn an_embedded_metric_line_declares_what_cloudwatch_makes_of_it() {
        let line: serde_json::Value =
            serde_json::from_str(&embedded_metric_line(&answered(503), 1_700_000_000_000))
                .expect("one JSON object");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Stowage");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Protocol"], ["Protocol", "StatusClass"]])
        );
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("name");
            assert!(line[name].is_number(), "{name} has a value");
        }
        assert_eq!(line["StatusClass"], "5xx");
        assert_eq!(line["Protocol"], "npm");
        assert_eq!(line["BytesIn"], 2048);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }

    #[test]
    fn requests_are_counted_by_protocol_operation_and_status() {
        record(&answered(201));
        let text = render();
        assert!(
            text.contains(
                "stowage_requests_total{protocol=\"npm\",operation=\"npm.document.put\",status=\"201\"}"
            ),
            "{text}"
        );
        assert!(
            text.contains("stowage_request_bytes_total{protocol=\"npm\"}"),
            "{text}"
        );
        assert!(
            text.contains("stowage_request_duration_seconds_bucket{"),
            "{text}"
        );
        assert_eq!(protocol_of("/v2/acme/x/tags/list"), "oci");
        assert_eq!(protocol_of("/api/user"), "admin");
        assert_eq!(protocol_of("/workspaces/acme"), "web");
    }
}
