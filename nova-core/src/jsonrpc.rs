//! JSON-RPC 2.0 envelopes, written once for every platform that speaks it (Deribit, Ethereum
//! nodes, what `nova-gen --platform jsonrpc` generates, the test kit's servers).
//!
//! The wire shapes ([the specification](https://www.jsonrpc.org/specification)):
//!
//! ```text
//! request       {"jsonrpc":"2.0","id":7,"method":"public/test","params":{..}}
//! response      {"jsonrpc":"2.0","id":7,"result":..}
//! error         {"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found","data":..}}
//! notification  {"jsonrpc":"2.0","method":"subscription","params":{..}}
//! ```
//!
//! - Writing: [`Request`] (and [`request`], which borrows everything and builds the message
//!   in one pass), [`Response`], [`Notification`]; `"jsonrpc":"2.0"` always comes first.
//! - Ids are typed: [`Id`] is a number, a string or `null`, and converts to and from the
//!   runtime's [`RequestId`].
//! - Errors: [`ErrorObject`], generic over its code so that a platform can read the code as its
//!   own typed enum (nova-ethereum's `ErrorCode`); a platform whose error object has its own
//!   rules plugs that type in as `Response<E>`'s `E`.
//! - Reading on the hot path: [`Envelope`] deserializes the members that tell messages apart,
//!   borrowed from the message, and leaves the rest to types the platform chooses (`P`, `R`,
//!   `E`, skipped without being built when left at [`IgnoredAny`]). One parse of an envelope
//!   can classify a message, validate it and decode its data, as
//!   [`MessageHandler::message_type`](crate::MessageHandler::message_type) wants.
//!
//! ```
//! use nova_core::jsonrpc::{Envelope, Id, IgnoredAny, Kind};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Params<'a> {
//!     channel: &'a str,
//! }
//!
//! let text = br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades","data":[]}}"#;
//! let note = Envelope::<Params<'_>>::parse(text)?;
//! assert!(note.is_v2());
//! assert_eq!(note.kind(), Kind::Notification { method: "subscription" });
//! assert_eq!(note.params.map(|p| p.channel), Some("trades"));
//!
//! let reply = Envelope::<IgnoredAny>::parse(br#"{"jsonrpc":"2.0","id":3,"result":"ok"}"#)?;
//! assert_eq!(reply.kind(), Kind::Response { id: &Id::Num(3) });
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;

pub use serde::de::IgnoredAny;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::handler::RequestId;
use crate::message::Message;

/// The protocol version every message carries in its `jsonrpc` member.
pub const VERSION: &str = "2.0";

/// `-32700`: the server could not parse the JSON.
pub const PARSE_ERROR: i64 = -32700;
/// `-32600`: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// `-32601`: the method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// `-32602`: invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// `-32603`: internal JSON-RPC error.
pub const INTERNAL_ERROR: i64 = -32603;

/// A request or response id: JSON-RPC allows numbers, strings and `null`.
///
/// Numbers are unsigned integers, as nova numbers requests: a negative or fractional id does
/// not answer any request nova sent, and reading one is an error.
///
/// ```
/// use nova_core::RequestId;
/// use nova_core::jsonrpc::Id;
///
/// let id: Id = serde_json::from_str("7")?;
/// assert_eq!(id, Id::Num(7));
/// assert_eq!(id.to_request_id(), Some(RequestId::Num(7)));
/// assert_eq!(Id::from(&RequestId::Str("a".into())), Id::Str("a".into()));
/// assert_eq!(serde_json::to_string(&Id::Null)?, "null");
/// assert!(serde_json::from_str::<Id>("-1").is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id.
    Num(u64),
    /// A string id.
    Str(String),
    /// `null`: a server's answer to a request it could not read.
    #[default]
    Null,
}

impl Id {
    /// Whether this is `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The runtime's request id for this id (`None` for `null`).
    #[must_use]
    pub fn to_request_id(&self) -> Option<RequestId> {
        match self {
            Self::Num(n) => Some(RequestId::Num(*n)),
            Self::Str(s) => Some(RequestId::Str(s.clone())),
            Self::Null => None,
        }
    }

    /// The runtime's request id for this id (`None` for `null`), without copying a string.
    #[must_use]
    pub fn into_request_id(self) -> Option<RequestId> {
        match self {
            Self::Num(n) => Some(RequestId::Num(n)),
            Self::Str(s) => Some(RequestId::Str(s)),
            Self::Null => None,
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num(n) => write!(f, "{n}"),
            Self::Str(s) => f.write_str(s),
            Self::Null => f.write_str("null"),
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Self::Num(n)
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<RequestId> for Id {
    fn from(id: RequestId) -> Self {
        match id {
            RequestId::Num(n) => Self::Num(n),
            RequestId::Str(s) => Self::Str(s),
        }
    }
}

impl From<&RequestId> for Id {
    fn from(id: &RequestId) -> Self {
        match id {
            RequestId::Num(n) => Self::Num(*n),
            RequestId::Str(s) => Self::Str(s.clone()),
        }
    }
}

impl PartialEq<RequestId> for Id {
    fn eq(&self, other: &RequestId) -> bool {
        match (self, other) {
            (Self::Num(a), RequestId::Num(b)) => a == b,
            (Self::Str(a), RequestId::Str(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        IdRef::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl Visitor<'_> for IdVisitor {
            type Value = Id;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC id: an unsigned integer, a string or null")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(Id::Num(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
                u64::try_from(n)
                    .map(Id::Num)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                Ok(Id::Str(s.to_owned()))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<Id, E> {
                Ok(Id::Str(s))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id::Null)
            }
        }

        deserializer.deserialize_any(IdVisitor)
    }
}

/// An id to write, borrowed from an [`Id`] or a [`RequestId`].
#[derive(Clone, Copy)]
enum IdRef<'a> {
    Num(u64),
    Str(&'a str),
    Null,
}

impl<'a> From<&'a Id> for IdRef<'a> {
    fn from(id: &'a Id) -> Self {
        match id {
            Id::Num(n) => Self::Num(*n),
            Id::Str(s) => Self::Str(s),
            Id::Null => Self::Null,
        }
    }
}

impl<'a> From<&'a RequestId> for IdRef<'a> {
    fn from(id: &'a RequestId) -> Self {
        match id {
            RequestId::Num(n) => Self::Num(*n),
            RequestId::Str(s) => Self::Str(s),
        }
    }
}

impl Serialize for IdRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Num(n) => serializer.serialize_u64(*n),
            Self::Str(s) => serializer.serialize_str(s),
            Self::Null => serializer.serialize_unit(),
        }
    }
}

/// JSON text of a value that always serializes (ids, strings, `Value`s: a `Value` map's keys
/// are strings), so the empty fallback is never taken.
fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A request to write, borrowed: `{"jsonrpc":"2.0","id":..,"method":..,"params":..}`, with
/// `params` left out when it is `null` (the specification allows an array, an object, or
/// nothing).
struct RequestRef<'a> {
    id: IdRef<'a>,
    method: &'a str,
    params: &'a Value,
}

impl Serialize for RequestRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let with_params = !self.params.is_null();
        let mut s = serializer.serialize_struct("Request", 3 + usize::from(with_params))?;
        s.serialize_field("jsonrpc", VERSION)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("method", self.method)?;
        if with_params {
            s.serialize_field("params", self.params)?;
        } else {
            s.skip_field("params")?;
        }
        s.end()
    }
}

/// A request message, `{"jsonrpc":"2.0","id":ID,"method":METHOD,"params":PARAMS}`, written from
/// borrowed parts (what a platform adapter's `subscribe` or `generate_auth_data` returns).
/// `params` is left out when it is `null`.
///
/// ```
/// use nova_core::RequestId;
/// use nova_core::jsonrpc;
///
/// let m = jsonrpc::request(&RequestId::Num(7), "public/test", &serde_json::json!({}));
/// assert_eq!(m.as_text(), Some(r#"{"jsonrpc":"2.0","id":7,"method":"public/test","params":{}}"#));
/// ```
#[must_use]
pub fn request(id: &RequestId, method: &str, params: &Value) -> Message {
    Message::text(to_json(&RequestRef {
        id: id.into(),
        method,
        params,
    }))
}

/// A JSON-RPC 2.0 request (a call with an id).
///
/// ```
/// use nova_core::jsonrpc::{Id, Request};
///
/// let request = Request::new(1, "eth_subscribe", serde_json::json!(["newHeads"]));
/// assert_eq!(
///     request.to_json(),
///     r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#
/// );
/// let read: Request = serde_json::from_str(&request.to_json())?;
/// assert_eq!(read, request);
/// assert_eq!(Request::new(Id::Null, "ping", serde_json::Value::Null).to_json(), r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The id the response will carry.
    pub id: Id,
    /// The method.
    pub method: String,
    /// The parameters: an array or an object; `Value::Null` for none (left out on the wire).
    pub params: Value,
}

impl Request {
    /// A request.
    #[must_use]
    pub fn new(id: impl Into<Id>, method: impl Into<String>, params: Value) -> Self {
        Self {
            id: id.into(),
            method: method.into(),
            params,
        }
    }

    /// The request as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The request as a text message.
    #[must_use]
    pub fn to_message(&self) -> Message {
        Message::text(self.to_json())
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RequestRef {
            id: (&self.id).into(),
            method: &self.method,
            params: &self.params,
        }
        .serialize(serializer)
    }
}

/// Reads a request: `"jsonrpc"` must be `"2.0"`, `"id"` and `"method"` must be there, and a
/// missing `"params"` reads as `Value::Null`.
impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire<'a> {
            #[serde(borrow)]
            jsonrpc: Cow<'a, str>,
            id: Id,
            method: String,
            #[serde(default)]
            params: Value,
        }
        let wire = Wire::deserialize(deserializer)?;
        if wire.jsonrpc != VERSION {
            return Err(de::Error::invalid_value(
                de::Unexpected::Str(&wire.jsonrpc),
                &"\"2.0\"",
            ));
        }
        Ok(Self {
            id: wire.id,
            method: wire.method,
            params: wire.params,
        })
    }
}

/// A JSON-RPC error object, generic over its code: `i64` by default, or a platform's own
/// typed code (anything that reads from and writes to a JSON number).
///
/// ```
/// use nova_core::jsonrpc::{ErrorObject, METHOD_NOT_FOUND};
///
/// let error: ErrorObject = serde_json::from_str(r#"{"code":-32601,"message":"Method not found"}"#)?;
/// assert_eq!(error.code, METHOD_NOT_FOUND);
/// assert_eq!(error.to_string(), "JSON-RPC error -32601: Method not found");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject<C = i64> {
    /// The code.
    pub code: C,
    /// The server's message (empty when it sent none).
    #[serde(default)]
    pub message: String,
    /// Extra data, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl<C> ErrorObject<C> {
    /// An error object without data.
    #[must_use]
    pub fn new(code: C, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds data.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl<C: fmt::Display> fmt::Display for ErrorObject<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JSON-RPC error {}: {}", self.code, self.message)
    }
}

impl<C: fmt::Display + fmt::Debug> std::error::Error for ErrorObject<C> {}

/// A JSON-RPC 2.0 response: a result or an error, for one id. `E` is the error object's type
/// ([`ErrorObject`] unless the platform has its own).
///
/// Reading is lenient where servers are: a missing `"jsonrpc"` is accepted, and a missing
/// `"id"` reads as `null`. Writing gives `"error"` when there is one, else `"result"` (`null`
/// when there is none), as the specification wants exactly one of them.
///
/// ```
/// use nova_core::RequestId;
/// use nova_core::jsonrpc::{ErrorObject, Response};
///
/// let ok: Response = serde_json::from_str(r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)?;
/// assert!(ok.answers(&RequestId::Num(1)));
/// assert_eq!(ok.into_result().ok(), Some(serde_json::json!("0x1")));
///
/// let failed = Response::<ErrorObject>::error(2, ErrorObject::new(10028, "too_many_requests"));
/// assert_eq!(
///     serde_json::to_string(&failed)?,
///     r#"{"jsonrpc":"2.0","id":2,"error":{"code":10028,"message":"too_many_requests"}}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Response<E = ErrorObject> {
    /// The id of the request answered (`null` when the server could not read it).
    #[serde(default)]
    pub id: Id,
    /// The result, on success (absent on error; JSON `null` reads as absent).
    pub result: Option<Value>,
    /// The error, on failure.
    pub error: Option<E>,
}

impl<E> Response<E> {
    /// A successful response.
    #[must_use]
    pub fn result(id: impl Into<Id>, result: Value) -> Self {
        Self {
            id: id.into(),
            result: Some(result),
            error: None,
        }
    }

    /// A failed response.
    #[must_use]
    pub fn error(id: impl Into<Id>, error: E) -> Self {
        Self {
            id: id.into(),
            result: None,
            error: Some(error),
        }
    }

    /// Whether this answers the request with the id `id`.
    #[must_use]
    pub fn answers(&self, id: &RequestId) -> bool {
        self.id == *id
    }

    /// The result, or the error. A response with neither member reads as a `null` result.
    ///
    /// # Errors
    /// The error object, when the response carries one.
    pub fn into_result(self) -> Result<Value, E> {
        match (self.error, self.result) {
            (Some(error), _) => Err(error),
            (None, result) => Ok(result.unwrap_or(Value::Null)),
        }
    }
}

impl<E: Serialize> Response<E> {
    /// The response as JSON text.
    ///
    /// # Errors
    /// When the error object does not serialize.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

impl<E: Serialize> Serialize for Response<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Response", 3)?;
        s.serialize_field("jsonrpc", VERSION)?;
        s.serialize_field("id", &self.id)?;
        match &self.error {
            Some(error) => {
                s.skip_field("result")?;
                s.serialize_field("error", error)?;
            }
            None => {
                s.serialize_field("result", self.result.as_ref().unwrap_or(&Value::Null))?;
                s.skip_field("error")?;
            }
        }
        s.end()
    }
}

/// A notification: a method and its parameters, no id, no answer. Servers send them for
/// subscription data and heartbeats; `P` is the type of the parameters.
///
/// ```
/// use nova_core::jsonrpc::Notification;
/// use serde_json::json;
///
/// let note = Notification::new("subscription", json!({"channel": "trades", "data": []}));
/// assert_eq!(
///     note.to_json(),
///     r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades","data":[]}}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Notification<P = Value> {
    /// The method (`subscription`, `eth_subscription`, `heartbeat`, ...).
    pub method: String,
    /// The parameters.
    pub params: P,
}

impl<P> Notification<P> {
    /// A notification.
    #[must_use]
    pub fn new(method: impl Into<String>, params: P) -> Self {
        Self {
            method: method.into(),
            params,
        }
    }
}

impl Notification<Value> {
    /// The notification as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The notification as a text message.
    #[must_use]
    pub fn to_message(&self) -> Message {
        Message::text(self.to_json())
    }
}

impl<P: Serialize> Serialize for Notification<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Notification", 3)?;
        s.serialize_field("jsonrpc", VERSION)?;
        s.serialize_field("method", &self.method)?;
        s.serialize_field("params", &self.params)?;
        s.end()
    }
}

/// Any JSON-RPC message, read in one pass for classification: the members that tell messages
/// apart (`jsonrpc`, `id`, `method`) and whichever parts of `params`, `result` and `error` the
/// reader asks for with `P`, `R` and `E`. Strings are borrowed from the message where they
/// have no escapes; what is left at [`IgnoredAny`] is skipped without being built.
///
/// `id` tells a `null` id (`Some(Id::Null)`) from a missing one (`None`). A JSON `null` in
/// `params`, `result` or `error` reads as absent.
///
/// ```
/// use nova_core::jsonrpc::{Envelope, ErrorObject, IgnoredAny, Kind};
///
/// let bytes = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#;
/// let reply = Envelope::<'_, IgnoredAny, IgnoredAny, ErrorObject>::parse(bytes)?;
/// assert!(matches!(reply.kind(), Kind::Response { id } if id.is_null()));
/// assert_eq!(reply.error.map(|e| e.code), Some(-32700));
/// assert!(Envelope::<IgnoredAny>::parse(b"[1, 2]").is_err(), "a batch is not one envelope");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Deserialize)]
pub struct Envelope<'a, P = IgnoredAny, R = IgnoredAny, E = IgnoredAny> {
    /// The protocol version, `"2.0"` for JSON-RPC 2.0.
    #[serde(borrow, default, deserialize_with = "cow")]
    pub jsonrpc: Option<Cow<'a, str>>,
    /// The id: `None` when the member is missing, `Some(Id::Null)` when it is `null`.
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Id>,
    /// The method, for requests and notifications.
    #[serde(borrow, default, deserialize_with = "cow")]
    pub method: Option<Cow<'a, str>>,
    /// The parameters, read as `P`.
    pub params: Option<P>,
    /// The result, read as `R`.
    pub result: Option<R>,
    /// The error, read as `E`.
    pub error: Option<E>,
}

/// An optional string, borrowed when it has no escapes (serde's own `Option<Cow<str>>` always
/// copies).
fn cow<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Option::<Borrowed<'a>>::deserialize(deserializer).map(|s| s.map(|s| s.0))
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Id>, D::Error> {
    Id::deserialize(deserializer).map(Some)
}

impl<'a, P, R, E> Envelope<'a, P, R, E>
where
    Self: Deserialize<'a>,
{
    /// Reads an envelope from a message's bytes.
    ///
    /// # Errors
    /// When the bytes are not one JSON object (a batch is an array of envelopes), or a member
    /// does not have the type asked for.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(de::Error::custom(
                "not a JSON-RPC envelope: not a JSON object",
            ));
        }
        serde_json::from_slice(bytes)
    }
}

impl<P, R, E> Envelope<'_, P, R, E> {
    /// Whether the message says it is JSON-RPC 2.0.
    #[must_use]
    pub fn is_v2(&self) -> bool {
        self.jsonrpc.as_deref() == Some(VERSION)
    }

    /// What the message is by the specification's rules: a method with an id is a request, a
    /// method without one a notification, an id without a method a response.
    #[must_use]
    pub fn kind(&self) -> Kind<'_> {
        match (&self.id, self.method.as_deref()) {
            (Some(id), Some(method)) => Kind::Request { id, method },
            (None, Some(method)) => Kind::Notification { method },
            (Some(id), None) => Kind::Response { id },
            (None, None) => Kind::Invalid,
        }
    }
}

/// What an [`Envelope`] is ([`Envelope::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind<'e> {
    /// A call that wants an answer (sent by a server, this is a server-to-client request).
    Request {
        /// Its id.
        id: &'e Id,
        /// Its method.
        method: &'e str,
    },
    /// A call without an id: no answer.
    Notification {
        /// Its method.
        method: &'e str,
    },
    /// The answer to the request with this id.
    Response {
        /// The id (`null` when the server could not read the request).
        id: &'e Id,
    },
    /// Neither an id nor a method.
    Invalid,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
