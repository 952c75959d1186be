//! Requests: a message with an id, whose response is handed back to the caller.
//!
//! # Delivery contract
//!
//! - The runtime gives each request a fresh id ([`RequestId`]), builds the message with it, and
//!   routes the response — the message that [`MessageHandler::message_type`] classifies as
//!   `Response { id }` — to the caller. Requests can be issued concurrently from any number of
//!   tasks; each gets its own response.
//! - A request that gets no answer within its timeout (default `request_timeout`) fails with
//!   [`Error::Timeout`]; an answer that arrives later is dropped (logged at debug level).
//! - A request sent while disconnected waits in the send buffer and goes out after the next
//!   connect (its timeout still counts from the call).
//! - A request written to a connection that then breaks fails with [`Error::Disconnected`] —
//!   it may or may not have been executed. Mark it [`idempotent`](Request::idempotent) and it is
//!   sent again, with the same id, once the connection is restored (at-least-once).
//! - When the platform answers "too many requests" (see
//!   [`RateLimitHandler::is_rate_limit_response`]), the request is sent again after the delay
//!   `handle_rate_limited` gives.
//!
//! [`MessageHandler::message_type`]: crate::MessageHandler::message_type
//! [`RateLimitHandler::is_rate_limit_response`]: crate::RateLimitHandler::is_rate_limit_response
//! [`Error::Timeout`]: crate::Error::Timeout
//! [`Error::Disconnected`]: crate::Error::Disconnected

use std::time::Duration;

use crate::handler::{Operation, RequestId};
use crate::message::Message;

type Build = Box<dyn FnOnce(&RequestId) -> Message + Send>;

/// A request to send with [`Client::request`](crate::Client::request).
///
/// ```
/// use std::time::Duration;
/// use nova_core::{Operation, Request};
///
/// let get = Request::json_rpc("public/get_instruments", serde_json::json!({"currency": "BTC"}))
///     .timeout(Duration::from_secs(5))
///     .idempotent();
/// let order = Request::json_rpc("private/buy", serde_json::json!({"amount": 10}))
///     .operation(Operation::Order);
/// # let _ = (get, order);
/// ```
#[must_use]
pub struct Request {
    pub(crate) build: Build,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotent: bool,
    pub(crate) operation: Operation,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("timeout", &self.timeout)
            .field("idempotent", &self.idempotent)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request whose message `build` makes from the id the runtime assigns.
    pub fn new(build: impl FnOnce(&RequestId) -> Message + Send + 'static) -> Self {
        Self {
            build: Box::new(build),
            timeout: None,
            idempotent: false,
            operation: Operation::Query,
        }
    }

    /// A JSON-RPC 2.0 request: `{"jsonrpc":"2.0","id":<id>,"method":..,"params":..}`, written by
    /// [`jsonrpc::request`](crate::jsonrpc::request) (`params` left out when it is `null`).
    pub fn json_rpc(method: impl Into<String>, params: serde_json::Value) -> Self {
        let method = method.into();
        Self::new(move |id| crate::jsonrpc::request(id, &method, &params))
    }

    /// Overrides the configured `request_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request again after a reconnect when the connection broke before its answer.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The kind of operation, for rate limiting (default [`Operation::Query`]).
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operation = operation;
        self
    }
}
