//! Requests in flight and the runtime's timers: who waits for the response to each request id
//! (an application caller, or the runtime's own subscribe, unsubscribe and backfill requests),
//! their deadlines, resends after a platform's "too many requests", and the requests to replay
//! after a reconnect (idempotent ones cut off by a disconnect).
//!
//! Every timer of the runtime lives in one ordered set; a timer that outlives its request (an
//! answered or cancelled one) is recognised and ignored when it fires.

use std::collections::BTreeSet;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::Error;
use crate::handler::{Operation, RequestId};
use crate::message::Message;

/// Who waits for the response to a request id.
pub(crate) enum Awaiting {
    /// The application, through `Client::request`.
    Caller(oneshot::Sender<Result<Message, Error>>),
    /// The runtime's subscribe for subscription `sub`.
    Subscribe { sub: u64, purpose: SubscribePurpose },
    /// The runtime's unsubscribe (nobody needs the answer).
    Unsubscribe,
    /// A backfill request closing a gap of subscription `sub`.
    Backfill { sub: u64 },
}

/// Why a subscribe request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubscribePurpose {
    /// The application's subscribe call waits for this ack.
    First,
    /// Restoring after a reconnect.
    Restore,
    /// Subscribing again to close a gap.
    Resubscribe,
}

/// A request whose response is awaited.
pub(crate) struct Pending {
    pub(crate) awaiting: Awaiting,
    /// The timeout the deadline was computed from (reported in `Error::Timeout`).
    pub(crate) timeout: Duration,
    pub(crate) message: Message,
    pub(crate) operation: Operation,
    pub(crate) deadline: Instant,
    pub(crate) idempotent: bool,
    /// Written to the current connection.
    pub(crate) written: bool,
}

/// Timers of the runtime.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A request's deadline.
    Deadline(RequestId),
    /// Resend a request the platform rate-limited.
    Resend(RequestId),
    /// Try again to restore a subscription.
    RestoreRetry(u64),
}

/// The requests in flight and the timers.
#[derive(Default)]
pub(crate) struct Requests {
    pending: FxHashMap<RequestId, Pending>,
    timers: BTreeSet<(Instant, Timer)>,
    /// Requests to send again on the next connection, in id order.
    replay: Vec<RequestId>,
}

impl Requests {
    /// Tracks a request until its response or its deadline.
    pub(crate) fn track(&mut self, id: RequestId, pending: Pending) {
        self.timers
            .insert((pending.deadline, Timer::Deadline(id.clone())));
        self.pending.insert(id, pending);
    }

    /// The request with this id, if still awaited.
    pub(crate) fn get(&self, id: &RequestId) -> Option<&Pending> {
        self.pending.get(id)
    }

    /// Marks a request as written to the current connection.
    pub(crate) fn mark_written(&mut self, id: &RequestId) {
        if let Some(p) = self.pending.get_mut(id) {
            p.written = true;
        }
    }

    /// Takes an answered request, and its deadline timer with it. `None` for a late or unknown id.
    pub(crate) fn answered(&mut self, id: &RequestId) -> Option<Pending> {
        let pending = self.pending.remove(id)?;
        // Otherwise every request's timer stays in the set until the deadline passes:
        // ~request_timeout × request rate entries.
        self.timers
            .remove(&(pending.deadline, Timer::Deadline(id.clone())));
        Some(pending)
    }

    /// Puts back a request the platform rate-limited, to be resent at `at` (its deadline stays).
    pub(crate) fn resend_at(&mut self, id: RequestId, pending: Pending, at: Instant) {
        self.timers
            .insert((pending.deadline, Timer::Deadline(id.clone())));
        self.timers.insert((at, Timer::Resend(id.clone())));
        self.pending.insert(
            id,
            Pending {
                written: false,
                ..pending
            },
        );
    }

    /// Takes a request whose deadline `at` passed; `None` when it was answered meanwhile.
    pub(crate) fn expired(&mut self, id: &RequestId, at: Instant) -> Option<Pending> {
        if self.pending.get(id)?.deadline != at {
            return None;
        }
        self.pending.remove(id)
    }

    /// Fails an application's request at once (it could not be encoded).
    pub(crate) fn fail_caller(&mut self, id: &RequestId, error: Error) {
        if let Some(Pending {
            awaiting: Awaiting::Caller(reply),
            ..
        }) = self.pending.remove(id)
        {
            let _ = reply.send(Err(error));
        }
    }

    /// Schedules a timer.
    pub(crate) fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timers.insert((at, timer));
    }

    /// When the first timer fires.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// The next timer due at `now`, removed from the set.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        if self.timers.first().is_some_and(|(at, _)| *at <= now) {
            self.timers.pop_first()
        } else {
            None
        }
    }

    /// The connection is gone: a written request that is not idempotent fails with
    /// `Disconnected` (it may or may not have been executed); a written idempotent one is
    /// replayed with the same id on the next connection; the runtime's own requests are void
    /// (subscriptions are restored anew).
    pub(crate) fn on_connection_lost(&mut self) {
        let ids: Vec<RequestId> = self.pending.keys().cloned().collect();
        for id in ids {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            match p.awaiting {
                Awaiting::Caller(reply) if p.written && !p.idempotent => {
                    let _ = reply.send(Err(Error::Disconnected));
                }
                Awaiting::Caller(_) => {
                    if p.written {
                        self.replay.push(id.clone());
                    }
                    self.pending.insert(
                        id,
                        Pending {
                            written: false,
                            ..p
                        },
                    );
                }
                Awaiting::Subscribe { .. } | Awaiting::Unsubscribe | Awaiting::Backfill { .. } => {}
            }
        }
        self.replay.sort();
    }

    /// Whether requests wait to be replayed.
    pub(crate) fn has_replay(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The requests to replay, in id order, with their messages.
    pub(crate) fn take_replay(&mut self) -> Vec<(RequestId, Message, Operation)> {
        std::mem::take(&mut self.replay)
            .into_iter()
            .filter_map(|id| {
                let p = self.pending.get(&id)?;
                Some((id, p.message.clone(), p.operation))
            })
            .collect()
    }

    /// The client stopped: every application request fails with `error`.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> Error) {
        for (_, pending) in self.pending.drain() {
            if let Awaiting::Caller(reply) = pending.awaiting {
                let _ = reply.send(Err(error()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(
        deadline: Instant,
        idempotent: bool,
    ) -> (Pending, oneshot::Receiver<Result<Message, Error>>) {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            awaiting: Awaiting::Caller(tx),
            timeout: Duration::from_secs(1),
            message: Message::text("req"),
            operation: Operation::Query,
            deadline,
            idempotent,
            written: false,
        };
        (pending, rx)
    }

    #[test]
    fn an_answer_removes_the_request_and_its_deadline() {
        let t = Instant::now() + Duration::from_secs(1);
        let mut r = Requests::default();
        let (p, _rx) = caller(t, false);
        r.track(RequestId::Num(1), p);
        assert_eq!(r.next_timer(), Some(t));
        assert!(r.answered(&RequestId::Num(1)).is_some());
        assert_eq!(r.next_timer(), None);
        assert!(
            r.answered(&RequestId::Num(1)).is_none(),
            "a late answer finds nothing"
        );
    }

    #[test]
    fn a_deadline_fires_only_for_its_own_request() {
        let t = Instant::now();
        let mut r = Requests::default();
        let (p, _rx) = caller(t, false);
        r.track(RequestId::Num(1), p);
        let (at, timer) = r.pop_due(t).expect("due");
        assert_eq!(timer, Timer::Deadline(RequestId::Num(1)));
        assert!(
            r.expired(&RequestId::Num(1), at + Duration::from_secs(1))
                .is_none()
        );
        assert!(r.expired(&RequestId::Num(1), at).is_some());
        assert!(r.pop_due(t).is_none());
    }

    #[test]
    fn a_disconnect_fails_written_requests_and_replays_idempotent_ones() {
        let t = Instant::now() + Duration::from_secs(5);
        let mut r = Requests::default();
        let (plain, mut plain_rx) = caller(t, false);
        let (idem, mut idem_rx) = caller(t, true);
        let (unwritten, mut unwritten_rx) = caller(t, false);
        r.track(RequestId::Num(3), idem);
        r.track(RequestId::Num(2), plain);
        r.track(RequestId::Num(4), unwritten);
        r.mark_written(&RequestId::Num(2));
        r.mark_written(&RequestId::Num(3));
        r.on_connection_lost();
        assert!(matches!(plain_rx.try_recv(), Ok(Err(Error::Disconnected))));
        assert!(idem_rx.try_recv().is_err(), "still waiting");
        assert!(unwritten_rx.try_recv().is_err(), "still waiting");
        let replay = r.take_replay();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].0, RequestId::Num(3));
        assert!(!r.has_replay());
        assert!(!r.get(&RequestId::Num(3)).expect("kept").written);
    }

    #[test]
    fn a_rate_limited_request_is_resent_later_and_keeps_its_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        let mut r = Requests::default();
        let (p, _rx) = caller(deadline, false);
        r.track(RequestId::Num(1), p);
        let p = r.answered(&RequestId::Num(1)).expect("pending");
        r.resend_at(RequestId::Num(1), p, now + Duration::from_millis(100));
        let (_, timer) = r
            .pop_due(now + Duration::from_millis(100))
            .expect("resend due");
        assert_eq!(timer, Timer::Resend(RequestId::Num(1)));
        assert_eq!(r.next_timer(), Some(deadline));
    }
}
