//! [`GenGoldenAdapter`]: nova's seven behaviours for the Gen Golden API.
//!
//! The adapter is sans-IO: each callback gets a message and the connection's [`Context`],
//! updates the adapter's own state and queues what should be sent; the nova runtime does all
//! the I/O, numbers requests, matches responses, restores subscriptions after a reconnect and
//! authenticates again. This file holds the connection, authentication, error, heartbeat and
//! rate-limit callbacks; the message callbacks are in `message.rs`, the subscription callbacks
//! in `subscription.rs`. Every callback is written out, with what it is for: each is a place
//! to change how this platform is handled.

use std::time::Duration;

use nova_core::jsonrpc;
use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ClientConfig, ConnectInfo, ConnectionHandler, Context,
    DisconnectReason, Error, ErrorAction, ErrorContext, ErrorHandler, ErrorSource, Frame,
    FrameAction, HandlerError, HeartbeatHandler, Message, Operation, RateLimitAction,
    RateLimitDecision, RateLimitHandler, ReconnectDecision, RequestId,
};
use serde_json::{Value, json};

use crate::message::{Incoming, parse};
use crate::types::Credentials;

/// The method that authenticates.
pub const AUTH_METHOD: &str = "public/auth";

/// The method that answers a server's `test_request` heartbeat.
pub const TEST_METHOD: &str = "public/test";

/// The platform's error code for "too many requests".
pub const TOO_MANY_REQUESTS: i64 = 10028;

/// The authentication request: the client-credentials grant with the API key and secret.
#[must_use]
pub fn auth_request(id: &RequestId, credentials: &Credentials) -> jsonrpc::Request {
    let params = json!({
        "grant_type": "client_credentials",
        "client_id": credentials.api_key.expose(),
        "client_secret": credentials.api_secret.expose(),
    });
    jsonrpc::Request::new(id, AUTH_METHOD, params)
}

/// The Gen Golden platform adapter: give it to `nova_core::Client::connect`, or use
/// [`GenGoldenClient`](crate::GenGoldenClient), which does.
#[derive(Debug, Default)]
pub struct GenGoldenAdapter {
    /// API credentials; without them the client connects without authenticating.
    pub(crate) credentials: Option<Credentials>,
    /// The id of the authentication request awaiting its answer.
    pub(crate) auth_request: Option<RequestId>,
}

impl GenGoldenAdapter {
    /// An adapter that authenticates with `credentials`, when given.
    #[must_use]
    pub fn new(credentials: Option<Credentials>) -> Self {
        Self {
            credentials,
            auth_request: None,
        }
    }
}

impl ConnectionHandler for GenGoldenAdapter {
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

impl ErrorHandler for GenGoldenAdapter {
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

impl AuthHandler for GenGoldenAdapter {
    /// The authentication request, sent after every connect before subscriptions are restored
    /// (and again whenever `needs_reauthentication` says so); `None` without credentials. Sign
    /// the request here if the platform wants a signature instead of the secret.
    fn generate_auth_data(
        &mut self,
        auth: &AuthRequest,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        let request = auth_request(&auth.id, credentials);
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
        match response.into_result() {
            Ok(_) => AuthOutcome::Authenticated,
            Err(error) => AuthOutcome::Rejected(error.to_string()),
        }
    }

    /// Whether credentials must be refreshed now (checked periodically while connected): never.
    /// Keep the access token's `expires_in` from the auth response and return `true` before it
    /// runs out.
    fn needs_reauthentication(&self, _ctx: &Context<'_>) -> bool {
        false
    }
}

impl HeartbeatHandler for GenGoldenAdapter {
    /// Called on every connect with the configured heartbeat interval; returns how often
    /// `generate_heartbeat` runs. This platform's server sends the heartbeats (and the runtime
    /// pings at the WebSocket level regardless), so the client sends none.
    fn configure(&mut self, _interval: Option<Duration>) -> Option<Duration> {
        None
    }

    /// Answers the server's heartbeat: a `test_request` must be answered with `public/test`,
    /// or the server closes the connection.
    fn handle_heartbeat(
        &mut self,
        message: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let Incoming::Heartbeat(heartbeat) = parse(message)? else {
            return Ok(());
        };
        if heartbeat.params.is_test_request() {
            let id = ctx.next_request_id();
            ctx.send(jsonrpc::request(&id, TEST_METHOD, &Value::Null));
        }
        Ok(())
    }

    /// The heartbeat the client sends every `configure` interval: none.
    fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
        None
    }
}

impl RateLimitHandler for GenGoldenAdapter {
    /// Whether `operation` may be sent now: always (the runtime's own limiter, configured with
    /// `ClientConfigBuilder::rate_limit`, paces sends). Add the platform's own rules here.
    fn check_rate_limit(&mut self, _operation: Operation) -> RateLimitDecision {
        RateLimitDecision::Allow
    }

    /// Records that `operation` was sent: keep the platform's own accounting here.
    fn update_rate_limit(&mut self, _operation: Operation) {}

    /// Whether a response is the platform's "too many requests" answer: error
    /// `TOO_MANY_REQUESTS`. The runtime then resends the request after `handle_rate_limited`'s
    /// delay.
    fn is_rate_limit_response(&self, response: &Message) -> bool {
        match parse(response) {
            Ok(Incoming::Response(response)) => response
                .error
                .is_some_and(|error| error.code == TOO_MANY_REQUESTS),
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
