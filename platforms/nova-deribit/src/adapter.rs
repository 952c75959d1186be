//! [`DeribitAdapter`]: the five protocol behaviours for Deribit.
//!
//! On every connect, before anything else: `public/hello`, `public/set_heartbeat` (when a
//! heartbeat is configured) and `public/auth` (when credentials are given), in that order.
//! Deribit's tokens are scoped to the connection, so each new connection authenticates afresh
//! with the configured grant; while connected, the token is refreshed with the `refresh_token`
//! grant once [`DeribitConfig::refresh_after`] of its lifetime has passed, without
//! disconnecting. A refresh that is refused falls back to the full grant on the same
//! connection.
//!
//! Heartbeats: Deribit sends `{"method":"heartbeat","params":{"type":"test_request"}}` every
//! interval and closes connections that do not answer; each is answered with `public/test`.
//! The heartbeats also tell the runtime the platform is alive.
//!
//! Subscriptions go through `public/subscribe`, or `private/subscribe` for `user.*` channels.
//! An ack must list the channel: Deribit leaves out channels it did not subscribe (a wrong name,
//! no permission) rather than answering an error. Order books are sequenced: the snapshot is a
//! [`Sequence::snapshot`], every change must follow the previous `change_id`
//! ([`Sequence::follows`]); a break makes the runtime subscribe again for a fresh snapshot and
//! tell the consumer.
//!
//! Rate limits: see [`crate::DeribitLimits`]; a `10028 too_many_requests` answer is recognised
//! and the request resent after [`DeribitConfig::rate_limited_retry`].

use std::time::{Duration, Instant};

use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ConnectionHandler, Context, Data, ErrorHandler, Gap,
    GapAction, HandlerError, HeartbeatHandler, Message, MessageHandler, MessageType, Operation,
    RateLimitAction, RateLimitDecision, RateLimitHandler, RequestId, Secret, Sequence,
    Subscription, SubscriptionHandler,
};
use serde_json::{Value, json};

use crate::auth::{Credentials, Grant, nonce, now_ms, refresh_params};
use crate::book_position::book_position;
use crate::error::ErrorCode;
use crate::message::{Glance, MarketData, glance};
use crate::message::{Incoming, Peek, error_code, peek, request};
use crate::rate_limit::{DeribitLimits, EngineBucket};
use crate::subscription::ChannelKind;
use crate::types::AuthResult;

/// The longest token lifetime taken into account (ten years).
const MAX_TOKEN_LIFETIME_SECS: u64 = 10 * 366 * 24 * 3600;
/// The default [`DeribitConfig::refresh_after`].
const DEFAULT_REFRESH_AFTER: f64 = 0.75;

/// How the adapter talks to Deribit.
///
/// ```
/// use std::time::Duration;
/// use nova_deribit::{Credentials, DeribitConfig, Grant};
///
/// let config = DeribitConfig::default()
///     .credentials(Credentials::new("id", "secret"))
///     .grant(Grant::ClientCredentials)
///     .heartbeat(Some(10));
/// assert_eq!(config.heartbeat_interval, Some(10));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeribitConfig {
    /// The API key; `None`: public methods only.
    pub credentials: Option<Credentials>,
    /// The grant used on each new connection (default: `client_signature`).
    pub grant: Grant,
    /// Scope asked for in `public/auth` (e.g. `"session:bot expires:3600"`); `None`: Deribit's
    /// default (`connection`).
    pub scope: Option<String>,
    /// The `public/set_heartbeat` interval in seconds (at least 10); `None`: no heartbeat.
    /// Default 10.
    pub heartbeat_interval: Option<u64>,
    /// How long one heartbeat "second" lasts (default 1 s; only a simulator running a faster
    /// clock changes it).
    pub heartbeat_unit: Duration,
    /// The fraction of a token's lifetime after which it is refreshed (default 0.75).
    pub refresh_after: f64,
    /// `public/hello`'s `client_name` and `client_version`.
    pub client_name: (String, String),
    /// Deribit's credit limits for this account.
    pub limits: DeribitLimits,
    /// How long to wait before resending a request answered `10028` (default 1 s).
    pub rate_limited_retry: Duration,
}

impl Default for DeribitConfig {
    fn default() -> Self {
        Self {
            credentials: None,
            grant: Grant::default(),
            scope: None,
            heartbeat_interval: Some(10),
            heartbeat_unit: Duration::from_secs(1),
            refresh_after: DEFAULT_REFRESH_AFTER,
            client_name: ("nova".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            limits: DeribitLimits::default(),
            rate_limited_retry: Duration::from_secs(1),
        }
    }
}

impl DeribitConfig {
    /// Sets [`credentials`](Self::credentials).
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets [`grant`](Self::grant).
    #[must_use]
    pub fn grant(mut self, grant: Grant) -> Self {
        self.grant = grant;
        self
    }

    /// Sets [`scope`](Self::scope).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    #[must_use]
    pub fn heartbeat(mut self, interval_secs: Option<u64>) -> Self {
        self.heartbeat_interval = interval_secs;
        self
    }

    /// Sets [`heartbeat_unit`](Self::heartbeat_unit).
    #[must_use]
    pub fn heartbeat_unit(mut self, unit: Duration) -> Self {
        self.heartbeat_unit = unit;
        self
    }

    /// Sets [`refresh_after`](Self::refresh_after) (clamped to 0.1..=0.95).
    #[must_use]
    pub fn refresh_after(mut self, fraction: f64) -> Self {
        self.refresh_after = fraction.clamp(0.1, 0.95);
        self
    }

    /// Sets [`limits`](Self::limits).
    #[must_use]
    pub fn limits(mut self, limits: DeribitLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`client_name`](Self::client_name).
    #[must_use]
    pub fn client_name(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.client_name = (name.into(), version.into());
        self
    }
}

/// The live token of the connection.
#[derive(Debug)]
struct Token {
    refresh: Secret,
    refresh_at: Instant,
    expires_at: Instant,
}

/// The pending `public/auth` request.
#[derive(Debug)]
struct PendingAuth {
    id: RequestId,
    refresh: bool,
}

/// Deribit's protocol behaviours, for [`nova_core::Client::connect`].
///
/// ```no_run
/// use nova_core::{Client, ClientConfig};
/// use nova_deribit::{Credentials, DeribitAdapter, DeribitConfig};
///
/// # fn run() -> Result<(), nova_core::ConfigError> {
/// let deribit = DeribitConfig::default().credentials(Credentials::new("id", "secret"));
/// let config = ClientConfig::builder("wss://test.deribit.com/ws/api/v2")
///     .rate_limit(deribit.limits.rate_limit())
///     .build()?;
/// let (client, messages) = Client::connect(config, DeribitAdapter::new(deribit));
/// # let _ = (client, messages); Ok(()) }
/// ```
#[derive(Debug)]
pub struct DeribitAdapter {
    config: DeribitConfig,
    auth: Option<PendingAuth>,
    token: Option<Token>,
    engine: EngineBucket,
    authentications: u64,
    refreshes: u64,
}

impl DeribitAdapter {
    /// An adapter with this configuration.
    #[must_use]
    pub fn new(config: DeribitConfig) -> Self {
        let engine = EngineBucket::new(config.limits.matching_engine_credits());
        Self {
            config,
            auth: None,
            token: None,
            engine,
            authentications: 0,
            refreshes: 0,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DeribitConfig {
        &self.config
    }

    /// Successful full authentications so far (one per connection with credentials).
    #[must_use]
    pub fn authentications(&self) -> u64 {
        self.authentications
    }

    /// Successful token refreshes so far.
    #[must_use]
    pub fn refreshes(&self) -> u64 {
        self.refreshes
    }

    /// When the current token expires, if there is one.
    #[must_use]
    pub fn token_expires_at(&self) -> Option<Instant> {
        self.token.as_ref().map(|t| t.expires_at)
    }

    fn full_grant(&self, credentials: &Credentials) -> Value {
        let mut params = match self.config.grant {
            Grant::ClientCredentials => credentials.client_credentials_params(),
            Grant::ClientSignature => credentials.client_signature_params(now_ms(), &nonce(), ""),
        };
        if let Some(scope) = &self.config.scope {
            params["scope"] = json!(scope);
        }
        params
    }

    /// Builds an auth request (full or refresh) with the runtime's id and remembers it as
    /// pending.
    fn auth_request(&mut self, auth: &AuthRequest) -> Option<Message> {
        let credentials = self.config.credentials.clone()?;
        let params = match (&self.token, auth.refresh) {
            (Some(token), true) => refresh_params(token.refresh.expose()),
            _ => self.full_grant(&credentials),
        };
        let refresh = auth.refresh && self.token.is_some();
        let message = request(&auth.id, "public/auth", &params);
        self.auth = Some(PendingAuth {
            id: auth.id.clone(),
            refresh,
        });
        Some(message)
    }
}

impl ConnectionHandler for DeribitAdapter {}
impl ErrorHandler for DeribitAdapter {}

impl MessageHandler for DeribitAdapter {
    /// One look per message: a notification's channel is borrowed from it, a book's sequence
    /// position read (its levels skipped), and the data of the channels with a type here
    /// ([`MarketData`]) handed to the subscription's stream [deferred](Data::deferred): it is
    /// parsed once, by the task that reads the stream, the first time it asks
    /// (`delivery.get::<MarketData>()`), so the typed value is allocated and freed on the same
    /// thread.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        match glance(message) {
            Glance::Notification(channel) => {
                let kind = ChannelKind::of(channel);
                let Some(decode) = MarketData::decoder(kind) else {
                    return MessageType::subscription(channel);
                };
                let typed = MessageType::data(channel, Data::deferred(decode));
                if kind != ChannelKind::Book {
                    return typed;
                }
                match book_position(message) {
                    Some((change_id, Some(prev))) => {
                        typed.with_sequence(Sequence::follows(change_id, prev))
                    }
                    Some((change_id, None)) => typed.with_sequence(Sequence::snapshot(change_id)),
                    // Not a book update: no sequence to check, and no value to parse.
                    None => MessageType::subscription(channel),
                }
            }
            Glance::Other(Peek::Response(id)) => MessageType::Response { id },
            Glance::Other(Peek::Heartbeat { .. }) => MessageType::Heartbeat,
            Glance::Other(_) => MessageType::Unknown,
        }
    }
}

impl AuthHandler for DeribitAdapter {
    fn generate_auth_data(
        &mut self,
        auth: &AuthRequest,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        // Anything but a refresh is a new connection, whose token (connection-scoped) is gone.
        if !auth.refresh {
            self.token = None;
            let (name, version) = &self.config.client_name;
            let hello = request(
                &ctx.next_request_id(),
                "public/hello",
                &json!({"client_name": name, "client_version": version}),
            );
            ctx.send(hello);
            if let Some(interval) = self.config.heartbeat_interval {
                let set = request(
                    &ctx.next_request_id(),
                    "public/set_heartbeat",
                    &json!({"interval": interval}),
                );
                ctx.send(set);
            }
        }
        Ok(self.auth_request(auth))
    }

    fn handle_auth_response(&mut self, response: &Message, ctx: &mut Context<'_>) -> AuthOutcome {
        let Some(pending) = &self.auth else {
            return AuthOutcome::NotAuthResponse;
        };
        if peek(response) != Peek::Response(pending.id.clone()) {
            return AuthOutcome::NotAuthResponse;
        }
        let was_refresh = pending.refresh;
        self.auth = None;
        let outcome = match Incoming::parse(response) {
            Ok(Incoming::Response(r)) => r.into_result::<AuthResult>(),
            Ok(_) => return AuthOutcome::NotAuthResponse,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(auth) => {
                let now = Instant::now();
                // Bounded: `expires_in` comes from the network (Deribit's docs show up to ten
                // years), and a fraction set by hand may be anything.
                let lifetime = Duration::from_secs(auth.expires_in.min(MAX_TOKEN_LIFETIME_SECS));
                let fraction = if self.config.refresh_after.is_finite() {
                    self.config.refresh_after.clamp(0.0, 1.0)
                } else {
                    DEFAULT_REFRESH_AFTER
                };
                self.token = Some(Token {
                    refresh: Secret::new(auth.refresh_token),
                    refresh_at: now + lifetime.mul_f64(fraction),
                    expires_at: now + lifetime,
                });
                if was_refresh {
                    self.refreshes += 1;
                    tracing::debug!(expires_in = auth.expires_in, "deribit token refreshed");
                } else {
                    self.authentications += 1;
                    tracing::debug!(expires_in = auth.expires_in, "deribit authenticated");
                }
                AuthOutcome::Authenticated
            }
            Err(e) if was_refresh => {
                // The refresh token was refused (expired, used): authenticate afresh.
                tracing::warn!(error = %e, "deribit token refresh refused; authenticating again");
                self.token = None;
                let id = ctx.next_request_id();
                match self.auth_request(&AuthRequest::new(id.clone(), false)) {
                    Some(message) => {
                        ctx.send_as(message, Operation::Auth);
                        AuthOutcome::Retrying { id }
                    }
                    None => AuthOutcome::Rejected(e.to_string()),
                }
            }
            Err(e) => AuthOutcome::Rejected(e.to_string()),
        }
    }

    fn needs_reauthentication(&self, _ctx: &Context<'_>) -> bool {
        self.auth.is_none()
            && self
                .token
                .as_ref()
                .is_some_and(|t| Instant::now() >= t.refresh_at)
    }
}

impl HeartbeatHandler for DeribitAdapter {
    fn configure(&mut self, _interval: Option<Duration>) -> Option<Duration> {
        let interval = self.config.heartbeat_interval?;
        let secs = u32::try_from(interval).unwrap_or(u32::MAX);
        Some(self.config.heartbeat_unit.saturating_mul(secs))
    }

    fn handle_heartbeat(
        &mut self,
        message: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        if peek(message) == (Peek::Heartbeat { test_request: true }) {
            let id = ctx.next_request_id();
            ctx.send(request(&id, "public/test", &json!({})));
        }
        Ok(())
    }
}

impl SubscriptionHandler for DeribitAdapter {
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        options: &Value,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let private = ChannelKind::of(&subscription.channel).is_private()
            || options.get("private").and_then(Value::as_bool) == Some(true);
        let method = if private {
            "private/subscribe"
        } else {
            "public/subscribe"
        };
        let mut params = json!({"channels": [subscription.channel]});
        if let Some(label) = options.get("label").and_then(Value::as_str) {
            params["label"] = json!(label);
        }
        Ok(request(&id, method, &params))
    }

    fn unsubscribe(
        &mut self,
        subscription: &Subscription,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let method = if ChannelKind::of(&subscription.channel).is_private() {
            "private/unsubscribe"
        } else {
            "public/unsubscribe"
        };
        Ok(Some(request(
            &id,
            method,
            &json!({"channels": [subscription.channel]}),
        )))
    }

    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let channels: Vec<String> = match Incoming::parse(response) {
            Ok(Incoming::Response(r)) => r
                .into_result()
                .map_err(|e| HandlerError::new(format!("subscribe refused: {e}")))?,
            Ok(_) => return Err(HandlerError::new("subscribe answered by a non-response")),
            Err(e) => return Err(HandlerError::new(format!("bad subscribe answer: {e}"))),
        };
        if channels.contains(&subscription.channel) {
            Ok(None)
        } else {
            Err(HandlerError::new(format!(
                "not subscribed to {}: Deribit left it out of the ack (unknown channel, or not permitted)",
                subscription.channel
            )))
        }
    }

    fn sequence(&self, subscription: &Subscription, message: &Message) -> Option<Sequence> {
        if ChannelKind::of(&subscription.channel) != ChannelKind::Book {
            return None;
        }
        Some(match book_position(message)? {
            (change_id, None) => Sequence::snapshot(change_id),
            (change_id, Some(prev)) => Sequence::follows(change_id, prev),
        })
    }

    fn on_gap(
        &mut self,
        subscription: &Subscription,
        gap: &Gap,
        _ctx: &mut Context<'_>,
    ) -> GapAction {
        if gap.got.is_none() {
            // Right after a reconnect: the restore subscribed again and brings a snapshot; the
            // consumer is told, and the gap closes at that snapshot.
            return if gap.last.is_some() {
                GapAction::AwaitSnapshot
            } else {
                GapAction::Ignore
            };
        }
        tracing::info!(channel = %subscription.channel, last = ?gap.last, got = ?gap.got,
            claimed_previous = ?gap.claimed_previous, "deribit book gap: subscribing again for a snapshot");
        GapAction::Resubscribe
    }
}

impl RateLimitHandler for DeribitAdapter {
    fn check_rate_limit(&mut self, operation: Operation) -> RateLimitDecision {
        if operation == Operation::Order {
            if let Some(wait) = self.engine.wait() {
                return RateLimitDecision::Wait(wait);
            }
        }
        RateLimitDecision::Allow
    }

    fn update_rate_limit(&mut self, operation: Operation) {
        if operation == Operation::Order {
            self.engine.take();
        }
    }

    fn is_rate_limit_response(&self, response: &Message) -> bool {
        error_code(response).is_some_and(|c| ErrorCode::from_code(c) == ErrorCode::TooManyRequests)
    }

    fn handle_rate_limited(&mut self, _response: &Message) -> RateLimitAction {
        RateLimitAction::Retry {
            after: self.config.rate_limited_retry,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use nova_core::testing::TestContext;

    use super::*;

    fn adapter() -> DeribitAdapter {
        DeribitAdapter::new(DeribitConfig::default())
    }

    fn method_of(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap();
        v["method"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_new_connection_says_hello_sets_the_heartbeat_and_authenticates_with_the_runtimes_id() {
        let mut a = DeribitAdapter::new(
            DeribitConfig::default()
                .credentials(Credentials::new("id", "secret"))
                .grant(Grant::ClientCredentials),
        );
        let mut t = TestContext::new();
        let request = AuthRequest::new(RequestId::Num(700), false);
        let auth = t
            .run(|ctx| a.generate_auth_data(&request, ctx))
            .unwrap()
            .unwrap();
        let queued: Vec<String> = t.sent_texts().iter().map(|m| method_of(m)).collect();
        assert_eq!(queued, ["public/hello", "public/set_heartbeat"]);
        let auth: Value = auth.json().unwrap();
        assert_eq!(
            (auth["id"].as_u64(), auth["method"].as_str()),
            (Some(700), Some("public/auth"))
        );
        assert!(
            !t.sent_texts().concat().contains("secret"),
            "credentials only in the auth"
        );

        // Another response is not the verdict; the answer to id 700 is.
        let other = Message::text(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#);
        assert_eq!(
            t.run(|ctx| a.handle_auth_response(&other, ctx)),
            AuthOutcome::NotAuthResponse
        );
        let ok = Message::text(
            r#"{"jsonrpc":"2.0","id":700,"result":{"access_token":"a","refresh_token":"r","expires_in":900,"scope":"connection","token_type":"bearer"}}"#,
        );
        assert_eq!(
            t.run(|ctx| a.handle_auth_response(&ok, ctx)),
            AuthOutcome::Authenticated
        );
        assert!(a.token_expires_at().is_some());
    }

    #[test]
    fn a_test_request_is_answered_with_public_test_and_a_plain_heartbeat_is_not() {
        let mut a = adapter();
        let mut t = TestContext::new();
        let test_request = Message::text(
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
        );
        t.run(|ctx| a.handle_heartbeat(&test_request, ctx)).unwrap();
        let plain = Message::text(
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#,
        );
        t.run(|ctx| a.handle_heartbeat(&plain, ctx)).unwrap();
        let answers: Vec<String> = t.sent_texts().iter().map(|m| method_of(m)).collect();
        assert_eq!(answers, ["public/test"]);
    }

    #[test]
    fn a_book_break_resubscribes_and_a_reconnect_awaits_the_restores_snapshot() {
        let mut a = adapter();
        let mut t = TestContext::new();
        let book = Subscription::new("sub-1", "book.BTC-PERPETUAL.100ms");
        let broken = Gap::in_stream(Some(10), 13, Some(12));
        assert_eq!(
            t.run(|ctx| a.on_gap(&book, &broken, ctx)),
            GapAction::Resubscribe
        );
        let restored = Gap::after_reconnect(Some(10));
        assert_eq!(
            t.run(|ctx| a.on_gap(&book, &restored, ctx)),
            GapAction::AwaitSnapshot
        );
        let nothing_yet = Gap::after_reconnect(None);
        assert_eq!(
            t.run(|ctx| a.on_gap(&book, &nothing_yet, ctx)),
            GapAction::Ignore
        );
    }

    #[test]
    fn classifies_messages() {
        let mut a = adapter();
        let reply = Message::text(r#"{"jsonrpc":"2.0","id":9,"result":"ok"}"#);
        assert!(matches!(
            a.message_type(&reply),
            MessageType::Response {
                id: RequestId::Num(9)
            }
        ));
        let hb = Message::text(
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
        );
        assert!(matches!(a.message_type(&hb), MessageType::Heartbeat));
        let note = Message::text(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw","data":[]}}"#,
        );
        match a.message_type(&note) {
            MessageType::Subscription {
                route,
                data: Some(data),
                ..
            } => {
                assert_eq!(route, "trades.BTC-PERPETUAL.raw");
                // Deferred: parsed when the delivery is read.
                assert!(data.is_deferred());
                let delivery = nova_core::Delivery::new(note.clone(), Some(data));
                assert_eq!(
                    delivery.get::<MarketData>(),
                    Some(&MarketData::Trades(vec![]))
                );
            }
            other => panic!("{other:?}"),
        }
        // Another layout (fields reordered): the envelope is parsed, the channel still borrowed.
        let reordered = Message::text(
            r#"{"params":{"data":{"index_name":"btc_usd","price":1.5,"timestamp":2},"channel":"deribit_price_index.btc_usd"},"method":"subscription","jsonrpc":"2.0"}"#,
        );
        assert!(matches!(
            a.message_type(&reordered),
            MessageType::Subscription {
                route: "deribit_price_index.btc_usd",
                data: Some(_),
                ..
            }
        ));
        // Data that does not fit its type is still routed; the delivery has no value.
        let odd = Message::text(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.X.raw","data":"?"}}"#,
        );
        match a.message_type(&odd) {
            MessageType::Subscription {
                route: "ticker.X.raw",
                data,
                ..
            } => {
                let delivery = nova_core::Delivery::new(odd.clone(), data);
                assert!(delivery.get::<MarketData>().is_none());
                assert_eq!(delivery.message(), &odd);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            a.message_type(&Message::text("[]")),
            MessageType::Unknown
        ));
    }

    #[test]
    fn books_are_sequenced() {
        let a = adapter();
        let sub = Subscription::new("s", "book.BTC-PERPETUAL.100ms");
        let snap = Message::text(
            r#"{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"snapshot","change_id":5,"bids":[],"asks":[]}}}"#,
        );
        assert_eq!(a.sequence(&sub, &snap), Some(Sequence::snapshot(5)));
        let change = Message::text(
            r#"{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","change_id":7,"prev_change_id":5,"bids":[],"asks":[]}}}"#,
        );
        assert_eq!(a.sequence(&sub, &change), Some(Sequence::follows(7, 5)));
        let ticker = Subscription::new("t", "ticker.BTC-PERPETUAL.100ms");
        assert_eq!(a.sequence(&ticker, &change), None);
    }

    #[test]
    fn recognises_10028() {
        let a = adapter();
        let limited = Message::text(
            r#"{"jsonrpc":"2.0","id":42,"error":{"code":10028,"message":"too_many_requests"}}"#,
        );
        assert!(a.is_rate_limit_response(&limited));
        let other = Message::text(
            r#"{"jsonrpc":"2.0","id":42,"error":{"code":13009,"message":"unauthorized"}}"#,
        );
        assert!(!a.is_rate_limit_response(&other));
    }

    #[test]
    fn heartbeat_interval_follows_the_unit() {
        let mut a = DeribitAdapter::new(
            DeribitConfig::default()
                .heartbeat(Some(10))
                .heartbeat_unit(Duration::from_millis(100)),
        );
        assert_eq!(a.configure(None), Some(Duration::from_secs(1)));
        let mut off = DeribitAdapter::new(DeribitConfig::default().heartbeat(None));
        assert_eq!(off.configure(Some(Duration::from_secs(5))), None);
    }
}
