//! The delivery ledger: every envelope pushed, where it went, and what acked it.
//!
//! An envelope is *queued* until a connection takes it, then *in flight* with an ack deadline.
//! An ack (`{"envelope_id": ..}` with any of the ids the envelope went out under) makes it
//! *acked*; a deadline that passes first puts it back in the queue with `retry_attempt + 1`
//! (a *redelivery*, to whichever connection the dispatcher picks next: the same or another),
//! until [`max_redeliveries`](super::SlackSimOptions::max_redeliveries) have been spent and it
//! is *given up*. Acks after the first are counted per envelope, which is how a test sees that
//! a client handled something twice or acked a redelivery it had already acked.
//!
//! Bounded: at most [`max_unfinished`](super::SlackSimOptions::max_unfinished) envelopes may be
//! queued or in flight (a push beyond that is refused), and at most
//! [`records_kept`](super::SlackSimOptions::records_kept) finished records are kept, oldest
//! forgotten first.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde_json::Value;

use super::envelope::{EnvelopeKind, EnvelopeSpec};

/// Which envelope id a redelivery carries. Slack does not document it for Socket Mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryIds {
    /// The redelivery keeps the envelope id (a client can de-duplicate by envelope id).
    #[default]
    SameEnvelopeId,
    /// The redelivery gets a new envelope id (only the `event_id` of an `events_api` payload
    /// tells it is the same event).
    NewEnvelopeId,
}

/// What the simulator knows about one envelope it pushed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EnvelopeRecord {
    /// The envelope id of its first delivery (the id [`push`](super::SlackHandle::push)
    /// returned).
    pub envelope_id: String,
    /// Every envelope id it went out under (more than one only with
    /// [`RetryIds::NewEnvelopeId`]).
    pub envelope_ids: Vec<String>,
    /// Its type.
    pub kind: EnvelopeKind,
    /// The `event_id` of an `events_api` payload.
    pub event_id: Option<String>,
    /// How many times it was written to a connection (1 + redeliveries).
    pub deliveries: u32,
    /// How many acks named it. More than one: a client acked it twice.
    pub acks: u32,
    /// Whether an ack arrived (before or after it was given up).
    pub acked: bool,
    /// Whether it ran out of redeliveries before an ack arrived.
    pub given_up: bool,
    /// The `payload` of the first ack that carried one.
    pub ack_payload: Option<Value>,
    /// The connections it was written to, in order.
    pub connections: Vec<u64>,
}

/// What an ack did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AckOutcome {
    /// The first ack of an envelope.
    First,
    /// An envelope already acked (or given up) was acked again.
    Again,
    /// No envelope went out under this id (or it was forgotten).
    Unknown,
}

#[derive(Debug)]
enum State {
    Queued,
    InFlight { deadline: Instant },
    Acked,
    GivenUp,
}

#[derive(Debug)]
struct Entry {
    record: EnvelopeRecord,
    spec: EnvelopeSpec,
    current_id: String,
    retry_attempt: u32,
    state: State,
}

impl Entry {
    fn finished(&self) -> bool {
        matches!(self.state, State::Acked | State::GivenUp)
    }
}

/// The next envelope to write: its key, wire id, spec and retry attempt.
pub(super) struct Next<'a> {
    pub(super) key: u64,
    pub(super) envelope_id: &'a str,
    pub(super) spec: &'a EnvelopeSpec,
    pub(super) retry_attempt: u32,
}

/// Every envelope pushed, keyed by push order.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    entries: HashMap<u64, Entry>,
    order: VecDeque<u64>,
    by_id: HashMap<String, u64>,
    queue: VecDeque<u64>,
    next_key: u64,
    unfinished: usize,
}

impl Ledger {
    /// Adds an envelope to the queue; `None` when `max_unfinished` are already unfinished.
    pub(super) fn push(
        &mut self,
        spec: EnvelopeSpec,
        envelope_id: String,
        max_unfinished: usize,
    ) -> Option<u64> {
        if self.unfinished >= max_unfinished {
            return None;
        }
        let key = self.next_key;
        self.next_key += 1;
        let record = EnvelopeRecord {
            envelope_id: envelope_id.clone(),
            envelope_ids: vec![envelope_id.clone()],
            kind: spec.kind,
            event_id: spec.event_id(),
            deliveries: 0,
            acks: 0,
            acked: false,
            given_up: false,
            ack_payload: None,
            connections: Vec::new(),
        };
        self.by_id.insert(envelope_id.clone(), key);
        self.entries.insert(
            key,
            Entry {
                record,
                spec,
                current_id: envelope_id,
                retry_attempt: 0,
                state: State::Queued,
            },
        );
        self.order.push_back(key);
        self.queue.push_back(key);
        self.unfinished += 1;
        Some(key)
    }

    /// The next queued envelope, skipping any acked while waiting in the queue.
    pub(super) fn next_queued(&mut self) -> Option<Next<'_>> {
        loop {
            let key = *self.queue.front()?;
            if matches!(
                self.entries.get(&key).map(|e| &e.state),
                Some(State::Queued)
            ) {
                break;
            }
            self.queue.pop_front();
        }
        let key = *self.queue.front()?;
        let entry = self.entries.get(&key)?;
        Some(Next {
            key,
            envelope_id: &entry.current_id,
            spec: &entry.spec,
            retry_attempt: entry.retry_attempt,
        })
    }

    /// Marks the front of the queue (`key`) as written to `connection`, due by `deadline`.
    pub(super) fn sent(&mut self, key: u64, connection: u64, deadline: Instant) {
        if self.queue.front() == Some(&key) {
            self.queue.pop_front();
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.state = State::InFlight { deadline };
            entry.record.deliveries += 1;
            entry.record.connections.push(connection);
        }
    }

    /// Requeues every in-flight envelope whose deadline has passed, or gives it up when it has
    /// been delivered `1 + max_redeliveries` times. `new_id` makes a fresh envelope id when
    /// redeliveries change it. Returns `(requeued, given_up)`.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        max_redeliveries: u32,
        retry_ids: RetryIds,
        mut new_id: impl FnMut() -> String,
    ) -> (u64, u64) {
        let (mut requeued, mut given_up) = (0, 0);
        for key in &self.order {
            let Some(entry) = self.entries.get_mut(key) else {
                continue;
            };
            let State::InFlight { deadline } = entry.state else {
                continue;
            };
            if deadline > now {
                continue;
            }
            if entry.record.deliveries > max_redeliveries {
                entry.state = State::GivenUp;
                entry.record.given_up = true;
                self.unfinished = self.unfinished.saturating_sub(1);
                given_up += 1;
                continue;
            }
            entry.retry_attempt += 1;
            if retry_ids == RetryIds::NewEnvelopeId {
                let id = new_id();
                self.by_id.insert(id.clone(), *key);
                entry.record.envelope_ids.push(id.clone());
                entry.current_id = id;
            }
            entry.state = State::Queued;
            self.queue.push_back(*key);
            requeued += 1;
        }
        (requeued, given_up)
    }

    /// Records an ack of `envelope_id`, with its response payload if it had one.
    pub(super) fn ack(&mut self, envelope_id: &str, payload: Option<Value>) -> AckOutcome {
        let Some(entry) = self
            .by_id
            .get(envelope_id)
            .and_then(|key| self.entries.get_mut(key))
        else {
            return AckOutcome::Unknown;
        };
        entry.record.acks += 1;
        if entry.record.ack_payload.is_none() {
            entry.record.ack_payload = payload;
        }
        let was_acked = entry.record.acked;
        entry.record.acked = true;
        if !entry.finished() {
            entry.state = State::Acked;
            self.unfinished = self.unfinished.saturating_sub(1);
        }
        if was_acked {
            AckOutcome::Again
        } else {
            AckOutcome::First
        }
    }

    /// Forgets the oldest finished records beyond `kept`.
    pub(super) fn trim(&mut self, kept: usize) {
        while self.entries.len() > kept {
            let Some(&key) = self.order.front() else {
                break;
            };
            if !self.entries.get(&key).is_none_or(Entry::finished) {
                break;
            }
            self.order.pop_front();
            if let Some(entry) = self.entries.remove(&key) {
                for id in &entry.record.envelope_ids {
                    self.by_id.remove(id);
                }
            }
        }
    }

    /// Every record kept, in push order.
    pub(super) fn records(&self) -> Vec<EnvelopeRecord> {
        self.order
            .iter()
            .filter_map(|key| self.entries.get(key))
            .map(|e| e.record.clone())
            .collect()
    }

    /// The record of the envelope that went out under `envelope_id`.
    pub(super) fn record(&self, envelope_id: &str) -> Option<EnvelopeRecord> {
        let key = self.by_id.get(envelope_id)?;
        self.entries.get(key).map(|e| e.record.clone())
    }

    /// How many envelopes are queued or in flight.
    pub(super) fn unfinished(&self) -> usize {
        self.unfinished
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn send_front(ledger: &mut Ledger, connection: u64, deadline: Instant) -> Option<String> {
        let next = ledger.next_queued()?;
        let (key, id) = (next.key, next.envelope_id.to_owned());
        ledger.sent(key, connection, deadline);
        Some(id)
    }

    #[test]
    fn ack_then_duplicate_ack() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        ledger.push(EnvelopeSpec::events_api("a"), "e1".into(), 10);
        let id = send_front(&mut ledger, 0, now).unwrap_or_default();
        assert_eq!(ledger.ack(&id, None), AckOutcome::First);
        assert_eq!(ledger.ack(&id, None), AckOutcome::Again);
        assert_eq!(ledger.ack("nope", None), AckOutcome::Unknown);
        let record = ledger.record("e1").unwrap_or_else(|| panic!("kept"));
        assert_eq!((record.acks, record.deliveries), (2, 1));
        assert_eq!(ledger.unfinished(), 0);
    }

    #[test]
    fn redelivery_then_give_up() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        ledger.push(EnvelopeSpec::slash_command("/x", ""), "e1".into(), 10);
        let mut n = 0;
        let mut new_id = || {
            n += 1;
            format!("r{n}")
        };
        for round in 0..3u32 {
            assert!(send_front(&mut ledger, u64::from(round), now).is_some());
            assert_eq!(
                ledger.expire(now, 2, RetryIds::NewEnvelopeId, &mut new_id),
                if round < 2 { (1, 0) } else { (0, 1) }
            );
        }
        assert!(ledger.next_queued().is_none());
        let record = ledger.record("r2").unwrap_or_else(|| panic!("kept"));
        assert!(record.given_up);
        assert_eq!(record.envelope_ids, vec!["e1", "r1", "r2"]);
        assert_eq!(record.connections, vec![0, 1, 2]);
        // A late ack still counts.
        assert_eq!(ledger.ack("e1", None), AckOutcome::First);
    }

    #[test]
    fn ack_while_requeued_is_not_resent() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        ledger.push(EnvelopeSpec::interactive("cb"), "e1".into(), 10);
        send_front(&mut ledger, 0, now);
        ledger.expire(now, 3, RetryIds::SameEnvelopeId, String::new);
        assert_eq!(ledger.ack("e1", None), AckOutcome::First);
        assert!(ledger.next_queued().is_none());
    }

    #[test]
    fn bounded() {
        let mut ledger = Ledger::default();
        let later = Instant::now() + Duration::from_secs(60);
        assert!(
            ledger
                .push(EnvelopeSpec::interactive("a"), "a".into(), 1)
                .is_some()
        );
        assert!(
            ledger
                .push(EnvelopeSpec::interactive("b"), "b".into(), 1)
                .is_none()
        );
        for i in 0..10 {
            let id = format!("k{i}");
            ledger.ack("a", None);
            ledger.push(EnvelopeSpec::interactive("x"), id.clone(), 1);
            send_front(&mut ledger, 0, later);
            ledger.ack(&id, None);
            ledger.trim(4);
        }
        assert_eq!(ledger.records().len(), 4);
    }
}
