//! The invariants of one sequenced subscription stream, checked on every event the application
//! sees: nothing repeated, nothing lost without a gap reported first, every gap closed (the
//! closing snapshot announced by `GapClosed`) or reported as not closable.
//!
//! The rules, for books numbered like Deribit's (`change_id` after `prev_change_id`) and Bybit's
//! (`u`, each delta the last plus one):
//! - a snapshot starts the sequence afresh; if a `GapClosed { value }` came before it, its value
//!   must be the snapshot's;
//! - a delta must claim the last value delivered as its predecessor: a smaller value is a
//!   duplicate or a reordering, a larger one a hole nobody reported;
//! - after `Gap`, `Stale` or `Restored`, the next data must be a snapshot (the runtime drops what
//!   is left of the old stream), and the gap is open until that snapshot, which a `GapClosed`
//!   must announce, or until `GapNotClosed`;
//! - `Lagged` never appears: the soak's clients use `OverflowPolicy::Wait`.

use std::time::Duration;

use nova_core::SubscriptionEvent;
use tokio::time::Instant;

/// The sequence position of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// Its value.
    pub(crate) value: u64,
    /// The value it claims to follow; `None` for a snapshot.
    pub(crate) prev: Option<u64>,
}

/// What one stream showed, and what was wrong with it.
#[derive(Debug, Default)]
pub(crate) struct StreamCheck {
    last: Option<u64>,
    expect_snapshot: bool,
    /// Since when a gap has been open (reported, not yet closed).
    open_since: Option<Instant>,
    /// What the last `GapClosed` announced, until its snapshot.
    closing: Option<u64>,
    /// Data messages checked.
    pub(crate) checked: u64,
    /// Gaps reported (`Gap`; `Stale` too).
    pub(crate) gaps: u64,
    /// Gaps opened while none was open: a gap reported while another is still open (a
    /// reconnect while a resubscribe is under way) is closed by the same snapshot.
    pub(crate) episodes: u64,
    /// Gaps closed (`GapClosed`).
    pub(crate) closed: u64,
    /// Gaps reported as not closable (`GapNotClosed`).
    pub(crate) unclosable: u64,
    /// Restores after reconnects.
    pub(crate) restored: u64,
    /// Violations, described.
    pub(crate) violations: Vec<String>,
}

/// How long a gap may stay open before the checker calls it unclosed.
pub(crate) const GAP_DEADLINE: Duration = Duration::from_secs(60);

impl StreamCheck {
    /// A stream that has delivered nothing yet: the first data must be a snapshot.
    pub(crate) fn new() -> Self {
        Self {
            expect_snapshot: true,
            ..Self::default()
        }
    }

    pub(crate) fn violation(&mut self, what: String) {
        // Bounded: the first violations tell the story.
        if self.violations.len() < 20 {
            self.violations.push(what);
        }
    }

    fn open_gap(&mut self, now: Instant) {
        self.expect_snapshot = true;
        if self.open_since.is_none() {
            self.episodes += 1;
            self.open_since = Some(now);
        }
    }

    /// Checks a data message at `position` (`None`: not a data message of this channel).
    pub(crate) fn data(&mut self, position: Option<Position>, now: Instant) {
        let Some(p) = position else {
            self.violation("a message that is not book data".to_owned());
            return;
        };
        self.checked += 1;
        match p.prev {
            None => {
                if let Some(announced) = self.closing.take() {
                    if announced != p.value {
                        self.violation(format!(
                            "GapClosed announced {announced}, the snapshot is {}",
                            p.value
                        ));
                    }
                } else if self.open_since.is_some() {
                    self.violation(format!(
                        "a gap was closed by the snapshot at {} without GapClosed",
                        p.value
                    ));
                }
                self.open_since = None;
                self.expect_snapshot = false;
                self.last = Some(p.value);
            }
            Some(prev) => {
                if self.expect_snapshot {
                    self.violation(format!(
                        "delta {} (after {prev}) before the snapshot that closes the gap",
                        p.value
                    ));
                } else if self.last.is_some() && self.last != Some(prev) {
                    // (No last value: after `GapNotClosed` delivery starts afresh.)
                    let what = match self.last {
                        Some(last) if p.value <= last => "repeated or reordered",
                        _ => "lost without a gap reported",
                    };
                    self.violation(format!(
                        "{what}: delta {} claims {prev}, the last delivered is {:?}",
                        p.value, self.last
                    ));
                }
                self.last = Some(p.value);
            }
        }
        let _ = now;
    }

    /// Checks any other event of the stream.
    pub(crate) fn event(&mut self, event: &SubscriptionEvent, now: Instant) {
        match event {
            SubscriptionEvent::Message(_) => {}
            SubscriptionEvent::Gap { .. } => {
                self.gaps += 1;
                self.open_gap(now);
            }
            SubscriptionEvent::Stale { .. } => {
                self.gaps += 1;
                self.open_gap(now);
            }
            SubscriptionEvent::Restored => {
                self.restored += 1;
                self.expect_snapshot = true;
            }
            SubscriptionEvent::GapClosed { value } => {
                self.closed += 1;
                self.closing = Some(*value);
            }
            SubscriptionEvent::GapNotClosed { reason } => {
                self.unclosable += 1;
                self.open_since = None;
                self.closing = None;
                // Delivery goes on from whatever comes next.
                self.expect_snapshot = false;
                self.last = None;
                let _ = reason;
            }
            SubscriptionEvent::Lagged(n) => {
                self.violation(format!("Lagged({n}) under OverflowPolicy::Wait"));
            }
            other => {
                let _ = other;
            }
        }
    }

    /// A violation if a gap has been open longer than [`GAP_DEADLINE`] at `now`.
    pub(crate) fn check_deadline(&mut self, now: Instant, deadline: Duration) {
        if let Some(since) = self.open_since {
            if now.saturating_duration_since(since) > deadline {
                self.violation(format!(
                    "a gap open for {:.0} s, neither closed nor reported unclosable",
                    now.saturating_duration_since(since).as_secs_f64()
                ));
                // Reported once.
                self.open_since = None;
            }
        }
    }

    /// Whether a gap is open now.
    pub(crate) fn gap_open(&self) -> bool {
        self.open_since.is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nova_core::Gap;

    fn snap(v: u64) -> Option<Position> {
        Some(Position {
            value: v,
            prev: None,
        })
    }
    fn delta(v: u64, p: u64) -> Option<Position> {
        Some(Position {
            value: v,
            prev: Some(p),
        })
    }
    fn gap() -> SubscriptionEvent {
        SubscriptionEvent::Gap {
            gap: Gap::in_stream(Some(1), 3, Some(2)),
            action: "resubscribe",
        }
    }

    #[test]
    fn a_clean_stream_and_a_closed_gap_pass() {
        let now = Instant::now();
        let mut c = StreamCheck::new();
        c.data(snap(10), now);
        c.data(delta(11, 10), now);
        c.event(&gap(), now);
        c.event(&SubscriptionEvent::GapClosed { value: 20 }, now);
        c.data(snap(20), now);
        c.data(delta(21, 20), now);
        c.event(&SubscriptionEvent::Restored, now);
        c.event(&gap(), now);
        c.event(&SubscriptionEvent::GapClosed { value: 30 }, now);
        c.data(snap(30), now);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        assert_eq!((c.checked, c.gaps, c.closed, c.restored), (5, 2, 2, 1));
        assert!(!c.gap_open());
    }

    #[test]
    fn a_duplicate_is_caught() {
        let now = Instant::now();
        let mut c = StreamCheck::new();
        c.data(snap(10), now);
        c.data(delta(11, 10), now);
        c.data(delta(11, 10), now);
        assert_eq!(c.violations.len(), 1);
        assert!(
            c.violations[0].starts_with("repeated"),
            "{:?}",
            c.violations
        );
    }

    #[test]
    fn a_hole_without_a_gap_is_caught() {
        let now = Instant::now();
        let mut c = StreamCheck::new();
        c.data(snap(10), now);
        c.data(delta(13, 12), now);
        assert!(c.violations[0].starts_with("lost"), "{:?}", c.violations);
    }

    #[test]
    fn old_data_after_a_gap_and_a_wrong_snapshot_are_caught() {
        let now = Instant::now();
        let mut c = StreamCheck::new();
        c.data(snap(1), now);
        c.event(&gap(), now);
        c.data(delta(2, 1), now);
        c.event(&SubscriptionEvent::GapClosed { value: 5 }, now);
        c.data(snap(6), now);
        assert_eq!(c.violations.len(), 2, "{:?}", c.violations);
    }

    #[test]
    fn a_gap_left_open_is_caught_and_an_unclosable_one_is_not() {
        let start = Instant::now();
        let mut c = StreamCheck::new();
        c.data(snap(1), start);
        c.event(&gap(), start);
        c.check_deadline(start + Duration::from_secs(5), GAP_DEADLINE);
        assert!(c.violations.is_empty());
        c.check_deadline(start + Duration::from_secs(61), GAP_DEADLINE);
        assert_eq!(c.violations.len(), 1);
        let mut c = StreamCheck::new();
        c.data(snap(1), start);
        c.event(&gap(), start);
        c.event(
            &SubscriptionEvent::GapNotClosed { reason: "x".into() },
            start,
        );
        c.data(delta(9, 8), start);
        c.check_deadline(start + Duration::from_secs(61), GAP_DEADLINE);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        assert_eq!(c.unclosable, 1);
    }

    #[test]
    fn lagged_under_wait_is_a_violation() {
        let mut c = StreamCheck::new();
        c.event(&SubscriptionEvent::Lagged(3), Instant::now());
        assert_eq!(c.violations.len(), 1);
    }
}
