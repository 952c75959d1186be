//! Reading what Bybit sends, and [`BybitAdapter`]'s message callbacks.
//!
//! Every message is classified from its envelope alone (borrowed strings, no JSON tree):
//!
//! | shape | endpoint | kind |
//! |---|---|---|
//! | `{"topic":..,"data":..}` | all | a push: routed to the topic's subscription |
//! | `{"op":"pong",..}` or `{"ret_msg":"pong",..}` | public (spot/linear/inverse say `op: ping`), private, trade | heartbeat |
//! | `{"op":"auth","req_id":"1",..}` / `{"op":"auth","retCode":0,..}` | private / trade | the auth answer: the response to request 1 / unclassified; judged by `handle_auth_response` either way |
//! | `{"type":"COMMAND_RESP","data":{"successTopics":..}}` | option | the ack of the oldest subscribe/unsubscribe in flight |
//! | `{"reqId":"7","retCode":0,..}` | trade | the response to request 7 |
//! | `{"req_id":"7","success":true,..}` | public, private | the response to request 7 |
//!
//! Option endpoints answer subscribe and unsubscribe without `req_id`; the server answers the
//! requests of one connection in order, so the adapter matches those acks to its requests in
//! order and then checks the topic is among `successTopics`.

use std::borrow::Cow;

use nova_core::{HandlerError, Message, MessageHandler, MessageType, RequestId};
use serde::Deserialize;
use serde_json::Value;

use crate::adapter::BybitAdapter;

/// The operation of the client's heartbeat.
pub const PING_OP: &str = "ping";

/// The fields that tell messages apart; the rest is skipped, not built.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    req_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "reqId")]
    trade_req_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ret_msg: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

/// What a message is, from its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peek {
    /// A push on this topic.
    Push(String),
    /// The answer to a ping.
    Pong,
    /// The answer to `op: auth`, with the request id when the endpoint repeats it (`/v5/private`
    /// echoes `req_id`; `/v5/trade` answers auth without `reqId`).
    Auth(Option<RequestId>),
    /// An option endpoint's subscribe/unsubscribe ack (no `req_id`).
    CommandResp,
    /// The response to the request with this id.
    Response(RequestId),
    /// None of these (or not JSON).
    Other,
}

/// The request id a `req_id` / `reqId` stands for: the runtime numbers requests, so a number
/// is read as one.
#[must_use]
pub fn request_id(id: &str) -> RequestId {
    match id.parse() {
        Ok(n) => RequestId::Num(n),
        Err(_) => RequestId::Str(id.to_owned()),
    }
}

/// Classifies a message by its envelope.
///
/// ```
/// use nova_bybit::{Peek, peek};
/// use nova_core::{Message, RequestId};
///
/// let pong = Message::text(r#"{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"}"#);
/// assert_eq!(peek(&pong), Peek::Pong);
/// let ack = Message::text(r#"{"success":true,"ret_msg":"","conn_id":"c","req_id":"4","op":"subscribe"}"#);
/// assert_eq!(peek(&ack), Peek::Response(RequestId::Num(4)));
/// let order = Message::text(r#"{"reqId":"9","retCode":0,"retMsg":"OK","op":"order.create","data":{}}"#);
/// assert_eq!(peek(&order), Peek::Response(RequestId::Num(9)));
/// let auth = Message::text(r#"{"req_id":"1","success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#);
/// assert_eq!(peek(&auth), Peek::Auth(Some(RequestId::Num(1))));
/// let trade_auth = Message::text(r#"{"retCode":0,"retMsg":"OK","op":"auth","connId":"c"}"#);
/// assert_eq!(peek(&trade_auth), Peek::Auth(None));
/// ```
#[must_use]
pub fn peek(message: &Message) -> Peek {
    let Ok(e) = serde_json::from_slice::<Envelope<'_>>(message.as_bytes()) else {
        return Peek::Other;
    };
    if let Some(topic) = e.topic {
        return Peek::Push(topic.into_owned());
    }
    let op = e.op.as_deref();
    if op == Some("pong") || e.ret_msg.as_deref() == Some("pong") {
        return Peek::Pong;
    }
    let id = e
        .trade_req_id
        .or(e.req_id)
        .filter(|id| !id.is_empty())
        .map(|id| request_id(&id));
    if op == Some("auth") {
        return Peek::Auth(id);
    }
    if e.kind.as_deref() == Some("COMMAND_RESP") {
        return Peek::CommandResp;
    }
    match id {
        Some(id) => Peek::Response(id),
        None => Peek::Other,
    }
}

/// The topic of a push, borrowed from the message (one pass over the envelope; a topic with
/// escapes, which Bybit never sends, is not borrowed: `None`).
#[must_use]
pub fn push_topic(message: &Message) -> Option<&str> {
    #[derive(Deserialize)]
    struct Push<'a> {
        #[serde(borrow)]
        topic: &'a str,
    }
    serde_json::from_slice::<Push<'_>>(message.as_bytes())
        .ok()
        .map(|p| p.topic)
}

/// The `u` of a book push and whether it is a snapshot; `None` for anything else.
#[must_use]
pub fn peek_book(message: &Message) -> Option<(u64, bool)> {
    #[derive(Deserialize)]
    struct Data {
        u: u64,
    }
    #[derive(Deserialize)]
    struct Book<'a> {
        #[serde(borrow, rename = "type")]
        kind: Cow<'a, str>,
        data: Data,
    }
    let book: Book<'_> = serde_json::from_slice(message.as_bytes()).ok()?;
    Some((book.data.u, book.kind == "snapshot"))
}

/// A subscribe or unsubscribe ack, in any endpoint's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ack {
    /// Whether the request succeeded.
    pub success: bool,
    /// The server's message (the reason of a failure).
    pub ret_msg: String,
    /// `subscribe` / `unsubscribe`, when the endpoint says.
    pub op: Option<String>,
    /// The request id, when the endpoint repeats it.
    pub req_id: Option<String>,
    /// The topics subscribed (option endpoints).
    pub success_topics: Option<Vec<String>>,
    /// The topics refused (option endpoints).
    pub fail_topics: Option<Vec<String>>,
}

impl Ack {
    /// Reads an ack.
    ///
    /// # Errors
    /// When the message is not JSON or has no `success`.
    pub fn parse(message: &Message) -> Result<Self, HandlerError> {
        let v: Value = message.json()?;
        let success = v
            .get("success")
            .and_then(Value::as_bool)
            .ok_or_else(|| HandlerError::new("an ack without `success`"))?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let topics = |k: &str| {
            v.pointer(&format!("/data/{k}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
        };
        Ok(Self {
            success,
            ret_msg: text(&v, "ret_msg").unwrap_or_default(),
            op: text(&v, "op"),
            req_id: text(&v, "req_id"),
            success_topics: topics("successTopics"),
            fail_topics: topics("failTopics"),
        })
    }
}

impl MessageHandler for BybitAdapter {
    /// One look per message (see the [module docs](self)): a push's topic is borrowed from it;
    /// an `orderbook.*` push is parsed into a [`BookMessage`](crate::BookMessage) in the same
    /// look (its sequence position and the crossed-book check come from it) and handed to the
    /// stream with the message.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        if let Some(topic) = push_topic(message) {
            if topic.starts_with("orderbook.") {
                return self.book_push(topic, message);
            }
            return MessageType::subscription(topic);
        }
        match peek(message) {
            // A push whose topic could not be borrowed (escapes): not routed.
            Peek::Push(_) => MessageType::Unknown,
            Peek::Pong => MessageType::Heartbeat,
            // An auth answer that repeats its id is the response to the auth request, which the
            // runtime has `handle_auth_response` judge; one without (trade) is judged by `op`.
            Peek::Response(id) | Peek::Auth(Some(id)) => MessageType::Response { id },
            Peek::CommandResp => match self.next_unlabelled_ack() {
                Some(id) => MessageType::Response { id },
                None => MessageType::Unknown,
            },
            Peek::Auth(None) | Peek::Other => MessageType::Unknown,
        }
    }
}
