//! Sequence checks and gap recovery for subscriptions whose messages carry a sequence: each
//! routed message is checked against the last value delivered, duplicates are dropped, and a
//! break runs the handler's [`GapAction`]: subscribe again and wait for a snapshot, fetch what was
//! missed by request (holding live messages back so order is kept), or report it.

use std::collections::VecDeque;

use super::driver::Driver;
use super::requests::{Awaiting, SubscribePurpose};
use super::subscriptions::{Delivery, SubscriptionEvent};
use crate::handler::{Data, Gap, GapAction, Handler, Operation, Sequence, SequenceCheck};
use crate::message::Message;
use crate::telemetry::EventKind;

use super::events::LifecycleEvent;

/// A message routed to a subscription, with what the adapter read from it.
pub(crate) struct Routed {
    pub(crate) message: Message,
    pub(crate) data: Option<Data>,
    pub(crate) sequence: Option<Sequence>,
}

/// How a subscription is recovering from a gap.
pub(crate) enum Recovery {
    /// Not recovering: messages are checked as they come.
    None,
    /// Waiting for a snapshot after subscribing again.
    Snapshot,
    /// Waiting for backfill responses; live messages are held back meanwhile.
    Backfill {
        outstanding: usize,
        fetched: Vec<Message>,
        held: VecDeque<Routed>,
        failed: Option<String>,
    },
    /// A gap could not be closed: the next message is accepted whatever its sequence.
    AcceptNext,
}

/// How a sequence value relates to the last one delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    Accept,
    Duplicate,
    Gap,
}

/// Checks `seq` against the last value delivered.
pub(crate) fn check_sequence(last: Option<u64>, seq: Sequence) -> SeqVerdict {
    let Some(last) = last else {
        return SeqVerdict::Accept;
    };
    match seq.check {
        SequenceCheck::Snapshot => SeqVerdict::Accept,
        SequenceCheck::Follows(previous) if previous == last => SeqVerdict::Accept,
        SequenceCheck::Next if last.checked_add(1) == Some(seq.value) => SeqVerdict::Accept,
        SequenceCheck::Monotonic if seq.value > last => SeqVerdict::Accept,
        SequenceCheck::Monotonic => SeqVerdict::Duplicate,
        _ if seq.value <= last => SeqVerdict::Duplicate,
        _ => SeqVerdict::Gap,
    }
}

/// What happens to the message that revealed a gap.
pub(crate) enum GapOutcome {
    /// Held back until the backfill is done.
    Hold,
    /// Dropped (a snapshot will replace it).
    Drop,
    /// Delivered as it is.
    Accept,
}

impl<H: Handler> Driver<H> {
    /// A message routed to a subscription: sequence check, gap recovery, delivery.
    pub(super) fn on_subscription_message(&mut self, sub: u64, routed: Routed) {
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        entry.last_data = self.read_at;
        if entry.events.is_closed() {
            self.unsubscribe_now(sub);
            return;
        }
        if let Recovery::Backfill { held, failed, .. } = &mut entry.recovery {
            let full = held.len() >= self.config.inbound_buffer;
            held.push_back(routed);
            if full {
                *failed = Some("too many live messages held back during the backfill".to_owned());
                self.finish_backfill(sub);
            }
            return;
        }
        let Routed {
            message,
            data,
            sequence,
        } = routed;
        let Some(seq) = sequence.or_else(|| self.handler.sequence(&entry.sub, &message)) else {
            self.deliver_to(sub, message, data);
            return;
        };
        let verdict = if matches!(entry.recovery, Recovery::AcceptNext) {
            entry.recovery = Recovery::None;
            SeqVerdict::Accept
        } else {
            check_sequence(entry.last, seq)
        };
        match verdict {
            SeqVerdict::Accept => {
                if matches!(entry.recovery, Recovery::Snapshot) {
                    if seq.check != SequenceCheck::Snapshot && entry.last.is_some() {
                        // Still the old stream, before the fresh snapshot: skip it.
                        entry.last = Some(seq.value);
                        return;
                    }
                    entry.recovery = Recovery::None;
                    let channel = entry.sub.channel.clone();
                    self.obs.event(EventKind::GapRecovered { channel });
                    self.out
                        .subscription_events
                        .push((sub, SubscriptionEvent::GapClosed { value: seq.value }));
                }
                if let Some(entry) = self.subs.get_mut(sub) {
                    entry.last = Some(seq.value);
                }
                self.deliver_to(sub, message, data);
            }
            SeqVerdict::Duplicate => {
                tracing::trace!(value = seq.value, "duplicate subscription message dropped");
            }
            SeqVerdict::Gap => {
                if matches!(entry.recovery, Recovery::Snapshot) {
                    return; // waiting for the snapshot
                }
                let claimed_previous = match seq.check {
                    SequenceCheck::Follows(p) => Some(p),
                    _ => None,
                };
                let gap = Gap {
                    last: entry.last,
                    got: Some(seq.value),
                    claimed_previous,
                    after_reconnect: false,
                };
                tracing::warn!(channel = %entry.sub.channel, last = ?entry.last, got = seq.value, "sequence gap");
                match self.run_gap_action(sub, gap) {
                    GapOutcome::Hold => {
                        if let Some(entry) = self.subs.get_mut(sub) {
                            if let Recovery::Backfill { held, .. } = &mut entry.recovery {
                                held.push_back(Routed {
                                    message,
                                    data,
                                    sequence: Some(seq),
                                });
                            }
                        }
                    }
                    GapOutcome::Drop => {}
                    GapOutcome::Accept => {
                        if let Some(entry) = self.subs.get_mut(sub) {
                            entry.last = Some(seq.value);
                        }
                        self.deliver_to(sub, message, data);
                    }
                }
            }
        }
    }

    fn deliver_to(&mut self, sub: u64, message: Message, data: Option<Data>) {
        self.out.subscription_events.push((
            sub,
            SubscriptionEvent::Message(Delivery::new(message, data)),
        ));
    }

    /// Asks the handler about a gap and starts the recovery.
    pub(super) fn run_gap_action(&mut self, sub: u64, gap: Gap) -> GapOutcome {
        let Some(entry) = self.subs.get(sub) else {
            return GapOutcome::Drop;
        };
        let subscription = entry.sub.clone();
        let action = {
            let mut ctx = ctx!(self);
            self.handler.on_gap(&subscription, &gap, &mut ctx)
        };
        let label = match &action {
            GapAction::Resubscribe => "resubscribe",
            GapAction::Backfill(_) => "backfill",
            GapAction::Report => "report",
            GapAction::AwaitSnapshot => "snapshot",
            GapAction::Ignore => return GapOutcome::Accept,
        };
        self.obs.emit(LifecycleEvent::Gap {
            channel: subscription.channel.clone(),
            action: label,
        });
        self.obs.event(EventKind::GapDetected {
            channel: subscription.channel.clone(),
            action: label,
        });
        self.out
            .subscription_events
            .push((sub, SubscriptionEvent::Gap { gap, action: label }));
        match action {
            GapAction::Resubscribe => {
                if let Some(entry) = self.subs.get_mut(sub) {
                    entry.recovery = Recovery::Snapshot;
                }
                // A failure to build the unsubscribe is not an error: the subscribe that
                // follows is what matters.
                let _ = self.try_send_unsubscribe(&subscription);
                self.send_subscribe(sub, SubscribePurpose::Resubscribe);
                GapOutcome::Drop
            }
            GapAction::AwaitSnapshot => {
                if let Some(entry) = self.subs.get_mut(sub) {
                    entry.recovery = Recovery::Snapshot;
                }
                GapOutcome::Drop
            }
            GapAction::Backfill(requests) if !requests.is_empty() => {
                let outstanding = requests.len();
                for (id, message) in requests {
                    self.send_runtime_request(
                        id,
                        message,
                        Awaiting::Backfill { sub },
                        Operation::Query,
                    );
                }
                if let Some(entry) = self.subs.get_mut(sub) {
                    entry.recovery = Recovery::Backfill {
                        outstanding,
                        fetched: Vec::new(),
                        held: VecDeque::new(),
                        failed: None,
                    };
                }
                GapOutcome::Hold
            }
            GapAction::Backfill(_) | GapAction::Report => {
                let reason = "the handler cannot recover this gap".to_owned();
                self.out
                    .subscription_events
                    .push((sub, SubscriptionEvent::GapNotClosed { reason }));
                GapOutcome::Accept
            }
            GapAction::Ignore => GapOutcome::Accept,
        }
    }

    /// The answer to a backfill request (or its absence: `Err` with why).
    pub(super) fn on_backfill_response(&mut self, sub: u64, response: Result<&Message, String>) {
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let subscription = entry.sub.clone();
        let result = match response {
            Ok(message) => {
                let mut ctx = ctx!(self);
                self.handler
                    .handle_backfill_response(&subscription, message, &mut ctx)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        let Recovery::Backfill {
            outstanding,
            fetched,
            failed,
            ..
        } = &mut entry.recovery
        else {
            return;
        };
        *outstanding = outstanding.saturating_sub(1);
        match result {
            Ok(messages) => fetched.extend(messages),
            Err(e) => *failed = Some(e),
        }
        if *outstanding == 0 {
            self.finish_backfill(sub);
        }
    }

    /// Delivers what the backfill fetched, in sequence order without duplicates, then the live
    /// messages held back meanwhile.
    fn finish_backfill(&mut self, sub: u64) {
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        let Recovery::Backfill {
            fetched,
            held,
            failed,
            ..
        } = std::mem::replace(&mut entry.recovery, Recovery::None)
        else {
            return;
        };
        let mut fetched: Vec<(u64, Message)> = fetched
            .into_iter()
            .filter_map(|m| self.handler.sequence(&entry.sub, &m).map(|s| (s.value, m)))
            .collect();
        fetched.sort_by_key(|(v, _)| *v);
        let mut delivered = 0usize;
        for (value, message) in fetched {
            if entry.last.is_some_and(|last| value <= last) {
                continue;
            }
            entry.last = Some(value);
            delivered += 1;
            self.out.subscription_events.push((
                sub,
                SubscriptionEvent::Message(Delivery::new(message, None)),
            ));
        }
        // Closed when nothing failed and the first live message now follows on.
        let first_follows = held.front().is_none_or(|m| {
            m.sequence
                .or_else(|| self.handler.sequence(&entry.sub, &m.message))
                .is_none_or(|s| check_sequence(entry.last, s) != SeqVerdict::Gap)
        });
        let channel = entry.sub.channel.clone();
        match failed {
            None if first_follows => {
                tracing::info!(%channel, delivered, "gap closed by backfill");
                let value = entry.last.unwrap_or_default();
                self.obs.event(EventKind::GapRecovered {
                    channel: channel.clone(),
                });
                self.obs.emit(LifecycleEvent::GapClosed { channel });
                self.out
                    .subscription_events
                    .push((sub, SubscriptionEvent::GapClosed { value }));
            }
            failed => {
                let reason =
                    failed.unwrap_or_else(|| "the backfill did not reach the live data".to_owned());
                tracing::warn!(%channel, %reason, "gap not closed");
                entry.recovery = Recovery::AcceptNext;
                self.out
                    .subscription_events
                    .push((sub, SubscriptionEvent::GapNotClosed { reason }));
            }
        }
        for routed in held {
            self.on_subscription_message(sub, routed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_is_always_accepted() {
        assert_eq!(check_sequence(None, Sequence::next(7)), SeqVerdict::Accept);
        assert_eq!(
            check_sequence(None, Sequence::follows(7, 3)),
            SeqVerdict::Accept
        );
    }

    #[test]
    fn a_snapshot_resets_whatever_came_before() {
        assert_eq!(
            check_sequence(Some(10), Sequence::snapshot(3)),
            SeqVerdict::Accept
        );
    }

    #[test]
    fn follows_must_name_the_last_value() {
        assert_eq!(
            check_sequence(Some(10), Sequence::follows(11, 10)),
            SeqVerdict::Accept
        );
        assert_eq!(
            check_sequence(Some(10), Sequence::follows(13, 12)),
            SeqVerdict::Gap
        );
        assert_eq!(
            check_sequence(Some(10), Sequence::follows(9, 8)),
            SeqVerdict::Duplicate
        );
    }

    #[test]
    fn next_must_be_one_more() {
        assert_eq!(
            check_sequence(Some(10), Sequence::next(11)),
            SeqVerdict::Accept
        );
        assert_eq!(
            check_sequence(Some(10), Sequence::next(12)),
            SeqVerdict::Gap
        );
        assert_eq!(
            check_sequence(Some(10), Sequence::next(10)),
            SeqVerdict::Duplicate
        );
        assert_eq!(
            check_sequence(Some(u64::MAX), Sequence::next(u64::MAX)),
            SeqVerdict::Duplicate,
            "no overflow at the top"
        );
    }

    #[test]
    fn monotonic_cannot_see_gaps_only_repeats() {
        assert_eq!(
            check_sequence(Some(10), Sequence::monotonic(500)),
            SeqVerdict::Accept
        );
        assert_eq!(
            check_sequence(Some(10), Sequence::monotonic(10)),
            SeqVerdict::Duplicate
        );
    }
}
