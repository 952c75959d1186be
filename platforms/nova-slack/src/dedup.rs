//! De-duplication of envelopes across redeliveries, reconnects, handovers and parallel
//! connections: has this been handled before?
//!
//! Slack redelivers an envelope that was not acked in time (with `retry_attempt + 1`), and with
//! several connections open, or two overlapping during a handover, the same event may arrive
//! twice. Two keys tell: the `envelope_id` (the same envelope again) and, for `events_api`, the
//! payload's `event_id` (the same event, even under a new envelope id). An envelope is a
//! duplicate when either key was seen.
//!
//! Memory is bounded: each key kind keeps at most `capacity` ids, oldest forgotten first (a
//! FIFO window; an id seen again is not refreshed, because a duplicate arrives after its
//! original and the original's age is what matters). An id costs about 120 bytes (the string,
//! its `Arc`, one map slot and one queue slot), so the default window of
//! [`DEFAULT_CAPACITY`](DedupWindow::DEFAULT_CAPACITY) = 4096 ids per kind holds about 1 MiB at
//! most. Slack retries an unacked event within minutes (the HTTP Events API's schedule is
//! immediately, after 1 minute and after 5 minutes); 4096 events cover that schedule for an app
//! receiving up to about 13 events a second. Size it up for busier apps.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::Envelope;

/// Whether an envelope is new or was seen before, and by which key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Not seen: hand it to the application.
    New,
    /// Seen: acknowledge it, do not hand it to the application again.
    Duplicate(DuplicateBy),
}

impl Verdict {
    /// Whether it is new.
    #[must_use]
    pub fn is_new(self) -> bool {
        self == Verdict::New
    }
}

/// The key that recognized a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DuplicateBy {
    /// The same `envelope_id` was seen.
    EnvelopeId,
    /// The same `event_id` was seen under another envelope id.
    EventId,
}

/// A bounded set of ids in arrival order.
#[derive(Debug)]
struct Window {
    capacity: usize,
    /// id → its generation (so a forgotten and re-seen id is evicted by its newest entry only).
    ids: HashMap<Arc<str>, u64>,
    order: VecDeque<(Arc<str>, u64)>,
    next: u64,
}

impl Window {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ids: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    fn insert(&mut self, id: &str) {
        if self.contains(id) {
            return;
        }
        let id: Arc<str> = Arc::from(id);
        let generation = self.next;
        self.next += 1;
        self.ids.insert(Arc::clone(&id), generation);
        self.order.push_back((id, generation));
        while self.order.len() > self.capacity {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self.ids.get(&old) == Some(&generation) {
                self.ids.remove(&old);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        // Its queue entry stays until it falls out; its generation no longer matches.
        self.ids.remove(id);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The de-duplication window of one app (share one across all its connections).
///
/// ```
/// use nova_slack::{DedupWindow, DuplicateBy, Inbound, Verdict};
///
/// let envelope = |id: &str, event: &str| {
///     let text = format!(r#"{{"type":"events_api","envelope_id":"{id}","payload":{{"event_id":"{event}"}}}}"#);
///     match Inbound::parse(&text) { Ok(Inbound::Envelope(e)) => e, _ => unreachable!() }
/// };
/// let mut window = DedupWindow::default();
/// assert_eq!(window.observe(&envelope("e1", "Ev1")), Verdict::New);
/// assert_eq!(window.observe(&envelope("e1", "Ev1")), Verdict::Duplicate(DuplicateBy::EnvelopeId));
/// assert_eq!(window.observe(&envelope("e2", "Ev1")), Verdict::Duplicate(DuplicateBy::EventId));
/// assert_eq!(window.observe(&envelope("e3", "Ev2")), Verdict::New);
/// ```
#[derive(Debug)]
pub struct DedupWindow {
    envelopes: Window,
    events: Window,
}

impl Default for DedupWindow {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl DedupWindow {
    /// The default number of ids remembered per key kind.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A window remembering the last `capacity` envelope ids and the last `capacity` event ids
    /// (at least one of each).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            envelopes: Window::new(capacity),
            events: Window::new(capacity),
        }
    }

    /// Whether `envelope` was seen, without recording it.
    #[must_use]
    pub fn check(&self, envelope: &Envelope) -> Verdict {
        self.check_ids(&envelope.envelope_id, envelope.event_id.as_deref())
    }

    /// Whether the ids were seen, without recording them.
    #[must_use]
    pub fn check_ids(&self, envelope_id: &str, event_id: Option<&str>) -> Verdict {
        if self.envelopes.contains(envelope_id) {
            Verdict::Duplicate(DuplicateBy::EnvelopeId)
        } else if event_id.is_some_and(|e| self.events.contains(e)) {
            Verdict::Duplicate(DuplicateBy::EventId)
        } else {
            Verdict::New
        }
    }

    /// Checks `envelope` and records its ids: the first call for an envelope or event says
    /// [`Verdict::New`], every later one [`Verdict::Duplicate`]. A duplicate by event id also
    /// records its new envelope id, so that envelope's own redeliveries are caught by id.
    pub fn observe(&mut self, envelope: &Envelope) -> Verdict {
        self.observe_ids(&envelope.envelope_id, envelope.event_id.as_deref())
    }

    /// [`observe`](Self::observe) by ids.
    pub fn observe_ids(&mut self, envelope_id: &str, event_id: Option<&str>) -> Verdict {
        let verdict = self.check_ids(envelope_id, event_id);
        self.envelopes.insert(envelope_id);
        if let Some(event_id) = event_id {
            self.events.insert(event_id);
        }
        verdict
    }

    /// Forgets `envelope`'s ids, so a redelivery is handed to the application again (for an
    /// envelope whose handling failed and that was not acked).
    pub fn forget(&mut self, envelope: &Envelope) {
        self.envelopes.remove(&envelope.envelope_id);
        if let Some(event_id) = &envelope.event_id {
            self.events.remove(event_id);
        }
    }

    /// How many envelope ids and event ids are remembered now.
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        (self.envelopes.len(), self.events.len())
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// The number of ids remembered per key kind, at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.envelopes.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_envelope_id_and_by_event_id() {
        let mut w = DedupWindow::new(8);
        assert_eq!(w.observe_ids("e1", None), Verdict::New);
        assert_eq!(
            w.observe_ids("e1", None),
            Verdict::Duplicate(DuplicateBy::EnvelopeId)
        );
        assert_eq!(w.observe_ids("e2", Some("Ev1")), Verdict::New);
        assert_eq!(
            w.observe_ids("e3", Some("Ev1")),
            Verdict::Duplicate(DuplicateBy::EventId)
        );
        // e3 was recorded too: its own redelivery is caught by envelope id.
        assert_eq!(
            w.observe_ids("e3", Some("Ev1")),
            Verdict::Duplicate(DuplicateBy::EnvelopeId)
        );
        assert_eq!(w.check_ids("e9", Some("Ev9")), Verdict::New);
        assert_eq!(w.len(), (3, 1));
    }

    #[test]
    fn bounded_oldest_forgotten_first() {
        let mut w = DedupWindow::new(3);
        for i in 0..10 {
            assert!(
                w.observe_ids(&format!("e{i}"), Some(&format!("Ev{i}")))
                    .is_new()
            );
            assert!(w.len().0 <= 3 && w.len().1 <= 3);
        }
        assert_eq!(
            w.check_ids("e9", None),
            Verdict::Duplicate(DuplicateBy::EnvelopeId)
        );
        assert_eq!(
            w.check_ids("e7", None),
            Verdict::Duplicate(DuplicateBy::EnvelopeId)
        );
        assert!(w.check_ids("e6", Some("Ev6")).is_new());
        assert_eq!(w.envelopes.order.len(), 3);
    }

    #[test]
    fn forget_lets_a_redelivery_through_and_keeps_the_bound() {
        let mut w = DedupWindow::new(2);
        let e = match crate::Inbound::parse(
            r#"{"type":"events_api","envelope_id":"e1","payload":{"event_id":"Ev1"}}"#,
        ) {
            Ok(crate::Inbound::Envelope(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(w.observe(&e).is_new());
        w.forget(&e);
        assert!(w.check(&e).is_new());
        assert!(w.observe(&e).is_new());
        // The stale queue entry of the first sighting does not evict the new one early.
        assert!(w.observe_ids("e2", None).is_new());
        assert_eq!(w.check(&e), Verdict::Duplicate(DuplicateBy::EnvelopeId));
        assert!(w.envelopes.order.len() <= 2);
        assert_eq!(DedupWindow::new(0).capacity(), 1);
        assert!(DedupWindow::default().is_empty());
    }
}
