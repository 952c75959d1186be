//! `ConnectionHandler`: the connection's life — connect, frames, disconnect.

use std::time::Duration;

use super::Context;
use crate::config::ClientConfig;
use crate::error::HandlerError;
use crate::message::Frame;
use crate::types::{ConnectInfo, DisconnectReason};

/// What to do after a connection ended (the seed's `{:reconnect, delay}` / `{:stop, reason}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectAction {
    /// Connect again after this delay.
    Reconnect {
        /// The delay before the next attempt.
        after: Duration,
    },
    /// Stop the client for good.
    Stop {
        /// Why; kept in the client's state.
        reason: String,
    },
}

/// What the runtime does with a frame after `handle_frame`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FrameAction {
    /// Go on: a data frame goes to the message callbacks.
    #[default]
    Continue,
    /// The frame has been dealt with; the message callbacks do not see it.
    Consumed,
}

/// Lifecycle of a connection (the seed's `ConnectionHandler`).
///
/// ```
/// use nova_core::{ConnectionHandler, Context, DisconnectAction, DisconnectReason};
///
/// /// Reconnects at once after a server restart (close code 1012), otherwise per policy.
/// struct Bot;
///
/// impl ConnectionHandler for Bot {
///     fn handle_disconnect(&mut self, reason: &DisconnectReason, ctx: &Context<'_>) -> DisconnectAction {
///         match reason {
///             DisconnectReason::ClosedByPeer { code: Some(1012), .. } => {
///                 DisconnectAction::Reconnect { after: std::time::Duration::ZERO }
///             }
///             _ => DisconnectAction::Reconnect { after: ctx.backoff_delay() },
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
    /// backoff (`ctx.backoff_delay()`); `max_reconnect_attempts` is enforced by the runtime.
    fn handle_disconnect(
        &mut self,
        reason: &DisconnectReason,
        ctx: &Context<'_>,
    ) -> DisconnectAction {
        let _ = reason;
        DisconnectAction::Reconnect {
            after: ctx.backoff_delay(),
        }
    }

    /// Sees every frame read, control frames included (pings are answered by the runtime).
    fn handle_frame(&mut self, frame: &Frame, ctx: &mut Context<'_>) -> FrameAction {
        let _ = (frame, ctx);
        FrameAction::Continue
    }
}
