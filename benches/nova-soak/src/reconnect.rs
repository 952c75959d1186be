//! The reconnect policy, checked from a client's lifecycle events: every scheduled delay is at
//! least what the backoff allows for its attempt (`Backoff::min_delay`: the base delay less the
//! full jitter, or the floor), the attempt counter never resets before the connection was up
//! for the stable period, and the client never stops.
//!
//! The wall-clock side (no connect sooner than the delay) is measured from outside, by the
//! relay in front of each client ([`crate::relay::Relay::take_gaps`]): events reach their
//! consumer through a task that may be scheduled late, the relay's accept is not.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use nova_core::{Backoff, LifecycleEvent};

/// What one client's events showed.
#[derive(Debug)]
pub(crate) struct ReconnectCheck {
    backoff: Backoff,
    stable_after: Duration,
    /// The attempt the next `ReconnectScheduled` must carry, when known.
    expected: Option<u32>,
    /// Whether the last connection lasted the stable period (the counter may reset).
    may_reset: bool,
    /// Connect attempts (`Connecting`).
    pub(crate) attempts: u64,
    /// Connections opened.
    pub(crate) connected: u64,
    /// Reconnects scheduled.
    pub(crate) scheduled: u64,
    /// Events lost to a lagging receiver (the checker resynchronises).
    pub(crate) lagged: u64,
    /// Violations, described.
    pub(crate) violations: Vec<String>,
    /// The last events, for a report on a client that did not come back.
    pub(crate) recent: VecDeque<(Instant, String)>,
}

/// How many events [`ReconnectCheck::recent`] keeps.
const RECENT: usize = 24;

/// Slack on "the connection was up for the stable period": `uptime` and the runtime's own
/// timer are measured at slightly different moments.
const STABLE_SLACK: Duration = Duration::from_secs(1);

impl ReconnectCheck {
    /// A checker for a client with this policy.
    pub(crate) fn new(backoff: Backoff, stable_after: Duration) -> Self {
        Self {
            backoff,
            stable_after,
            expected: None,
            may_reset: false,
            attempts: 0,
            connected: 0,
            scheduled: 0,
            lagged: 0,
            violations: Vec::new(),
            recent: VecDeque::with_capacity(RECENT),
        }
    }

    fn violation(&mut self, what: String) {
        if self.violations.len() < 20 {
            self.violations.push(what);
        }
    }

    /// Events were lost: forget what was expected.
    pub(crate) fn lag(&mut self, n: u64) {
        self.lagged += n;
        self.expected = None;
    }

    /// Checks one event.
    pub(crate) fn event(&mut self, event: &LifecycleEvent) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent
            .push_back((Instant::now(), format!("{event:?}")));
        match event {
            LifecycleEvent::Connecting { .. } => self.attempts += 1,
            LifecycleEvent::Connected { .. } => self.connected += 1,
            LifecycleEvent::Disconnected { uptime, .. } => {
                self.may_reset = *uptime + STABLE_SLACK >= self.stable_after;
            }
            LifecycleEvent::ConnectFailed { .. } => self.may_reset = false,
            LifecycleEvent::ReconnectScheduled { attempt, delay } => {
                self.scheduled += 1;
                let min = self.backoff.min_delay(attempt.saturating_sub(1));
                if *delay < min {
                    self.violation(format!(
                        "attempt {attempt} scheduled after {delay:?}, the policy's minimum is {min:?}"
                    ));
                }
                if let Some(expected) = self.expected {
                    let reset_ok = self.may_reset && *attempt == 1;
                    if *attempt != expected && !reset_ok {
                        self.violation(format!(
                            "attempt {attempt} scheduled where {expected} was due (no stable period in between)"
                        ));
                    }
                }
                self.expected = Some(attempt.saturating_add(1));
                self.may_reset = false;
            }
            LifecycleEvent::Stopped { reason } => {
                self.violation(format!("the client stopped: {reason:?}"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nova_core::{DisconnectReason, ReconnectStrategy};

    fn checker() -> ReconnectCheck {
        let b = Backoff::new(
            ReconnectStrategy::Exponential,
            Duration::from_millis(250),
            Duration::from_secs(5),
        )
        .with_jitter(0.2);
        ReconnectCheck::new(b, Duration::from_secs(30))
    }

    fn down(uptime: u64) -> LifecycleEvent {
        LifecycleEvent::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout,
            uptime: Duration::from_secs(uptime),
        }
    }

    fn scheduled(attempt: u32, ms: u64) -> LifecycleEvent {
        LifecycleEvent::ReconnectScheduled {
            attempt,
            delay: Duration::from_millis(ms),
        }
    }

    #[test]
    fn delays_within_the_policy_pass() {
        let mut c = checker();
        c.event(&down(1));
        c.event(&scheduled(1, 200));
        c.event(&down(1));
        c.event(&scheduled(2, 450));
        c.event(&down(40));
        c.event(&scheduled(1, 240));
        assert!(c.violations.is_empty(), "{:?}", c.violations);
    }

    #[test]
    fn an_early_reconnect_is_caught() {
        let mut c = checker();
        c.event(&down(1));
        c.event(&scheduled(1, 199));
        c.event(&down(1));
        c.event(&scheduled(2, 300));
        assert_eq!(c.violations.len(), 2, "{:?}", c.violations);
    }

    #[test]
    fn a_counter_reset_without_a_stable_period_is_caught() {
        let mut c = checker();
        c.event(&down(1));
        c.event(&scheduled(1, 250));
        c.event(&down(2));
        c.event(&scheduled(1, 250));
        assert_eq!(c.violations.len(), 1, "{:?}", c.violations);
        // After lost events nothing is assumed.
        c.lag(3);
        c.event(&scheduled(1, 250));
        assert_eq!(c.violations.len(), 1);
    }
}
