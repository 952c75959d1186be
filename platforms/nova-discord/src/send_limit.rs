//! The gateway's send limit: 120 payloads per connection every 60 s; one more and Discord closes
//! the connection with 4008 (`shared/PROTOCOLS.md` 3.7).
//!
//! [`SendLimiter`] keeps a rolling window of the instants payloads were written on the current
//! connection, **every** write counted: the application's and those the adapter must send (Identify
//! or Resume, heartbeats, answers to the server's heartbeat requests), which the runtime never
//! holds back. So that those can never be starved, the application gets the limit minus a
//! **reserve**:
//!
//! ```text
//! reserve = ceil(window / heartbeat_interval)   the scheduled beats of one window
//!         + 1                                   a beat moved by a late timer
//!         + 1                                   Identify or Resume
//!         + 2                                   the server's heartbeat requests (op 1)
//! ```
//!
//! With Discord's 41.25 s interval that is 2 + 4 = 6, leaving the application 114 per window.
//! Before Hello the interval is unknown and the reserve assumes one beat (the application sends
//! nothing before READY anyway). The window the application is held to is also a little longer
//! than the server's ([`WINDOW_MARGIN_DIVISOR`]: 2 %, 1.2 s of 60 s), so that payloads written back
//! to back cannot reach the server closer together than the client counted them.
//!
//! A heartbeat interval so short that the beats alone fill the window leaves nothing for the
//! application (Discord would close such a connection whatever the client does).
//!
//! Sans-IO: it takes `Instant`s. The log keeps at most `limit` instants (what the decision needs).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nova_discord::SendLimiter;
//!
//! let mut limiter = SendLimiter::new(120, Duration::from_secs(60));
//! limiter.set_heartbeat_interval(Duration::from_millis(41_250));
//! assert_eq!(limiter.reserve(), 6);
//! let t0 = Instant::now();
//! for _ in 0..limiter.application_limit() {
//!     assert_eq!(limiter.check(t0), None);
//!     limiter.record(t0);
//! }
//! // The window is full for the application; heartbeats still go (recorded, never checked).
//! assert!(limiter.check(t0).is_some());
//! limiter.record(t0);
//! assert_eq!(limiter.sent_in_window(t0), 115);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Payloads Discord allows per connection per [`SEND_WINDOW`].
pub const SEND_LIMIT: u32 = 120;
/// The window of [`SEND_LIMIT`].
pub const SEND_WINDOW: Duration = Duration::from_secs(60);
/// The application's window is the server's plus `window / WINDOW_MARGIN_DIVISOR`.
pub const WINDOW_MARGIN_DIVISOR: u32 = 50;

/// Reserved beyond the scheduled heartbeats: a late beat, Identify or Resume, two server
/// heartbeat requests.
const RESERVE_BEYOND_BEATS: u32 = 4;

/// One connection's send window (see the module docs).
#[derive(Clone, Debug)]
pub struct SendLimiter {
    limit: u32,
    window: Duration,
    reserve: u32,
    /// When the most recent writes (at most `limit`) went out, oldest first.
    sent: VecDeque<Instant>,
}

impl SendLimiter {
    /// A limiter for `limit` payloads per `window` (Discord: [`SEND_LIMIT`] per
    /// [`SEND_WINDOW`]); the reserve assumes one heartbeat until
    /// [`set_heartbeat_interval`](Self::set_heartbeat_interval).
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            reserve: 1 + RESERVE_BEYOND_BEATS,
            sent: VecDeque::new(),
        }
    }

    /// Hello's interval: the reserve becomes the beats of one window plus the spare.
    pub fn set_heartbeat_interval(&mut self, interval: Duration) {
        let beats = if interval.is_zero() {
            self.limit
        } else {
            let per_window = self.window.as_secs_f64() / interval.as_secs_f64();
            // Saturating float-to-int cast: a tiny interval gives a huge count, capped below.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ceil = per_window.ceil() as u32;
            ceil
        };
        self.reserve = beats.saturating_add(RESERVE_BEYOND_BEATS);
    }

    /// Payloads held back for what the adapter must send.
    #[must_use]
    pub fn reserve(&self) -> u32 {
        self.reserve
    }

    /// Payloads the application may send per window: the limit minus the reserve.
    #[must_use]
    pub fn application_limit(&self) -> u32 {
        self.limit.saturating_sub(self.reserve)
    }

    /// The window the application is held to: the server's plus the margin.
    #[must_use]
    pub fn application_window(&self) -> Duration {
        self.window + self.window / WINDOW_MARGIN_DIVISOR
    }

    /// `None` when the application may send one payload at `now`; otherwise how long until it
    /// may.
    pub fn check(&mut self, now: Instant) -> Option<Duration> {
        let window = self.application_window();
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.sent.pop_front();
        }
        let allowed = usize::try_from(self.application_limit()).unwrap_or(usize::MAX);
        if self.sent.len() < allowed {
            return None;
        }
        if allowed == 0 {
            return Some(window);
        }
        // The application's next slot opens when the `allowed`-th most recent write leaves.
        let oldest_that_matters = self.sent[self.sent.len() - allowed];
        Some((oldest_that_matters + window).saturating_duration_since(now))
    }

    /// A payload was written at `now` (the application's or the adapter's).
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
        let keep = usize::try_from(self.limit.max(1)).unwrap_or(usize::MAX);
        while self.sent.len() > keep {
            self.sent.pop_front();
        }
    }

    /// Payloads written within the server's window before `now` (at most the limit).
    #[must_use]
    pub fn sent_in_window(&self, now: Instant) -> u32 {
        let n = self
            .sent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.window)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// A new connection: nothing sent on it yet (the interval comes with its Hello).
    pub fn reset(&mut self) {
        self.sent.clear();
        self.reserve = 1 + RESERVE_BEYOND_BEATS;
    }
}

impl Default for SendLimiter {
    /// Discord's limit: [`SEND_LIMIT`] per [`SEND_WINDOW`].
    fn default() -> Self {
        Self::new(SEND_LIMIT, SEND_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_reserve_follows_the_heartbeat_interval() {
        let mut l = SendLimiter::default();
        assert_eq!(l.reserve(), 5, "one beat assumed before Hello");
        l.set_heartbeat_interval(Duration::from_millis(41_250));
        assert_eq!((l.reserve(), l.application_limit()), (6, 114));
        l.set_heartbeat_interval(Duration::from_secs(60));
        assert_eq!(l.reserve(), 5);
        l.set_heartbeat_interval(Duration::from_secs(1));
        assert_eq!((l.reserve(), l.application_limit()), (64, 56));
        l.set_heartbeat_interval(Duration::from_millis(100));
        assert_eq!(l.application_limit(), 0, "beats alone fill the window");
        l.set_heartbeat_interval(Duration::ZERO);
        assert_eq!(l.application_limit(), 0);
        assert_eq!(l.application_window(), Duration::from_millis(61_200));
    }

    #[test]
    fn the_application_waits_for_the_oldest_write_that_matters() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(10, 10 * S);
        l.set_heartbeat_interval(10 * S); // reserve 5, application 5
        for i in 0..5 {
            let at = t0 + S * i;
            assert_eq!(l.check(at), None, "send {i}");
            l.record(at);
        }
        let window = l.application_window();
        assert_eq!(l.check(t0 + 5 * S), Some(window - 5 * S));
        // A heartbeat (recorded, never held) takes a slot too: the application's next one opens
        // when the second write leaves.
        l.record(t0 + 6 * S);
        assert_eq!(l.check(t0 + 7 * S), Some(window + S - 7 * S));
        assert_eq!(l.check(t0 + window + S), None);
        assert_eq!(l.sent_in_window(t0 + 10 * S), 4, "t0 + 2, 3, 4 and 6 s");
    }

    #[test]
    fn adapter_writes_beyond_the_application_limit_are_counted_and_bounded() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(10, 10 * S);
        for _ in 0..1000 {
            l.record(t0);
        }
        assert_eq!(l.sent_in_window(t0), 10, "the log keeps at most the limit");
        assert!(l.check(t0).is_some());
        assert_eq!(l.check(t0 + l.application_window()), None);
    }

    #[test]
    fn a_new_connection_starts_empty() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(10, 10 * S);
        l.set_heartbeat_interval(S);
        for _ in 0..10 {
            l.record(t0);
        }
        l.reset();
        assert_eq!(l.sent_in_window(t0), 0);
        assert_eq!(l.reserve(), 5);
        assert_eq!(l.check(t0), None);
    }

    #[test]
    fn nothing_for_the_application_means_waiting_a_window() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(4, 10 * S);
        assert_eq!(l.application_limit(), 0);
        assert_eq!(l.check(t0), Some(l.application_window()));
    }
}
