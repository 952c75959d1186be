//! The seed's ready-made strategies: policy behaviours a client picks by name with
//! `#[nova::client(strategy = "...")]`, or uses by hand.
//!
//! A strategy supplies the *policy* callbacks (what follows a disconnect, a failed connect, an
//! error) and, for [`Echo`], the frame callback. Each one is a unit struct implementing all seven
//! behaviour traits, so it is also a complete [`Handler`](crate::Handler) on its own
//! (`Client::connect(config, Echo)` is an echo client). The macro's expansion forwards to these
//! impls; the behaviour lives here, once, not in every expansion.
//!
//! | strategy | `handle_disconnect` | `should_reconnect` | other callbacks |
//! |---|---|---|---|
//! | [`AlwaysReconnect`] | reconnect after `250 ms × 2^attempt`, capped at 30 s, less the configured jitter | reconnect, same delay | defaults |
//! | [`FailFast`] | stop with the disconnect reason | stop | defaults |
//! | [`LogAndContinue`] | log a warning, reconnect after `1000 ms × (attempt + 1)` | reconnect, same delay | `log_error` at error level |
//! | [`Echo`] | default (configured backoff) | default | `handle_frame` answers text with text, binary with binary; `handle_message` delivers |
//!
//! `attempt` is [`Context::reconnect_attempt`]: consecutive reconnects so far, 0 for the first.
//! The strategies' own delays replace the configured initial and maximum delay; only
//! [`AlwaysReconnect`] applies the configured jitter. The runtime still enforces
//! `max_reconnect_attempts` and honours a server's `Retry-After`.
//!
//! Calling a strategy by hand, from a handler that keeps most of its policy:
//!
//! ```
//! use nova_core::{AlwaysReconnect, ConnectionHandler, Context, DisconnectReason, ReconnectDecision};
//!
//! struct Bot;
//!
//! impl ConnectionHandler for Bot {
//!     fn handle_disconnect(&mut self, reason: &DisconnectReason, ctx: &Context<'_>) -> ReconnectDecision {
//!         match reason {
//!             DisconnectReason::ClosedByPeer { code: Some(4001), .. } => {
//!                 ReconnectDecision::stop("banned")
//!             }
//!             _ => AlwaysReconnect.handle_disconnect(reason, ctx),
//!         }
//!     }
//! }
//! ```

use std::time::Duration;

use crate::backoff::{Backoff, ReconnectStrategy};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::handler::{
    AuthHandler, ConnectionHandler, Context, ErrorContext, ErrorHandler, FrameAction,
    HeartbeatHandler, MessageHandler, RateLimitHandler, ReconnectDecision, SubscriptionHandler,
};
use crate::message::{Frame, Message};
use crate::types::DisconnectReason;

/// Reconnect on every disconnect and every failed connect, with exponential backoff:
/// `250 ms × 2^attempt`, capped at 30 s, less a random part of up to the configured jitter
/// (`ClientConfigBuilder::jitter`, default 0.2).
///
/// ```
/// use std::time::Duration;
/// use nova_core::AlwaysReconnect;
///
/// let b = AlwaysReconnect::backoff(0.0);
/// assert_eq!(b.base_delay(0), Duration::from_millis(250));
/// assert_eq!(b.base_delay(2), Duration::from_secs(1));
/// assert_eq!(b.base_delay(10), Duration::from_secs(30));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlwaysReconnect;

impl AlwaysReconnect {
    /// The first delay.
    pub const INITIAL: Duration = Duration::from_millis(250);
    /// The largest delay.
    pub const MAX: Duration = Duration::from_secs(30);

    /// The strategy's delay policy with this jitter fraction.
    #[must_use]
    pub fn backoff(jitter: f64) -> Backoff {
        Backoff::new(ReconnectStrategy::Exponential, Self::INITIAL, Self::MAX).with_jitter(jitter)
    }

    /// The delay before reconnect attempt `attempt` under `config`'s jitter.
    #[must_use]
    pub fn delay(config: &ClientConfig, attempt: u32) -> Duration {
        Self::backoff(config.jitter).delay(attempt)
    }
}

impl ConnectionHandler for AlwaysReconnect {
    fn handle_disconnect(
        &mut self,
        reason: &DisconnectReason,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = reason;
        ReconnectDecision::after(Self::delay(ctx.config(), ctx.reconnect_attempt()))
    }
}

impl ErrorHandler for AlwaysReconnect {
    fn should_reconnect(
        &mut self,
        error: &Error,
        attempt: u32,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = error;
        ReconnectDecision::Reconnect {
            after: Some(Self::delay(ctx.config(), attempt)),
        }
    }
}

/// Stop at the first disconnect (with its reason) and at the first failed connect.
///
/// For clients where a silent gap is worse than no client: a supervisor restarts them, or a
/// human looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailFast;

impl ConnectionHandler for FailFast {
    fn handle_disconnect(
        &mut self,
        reason: &DisconnectReason,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = ctx;
        ReconnectDecision::stop(reason.to_string())
    }
}

impl ErrorHandler for FailFast {
    fn should_reconnect(
        &mut self,
        error: &Error,
        attempt: u32,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = (attempt, ctx);
        ReconnectDecision::stop(format!("no reconnect after: {error}"))
    }
}

/// Log each disconnect as a warning and reconnect after a linear backoff,
/// `1000 ms × (attempt + 1)` (no jitter and, as in the seed, no cap: bound it with
/// `max_reconnect_attempts`); log errors at error level with their context.
///
/// ```
/// use std::time::Duration;
/// use nova_core::LogAndContinue;
///
/// assert_eq!(LogAndContinue::backoff().base_delay(0), Duration::from_secs(1));
/// assert_eq!(LogAndContinue::backoff().base_delay(4), Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogAndContinue;

impl LogAndContinue {
    /// The step the delay grows by with each attempt.
    pub const STEP: Duration = Duration::from_millis(1000);

    /// The strategy's delay policy.
    #[must_use]
    pub fn backoff() -> Backoff {
        Backoff::new(ReconnectStrategy::Linear, Self::STEP, Duration::MAX)
    }
}

impl ConnectionHandler for LogAndContinue {
    fn handle_disconnect(
        &mut self,
        reason: &DisconnectReason,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let attempt = ctx.reconnect_attempt();
        let after = Self::backoff().delay(attempt);
        tracing::warn!(
            client_id = %ctx.config().name(),
            reason = reason.as_str(),
            attempt,
            delay_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            "disconnected: {reason}; reconnecting"
        );
        ReconnectDecision::after(after)
    }
}

impl ErrorHandler for LogAndContinue {
    fn should_reconnect(
        &mut self,
        error: &Error,
        attempt: u32,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = (error, ctx);
        ReconnectDecision::Reconnect {
            after: Some(Self::backoff().delay(attempt)),
        }
    }

    fn log_error(&mut self, error: &Error, context: &ErrorContext) {
        tracing::error!(
            client_id = %context.client,
            source = context.source.as_str(),
            error_type = error.kind(),
            attempt = context.attempt,
            "error: {error}, context: {context:?}"
        );
    }
}

/// Answer every text frame with the same text and every binary frame with the same bytes;
/// ignore other frames; deliver every message to the application unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Echo;

impl ConnectionHandler for Echo {
    fn handle_frame(&mut self, frame: &Frame, ctx: &mut Context<'_>) -> FrameAction {
        if matches!(frame, Frame::Text(_) | Frame::Binary(_)) {
            ctx.send_frame(frame.clone());
        }
        FrameAction::Continue
    }
}

impl MessageHandler for Echo {
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), crate::HandlerError> {
        ctx.deliver(message);
        Ok(())
    }
}

/// The behaviours each strategy leaves at their defaults, so every strategy is a full `Handler`.
macro_rules! defaults {
    ($($ty:ty: $($tr:ident),*;)*) => {$($(impl $tr for $ty {})*)*};
}

defaults! {
    AlwaysReconnect: MessageHandler, SubscriptionHandler, AuthHandler, HeartbeatHandler, RateLimitHandler;
    FailFast: MessageHandler, SubscriptionHandler, AuthHandler, HeartbeatHandler, RateLimitHandler;
    LogAndContinue: MessageHandler, SubscriptionHandler, AuthHandler, HeartbeatHandler, RateLimitHandler;
    Echo: SubscriptionHandler, AuthHandler, ErrorHandler, HeartbeatHandler, RateLimitHandler;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::handler::Outbox;
    use crate::types::ConnectionState;

    fn config(jitter: f64) -> ClientConfig {
        ClientConfig::builder("ws://127.0.0.1:1")
            .backoff(Duration::from_secs(5), Duration::from_secs(60))
            .jitter(jitter)
            .build()
            .unwrap()
    }

    fn with_ctx<R>(
        attempt: u32,
        jitter: f64,
        f: impl FnOnce(&mut Context<'_>) -> R,
    ) -> (R, Outbox) {
        let config = config(jitter);
        let state = ConnectionState {
            reconnection_attempts: attempt,
            ..ConnectionState::default()
        };
        let mut out = Outbox::default();
        let r = f(&mut Context::new(&state, &config, &mut out));
        (r, out)
    }

    fn reconnect_after(action: ReconnectDecision) -> Duration {
        match action {
            ReconnectDecision::Reconnect { after: Some(after) } => after,
            other => panic!("not a reconnect with a delay: {other:?}"),
        }
    }

    fn lost() -> DisconnectReason {
        DisconnectReason::ConnectionLost("reset".into())
    }

    #[test]
    fn always_reconnect_doubles_from_250ms_and_ignores_the_configured_initial_delay() {
        for (attempt, ms) in [
            (0, 250),
            (1, 500),
            (2, 1000),
            (6, 16_000),
            (7, 30_000),
            (40, 30_000),
        ] {
            let (d, _) = with_ctx(attempt, 0.0, |ctx| {
                AlwaysReconnect.handle_disconnect(&lost(), ctx)
            });
            assert_eq!(
                reconnect_after(d),
                Duration::from_millis(ms),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn always_reconnect_applies_the_configured_jitter() {
        for _ in 0..200 {
            let (d, _) = with_ctx(3, 0.5, |ctx| {
                AlwaysReconnect.handle_disconnect(&lost(), ctx)
            });
            let d = reconnect_after(d);
            assert!(
                d >= Duration::from_millis(1000) && d <= Duration::from_millis(2000),
                "{d:?}"
            );
        }
        let error = Error::connection_lost("x");
        let (r, _) = with_ctx(0, 0.0, |ctx| {
            AlwaysReconnect.should_reconnect(&error, 2, ctx)
        });
        assert_eq!(
            r,
            ReconnectDecision::Reconnect {
                after: Some(Duration::from_secs(1))
            }
        );
    }

    #[test]
    fn fail_fast_stops_with_the_reason() {
        let (d, _) = with_ctx(0, 0.2, |ctx| FailFast.handle_disconnect(&lost(), ctx));
        assert_eq!(d, ReconnectDecision::stop("connection lost: reset"));
        let error = Error::connection_lost("x");
        let (r, _) = with_ctx(0, 0.2, |ctx| FailFast.should_reconnect(&error, 0, ctx));
        assert_eq!(
            r,
            ReconnectDecision::stop("no reconnect after: connection lost: x")
        );
    }

    #[test]
    fn log_and_continue_grows_linearly_without_jitter() {
        for (attempt, s) in [(0, 1), (1, 2), (9, 10), (99, 100)] {
            let (d, _) = with_ctx(attempt, 1.0, |ctx| {
                LogAndContinue.handle_disconnect(&lost(), ctx)
            });
            assert_eq!(reconnect_after(d), Duration::from_secs(s));
        }
        let (d, _) = with_ctx(u32::MAX, 0.0, |ctx| {
            LogAndContinue.handle_disconnect(&lost(), ctx)
        });
        assert!(reconnect_after(d) > Duration::from_secs(86_400));
    }

    #[test]
    fn echo_answers_data_frames_in_kind_and_ignores_the_rest() {
        let frames = [
            Frame::Text("hi".into()),
            Frame::Binary(bytes::Bytes::from_static(&[1, 2])),
            Frame::Ping(bytes::Bytes::new()),
            Frame::Pong(bytes::Bytes::new()),
            Frame::Close(None),
        ];
        let (actions, out) = with_ctx(0, 0.0, |ctx| {
            frames
                .iter()
                .map(|f| Echo.handle_frame(f, ctx))
                .collect::<Vec<_>>()
        });
        assert!(actions.iter().all(|a| *a == FrameAction::Continue));
        let sent: Vec<Frame> = out.frames.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(sent, frames[..2]);
        let (r, out) = with_ctx(0, 0.0, |ctx| Echo.handle_message(Message::text("m"), ctx));
        assert!(r.is_ok());
        assert_eq!(out.deliveries, [Message::text("m")]);
    }

    #[test]
    fn every_strategy_is_a_handler() {
        fn assert_handler<T: crate::Handler>() {}
        assert_handler::<AlwaysReconnect>();
        assert_handler::<FailFast>();
        assert_handler::<LogAndContinue>();
        assert_handler::<Echo>();
    }
}
