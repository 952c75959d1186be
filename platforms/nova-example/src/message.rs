//! Reading the Example API's messages, and [`ExampleAdapter`]'s message callbacks.
//!
//! [`parse`] turns a message into an [`Incoming`]: a response to a request, a notification on
//! a subscribed channel, or a heartbeat from the server. The adapter's `message_type`
//! classifies messages the same way for the runtime, which hands a response to the request
//! waiting for its `id`, a notification to the subscription of its `params.channel`, and a
//! heartbeat to `handle_heartbeat`. It reads only the envelope, borrowing strings from the
//! message instead of building a JSON tree, so routing stays cheap.

use std::borrow::Cow;

use nova_core::{Context, HandlerError, Message, MessageHandler, MessageType, RequestId};
use serde::Deserialize;

use crate::adapter::ExampleAdapter;
use crate::types::{Heartbeat, JSONRPC_VERSION, Notification, RpcResponse};

/// A message from the Example API.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// The answer to a request.
    Response(RpcResponse),
    /// Data on a subscribed channel.
    Notification(Notification),
    /// A heartbeat from the server; a `test_request` must be answered (the adapter does).
    Heartbeat(Heartbeat),
}

/// Reads a message from the Example API.
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

/// The fields that tell messages apart; the rest of a message is skipped, not built.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    /// Numeric, as the runtime numbers requests.
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<EnvelopeParams<'a>>,
}

/// The part of `params` that routes a notification.
#[derive(Deserialize)]
struct EnvelopeParams<'a> {
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
}

fn envelope(message: &Message) -> Result<Envelope<'_>, HandlerError> {
    Ok(serde_json::from_slice(message.as_bytes())?)
}

impl MessageHandler for ExampleAdapter {
    /// Checks every message before anything else sees it: it must be a JSON-RPC 2.0 object. A
    /// message that fails goes to `ErrorHandler::handle_error` (by default: logged, skipped,
    /// connection kept). Add checks the platform needs here (a size, a field that must be set).
    fn validate_message(&mut self, message: &Message) -> Result<(), HandlerError> {
        match envelope(message)?.jsonrpc.as_deref() {
            Some(JSONRPC_VERSION) => Ok(()),
            _ => Err(HandlerError::new("not a JSON-RPC 2.0 message")),
        }
    }

    /// Classifies a message so the runtime can route it: the response to the request with its
    /// `id`, data of the subscription to `params.channel`, or a heartbeat. Teach it the
    /// platform's other kinds of message here.
    fn message_type(&self, message: &Message) -> MessageType {
        let Ok(envelope) = envelope(message) else {
            return MessageType::Unknown;
        };
        let channel = envelope.params.and_then(|params| params.channel);
        match (envelope.id, envelope.method.as_deref(), channel) {
            (Some(id), None, _) => MessageType::Response {
                id: RequestId::Num(id),
            },
            (None, Some("subscription"), Some(channel)) => MessageType::Subscription {
                channel: channel.into_owned(),
            },
            (None, Some("heartbeat"), _) => MessageType::Heartbeat,
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
