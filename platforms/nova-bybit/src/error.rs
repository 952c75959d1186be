//! Bybit's error codes (`retCode` of `/v5/trade`) and this crate's error type.

use std::fmt;

/// A `retCode` Bybit documents for WebSocket order entry, or any other by number.
///
/// ```
/// use nova_bybit::RetCode;
///
/// assert_eq!(RetCode::from_code(20003), RetCode::SessionRateLimit);
/// assert!(RetCode::SessionRateLimit.is_rate_limit());
/// assert_eq!(RetCode::from_code(123_456).code(), 123_456);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetCode {
    /// `0`: success.
    Ok,
    /// `10001`: params error.
    ParamsError,
    /// `10002`: the timestamp is outside the recv window.
    TimestampOutOfWindow,
    /// `10003`: too many sessions under the same UID (trade) / invalid API key.
    TooManySessions,
    /// `10004`: invalid signature.
    InvalidSign,
    /// `10005`: permission denied.
    PermissionDenied,
    /// `10006`: too many visits (rate limit).
    TooManyVisits,
    /// `10016`: internal error or service restarting.
    Internal,
    /// `10019`: the trade service is restarting: open a new connection.
    TradeServiceRestarting,
    /// `10403`: IP rate limit (3000 requests per second).
    IpRateLimit,
    /// `10404`: op or category not found.
    OpNotFound,
    /// `10429`: system frequency protection.
    FrequencyProtection,
    /// `20001`: repeated auth.
    RepeatAuth,
    /// `20003`: too frequent requests under the same session.
    SessionRateLimit,
    /// `20006`: `reqId` already used.
    DuplicateReqId,
    /// `110001`: the order does not exist (or is no longer open).
    OrderNotExists,
    /// `110072`: `orderLinkId` already used.
    DuplicateOrderLinkId,
    /// Any other code.
    Other(i64),
}

impl RetCode {
    /// The code's variant.
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => RetCode::Ok,
            10001 => RetCode::ParamsError,
            10002 => RetCode::TimestampOutOfWindow,
            10003 => RetCode::TooManySessions,
            10004 => RetCode::InvalidSign,
            10005 => RetCode::PermissionDenied,
            10006 => RetCode::TooManyVisits,
            10016 => RetCode::Internal,
            10019 => RetCode::TradeServiceRestarting,
            10403 => RetCode::IpRateLimit,
            10404 => RetCode::OpNotFound,
            10429 => RetCode::FrequencyProtection,
            20001 => RetCode::RepeatAuth,
            20003 => RetCode::SessionRateLimit,
            20006 => RetCode::DuplicateReqId,
            110_001 => RetCode::OrderNotExists,
            110_072 => RetCode::DuplicateOrderLinkId,
            other => RetCode::Other(other),
        }
    }

    /// The number.
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            RetCode::Ok => 0,
            RetCode::ParamsError => 10001,
            RetCode::TimestampOutOfWindow => 10002,
            RetCode::TooManySessions => 10003,
            RetCode::InvalidSign => 10004,
            RetCode::PermissionDenied => 10005,
            RetCode::TooManyVisits => 10006,
            RetCode::Internal => 10016,
            RetCode::TradeServiceRestarting => 10019,
            RetCode::IpRateLimit => 10403,
            RetCode::OpNotFound => 10404,
            RetCode::FrequencyProtection => 10429,
            RetCode::RepeatAuth => 20001,
            RetCode::SessionRateLimit => 20003,
            RetCode::DuplicateReqId => 20006,
            RetCode::OrderNotExists => 110_001,
            RetCode::DuplicateOrderLinkId => 110_072,
            RetCode::Other(code) => code,
        }
    }

    /// Whether this is one of the "too many requests" answers (the request was not executed and
    /// may be sent again later).
    #[must_use]
    pub fn is_rate_limit(self) -> bool {
        matches!(
            self,
            RetCode::TooManyVisits
                | RetCode::IpRateLimit
                | RetCode::FrequencyProtection
                | RetCode::SessionRateLimit
        )
    }
}

impl fmt::Display for RetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// What can go wrong with a Bybit call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BybitError {
    /// The connection or runtime failed (timeout, disconnected, stopped, ...).
    #[error(transparent)]
    Nova(#[from] nova_core::Error),
    /// Bybit refused the request.
    #[error("bybit refused {op}: {code} {message}")]
    Rejected {
        /// The op.
        op: String,
        /// The `retCode`.
        code: RetCode,
        /// The `retMsg`.
        message: String,
    },
    /// The answer could not be read.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The call does not fit this client's endpoint.
    #[error("{0}")]
    WrongEndpoint(String),
}

impl BybitError {
    /// The `retCode` of a refusal.
    #[must_use]
    pub fn ret_code(&self) -> Option<RetCode> {
        match self {
            BybitError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            0, 10001, 10002, 10003, 10004, 10005, 10006, 10016, 10019, 10403, 10404, 10429, 20001,
            20003, 20006, 110_001, 110_072, 42,
        ] {
            assert_eq!(RetCode::from_code(code).code(), code);
        }
        assert!(!RetCode::OrderNotExists.is_rate_limit());
    }
}
