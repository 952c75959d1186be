//! Deribit's credit-based rate limit: a bucket of credits that refills continuously.
//!
//! Each request costs `cost` credits; the bucket holds at most `max` and gains `refill_per_sec`
//! every second (a leaky bucket seen from the other side). With Deribit's defaults (500, 50,000,
//! 10,000/s) that is a burst of 100 requests and 20 per second sustained. A request that finds
//! fewer than `cost` credits is refused with `10028 too_many_requests`.

use std::time::Instant;

/// The parameters of one credit bucket.
///
/// ```
/// use nova_testkit::deribit::CreditLimits;
///
/// let limits = CreditLimits::deribit_default();
/// assert_eq!(limits.burst(), 100);
/// assert_eq!(limits.sustained_per_sec(), 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreditLimits {
    /// Credits one request costs.
    pub cost: u64,
    /// The most credits the bucket holds (and starts with).
    pub max: u64,
    /// Credits added per second.
    pub refill_per_sec: u64,
}

impl CreditLimits {
    /// Deribit's default for non-matching-engine requests: 500 per request, 50,000 maximum,
    /// 10,000 per second.
    #[must_use]
    pub const fn deribit_default() -> Self {
        Self {
            cost: 500,
            max: 50_000,
            refill_per_sec: 10_000,
        }
    }

    /// A matching-engine tier for order methods: 20 requests per second, a burst of 50
    /// (Deribit's "Tier 2").
    #[must_use]
    pub const fn matching_engine_default() -> Self {
        Self {
            cost: 1_000,
            max: 50_000,
            refill_per_sec: 20_000,
        }
    }

    /// How many requests a full bucket allows at once.
    #[must_use]
    pub const fn burst(&self) -> u64 {
        match self.max.checked_div(self.cost) {
            Some(n) => n,
            None => u64::MAX,
        }
    }

    /// How many requests per second the refill sustains.
    #[must_use]
    pub const fn sustained_per_sec(&self) -> u64 {
        match self.refill_per_sec.checked_div(self.cost) {
            Some(n) => n,
            None => u64::MAX,
        }
    }
}

/// A bucket of credits.
#[derive(Debug)]
pub(super) struct Credits {
    limits: CreditLimits,
    available: f64,
    updated: Instant,
}

impl Credits {
    pub(super) fn new(limits: CreditLimits, now: Instant) -> Self {
        Self {
            limits,
            #[allow(clippy::cast_precision_loss)]
            available: limits.max as f64,
            updated: now,
        }
    }

    /// Takes one request's credits if there are enough; returns whether it did.
    #[allow(clippy::cast_precision_loss)]
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        let max = self.limits.max as f64;
        self.available = (self.available + elapsed * self.limits.refill_per_sec as f64).min(max);
        let cost = self.limits.cost as f64;
        if self.available >= cost {
            self.available -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_bucket_allows_the_burst_then_refills() {
        let start = Instant::now();
        let mut bucket = Credits::new(CreditLimits::deribit_default(), start);
        for _ in 0..100 {
            assert!(bucket.take(start));
        }
        assert!(!bucket.take(start));
        // 50 ms refill 500 credits: exactly one more request.
        let later = start + Duration::from_millis(50);
        assert!(bucket.take(later));
        assert!(!bucket.take(later));
    }
}
