//! The Discord adapter: nova-core's handler traits over the crate's protocol pieces.
//!
//! One [`Discord`] drives one shard's connection; the runtime owns the socket, timers and
//! reconnects, and this decides (sans-IO):
//!
//! - **Where to connect** (`connect_url`): the gateway URL for an Identify, `resume_gateway_url`
//!   for a Resume, with `?v=10&encoding=json[&compress=zlib-stream]`.
//! - **Frames** (`handle_frame`): with compression, binary frames go through one
//!   [`ZlibStreamInflater`] per connection (reset in `handle_connect`) and become text; a corrupt
//!   stream closes with 4000 and resumes.
//! - **Hello → auth**: authentication is not started at connect
//!   (`authenticates_on_connect` is false). A Hello must come within
//!   [`hello_timeout`](DiscordConfig::hello_timeout) of the socket opening (10 s by default),
//!   else the connection is given up with [`RESUME_CLOSE_CODE`] (the session stays resumable)
//!   and the next one is tried after the runtime's backoff; the bound rides on the same
//!   handler-owned timer as the heartbeats. Hello starts the heartbeat schedule and then
//!   `begin_authentication`: a Resume when the session can be resumed, else an Identify once
//!   the shared [`IdentifyLimiter`] grants its bucket (a busy bucket is waited for on the
//!   heartbeat timer; a spent daily budget stops the client). READY or RESUMED is the verdict;
//!   the replayed dispatches before RESUMED go to the application in order.
//! - **Heartbeats** on the runtime's handler-owned schedule (`next_heartbeat` /
//!   `heartbeat_due`), with the [`Heartbeat`] machine's jitter and zombie detection; a zombie
//!   closes with [`RESUME_CLOSE_CODE`] and resumes. A server request (op 1) is answered at once.
//! - **The send limit** (`RateLimitHandler`): every payload written on the connection is
//!   counted in a [`SendLimiter`] (120 per 60 s by default); the application's sends are held
//!   back once the window holds the limit minus a reserve for what the adapter must send
//!   (heartbeats, Identify/Resume, answers to op 1), which the runtime never holds back.
//! - **Telemetry** ([`crate::telemetry`]): `session_start_limit.remaining` after each Identify
//!   attempt, heartbeat ACK latency, READY/RESUMED verdicts and the connections the adapter gave
//!   up, as `nova_discord_*` metrics (handles resolved in `init`) and `tracing` events.
//! - **Every end of a connection** (`handle_disconnect`) goes through
//!   [`GatewaySession::next_connect`] and so through [`close_action`](crate::close_action):
//!   resume, identify again (after 1–5 s on op 9 `d:false`), or stop for good (4004, 4010–4014).
//!
//! # Messages: one parse, typed data on a route
//!
//! `message_type` reads every payload once. A dispatch (op 0) is kept in the session (its `s`,
//! READY's `session_id` and `resume_gateway_url`) right there, and classified as
//! [`MessageType::Subscription`] on the route of its name `t` (`"MESSAGE_CREATE"`), with the
//! typed [`Dispatch`] as its [`Data`]: a subscription stream on that route (where the runtime has
//! one) yields [`Delivery`](nova_core::Delivery)s whose `get::<Dispatch>()` is that value, next
//! to the text received. A dispatch no subscription takes goes to `handle_message`, which hands
//! the text as received to the application's `Messages` without parsing it again (what the
//! adapter read in `message_type` is kept for the callback that follows); the application can
//! read it with [`Dispatch::from_message`]. A known dispatch whose `d` does not decode is still
//! counted and routed, without data. op 1 from the server is a heartbeat; the other ops
//! (Hello, ACK, 7, 9) go to `handle_message`, read once too. Today nova's runtime opens
//! subscription streams only with a subscribe request on the wire, which the gateway does not
//! have, so applications read `Messages` (see the crate README).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ClientConfig, ConnectInfo, ConnectionHandler, Context,
    Data, DisconnectReason, ErrorHandler, Frame, FrameAction, HandlerError, HeartbeatHandler,
    Message, MessageHandler, MessageType, Operation, RateLimitDecision, RateLimitHandler,
    ReconnectDecision, Secret, SubscriptionHandler,
};

use crate::close::RESUME_CLOSE_CODE;
use crate::command::{ConnectionProperties, Identify, Intents, Resume, ShardId, heartbeat};
use crate::error::DecodeError;
use crate::event::Event;
use crate::heartbeat::{Heartbeat, HeartbeatAction};
use crate::inflate::{DEFAULT_MAX_MESSAGE, ZlibStreamInflater};
use crate::limiter::{Acquire, IdentifyLimiter};
use crate::payload::{GatewayEvent, RawPayload};
use crate::send_limit::{SEND_LIMIT, SEND_WINDOW, SendLimiter};
use crate::session::{ConnectParams, Disconnect, GatewaySession, NextConnect};
use crate::telemetry::{GaveUp, Metrics};

/// How long a new connection waits for Hello by default before it is given up.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How one shard connects.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DiscordConfig {
    /// The bot token (never in `Debug` or logs).
    pub token: Secret,
    /// The gateway URL from discovery (`wss://gateway.discord.gg/`), without query.
    pub gateway_url: String,
    /// The intents identified with.
    pub intents: Intents,
    /// `[shard_id, num_shards]`; `None` sends no `shard`.
    pub shard: Option<ShardId>,
    /// Transport compression (`compress=zlib-stream`), off by default.
    pub compress: bool,
    /// The identify budget shared by the shards of this process; `None`: no pacing.
    pub limiter: Option<Arc<IdentifyLimiter>>,
    /// `properties` of Identify.
    pub properties: ConnectionProperties,
    /// How long after the socket opens Hello (op 10) must arrive; without it the connection is
    /// closed with [`RESUME_CLOSE_CODE`] and tried again. Default [`DEFAULT_HELLO_TIMEOUT`].
    pub hello_timeout: Duration,
    /// Payloads allowed per [`send_window`](Self::send_window) on one connection. Default
    /// [`SEND_LIMIT`] (120).
    pub send_limit: u32,
    /// Default [`SEND_WINDOW`] (60 s).
    pub send_window: Duration,
}

impl DiscordConfig {
    /// A shard of one, plain JSON, no limiter.
    #[must_use]
    pub fn new(token: Secret, gateway_url: impl Into<String>, intents: Intents) -> Self {
        Self {
            token,
            gateway_url: gateway_url.into(),
            intents,
            shard: None,
            compress: false,
            limiter: None,
            properties: ConnectionProperties::default(),
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            send_limit: SEND_LIMIT,
            send_window: SEND_WINDOW,
        }
    }

    /// Sets [`send_limit`](Self::send_limit) and [`send_window`](Self::send_window) (Discord's
    /// are the defaults; a gateway of your own, or a test, may differ).
    #[must_use]
    pub fn with_send_limit(mut self, limit: u32, window: Duration) -> Self {
        self.send_limit = limit;
        self.send_window = window;
        self
    }

    /// Sets [`hello_timeout`](Self::hello_timeout).
    #[must_use]
    pub fn with_hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// Identifies as this shard.
    #[must_use]
    pub fn with_shard(mut self, shard: ShardId) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Transport compression on or off.
    #[must_use]
    pub fn with_compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Paces Identify through `limiter` (share one between the shards of a process).
    #[must_use]
    pub fn with_limiter(mut self, limiter: Arc<IdentifyLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The URL of the first connect (for `ClientConfig::builder`).
    #[must_use]
    pub fn connect_url(&self) -> String {
        ConnectParams::default()
            .with_zlib_stream(self.compress)
            .url(&self.gateway_url)
    }
}

/// A dispatch read into its parts: the [`Data`] of a dispatch's message, or read by the
/// application from the text with [`from_message`](Self::from_message).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Dispatch {
    /// `s`.
    pub seq: Option<u64>,
    /// The typed event (unknown dispatches kept raw in [`Event::Unknown`]).
    pub event: Event,
}

impl Dispatch {
    /// Reads a delivered message. `None` for anything but a dispatch.
    ///
    /// # Errors
    /// When the message is not a gateway payload, or a known dispatch does not decode.
    ///
    /// ```
    /// use nova_core::Message;
    /// use nova_discord::{Dispatch, Event};
    ///
    /// let m = Message::text(r#"{"op":0,"s":7,"t":"RESUMED","d":{}}"#);
    /// let d = Dispatch::from_message(&m)?.expect("a dispatch");
    /// assert_eq!(d.seq, Some(7));
    /// assert!(matches!(d.event, Event::Resumed));
    /// # Ok::<(), nova_discord::DecodeError>(())
    /// ```
    pub fn from_message(message: &Message) -> Result<Option<Self>, DecodeError> {
        let text = std::str::from_utf8(message.as_bytes()).unwrap_or_default();
        match GatewayEvent::parse(text)? {
            GatewayEvent::Dispatch { seq, event } => Ok(Some(Self { seq, event })),
            _ => Ok(None),
        }
    }
}

/// What `message_type` read from a payload, for the callback that follows.
enum Parsed {
    /// A dispatch (already kept in the session), typed.
    Dispatch(Data),
    /// A known dispatch whose `d` did not decode (its `s` already counted).
    Undecoded,
    /// Any other op.
    Control(GatewayEvent),
}

/// The last payload `message_type` read: the message (held, so its buffer is not reused and
/// identity by address is exact) and what it was.
struct Read {
    message: Message,
    parsed: Parsed,
}

impl Read {
    fn is(&self, message: &Message) -> bool {
        let (a, b) = (self.message.as_bytes(), message.as_bytes());
        std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
    }
}

/// One shard's handler (see the module docs).
pub struct Discord {
    config: DiscordConfig,
    session: GatewaySession,
    /// Where the next connect goes (set by `handle_disconnect`).
    next_url: Option<String>,
    /// Whether this connection resumes (else it identifies).
    resuming: bool,
    inflater: Option<ZlibStreamInflater>,
    heartbeat: Option<Heartbeat>,
    /// Until when this connection waits for Hello (`None` once it came).
    hello_deadline: Option<Instant>,
    /// This connection's writes, against the gateway's send limit.
    send_limit: SendLimiter,
    /// An Identify waiting for its bucket.
    identify_at: Option<Instant>,
    /// Why this side gave the connection up (op 7, op 9, zombie), for `handle_disconnect`.
    cause: Option<Disconnect>,
    /// Set when the client must stop whatever the close says.
    fatal: Option<String>,
    /// What `message_type` read, until the callback that follows takes it.
    last_read: Option<Read>,
    /// Metric handles, resolved in `init` (with the client's name).
    metrics: Option<Metrics>,
    /// Payloads parsed (tests check that each is parsed once).
    #[cfg(test)]
    parses: usize,
    rng: u64,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("shard", &self.config.shard)
            .field("compress", &self.config.compress)
            .field("seq", &self.session.seq())
            .field("resuming", &self.resuming)
            .finish_non_exhaustive()
    }
}

impl Discord {
    /// A handler for one shard.
    #[must_use]
    pub fn new(config: DiscordConfig) -> Self {
        let params = ConnectParams::default().with_zlib_stream(config.compress);
        let session = GatewaySession::new(config.gateway_url.clone(), params);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
        Self {
            session,
            next_url: None,
            resuming: false,
            inflater: None,
            heartbeat: None,
            hello_deadline: None,
            send_limit: SendLimiter::new(config.send_limit, config.send_window),
            identify_at: None,
            cause: None,
            fatal: None,
            last_read: None,
            metrics: None,
            #[cfg(test)]
            parses: 0,
            rng: seed | 1,
            config,
        }
    }

    /// The session as last known (`session_id`, `resume_gateway_url`, last `s`).
    #[must_use]
    pub fn session(&self) -> &GatewaySession {
        &self.session
    }

    /// A value in `[0, 1)` (xorshift; jitter needs no cryptographic quality).
    fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shard_id(&self) -> u32 {
        self.config.shard.map_or(0, ShardId::id)
    }

    /// Starts Identify when the bucket allows, Resume at once.
    fn try_begin_auth(&mut self, now: Instant, ctx: &mut Context<'_>) {
        self.identify_at = None;
        if self.resuming {
            ctx.begin_authentication();
            return;
        }
        let Some(limiter) = self.config.limiter.clone() else {
            ctx.begin_authentication();
            return;
        };
        let shard = self.shard_id();
        let acquired = limiter.poll_acquire(shard, now);
        if !matches!(acquired, Acquire::WaitUntil(_)) {
            let report = limiter.report(now);
            tracing::info!(
                shard,
                remaining = report.remaining,
                total = report.total,
                granted = matches!(acquired, Acquire::Granted),
                "session_start_limit after an Identify attempt"
            );
            if let Some(m) = &self.metrics {
                m.session_start(&report);
            }
        }
        match acquired {
            Acquire::Granted => ctx.begin_authentication(),
            Acquire::WaitUntil(at) => {
                tracing::debug!(shard, "identify bucket busy; waiting");
                self.identify_at = Some(at);
            }
            Acquire::Exhausted { .. } => {
                self.fatal = Some("the daily session_start_limit is spent".to_owned());
                if let Some(m) = &self.metrics {
                    m.gave_up(GaveUp::IdentifyBudget);
                }
                ctx.request_reconnect_with_close(RESUME_CLOSE_CODE, "identify budget spent");
            }
        }
    }

    /// Gives the connection up for `cause`, closing with a code that keeps the session.
    fn give_up(&mut self, cause: Disconnect, label: GaveUp, why: &str, ctx: &mut Context<'_>) {
        if let Some(m) = &self.metrics {
            m.gave_up(label);
        }
        self.cause = Some(cause);
        self.heartbeat = None;
        self.hello_deadline = None;
        self.identify_at = None;
        ctx.request_reconnect_with_close(RESUME_CLOSE_CODE, why);
    }

    /// A socket opened at `now`: fresh per-connection state, and the wait for Hello begins.
    fn on_connect(&mut self, now: Instant, connection_index: u64) {
        self.inflater = self
            .config
            .compress
            .then(|| ZlibStreamInflater::new(DEFAULT_MAX_MESSAGE));
        self.heartbeat = None;
        self.hello_deadline = Some(now + self.config.hello_timeout);
        self.send_limit.reset();
        self.last_read = None;
        self.identify_at = None;
        self.cause = None;
        tracing::debug!(
            shard = self.shard_id(),
            resuming = self.resuming,
            connection_index,
            "gateway connected"
        );
    }

    fn send_heartbeat(&self, ctx: &mut Context<'_>) {
        ctx.send_as(heartbeat(self.session.seq()), Operation::Heartbeat);
    }

    /// Keeps what a dispatch says about the session.
    fn observe_dispatch(&mut self, seq: Option<u64>, event: &Event) {
        self.session.observe_seq(seq);
        if let Event::Ready(ready) = event {
            self.session.on_ready(ready);
        }
    }

    /// Reads a payload's envelope (the only place that does).
    fn envelope<'t>(&mut self, text: &'t str) -> Result<RawPayload<'t>, DecodeError> {
        #[cfg(test)]
        {
            self.parses += 1;
        }
        RawPayload::parse(text)
    }

    /// Decodes an envelope by its op, and keeps what a dispatch says about the session.
    fn interpret(&mut self, raw: &RawPayload<'_>) -> Result<Parsed, DecodeError> {
        match GatewayEvent::from_raw(raw) {
            Ok(GatewayEvent::Dispatch { seq, event }) => {
                self.observe_dispatch(seq, &event);
                Ok(Parsed::Dispatch(Data::new(Dispatch { seq, event })))
            }
            Ok(other) => Ok(Parsed::Control(other)),
            Err(DecodeError::Dispatch { seq, name, source }) => {
                // Counted and delivered as received; the application may know it better.
                self.session.observe_seq(seq);
                tracing::debug!(%name, error = %source, "dispatch did not decode");
                Ok(Parsed::Undecoded)
            }
            Err(e) => Err(e),
        }
    }

    /// What `message_type` read from `message`, or a fresh parse when it read another one
    /// (a callback called directly).
    fn parsed(&mut self, message: &Message) -> Result<Parsed, HandlerError> {
        match self.last_read.take() {
            Some(read) if read.is(message) => Ok(read.parsed),
            _ => {
                let raw = self.envelope(text_of(message)?);
                raw.and_then(|raw| self.interpret(&raw))
                    .map_err(|e| HandlerError::new(e.to_string()))
            }
        }
    }
}

fn text_of(message: &Message) -> Result<&str, HandlerError> {
    message
        .as_text()
        .ok_or_else(|| HandlerError::new("a binary gateway message without compression"))
}

impl ConnectionHandler for Discord {
    /// Resolves the metric handles, labelled with the client's name.
    fn init(&mut self, config: &ClientConfig) -> Result<(), HandlerError> {
        self.metrics = Some(Metrics::new(config.name()));
        Ok(())
    }

    fn connect_url(&mut self, _ctx: &Context<'_>) -> Option<String> {
        Some(
            self.next_url
                .clone()
                .unwrap_or_else(|| self.session.identify_url()),
        )
    }

    fn handle_connect(
        &mut self,
        info: &ConnectInfo,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        self.on_connect(Instant::now(), info.connection_index);
        Ok(())
    }

    fn handle_disconnect(
        &mut self,
        reason: &DisconnectReason,
        _ctx: &Context<'_>,
    ) -> ReconnectDecision {
        self.heartbeat = None;
        self.hello_deadline = None;
        self.last_read = None;
        if let Some(why) = self.fatal.take() {
            return ReconnectDecision::stop(why);
        }
        let cause = self.cause.take().unwrap_or(match reason {
            DisconnectReason::ClosedByPeer {
                code: Some(code), ..
            } => Disconnect::Closed(*code),
            _ => Disconnect::Dropped,
        });
        let jitter = self.jitter();
        match self.session.next_connect(cause, jitter) {
            NextConnect::Resume { url, .. } => {
                self.next_url = Some(url);
                self.resuming = true;
                ReconnectDecision::backoff()
            }
            NextConnect::Identify { url, after } => {
                self.next_url = Some(url);
                self.resuming = false;
                if after.is_zero() {
                    ReconnectDecision::backoff()
                } else {
                    ReconnectDecision::after(after)
                }
            }
            NextConnect::Stop(code) => ReconnectDecision::stop(format!(
                "gateway closed with {} ({}); not retried",
                code.code(),
                code.description()
            )),
        }
    }

    fn handle_frame(&mut self, frame: &Frame, ctx: &mut Context<'_>) -> FrameAction {
        let (Frame::Binary(bytes), Some(inflater)) = (frame, self.inflater.as_mut()) else {
            return FrameAction::Continue;
        };
        match inflater.push_text(bytes) {
            Ok(Some(text)) => FrameAction::Replace(Message::text(text)),
            Ok(None) => FrameAction::Consumed,
            Err(e) => {
                tracing::warn!(error = %e, "zlib-stream broken; reconnecting to resume");
                self.give_up(Disconnect::Dropped, GaveUp::Zlib, "zlib-stream broken", ctx);
                FrameAction::Consumed
            }
        }
    }
}

impl MessageHandler for Discord {
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        self.last_read = None;
        let Some(text) = message.as_text() else {
            // A binary frame without compression: `handle_message` reports it.
            return MessageType::Unknown;
        };
        let read = self
            .envelope(text)
            .and_then(|raw| Ok((raw.t.unwrap_or_default(), self.interpret(&raw)?)));
        let (route, parsed) = match read {
            Ok(read) => read,
            Err(e) => return MessageType::Invalid(HandlerError::new(e.to_string())),
        };
        let kind = match &parsed {
            Parsed::Dispatch(data) => MessageType::data(route, data.clone()),
            Parsed::Undecoded => MessageType::subscription(route),
            Parsed::Control(GatewayEvent::HeartbeatRequest) => return MessageType::Heartbeat,
            Parsed::Control(_) => MessageType::Unknown,
        };
        self.last_read = Some(Read {
            message: message.clone(),
            parsed,
        });
        kind
    }

    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let now = Instant::now();
        let event = match self.parsed(&message)? {
            Parsed::Dispatch(_) | Parsed::Undecoded => {
                ctx.deliver(message);
                return Ok(());
            }
            Parsed::Control(event) => event,
        };
        match event {
            GatewayEvent::Hello { heartbeat_interval } => {
                self.hello_deadline = None;
                self.send_limit.set_heartbeat_interval(heartbeat_interval);
                let jitter = self.jitter();
                self.heartbeat = Some(Heartbeat::new(heartbeat_interval, now, jitter));
                self.try_begin_auth(now, ctx);
            }
            GatewayEvent::HeartbeatAck => {
                if let Some(latency) = self.heartbeat.as_mut().and_then(|h| h.on_ack(now)) {
                    tracing::debug!(
                        shard = self.shard_id(),
                        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                        "heartbeat ACK"
                    );
                    if let Some(m) = &self.metrics {
                        m.heartbeat_latency(latency);
                    }
                }
            }
            GatewayEvent::HeartbeatRequest => {
                if let Some(h) = self.heartbeat.as_mut() {
                    h.on_request(now);
                }
                self.send_heartbeat(ctx);
            }
            GatewayEvent::Reconnect => {
                tracing::info!("gateway asked to reconnect (op 7)");
                self.give_up(Disconnect::Reconnect, GaveUp::Reconnect, "op 7", ctx);
            }
            GatewayEvent::InvalidSession { resumable } => {
                tracing::info!(resumable, "invalid session (op 9)");
                let cause = Disconnect::InvalidSession { resumable };
                self.give_up(cause, GaveUp::InvalidSession, "op 9", ctx);
            }
            other => tracing::debug!(?other, "gateway payload ignored"),
        }
        Ok(())
    }
}

impl AuthHandler for Discord {
    fn authenticates_on_connect(&self) -> bool {
        false
    }

    fn generate_auth_data(
        &mut self,
        _request: &AuthRequest,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let resume = match (self.resuming, self.session.session(), self.session.seq()) {
            (true, Some(session), Some(seq)) => Some((session.id.clone(), seq)),
            _ => None,
        };
        let json = match resume {
            Some((session_id, seq)) => {
                Resume::new(self.config.token.clone(), session_id, seq).to_json()
            }
            None => {
                self.resuming = false;
                let mut identify = Identify::new(self.config.token.clone(), self.config.intents)
                    .with_properties(self.config.properties.clone());
                if let Some(shard) = self.config.shard {
                    identify = identify.with_shard(shard);
                }
                identify.to_json()
            }
        };
        json.map(|j| Some(Message::text(j)))
            .map_err(|e| HandlerError::new(e.to_string()))
    }

    /// READY or RESUMED (kept in the session when read) is the verdict; anything else goes on
    /// to its callback, with what was read kept for it.
    fn handle_auth_response(&mut self, response: &Message, ctx: &mut Context<'_>) -> AuthOutcome {
        let parsed = match self.parsed(response) {
            Ok(parsed) => parsed,
            Err(_) => return AuthOutcome::NotAuthResponse,
        };
        let verdict = match &parsed {
            Parsed::Dispatch(data) => data.get::<Dispatch>().and_then(|d| match d.event {
                Event::Ready(_) => Some(false),
                Event::Resumed => Some(true),
                _ => None,
            }),
            _ => None,
        };
        let Some(resumed) = verdict else {
            self.last_read = Some(Read {
                message: response.clone(),
                parsed,
            });
            return AuthOutcome::NotAuthResponse;
        };
        tracing::info!(shard = self.shard_id(), resumed, "gateway session ready");
        if let Some(m) = &self.metrics {
            m.session(resumed);
        }
        ctx.deliver(response.clone());
        AuthOutcome::Authenticated
    }
}

impl HeartbeatHandler for Discord {
    fn next_heartbeat(&self) -> Option<Instant> {
        let beat = self.heartbeat.as_ref().map(Heartbeat::deadline);
        [beat, self.identify_at, self.hello_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    fn heartbeat_due(&mut self, now: Instant, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        if self.hello_deadline.is_some_and(|at| at <= now) {
            tracing::warn!(
                shard = self.shard_id(),
                timeout_ms =
                    u64::try_from(self.config.hello_timeout.as_millis()).unwrap_or(u64::MAX),
                "no Hello from the gateway in time; trying again"
            );
            self.give_up(
                Disconnect::NoHello,
                GaveUp::NoHello,
                "no Hello in time",
                ctx,
            );
            return Ok(());
        }
        if self.identify_at.is_some_and(|at| at <= now) {
            self.try_begin_auth(now, ctx);
        }
        match self.heartbeat.as_mut().and_then(|h| h.poll(now)) {
            Some(HeartbeatAction::Send) => self.send_heartbeat(ctx),
            Some(HeartbeatAction::Zombie) => {
                tracing::warn!("no heartbeat ACK since the last beat: zombie connection");
                let why = "platform heartbeat: no ACK";
                self.give_up(Disconnect::Zombie, GaveUp::Zombie, why, ctx);
            }
            None => {}
        }
        Ok(())
    }

    fn handle_heartbeat(
        &mut self,
        _message: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        if let Some(h) = self.heartbeat.as_mut() {
            h.on_request(Instant::now());
        }
        self.send_heartbeat(ctx);
        Ok(())
    }
}

impl SubscriptionHandler for Discord {}
impl ErrorHandler for Discord {}
impl RateLimitHandler for Discord {
    /// The application's sends wait while the window holds the limit minus the reserve.
    fn check_rate_limit(&mut self, _operation: Operation) -> RateLimitDecision {
        match self.send_limit.check(Instant::now()) {
            None => RateLimitDecision::Allow,
            Some(wait) => {
                tracing::trace!(
                    wait_us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX),
                    "gateway send limit: the application's sends wait"
                );
                RateLimitDecision::Wait(wait)
            }
        }
    }

    /// Every payload written counts, whoever sent it.
    fn update_rate_limit(&mut self, _operation: Operation) {
        self.send_limit.record(Instant::now());
    }
}

#[cfg(test)]
mod tests;
