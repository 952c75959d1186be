//! The way out: messages taken from the application's data channel but not yet written (the
//! carry, first out on the next write, on this connection or the next), and the rate gate in
//! front of the socket. One predicate, [`Outbound::may_send`], says whether the application's
//! sends may flow now; everything the runtime itself must send (auth, heartbeats, subscribe
//! requests, handler replies) takes its tokens without waiting, so it is never starved.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ClientConfig;
use crate::handler::{Operation, RateLimitDecision, RateLimitHandler, RequestId};
use crate::message::Message;
use crate::rate_limit::RateLimiter;

/// Most messages taken from the send channel before one flush.
const WRITE_BATCH: usize = 64;

/// A message on its way out, possibly a request awaiting its response.
pub(crate) struct Wire {
    pub(crate) message: Message,
    pub(crate) operation: Operation,
    pub(crate) request: Option<RequestId>,
}

/// The carry and the rate gate.
pub(crate) struct Outbound {
    carry: VecDeque<Wire>,
    /// Sends are held back until then by a rate limit.
    rate_wait: Option<Instant>,
    limiter: Option<Box<dyn RateLimiter>>,
    /// The same instant, shared with the handle so a full queue can answer `RateLimited`.
    rate_limited_until: Arc<Mutex<Option<Instant>>>,
}

impl Outbound {
    pub(crate) fn new(
        limiter: Option<Box<dyn RateLimiter>>,
        rate_limited_until: Arc<Mutex<Option<Instant>>>,
    ) -> Self {
        Self {
            carry: VecDeque::new(),
            rate_wait: None,
            limiter,
            rate_limited_until,
        }
    }

    /// Whether the application's sends may be written now: the connection is ready (authenticated
    /// and restored), the peer has not started closing, and no rate limit holds them back.
    pub(crate) fn may_send(&self, ready: bool, peer_closing: bool) -> bool {
        ready && !peer_closing && self.rate_wait.is_none()
    }

    /// How many messages to take from the data channel at once: one at a time under a rate
    /// limit, so that what waits stays in the bounded channel (and a full channel answers
    /// `RateLimited`).
    pub(crate) fn batch(&self) -> usize {
        if self.limiter.is_some() {
            1
        } else {
            WRITE_BATCH
        }
    }

    /// Messages waiting in the carry.
    pub(crate) fn len(&self) -> usize {
        self.carry.len()
    }

    /// Whether the carry is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.carry.is_empty()
    }

    /// Queues a message behind the others.
    pub(crate) fn push_back(&mut self, wire: Wire) {
        self.carry.push_back(wire);
    }

    /// Puts a message first in line (not written, or to be resent now).
    pub(crate) fn push_front(&mut self, wire: Wire) {
        self.carry.push_front(wire);
    }

    /// The operation of the next message, if any.
    pub(crate) fn front_operation(&self) -> Option<Operation> {
        self.carry.front().map(|w| w.operation)
    }

    /// Takes the next message.
    pub(crate) fn pop_front(&mut self) -> Option<Wire> {
        self.carry.pop_front()
    }

    /// `Some(wait)` when `operation` must wait for the handler's own limits or the limiter;
    /// otherwise its tokens are taken.
    pub(crate) fn check<H: RateLimitHandler + ?Sized>(
        &mut self,
        handler: &mut H,
        config: &ClientConfig,
        operation: Operation,
        now: Instant,
    ) -> Option<Duration> {
        if let RateLimitDecision::Wait(d) = handler.check_rate_limit(operation) {
            return Some(d.max(Duration::from_millis(1)));
        }
        let cost = cost_of(config, operation);
        let limiter = self.limiter.as_mut()?;
        limiter.try_acquire(cost, now).err()
    }

    /// Takes `operation`'s tokens without waiting (what the runtime must send).
    pub(crate) fn force(&mut self, config: &ClientConfig, operation: Operation, now: Instant) {
        if let Some(limiter) = self.limiter.as_mut() {
            limiter.force_acquire(cost_of(config, operation), now);
        }
    }

    /// Holds the application's sends back until `until`.
    pub(crate) fn hold_until(&mut self, until: Instant) {
        self.rate_wait = Some(until);
        self.share(Some(until));
    }

    /// When held-back sends may go again.
    pub(crate) fn held_until(&self) -> Option<Instant> {
        self.rate_wait
    }

    /// The hold is over (its time came, or the connection is gone).
    pub(crate) fn release(&mut self) {
        self.rate_wait = None;
        self.share(None);
    }

    /// The application asked to finish: what it handed over is written regardless of the limit.
    pub(crate) fn drop_limiter(&mut self) {
        self.limiter = None;
    }

    fn share(&self, until: Option<Instant>) {
        if let Ok(mut slot) = self.rate_limited_until.lock() {
            *slot = until;
        }
    }
}

fn cost_of(config: &ClientConfig, operation: Operation) -> u32 {
    config
        .rate_limit
        .as_ref()
        .map_or(1, |r| r.cost_of(operation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::{RateLimit, TokenBucket};

    struct NoLimits;
    impl RateLimitHandler for NoLimits {}

    fn limited(capacity: u32) -> (Outbound, ClientConfig, Instant) {
        let now = Instant::now();
        let limit = RateLimit::new(capacity, 1.0);
        let config = ClientConfig::builder("ws://127.0.0.1:1")
            .rate_limit(limit.clone())
            .build()
            .expect("config");
        let bucket = TokenBucket::new(limit, now);
        let out = Outbound::new(Some(Box::new(bucket)), Arc::new(Mutex::new(None)));
        (out, config, now)
    }

    #[test]
    fn sends_flow_only_when_ready_not_closing_and_not_held() {
        let (mut out, _, now) = limited(1);
        assert!(out.may_send(true, false));
        assert!(!out.may_send(false, false), "not ready");
        assert!(!out.may_send(true, true), "the peer is closing");
        out.hold_until(now);
        assert!(!out.may_send(true, false), "held by the rate limit");
        assert_eq!(*out.rate_limited_until.lock().expect("lock"), Some(now));
        out.release();
        assert!(out.may_send(true, false));
        assert_eq!(*out.rate_limited_until.lock().expect("lock"), None);
    }

    #[test]
    fn the_limiter_makes_sends_wait_but_never_forced_ones() {
        let (mut out, config, now) = limited(2);
        assert_eq!(out.batch(), 1);
        assert_eq!(
            out.check(&mut NoLimits, &config, Operation::Other, now),
            None
        );
        out.force(&config, Operation::Heartbeat, now);
        let wait = out.check(&mut NoLimits, &config, Operation::Other, now);
        assert!(wait.is_some_and(|w| w > Duration::ZERO), "{wait:?}");
        out.drop_limiter();
        assert_eq!(
            out.check(&mut NoLimits, &config, Operation::Other, now),
            None
        );
        assert_eq!(out.batch(), WRITE_BATCH);
    }

    #[test]
    fn a_handler_limit_waits_at_least_a_millisecond() {
        struct Busy;
        impl RateLimitHandler for Busy {
            fn check_rate_limit(&mut self, _: Operation) -> RateLimitDecision {
                RateLimitDecision::Wait(Duration::ZERO)
            }
        }
        let mut out = Outbound::new(None, Arc::new(Mutex::new(None)));
        let config = ClientConfig::builder("ws://127.0.0.1:1")
            .build()
            .expect("config");
        let wait = out.check(&mut Busy, &config, Operation::Order, Instant::now());
        assert_eq!(wait, Some(Duration::from_millis(1)));
    }

    #[test]
    fn the_carry_keeps_order_and_puts_retries_first() {
        let mut out = Outbound::new(None, Arc::new(Mutex::new(None)));
        for text in ["a", "b"] {
            out.push_back(Wire {
                message: Message::text(text),
                operation: Operation::Other,
                request: None,
            });
        }
        out.push_front(Wire {
            message: Message::text("retry"),
            operation: Operation::Order,
            request: None,
        });
        assert_eq!(out.front_operation(), Some(Operation::Order));
        let order: Vec<String> = std::iter::from_fn(|| out.pop_front())
            .map(|w| w.message.as_text().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(order, ["retry", "a", "b"]);
        assert!(out.is_empty());
    }
}
