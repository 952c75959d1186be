//! Bybit's limits as nova cost-weighted rate limits.
//!
//! Order entry (`/v5/trade`) is limited per account and session: by default 10 order requests
//! per second (Bybit's per-UID default; the answer header `X-Bapi-Limit` says the account's
//! real figure), and a session that goes faster is answered `20003`. [`BybitLimits`] turns that
//! into a token bucket where an order op costs 1 and a batch op as many as it carries; the
//! runtime paces requests in order through it, so `20003` does not happen, and when it does
//! (another session of the account used the budget) the request is sent again after
//! [`BybitConfig::rate_limited_retry`](crate::BybitConfig::rate_limited_retry). Subscribing,
//! auth and pings cost nothing: Bybit limits connections (500 per 5 minutes per IP), not those.

use nova_core::{Operation, RateLimit};

/// The account's order-entry limits.
///
/// ```
/// use nova_bybit::BybitLimits;
/// use nova_core::Operation;
///
/// let limit = BybitLimits::default().rate_limit();
/// assert_eq!(limit.capacity(), 10);
/// assert_eq!(limit.cost_of(Operation::Order), 1);
/// assert_eq!(limit.cost_of(Operation::Subscribe), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct BybitLimits {
    /// Order requests per second (default 10).
    pub orders_per_second: f64,
    /// Order requests in one burst (default 10).
    pub burst: u32,
}

impl Default for BybitLimits {
    fn default() -> Self {
        Self {
            orders_per_second: 10.0,
            burst: 10,
        }
    }
}

impl BybitLimits {
    /// Limits of `per_second` order requests with bursts of `burst`.
    #[must_use]
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            orders_per_second: per_second,
            burst,
        }
    }

    /// The runtime's limit: orders and other requests cost 1, the rest nothing.
    #[must_use]
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit::new(self.burst.max(1), self.orders_per_second)
            .cost(Operation::Order, 1)
            .cost(Operation::Query, 1)
            .cost(Operation::Subscribe, 0)
            .cost(Operation::Auth, 0)
            .cost(Operation::Heartbeat, 0)
            .cost(Operation::Other, 0)
    }
}
