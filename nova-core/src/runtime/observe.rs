//! What the outside can see of a connection task: the published [`ConnectionState`] (a `watch`),
//! the lifecycle events (a bounded broadcast ring) and telemetry. One place owns all three so
//! that every change of state is published the same way.

use tokio::sync::{broadcast, watch};

use super::events::LifecycleEvent;
use crate::telemetry::{EventKind, Telemetry};
use crate::types::ConnectionState;

/// The observable side of a connection task.
pub(crate) struct Observer {
    /// The state as the task knows it; published on [`publish`](Self::publish).
    pub(crate) state: ConnectionState,
    state_tx: watch::Sender<ConnectionState>,
    events: broadcast::Sender<LifecycleEvent>,
    pub(crate) telemetry: Telemetry,
    /// Subscription statuses changed and are not yet published (published once per batch of
    /// work, not once per ack: a restore of N subscriptions would clone the map N times).
    dirty: bool,
}

impl Observer {
    pub(crate) fn new(
        state_tx: watch::Sender<ConnectionState>,
        events: broadcast::Sender<LifecycleEvent>,
        telemetry: Telemetry,
    ) -> Self {
        Self {
            state: ConnectionState::default(),
            state_tx,
            events,
            telemetry,
            dirty: false,
        }
    }

    /// Publishes the state now.
    pub(crate) fn publish(&mut self) {
        self.dirty = false;
        self.state_tx.send_replace(self.state.clone());
    }

    /// Notes a change to publish with the next [`publish_if_dirty`](Self::publish_if_dirty).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Publishes the state if something changed since the last publish.
    pub(crate) fn publish_if_dirty(&mut self) {
        if self.dirty {
            self.publish();
        }
    }

    /// Sends a lifecycle event to whoever follows them (nobody is fine).
    pub(crate) fn emit(&self, event: LifecycleEvent) {
        let _ = self.events.send(event);
    }

    /// Records a telemetry event.
    pub(crate) fn event(&self, kind: EventKind) {
        self.telemetry.event(kind);
    }
}

/// Whole milliseconds, for log fields.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
