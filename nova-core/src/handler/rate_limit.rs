//! `RateLimitHandler`: the cost of each operation, and the platform's own "too many requests".

use std::time::Duration;

use crate::message::Message;

/// Kinds of operation, each with its own cost under a platform's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Authentication.
    Auth,
    /// Subscribe or unsubscribe.
    Subscribe,
    /// A read-only request.
    Query,
    /// An order (place, amend, cancel).
    Order,
    /// A heartbeat.
    Heartbeat,
    /// Any other message.
    Other,
}

impl Operation {
    /// Every kind, in the order of [`index`](Self::index).
    pub const ALL: [Operation; 6] = [
        Operation::Auth,
        Operation::Subscribe,
        Operation::Query,
        Operation::Order,
        Operation::Heartbeat,
        Operation::Other,
    ];

    /// A dense index (0..6), for cost tables.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Operation::Auth => 0,
            Operation::Subscribe => 1,
            Operation::Query => 2,
            Operation::Order => 3,
            Operation::Heartbeat => 4,
            Operation::Other => 5,
        }
    }

    /// A short label for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Auth => "auth",
            Operation::Subscribe => "subscribe",
            Operation::Query => "query",
            Operation::Order => "order",
            Operation::Heartbeat => "heartbeat",
            Operation::Other => "other",
        }
    }
}

/// Whether an operation may go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitDecision {
    /// Go ahead.
    Allow,
    /// Wait this long first.
    Wait(Duration),
}

/// What to do after the platform answered "too many requests".
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitAction {
    /// Retry after this delay.
    Retry {
        /// The delay.
        after: Duration,
    },
    /// Give up on the operation with this reason.
    Fail(String),
}

/// Client-side rate limiting (the seed's `RateLimitHandler`).
///
/// The runtime's own cost-weighted limiter ([`RateLimit`](crate::RateLimit) in the client
/// configuration) paces everything the application sends; these hooks add a platform's own
/// rules on top. The defaults allow everything.
pub trait RateLimitHandler {
    /// Whether `operation` may be sent now. Asked before each message the application sends;
    /// what the runtime and callbacks send (auth, heartbeats, subscribe requests, replies)
    /// cannot wait and is only recorded through `update_rate_limit`.
    fn check_rate_limit(&mut self, operation: Operation) -> RateLimitDecision {
        let _ = operation;
        RateLimitDecision::Allow
    }

    /// Records that `operation` was sent: called for every message written, the application's
    /// and the runtime's alike.
    fn update_rate_limit(&mut self, operation: Operation) {
        let _ = operation;
    }

    /// Whether a response is the platform's "too many requests" answer (Deribit's 10028,
    /// Bybit's 10006). The runtime then asks `handle_rate_limited` and resends the request after
    /// the delay it gives.
    fn is_rate_limit_response(&self, response: &Message) -> bool {
        let _ = response;
        false
    }

    /// Handles the platform's own "too many requests" answer.
    fn handle_rate_limited(&mut self, response: &Message) -> RateLimitAction {
        let _ = response;
        RateLimitAction::Retry {
            after: Duration::from_secs(1),
        }
    }
}
