//! Telemetry: the seed's event catalog, emitted three ways.
//!
//! Every event is
//! 1. a `tracing` event with structured fields, inside the `nova.client` span that carries
//!    `client_id` (per-message events at `TRACE`, the rest at `DEBUG`–`WARN`);
//! 2. a `metrics` counter, histogram or gauge (names and labels below; install a recorder such
//!    as `metrics-exporter-prometheus` *before* connecting clients, since each client resolves
//!    its metric handles once);
//! 3. a [`TelemetryEvent`] for the handlers attached with [`attach`] (the seed's
//!    `:telemetry.attach`). When no handler is attached, no event value is even built.
//!
//! Every metric is described once per process (`describe_counter!` and friends, with its unit
//! and the text below as help), when the first client is created: Prometheus shows it as
//! `# HELP` and `# TYPE`. An application that installs its recorder later calls
//! [`describe_metrics`] itself.
//!
//! Labels have bounded cardinality: `client_id` (the configured name), kinds, reasons and error
//! types from fixed sets, and `channel` only on subscription metrics. Message ids never appear.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `nova_connections_started_total` | counter | `client_id` | connect attempts (seed: connection started) |
//! | `nova_connection_duration_seconds` | histogram | `client_id` | time to connect (seed: connection completed) |
//! | `nova_connect_failures_total` | counter | `client_id`, `error_type` | failed connect attempts |
//! | `nova_connection_up` | gauge | `client_id` | 1 while a connection is open |
//! | `nova_disconnects_total` | counter | `client_id`, `reason` | connections lost, by reason |
//! | `nova_reconnections_started_total` | counter | `client_id` | reconnects scheduled (seed: reconnection started) |
//! | `nova_reconnection_duration_seconds` | histogram | `client_id` | from disconnect to connected again (seed: reconnection completed) |
//! | `nova_messages_received_total` | counter | `client_id`, `type` | messages read, by `message_type` (seed: message received) |
//! | `nova_message_received_bytes` | histogram | `client_id` | their sizes |
//! | `nova_messages_sent_total` | counter | `client_id`, `type` | messages written, by operation (seed: message sent) |
//! | `nova_message_sent_bytes` | histogram | `client_id` | their sizes |
//! | `nova_errors_total` | counter | `client_id`, `error_type`, `source` | errors (seed: error occurred) |
//! | `nova_subscriptions_started_total` | counter | `client_id`, `channel` | subscribe requests (seed: subscription started) |
//! | `nova_subscription_duration_seconds` | histogram | `client_id`, `channel` | subscribe to verified ack (seed: subscription completed) |
//! | `nova_subscriptions_restored_total` | counter | `client_id`, `channel` | restored after a reconnect |
//! | `nova_subscription_restore_failures_total` | counter | `client_id`, `channel` | restores that failed (retried) |
//! | `nova_heartbeat_rtt_seconds` | histogram | `client_id` | WebSocket ping to pong |
//! | `nova_rate_limit_wait_seconds` | histogram | `client_id` | time sends waited for the limiter |
//! | `nova_send_queue_depth` | gauge | `client_id` | messages waiting to be sent |
//! | `nova_messages_dropped_total` | counter | `client_id` | inbound messages dropped by `drop_oldest` |
//! | `nova_auth_total` | counter | `client_id`, `outcome` | `completed`, `failed`, `refreshed` |
//! | `nova_gaps_total` | counter | `client_id`, `channel`, `action` | sequence gaps detected |
//! | `nova_gaps_recovered_total` | counter | `client_id`, `channel` | gaps closed |
//! | `nova_subscriptions_stale_total` | counter | `client_id`, `channel` | subscriptions silent past their bound, subscribed again |
//! | `nova_handovers_total` | counter | `client_id`, `outcome` | make-before-break handovers: `started`, `switched`, `completed`, `failed` |
//! | `nova_handover_overlap_seconds` | histogram | `client_id` | how long both connections of a handover were open |

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram};

use crate::handler::MessageType;

mod describe;
pub use describe::describe_metrics;

/// One event of the catalog, with its measurements.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A connect attempt starts.
    ConnectionStarted {
        /// Consecutive reconnect attempts before it.
        attempt: u32,
    },
    /// A connection is open.
    ConnectionCompleted {
        /// Time to connect.
        duration: Duration,
    },
    /// A connect attempt failed.
    ConnectionFailed {
        /// Bounded error label.
        error_type: &'static str,
    },
    /// An open connection ended.
    Disconnected {
        /// Bounded reason label.
        reason: &'static str,
    },
    /// A reconnect is scheduled.
    ReconnectionStarted {
        /// Its number (1 for the first reconnect).
        attempt: u32,
        /// The delay before it.
        delay: Duration,
    },
    /// A reconnect succeeded.
    ReconnectionCompleted {
        /// Its number.
        attempt: u32,
        /// From the disconnect to the new connection.
        duration: Duration,
    },
    /// A subscribe request was sent.
    SubscriptionStarted {
        /// The channel.
        channel: String,
    },
    /// A subscription's ack was verified.
    SubscriptionCompleted {
        /// The channel.
        channel: String,
        /// From the request to the verified ack.
        duration: Duration,
    },
    /// A subscription was restored after a reconnect.
    SubscriptionRestored {
        /// The channel.
        channel: String,
    },
    /// Restoring a subscription failed (it is retried).
    SubscriptionRestoreFailed {
        /// The channel.
        channel: String,
    },
    /// A message was read.
    MessageReceived {
        /// Its `message_type` label: `subscription`, `response`, `heartbeat`, `unknown`,
        /// `invalid`.
        message_type: &'static str,
        /// Its size in bytes.
        size: usize,
    },
    /// A message was written.
    MessageSent {
        /// Its operation label (`query`, `order`, `other`, ...).
        message_type: &'static str,
        /// Its size in bytes.
        size: usize,
    },
    /// An error was reported.
    ErrorOccurred {
        /// Bounded error label.
        error_type: &'static str,
        /// Where it happened.
        source: &'static str,
    },
    /// A WebSocket ping was answered.
    HeartbeatRoundTrip {
        /// Ping to pong.
        rtt: Duration,
    },
    /// Sends waited for the rate limiter.
    RateLimitWait {
        /// How long.
        wait: Duration,
    },
    /// Inbound messages were dropped by the `drop_oldest` policy.
    MessagesDropped {
        /// How many.
        count: u64,
    },
    /// Authentication succeeded.
    AuthCompleted {
        /// Whether it was a refresh on an open connection.
        refresh: bool,
    },
    /// Authentication failed.
    AuthFailed,
    /// A gap was detected in a subscription.
    GapDetected {
        /// The channel.
        channel: String,
        /// The recovery started.
        action: &'static str,
    },
    /// A gap was closed.
    GapRecovered {
        /// The channel.
        channel: String,
    },
    /// A subscription was silent past its bound and is being subscribed again.
    SubscriptionStale {
        /// The channel.
        channel: String,
    },
    /// A make-before-break handover started: the next connection is being opened.
    HandoverStarted,
    /// The next connection of a handover took over; the old one drains.
    HandoverSwitched {
        /// From the request to the new connection taking over.
        duration: Duration,
    },
    /// The old connection of a handover is closed: the handover is complete.
    HandoverCompleted {
        /// How long both connections were open.
        overlap: Duration,
    },
    /// The next connection of a handover could not be opened; the current one stays.
    HandoverFailed {
        /// Bounded error label.
        error_type: &'static str,
    },
}

/// An event with its metadata, as handed to attached handlers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TelemetryEvent {
    /// The client's name.
    pub client_id: Arc<str>,
    /// When it happened.
    pub system_time: SystemTime,
    /// What happened, with its measurements.
    pub kind: EventKind,
}

/// A user's event handler (the seed's `:telemetry.attach`).
pub trait TelemetryHandler: Send + Sync + 'static {
    /// Called synchronously on the connection task for every event: keep it quick.
    fn handle(&self, event: &TelemetryEvent);
}

impl<F: Fn(&TelemetryEvent) + Send + Sync + 'static> TelemetryHandler for F {
    fn handle(&self, event: &TelemetryEvent) {
        self(event);
    }
}

/// Identifies an attached handler, for [`detach`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

type Handlers = Vec<(HandlerId, Arc<dyn TelemetryHandler>)>;

static HANDLERS: RwLock<Handlers> = RwLock::new(Vec::new());
static ATTACHED: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Attaches a handler that sees every event of every client in the process.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use nova_core::telemetry::{self, EventKind, TelemetryEvent};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let id = telemetry::attach({
///     let seen = seen.clone();
///     move |e: &TelemetryEvent| {
///         if let EventKind::ConnectionCompleted { duration } = &e.kind {
///             seen.lock().unwrap().push(*duration);
///         }
///     }
/// });
/// telemetry::detach(id);
/// ```
pub fn attach(handler: impl TelemetryHandler) -> HandlerId {
    let id = HandlerId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    if let Ok(mut handlers) = HANDLERS.write() {
        handlers.push((id, Arc::new(handler)));
        ATTACHED.store(handlers.len(), Ordering::Release);
    }
    id
}

/// Detaches a handler.
pub fn detach(id: HandlerId) {
    if let Ok(mut handlers) = HANDLERS.write() {
        handlers.retain(|(h, _)| *h != id);
        ATTACHED.store(handlers.len(), Ordering::Release);
    }
}

fn attached() -> bool {
    ATTACHED.load(Ordering::Acquire) > 0
}

/// A client's telemetry: cached metric handles for the hot path, and the dispatch of events.
pub(crate) struct Telemetry {
    client_id: Arc<str>,
    enabled: bool,
    received: [Counter; 5],
    received_bytes: Histogram,
    sent_total: Vec<Counter>,
    sent_bytes: Histogram,
    connection_up: Gauge,
    send_queue: Gauge,
    dropped: Counter,
}

fn type_index(kind: &MessageType<'_>) -> usize {
    match kind {
        MessageType::Subscription { .. } => 0,
        MessageType::Response { .. } => 1,
        MessageType::Heartbeat => 2,
        MessageType::Invalid(_) => 4,
        _ => 3,
    }
}

const TYPE_LABELS: [&str; 5] = [
    "subscription",
    "response",
    "heartbeat",
    "unknown",
    "invalid",
];

impl Telemetry {
    pub(crate) fn new(client_id: &str, enabled: bool) -> Self {
        static DESCRIBED: std::sync::Once = std::sync::Once::new();
        DESCRIBED.call_once(describe_metrics);
        let id: Arc<str> = Arc::from(client_id);
        let c = id.to_string();
        let received = TYPE_LABELS.map(|t| metrics::counter!("nova_messages_received_total", "client_id" => c.clone(), "type" => t));
        let sent_total = crate::handler::Operation::ALL
            .iter()
            .map(|op| metrics::counter!("nova_messages_sent_total", "client_id" => c.clone(), "type" => op.as_str()))
            .collect();
        Self {
            received,
            received_bytes: metrics::histogram!("nova_message_received_bytes", "client_id" => c.clone()),
            sent_total,
            sent_bytes: metrics::histogram!("nova_message_sent_bytes", "client_id" => c.clone()),
            connection_up: metrics::gauge!("nova_connection_up", "client_id" => c.clone()),
            send_queue: metrics::gauge!("nova_send_queue_depth", "client_id" => c.clone()),
            dropped: metrics::counter!("nova_messages_dropped_total", "client_id" => c),
            client_id: id,
            enabled,
        }
    }

    /// A counter for the messages dropped by the inbound overflow policy (used by the receiver).
    pub(crate) fn dropped_counter(&self) -> Counter {
        self.dropped.clone()
    }

    fn dispatch(&self, kind: impl FnOnce() -> EventKind) {
        if !attached() {
            return;
        }
        let event = TelemetryEvent {
            client_id: self.client_id.clone(),
            system_time: SystemTime::now(),
            kind: kind(),
        };
        if let Ok(handlers) = HANDLERS.read() {
            for (_, h) in handlers.iter() {
                h.handle(&event);
            }
        }
    }

    fn label(&self) -> String {
        self.client_id.to_string()
    }

    pub(crate) fn message_received(&self, kind: &MessageType<'_>, size: usize) {
        if !self.enabled {
            return;
        }
        let i = type_index(kind);
        self.received[i].increment(1);
        self.received_bytes.record(size as f64);
        tracing::trace!(message_type = TYPE_LABELS[i], size, "message received");
        self.dispatch(|| EventKind::MessageReceived {
            message_type: TYPE_LABELS[i],
            size,
        });
    }

    pub(crate) fn message_sent(&self, operation: crate::handler::Operation, size: usize) {
        if !self.enabled {
            return;
        }
        if let Some(c) = self.sent_total.get(operation.index()) {
            c.increment(1);
        }
        self.sent_bytes.record(size as f64);
        tracing::trace!(message_type = operation.as_str(), size, "message sent");
        self.dispatch(|| EventKind::MessageSent {
            message_type: operation.as_str(),
            size,
        });
    }

    pub(crate) fn send_queue_depth(&self, depth: usize) {
        if self.enabled {
            self.send_queue.set(depth as f64);
        }
    }

    /// Every event other than the per-message ones: metrics, tracing and handlers.
    pub(crate) fn event(&self, kind: EventKind) {
        if !self.enabled {
            return;
        }
        let c = self.label();
        match &kind {
            EventKind::ConnectionStarted { attempt } => {
                metrics::counter!("nova_connections_started_total", "client_id" => c).increment(1);
                tracing::debug!(attempt, "connection started");
            }
            EventKind::ConnectionCompleted { duration } => {
                metrics::histogram!("nova_connection_duration_seconds", "client_id" => c)
                    .record(duration.as_secs_f64());
                self.connection_up.set(1.0);
                tracing::debug!(
                    duration_ms = duration.as_secs_f64() * 1e3,
                    "connection completed"
                );
            }
            EventKind::ConnectionFailed { error_type } => {
                metrics::counter!("nova_connect_failures_total", "client_id" => c, "error_type" => *error_type).increment(1);
            }
            EventKind::Disconnected { reason } => {
                metrics::counter!("nova_disconnects_total", "client_id" => c, "reason" => *reason)
                    .increment(1);
                self.connection_up.set(0.0);
            }
            EventKind::ReconnectionStarted { attempt, delay } => {
                metrics::counter!("nova_reconnections_started_total", "client_id" => c)
                    .increment(1);
                tracing::debug!(
                    attempt,
                    delay_ms = delay.as_secs_f64() * 1e3,
                    "reconnection started"
                );
            }
            EventKind::ReconnectionCompleted { attempt, duration } => {
                metrics::histogram!("nova_reconnection_duration_seconds", "client_id" => c)
                    .record(duration.as_secs_f64());
                tracing::info!(
                    attempt,
                    duration_ms = duration.as_secs_f64() * 1e3,
                    "reconnection completed"
                );
            }
            EventKind::SubscriptionStarted { channel } => {
                metrics::counter!("nova_subscriptions_started_total", "client_id" => c, "channel" => channel.clone()).increment(1);
                tracing::debug!(%channel, "subscription started");
            }
            EventKind::SubscriptionCompleted { channel, duration } => {
                metrics::histogram!("nova_subscription_duration_seconds", "client_id" => c, "channel" => channel.clone())
                    .record(duration.as_secs_f64());
                tracing::debug!(%channel, duration_ms = duration.as_secs_f64() * 1e3, "subscription completed");
            }
            EventKind::SubscriptionRestored { channel } => {
                metrics::counter!("nova_subscriptions_restored_total", "client_id" => c, "channel" => channel.clone()).increment(1);
                tracing::info!(%channel, "subscription restored");
            }
            EventKind::SubscriptionRestoreFailed { channel } => {
                metrics::counter!("nova_subscription_restore_failures_total", "client_id" => c, "channel" => channel.clone())
                    .increment(1);
                tracing::warn!(%channel, "subscription restore failed");
            }
            EventKind::ErrorOccurred { error_type, source } => {
                metrics::counter!("nova_errors_total", "client_id" => c, "error_type" => *error_type, "source" => *source)
                    .increment(1);
            }
            EventKind::HeartbeatRoundTrip { rtt } => {
                metrics::histogram!("nova_heartbeat_rtt_seconds", "client_id" => c)
                    .record(rtt.as_secs_f64());
                tracing::trace!(rtt_us = rtt.as_secs_f64() * 1e6, "heartbeat round trip");
            }
            EventKind::RateLimitWait { wait } => {
                metrics::histogram!("nova_rate_limit_wait_seconds", "client_id" => c)
                    .record(wait.as_secs_f64());
                tracing::debug!(
                    wait_ms = wait.as_secs_f64() * 1e3,
                    "waiting for the rate limiter"
                );
            }
            EventKind::MessagesDropped { count } => {
                self.dropped.increment(*count);
            }
            EventKind::AuthCompleted { refresh } => {
                let outcome = if *refresh { "refreshed" } else { "completed" };
                metrics::counter!("nova_auth_total", "client_id" => c, "outcome" => outcome)
                    .increment(1);
            }
            EventKind::AuthFailed => {
                metrics::counter!("nova_auth_total", "client_id" => c, "outcome" => "failed")
                    .increment(1);
            }
            EventKind::GapDetected { channel, action } => {
                metrics::counter!("nova_gaps_total", "client_id" => c, "channel" => channel.clone(), "action" => *action)
                    .increment(1);
            }
            EventKind::GapRecovered { channel } => {
                metrics::counter!("nova_gaps_recovered_total", "client_id" => c, "channel" => channel.clone()).increment(1);
            }
            EventKind::SubscriptionStale { channel } => {
                metrics::counter!("nova_subscriptions_stale_total", "client_id" => c, "channel" => channel.clone())
                    .increment(1);
                tracing::warn!(%channel, "subscription silent past its bound: subscribing again");
            }
            EventKind::HandoverStarted => {
                metrics::counter!("nova_handovers_total", "client_id" => c, "outcome" => "started")
                    .increment(1);
                tracing::info!("handover started");
            }
            EventKind::HandoverSwitched { duration } => {
                metrics::counter!("nova_handovers_total", "client_id" => c, "outcome" => "switched")
                    .increment(1);
                tracing::info!(
                    duration_ms = duration.as_secs_f64() * 1e3,
                    "handover: the new connection took over"
                );
            }
            EventKind::HandoverCompleted { overlap } => {
                metrics::counter!("nova_handovers_total", "client_id" => c.clone(), "outcome" => "completed")
                    .increment(1);
                metrics::histogram!("nova_handover_overlap_seconds", "client_id" => c)
                    .record(overlap.as_secs_f64());
                tracing::info!(
                    overlap_ms = overlap.as_secs_f64() * 1e3,
                    "handover completed: the old connection is closed"
                );
            }
            EventKind::HandoverFailed { error_type } => {
                metrics::counter!("nova_handovers_total", "client_id" => c, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(error_type, "handover failed: the current connection stays");
            }
            // Per-message events go through `message_received` / `message_sent`.
            EventKind::MessageReceived { .. } | EventKind::MessageSent { .. } => {}
        }
        self.dispatch(|| kind);
    }
}

/// Whether a process-wide switch turned telemetry off (for measuring its cost).
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns metrics, telemetry tracing events and handler dispatch off for clients created from
/// now on (`true`), or back on. For benchmarks; the default is on.
pub fn set_disabled(disabled: bool) {
    DISABLED.store(disabled, Ordering::Relaxed);
}

pub(crate) fn enabled() -> bool {
    !DISABLED.load(Ordering::Relaxed)
}
