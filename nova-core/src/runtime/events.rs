//! Lifecycle events: what a client is doing, as a stream the application can follow.

use std::time::Duration;

use crate::types::{DisconnectReason, StopReason};

/// Something that happened to a client's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// A connect attempt starts (`attempt` 0 is the first connect).
    Connecting {
        /// Consecutive reconnect attempts before this one.
        attempt: u32,
    },
    /// A connection is open.
    Connected {
        /// How long the connect took.
        duration: Duration,
        /// 0 for the first connection, then 1, 2, ...
        connection_index: u64,
    },
    /// A connect attempt failed.
    ConnectFailed {
        /// Bounded label of the error (`"transport.tls"`, ...).
        kind: &'static str,
        /// The error, displayed.
        error: String,
        /// The attempt that failed.
        attempt: u32,
    },
    /// An open connection ended.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// How long it had been up.
        uptime: Duration,
    },
    /// The next connect attempt will start after `delay`.
    ReconnectScheduled {
        /// The attempt number it will be (1 for the first reconnect).
        attempt: u32,
        /// The delay before it.
        delay: Duration,
    },
    /// An error was reported to the `ErrorHandler`.
    Error {
        /// Bounded label of the error.
        kind: &'static str,
        /// Where it happened.
        source: &'static str,
        /// The error, displayed.
        message: String,
    },
    /// A gap was found in a subscription's sequence; `action` is the recovery started.
    Gap {
        /// The subscription's channel.
        channel: String,
        /// `"resubscribe"`, `"backfill"` or `"report"`.
        action: &'static str,
    },
    /// A backfill closed a gap.
    GapClosed {
        /// The subscription's channel.
        channel: String,
    },
    /// A subscription was silent for longer than its adapter says is normal; it alone is being
    /// subscribed again.
    SubscriptionStale {
        /// The channel.
        channel: String,
        /// How long it had been silent.
        silent: Duration,
    },
    /// A make-before-break handover started (see
    /// [`Context::request_handover`](crate::Context::request_handover)).
    HandoverStarted {
        /// The handler's reason.
        reason: String,
    },
    /// The old connection of a handover is closed; the new one carries everything.
    HandoverCompleted {
        /// How long both connections were open.
        overlap: Duration,
    },
    /// The client stopped for good.
    Stopped {
        /// Why.
        reason: StopReason,
    },
}
