//! The runtime's view of a connection, handed to callbacks, and the output they queue on it.

use std::time::Duration;

use crate::config::ClientConfig;
use crate::handler::{Operation, RequestId};
use crate::message::{Frame, Message};
use crate::runtime::SubscriptionEvent;
use crate::types::ConnectionState;

/// Output queued by callbacks; the runtime performs it after the callback returns.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Frames to write now, before any message the application queued, with the kind of
    /// operation each is for the rate limiter.
    pub(crate) frames: Vec<(Frame, Operation)>,
    /// Messages for the application's inbound queue.
    pub(crate) deliveries: Vec<Message>,
    /// Events for subscription streams, by nova's subscription id.
    pub(crate) subscription_events: Vec<(u64, SubscriptionEvent)>,
    /// A handler asked to drop the connection and reconnect.
    pub(crate) reconnect: Option<String>,
    /// The close code to send before dropping the connection a handler asked to drop (`None`:
    /// the connection is dropped without a close frame).
    pub(crate) reconnect_close: Option<u16>,
    /// A handler asked for a make-before-break handover, for this reason.
    pub(crate) handover: Option<String>,
    /// A handler asked to stop the client, for this reason.
    pub(crate) stop: Option<String>,
    /// A handler asked to start authentication now (see
    /// [`AuthHandler::authenticates_on_connect`](crate::AuthHandler::authenticates_on_connect)).
    pub(crate) begin_auth: bool,
    /// The last request id handed out (ids are unique per client, across connections).
    pub(crate) last_request_id: u64,
}

impl Outbox {
    /// A fresh request id, unique for this client (never reused, across reconnects too).
    pub(crate) fn next_request_id(&mut self) -> RequestId {
        self.last_request_id += 1;
        RequestId::Num(self.last_request_id)
    }
}

/// What a callback can see of the connection, and where it queues what should happen.
///
/// Nothing is sent while the callback runs: the runtime writes queued frames and delivers queued
/// messages right after it returns, in the order they were queued.
pub struct Context<'a> {
    pub(crate) state: &'a ConnectionState,
    pub(crate) config: &'a ClientConfig,
    pub(crate) out: &'a mut Outbox,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        state: &'a ConnectionState,
        config: &'a ClientConfig,
        out: &'a mut Outbox,
    ) -> Self {
        Self { state, config, out }
    }

    /// The connection's state.
    #[must_use]
    pub fn state(&self) -> &ConnectionState {
        self.state
    }

    /// The client's configuration.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        self.config
    }

    /// Consecutive reconnect attempts so far (0 before the first reconnect).
    #[must_use]
    pub fn reconnect_attempt(&self) -> u32 {
        self.state.reconnection_attempts
    }

    /// The configured policy's delay for the current attempt, jitter included.
    #[must_use]
    pub fn backoff_delay(&self) -> Duration {
        self.config
            .backoff()
            .delay(self.state.reconnection_attempts)
    }

    /// Queues a message to send (counted as [`Operation::Other`] by the rate limiter).
    pub fn send(&mut self, message: impl Into<Message>) {
        self.send_as(message, Operation::Other);
    }

    /// Queues a message to send, counted as `operation` by the rate limiter. What callbacks
    /// queue is never held back by the limit (it takes its tokens at once), so that heartbeats,
    /// auth and acknowledgements are never starved; saying what it is keeps the budget honest
    /// for what waits.
    pub fn send_as(&mut self, message: impl Into<Message>, operation: Operation) {
        self.out
            .frames
            .push((Frame::from_message(message.into()), operation));
    }

    /// Queues a frame to send (a reply of the same kind, a ping).
    pub fn send_frame(&mut self, frame: Frame) {
        self.out.frames.push((frame, Operation::Other));
    }

    /// Hands a message to the application's inbound queue.
    pub fn deliver(&mut self, message: Message) {
        self.out.deliveries.push(message);
    }

    /// A fresh request id, unique for this client (never reused, across reconnects too).
    pub fn next_request_id(&mut self) -> RequestId {
        self.out.next_request_id()
    }

    /// Asks the runtime to drop this connection and reconnect (through `handle_disconnect`).
    /// The TCP connection is dropped without a close frame.
    pub fn request_reconnect(&mut self, reason: impl Into<String>) {
        self.out.reconnect = Some(reason.into());
        self.out.reconnect_close = None;
    }

    /// Like [`request_reconnect`](Self::request_reconnect), but the runtime first sends a close
    /// frame with `code` (without waiting for the peer's answer). For platforms where the close
    /// code means something: Discord keeps a session resumable after any code but 1000/1001.
    pub fn request_reconnect_with_close(&mut self, code: u16, reason: impl Into<String>) {
        self.out.reconnect = Some(reason.into());
        self.out.reconnect_close = Some(code);
    }

    /// Asks the runtime to replace this connection without a gap (make-before-break): a second
    /// connection is opened (its URL asked again, of the handler's `connect_url` or the
    /// [`EndpointSource`](crate::EndpointSource)) and taken through `handle_connect`,
    /// authentication and restore while this one keeps delivering; then it takes over the
    /// application's sends, and this one drains (its frames still reach the handler) until the
    /// server closes it or [`ClientConfig::handover_drain`] passes. The handler sees frames of both
    /// connections during the overlap and de-duplicates what the platform may repeat (Slack:
    /// `envelope_id`). A request while a handover is under way, or made while handling a frame
    /// of the draining connection, is ignored. If the new connection fails, this one stays.
    pub fn request_handover(&mut self, reason: impl Into<String>) {
        self.out.handover = Some(reason.into());
    }

    /// Asks the runtime to stop the client for good: the connection is closed (code 1000) and
    /// the client ends with [`StopReason::Policy`](crate::StopReason::Policy) and `reason`, without a
    /// reconnect. For a platform that says the link is gone (Slack's `link_disabled`).
    pub fn request_stop(&mut self, reason: impl Into<String>) {
        self.out.stop = Some(reason.into());
    }

    /// Starts authentication on this connection now: the runtime calls
    /// [`AuthHandler::generate_auth_data`](crate::AuthHandler::generate_auth_data) right after
    /// this callback and sends its message, as it does at connect for handlers that authenticate
    /// there. For handlers whose
    /// [`authenticates_on_connect`](crate::AuthHandler::authenticates_on_connect) is `false`
    /// (their credentials follow a server greeting); ignored when authentication is under way or
    /// done on this connection.
    pub fn begin_authentication(&mut self) {
        self.out.begin_auth = true;
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("state", self.state)
            .finish_non_exhaustive()
    }
}
