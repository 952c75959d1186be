//! The Socket Mode adapter: the nova-core behaviours for Slack, and the application's side of
//! it ([`SlackApp`]).
//!
//! On the runtime's hooks:
//! - every connection's URL comes from `apps.connections.open` (an
//!   [`EndpointSource`](nova_core::EndpointSource) over [`SocketModeApi`]): a ticket is used once,
//!   a refused token stops the client, a 429 waits its `Retry-After`;
//! - `hello` is the server greeting that opens the connection for sends
//!   ([`AuthHandler::authenticates_on_connect`] is `false`; no credentials follow, the ticket was
//!   the credential); no `hello` within the greeting timeout gives the connection up;
//! - `disconnect` with `warning` or `refresh_requested` asks for a make-before-break handover
//!   ([`Context::request_handover`]); `link_disabled` stops the client
//!   ([`Context::request_stop`]);
//! - every envelope is acknowledged right after [`SlackApp::on_envelope`] returns, with the
//!   response payload it gives (slash commands, interactive); a redelivery of an envelope or
//!   event already handled (on this connection or another, before or after a handover) is
//!   acknowledged and not handed to the application again ([`DedupWindow`]); a callback that
//!   fails leaves the envelope unacknowledged, so Slack sends it again and it is handled then.
//!
//! Every envelope handed to the application is also delivered to the client's
//! [`Messages`](nova_core::Messages), exactly as received, unless turned off
//! ([`SlackOptions::deliver`]).

use std::time::Duration;

use nova_core::{
    AuthHandler, Client, ClientConfig, ConnectInfo, ConnectionHandler, Context, EndpointError,
    EndpointRequest, ErrorHandler, HandlerError, HeartbeatHandler, Message, MessageHandler,
    Messages, Operation, RateLimitHandler, SubscriptionHandler,
};

use crate::Ack;
use crate::dedup::DedupWindow;
use crate::envelope::{DisconnectAction, Envelope, Hello, Inbound};
use crate::open::{OpenError, SocketModeApi};

/// The application's side: what to do with an envelope before it is acknowledged.
///
/// ```
/// use nova_core::HandlerError;
/// use nova_slack::{Ack, Envelope, EnvelopeType, SlackApp};
///
/// /// Answers every slash command with its own text, acknowledges the rest plainly.
/// struct Echo;
///
/// impl SlackApp for Echo {
///     fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
///         if envelope.kind == EnvelopeType::SlashCommands {
///             #[derive(serde::Deserialize)]
///             struct Command { text: String }
///             let command: Command = envelope.payload_as().map_err(|e| HandlerError::new(e.to_string()))?;
///             return Ok(envelope.ack().with_text(&format!("you said: {}", command.text)));
///         }
///         Ok(envelope.ack())
///     }
/// }
/// ```
pub trait SlackApp: Send + 'static {
    /// Called once for each envelope (never again for a redelivery of one already handled);
    /// the [`Ack`] returned is sent at once (Slack wants it within 3 s: keep this quick, and
    /// hand longer work to a task). The default acknowledges without a payload.
    ///
    /// # Errors
    /// The envelope is left unacknowledged: Slack delivers it again, and it is handed to this
    /// callback again then. The error goes to the client's error policy.
    fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
        Ok(envelope.ack())
    }

    /// Called on every `hello`: a connection is ready (`num_connections`, `debug_info`).
    fn on_hello(&mut self, hello: &Hello) {
        let _ = hello;
    }
}

/// An app that only acknowledges: the envelopes are read from the client's `Messages`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AckOnly;

impl SlackApp for AckOnly {}

/// Options of the adapter.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SlackOptions {
    /// Deliver each handled envelope's text to the client's `Messages` (default `true`).
    pub deliver: bool,
    /// How many envelope ids and event ids the de-duplication window keeps (default 4096 each).
    pub dedup_capacity: usize,
}

impl Default for SlackOptions {
    fn default() -> Self {
        Self {
            deliver: true,
            dedup_capacity: 4096,
        }
    }
}

impl SlackOptions {
    /// Whether handled envelopes go to `Messages` too.
    #[must_use]
    pub fn with_deliver(mut self, deliver: bool) -> Self {
        self.deliver = deliver;
        self
    }

    /// The de-duplication window's size.
    #[must_use]
    pub fn with_dedup_capacity(mut self, capacity: usize) -> Self {
        self.dedup_capacity = capacity;
        self
    }
}

/// What the adapter has seen, for logs, tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlackStats {
    /// `hello` messages.
    pub hellos: u64,
    /// Envelopes handed to the application.
    pub handled: u64,
    /// Redeliveries acknowledged without handing them over again.
    pub duplicates: u64,
    /// Acks queued.
    pub acks: u64,
    /// Envelopes the application's callback failed on (left unacknowledged).
    pub failed: u64,
    /// `disconnect` messages.
    pub disconnects: u64,
}

/// The Socket Mode handler: the seven behaviours, with a [`SlackApp`] inside.
pub struct Slack<A> {
    app: A,
    options: SlackOptions,
    dedup: DedupWindow,
    stats: SlackStats,
    stats_out: Option<std::sync::Arc<std::sync::Mutex<SlackStats>>>,
}

impl<A: SlackApp> Slack<A> {
    /// A handler around `app`.
    pub fn new(app: A, options: SlackOptions) -> Self {
        let dedup = DedupWindow::new(options.dedup_capacity);
        Self {
            app,
            options,
            dedup,
            stats: SlackStats::default(),
            stats_out: None,
        }
    }

    /// Publishes the counts to `shared` after every message (for an application that wants to
    /// watch them from outside the connection task).
    #[must_use]
    pub fn with_stats(mut self, shared: std::sync::Arc<std::sync::Mutex<SlackStats>>) -> Self {
        self.stats_out = Some(shared);
        self
    }

    /// What the adapter has seen so far.
    #[must_use]
    pub fn stats(&self) -> SlackStats {
        self.stats
    }

    fn publish_stats(&self) {
        if let Some(out) = &self.stats_out {
            let mut guard = out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *guard = self.stats;
        }
    }

    fn on_envelope(
        &mut self,
        envelope: &Envelope,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        if !self.dedup.observe(envelope).is_new() {
            // Handled before (Slack did not see the ack in time, or sent it to two
            // connections): acknowledged again, not handed over again.
            self.stats.duplicates += 1;
            metrics::counter!("nova_slack_duplicates_total").increment(1);
            tracing::debug!(
                envelope_id = %envelope.envelope_id,
                retry_attempt = envelope.retry_attempt,
                "redelivery of a handled envelope: acknowledged, not handled again"
            );
            self.ack(&envelope.ack(), ctx);
            return Ok(());
        }
        match self.app.on_envelope(envelope) {
            Ok(ack) => {
                self.ack(&ack, ctx);
                self.stats.handled += 1;
                metrics::counter!("nova_slack_envelopes_total", "type" => envelope.kind.as_str().to_owned())
                    .increment(1);
                if self.options.deliver {
                    ctx.deliver(message);
                }
                Ok(())
            }
            Err(e) => {
                // Not acknowledged: Slack redelivers, and the redelivery is handled.
                self.dedup.forget(envelope);
                self.stats.failed += 1;
                Err(HandlerError::new(format!(
                    "envelope {} left unacknowledged: {e}",
                    envelope.envelope_id
                )))
            }
        }
    }

    fn ack(&mut self, ack: &Ack, ctx: &mut Context<'_>) {
        self.stats.acks += 1;
        ctx.send_as(ack.to_json(), Operation::Other);
    }
}

impl<A: SlackApp> ConnectionHandler for Slack<A> {
    fn handle_connect(
        &mut self,
        info: &ConnectInfo,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        tracing::debug!(
            connection_index = info.connection_index,
            purpose = info.purpose.as_str(),
            "socket mode connection open; waiting for hello"
        );
        Ok(())
    }
}

impl<A: SlackApp> MessageHandler for Slack<A> {
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let Some(text) = message.as_text() else {
            return Err(HandlerError::new("a binary frame: Socket Mode sends text"));
        };
        let inbound = Inbound::parse(text).map_err(|e| HandlerError::new(format!("{e}")))?;
        let result = match inbound {
            Inbound::Hello(hello) => {
                self.stats.hellos += 1;
                tracing::info!(
                    num_connections = hello.num_connections,
                    host = hello.debug_info.host.as_deref().unwrap_or(""),
                    approximate_connection_time_s = hello
                        .debug_info
                        .approximate_connection_time
                        .map(|d| d.as_secs()),
                    "hello: the connection is ready"
                );
                if let Some(n) = hello.num_connections {
                    metrics::gauge!("nova_slack_connections").set(f64::from(n));
                }
                self.app.on_hello(&hello);
                ctx.begin_authentication();
                Ok(())
            }
            Inbound::Disconnect(disconnect) => {
                self.stats.disconnects += 1;
                let reason = disconnect.reason.as_str().to_owned();
                tracing::info!(%reason, "disconnect announced");
                match disconnect.reason.action() {
                    DisconnectAction::Stop => {
                        ctx.request_stop(format!("slack: {reason}"));
                    }
                    DisconnectAction::Backoff => {
                        ctx.request_reconnect(format!("slack: {reason}"));
                    }
                    _ => ctx.request_handover(format!("slack: {reason}")),
                }
                Ok(())
            }
            Inbound::Envelope(envelope) => self.on_envelope(&envelope, message, ctx),
            Inbound::Other { kind } => {
                tracing::debug!(%kind, "a message of a type this adapter does not know");
                Ok(())
            }
        };
        self.publish_stats();
        result
    }
}

impl<A: SlackApp> AuthHandler for Slack<A> {
    /// The ticket in the URL is the credential; `hello` is the greeting that opens the
    /// connection.
    fn authenticates_on_connect(&self) -> bool {
        false
    }
}

impl<A: SlackApp> SubscriptionHandler for Slack<A> {}
impl<A: SlackApp> ErrorHandler for Slack<A> {}
impl<A: SlackApp> HeartbeatHandler for Slack<A> {}
impl<A: SlackApp> RateLimitHandler for Slack<A> {}

/// `apps.connections.open` as the runtime's endpoint source: one fresh ticket URL per attempt.
fn endpoint_of(api: SocketModeApi) -> impl nova_core::EndpointSource {
    let api = std::sync::Arc::new(api);
    move |_request: EndpointRequest| {
        let api = api.clone();
        async move {
            api.open_connection()
                .await
                .map(String::from)
                .map_err(|e| endpoint_error(&e))
        }
    }
}

fn endpoint_error(e: &OpenError) -> EndpointError {
    if e.is_fatal() {
        EndpointError::fatal(e.to_string())
    } else if let Some(after) = e.retry_after() {
        EndpointError::retry_after(after, e.to_string())
    } else {
        EndpointError::retry(e.to_string())
    }
}

/// The client configuration for Socket Mode, to adjust before [`connect`]: the endpoint source
/// over `api`, WebSocket pings every 10 s (Slack pings too), a 10 s greeting deadline and a 10 s
/// drain after a handover (Slack closes the old connection about 10 s after its `warning`).
pub fn config(api: SocketModeApi) -> nova_core::ClientConfigBuilder {
    ClientConfig::builder("wss://wss-primary.slack.com/link/")
        .name("slack")
        .endpoint_source(endpoint_of(api))
        .heartbeat_interval(Some(Duration::from_secs(10)))
        .greeting_timeout(Duration::from_secs(10))
        .handover_drain(Duration::from_secs(10))
}

/// Connects a Socket Mode client: `config` from [`config`] (adjusted or not), `app` for the
/// envelopes.
#[must_use]
pub fn connect<A: SlackApp>(
    config: ClientConfig,
    app: A,
    options: SlackOptions,
) -> (Client, Messages) {
    Client::connect(config, Slack::new(app, options))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use nova_core::testing::TestContext;

    use super::*;

    const EVENT: &str = r#"{"envelope_id":"e1","payload":{"event_id":"Ev1","event":{"type":"app_mention"}},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}"#;
    const EVENT_RETRY: &str = r#"{"envelope_id":"e1","payload":{"event_id":"Ev1","event":{"type":"app_mention"}},"type":"events_api","accepts_response_payload":false,"retry_attempt":1,"retry_reason":"timeout"}"#;
    const COMMAND: &str = r#"{"envelope_id":"c1","payload":{"command":"/hello","text":"hi"},"type":"slash_commands","accepts_response_payload":true}"#;

    struct Replies;

    impl SlackApp for Replies {
        fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
            if envelope.accepts_response_payload {
                return Ok(envelope.ack().with_text("hello back"));
            }
            if envelope.envelope_id == "fail" {
                return Err(HandlerError::new("the database is down"));
            }
            Ok(envelope.ack())
        }
    }

    fn handle(
        slack: &mut Slack<Replies>,
        ctx: &mut TestContext,
        text: &str,
    ) -> Result<(), HandlerError> {
        ctx.run(|c| slack.handle_message(Message::text(text), c))
    }

    #[test]
    fn hello_opens_the_connection() {
        let mut slack = Slack::new(Replies, SlackOptions::default());
        let mut ctx = TestContext::new();
        handle(&mut slack, &mut ctx, r#"{"type":"hello","num_connections":1,"debug_info":{"host":"h"},"connection_info":{"app_id":"A1"}}"#).unwrap();
        assert!(ctx.authentication_begun());
        assert!(!slack.authenticates_on_connect());
    }

    #[test]
    fn an_envelope_is_acked_after_the_callback_and_a_redelivery_only_acked() {
        let mut slack = Slack::new(Replies, SlackOptions::default());
        let mut ctx = TestContext::new();
        handle(&mut slack, &mut ctx, EVENT).unwrap();
        assert_eq!(ctx.sent_texts(), [r#"{"envelope_id":"e1"}"#]);
        assert_eq!(ctx.take_delivered().len(), 1);
        ctx.take_sent();
        handle(&mut slack, &mut ctx, EVENT_RETRY).unwrap();
        assert_eq!(ctx.sent_texts(), [r#"{"envelope_id":"e1"}"#], "acked again");
        assert!(ctx.take_delivered().is_empty(), "not handed over again");
        assert_eq!(slack.stats().duplicates, 1);
    }

    #[test]
    fn a_slash_command_is_answered_in_its_ack() {
        let mut slack = Slack::new(Replies, SlackOptions::default());
        let mut ctx = TestContext::new();
        handle(&mut slack, &mut ctx, COMMAND).unwrap();
        assert_eq!(
            ctx.sent_texts(),
            [r#"{"envelope_id":"c1","payload":{"text":"hello back"}}"#]
        );
    }

    #[test]
    fn a_failed_callback_leaves_the_envelope_for_its_redelivery() {
        let mut slack = Slack::new(Replies, SlackOptions::default());
        let mut ctx = TestContext::new();
        let failing = EVENT.replace("\"e1\"", "\"fail\"").replace("Ev1", "Ev9");
        assert!(handle(&mut slack, &mut ctx, &failing).is_err());
        assert!(
            ctx.sent_texts().is_empty(),
            "no ack: Slack will send it again"
        );
        assert_eq!(slack.stats().failed, 1);
        // The redelivery is handled (it fails again here, so it is again not acked).
        assert!(handle(&mut slack, &mut ctx, &failing).is_err());
        assert_eq!(slack.stats().duplicates, 0);
    }

    #[test]
    fn disconnects_ask_for_a_handover_or_a_stop() {
        let mut slack = Slack::new(Replies, SlackOptions::default());
        let mut ctx = TestContext::new();
        for reason in ["warning", "refresh_requested"] {
            let mut ctx = TestContext::new();
            let text = format!(
                r#"{{"type":"disconnect","reason":"{reason}","debug_info":{{"host":"h"}}}}"#
            );
            handle(&mut slack, &mut ctx, &text).unwrap();
            assert_eq!(
                ctx.handover_requested(),
                Some(format!("slack: {reason}").as_str())
            );
        }
        handle(
            &mut slack,
            &mut ctx,
            r#"{"type":"disconnect","reason":"link_disabled"}"#,
        )
        .unwrap();
        assert_eq!(ctx.stop_requested(), Some("slack: link_disabled"));
    }

    #[test]
    fn bad_input_is_an_error_and_nothing_is_sent() {
        let mut slack = Slack::new(Replies, SlackOptions::default());
        let mut ctx = TestContext::new();
        for bad in [
            "",
            "{",
            "[1,2]",
            r#"{"envelope_id":"x","type":"events_api"}"#,
        ] {
            assert!(handle(&mut slack, &mut ctx, bad).is_err(), "{bad:?}");
        }
        assert!(ctx.sent_texts().is_empty());
        assert!(ctx.take_delivered().is_empty());
    }

    #[test]
    fn endpoint_errors_keep_their_meaning() {
        assert!(endpoint_error(&OpenError::InvalidAuth).is_fatal());
        let limited = endpoint_error(&OpenError::RateLimited {
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(limited.wait(), Some(Duration::from_secs(7)));
        let other = endpoint_error(&OpenError::Status { status: 503 });
        assert!(!other.is_fatal() && other.wait().is_none());
    }
}
