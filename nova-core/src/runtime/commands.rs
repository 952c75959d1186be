//! What the application's handles send to the connection task: data (sends and requests, through
//! the bounded data channel that is also the buffer while disconnected) and commands that must
//! not queue behind data (close, subscribe, unsubscribe).

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::inbound::QueueSender;
use super::subscriptions::{SubscriptionEvent, SubscriptionRegistry};
use crate::error::Error;
use crate::handler::Operation;
use crate::message::Message;
use crate::rate_limit::RateLimiter;
use crate::request::Request;

/// What the application hands to the connection task through the data channel.
pub(crate) enum Outgoing {
    /// A message to send.
    Message(Message, Operation),
    /// A request: its message is built with an id when it is taken from the channel.
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Message, Error>>,
        deadline: Instant,
    },
}

/// Commands from the handle that must not queue behind data. Sent boxed: the control queue's
/// first block (32 slots) is allocated with every client, and pointer-sized slots keep it small.
pub(crate) enum Control {
    /// Close with a handshake and stop.
    Close {
        code: u16,
        reason: String,
        done: oneshot::Sender<()>,
    },
    /// Subscribe; `reply` answers once the ack is verified.
    Subscribe(SubscribeCommand),
    /// Unsubscribe; `done` answers once the unsubscribe was sent (or nothing was needed).
    Unsubscribe {
        id: u64,
        done: Option<oneshot::Sender<()>>,
    },
}

/// What [`Control::Subscribe`] carries.
pub(crate) struct SubscribeCommand {
    pub(crate) id: u64,
    pub(crate) channel: String,
    pub(crate) options: serde_json::Value,
    pub(crate) events: QueueSender<SubscriptionEvent>,
    pub(crate) reply: oneshot::Sender<Result<(), Error>>,
}

/// Pluggable services of the runtime (a cluster backend replaces them).
pub(crate) struct Services {
    pub(crate) registry: Box<dyn SubscriptionRegistry>,
    pub(crate) limiter: Option<Box<dyn RateLimiter>>,
    /// Until when sends are held back by the limiter; read by the handle to answer
    /// `RateLimited` when the queue is full.
    pub(crate) rate_limited_until: Arc<Mutex<Option<Instant>>>,
}
