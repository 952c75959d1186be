//! Deribit's error codes and the crate's error type.
//!
//! A JSON-RPC error from Deribit is `{"code": C, "message": M, "data"?: D}`. The codes below are
//! the documented table ("RPC Error Codes"); any other code is kept as [`ErrorCode::Other`].

use std::fmt;

use serde_json::Value;

/// A documented Deribit error code.
///
/// ```
/// use nova_deribit::ErrorCode;
///
/// assert_eq!(ErrorCode::from_code(10028), ErrorCode::TooManyRequests);
/// assert_eq!(ErrorCode::TooManyRequests.message(), "too_many_requests");
/// assert_eq!(ErrorCode::from_code(4242), ErrorCode::Other(4242));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 10000 `authorization_required`.
    AuthorizationRequired,
    /// 10001 `error`: general failure.
    Error,
    /// 10004 `order_not_found`.
    OrderNotFound,
    /// 10009 `not_enough_funds`.
    NotEnoughFunds,
    /// 10028 `too_many_requests`: the credit limit was exceeded (the session is closed).
    TooManyRequests,
    /// 10030 `must_be_websocket_request`.
    MustBeWebsocketRequest,
    /// 10040 `retry`: cannot be processed now.
    Retry,
    /// 10047 `matching_engine_queue_full`.
    MatchingEngineQueueFull,
    /// 10066 `too_many_concurrent_requests`.
    TooManyConcurrentRequests,
    /// 11029 `invalid_arguments`.
    InvalidArguments,
    /// 11050 `bad_request`.
    BadRequest,
    /// 11051 `system_maintenance`.
    SystemMaintenance,
    /// 11052 `subscribe_error_unsubscribed`.
    SubscribeErrorUnsubscribed,
    /// 11094 `internal_server_error`.
    InternalServerError,
    /// 13004 `invalid_credentials`.
    InvalidCredentials,
    /// 13009 `unauthorized`: wrong or expired token, or bad signature.
    Unauthorized,
    /// 13020 `not_found`.
    NotFound,
    /// 13021 `forbidden`.
    Forbidden,
    /// 13028 `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// 13403 `scope_exceeded`.
    ScopeExceeded,
    /// 13503 `unavailable`.
    Unavailable,
    /// 13778 `raw_subscriptions_not_available_for_unauthorized`.
    RawSubscriptionsNotAvailableForUnauthorized,
    /// -32600 `request entity too large` (also JSON-RPC's invalid request).
    RequestTooLarge,
    /// -32601 `Method not found`.
    MethodNotFound,
    /// -32602 `Invalid params`.
    InvalidParams,
    /// -32700 `Parse error`.
    ParseError,
    /// -32000 `Missing params`.
    MissingParams,
    /// Any other code.
    Other(i64),
}

/// The documented table: code, variant, message.
const TABLE: [(i64, ErrorCode, &str); 27] = [
    (
        10000,
        ErrorCode::AuthorizationRequired,
        "authorization_required",
    ),
    (10001, ErrorCode::Error, "error"),
    (10004, ErrorCode::OrderNotFound, "order_not_found"),
    (10009, ErrorCode::NotEnoughFunds, "not_enough_funds"),
    (10028, ErrorCode::TooManyRequests, "too_many_requests"),
    (
        10030,
        ErrorCode::MustBeWebsocketRequest,
        "must_be_websocket_request",
    ),
    (10040, ErrorCode::Retry, "retry"),
    (
        10047,
        ErrorCode::MatchingEngineQueueFull,
        "matching_engine_queue_full",
    ),
    (
        10066,
        ErrorCode::TooManyConcurrentRequests,
        "too_many_concurrent_requests",
    ),
    (11029, ErrorCode::InvalidArguments, "invalid_arguments"),
    (11050, ErrorCode::BadRequest, "bad_request"),
    (11051, ErrorCode::SystemMaintenance, "system_maintenance"),
    (
        11052,
        ErrorCode::SubscribeErrorUnsubscribed,
        "subscribe_error_unsubscribed",
    ),
    (
        11094,
        ErrorCode::InternalServerError,
        "internal_server_error",
    ),
    (13004, ErrorCode::InvalidCredentials, "invalid_credentials"),
    (13009, ErrorCode::Unauthorized, "unauthorized"),
    (13020, ErrorCode::NotFound, "not_found"),
    (13021, ErrorCode::Forbidden, "forbidden"),
    (
        13028,
        ErrorCode::TemporarilyUnavailable,
        "temporarily_unavailable",
    ),
    (13403, ErrorCode::ScopeExceeded, "scope_exceeded"),
    (13503, ErrorCode::Unavailable, "unavailable"),
    (
        13778,
        ErrorCode::RawSubscriptionsNotAvailableForUnauthorized,
        "raw_subscriptions_not_available_for_unauthorized",
    ),
    (
        -32600,
        ErrorCode::RequestTooLarge,
        "request entity too large",
    ),
    (-32601, ErrorCode::MethodNotFound, "Method not found"),
    (-32602, ErrorCode::InvalidParams, "Invalid params"),
    (-32700, ErrorCode::ParseError, "Parse error"),
    (-32000, ErrorCode::MissingParams, "Missing params"),
];

impl ErrorCode {
    /// The variant for a numeric code.
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        TABLE
            .iter()
            .find(|(c, _, _)| *c == code)
            .map_or(Self::Other(code), |(_, e, _)| *e)
    }

    /// The numeric code.
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Self::Other(code) => code,
            known => TABLE
                .iter()
                .find(|(_, e, _)| *e == known)
                .map_or(0, |(c, _, _)| *c),
        }
    }

    /// Deribit's short message for the code (empty for [`Other`](Self::Other)).
    #[must_use]
    pub fn message(self) -> &'static str {
        TABLE
            .iter()
            .find(|(_, e, _)| *e == self)
            .map_or("", |(_, _, m)| m)
    }

    /// Whether retrying later may succeed (rate limits, maintenance, busy engine).
    #[must_use]
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::TooManyRequests
                | Self::Retry
                | Self::MatchingEngineQueueFull
                | Self::TooManyConcurrentRequests
                | Self::SystemMaintenance
                | Self::TemporarilyUnavailable
                | Self::Unavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(code) => write!(f, "{code}"),
            known => write!(f, "{} {}", known.code(), known.message()),
        }
    }
}

/// A JSON-RPC error object as Deribit sends it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[non_exhaustive]
pub struct RpcError {
    /// The numeric code.
    pub code: i64,
    /// The short message, e.g. `too_many_requests`.
    pub message: String,
    /// Details, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// The typed code.
    #[must_use]
    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)?;
        if let Some(data) = &self.data {
            write!(f, " ({data})")?;
        }
        Ok(())
    }
}

/// What can go wrong talking to Deribit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeribitError {
    /// Deribit answered with an error.
    #[error("deribit error {0}")]
    Rpc(RpcError),
    /// The connection layer failed (timeout, disconnected, stopped, ...).
    #[error(transparent)]
    Nova(#[from] nova_core::Error),
    /// The client configuration is invalid (a bad URL, a zero timeout).
    #[error(transparent)]
    Config(#[from] nova_core::ConfigError),
    /// A message could not be decoded into the expected type.
    #[error("cannot decode the deribit message: {0}")]
    Decode(#[from] serde_json::Error),
    /// A `private/` method was called on a client without credentials; nothing was sent.
    #[error("{0} needs authentication: the client has no credentials")]
    NotAuthenticated(String),
    /// The message was not what was expected (not a response, not JSON-RPC).
    #[error("unexpected message: {0}")]
    Unexpected(String),
}

impl DeribitError {
    /// The Deribit error code, when Deribit answered with an error (and
    /// [`ErrorCode::Unauthorized`] for [`NotAuthenticated`](Self::NotAuthenticated)).
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Rpc(e) => Some(e.kind()),
            Self::NotAuthenticated(_) => Some(ErrorCode::Unauthorized),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_round_trips() {
        for (code, kind, message) in TABLE {
            assert_eq!(ErrorCode::from_code(code), kind);
            assert_eq!(kind.code(), code);
            assert_eq!(kind.message(), message);
        }
        assert_eq!(ErrorCode::Other(7).code(), 7);
        assert_eq!(ErrorCode::Unauthorized.to_string(), "13009 unauthorized");
        assert!(ErrorCode::TooManyRequests.is_retryable());
        assert!(!ErrorCode::Unauthorized.is_retryable());
    }
}
