//! Reading the Gen Golden Generic API's messages, and [`GenGoldenGenericAdapter`]'s message callbacks.
//!
//! [`parse`] turns a message into an [`Incoming`]: the response to a request or data on a
//! subscribed topic. The adapter's `message_type` classifies messages the same way for the
//! runtime, which hands a response to the request waiting for its `req_id`, data to the
//! subscription of its `topic`, and the answer to the client's `ping` to `handle_heartbeat`. It
//! looks at each message once. Data written with `topic` first is recognised by its first
//! bytes and its topic read without parsing anything; any other message has its envelope
//! (`topic`, `op`, `req_id`) parsed with strings borrowed from it (routing allocates nothing).
//! Data's typed value, on the topics [`has_data`] names, is parsed by [`parse_data`] once, on
//! the application's side, when the application first asks for it, and handed over with the
//! message.

use std::borrow::Cow;

use nova_core::{Context, Data, HandlerError, Message, MessageHandler, MessageType};
use serde::Deserialize;

use crate::adapter::GenGoldenGenericAdapter;
use crate::types::{Event, OpResponse, request_id};

/// The operation of the client's heartbeat, and of the server's answer to it.
pub const PING_OP: &str = "ping";

/// A message from the Gen Golden Generic API.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// The answer to a request.
    Response(OpResponse),
    /// Data on a subscribed topic.
    Event(Event),
}

/// Reads a message from the Gen Golden Generic API.
///
/// # Errors
/// When the message is not JSON, or has neither a `topic` nor an `op`.
pub fn parse(message: &Message) -> Result<Incoming, HandlerError> {
    let envelope = envelope(message)?;
    if envelope.topic.is_some() {
        Ok(Incoming::Event(message.json()?))
    } else if envelope.op.is_some() {
        Ok(Incoming::Response(message.json()?))
    } else {
        Err(HandlerError::new("a message with neither `topic` nor `op`"))
    }
}

/// The fields that tell messages apart, borrowed from the message; the rest is skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    topic: Option<&'a str>,
    #[serde(borrow, default)]
    op: Option<&'a str>,
    #[serde(borrow, default)]
    req_id: Option<Cow<'a, str>>,
}

fn envelope(message: &Message) -> Result<Envelope<'_>, HandlerError> {
    Ok(serde_json::from_slice(message.as_bytes())?)
}

/// How data starts when the server writes `topic` first, up to the topic's first character.
const TOPIC_PREFIX: &[u8] = br#"{"topic":""#;

/// The topic of data written with `topic` first, read up to its closing quote without parsing
/// anything (`None` for anything else, or a topic with escapes: those go through the
/// envelope). The rest of the message is checked by whoever parses its data.
fn fast_topic(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(TOPIC_PREFIX)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// Whether data on `topic` carries a typed value, which [`parse_data`] parses. `false` (the
/// default for every topic): the application gets the message and parses it itself.
#[must_use]
pub fn has_data(topic: &str) -> bool {
    let _ = topic;
    false
}

/// The typed value of data on a topic for which [`has_data`] says so. It is not parsed while
/// the message is classified: the subscription's stream gets the message with this parser
/// (`Data::deferred`), which runs once, on the application's task, the first time the
/// application asks (`delivery.get::<T>()`). The message is parsed once, and the value is
/// allocated and freed on the same thread.
///
/// Teach it the topics whose data has a type, for example `tickers.*` carrying a `Ticker`
/// struct of `types.rs` (with `has_data` saying `topic.starts_with("tickers.")`):
///
/// ```text
/// #[derive(Deserialize)]
/// struct Typed<T> { data: T }
///
/// if topic_of(message)?.starts_with("tickers.") {
///     let event: Typed<Ticker> = serde_json::from_slice(message.as_bytes()).ok()?;
///     return Some(Data::new(event.data));
/// }
/// ```
#[must_use]
pub fn parse_data(message: &Message) -> Option<Data> {
    let _ = message;
    None
}

/// The topic of data, borrowed from the message (for [`parse_data`]); `None` for any other
/// message.
#[must_use]
pub fn topic_of(message: &Message) -> Option<&str> {
    if let Some(topic) = fast_topic(message.as_bytes()) {
        return Some(topic);
    }
    envelope(message).ok()?.topic
}

/// Data of the subscription to `topic`, with its typed value to parse when asked if
/// [`has_data`] says it has one.
fn data_of(topic: &str) -> MessageType<'_> {
    if has_data(topic) {
        MessageType::data(topic, Data::deferred(parse_data))
    } else {
        MessageType::subscription(topic)
    }
}

impl MessageHandler for GenGoldenGenericAdapter {
    /// Looks at a message once, for the runtime: data written with `topic` first is routed by
    /// its first bytes; any other message must be a JSON object with a `topic` or an `op`
    /// (otherwise it is invalid: by default logged and skipped, the connection kept), then data
    /// of a subscription to its `topic` (with its typed value from [`parse_data`], parsed when
    /// asked), the answer
    /// to a ping (a heartbeat, handled by `handle_heartbeat`), or the response to the request
    /// with its `req_id`. Teach it the platform's other kinds of message (a `type` field,
    /// system notices), and the checks the platform needs, here.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        if let Some(topic) = fast_topic(message.as_bytes()) {
            return data_of(topic);
        }
        let envelope = match envelope(message) {
            Ok(envelope) => envelope,
            Err(error) => return MessageType::Invalid(error),
        };
        match (envelope.topic, envelope.op, envelope.req_id) {
            (Some(topic), _, _) => data_of(topic),
            (None, Some(PING_OP | "pong"), _) => MessageType::Heartbeat,
            (None, Some(_), Some(req_id)) => MessageType::Response {
                id: request_id(&req_id),
            },
            (None, Some(_), None) => MessageType::Unknown,
            (None, None, _) => {
                MessageType::Invalid(HandlerError::new("a message with neither `topic` nor `op`"))
            }
        }
    }

    /// Handles a message that is neither a response, a subscription's data nor a heartbeat
    /// (or data of a topic nobody subscribed to): hands it to the application's `Messages`.
    /// Transform, filter or log such messages here.
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        ctx.deliver(message);
        Ok(())
    }

    /// Turns a message the application sends into what goes on the wire: unchanged. Add what
    /// every request needs here (a timestamp, a signature).
    fn encode_message(&mut self, message: Message) -> Result<Message, HandlerError> {
        Ok(message)
    }
}
