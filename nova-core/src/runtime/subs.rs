//! The connection task's table of subscriptions: each subscription's stream, options, route key,
//! last sequence value and recovery; and the work on it: subscribe, verify the ack, unsubscribe,
//! restore every subscription after a reconnect (the connection is ready once every restore is
//! answered), retry a refused restore with backoff.

use rustc_hash::FxHashMap;
use std::time::Duration;
use tokio::sync::oneshot;

use tokio::time::Instant;

use super::commands::SubscribeCommand;
use super::driver::{Driver, Link, Phase};
use super::gaps::Recovery;
use super::inbound::QueueSender;
use super::requests::{Awaiting, Pending, SubscribePurpose, Timer};
use super::subscriptions::SubscriptionEvent;
use crate::error::{Error, HandlerError};
use crate::handler::{ErrorSource, Gap, Handler, Operation, RequestId};
use crate::message::{Frame, Message};
use crate::telemetry::EventKind;
use crate::types::{Subscription, SubscriptionStatus};

/// One subscription as the connection task keeps it.
pub(crate) struct SubEntry {
    pub(crate) sub: Subscription,
    pub(crate) options: serde_json::Value,
    pub(crate) events: QueueSender<SubscriptionEvent>,
    /// The key its messages are routed by on this connection (set by its ack).
    pub(crate) route: Option<String>,
    /// The last sequence value delivered (kept across reconnects).
    pub(crate) last: Option<u64>,
    /// The application's subscribe call, until the first ack answers it.
    pub(crate) waiter: Option<oneshot::Sender<Result<(), Error>>>,
    /// Consecutive refused restores (the retry's backoff).
    pub(crate) restore_attempts: u32,
    pub(crate) recovery: Recovery,
    /// When the last subscribe request went out.
    pub(crate) subscribe_sent: Option<Instant>,
    /// How long silence is normal for it (`None`: never stale).
    pub(crate) stale_after: Option<Duration>,
    /// When its last message arrived (or it was last confirmed).
    pub(crate) last_data: Instant,
}

/// The subscriptions and their routes.
#[derive(Default)]
pub(crate) struct SubTable {
    entries: FxHashMap<u64, SubEntry>,
    routes: FxHashMap<String, u64>,
    /// How many subscriptions have a staleness bound (the watchdog runs only when some do).
    watched: usize,
}

impl SubTable {
    pub(crate) fn get(&self, id: u64) -> Option<&SubEntry> {
        self.entries.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut SubEntry> {
        self.entries.get_mut(&id)
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.entries.contains_key(&id)
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        self.entries.keys().copied().collect()
    }

    /// The subscription whose messages carry this route key.
    pub(crate) fn route(&self, key: &str) -> Option<u64> {
        self.routes.get(key).copied()
    }

    fn insert(&mut self, id: u64, entry: SubEntry) {
        self.watched += usize::from(entry.stale_after.is_some());
        if let Some(old) = self.entries.insert(id, entry) {
            self.watched -= usize::from(old.stale_after.is_some());
        }
    }

    /// Whether any subscription has a staleness bound.
    pub(crate) fn watched(&self) -> bool {
        self.watched > 0
    }

    /// The active subscriptions silent for longer than their bound at `now`, with how long.
    pub(crate) fn stale(&self, now: Instant) -> Vec<(u64, Duration)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.sub.status == SubscriptionStatus::Active)
            .filter_map(|(id, e)| {
                let silent = now.saturating_duration_since(e.last_data);
                e.stale_after
                    .is_some_and(|bound| silent > bound)
                    .then_some((*id, silent))
            })
            .collect()
    }

    /// Removes a subscription and its route.
    pub(crate) fn remove(&mut self, id: u64) -> Option<SubEntry> {
        let entry = self.entries.remove(&id)?;
        self.watched -= usize::from(entry.stale_after.is_some());
        if let Some(route) = &entry.route {
            self.routes.remove(route);
        }
        Some(entry)
    }

    /// Routes `key` to subscription `id`, replacing its previous route.
    fn set_route(&mut self, id: u64, key: String) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let Some(old) = entry.route.replace(key.clone()) {
            self.routes.remove(&old);
        }
        self.routes.insert(key, id);
    }

    /// Whether another subscription is on this channel.
    fn has_channel(&self, channel: &str) -> bool {
        self.entries.values().any(|e| e.sub.channel == channel)
    }

    /// The connection is gone: routes are per connection, a backfill cut short is fetched again
    /// from `last` after the restore, active subscriptions are pending until restored.
    pub(crate) fn on_connection_lost(&mut self) {
        self.routes.clear();
        for entry in self.entries.values_mut() {
            entry.route = None;
            if matches!(entry.recovery, Recovery::Backfill { .. }) {
                entry.recovery = Recovery::None;
            }
            if entry.sub.status == SubscriptionStatus::Active {
                entry.sub.status = SubscriptionStatus::Pending;
            }
        }
    }

    /// The client stopped: every waiting subscribe call fails with `error`.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> Error) {
        self.routes.clear();
        self.watched = 0;
        for (_, entry) in self.entries.drain() {
            if let Some(waiter) = entry.waiter {
                let _ = waiter.send(Err(error()));
            }
        }
    }
}

impl<H: Handler> Driver<H> {
    /// Adds the subscription a handle asked for (its subscribe is sent by the caller, when a
    /// connection can take it); returns its id.
    pub(super) fn add_subscription(&mut self, command: SubscribeCommand) -> u64 {
        let SubscribeCommand {
            id,
            channel,
            options,
            events,
            reply,
        } = command;
        let sub = Subscription::new(format!("sub-{id}"), channel.clone());
        let stale_after = self.handler.stale_after(&sub);
        self.registry.insert(sub.clone(), options.clone());
        self.obs
            .state
            .subscription_status
            .insert(channel, SubscriptionStatus::Pending);
        self.obs.mark_dirty();
        let entry = SubEntry {
            sub,
            options,
            events,
            route: None,
            last: None,
            waiter: Some(reply),
            restore_attempts: 0,
            recovery: Recovery::None,
            subscribe_sent: None,
            stale_after,
            last_data: Instant::now(),
        };
        self.subs.insert(id, entry);
        id
    }

    pub(super) fn remove_subscription(&mut self, id: u64) -> Option<SubEntry> {
        let entry = self.subs.remove(id)?;
        self.registry.remove(&entry.sub.id);
        if !self.subs.has_channel(&entry.sub.channel) {
            self.obs
                .state
                .subscription_status
                .remove(&entry.sub.channel);
        }
        self.obs.publish();
        self.restore_answered(id);
        Some(entry)
    }

    /// Removes a subscription and, when connected, queues the platform's unsubscribe.
    pub(super) fn unsubscribe_now(&mut self, id: u64) {
        let Some(entry) = self.remove_subscription(id) else {
            return;
        };
        tracing::debug!(channel = %entry.sub.channel, "unsubscribing");
        if matches!(self.link, Link::Down) {
            return;
        }
        self.send_unsubscribe(&entry.sub);
    }

    /// Queues the platform's unsubscribe for `subscription`, if it has one; a failure to build
    /// it is reported.
    pub(super) fn send_unsubscribe(&mut self, subscription: &Subscription) {
        if let Err(e) = self.try_send_unsubscribe(subscription) {
            let _ = self.on_error(&Error::Handler(e), ErrorSource::Subscription);
        }
    }

    /// Queues the platform's unsubscribe for `subscription`, if it has one.
    pub(super) fn try_send_unsubscribe(
        &mut self,
        subscription: &Subscription,
    ) -> Result<(), HandlerError> {
        let built = {
            let mut ctx = ctx!(self);
            let request_id = ctx.next_request_id();
            self.handler
                .unsubscribe(subscription, request_id.clone(), &mut ctx)?
                .map(|m| (request_id, m))
        };
        if let Some((request_id, message)) = built {
            self.send_runtime_request(
                request_id,
                message,
                Awaiting::Unsubscribe,
                Operation::Subscribe,
            );
        }
        Ok(())
    }

    /// After authentication: restore every subscription; the connection is ready once their
    /// acks are in.
    pub(super) fn begin_restore(&mut self) {
        let ids = self.subs.ids();
        self.link = Link::Up(Phase::Restoring {
            outstanding: ids.iter().copied().collect(),
        });
        for id in ids {
            let purpose = match self.subs.get(id) {
                Some(e) if e.waiter.is_some() => SubscribePurpose::First,
                _ => SubscribePurpose::Restore,
            };
            self.send_subscribe(id, purpose);
        }
        self.restore_answered(u64::MAX);
    }

    /// The restore of `id` is answered (or it is gone): ready when none is outstanding.
    fn restore_answered(&mut self, id: u64) {
        if let Link::Up(Phase::Restoring { outstanding }) = &mut self.link {
            outstanding.remove(&id);
            if outstanding.is_empty() {
                self.link = Link::Up(Phase::Ready);
            }
        }
    }

    /// Queues a request the runtime itself makes (subscribe, unsubscribe, backfill).
    pub(super) fn send_runtime_request(
        &mut self,
        id: RequestId,
        message: Message,
        awaiting: Awaiting,
        operation: Operation,
    ) {
        let timeout = self.config.request_timeout;
        self.out
            .frames
            .push((Frame::from_message(message.clone()), operation));
        let pending = Pending {
            awaiting,
            timeout,
            message,
            operation,
            deadline: Instant::now() + timeout,
            idempotent: false,
            written: true,
        };
        self.requests.track(id, pending);
    }

    pub(super) fn send_subscribe(&mut self, sub: u64, purpose: SubscribePurpose) {
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let (subscription, options) = (entry.sub.clone(), entry.options.clone());
        let built = {
            let mut ctx = ctx!(self);
            let id = ctx.next_request_id();
            self.handler
                .subscribe(&subscription, &options, id.clone(), &mut ctx)
                .map(|m| (id, m))
        };
        match built {
            Ok((id, message)) => {
                tracing::debug!(channel = %subscription.channel, ?purpose, "subscribing");
                self.obs.event(EventKind::SubscriptionStarted {
                    channel: subscription.channel.clone(),
                });
                if let Some(entry) = self.subs.get_mut(sub) {
                    entry.subscribe_sent = Some(Instant::now());
                }
                self.send_runtime_request(
                    id,
                    message,
                    Awaiting::Subscribe { sub, purpose },
                    Operation::Subscribe,
                );
            }
            Err(e) => self.on_subscribe_ack(sub, purpose, Err(e.to_string())),
        }
    }

    /// The answer to a subscribe request (or its absence: `Err` with why).
    pub(super) fn on_subscribe_ack(
        &mut self,
        sub: u64,
        purpose: SubscribePurpose,
        response: Result<&Message, String>,
    ) {
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let subscription = entry.sub.clone();
        let verdict = match response {
            Ok(message) => {
                let mut ctx = ctx!(self);
                self.handler
                    .handle_subscription_response(&subscription, message, &mut ctx)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        match verdict {
            Ok(route) => self.subscription_confirmed(sub, &subscription, purpose, route),
            Err(reason) => self.subscription_refused(sub, &subscription, reason),
        }
        self.restore_answered(sub);
    }

    fn subscription_confirmed(
        &mut self,
        sub: u64,
        subscription: &Subscription,
        purpose: SubscribePurpose,
        route: Option<String>,
    ) {
        let channel = subscription.channel.clone();
        self.subs
            .set_route(sub, route.unwrap_or_else(|| channel.clone()));
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        entry.sub.status = SubscriptionStatus::Active;
        entry.sub.error = None;
        entry.restore_attempts = 0;
        // The silence clock starts with the ack.
        entry.last_data = Instant::now();
        let waiter = entry.waiter.take();
        let last = entry.last;
        let duration = entry
            .subscribe_sent
            .take()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        self.obs.event(EventKind::SubscriptionCompleted {
            channel: channel.clone(),
            duration,
        });
        if purpose == SubscribePurpose::Restore {
            self.obs.event(EventKind::SubscriptionRestored {
                channel: channel.clone(),
            });
        }
        self.registry
            .set_status(&subscription.id, SubscriptionStatus::Active, None);
        self.obs
            .state
            .subscription_status
            .insert(channel, SubscriptionStatus::Active);
        self.obs.mark_dirty();
        if let Some(waiter) = waiter {
            // The caller may look at the state as soon as it is answered.
            self.obs.publish();
            let _ = waiter.send(Ok(()));
        } else if purpose == SubscribePurpose::Restore {
            self.out
                .subscription_events
                .push((sub, SubscriptionEvent::Restored));
            // Data may have been missed while down, even before anything was delivered
            // (`last: None`): the handler decides whether it can fetch it.
            let gap = Gap {
                last,
                got: None,
                claimed_previous: None,
                after_reconnect: true,
            };
            self.run_gap_action(sub, gap);
        }
    }

    fn subscription_refused(&mut self, sub: u64, subscription: &Subscription, reason: String) {
        let channel = subscription.channel.clone();
        self.registry.set_status(
            &subscription.id,
            SubscriptionStatus::Error,
            Some(reason.clone()),
        );
        self.obs
            .state
            .subscription_status
            .insert(channel.clone(), SubscriptionStatus::Error);
        self.obs.mark_dirty();
        let error = Error::SubscriptionRefused {
            channel: channel.clone(),
            reason: reason.clone(),
        };
        let _ = self.on_error(&error, ErrorSource::Subscription);
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        entry.sub.status = SubscriptionStatus::Error;
        entry.sub.error = Some(reason.clone());
        if let Some(waiter) = entry.waiter.take() {
            // The application's subscribe call fails; the subscription is not kept.
            self.remove_subscription(sub);
            let _ = waiter.send(Err(error));
            return;
        }
        let retry_in = self.config.backoff().delay(entry.restore_attempts);
        entry.restore_attempts = entry.restore_attempts.saturating_add(1);
        self.requests
            .schedule(Instant::now() + retry_in, Timer::RestoreRetry(sub));
        self.obs
            .event(EventKind::SubscriptionRestoreFailed { channel });
        self.out.subscription_events.push((
            sub,
            SubscriptionEvent::RestoreFailed {
                error: reason,
                retry_in,
            },
        ));
    }
}
