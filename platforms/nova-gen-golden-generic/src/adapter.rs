//! [`GenGoldenGenericAdapter`]: nova's seven behaviours for the Gen Golden Generic API.
//!
//! The adapter is sans-IO: each callback gets a message and the connection's [`Context`],
//! updates the adapter's own state and queues what should be sent; the nova runtime does all
//! the I/O, numbers requests, matches responses, restores subscriptions after a reconnect and
//! authenticates again. This file holds the connection, authentication, error, heartbeat and
//! rate-limit callbacks; the message callbacks are in `message.rs`, the subscription callbacks
//! in `subscription.rs`. Every callback is written out, with what it is for: each is a place
//! to change how this platform is handled.

use std::time::Duration;

use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ClientConfig, ConnectInfo, ConnectionHandler, Context,
    DisconnectReason, Error, ErrorAction, ErrorContext, ErrorHandler, ErrorSource, Frame,
    FrameAction, HandlerError, HeartbeatHandler, Message, Operation, RateLimitAction,
    RateLimitDecision, RateLimitHandler, ReconnectDecision, RequestId,
};
use serde_json::{Value, json};

use crate::message::{Incoming, PING_OP, parse};
use crate::types::{Credentials, OpRequest};

/// The operation that authenticates.
pub const AUTH_OP: &str = "auth";

/// The longest time between two pings the platform allows.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);

/// How far ahead of now the authentication's `expires` is set: wide enough that a client
/// clock somewhat behind the server's is not refused, short enough that a captured request is
/// soon useless.
pub const AUTH_EXPIRY: Duration = Duration::from_secs(10);

/// The authentication request: `args` = `[api_key, expires, signature]`, where `expires` is a
/// time in milliseconds and `signature` = `hex(HMAC-SHA256(api_secret, "GET/realtime" +
/// expires))` (Bybit's scheme). The secret itself never goes on the wire. Change
/// [`auth_signature`] if the platform signs something else.
#[must_use]
pub fn auth_request(id: &RequestId, credentials: &Credentials, expires: u64) -> OpRequest {
    let signature = auth_signature(credentials.api_secret.expose(), expires);
    let args = vec![
        Value::from(credentials.api_key.expose()),
        Value::from(expires),
        Value::from(signature),
    ];
    OpRequest::new(id, AUTH_OP, args)
}

/// `hex(HMAC-SHA256(secret, "GET/realtime" + expires))`, lowercase.
#[must_use]
pub fn auth_signature(secret: &str, expires: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length: never reached.
        return String::new();
    };
    mac.update(format!("GET/realtime{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Milliseconds since the Unix epoch, `ahead` from now.
fn expires_in(ahead: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from((now + ahead).as_millis()).unwrap_or(u64::MAX)
}

/// The Gen Golden Generic platform adapter: give it to `nova_core::Client::connect`, or use
/// [`GenGoldenGenericClient`](crate::GenGoldenGenericClient), which does.
#[derive(Debug, Default)]
pub struct GenGoldenGenericAdapter {
    /// API credentials; without them the client connects without authenticating.
    pub(crate) credentials: Option<Credentials>,
    /// The id of the authentication request awaiting its answer.
    pub(crate) auth_request: Option<RequestId>,
}

impl GenGoldenGenericAdapter {
    /// An adapter that authenticates with `credentials`, when given.
    #[must_use]
    pub fn new(credentials: Option<Credentials>) -> Self {
        Self {
            credentials,
            auth_request: None,
        }
    }
}

impl ConnectionHandler for GenGoldenGenericAdapter {
    /// Called once, before the first connect. Check the configuration here (e.g. that the URL
    /// is one of the platform's endpoints) or prepare state; an error stops the client.
    fn init(&mut self, _config: &ClientConfig) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Called on every connect, the first and each reconnect, before authentication. Forget
    /// what belonged to the previous connection here, and queue per-connection setup requests
    /// on `ctx` (they are sent first).
    fn handle_connect(
        &mut self,
        _info: &ConnectInfo,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        self.auth_request = None;
        Ok(())
    }

    /// Decides what follows the end of a connection: reconnect after the configured backoff.
    /// Return `ReconnectDecision::Stop` for close codes that mean "do not come back" (a banned
    /// key, a retired endpoint).
    fn handle_disconnect(
        &mut self,
        _reason: &DisconnectReason,
        ctx: &Context<'_>,
    ) -> ReconnectDecision {
        ReconnectDecision::after(ctx.backoff_delay())
    }

    /// Sees every frame, control frames included, before the message callbacks. Return
    /// `FrameAction::Consumed` to keep a frame from them (e.g. a binary frame the platform
    /// sends as a keep-alive).
    fn handle_frame(&mut self, _frame: &Frame, _ctx: &mut Context<'_>) -> FrameAction {
        FrameAction::Continue
    }
}

impl ErrorHandler for GenGoldenGenericAdapter {
    /// Decides what follows an error: a broken read or write reconnects; rejected credentials
    /// stop the client (retrying cannot fix them), an unanswered authentication reconnects;
    /// anything else (a message that failed validation, a callback's error) is skipped and the
    /// connection kept. Stop here on errors the platform means as final.
    fn handle_error(
        &mut self,
        error: &Error,
        context: &ErrorContext,
        _ctx: &Context<'_>,
    ) -> ErrorAction {
        match (context.source, error) {
            (ErrorSource::Read | ErrorSource::Write, _) => ErrorAction::Reconnect,
            (ErrorSource::Auth, Error::AuthRejected(reason)) => ErrorAction::Stop {
                reason: format!("authentication rejected: {reason}"),
            },
            (ErrorSource::Auth, _) => ErrorAction::Reconnect,
            _ => ErrorAction::Continue,
        }
    }

    /// Decides whether a failed connect is tried again: always, after the configured backoff
    /// (`after: None`). Give up here on errors no retry can fix.
    fn should_reconnect(
        &mut self,
        _error: &Error,
        _attempt: u32,
        _ctx: &Context<'_>,
    ) -> ReconnectDecision {
        ReconnectDecision::Reconnect { after: None }
    }

    /// Logs an error with its context. Send errors to your own monitoring here.
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

impl AuthHandler for GenGoldenGenericAdapter {
    /// The authentication request, sent after every connect before subscriptions are restored
    /// (and again whenever `needs_reauthentication` says so); `None` without credentials. It
    /// carries a signature of an expiry time, never the secret ([`auth_request`]).
    fn generate_auth_data(
        &mut self,
        auth: &AuthRequest,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        let request = auth_request(&auth.id, credentials, expires_in(AUTH_EXPIRY));
        self.auth_request = Some(auth.id.clone());
        Ok(Some(request.to_message()))
    }

    /// Judges a message received while authentication is pending: the answer to the
    /// authentication request decides; any other message is not the answer.
    fn handle_auth_response(&mut self, response: &Message, _ctx: &mut Context<'_>) -> AuthOutcome {
        let Some(pending) = &self.auth_request else {
            return AuthOutcome::NotAuthResponse;
        };
        let Ok(Incoming::Response(response)) = parse(response) else {
            return AuthOutcome::NotAuthResponse;
        };
        if !response.answers(pending) {
            return AuthOutcome::NotAuthResponse;
        }
        self.auth_request = None;
        match response.check() {
            Ok(()) => AuthOutcome::Authenticated,
            Err(error) => AuthOutcome::Rejected(error.to_string()),
        }
    }

    /// Whether credentials must be refreshed now (checked periodically while connected): never,
    /// the authentication lasts as long as the connection. Return `true` here before a
    /// platform's session expires.
    fn needs_reauthentication(&self, _ctx: &Context<'_>) -> bool {
        false
    }
}

impl HeartbeatHandler for GenGoldenGenericAdapter {
    /// Called on every connect with the configured heartbeat interval; returns how often
    /// `generate_heartbeat` runs: the configured interval, at most `PING_INTERVAL`.
    fn configure(&mut self, interval: Option<Duration>) -> Option<Duration> {
        Some(interval.map_or(PING_INTERVAL, |interval| interval.min(PING_INTERVAL)))
    }

    /// Handles the server's answer to a ping: nothing to do. A server that stops answering is
    /// noticed by the runtime's WebSocket ping.
    fn handle_heartbeat(
        &mut self,
        _message: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    /// The heartbeat sent every `configure` interval: `{"op": "ping"}`.
    fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
        Some(Message::text(json!({ "op": PING_OP }).to_string()))
    }
}

impl RateLimitHandler for GenGoldenGenericAdapter {
    /// Whether `operation` may be sent now: always (the runtime's own limiter, configured with
    /// `ClientConfigBuilder::rate_limit`, paces sends). Add the platform's own rules here.
    fn check_rate_limit(&mut self, _operation: Operation) -> RateLimitDecision {
        RateLimitDecision::Allow
    }

    /// Records that `operation` was sent: keep the platform's own accounting here.
    fn update_rate_limit(&mut self, _operation: Operation) {}

    /// Whether a response is the platform's "too many requests" answer: a failure whose
    /// `ret_msg` says "too many". The runtime then resends the request after
    /// `handle_rate_limited`'s delay.
    fn is_rate_limit_response(&self, response: &Message) -> bool {
        match parse(response) {
            Ok(Incoming::Response(response)) => {
                !response.success && response.ret_msg.to_ascii_lowercase().contains("too many")
            }
            _ => false,
        }
    }

    /// Handles the platform's "too many requests" answer: retry after a second.
    fn handle_rate_limited(&mut self, _response: &Message) -> RateLimitAction {
        RateLimitAction::Retry {
            after: Duration::from_secs(1),
        }
    }
}
