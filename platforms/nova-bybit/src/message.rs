//! Reading the Bybit API's messages, and [`BybitAdapter`]'s message callbacks.
//!
//! [`parse`] turns a message into an [`Incoming`]: the response to a request or data on a
//! subscribed topic. The adapter's `message_type` classifies messages the same way for the
//! runtime, which hands a response to the request waiting for its `req_id`, data to the
//! subscription of its `topic`, and the answer to the client's `ping` to `handle_heartbeat`. It
//! reads only the envelope (`topic`, `op`, `req_id`), borrowing strings from the message
//! instead of building a JSON tree, so routing stays cheap.

use std::borrow::Cow;

use nova_core::{Context, HandlerError, Message, MessageHandler, MessageType};
use serde::Deserialize;

use crate::adapter::BybitAdapter;
use crate::types::{Event, OpResponse, request_id};

/// The operation of the client's heartbeat, and of the server's answer to it.
pub const PING_OP: &str = "ping";

/// A message from the Bybit API.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// The answer to a request.
    Response(OpResponse),
    /// Data on a subscribed topic.
    Event(Event),
}

/// Reads a message from the Bybit API.
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

/// The fields that tell messages apart; the rest of a message is skipped, not built.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    req_id: Option<Cow<'a, str>>,
}

fn envelope(message: &Message) -> Result<Envelope<'_>, HandlerError> {
    Ok(serde_json::from_slice(message.as_bytes())?)
}

impl MessageHandler for BybitAdapter {
    /// Checks every message before anything else sees it: a JSON object with a `topic` or an
    /// `op`. A message that fails goes to `ErrorHandler::handle_error` (by default: logged,
    /// skipped, connection kept). Add checks the platform needs here.
    fn validate_message(&mut self, message: &Message) -> Result<(), HandlerError> {
        let envelope = envelope(message)?;
        if envelope.topic.is_some() || envelope.op.is_some() {
            Ok(())
        } else {
            Err(HandlerError::new("a message with neither `topic` nor `op`"))
        }
    }

    /// Classifies a message so the runtime can route it: data of a subscription to its
    /// `topic`, the answer to a ping (a heartbeat, handled by `handle_heartbeat`), or the
    /// response to the request with its `req_id`. Teach it the platform's other kinds of
    /// message here (a `type` field, system notices).
    fn message_type(&self, message: &Message) -> MessageType {
        let Ok(envelope) = envelope(message) else {
            return MessageType::Unknown;
        };
        match (envelope.topic, envelope.op.as_deref(), envelope.req_id) {
            (Some(topic), _, _) => MessageType::Subscription {
                channel: topic.into_owned(),
            },
            (None, Some(PING_OP | "pong"), _) => MessageType::Heartbeat,
            (None, Some(_), Some(req_id)) => MessageType::Response {
                id: request_id(&req_id),
            },
            _ => MessageType::Unknown,
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
