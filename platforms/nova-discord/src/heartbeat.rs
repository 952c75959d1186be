//! Heartbeat timing as a sans-IO state machine: it is given `Instant`s and says what to do;
//! the runtime owns the timer and the socket.
//!
//! After Hello, the first beat is due at `interval × jitter` (jitter in `[0, 1]`, from the
//! caller's random source), then every `interval`. When a beat is due and the previous beat has
//! had no ACK (op 11), the connection is a zombie: close it with a non-1000 code and resume
//! (`shared/PROTOCOLS.md` 3.3). A server request (op 1) is answered at once, without moving the
//! schedule. Each ACK gives a round-trip latency.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nova_discord::{Heartbeat, HeartbeatAction};
//!
//! let start = Instant::now();
//! let interval = Duration::from_millis(41_250);
//! let mut hb = Heartbeat::new(interval, start, 0.5);
//! assert_eq!(hb.poll(start), None);
//! let first = hb.deadline();
//! assert_eq!(first, start + interval / 2);
//! assert_eq!(hb.poll(first), Some(HeartbeatAction::Send));
//! hb.on_ack(first + Duration::from_millis(40));
//! assert_eq!(hb.latency(), Some(Duration::from_millis(40)));
//! // Next beat one interval later; this one is never ACKed...
//! assert_eq!(hb.poll(first + interval), Some(HeartbeatAction::Send));
//! // ...so the one after finds a zombie.
//! assert_eq!(hb.poll(first + interval * 2), Some(HeartbeatAction::Zombie));
//! ```

use std::time::{Duration, Instant};

/// What the runtime should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatAction {
    /// Send a heartbeat (op 1 with the last sequence number).
    Send,
    /// The last heartbeat was never ACKed: close (not 1000/1001) and resume.
    Zombie,
}

/// One connection's heartbeat schedule.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    interval: Duration,
    next_beat: Instant,
    /// When the oldest un-ACKed heartbeat went out.
    awaiting_ack: Option<Instant>,
    latency: Option<Duration>,
    sent: u64,
    acked: u64,
}

impl Heartbeat {
    /// The schedule after a Hello with `interval` received at `now`; `jitter` is clamped to
    /// `[0, 1]` (a non-finite one counts as 1).
    #[must_use]
    pub fn new(interval: Duration, now: Instant, jitter: f64) -> Self {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        Self {
            interval,
            next_beat: now + interval.mul_f64(jitter),
            awaiting_ack: None,
            latency: None,
            sent: 0,
            acked: 0,
        }
    }

    /// The interval.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When [`poll`](Self::poll) next has something to say.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.next_beat
    }

    /// At `now`: `Send` when a beat is due (and records it as sent), `Zombie` when a beat is
    /// due while the previous one is un-ACKed, `None` otherwise.
    pub fn poll(&mut self, now: Instant) -> Option<HeartbeatAction> {
        if now < self.next_beat {
            return None;
        }
        if self.awaiting_ack.is_some() {
            return Some(HeartbeatAction::Zombie);
        }
        self.next_beat += self.interval;
        if self.next_beat <= now {
            // The runtime fell behind by more than an interval: do not burst.
            self.next_beat = now + self.interval;
        }
        self.record_sent(now);
        Some(HeartbeatAction::Send)
    }

    /// The server asked for a heartbeat (op 1): send one now. The schedule does not move.
    pub fn on_request(&mut self, now: Instant) -> HeartbeatAction {
        self.record_sent(now);
        HeartbeatAction::Send
    }

    /// An ACK (op 11) arrived at `now`; returns the round trip of the beat it answers.
    pub fn on_ack(&mut self, now: Instant) -> Option<Duration> {
        let sent = self.awaiting_ack.take()?;
        self.acked += 1;
        let latency = now.saturating_duration_since(sent);
        self.latency = Some(latency);
        Some(latency)
    }

    /// The last measured round trip.
    #[must_use]
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Heartbeats sent and ACKs received on this connection.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.sent, self.acked)
    }

    fn record_sent(&mut self, now: Instant) {
        self.sent += 1;
        if self.awaiting_ack.is_none() {
            self.awaiting_ack = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(10);

    #[test]
    fn jitter_bounds() {
        let now = Instant::now();
        assert_eq!(Heartbeat::new(INTERVAL, now, 0.0).deadline(), now);
        assert_eq!(
            Heartbeat::new(INTERVAL, now, 1.0).deadline(),
            now + INTERVAL
        );
        assert_eq!(
            Heartbeat::new(INTERVAL, now, 7.0).deadline(),
            now + INTERVAL
        );
        assert_eq!(Heartbeat::new(INTERVAL, now, -1.0).deadline(), now);
        assert_eq!(
            Heartbeat::new(INTERVAL, now, f64::NAN).deadline(),
            now + INTERVAL
        );
    }

    #[test]
    fn acked_beats_go_on_forever() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(INTERVAL, start, 0.0);
        for n in 0..100u32 {
            let at = start + INTERVAL * n;
            assert_eq!(hb.poll(at), Some(HeartbeatAction::Send));
            assert_eq!(hb.poll(at), None, "one beat per interval");
            assert!(hb.on_ack(at + Duration::from_millis(5)).is_some());
        }
        assert_eq!(hb.counts(), (100, 100));
    }

    #[test]
    fn a_missing_ack_is_a_zombie_at_the_next_beat() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(INTERVAL, start, 0.0);
        assert_eq!(hb.poll(start), Some(HeartbeatAction::Send));
        assert_eq!(hb.poll(start + INTERVAL - Duration::from_millis(1)), None);
        assert_eq!(hb.poll(start + INTERVAL), Some(HeartbeatAction::Zombie));
        // A late ACK clears it.
        assert!(hb.on_ack(start + INTERVAL).is_some());
        assert_eq!(hb.poll(start + INTERVAL), Some(HeartbeatAction::Send));
    }

    #[test]
    fn server_requests_do_not_move_the_schedule() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(INTERVAL, start, 0.5);
        let first = hb.deadline();
        assert_eq!(hb.on_request(start), HeartbeatAction::Send);
        assert_eq!(hb.deadline(), first);
        assert!(hb.on_ack(start + Duration::from_millis(3)).is_some());
        assert_eq!(hb.poll(first), Some(HeartbeatAction::Send));
        assert_eq!(hb.on_ack(first), Some(Duration::ZERO));
        // An ACK nobody asked for is ignored.
        assert_eq!(hb.on_ack(first), None);
    }

    #[test]
    fn a_stalled_runtime_does_not_burst() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(INTERVAL, start, 0.0);
        assert_eq!(hb.poll(start), Some(HeartbeatAction::Send));
        hb.on_ack(start);
        let late = start + INTERVAL * 5;
        assert_eq!(hb.poll(late), Some(HeartbeatAction::Send));
        hb.on_ack(late);
        assert_eq!(hb.poll(late), None);
        assert_eq!(hb.deadline(), late + INTERVAL);
    }
}
