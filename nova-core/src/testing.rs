//! Unit tests of handler callbacks without a socket (feature `testing`).
//!
//! Callbacks that take a [`Context`] queue what should happen (frames to send, messages to
//! deliver, a reconnect) instead of doing it. A [`TestContext`] builds such a context over a
//! state and a configuration you choose, runs the callback, and shows what it queued: what the
//! runtime would have done next.
//!
//! ```
//! use nova_core::testing::TestContext;
//! use nova_core::{HeartbeatHandler, HandlerError, Message, Context, Frame};
//!
//! /// Answers the server's `"ping"` with `"pong"`.
//! struct Pinger;
//!
//! impl HeartbeatHandler for Pinger {
//!     fn handle_heartbeat(&mut self, _m: &Message, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
//!         ctx.send(Message::text("pong"));
//!         Ok(())
//!     }
//! }
//!
//! let mut t = TestContext::new();
//! t.run(|ctx| Pinger.handle_heartbeat(&Message::text("ping"), ctx)).unwrap();
//! assert_eq!(t.sent_texts(), ["pong"]);
//! ```

use crate::config::ClientConfig;
use crate::handler::{Context, Operation, Outbox, RequestId};
use crate::message::{Frame, Message};
use crate::types::ConnectionState;

/// A [`Context`] for tests, and what callbacks queued on it.
#[derive(Debug)]
pub struct TestContext {
    state: ConnectionState,
    config: ClientConfig,
    out: Outbox,
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    /// A context over the default state (disconnected, no attempts) and a default configuration
    /// for `ws://127.0.0.1:9`.
    ///
    /// # Panics
    /// Never: the built-in URL is valid.
    #[must_use]
    pub fn new() -> Self {
        let config = ClientConfig::builder("ws://127.0.0.1:9")
            .build()
            .expect("a valid built-in URL");
        Self::with_config(config)
    }

    /// A context over this configuration.
    #[must_use]
    pub fn with_config(config: ClientConfig) -> Self {
        Self {
            state: ConnectionState::default(),
            config,
            out: Outbox::default(),
        }
    }

    /// The connection state callbacks see; change it to test how they react to it.
    pub fn state_mut(&mut self) -> &mut ConnectionState {
        &mut self.state
    }

    /// Runs a callback with a context, as the runtime would.
    pub fn run<R>(&mut self, callback: impl FnOnce(&mut Context<'_>) -> R) -> R {
        let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
        callback(&mut ctx)
    }

    /// The frames queued to send, with the operation each counts as for rate limits, taken
    /// (a second call returns only what was queued since).
    pub fn take_sent(&mut self) -> Vec<(Frame, Operation)> {
        std::mem::take(&mut self.out.frames)
    }

    /// The text of the frames queued to send so far (binary and control frames left out).
    #[must_use]
    pub fn sent_texts(&self) -> Vec<String> {
        self.out
            .frames
            .iter()
            .filter_map(|(frame, _)| match frame {
                Frame::Text(t) => Some(t.as_str().to_owned()),
                _ => None,
            })
            .collect()
    }

    /// The messages handed to the application's inbound queue, taken.
    pub fn take_delivered(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.out.deliveries)
    }

    /// The reason given by a callback that asked for a reconnect, if one did.
    #[must_use]
    pub fn reconnect_requested(&self) -> Option<&str> {
        self.out.reconnect.as_deref()
    }

    /// The close code a callback asked to close with before reconnecting
    /// ([`Context::request_reconnect_with_close`]), if any.
    #[must_use]
    pub fn reconnect_close_code(&self) -> Option<u16> {
        self.out.reconnect_close
    }

    /// The reason given by a callback that asked for a handover
    /// ([`Context::request_handover`]), if one did.
    #[must_use]
    pub fn handover_requested(&self) -> Option<&str> {
        self.out.handover.as_deref()
    }

    /// The reason given by a callback that asked to stop the client
    /// ([`Context::request_stop`]), if one did.
    #[must_use]
    pub fn stop_requested(&self) -> Option<&str> {
        self.out.stop.as_deref()
    }

    /// Whether a callback asked to begin authentication ([`Context::begin_authentication`]).
    #[must_use]
    pub fn authentication_begun(&self) -> bool {
        self.out.begin_auth
    }

    /// The last request id handed out by [`Context::next_request_id`] (`None` before any).
    #[must_use]
    pub fn last_request_id(&self) -> Option<RequestId> {
        (self.out.last_request_id > 0).then_some(RequestId::Num(self.out.last_request_id))
    }
}
