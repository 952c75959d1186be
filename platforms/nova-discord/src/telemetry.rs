//! What the adapter reports beyond nova-core's own telemetry, through the `metrics` facade (and
//! `tracing` beside each): install a recorder (`metrics-exporter-prometheus`, ...) before the
//! clients connect, since the handles are resolved once per client, in `ConnectionHandler::init`.
//!
//! Labels have bounded cardinality: `client_id` is the client's configured name (the same label
//! as nova-core's `nova_*` metrics; [`Shards`](crate::Shards) names them `discord-shard-N`),
//! `cause` and `kind` come from fixed sets.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `nova_discord_session_start_remaining` | gauge | `client_id` | `session_start_limit.remaining` after this shard's last Identify attempt (from the shared [`IdentifyLimiter`](crate::IdentifyLimiter); shards share one budget, so take the minimum over a bot's shards) |
//! | `nova_discord_session_start_total` | gauge | `client_id` | `session_start_limit.total` |
//! | `nova_discord_heartbeat_latency_seconds` | histogram | `client_id` | heartbeat (op 1) to its ACK (op 11) |
//! | `nova_discord_sessions_total` | counter | `client_id`, `kind` | verdicts: `identified` (READY), `resumed` (RESUMED) |
//! | `nova_discord_gave_up_total` | counter | `client_id`, `cause` | connections the adapter closed to reconnect: `zombie`, `no_hello`, `reconnect` (op 7), `invalid_session` (op 9), `zlib` (broken stream), `identify_budget` (daily budget spent) |

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::limiter::SessionStartReport;

/// Why the adapter gave a connection up (the `cause` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GaveUp {
    Zombie,
    NoHello,
    Reconnect,
    InvalidSession,
    Zlib,
    IdentifyBudget,
}

impl GaveUp {
    const ALL: [GaveUp; 6] = [
        GaveUp::Zombie,
        GaveUp::NoHello,
        GaveUp::Reconnect,
        GaveUp::InvalidSession,
        GaveUp::Zlib,
        GaveUp::IdentifyBudget,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            GaveUp::Zombie => "zombie",
            GaveUp::NoHello => "no_hello",
            GaveUp::Reconnect => "reconnect",
            GaveUp::InvalidSession => "invalid_session",
            GaveUp::Zlib => "zlib",
            GaveUp::IdentifyBudget => "identify_budget",
        }
    }
}

/// One client's metric handles (resolved once).
#[derive(Debug)]
pub(crate) struct Metrics {
    remaining: Gauge,
    total: Gauge,
    latency: Histogram,
    identified: Counter,
    resumed: Counter,
    gave_up: [Counter; 6],
}

impl Metrics {
    pub(crate) fn new(client_id: &str) -> Self {
        let c = client_id.to_owned();
        let sessions = |kind: &'static str| metrics::counter!("nova_discord_sessions_total", "client_id" => c.clone(), "kind" => kind);
        Self {
            remaining: metrics::gauge!("nova_discord_session_start_remaining", "client_id" => c.clone()),
            total: metrics::gauge!("nova_discord_session_start_total", "client_id" => c.clone()),
            latency: metrics::histogram!("nova_discord_heartbeat_latency_seconds", "client_id" => c.clone()),
            identified: sessions("identified"),
            resumed: sessions("resumed"),
            gave_up: GaveUp::ALL.map(|cause| {
                metrics::counter!("nova_discord_gave_up_total", "client_id" => c.clone(), "cause" => cause.as_str())
            }),
        }
    }

    /// The identify budget after an Identify attempt.
    pub(crate) fn session_start(&self, report: &SessionStartReport) {
        self.remaining.set(f64::from(report.remaining));
        self.total.set(f64::from(report.total));
    }

    pub(crate) fn heartbeat_latency(&self, latency: Duration) {
        self.latency.record(latency.as_secs_f64());
    }

    pub(crate) fn session(&self, resumed: bool) {
        if resumed {
            self.resumed.increment(1);
        } else {
            self.identified.increment(1);
        }
    }

    pub(crate) fn gave_up(&self, cause: GaveUp) {
        self.gave_up[cause.index()].increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_indexed_in_order() {
        for (i, cause) in GaveUp::ALL.iter().enumerate() {
            assert_eq!(cause.index(), i, "{}", cause.as_str());
        }
    }
}
