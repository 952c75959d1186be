//! JSON-RPC 2.0 as Deribit uses it, and the classification of everything it sends. The
//! envelope is nova-core's ([`nova_core::jsonrpc`]); the error object is Deribit's
//! ([`RpcError`]).
//!
//! ```text
//! → {"jsonrpc":"2.0","id":8066,"method":"public/ticker","params":{"instrument_name":"BTC-PERPETUAL"}}
//! ← {"jsonrpc":"2.0","id":8066,"result":{…},"usIn":…,"usOut":…,"usDiff":…,"testnet":false}
//! ← {"jsonrpc":"2.0","id":8163,"error":{"code":11050,"message":"bad_request"}}
//! ← {"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{…}}}
//! ← {"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}
//! ```
//!
//! [`peek`] classifies a message without building a tree of its data (the adapter's
//! `message_type` does the same, with the channel borrowed: the hot path); [`Incoming::parse`]
//! decodes it fully. A
//! [`Notification`] keeps the original [`Message`] so the raw JSON stays reachable.

use std::borrow::Cow;

pub use nova_core::jsonrpc::request;
use nova_core::jsonrpc::{Envelope, Id, IgnoredAny};
use nova_core::{Data, Decoder, Message, RequestId, Sequence};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DeribitError, RpcError};
use crate::subscription::ChannelKind;
use crate::types::{BookUpdate, Order, PriceIndex, Ticker, Trade, UserTrade};

/// The `method` of subscription notifications.
pub const SUBSCRIPTION_METHOD: &str = "subscription";
/// The `method` of heartbeat notifications.
pub const HEARTBEAT_METHOD: &str = "heartbeat";

/// What a message is, found without decoding its data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peek {
    /// A response to the request with this id.
    Response(RequestId),
    /// A subscription notification on this channel.
    Notification(String),
    /// A heartbeat; `true` for a `test_request` that must be answered.
    Heartbeat {
        /// Whether it is a `test_request`.
        test_request: bool,
    },
    /// Not JSON-RPC, or a response without an id.
    Unknown,
}

/// The part of `params` that tells messages apart.
#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow, default)]
    channel: Option<Borrowed<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

/// A string (a channel name, a key), borrowed from the message unless it has escapes (serde
/// copies an `Option<Cow<str>>` otherwise).
#[derive(Deserialize)]
pub(crate) struct Borrowed<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// What a message is, its notification channel borrowed when it can be.
enum Classified<'m> {
    Notification(Cow<'m, str>),
    Other(Peek),
}

/// Classifies a message from its envelope, in one parse (after the fast path).
fn classify(bytes: &[u8]) -> Classified<'_> {
    let Ok(envelope) = Envelope::<PeekParams<'_>>::parse(bytes) else {
        return Classified::Other(Peek::Unknown);
    };
    // Deribit never sends `"id": null`; read as no id.
    let id = envelope.id.and_then(Id::into_request_id);
    match (id, envelope.method.as_deref()) {
        (Some(id), _) => Classified::Other(Peek::Response(id)),
        (None, Some(SUBSCRIPTION_METHOD)) => match envelope.params.and_then(|p| p.channel) {
            Some(Borrowed(channel)) => Classified::Notification(channel),
            None => Classified::Other(Peek::Unknown),
        },
        (None, Some(HEARTBEAT_METHOD)) => Classified::Other(Peek::Heartbeat {
            test_request: envelope
                .params
                .and_then(|p| p.kind)
                .is_some_and(|k| k == "test_request"),
        }),
        _ => Classified::Other(Peek::Unknown),
    }
}

/// Classifies a message (see [`Peek`]).
///
/// ```
/// use nova_core::{Data, Decoder, Message, RequestId, Sequence};
/// use nova_deribit::{Peek, peek};
///
/// let note = Message::text(r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{}}}"#);
/// assert_eq!(peek(&note), Peek::Notification("ticker.BTC-PERPETUAL.100ms".into()));
/// let reply = Message::text(r#"{"jsonrpc":"2.0","id":3,"result":"ok"}"#);
/// assert_eq!(peek(&reply), Peek::Response(RequestId::Num(3)));
/// ```
#[must_use]
pub fn peek(message: &Message) -> Peek {
    if let Some(channel) = fast_channel(message.as_bytes()) {
        return Peek::Notification(channel.to_owned());
    }
    match classify(message.as_bytes()) {
        Classified::Notification(channel) => Peek::Notification(channel.into_owned()),
        Classified::Other(peek) => peek,
    }
}

/// How Deribit writes a notification's start; the channel name follows.
const NOTIFICATION_PREFIX: &[u8] =
    br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":""#;

/// The channel of a notification written the way Deribit writes them, found without parsing
/// (the hot path); `None` for anything else, which then goes through the full classification.
/// The rest of the message is not checked here: whoever reads the data parses it.
fn fast_channel(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(NOTIFICATION_PREFIX)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None; // an escaped name: leave it to the parser
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// The bytes of a notification's data object (from its `{`), when the notification is written
/// the way Deribit writes them: `...{"channel":"<name>","data":{...`; `None` otherwise.
pub(crate) fn fast_data(bytes: &[u8]) -> Option<&[u8]> {
    let channel = fast_channel(bytes)?;
    let rest = bytes.get(NOTIFICATION_PREFIX.len() + channel.len() + 1..)?;
    let data = rest.strip_prefix(br#","data":"#)?;
    data.starts_with(b"{").then_some(data)
}

/// A notification's data, typed by its channel: what a subscription's stream hands the
/// application beside the raw message (`delivery.get::<MarketData>()`). The
/// [`DeribitAdapter`](crate::DeribitAdapter) only classifies the notification on the
/// connection's task; the data is parsed once, when the application first reads it.
///
/// ```
/// use nova_core::{Delivery, Message, MessageHandler, MessageType};
/// use nova_deribit::{DeribitAdapter, DeribitConfig, MarketData};
///
/// let mut adapter = DeribitAdapter::new(DeribitConfig::default());
/// let note = Message::text(r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"instrument_name":"BTC-PERPETUAL","timestamp":1,"best_bid_price":10.5}}}"#);
/// let MessageType::Subscription { route, data, .. } = adapter.message_type(&note) else {
///     panic!("not subscription data");
/// };
/// assert_eq!(route, "ticker.BTC-PERPETUAL.100ms");
/// // What the stream yields: the message, and its data parsed when asked for.
/// let delivery = Delivery::new(note.clone(), data);
/// let Some(MarketData::Ticker(ticker)) = delivery.get::<MarketData>() else { panic!() };
/// assert_eq!(ticker.best_bid_price, Some(10.5));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MarketData {
    /// `ticker.*`
    Ticker(Ticker),
    /// `book.*`
    Book(BookUpdate),
    /// `trades.*`
    Trades(Vec<Trade>),
    /// `deribit_price_index.*`
    PriceIndex(PriceIndex),
}

impl MarketData {
    /// The data of a notification on a channel of `kind`, parsed from the whole message in one
    /// pass; `None` for channels without a type here, or data that does not fit the type (the
    /// raw message still reaches the application).
    #[must_use]
    pub fn parse(kind: ChannelKind, message: &[u8]) -> Option<Self> {
        fn data<T: DeserializeOwned>(message: &[u8]) -> Option<T> {
            Envelope::<TypedParams<T>>::parse(message)
                .ok()?
                .params
                .map(|p| p.data)
        }
        match kind {
            ChannelKind::Ticker => data(message).map(Self::Ticker),
            ChannelKind::Book => data(message).map(Self::Book),
            ChannelKind::Trades => data(message).map(Self::Trades),
            ChannelKind::PriceIndex => data(message).map(Self::PriceIndex),
            _ => None,
        }
    }

    /// The data of a notification message on a channel with a type here (the channel read from
    /// the message); `None` for anything else.
    ///
    /// ```
    /// use nova_core::Message;
    /// use nova_deribit::MarketData;
    ///
    /// let index = Message::text(r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.btc_usd",
    ///   "data":{"index_name":"btc_usd","price":97000.5,"timestamp":1}}}"#);
    /// assert!(matches!(MarketData::from_message(&index), Some(MarketData::PriceIndex(p)) if p.price == 97000.5));
    /// ```
    #[must_use]
    pub fn from_message(message: &Message) -> Option<Self> {
        match glance(message) {
            Glance::Notification(channel) => {
                Self::parse(ChannelKind::of(channel), message.as_bytes())
            }
            Glance::Other(_) => None,
        }
    }

    /// How the data of notifications on channels of `kind` is parsed later, on the consumer's
    /// side (the kind already known, so the channel is not read again); `None` for channels
    /// without a type here.
    pub(crate) fn decoder(kind: ChannelKind) -> Option<Decoder> {
        let decode: Decoder = match kind {
            ChannelKind::Ticker => {
                |m| Self::parse(ChannelKind::Ticker, m.as_bytes()).map(Data::new)
            }
            ChannelKind::Book => |m| Self::parse(ChannelKind::Book, m.as_bytes()).map(Data::new),
            ChannelKind::Trades => {
                |m| Self::parse(ChannelKind::Trades, m.as_bytes()).map(Data::new)
            }
            ChannelKind::PriceIndex => {
                |m| Self::parse(ChannelKind::PriceIndex, m.as_bytes()).map(Data::new)
            }
            _ => return None,
        };
        Some(decode)
    }

    /// Where a book update sits in its channel's sequence (`None` for other data).
    #[must_use]
    pub fn sequence(&self) -> Option<Sequence> {
        let Self::Book(book) = self else {
            return None;
        };
        Some(match book.prev_change_id {
            Some(prev) if !book.is_snapshot() => Sequence::follows(book.change_id, prev),
            _ => Sequence::snapshot(book.change_id),
        })
    }
}

/// A notification's `params` with its data typed; the other fields are skipped.
#[derive(Deserialize)]
struct TypedParams<T> {
    data: T,
}

/// What a message is, borrowed from it: `Some(channel)` for a notification, else the kind.
pub(crate) enum Glance<'m> {
    Notification(&'m str),
    Other(Peek),
}

/// Classifies a message, the channel of a notification borrowed from it: the fast path for
/// Deribit's own layout, then one borrowing parse of the envelope (a notification whose channel
/// name has escapes cannot be borrowed: it counts as unknown, which Deribit never sends).
pub(crate) fn glance(message: &Message) -> Glance<'_> {
    let bytes = message.as_bytes();
    if let Some(channel) = fast_channel(bytes) {
        return Glance::Notification(channel);
    }
    match classify(bytes) {
        Classified::Notification(Cow::Borrowed(channel)) => Glance::Notification(channel),
        Classified::Notification(Cow::Owned(_)) => Glance::Other(Peek::Unknown),
        Classified::Other(peek) => Glance::Other(peek),
    }
}

/// A subscription notification, with its data and the original message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Notification {
    /// The channel.
    pub channel: String,
    /// The data, as JSON.
    pub data: Value,
    /// The message it came in (the raw JSON).
    pub raw: Message,
}

impl Notification {
    /// Parses a notification message.
    ///
    /// # Errors
    /// When the message is not a subscription notification.
    pub fn parse(message: &Message) -> Result<Self, DeribitError> {
        match Incoming::parse(message)? {
            Incoming::Notification(n) => Ok(n),
            other => Err(DeribitError::Unexpected(format!(
                "not a notification: {other:?}"
            ))),
        }
    }

    /// The data as `T`.
    ///
    /// # Errors
    /// When the data does not fit `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, DeribitError> {
        Ok(T::deserialize(&self.data)?)
    }

    /// The data typed by the kind of channel.
    ///
    /// # Errors
    /// When the data does not fit the channel's type.
    pub fn event(&self) -> Result<DeribitEvent, DeribitError> {
        let many = |v: &Value| v.is_array();
        Ok(match ChannelKind::of(&self.channel) {
            ChannelKind::Ticker => DeribitEvent::Ticker(self.data_as()?),
            ChannelKind::Book => DeribitEvent::Book(self.data_as()?),
            ChannelKind::Trades => DeribitEvent::Trades(self.data_as()?),
            ChannelKind::PriceIndex => DeribitEvent::PriceIndex(self.data_as()?),
            ChannelKind::UserOrders if many(&self.data) => DeribitEvent::Orders(self.data_as()?),
            ChannelKind::UserOrders => DeribitEvent::Orders(vec![self.data_as()?]),
            ChannelKind::UserTrades => DeribitEvent::UserTrades(self.data_as()?),
            ChannelKind::Other => DeribitEvent::Other(self.data.clone()),
        })
    }
}

/// Notification data typed by channel.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DeribitEvent {
    /// `ticker.*`
    Ticker(Box<Ticker>),
    /// `book.*`
    Book(Box<BookUpdate>),
    /// `trades.*`
    Trades(Vec<Trade>),
    /// `deribit_price_index.*`
    PriceIndex(PriceIndex),
    /// `user.orders.*` (one order on `raw` channels, several on aggregated ones).
    Orders(Vec<Order>),
    /// `user.trades.*`
    UserTrades(Vec<UserTrade>),
    /// Any other channel: the data as it came.
    Other(Value),
}

/// A response.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Response {
    /// The request's id (absent on errors to unparseable requests).
    pub id: Option<RequestId>,
    /// The result or the error.
    pub outcome: Result<Value, RpcError>,
}

impl Response {
    /// The result as `T`, or the error.
    ///
    /// # Errors
    /// [`DeribitError::Rpc`] when Deribit answered with an error; [`DeribitError::Decode`] when
    /// the result does not fit `T`.
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, DeribitError> {
        let value = self.outcome.map_err(DeribitError::Rpc)?;
        Ok(T::deserialize(value)?)
    }
}

/// Anything Deribit sends, decoded.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// A response to a request.
    Response(Response),
    /// A subscription notification.
    Notification(Notification),
    /// A heartbeat; `true` for a `test_request`.
    Heartbeat {
        /// Whether it is a `test_request`.
        test_request: bool,
    },
}

impl Incoming {
    /// Decodes a message.
    ///
    /// # Errors
    /// When it is not JSON, or not a JSON-RPC response or notification.
    ///
    /// ```
    /// use nova_core::Message;
    /// use nova_deribit::{ErrorCode, Incoming};
    ///
    /// let m = Message::text(r#"{"jsonrpc":"2.0","id":42,"error":{"code":10028,"message":"too_many_requests"}}"#);
    /// let Ok(Incoming::Response(r)) = Incoming::parse(&m) else { panic!() };
    /// assert_eq!(r.outcome.unwrap_err().kind(), ErrorCode::TooManyRequests);
    /// ```
    pub fn parse(message: &Message) -> Result<Self, DeribitError> {
        let envelope = Envelope::<Value, Value, RpcError>::parse(message.as_bytes())?;
        if let Some(method) = envelope.method.as_deref() {
            if envelope.id.is_none() {
                let params = envelope.params.unwrap_or(Value::Null);
                return match method {
                    SUBSCRIPTION_METHOD => {
                        let channel = params
                            .get("channel")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                DeribitError::Unexpected("notification without a channel".into())
                            })?
                            .to_owned();
                        let data = params.get("data").cloned().unwrap_or(Value::Null);
                        Ok(Self::Notification(Notification {
                            channel,
                            data,
                            raw: message.clone(),
                        }))
                    }
                    HEARTBEAT_METHOD => Ok(Self::Heartbeat {
                        test_request: params.get("type").and_then(Value::as_str)
                            == Some("test_request"),
                    }),
                    other => Err(DeribitError::Unexpected(format!(
                        "unknown notification method {other}"
                    ))),
                };
            }
        }
        let id = envelope.id.and_then(Id::into_request_id);
        let outcome = match (envelope.error, envelope.result) {
            (Some(error), _) => Err(error),
            (None, Some(result)) => Ok(result),
            (None, None) => {
                return Err(DeribitError::Unexpected(
                    "neither a result nor an error".into(),
                ));
            }
        };
        Ok(Self::Response(Response { id, outcome }))
    }
}

/// Decodes a response message into `T`.
///
/// # Errors
/// As [`Response::into_result`], and [`DeribitError::Unexpected`] when the message is not a
/// response.
pub fn response_of<T: DeserializeOwned>(message: &Message) -> Result<T, DeribitError> {
    match Incoming::parse(message)? {
        Incoming::Response(r) => r.into_result(),
        other => Err(DeribitError::Unexpected(format!(
            "not a response: {other:?}"
        ))),
    }
}

/// The error code of a response message, if it is an error response (cheap check).
#[must_use]
pub fn error_code(message: &Message) -> Option<i64> {
    #[derive(Deserialize)]
    struct Code {
        code: i64,
    }
    Envelope::<IgnoredAny, IgnoredAny, Code>::parse(message.as_bytes())
        .ok()?
        .error
        .map(|e| e.code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peek_classifies() {
        let hb = Message::text(
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
        );
        assert_eq!(peek(&hb), Peek::Heartbeat { test_request: true });
        let plain = Message::text(
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#,
        );
        assert_eq!(
            peek(&plain),
            Peek::Heartbeat {
                test_request: false
            }
        );
        let s = Message::text(r#"{"jsonrpc":"2.0","id":"abc","result":1}"#);
        assert_eq!(peek(&s), Peek::Response(RequestId::Str("abc".into())));
        assert_eq!(peek(&Message::text("not json")), Peek::Unknown);
        let escaped =
            Message::text(r#"{"method":"subscription","params":{"channel":"a\"b","data":[]}}"#);
        assert_eq!(peek(&escaped), Peek::Notification("a\"b".into()));
        // The fast path: Deribit's own layout, escapes left to the parser.
        let fast = Message::text(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{}}}"#,
        );
        assert_eq!(
            fast_channel(fast.as_bytes()),
            Some("book.BTC-PERPETUAL.100ms")
        );
        assert_eq!(
            peek(&fast),
            Peek::Notification("book.BTC-PERPETUAL.100ms".into())
        );
        let escaped_fast = Message::text(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"a\u0062","data":{}}}"#,
        );
        assert_eq!(fast_channel(escaped_fast.as_bytes()), None);
        assert_eq!(peek(&escaped_fast), Peek::Notification("ab".into()));
    }

    #[test]
    fn glance_borrows_the_channel_in_one_parse() {
        let glanced = |text: &str| match glance(&Message::text(text)) {
            Glance::Notification(channel) => Ok(channel.to_owned()),
            Glance::Other(peek) => Err(peek),
        };
        // Not Deribit's field order: the slow path, still borrowed.
        assert_eq!(
            glanced(
                r#"{"params":{"data":[],"channel":"trades.X"},"method":"subscription","id":null}"#
            ),
            Ok("trades.X".to_owned())
        );
        assert_eq!(
            glanced(r#"{"method":"subscription","params":{"channel":"a\u0062","data":[]}}"#),
            Err(Peek::Unknown)
        );
        assert_eq!(
            glanced(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#),
            Err(Peek::Response(RequestId::Num(5)))
        );
        assert_eq!(
            glanced(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#),
            Err(Peek::Heartbeat { test_request: true })
        );
        assert_eq!(glanced(r#"[{"id":1}]"#), Err(Peek::Unknown));
        assert_eq!(glanced(r#"{"id":-1,"result":1}"#), Err(Peek::Unknown));
    }

    #[test]
    fn notifications_keep_raw_json_and_type_their_data() {
        let text = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.btc_usd","data":{"timestamp":1535098298227,"price":6521.17,"index_name":"btc_usd"}}}"#;
        let m = Message::text(text);
        let n = Notification::parse(&m).unwrap();
        assert_eq!(n.raw.as_text(), Some(text));
        let DeribitEvent::PriceIndex(index) = n.event().unwrap() else {
            panic!()
        };
        assert_eq!(index.price, 6521.17);
        let orders = Message::text(
            r#"{"method":"subscription","params":{"channel":"user.orders.BTC-PERPETUAL.raw","data":{"order_id":"5","instrument_name":"BTC-PERPETUAL","direction":"buy","order_state":"open","order_type":"limit","amount":200}}}"#,
        );
        let DeribitEvent::Orders(list) = Notification::parse(&orders).unwrap().event().unwrap()
        else {
            panic!()
        };
        assert_eq!(list[0].order_id, "5");
    }

    #[test]
    fn responses() {
        let ok = Message::text(r#"{"jsonrpc":"2.0","id":1,"result":{"version":"1.2.26"}}"#);
        let v: Value = response_of(&ok).unwrap();
        assert_eq!(v["version"], "1.2.26");
        let err = Message::text(
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":13009,"message":"unauthorized"}}"#,
        );
        let e = response_of::<Value>(&err).unwrap_err();
        assert_eq!(e.code(), Some(crate::ErrorCode::Unauthorized));
        assert_eq!(error_code(&err), Some(13009));
        assert_eq!(error_code(&ok), None);
    }
}
