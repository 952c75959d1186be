//! Reading the Gen Golden Generic API's messages, and [`GenGoldenGenericAdapter`]'s message callbacks.
//!
//! [`parse`] turns a message into an [`Incoming`]: the response to a request or data on a
//! subscribed topic. The adapter's `message_type` classifies messages the same way for the
//! runtime, which hands a response to the request waiting for its `req_id`, data to the
//! subscription of its `topic`, and the answer to the client's `ping` to `handle_heartbeat`. It
//! looks at each message once. Data written with `topic` first is recognised by its first
//! bytes and its topic read without parsing anything; any other message has its envelope
//! (`topic`, `op`, `req_id`) parsed with strings borrowed from it (routing allocates nothing).
//! Data's typed value, if [`parse_data`] gives one, is parsed in one pass and handed to the
//! application with the message, so nothing is parsed twice.

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

/// The typed value of data on `topic`, parsed from the whole message in one pass while it is
/// classified and handed to the application beside it (`Delivery::get`), so nothing is parsed
/// twice. `None` (the default for every topic): the application gets the message and parses
/// it itself.
///
/// Teach it the topics whose data has a type, for example `tickers.*` carrying a `Ticker`
/// struct of `types.rs`:
///
/// ```text
/// #[derive(Deserialize)]
/// struct Typed<T> { data: T }
///
/// if topic.starts_with("tickers.") {
///     let event: Typed<Ticker> = serde_json::from_slice(message.as_bytes()).ok()?;
///     return Some(Data::new(event.data));
/// }
/// ```
#[must_use]
pub fn parse_data(topic: &str, message: &Message) -> Option<Data> {
    let _ = (topic, message);
    None
}

/// Data of the subscription to `topic`, with its typed value if [`parse_data`] gives one.
fn data_of<'m>(topic: &'m str, message: &Message) -> MessageType<'m> {
    match parse_data(topic, message) {
        Some(data) => MessageType::data(topic, data),
        None => MessageType::subscription(topic),
    }
}

impl MessageHandler for GenGoldenGenericAdapter {
    /// Looks at a message once, for the runtime: data written with `topic` first is routed by
    /// its first bytes; any other message must be a JSON object with a `topic` or an `op`
    /// (otherwise it is invalid: by default logged and skipped, the connection kept), then data
    /// of a subscription to its `topic` (with its typed value from [`parse_data`]), the answer
    /// to a ping (a heartbeat, handled by `handle_heartbeat`), or the response to the request
    /// with its `req_id`. Teach it the platform's other kinds of message (a `type` field,
    /// system notices), and the checks the platform needs, here.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        if let Some(topic) = fast_topic(message.as_bytes()) {
            return data_of(topic, message);
        }
        let envelope = match envelope(message) {
            Ok(envelope) => envelope,
            Err(error) => return MessageType::Invalid(error),
        };
        match (envelope.topic, envelope.op, envelope.req_id) {
            (Some(topic), _, _) => data_of(topic, message),
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
