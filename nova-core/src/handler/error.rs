//! `ErrorHandler`: what happens after an error, and whether to reconnect.

use super::{Context, ReconnectDecision};
use crate::error::Error;

/// Where an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorSource {
    /// A connect attempt (DNS, TCP, proxy, TLS, handshake).
    Connect,
    /// Reading from the connection.
    Read,
    /// Writing to the connection.
    Write,
    /// A message failed validation.
    Validation,
    /// A handler callback returned an error.
    Handler,
    /// Authentication.
    Auth,
    /// A subscription.
    Subscription,
    /// Heartbeats.
    Heartbeat,
}

impl ErrorSource {
    /// A short label for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Read => "read",
            Self::Write => "write",
            Self::Validation => "validation",
            Self::Handler => "handler",
            Self::Auth => "auth",
            Self::Subscription => "subscription",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// The context of an error (the seed's `context` map).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ErrorContext {
    /// Where it happened.
    pub source: ErrorSource,
    /// The client's name.
    pub client: String,
    /// Consecutive reconnect attempts so far.
    pub attempt: u32,
}

/// The decision after an error (the seed's `{:retry, delay}` is [`ErrorAction::Reconnect`]:
/// the delay is `handle_disconnect`'s to decide, as for every other end of a connection).
///
/// What the runtime retries by itself needs no decision: a refused restore is retried with
/// backoff, a platform's "too many requests" is resent after `handle_rate_limited`'s delay, an
/// idempotent request cut off by a disconnect is replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorAction {
    /// Carry on: skip what failed, keep the connection.
    Continue,
    /// Drop the connection and reconnect (through `handle_disconnect`).
    Reconnect,
    /// Stop the client.
    Stop {
        /// Why.
        reason: String,
    },
}

/// Error policy (the seed's `ErrorHandler`).
///
/// Defaults: message-level errors (validation, handler) are logged and skipped; a connection that
/// cannot be used any more (a protocol violation, a failed write) is reconnected; a rejected
/// credential stops the client with the platform's reason (retrying cannot fix it), other
/// authentication failures (no answer) reconnect with backoff; failed connects are retried with
/// backoff. Errors no retry can fix (an invalid URL) stop the client whatever
/// this handler says.
pub trait ErrorHandler {
    /// Decides what follows an error.
    fn handle_error(
        &mut self,
        error: &Error,
        context: &ErrorContext,
        ctx: &Context<'_>,
    ) -> ErrorAction {
        let _ = (error, ctx);
        match (context.source, error) {
            (ErrorSource::Read | ErrorSource::Write, _) => ErrorAction::Reconnect,
            (ErrorSource::Auth, Error::AuthRejected(reason)) => ErrorAction::Stop {
                reason: format!("authentication rejected: {reason}"),
            },
            (ErrorSource::Auth, _) => ErrorAction::Reconnect,
            _ => ErrorAction::Continue,
        }
    }

    /// Decides whether a failed connect attempt is tried again (the seed's
    /// `should_reconnect?`). The default: after the configured backoff.
    fn should_reconnect(
        &mut self,
        error: &Error,
        attempt: u32,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        let _ = (error, attempt, ctx);
        ReconnectDecision::backoff()
    }

    /// Logs an error with its context (default: a `tracing` warning with structured fields).
    fn log_error(&mut self, error: &Error, context: &ErrorContext) {
        tracing::warn!(
            client_id = %context.client,
            source = context.source.as_str(),
            error_type = error.kind(),
            attempt = context.attempt,
            "{error}"
        );
    }
}
