//! `HeartbeatHandler`: a platform's own heartbeat, beside the runtime's WebSocket ping.

use std::time::{Duration, Instant};

use super::Context;
use crate::error::HandlerError;
use crate::message::Message;

/// A platform-level heartbeat (the seed's `HeartbeatHandler`): Deribit's `test_request`,
/// Discord's opcode 1, Bybit's `ping`. The runtime's WebSocket ping runs regardless.
///
/// ```
/// use std::time::{Duration, Instant};
/// use nova_core::{Context, HandlerError, HeartbeatHandler, Message};
///
/// struct Bybit;
///
/// impl HeartbeatHandler for Bybit {
///     fn configure(&mut self, _interval: Option<Duration>) -> Option<Duration> {
///         Some(Duration::from_secs(20))
///     }
///     fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
///         Some(Message::text(r#"{"op":"ping"}"#))
///     }
/// }
/// ```
pub trait HeartbeatHandler {
    /// Called on every connect with the configured heartbeat interval; returns the interval at
    /// which `generate_heartbeat` runs (`None`, the default: no platform heartbeat).
    fn configure(&mut self, interval: Option<Duration>) -> Option<Duration> {
        let _ = interval;
        None
    }

    /// Handles a message classified as [`MessageType::Heartbeat`](crate::MessageType::Heartbeat):
    /// answer a server's heartbeat request by queueing the answer on `ctx`.
    ///
    /// # Errors
    /// An error goes to the `ErrorHandler`.
    fn handle_heartbeat(
        &mut self,
        message: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let _ = (message, ctx);
        Ok(())
    }

    /// When [`heartbeat_due`](Self::heartbeat_due) must run next, for a schedule the handler
    /// owns (`None`, the default: no such schedule). Read again after every callback, since
    /// what the server says (an interval in its greeting, an acknowledgement) moves it. For
    /// platforms whose schedule is learned after the connect or has jitter (Discord), instead
    /// of the fixed interval of [`configure`](Self::configure).
    fn next_heartbeat(&self) -> Option<Instant> {
        None
    }

    /// The instant from [`next_heartbeat`](Self::next_heartbeat) has come (`now`): queue the
    /// heartbeat on `ctx` (as [`Operation::Heartbeat`](crate::Operation::Heartbeat)), or, when
    /// the previous one was never acknowledged, give the connection up with
    /// [`Context::request_reconnect_with_close`]. It must move `next_heartbeat` past `now`.
    ///
    /// # Errors
    /// An error goes to the `ErrorHandler`.
    fn heartbeat_due(&mut self, now: Instant, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        let _ = (now, ctx);
        Ok(())
    }

    /// The platform heartbeat to send now, if any (sent as [`Operation::Heartbeat`](crate::Operation::Heartbeat)).
    fn generate_heartbeat(&mut self, ctx: &mut Context<'_>) -> Option<Message> {
        let _ = ctx;
        None
    }
}
