//! The per-subscription staleness watchdog: a channel silent for longer than its adapter says is
//! normal ([`SubscriptionHandler::stale_after`](crate::SubscriptionHandler::stale_after)) is
//! subscribed again on its own, and reported; the connection and every other channel are left
//! alone. Peers that watch a whole connection with one timer reconnect on quiet channels and
//! miss a dead channel on a live connection; this watches each channel with its own bound.
//!
//! The session checks every 250 ms while any subscription has a bound. A subscription counts as
//! silent from its last message, or from its last verified ack; only active subscriptions are
//! checked (a pending one is waiting for its ack, which has its own deadline).

use tokio::time::Instant;

use super::driver::Driver;
use super::events::LifecycleEvent;
use super::gaps::Recovery;
use super::requests::SubscribePurpose;
use super::subscriptions::SubscriptionEvent;
use crate::handler::Handler;
use crate::telemetry::EventKind;
use crate::types::SubscriptionStatus;

impl<H: Handler> Driver<H> {
    /// Subscribes again, one by one, to the subscriptions silent past their bound at `now`.
    pub(super) fn check_stale(&mut self, now: Instant) {
        for (sub, silent) in self.subs.stale(now) {
            let Some(entry) = self.subs.get_mut(sub) else {
                continue;
            };
            let subscription = entry.sub.clone();
            // Not again before the new ack (which restarts the silence clock).
            entry.last_data = now;
            entry.sub.status = SubscriptionStatus::Pending;
            if entry.last.is_some() {
                // A sequenced channel: the resubscribe's snapshot starts it afresh.
                entry.recovery = Recovery::Snapshot;
            }
            let channel = subscription.channel.clone();
            tracing::warn!(
                %channel,
                silent_ms = super::observe::millis(silent),
                "subscription silent past its bound"
            );
            self.obs.emit(LifecycleEvent::SubscriptionStale {
                channel: channel.clone(),
                silent,
            });
            self.obs.event(EventKind::SubscriptionStale { channel });
            self.out
                .subscription_events
                .push((sub, SubscriptionEvent::Stale { silent }));
            // A failure to build the unsubscribe is not an error: the subscribe that follows is
            // what matters.
            let _ = self.try_send_unsubscribe(&subscription);
            self.send_subscribe(sub, SubscribePurpose::Resubscribe);
        }
    }
}
