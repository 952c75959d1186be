//! The runtime's cost-weighted rate limiter: a token bucket per connection.
//!
//! Each operation costs tokens ([`RateLimit::cost`]); the bucket holds at most `capacity` and
//! refills at `refill_per_second`. Application sends and requests that find the bucket short
//! wait in the (bounded) send queue, in order, until enough has refilled; when that queue is
//! full, `send` fails with [`Error::RateLimited`](crate::Error::RateLimited) and a `retry_after`.
//! Authentication and heartbeats take their tokens without waiting — they may drive the bucket
//! into debt, which later work then waits out — so they never starve behind queued work.
//!
//! The bucket sits behind the [`RateLimiter`] trait so a shared (cluster) implementation can
//! replace it.

use std::time::Duration;

use tokio::time::Instant;

use crate::handler::Operation;

/// Decides when work of a given cost may go.
pub trait RateLimiter: Send + 'static {
    /// Takes `cost` tokens now, or says how long to wait before trying again.
    ///
    /// # Errors
    /// The wait, when there are not enough tokens.
    fn try_acquire(&mut self, cost: u32, now: Instant) -> Result<(), Duration>;

    /// Takes `cost` tokens now even when that goes into debt (priority traffic).
    fn force_acquire(&mut self, cost: u32, now: Instant);
}

/// Limits of a connection: bucket size, refill rate, and the cost of each kind of operation.
///
/// ```
/// use nova_core::{Operation, RateLimit};
///
/// // Deribit-like credits: 50 000 burst, 10 000 per second, 500 per non-matching request.
/// let limit = RateLimit::new(50_000, 10_000.0)
///     .cost(Operation::Query, 500)
///     .cost(Operation::Subscribe, 500)
///     .cost(Operation::Order, 1_000);
/// assert_eq!(limit.cost_of(Operation::Order), 1_000);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    capacity: u32,
    refill_per_second: f64,
    costs: [u32; 6],
}

impl RateLimit {
    /// A bucket of `capacity` tokens refilled at `refill_per_second`; every operation costs 1.
    #[must_use]
    pub fn new(capacity: u32, refill_per_second: f64) -> Self {
        Self {
            capacity: capacity.max(1),
            refill_per_second: refill_per_second.max(0.0),
            costs: [1; 6],
        }
    }

    /// Sets the cost of one kind of operation.
    #[must_use]
    pub fn cost(mut self, operation: Operation, cost: u32) -> Self {
        self.costs[operation.index()] = cost;
        self
    }

    /// The cost of one kind of operation.
    #[must_use]
    pub fn cost_of(&self, operation: Operation) -> u32 {
        self.costs[operation.index()]
    }

    /// The bucket size.
    #[must_use]
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Tokens added per second.
    #[must_use]
    pub fn refill_per_second(&self) -> f64 {
        self.refill_per_second
    }
}

/// The in-process token bucket.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    #[must_use]
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        let tokens = f64::from(limit.capacity);
        Self {
            limit,
            tokens,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.refill_per_second)
            .min(f64::from(self.limit.capacity));
        self.updated = now;
    }
}

impl RateLimiter for TokenBucket {
    fn try_acquire(&mut self, cost: u32, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        // A cost above the capacity could never be met: let it go when the bucket is full.
        let needed = f64::from(cost.min(self.limit.capacity));
        if self.tokens >= needed {
            self.tokens -= f64::from(cost);
            return Ok(());
        }
        if self.limit.refill_per_second <= 0.0 {
            return Err(Duration::from_secs(3600));
        }
        let wait = (needed - self.tokens) / self.limit.refill_per_second;
        Err(Duration::from_secs_f64(wait).max(Duration::from_millis(1)))
    }

    fn force_acquire(&mut self, cost: u32, now: Instant) {
        self.refill(now);
        self.tokens -= f64::from(cost);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_refill_rate_after_the_burst() {
        let start = Instant::now();
        let mut b = TokenBucket::new(RateLimit::new(2, 10.0), start);
        assert!(b.try_acquire(1, start).is_ok());
        assert!(b.try_acquire(1, start).is_ok());
        let wait = b.try_acquire(1, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(b.try_acquire(1, start + wait).is_ok());
    }

    #[test]
    fn priority_work_goes_into_debt_that_others_wait_out() {
        let start = Instant::now();
        let mut b = TokenBucket::new(RateLimit::new(1, 10.0), start);
        b.force_acquire(1, start);
        b.force_acquire(1, start);
        let wait = b.try_acquire(1, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
    }

    #[test]
    fn weighted_costs_and_oversized_costs() {
        let start = Instant::now();
        let limit = RateLimit::new(10, 1.0).cost(Operation::Order, 4);
        let mut b = TokenBucket::new(limit.clone(), start);
        assert!(
            b.try_acquire(limit.cost_of(Operation::Order), start)
                .is_ok()
        );
        assert!(
            b.try_acquire(limit.cost_of(Operation::Order), start)
                .is_ok()
        );
        assert!(
            b.try_acquire(limit.cost_of(Operation::Order), start)
                .is_err()
        );
        let mut full = TokenBucket::new(RateLimit::new(3, 1.0), start);
        assert!(
            full.try_acquire(100, start).is_ok(),
            "a cost above capacity goes when full"
        );
    }
}
