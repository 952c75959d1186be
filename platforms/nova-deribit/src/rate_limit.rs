//! Deribit's credit-based rate limits, as costs for nova's limiter.
//!
//! Deribit gives every sub-account a bucket of credits: each non-matching-engine request costs
//! 500, the bucket holds 50,000 and refills 10,000 per second (a burst of 100 requests, 20 per
//! second sustained). Order methods (buy, sell, edit, cancel, cancel_all*, close_position) use
//! a separate matching-engine bucket whose size depends on the account's tier (e.g. 20 per
//! second with a burst of 50). An empty bucket answers `10028 too_many_requests` and closes the
//! session.
//!
//! [`DeribitLimits::rate_limit`] turns the non-matching-engine bucket into a
//! [`nova_core::RateLimit`] for the runtime (orders cost 0 there); the matching-engine bucket
//! is kept by the adapter and applied through `RateLimitHandler::check_rate_limit`. Both are
//! set a little below Deribit's numbers ([`DeribitLimits::margin`]): the server measures time
//! when requests arrive, not when they were sent, and network jitter would otherwise let a
//! client that paces exactly at the limit overdraw by a request now and then.

use std::time::Duration;

use nova_core::{Operation, RateLimit};

/// The kind of operation a Deribit method is, for rate limiting.
///
/// ```
/// use nova_core::Operation;
/// use nova_deribit::operation_of;
///
/// assert_eq!(operation_of("private/buy"), Operation::Order);
/// assert_eq!(operation_of("public/subscribe"), Operation::Subscribe);
/// assert_eq!(operation_of("public/auth"), Operation::Auth);
/// assert_eq!(operation_of("public/test"), Operation::Heartbeat);
/// assert_eq!(operation_of("public/ticker"), Operation::Query);
/// ```
#[must_use]
pub fn operation_of(method: &str) -> Operation {
    match method {
        "private/buy"
        | "private/sell"
        | "private/edit"
        | "private/edit_by_label"
        | "private/cancel"
        | "private/cancel_all"
        | "private/cancel_all_by_currency"
        | "private/cancel_all_by_instrument"
        | "private/cancel_all_by_kind_or_type"
        | "private/cancel_by_label"
        | "private/close_position" => Operation::Order,
        "public/subscribe"
        | "private/subscribe"
        | "public/unsubscribe"
        | "private/unsubscribe"
        | "public/unsubscribe_all"
        | "private/unsubscribe_all" => Operation::Subscribe,
        "public/auth" | "public/exchange_token" | "public/fork_token" => Operation::Auth,
        "public/test" | "public/set_heartbeat" | "public/disable_heartbeat" => Operation::Heartbeat,
        _ => Operation::Query,
    }
}

/// A credit bucket: cost per request, size, refill per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credits {
    /// Credits one request costs.
    pub cost: u32,
    /// Credits the bucket holds.
    pub max: u32,
    /// Credits added per second.
    pub refill_per_sec: u32,
}

impl Credits {
    /// A bucket: `cost` credits per request, `max` credits held, `refill_per_sec` added per
    /// second.
    #[must_use]
    pub const fn new(cost: u32, max: u32, refill_per_sec: u32) -> Self {
        Self {
            cost,
            max,
            refill_per_sec,
        }
    }

    /// Requests a full bucket allows at once.
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.max.checked_div(self.cost).unwrap_or(u32::MAX)
    }

    fn scaled(self, factor: f64) -> Self {
        let scale = |n: u32| {
            let v = (f64::from(n) * factor).floor();
            if v <= 0.0 {
                0
            } else if v >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                // In range: checked just above.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let v = v as u32;
                v
            }
        };
        Self {
            cost: self.cost,
            max: scale(self.max).max(self.cost),
            refill_per_sec: scale(self.refill_per_sec),
        }
    }
}

/// Deribit's limits for one account: the non-matching-engine credits, the matching-engine
/// credits of its tier, and the safety margin the client keeps below both.
///
/// ```
/// use nova_core::Operation;
/// use nova_deribit::DeribitLimits;
///
/// let limits = DeribitLimits::default();
/// assert_eq!(limits.credits.burst(), 100);
/// let rate = limits.rate_limit();
/// assert_eq!(rate.cost_of(Operation::Query), 500);
/// assert_eq!(rate.cost_of(Operation::Order), 0); // orders: the matching-engine bucket
/// assert!(rate.capacity() < 50_000); // the margin
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeribitLimits {
    /// Non-matching-engine credits (default: 500 per request, 50,000, 10,000 per second).
    pub credits: Credits,
    /// Matching-engine credits for order methods (default: 20 per second, a burst of 50).
    pub matching_engine: Credits,
    /// The fraction of each bucket's size and refill the client uses (default 0.9).
    pub margin: f64,
}

impl Default for DeribitLimits {
    fn default() -> Self {
        Self {
            credits: Credits {
                cost: 500,
                max: 50_000,
                refill_per_sec: 10_000,
            },
            matching_engine: Credits {
                cost: 1_000,
                max: 50_000,
                refill_per_sec: 20_000,
            },
            margin: 0.9,
        }
    }
}

impl DeribitLimits {
    /// Limits with these buckets and the default margin (0.9); change it with
    /// [`margin`](Self::margin).
    #[must_use]
    pub fn new(credits: Credits, matching_engine: Credits) -> Self {
        Self {
            credits,
            matching_engine,
            ..Self::default()
        }
    }

    /// The fraction of each bucket's size and refill the client uses.
    #[must_use]
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// The runtime's limiter for the non-matching-engine credits, with the margin applied.
    /// Orders cost nothing here: they draw on the matching-engine bucket.
    #[must_use]
    pub fn rate_limit(&self) -> RateLimit {
        let c = self.credits.scaled(self.margin);
        let mut limit = RateLimit::new(c.max, f64::from(c.refill_per_sec));
        for op in Operation::ALL {
            limit = limit.cost(op, c.cost);
        }
        limit.cost(Operation::Order, 0)
    }

    /// The matching-engine bucket with the margin applied.
    #[must_use]
    pub fn matching_engine_credits(&self) -> Credits {
        self.matching_engine.scaled(self.margin)
    }
}

/// The adapter's matching-engine bucket (order methods).
#[derive(Clone, Debug)]
pub(crate) struct EngineBucket {
    credits: Credits,
    available: f64,
    updated: std::time::Instant,
}

impl EngineBucket {
    pub(crate) fn new(credits: Credits) -> Self {
        Self {
            credits,
            available: f64::from(credits.max),
            updated: std::time::Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = std::time::Instant::now();
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.available = (self.available + elapsed * f64::from(self.credits.refill_per_sec))
            .min(f64::from(self.credits.max));
    }

    /// How long until one order may go (`None`: now).
    pub(crate) fn wait(&mut self) -> Option<Duration> {
        self.refill();
        let cost = f64::from(self.credits.cost);
        if self.available >= cost {
            return None;
        }
        if self.credits.refill_per_sec == 0 {
            return Some(Duration::from_secs(3600));
        }
        let secs = (cost - self.available) / f64::from(self.credits.refill_per_sec);
        Some(Duration::from_secs_f64(secs).max(Duration::from_millis(1)))
    }

    /// Takes one order's credits.
    pub(crate) fn take(&mut self) {
        self.refill();
        self.available -= f64::from(self.credits.cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_keeps_below_deribit() {
        let limits = DeribitLimits::default();
        let rate = limits.rate_limit();
        assert_eq!(rate.capacity(), 45_000);
        assert!((rate.refill_per_second() - 9_000.0).abs() < f64::EPSILON);
        assert_eq!(limits.matching_engine_credits().burst(), 45);
    }

    #[test]
    fn the_engine_bucket_paces_orders() {
        let mut bucket = EngineBucket::new(Credits {
            cost: 1_000,
            max: 2_000,
            refill_per_sec: 1_000,
        });
        assert_eq!(bucket.wait(), None);
        bucket.take();
        assert_eq!(bucket.wait(), None);
        bucket.take();
        let wait = bucket.wait();
        assert!(
            wait.is_some_and(|w| w > Duration::from_millis(900)),
            "{wait:?}"
        );
    }
}
