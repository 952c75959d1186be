//! The description of every metric nova records (its kind, unit and help text), given to the
//! installed `metrics` recorder once per process; the table in [`telemetry`](super)'s docs is
//! the same list, and a test keeps the two equal.

use metrics::Unit;

/// Every metric nova records: name, unit and help text (the table in the module docs).
const METRICS: [(Kind, &str, Unit, &str); 26] = [
    (
        Kind::Counter,
        "nova_connections_started_total",
        Unit::Count,
        "Connect attempts started.",
    ),
    (
        Kind::Histogram,
        "nova_connection_duration_seconds",
        Unit::Seconds,
        "Time to connect, from the first TCP packet to the WebSocket handshake done.",
    ),
    (
        Kind::Counter,
        "nova_connect_failures_total",
        Unit::Count,
        "Failed connect attempts, by error type.",
    ),
    (
        Kind::Gauge,
        "nova_connection_up",
        Unit::Count,
        "1 while a connection is open, else 0.",
    ),
    (
        Kind::Counter,
        "nova_disconnects_total",
        Unit::Count,
        "Connections lost, by reason.",
    ),
    (
        Kind::Counter,
        "nova_reconnections_started_total",
        Unit::Count,
        "Reconnects scheduled.",
    ),
    (
        Kind::Histogram,
        "nova_reconnection_duration_seconds",
        Unit::Seconds,
        "Time from a disconnect to being connected again.",
    ),
    (
        Kind::Counter,
        "nova_messages_received_total",
        Unit::Count,
        "Messages read, by message type.",
    ),
    (
        Kind::Histogram,
        "nova_message_received_bytes",
        Unit::Bytes,
        "Sizes of the messages read.",
    ),
    (
        Kind::Counter,
        "nova_messages_sent_total",
        Unit::Count,
        "Messages written, by operation.",
    ),
    (
        Kind::Histogram,
        "nova_message_sent_bytes",
        Unit::Bytes,
        "Sizes of the messages written.",
    ),
    (
        Kind::Counter,
        "nova_errors_total",
        Unit::Count,
        "Errors, by error type and source.",
    ),
    (
        Kind::Counter,
        "nova_subscriptions_started_total",
        Unit::Count,
        "Subscribe requests sent.",
    ),
    (
        Kind::Histogram,
        "nova_subscription_duration_seconds",
        Unit::Seconds,
        "Time from a subscribe request to its verified acknowledgement.",
    ),
    (
        Kind::Counter,
        "nova_subscriptions_restored_total",
        Unit::Count,
        "Subscriptions restored after a reconnect.",
    ),
    (
        Kind::Counter,
        "nova_subscription_restore_failures_total",
        Unit::Count,
        "Subscription restores that failed (they are retried).",
    ),
    (
        Kind::Histogram,
        "nova_heartbeat_rtt_seconds",
        Unit::Seconds,
        "Round trip of a WebSocket ping to its pong.",
    ),
    (
        Kind::Histogram,
        "nova_rate_limit_wait_seconds",
        Unit::Seconds,
        "Time sends waited for the rate limiter.",
    ),
    (
        Kind::Gauge,
        "nova_send_queue_depth",
        Unit::Count,
        "Messages waiting to be sent.",
    ),
    (
        Kind::Counter,
        "nova_messages_dropped_total",
        Unit::Count,
        "Inbound messages dropped by the drop_oldest overflow policy.",
    ),
    (
        Kind::Counter,
        "nova_auth_total",
        Unit::Count,
        "Authentications, by outcome: completed, failed, refreshed.",
    ),
    (
        Kind::Counter,
        "nova_gaps_total",
        Unit::Count,
        "Sequence gaps detected, by the action taken.",
    ),
    (
        Kind::Counter,
        "nova_gaps_recovered_total",
        Unit::Count,
        "Sequence gaps closed.",
    ),
    (
        Kind::Counter,
        "nova_handovers_total",
        Unit::Count,
        "Make-before-break handovers, by outcome: started, switched, completed, failed.",
    ),
    (
        Kind::Counter,
        "nova_subscriptions_stale_total",
        Unit::Count,
        "Subscriptions silent past their bound, subscribed again on their own.",
    ),
    (
        Kind::Histogram,
        "nova_handover_overlap_seconds",
        Unit::Seconds,
        "How long both connections of a handover were open.",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Describes every nova metric (unit and help text) to the installed `metrics` recorder.
///
/// nova calls it once per process, when the first client is created; call it yourself after
/// installing a recorder once clients exist. Describing twice is harmless.
pub fn describe_metrics() {
    for (kind, name, unit, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, unit, help),
            Kind::Gauge => metrics::describe_gauge!(name, unit, help),
            Kind::Histogram => metrics::describe_histogram!(name, unit, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString};

    use super::*;

    /// One description: (kind, name, unit, help).
    type Described = (&'static str, String, Option<Unit>, String);

    /// Keeps what was described.
    #[derive(Default)]
    struct Descriptions(Mutex<Vec<Described>>);

    impl Descriptions {
        fn push(&self, kind: &'static str, key: KeyName, unit: Option<Unit>, help: SharedString) {
            if let Ok(mut all) = self.0.lock() {
                all.push((kind, key.as_str().to_owned(), unit, help.to_string()));
            }
        }
    }

    impl Recorder for Descriptions {
        fn describe_counter(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
            self.push("counter", key, unit, help);
        }
        fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
            self.push("gauge", key, unit, help);
        }
        fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
            self.push("histogram", key, unit, help);
        }
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// The metric table of the module docs: (name, kind).
    fn documented() -> Vec<(String, String)> {
        include_str!("../telemetry.rs")
            .lines()
            .filter_map(|line| {
                let row = line.strip_prefix("//! | `nova_")?;
                let mut cells = row.split('|').map(str::trim);
                let name = format!("nova_{}", cells.next()?.trim_end_matches('`'));
                Some((name, cells.next()?.to_owned()))
            })
            .collect()
    }

    #[test]
    fn every_documented_metric_is_described_with_its_kind_a_unit_and_help() {
        let recorder = Descriptions::default();
        metrics::with_local_recorder(&recorder, describe_metrics);
        let described = recorder.0.into_inner().unwrap_or_default();
        let mut kinds: Vec<(String, String)> = described
            .iter()
            .map(|(kind, name, _, _)| (name.clone(), (*kind).to_owned()))
            .collect();
        kinds.sort();
        let mut doc = documented();
        doc.sort();
        assert_eq!(
            doc.len(),
            METRICS.len(),
            "the table and METRICS differ in size"
        );
        assert_eq!(kinds, doc);
        for (_, name, unit, help) in &described {
            assert!(!help.is_empty(), "{name} has no help text");
            let expected = if name.ends_with("_seconds") {
                Unit::Seconds
            } else if name.ends_with("_bytes") {
                Unit::Bytes
            } else {
                Unit::Count
            };
            assert_eq!(*unit, Some(expected), "{name}");
        }
    }
}
