//! `MessageHandler`: looking at a message once (validate, classify, parse), handling and encoding.
//!
//! The hot path of a connection is one call per message: [`MessageHandler::message_type`] sees
//! the message once and says what it is: not acceptable, the response to a request, data of a
//! subscription (with the route key borrowed from the message, so routing allocates nothing, and,
//! where the adapter has a type, the value it parsed and the message's sequence position), a
//! heartbeat, or something else for [`MessageHandler::handle_message`]. An adapter that parses
//! the message to classify it hands over what it parsed, so nobody parses it again; one that
//! does not need the value itself hands over a parser instead ([`Data::deferred`]), and the
//! value is parsed once, on the application's task, when it is asked for.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{Context, Sequence};
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

/// A value an adapter parsed from a message (a ticker, a book update, a block header), handed to
/// the application with the message it came from so that it is not parsed again.
///
/// Cheap to clone (shared); read it with [`get`](Self::get) when you know the type.
///
/// ```
/// use nova_core::Data;
///
/// #[derive(Debug, PartialEq)]
/// struct Tick { price: f64 }
///
/// let data = Data::new(Tick { price: 101.5 });
/// assert_eq!(data.get::<Tick>(), Some(&Tick { price: 101.5 }));
/// assert_eq!(data.get::<String>(), None);
/// ```
///
/// An adapter can also defer the parse to the application's side with
/// [`deferred`](Self::deferred): the connection task then only classifies the message, and the
/// value is parsed once, by the task that reads the subscription, the first time it asks
/// ([`Delivery::get`](crate::Delivery::get)). That keeps the typed value's allocations on the
/// thread that frees them, which is what makes a typed stream as fast as a hand-written loop
/// when the connection and the application run on different cores.
#[derive(Clone)]
pub struct Data(Repr);

#[derive(Clone)]
enum Repr {
    /// The parsed value.
    Value(Arc<dyn Any + Send + Sync>),
    /// How to parse the value from the message, when it is asked for.
    Deferred(Decoder),
}

/// Parses the value of a message (see [`Data::deferred`]); `None` when the message does not
/// hold one.
pub type Decoder = fn(&Message) -> Option<Data>;

impl Data {
    /// Wraps a parsed value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Self(Repr::Value(Arc::new(value)))
    }

    /// A value not parsed yet: `decode` parses it from the message when the application first
    /// asks the [`Delivery`](crate::Delivery) for it. Costs nothing on the connection task
    /// (no allocation, no parse).
    ///
    /// ```
    /// use nova_core::{Data, Delivery, Message};
    ///
    /// fn price(message: &Message) -> Option<Data> {
    ///     let value: serde_json::Value = message.json().ok()?;
    ///     Some(Data::new(value["price"].as_f64()?))
    /// }
    ///
    /// let delivery = Delivery::new(Message::text(r#"{"price":101.5}"#), Some(Data::deferred(price)));
    /// assert_eq!(delivery.get::<f64>(), Some(&101.5));
    /// ```
    #[must_use]
    pub fn deferred(decode: Decoder) -> Self {
        Self(Repr::Deferred(decode))
    }

    /// Whether this value is still to be parsed from its message ([`deferred`](Self::deferred)).
    #[must_use]
    pub fn is_deferred(&self) -> bool {
        matches!(self.0, Repr::Deferred(_))
    }

    /// The value, if it is a `T` (`None` while it is deferred: read it through the
    /// [`Delivery`](crate::Delivery), which has the message).
    #[must_use]
    pub fn get<T: Any>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Value(value) => value.downcast_ref(),
            Repr::Deferred(_) => None,
        }
    }

    /// The value as a shared `T`, if it is one.
    ///
    /// # Errors
    /// The data itself, when it holds another type or is still deferred.
    pub fn downcast<T: Any + Send + Sync>(self) -> Result<Arc<T>, Self> {
        match self.0 {
            Repr::Value(value) if value.is::<T>() => {
                Arc::downcast(value).map_err(|value| Self(Repr::Value(value)))
            }
            repr => Err(Self(repr)),
        }
    }

    /// The value itself: parsed from `message` now when it was deferred (a decoder that
    /// defers again gives nothing).
    #[must_use]
    pub fn resolve(self, message: &Message) -> Option<Data> {
        match self.0 {
            Repr::Value(_) => Some(self),
            Repr::Deferred(decode) => decode(message).filter(|data| !data.is_deferred()),
        }
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Repr::Value(_) => f.debug_tuple("Data").finish_non_exhaustive(),
            Repr::Deferred(_) => f.write_str("Data(deferred)"),
        }
    }
}

/// What a message is (the seed's `message_type`), decided in one look.
#[derive(Debug)]
#[non_exhaustive]
pub enum MessageType<'m> {
    /// Not acceptable: the error goes to the `ErrorHandler` (by default: logged, the message
    /// skipped, the connection kept).
    Invalid(HandlerError),
    /// Data of the subscription whose route key is `route` (the channel name, or the key
    /// `SubscriptionHandler::handle_subscription_response` gave), borrowed from the message.
    Subscription {
        /// The route key.
        route: &'m str,
        /// What the adapter parsed, handed to the application with the message.
        data: Option<Data>,
        /// The message's sequence position, when the adapter read it while classifying
        /// (otherwise the runtime asks `SubscriptionHandler::sequence`).
        sequence: Option<Sequence>,
    },
    /// The response to the request with this id.
    Response {
        /// The request's id.
        id: RequestId,
    },
    /// A platform heartbeat (a server's heartbeat request, or the answer to ours).
    Heartbeat,
    /// Anything else: it goes to `MessageHandler::handle_message`.
    Unknown,
}

impl<'m> MessageType<'m> {
    /// Data of the subscription routed by `route`, nothing parsed.
    #[must_use]
    pub fn subscription(route: &'m str) -> Self {
        Self::Subscription {
            route,
            data: None,
            sequence: None,
        }
    }

    /// Data of the subscription routed by `route`, with the value parsed from it (or, with
    /// [`Data::deferred`], how to parse it when the application asks).
    #[must_use]
    pub fn data(route: &'m str, data: Data) -> Self {
        Self::Subscription {
            route,
            data: Some(data),
            sequence: None,
        }
    }

    /// Adds the sequence position to subscription data (nothing for other kinds).
    #[must_use]
    pub fn with_sequence(mut self, position: Sequence) -> Self {
        if let Self::Subscription { sequence, .. } = &mut self {
            *sequence = Some(position);
        }
        self
    }

    /// A short label for logs and metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Subscription { .. } => "subscription",
            Self::Response { .. } => "response",
            Self::Heartbeat => "heartbeat",
            Self::Unknown => "unknown",
        }
    }
}

/// Equal kinds with equal routes, ids and sequence positions; an `Invalid` by its error's text,
/// and parsed values by presence only (a `Data` holds any type). For tests of adapters.
impl PartialEq for MessageType<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Invalid(a), Self::Invalid(b)) => a.to_string() == b.to_string(),
            (
                Self::Subscription {
                    route: a,
                    data: da,
                    sequence: sa,
                },
                Self::Subscription {
                    route: b,
                    data: db,
                    sequence: sb,
                },
            ) => a == b && da.is_some() == db.is_some() && sa == sb,
            (Self::Response { id: a }, Self::Response { id: b }) => a == b,
            (Self::Heartbeat, Self::Heartbeat) | (Self::Unknown, Self::Unknown) => true,
            _ => false,
        }
    }
}

/// Processing of data messages (the seed's `MessageHandler`).
///
/// ```
/// use nova_core::{Data, HandlerError, Message, MessageHandler, MessageType, RequestId};
/// use serde::Deserialize;
///
/// /// A JSON-RPC 2.0 protocol: responses carry `id`, notifications carry `params.channel` and
/// /// `params.data`. One parse classifies, validates and reads the data; the channel is
/// /// borrowed from the message.
/// struct JsonRpc;
///
/// #[derive(Deserialize)]
/// struct Envelope<'a> {
///     jsonrpc: &'a str,
///     id: Option<u64>,
///     #[serde(borrow)]
///     params: Option<Params<'a>>,
/// }
///
/// #[derive(Deserialize)]
/// struct Params<'a> {
///     channel: &'a str,
///     data: Tick,
/// }
///
/// #[derive(Deserialize)]
/// struct Tick { price: f64 }
///
/// impl MessageHandler for JsonRpc {
///     fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
///         let Some(text) = message.as_text() else { return MessageType::Unknown };
///         let envelope: Envelope<'m> = match serde_json::from_str(text) {
///             Ok(e) => e,
///             Err(e) => return MessageType::Invalid(HandlerError::new(e.to_string())),
///         };
///         if envelope.jsonrpc != "2.0" {
///             return MessageType::Invalid(HandlerError::new("not JSON-RPC 2.0"));
///         }
///         match (envelope.id, envelope.params) {
///             (Some(id), _) => MessageType::Response { id: RequestId::Num(id) },
///             (None, Some(p)) => MessageType::data(p.channel, Data::new(p.data)),
///             (None, None) => MessageType::Unknown,
///         }
///     }
/// }
///
/// let message = Message::text(r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"t.BTC","data":{"price":5.0}}}"#);
/// match JsonRpc.message_type(&message) {
///     MessageType::Subscription { route, data: Some(data), .. } => {
///         assert_eq!(route, "t.BTC");
///         assert_eq!(data.get::<Tick>().map(|t| t.price), Some(5.0));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
pub trait MessageHandler {
    /// Looks at a message once: validates it, classifies it for routing, and (where useful)
    /// parses it. The default: everything is `Unknown` (it goes to `handle_message`), nothing
    /// parsed.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        let _ = message;
        MessageType::Unknown
    }

    /// Handles a message classified `Unknown` (or subscription data of no subscription); the
    /// default hands it to the application's inbound queue.
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
