//! `ConnectionHandler`: the connection's life — connect, frames, disconnect.

use std::time::Duration;

use super::Context;
use crate::config::ClientConfig;
use crate::error::HandlerError;
use crate::message::{Frame, Message};
use crate::types::{ConnectInfo, DisconnectReason};

/// What follows a connection that ended or a connect attempt that failed (the seed's
/// `{:reconnect, delay}` / `{:stop, reason}`): the one decision returned by both
/// [`ConnectionHandler::handle_disconnect`] and
/// [`ErrorHandler::should_reconnect`](crate::ErrorHandler::should_reconnect).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectDecision {
    /// Connect again after `after`; `None` waits the configured backoff for this attempt. A
    /// server's `Retry-After` (on a refused handshake) lengthens the wait either way, and the
    /// runtime still enforces `max_reconnect_attempts`.
    Reconnect {
        /// A delay other than the configured backoff's, if wanted.
        after: Option<Duration>,
    },
    /// Stop the client for good.
    Stop {
        /// Why; kept in the client's state as `StopReason::Policy`.
        reason: String,
    },
}

impl ReconnectDecision {
    /// Reconnect after the configured backoff.
    #[must_use]
    pub fn backoff() -> Self {
        Self::Reconnect { after: None }
    }

    /// Reconnect after `delay`.
    #[must_use]
    pub fn after(delay: Duration) -> Self {
        Self::Reconnect { after: Some(delay) }
    }

    /// Stop with `reason`.
    #[must_use]
    pub fn stop(reason: impl Into<String>) -> Self {
        Self::Stop {
            reason: reason.into(),
        }
    }
}

/// What the runtime does with a frame after `handle_frame`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameAction {
    /// Go on: a data frame goes to the message callbacks.
    #[default]
    Continue,
    /// The frame has been dealt with; the message callbacks do not see it (also: a part of a
    /// message the handler buffers until the rest comes).
    Consumed,
    /// The message callbacks see this message instead of the frame: a transport encoding undone
    /// (a compressed stream inflated into text). Validation and classification see only this.
    Replace(Message),
}

/// Lifecycle of a connection (the seed's `ConnectionHandler`).
///
/// ```
/// use nova_core::{ConnectionHandler, Context, DisconnectReason, ReconnectDecision};
///
/// /// Reconnects at once after a server restart (close code 1012), stops when banned (4001),
/// /// otherwise waits the configured backoff.
/// struct Bot;
///
/// impl ConnectionHandler for Bot {
///     fn handle_disconnect(&mut self, reason: &DisconnectReason, _ctx: &Context<'_>) -> ReconnectDecision {
///         match reason {
///             DisconnectReason::ClosedByPeer { code: Some(1012), .. } => {
///                 ReconnectDecision::after(std::time::Duration::ZERO)
///             }
///             DisconnectReason::ClosedByPeer { code: Some(4001), .. } => ReconnectDecision::stop("banned"),
///             _ => ReconnectDecision::backoff(),
///         }
///     }
/// }
/// ```
pub trait ConnectionHandler {
    /// Called once, before the first connect.
    ///
    /// # Errors
    /// An error stops the client before it connects.
    fn init(&mut self, config: &ClientConfig) -> Result<(), HandlerError> {
        let _ = config;
        Ok(())
    }

    /// Called on every successful connect (the first and each reconnect), before authentication.
    /// Frames queued on `ctx` are sent first on the new connection.
    ///
    /// # Errors
    /// An error goes to `ErrorHandler::handle_error`.
    fn handle_connect(
        &mut self,
        info: &ConnectInfo,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let _ = (info, ctx);
        Ok(())
    }

    /// Decides what follows the end of a connection. The default reconnects after the configured
    /// backoff; `max_reconnect_attempts` is enforced by the runtime.
    fn handle_disconnect(
        &mut self,
        reason: &DisconnectReason,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = (reason, ctx);
        ReconnectDecision::backoff()
    }

    /// The URL of the next connect attempt, asked before every attempt (the first and each
    /// reconnect); `None` (the default) connects to the configured URL. For platforms that tell
    /// the client where to go next (Discord's `resume_gateway_url`) or take per-connection query
    /// parameters. The URL used is in [`ConnectInfo::url`].
    fn connect_url(&mut self, ctx: &Context<'_>) -> Option<String> {
        let _ = ctx;
        None
    }

    /// Sees every frame read, control frames included (pings are answered by the runtime).
    /// Returning [`FrameAction::Replace`] hands the message callbacks a decoded message instead
    /// (per-connection decoding state, such as an inflate context, is reset in `handle_connect`).
    fn handle_frame(&mut self, frame: &Frame, ctx: &mut Context<'_>) -> FrameAction {
        let _ = (frame, ctx);
        FrameAction::Continue
    }
}
