//! JSON-RPC 2.0 as Ethereum nodes speak it: the envelope is nova-core's
//! ([`nova_core::jsonrpc`]); here are the error codes, typed, and the classification of what
//! a node sends.
//!
//! Everything a node sends over the WebSocket is one of three shapes, told apart by their
//! members ([`Incoming::parse`]):
//!
//! - a **response**: `{"jsonrpc":"2.0","id":1,"result":...}` or `{..,"id":1,"error":{"code":..,"message":..}}`;
//! - a **notification** of a subscription: `{"jsonrpc":"2.0","method":"eth_subscription",
//!   "params":{"subscription":"0x..","result":...}}` — the subscription id is the server's,
//!   new on every connection;
//! - a **batch**: an array of responses, in any order, matched by `id`.
//!
//! Error codes follow the JSON-RPC 2.0 specification (`-32700`..`-32600`), geth (`3` for a
//! reverted `eth_call`, `-32000` for generic backend errors) and EIP-1474 (`-32000`..`-32006`);
//! see [`ErrorCode`].

use std::borrow::Cow;
use std::fmt;

pub use nova_core::jsonrpc::Id;
use nova_core::jsonrpc::{Envelope, ErrorObject};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The method name of subscription notifications.
pub const SUBSCRIPTION_METHOD: &str = "eth_subscription";

/// A JSON-RPC 2.0 request (nova-core's).
///
/// ```
/// use nova_ethereum::{Id, JsonRpcRequest};
///
/// let request = JsonRpcRequest::new(Id::Num(1), "eth_subscribe", serde_json::json!(["newHeads"]));
/// assert_eq!(
///     request.to_json(),
///     r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#
/// );
/// ```
pub type JsonRpcRequest = nova_core::jsonrpc::Request;

/// A JSON-RPC error code, typed.
///
/// Codes mean different things to different sources in the `-32000` range: EIP-1474's names are
/// used here, with geth's meaning noted where it differs. Unknown codes keep their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `-32700`: the server could not parse the JSON.
    ParseError,
    /// `-32600`: not a valid request object (also geth's "batch too large").
    InvalidRequest,
    /// `-32601`: the method does not exist or is not available (also geth's unknown
    /// subscription type, and "notifications not supported" over HTTP).
    MethodNotFound,
    /// `-32602`: invalid method parameters.
    InvalidParams,
    /// `-32603`: internal JSON-RPC error.
    InternalError,
    /// `3`: `eth_call` / `eth_estimateGas` execution reverted; `data` holds the revert data.
    ExecutionReverted,
    /// `-32000`: invalid input — geth's generic backend error ("nonce too low", ...).
    InvalidInput,
    /// `-32001`: resource not found.
    ResourceNotFound,
    /// `-32002`: resource unavailable (geth: "request timed out").
    ResourceUnavailable,
    /// `-32003`: transaction rejected (geth: "response too large").
    TransactionRejected,
    /// `-32004`: method not supported.
    MethodNotSupported,
    /// `-32005`: limit exceeded (rate limits of hosted nodes).
    LimitExceeded,
    /// `-32006`: JSON-RPC version not supported.
    VersionNotSupported,
    /// Another code in the server-error range `-32099..=-32007`.
    Server(i64),
    /// Any other code.
    Other(i64),
}

impl ErrorCode {
    /// The code for a number.
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        match code {
            -32700 => Self::ParseError,
            -32600 => Self::InvalidRequest,
            -32601 => Self::MethodNotFound,
            -32602 => Self::InvalidParams,
            -32603 => Self::InternalError,
            3 => Self::ExecutionReverted,
            -32000 => Self::InvalidInput,
            -32001 => Self::ResourceNotFound,
            -32002 => Self::ResourceUnavailable,
            -32003 => Self::TransactionRejected,
            -32004 => Self::MethodNotSupported,
            -32005 => Self::LimitExceeded,
            -32006 => Self::VersionNotSupported,
            -32099..=-32007 => Self::Server(code),
            other => Self::Other(other),
        }
    }

    /// The number.
    #[must_use]
    pub fn code(&self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::ExecutionReverted => 3,
            Self::InvalidInput => -32000,
            Self::ResourceNotFound => -32001,
            Self::ResourceUnavailable => -32002,
            Self::TransactionRejected => -32003,
            Self::MethodNotSupported => -32004,
            Self::LimitExceeded => -32005,
            Self::VersionNotSupported => -32006,
            Self::Server(code) | Self::Other(code) => *code,
        }
    }

    /// Whether trying the same call again later can succeed (rate limits, timeouts, internal
    /// errors), as opposed to a call that is wrong.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::InternalError | Self::ResourceUnavailable | Self::LimitExceeded
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Self::from_code)
    }
}

/// A JSON-RPC error object with its code typed (`Display`: `JSON-RPC error CODE: MESSAGE`).
pub type RpcError = ErrorObject<ErrorCode>;

/// A JSON-RPC 2.0 response: a result or an error ([`RpcError`]), for one id.
pub type JsonRpcResponse = nova_core::jsonrpc::Response<RpcError>;

/// The `params` of an `eth_subscription` notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The server's subscription id (opaque; new on every connection).
    pub subscription: String,
    /// The payload: a header, a log, a transaction hash, a sync status.
    pub result: Value,
}

/// Anything a node sends, classified.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// A response to one request.
    Response(JsonRpcResponse),
    /// A subscription notification.
    Notification(Notification),
    /// The responses to a batch.
    Batch(Vec<JsonRpcResponse>),
    /// Valid JSON of another shape (kept whole).
    Other(Value),
}

impl Incoming {
    /// Classifies a message's JSON text. Never panics.
    ///
    /// ```
    /// use nova_ethereum::Incoming;
    ///
    /// let n = Incoming::parse(br#"{"jsonrpc":"2.0","method":"eth_subscription",
    ///     "params":{"subscription":"0xab","result":"0x01"}}"#).unwrap();
    /// assert!(matches!(n, Incoming::Notification(ref n) if n.subscription == "0xab"));
    /// ```
    ///
    /// # Errors
    /// When the text is not JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_slice(bytes)?;
        Ok(Self::from_value(value))
    }

    /// Classifies parsed JSON.
    #[must_use]
    pub fn from_value(value: Value) -> Self {
        match &value {
            Value::Array(items) => {
                let responses: Option<Vec<JsonRpcResponse>> = items
                    .iter()
                    .map(|v| serde_json::from_value(v.clone()).ok())
                    .collect();
                match responses {
                    Some(responses) if !items.is_empty() => Self::Batch(responses),
                    _ => Self::Other(value),
                }
            }
            Value::Object(map) => {
                if map.get("method").and_then(Value::as_str) == Some(SUBSCRIPTION_METHOD) {
                    return match map.get("params").cloned().map(serde_json::from_value) {
                        Some(Ok(n)) => Self::Notification(n),
                        _ => Self::Other(value),
                    };
                }
                if map.contains_key("id")
                    && (map.contains_key("result") || map.contains_key("error"))
                {
                    return match serde_json::from_value(value.clone()) {
                        Ok(r) => Self::Response(r),
                        Err(_) => Self::Other(value),
                    };
                }
                Self::Other(value)
            }
            _ => Self::Other(value),
        }
    }
}

/// What a message is, read cheaply: only `id`, `method` and `params.subscription` are looked
/// at, the payload is skipped without being built (the adapter's `message_type` reads the
/// same members, borrowed); [`Incoming::parse`] builds everything.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peek {
    /// A response to the request with this id (`null` ids included).
    Response(Id),
    /// A subscription notification for this server subscription id.
    Notification(String),
    /// A JSON array: the responses to a batch.
    Batch,
    /// Not JSON-RPC, or not JSON at all.
    Other,
}

impl Peek {
    /// Classifies a message's bytes. Never panics.
    ///
    /// ```
    /// use nova_ethereum::{Id, Peek};
    ///
    /// assert_eq!(Peek::of(br#"{"jsonrpc":"2.0","id":7,"result":"0x1"}"#), Peek::Response(Id::Num(7)));
    /// assert_eq!(
    ///     Peek::of(br#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{}}}"#),
    ///     Peek::Notification("0xab".into())
    /// );
    /// assert_eq!(Peek::of(b"garbage"), Peek::Other);
    /// ```
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => return Self::Batch,
            Some(b'{') => {}
            _ => return Self::Other,
        }
        let Ok(envelope) = Envelope::<PeekParams<'_>>::parse(bytes) else {
            return Self::Other;
        };
        if envelope.method.as_deref() == Some(SUBSCRIPTION_METHOD) {
            return match envelope.params.and_then(|p| p.subscription) {
                Some(id) => Self::Notification(id.into_owned()),
                None => Self::Other,
            };
        }
        match envelope.id {
            Some(id) if envelope.method.is_none() => Self::Response(id),
            _ => Self::Other,
        }
    }
}

/// The part of `params` [`Peek::of`] reads.
#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(default, borrow)]
    subscription: Option<Cow<'a, str>>,
}

/// What the adapter's `message_type` needs of a message, found in one pass over the envelope
/// with everything borrowed from the message (the hot path: nothing allocated).
#[derive(Debug)]
pub(crate) enum Route<'m> {
    /// An `eth_subscription` notification: the server's subscription id and the `result`.
    Notification(&'m str, &'m RawValue),
    /// A response to the request with this id (`null` ids included).
    Response(Id),
    /// Anything else: batches, other methods, notifications whose subscription id has escapes
    /// (no node writes one), what is not JSON-RPC.
    Other,
}

/// The part of `params` [`route`] reads, borrowed.
#[derive(Deserialize)]
struct RouteParams<'a> {
    #[serde(default, borrow)]
    subscription: Option<&'a str>,
    // `deserialize_with` so that `"result": null` reads as the raw `null`, not as absent.
    #[serde(default, borrow, deserialize_with = "present_raw")]
    result: Option<&'a RawValue>,
}

fn present_raw<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'a RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// Classifies a message for routing (see [`Route`]). Never panics.
pub(crate) fn route(bytes: &[u8]) -> Route<'_> {
    let Ok(envelope) = Envelope::<RouteParams<'_>>::parse(bytes) else {
        return Route::Other;
    };
    if envelope.method.as_deref() == Some(SUBSCRIPTION_METHOD) {
        return match envelope.params {
            Some(RouteParams {
                subscription: Some(subscription),
                result: Some(result),
            }) => Route::Notification(subscription, result),
            _ => Route::Other,
        };
    }
    match envelope.id {
        Some(id) if envelope.method.is_none() => Route::Response(id),
        _ => Route::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for code in [
            -32700, -32600, -32601, -32602, -32603, 3, -32000, -32001, -32002, -32003, -32004,
            -32005, -32006, -32050, -1, 0, 42,
        ] {
            assert_eq!(ErrorCode::from_code(code).code(), code);
        }
        assert_eq!(ErrorCode::from_code(-32050), ErrorCode::Server(-32050));
        assert_eq!(ErrorCode::from_code(42), ErrorCode::Other(42));
    }

    #[test]
    fn responses_and_errors_parse() {
        let ok = Incoming::parse(
            br#"{"jsonrpc":"2.0","id":1,"result":"0xcd0c3e8af590364c09d0fa6a1210faf5"}"#,
        );
        let Ok(Incoming::Response(ok)) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(ok.id, Id::Num(1));
        assert_eq!(
            ok.into_result().ok(),
            Some(Value::from("0xcd0c3e8af590364c09d0fa6a1210faf5"))
        );

        let err = Incoming::parse(
            br#"{"jsonrpc":"2.0","id":"a","error":{"code":3,"message":"execution reverted","data":"0x08c379a0"}}"#,
        );
        let Ok(Incoming::Response(err)) = err else {
            panic!("{err:?}")
        };
        assert_eq!(err.id, Id::Str("a".into()));
        let err = err.into_result().err();
        assert_eq!(
            err.as_ref().map(|e| e.code),
            Some(ErrorCode::ExecutionReverted)
        );
        assert_eq!(err.and_then(|e| e.data), Some(Value::from("0x08c379a0")));

        let null = Incoming::parse(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
        );
        assert!(matches!(
            null,
            Ok(Incoming::Response(JsonRpcResponse { id: Id::Null, .. }))
        ));
    }

    #[test]
    fn batches_notifications_and_odd_shapes() {
        let batch = Incoming::parse(
            br#"[{"jsonrpc":"2.0","id":2,"result":"0x1"},{"jsonrpc":"2.0","id":1,"result":true}]"#,
        );
        assert!(matches!(batch, Ok(Incoming::Batch(ref b)) if b.len() == 2));
        assert!(matches!(Incoming::parse(b"[]"), Ok(Incoming::Other(_))));
        assert!(matches!(Incoming::parse(b"7"), Ok(Incoming::Other(_))));
        assert!(matches!(
            Incoming::parse(
                br#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"result":1}}"#
            ),
            Ok(Incoming::Other(_))
        ));
        assert!(Incoming::parse(b"{not json").is_err());
        assert!(matches!(
            Incoming::parse(br#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#),
            Ok(Incoming::Other(_))
        ));
    }

    #[test]
    fn peek_classifies_without_panicking() {
        assert_eq!(Peek::of(br#" [{"id":1,"result":1}]"#), Peek::Batch);
        assert_eq!(
            Peek::of(br#"{"id":"x","error":{"code":1}}"#),
            Peek::Response(Id::Str("x".into()))
        );
        assert_eq!(
            Peek::of(br#"{"id":null,"error":{"code":-32700}}"#),
            Peek::Response(Id::Null)
        );
        assert_eq!(
            Peek::of(br#"{"id":1,"method":"eth_call","params":[]}"#),
            Peek::Other
        );
        assert_eq!(
            Peek::of(br#"{"method":"eth_subscription","params":{"result":1}}"#),
            Peek::Other
        );
        assert_eq!(
            Peek::of(br#"{"method":"eth_subscription","params":[1]}"#),
            Peek::Other
        );
        assert_eq!(Peek::of(br#"{"id":-1,"result":1}"#), Peek::Other);
        assert_eq!(Peek::of(b"{\"id\":1,"), Peek::Other);
        assert_eq!(Peek::of(b""), Peek::Other);
        assert_eq!(Peek::of(&[0xff, 0xfe]), Peek::Other);
        // Escaped subscription ids are decoded (not borrowed).
        assert_eq!(
            Peek::of(br#"{"method":"eth_subscription","params":{"subscription":"0x\u0061b","result":1}}"#),
            Peek::Notification("0xab".into())
        );
    }

    #[test]
    fn route_borrows_notifications_and_reads_response_ids() {
        let note = br#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"number":"0x1"}}}"#;
        let Route::Notification(id, result) = route(note) else {
            panic!("not a notification")
        };
        assert_eq!((id, result.get()), ("0xab", r#"{"number":"0x1"}"#));
        let null =
            br#"{"method":"eth_subscription","params":{"subscription":"0xab","result":null}}"#;
        assert!(matches!(route(null), Route::Notification("0xab", r) if r.get() == "null"));
        assert!(matches!(
            route(br#"{"jsonrpc":"2.0","id":7,"result":"0x1"}"#),
            Route::Response(Id::Num(7))
        ));
        assert!(matches!(
            route(br#"{"id":null,"error":{"code":-32700}}"#),
            Route::Response(Id::Null)
        ));
        for other in [
            &br#"[{"id":1,"result":1}]"#[..],
            br#"{"method":"eth_subscription","params":{"result":1}}"#,
            br#"{"method":"eth_subscription","params":{"subscription":"0x\u0061b","result":1}}"#,
            br#"{"id":1,"method":"eth_call","params":[]}"#,
            br#"{"id":-1,"result":1}"#,
            b"garbage",
        ] {
            assert!(
                matches!(route(other), Route::Other),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
