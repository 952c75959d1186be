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

/// Whether an operation may go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitDecision {
    /// Go ahead.
    Allow,
    /// Wait this long first.
    Wait(Duration),
}

/// What to do after the platform answered "too many requests".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateLimitAction {
    /// Retry after this delay.
    Retry {
        /// The delay.
        after: Duration,
    },
    /// Give up on the operation with this reason.
    Fail(String),
}

/// Client-side rate limiting (the seed's `RateLimitHandler`). The defaults allow everything.
pub trait RateLimitHandler {
    /// Whether `operation` may be sent now.
    fn check_rate_limit(&mut self, operation: Operation) -> RateLimitDecision {
        let _ = operation;
        RateLimitDecision::Allow
    }

    /// Records that `operation` was sent.
    fn update_rate_limit(&mut self, operation: Operation) {
        let _ = operation;
    }

    /// Handles the platform's own "too many requests" answer.
    fn handle_rate_limited(&mut self, response: &Message) -> RateLimitAction {
        let _ = response;
        RateLimitAction::Retry {
            after: Duration::from_secs(1),
        }
    }
}
