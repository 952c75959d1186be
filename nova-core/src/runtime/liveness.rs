//! Noticing a dead peer: the WebSocket ping with its pong deadline, and the silence of the
//! platform's own heartbeat. Sans-IO: it is told when frames arrive and when its timer fires, and
//! answers what to do; the session sends the ping and ends the connection.
//!
//! - **Ping**: after `heartbeat_interval` without any frame read, a ping goes out; when nothing at
//!   all is read within `pong_timeout` after it, the peer is dead. Any frame counts as life, not
//!   only the pong: a busy connection never pings.
//! - **Platform heartbeat**: when the handler configures one, it is sent every interval; when no
//!   heartbeat message has been seen for two intervals plus `pong_timeout`, the peer is dead.

use std::time::Duration;

use tokio::time::Instant;

/// What the ping timer asks for when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PingStep {
    /// Nothing to do yet; sleep until [`Liveness::ping_at`].
    Wait,
    /// Send a ping now (the pong deadline has started).
    SendPing,
    /// No answer before the deadline: the peer is gone.
    Dead,
}

/// The liveness of one open connection.
#[derive(Debug)]
pub(crate) struct Liveness {
    ping_every: Option<Duration>,
    pong_timeout: Duration,
    last_rx: Instant,
    awaiting_pong: Option<Instant>,
    ping_at: Instant,
    platform_every: Option<Duration>,
    last_platform_beat: Instant,
}

impl Liveness {
    /// A connection opened at `now`.
    pub(crate) fn new(
        ping_every: Option<Duration>,
        pong_timeout: Duration,
        platform_every: Option<Duration>,
        now: Instant,
    ) -> Self {
        Self {
            ping_every,
            pong_timeout,
            last_rx: now,
            awaiting_pong: None,
            ping_at: ping_every.map_or_else(|| far_future(now), |every| now + every),
            platform_every,
            last_platform_beat: now,
        }
    }

    /// Whether the WebSocket ping runs at all.
    pub(crate) fn pings(&self) -> bool {
        self.ping_every.is_some()
    }

    /// When the ping timer should fire next.
    pub(crate) fn ping_at(&self) -> Instant {
        self.ping_at
    }

    /// The platform heartbeat's interval, if the handler configured one.
    pub(crate) fn platform_every(&self) -> Option<Duration> {
        self.platform_every
    }

    /// A frame was read at `now`. For a pong answering our ping, returns the round trip.
    pub(crate) fn on_read(&mut self, now: Instant, is_pong: bool) -> Option<Duration> {
        self.last_rx = now;
        match (is_pong, self.awaiting_pong) {
            (true, Some(sent)) => Some(now.saturating_duration_since(sent)),
            _ => None,
        }
    }

    /// The ping timer fired at `now`.
    pub(crate) fn on_ping_timer(&mut self, now: Instant) -> PingStep {
        let Some(every) = self.ping_every else {
            self.ping_at = far_future(now);
            return PingStep::Wait;
        };
        if let Some(sent) = self.awaiting_pong {
            if self.last_rx >= sent {
                self.awaiting_pong = None;
            } else if now >= sent + self.pong_timeout {
                return PingStep::Dead;
            } else {
                self.ping_at = sent + self.pong_timeout;
                return PingStep::Wait;
            }
        }
        if now >= self.last_rx + every {
            self.awaiting_pong = Some(now);
            self.ping_at = now + self.pong_timeout;
            PingStep::SendPing
        } else {
            self.ping_at = self.last_rx + every;
            PingStep::Wait
        }
    }

    /// How long nothing was read, at `now` (for logs).
    pub(crate) fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_rx)
    }

    /// A platform heartbeat message was seen at `now`.
    pub(crate) fn on_platform_beat(&mut self, now: Instant) {
        self.last_platform_beat = now;
    }

    /// `Some(silence)` when the platform's heartbeats stopped for too long at `now`.
    pub(crate) fn platform_silence(&self, now: Instant) -> Option<Duration> {
        let every = self.platform_every?;
        let silent = now.saturating_duration_since(self.last_platform_beat);
        (silent > every * 2 + self.pong_timeout).then_some(silent)
    }
}

/// A year ahead: "never" for a timer that must exist.
pub(crate) fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_busy_connection_never_pings() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), 5 * S, None, t0);
        assert_eq!(l.ping_at(), t0 + 10 * S);
        l.on_read(t0 + 9 * S, false);
        assert_eq!(l.on_ping_timer(t0 + 10 * S), PingStep::Wait);
        assert_eq!(
            l.ping_at(),
            t0 + 19 * S,
            "re-armed from the last frame read"
        );
    }

    #[test]
    fn an_idle_connection_pings_then_dies_without_an_answer() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), 5 * S, None, t0);
        assert_eq!(l.on_ping_timer(t0 + 10 * S), PingStep::SendPing);
        assert_eq!(l.ping_at(), t0 + 15 * S);
        assert_eq!(l.on_ping_timer(t0 + 12 * S), PingStep::Wait);
        assert_eq!(l.on_ping_timer(t0 + 15 * S), PingStep::Dead);
    }

    #[test]
    fn any_frame_after_the_ping_is_an_answer() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), 5 * S, None, t0);
        assert_eq!(l.on_ping_timer(t0 + 10 * S), PingStep::SendPing);
        assert_eq!(l.on_read(t0 + 11 * S, false), None);
        assert_eq!(l.on_ping_timer(t0 + 15 * S), PingStep::Wait);
        assert_eq!(l.ping_at(), t0 + 21 * S);
    }

    #[test]
    fn a_pong_reports_the_round_trip() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Some(10 * S), 5 * S, None, t0);
        assert_eq!(l.on_read(t0 + S, true), None, "no ping was sent");
        assert_eq!(l.on_ping_timer(t0 + 11 * S), PingStep::SendPing);
        let rtt = l.on_read(t0 + 11 * S + Duration::from_millis(3), true);
        assert_eq!(rtt, Some(Duration::from_millis(3)));
    }

    #[test]
    fn without_an_interval_the_timer_never_asks_for_anything() {
        let t0 = Instant::now();
        let mut l = Liveness::new(None, 5 * S, None, t0);
        assert!(!l.pings());
        assert_eq!(l.on_ping_timer(t0 + 1000 * S), PingStep::Wait);
        assert!(l.ping_at() > t0 + 86_000 * S);
    }

    #[test]
    fn platform_silence_is_two_intervals_plus_the_pong_timeout() {
        let t0 = Instant::now();
        let mut l = Liveness::new(None, 5 * S, Some(20 * S), t0);
        assert_eq!(l.platform_silence(t0 + 45 * S), None);
        assert_eq!(l.platform_silence(t0 + 46 * S), Some(46 * S));
        l.on_platform_beat(t0 + 40 * S);
        assert_eq!(l.platform_silence(t0 + 46 * S), None);
        assert_eq!(
            Liveness::new(None, S, None, t0).platform_silence(t0 + 1000 * S),
            None
        );
    }
}
