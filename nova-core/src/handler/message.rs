//! `MessageHandler`: validating, classifying, handling and encoding messages.

use std::fmt;

use super::Context;
use crate::error::HandlerError;
use crate::message::Message;

/// The id that ties a response to its request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// A numeric id (JSON-RPC platforms mostly use these).
    Num(u64),
    /// A string id.
    Str(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num(n) => write!(f, "{n}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

/// What kind of message arrived (the seed's `message_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// Data of a subscription to this channel.
    Subscription {
        /// The channel.
        channel: String,
    },
    /// The response to the request with this id.
    Response {
        /// The request's id.
        id: RequestId,
    },
    /// A platform heartbeat (a server's heartbeat request, or the answer to ours).
    Heartbeat,
    /// Anything else.
    Unknown,
}

/// Processing of data messages (the seed's `MessageHandler`).
///
/// ```
/// use nova_core::{Context, HandlerError, Message, MessageHandler, MessageType, RequestId};
///
/// /// A JSON-RPC 2.0 protocol: responses carry `id`, notifications carry `params.channel`.
/// struct JsonRpc;
///
/// impl MessageHandler for JsonRpc {
///     fn validate_message(&mut self, message: &Message) -> Result<(), HandlerError> {
///         let v: serde_json::Value = message.json()?;
///         if v.get("jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
///             return Err(HandlerError::new("not a JSON-RPC 2.0 message"));
///         }
///         Ok(())
///     }
///
///     fn message_type(&self, message: &Message) -> MessageType {
///         let Ok(v) = message.json::<serde_json::Value>() else { return MessageType::Unknown };
///         if let Some(id) = v.get("id").and_then(|id| id.as_u64()) {
///             return MessageType::Response { id: RequestId::Num(id) };
///         }
///         match v.pointer("/params/channel").and_then(|c| c.as_str()) {
///             Some(channel) => MessageType::Subscription { channel: channel.to_owned() },
///             None => MessageType::Unknown,
///         }
///     }
/// }
/// ```
pub trait MessageHandler {
    /// Checks a message before anything else sees it. An error goes to the `ErrorHandler`
    /// (by default: logged, the message skipped, the connection kept).
    ///
    /// # Errors
    /// When the message is not acceptable.
    fn validate_message(&mut self, message: &Message) -> Result<(), HandlerError> {
        let _ = message;
        Ok(())
    }

    /// Classifies a message for routing (responses to requests, subscription data, heartbeats).
    fn message_type(&self, message: &Message) -> MessageType {
        let _ = message;
        MessageType::Unknown
    }

    /// Handles a message; the default hands it to the application's inbound queue.
    ///
    /// # Errors
    /// An error goes to the `ErrorHandler`.
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        ctx.deliver(message);
        Ok(())
    }

    /// Turns a message the application sends into what goes on the wire (default: unchanged).
    ///
    /// # Errors
    /// The send fails with this error.
    fn encode_message(&mut self, message: Message) -> Result<Message, HandlerError> {
        Ok(message)
    }
}
