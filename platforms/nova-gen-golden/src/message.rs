//! Reading the Gen Golden API's messages, and [`GenGoldenAdapter`]'s message callbacks.
//!
//! [`parse`] turns a message into an [`Incoming`]: a response to a request, a notification on
//! a subscribed channel, or a heartbeat from the server. The adapter's `message_type`
//! classifies messages the same way for the runtime, which hands a response to the request
//! waiting for its `id`, a notification to the subscription of its `params.channel`, and a
//! heartbeat to `handle_heartbeat`. It looks at each message once. A notification written in
//! the usual field order is recognised by its first bytes and its channel read without parsing
//! anything; any other message has its envelope parsed (nova-core's [`Envelope`]) with the
//! channel borrowed from it (routing allocates nothing). A notification's typed value, on the
//! channels [`has_data`] names, is parsed by [`parse_data`] once, on the application's side,
//! when the application first asks for it, and handed over with the message.

use nova_core::jsonrpc::{self, Envelope, Kind};
use nova_core::{Context, Data, HandlerError, Message, MessageHandler, MessageType};
use serde::Deserialize;

use crate::adapter::GenGoldenAdapter;
use crate::types::{Heartbeat, Notification};

/// A message from the Gen Golden API.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// The answer to a request.
    Response(jsonrpc::Response),
    /// Data on a subscribed channel.
    Notification(Notification),
    /// A heartbeat from the server; a `test_request` must be answered (the adapter does).
    Heartbeat(Heartbeat),
}

/// Reads a message from the Gen Golden API.
///
/// # Errors
/// When the message is not JSON, or is JSON-RPC of a kind this platform does not send.
pub fn parse(message: &Message) -> Result<Incoming, HandlerError> {
    match envelope(message)?.method.as_deref() {
        None => Ok(Incoming::Response(message.json()?)),
        Some("subscription") => Ok(Incoming::Notification(message.json()?)),
        Some("heartbeat") => Ok(Incoming::Heartbeat(message.json()?)),
        Some(other) => Err(HandlerError::new(format!(
            "unexpected method `{other}` from the server"
        ))),
    }
}

/// The part of `params` that routes a notification, borrowed from the message.
#[derive(Deserialize)]
struct EnvelopeParams<'a> {
    #[serde(borrow, default)]
    channel: Option<&'a str>,
}

/// The members that tell messages apart (`jsonrpc`, `id`, `method`, `params.channel`),
/// borrowed from the message; the rest is skipped.
fn envelope(message: &Message) -> Result<Envelope<'_, EnvelopeParams<'_>>, HandlerError> {
    Ok(Envelope::parse(message.as_bytes())?)
}

/// How a notification starts when the server writes its fields in the usual order, up to the
/// channel's first character.
const NOTIFICATION_PREFIX: &[u8] =
    br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":""#;

/// The channel of a notification written in the usual field order, read up to its closing
/// quote without parsing anything (`None` for anything else, or a channel with escapes: those
/// go through the envelope). The rest of the message is checked by whoever parses its data.
fn fast_channel(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(NOTIFICATION_PREFIX)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// Whether notifications on `channel` carry a typed value, which [`parse_data`] parses.
/// `false` (the default for every channel): the application gets the message and parses it
/// itself.
#[must_use]
pub fn has_data(channel: &str) -> bool {
    let _ = channel;
    false
}

/// The typed value of a notification on a channel for which [`has_data`] says so. It is not
/// parsed while the message is classified: the subscription's stream gets the message with
/// this parser (`Data::deferred`), which runs once, on the application's task, the first time
/// the application asks (`delivery.get::<T>()`). The message is parsed once, and the value is
/// allocated and freed on the same thread.
///
/// Teach it the channels whose data has a type, for example `trades.*` carrying a list of a
/// `Trade` struct of `types.rs` (with `has_data` saying `channel.starts_with("trades.")`):
///
/// ```text
/// #[derive(Deserialize)]
/// struct Typed<T> { params: TypedParams<T> }
/// #[derive(Deserialize)]
/// struct TypedParams<T> { data: T }
///
/// if channel_of(message)?.starts_with("trades.") {
///     let note: Typed<Vec<Trade>> = serde_json::from_slice(message.as_bytes()).ok()?;
///     return Some(Data::new(note.params.data));
/// }
/// ```
#[must_use]
pub fn parse_data(message: &Message) -> Option<Data> {
    let _ = message;
    None
}

/// The channel of a notification, borrowed from it (for [`parse_data`]); `None` for any other
/// message.
#[must_use]
pub fn channel_of(message: &Message) -> Option<&str> {
    if let Some(channel) = fast_channel(message.as_bytes()) {
        return Some(channel);
    }
    let envelope = envelope(message).ok()?;
    match envelope.method.as_deref() {
        Some("subscription") => envelope.params?.channel,
        _ => None,
    }
}

/// Subscription data on `channel`, with its typed value to parse when asked if [`has_data`]
/// says it has one.
fn notification(channel: &str) -> MessageType<'_> {
    if has_data(channel) {
        MessageType::data(channel, Data::deferred(parse_data))
    } else {
        MessageType::subscription(channel)
    }
}

impl MessageHandler for GenGoldenAdapter {
    /// Looks at a message once, for the runtime: a notification in the usual field order is
    /// routed by its first bytes; any other message must be a JSON-RPC 2.0 object (otherwise
    /// it is invalid: by default logged and skipped, the connection kept), and is then the
    /// response to the request with its `id`, data of the subscription to `params.channel`
    /// (with its typed value from [`parse_data`], parsed when asked), or a heartbeat. Teach it the platform's
    /// other kinds of message, and the checks the platform needs, here.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        if let Some(channel) = fast_channel(message.as_bytes()) {
            return notification(channel);
        }
        let envelope = match envelope(message) {
            Ok(envelope) => envelope,
            Err(error) => return MessageType::Invalid(error),
        };
        if !envelope.is_v2() {
            return MessageType::Invalid(HandlerError::new("not a JSON-RPC 2.0 message"));
        }
        let channel = envelope.params.as_ref().and_then(|params| params.channel);
        match envelope.kind() {
            Kind::Response { id } => match id.to_request_id() {
                Some(id) => MessageType::Response { id },
                None => MessageType::Unknown,
            },
            Kind::Notification { method } => match (method, channel) {
                ("subscription", Some(channel)) => notification(channel),
                ("heartbeat", _) => MessageType::Heartbeat,
                _ => MessageType::Unknown,
            },
            _ => MessageType::Unknown,
        }
    }

    /// Handles a message that is neither a response, a subscription's data nor a heartbeat
    /// (or a notification of a channel nobody subscribed to): hands it to the application's
    /// `Messages`. Transform, filter or log such messages here.
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        ctx.deliver(message);
        Ok(())
    }

    /// Turns a message the application sends into what goes on the wire: unchanged. Add what
    /// every request needs here (an access token, a signature).
    fn encode_message(&mut self, message: Message) -> Result<Message, HandlerError> {
        Ok(message)
    }
}
