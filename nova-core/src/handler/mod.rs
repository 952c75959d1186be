//! The seven behaviours of the seed as traits, and the [`Context`] their callbacks act through.
//!
//! Callbacks are sans-IO decision functions: they receive a message and the runtime's view of the
//! connection, update their own state (`&mut self` is the seed's `state`), and either return a
//! policy decision (reconnect after a delay, stop, continue) or queue output on the [`Context`]
//! (send a frame, deliver a message to the application). The runtime performs all I/O after the
//! callback returns, so every handler can be unit-tested without a socket.
//!
//! # Order of callbacks
//!
//! 1. `ConnectionHandler::init` once, before the first connect.
//! 2. On every connect (the first and each reconnect):
//!    `ConnectionHandler::handle_connect` → authenticate (`AuthHandler`) → restore subscriptions
//!    (`SubscriptionHandler`) → flush messages buffered while disconnected → normal traffic.
//! 3. For each frame read: `ConnectionHandler::handle_frame`; for a data message then
//!    `MessageHandler::message_type` (one look: invalid, a response, subscription data with its
//!    parsed value, a heartbeat, or unknown) → the response to its request, the data to its
//!    subscription's stream, a heartbeat to `HeartbeatHandler::handle_heartbeat`, anything else
//!    to `MessageHandler::handle_message`.
//! 4. On an error: `ErrorHandler::log_error`, then `ErrorHandler::handle_error` decides.
//! 5. When a connection ends: `ConnectionHandler::handle_disconnect` decides reconnect or stop;
//!    when a connect attempt fails: `ErrorHandler::should_reconnect` decides.
//!
//! A type implements all seven traits — most with empty `impl` blocks, since every method has a
//! default — and is then a [`Handler`] the runtime can drive. `#[nova::client]` writes those
//! impls for you.

mod auth;
mod connection;
mod context;
mod error;
mod heartbeat;
mod message;
mod rate_limit;
mod subscription;

pub use auth::{AuthHandler, AuthOutcome, AuthRequest};
pub use connection::{ConnectionHandler, FrameAction, ReconnectDecision};
pub use context::Context;
pub(crate) use context::Outbox;
pub use error::{ErrorAction, ErrorContext, ErrorHandler, ErrorSource};
pub use heartbeat::HeartbeatHandler;
pub use message::{Data, Decoder, MessageHandler, MessageType, RequestId};
pub use rate_limit::{Operation, RateLimitAction, RateLimitDecision, RateLimitHandler};
pub use subscription::{Gap, GapAction, Sequence, SequenceCheck, SubscriptionHandler};

/// A type the runtime can drive: all seven behaviours, `Send` and `'static`.
///
/// Implemented automatically for every type that implements the seven traits.
pub trait Handler:
    ConnectionHandler
    + MessageHandler
    + SubscriptionHandler
    + AuthHandler
    + ErrorHandler
    + HeartbeatHandler
    + RateLimitHandler
    + Send
    + 'static
{
}

impl<T> Handler for T where
    T: ConnectionHandler
        + MessageHandler
        + SubscriptionHandler
        + AuthHandler
        + ErrorHandler
        + HeartbeatHandler
        + RateLimitHandler
        + Send
        + 'static
{
}

/// A handler with every default: reconnect per the configured policy, deliver every message to
/// the application, no authentication, no platform heartbeat, no rate limit.
///
/// ```no_run
/// use nova_core::{Client, ClientConfig, DefaultHandler};
///
/// # async fn run() -> Result<(), nova_core::Error> {
/// let config = ClientConfig::builder("wss://echo.example/ws").build()?;
/// let (client, mut messages) = Client::connect(config, DefaultHandler);
/// client.send_text("hello").await?;
/// if let Some(Ok(reply)) = messages.recv().await {
///     println!("{reply:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultHandler;

impl ConnectionHandler for DefaultHandler {}
impl MessageHandler for DefaultHandler {}
impl SubscriptionHandler for DefaultHandler {}
impl AuthHandler for DefaultHandler {}
impl ErrorHandler for DefaultHandler {}
impl HeartbeatHandler for DefaultHandler {}
impl RateLimitHandler for DefaultHandler {}

#[cfg(test)]
mod send_check {
    // The runtime moves the handler into a task: it must stay Send.
    fn assert_handler<T: super::Handler>() {}
    #[test]
    fn default_handler_is_a_handler() {
        assert_handler::<super::DefaultHandler>();
    }
}
