//! How a simulator behaves: [`DiscordSimOptions`], and the tokens and intents it knows.

use std::time::Duration;

/// The bot token a default simulator accepts.
pub const TEST_TOKEN: &str = "nova-test-token";

/// Every intent bit Discord defines (bits 0–16, 20, 21, 24, 25); others close with 4013.
pub const KNOWN_INTENTS: u64 = 0x0001_FFFF | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
/// The privileged intents: `GUILD_MEMBERS` (1), `GUILD_PRESENCES` (8), `MESSAGE_CONTENT` (15).
pub const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);

/// How a [`DiscordSim`](super::DiscordSim) behaves. Every field has a default that follows Discord's docs, except
/// where a test needs speed (noted).
///
/// ```
/// use std::time::Duration;
/// use nova_testkit::discord::DiscordSimOptions;
///
/// let options = DiscordSimOptions::default()
///     .with_heartbeat_interval(Duration::from_millis(200))
///     .with_max_concurrency(2)
///     .with_tick(None);
/// assert_eq!(options.max_concurrency, 2);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct DiscordSimOptions {
    /// The bot tokens accepted. Default: [`TEST_TOKEN`].
    pub tokens: Vec<String>,
    /// Hello's `heartbeat_interval`. Default 41.25 s (what Discord sends); tests shorten it.
    pub heartbeat_interval: Duration,
    /// The close code when a client stops heartbeating (undocumented by Discord; resumable).
    /// Default 4000. `None`: never close for that.
    pub heartbeat_timeout_code: Option<u16>,
    /// How often every live session gets a dispatch. `None`: only [`DiscordHandle::emit`](super::DiscordHandle::emit).
    /// Default 100 ms.
    pub tick: Option<Duration>,
    /// `/gateway/bot`'s recommended `shards`. Default 1.
    pub shards: u32,
    /// Whether an Identify without `shard` closes with 4011. Default `false`.
    pub sharding_required: bool,
    /// The privileged intents Identify may ask for (a subset of [`PRIVILEGED_INTENTS`]; others
    /// close with 4014). Default: all of them.
    pub allowed_privileged_intents: u64,
    /// `session_start_limit.total` (and the starting `remaining`). Default 1000.
    pub session_start_total: u32,
    /// `session_start_limit.reset_after`. Default 24 h.
    pub session_start_reset_after: Duration,
    /// `session_start_limit.max_concurrency`. Default 1.
    pub max_concurrency: u32,
    /// The identify window of one bucket. Default 5 s (the docs).
    pub identify_interval: Duration,
    /// Client payloads allowed per [`send_window`](Self::send_window). Default 120.
    pub send_limit: u32,
    /// Default 60 s.
    pub send_window: Duration,
    /// How long a session whose connection is gone stays resumable. Default 180 s.
    pub resume_window: Duration,
    /// How many dispatches a session's log keeps for Resume. Default 4096.
    pub event_log_capacity: usize,
    /// How many guilds every session is in (one GUILD_CREATE each after READY). Default 2.
    pub guilds: u32,
    /// After sending Reconnect (op 7), how long before the server closes the connection itself
    /// (with 4000), if the client has not. Default 5 s.
    pub reconnect_grace: Duration,
}

impl std::fmt::Debug for DiscordSimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSimOptions")
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("tick", &self.tick)
            .field("shards", &self.shards)
            .field("max_concurrency", &self.max_concurrency)
            .field("send_limit", &self.send_limit)
            .finish_non_exhaustive()
    }
}

impl Default for DiscordSimOptions {
    fn default() -> Self {
        Self {
            tokens: vec![TEST_TOKEN.to_owned()],
            heartbeat_interval: Duration::from_millis(41_250),
            heartbeat_timeout_code: Some(4000),
            tick: Some(Duration::from_millis(100)),
            shards: 1,
            sharding_required: false,
            allowed_privileged_intents: PRIVILEGED_INTENTS,
            session_start_total: 1000,
            session_start_reset_after: Duration::from_secs(24 * 3600),
            max_concurrency: 1,
            identify_interval: Duration::from_secs(5),
            send_limit: 120,
            send_window: Duration::from_secs(60),
            resume_window: Duration::from_secs(180),
            event_log_capacity: 4096,
            guilds: 2,
            reconnect_grace: Duration::from_secs(5),
        }
    }
}

impl DiscordSimOptions {
    /// Adds an accepted token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`heartbeat_timeout_code`](Self::heartbeat_timeout_code).
    #[must_use]
    pub fn with_heartbeat_timeout_code(mut self, code: Option<u16>) -> Self {
        self.heartbeat_timeout_code = code;
        self
    }

    /// Sets [`tick`](Self::tick).
    #[must_use]
    pub fn with_tick(mut self, tick: Option<Duration>) -> Self {
        self.tick = tick;
        self
    }

    /// Sets [`shards`](Self::shards).
    #[must_use]
    pub fn with_shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// Sets [`sharding_required`](Self::sharding_required).
    #[must_use]
    pub fn with_sharding_required(mut self, required: bool) -> Self {
        self.sharding_required = required;
        self
    }

    /// Sets [`allowed_privileged_intents`](Self::allowed_privileged_intents).
    #[must_use]
    pub fn with_allowed_privileged_intents(mut self, intents: u64) -> Self {
        self.allowed_privileged_intents = intents;
        self
    }

    /// Sets [`session_start_total`](Self::session_start_total).
    #[must_use]
    pub fn with_session_start_total(mut self, total: u32) -> Self {
        self.session_start_total = total;
        self
    }

    /// Sets [`max_concurrency`](Self::max_concurrency) (at least 1).
    #[must_use]
    pub fn with_max_concurrency(mut self, max_concurrency: u32) -> Self {
        self.max_concurrency = max_concurrency.max(1);
        self
    }

    /// Sets [`identify_interval`](Self::identify_interval).
    #[must_use]
    pub fn with_identify_interval(mut self, interval: Duration) -> Self {
        self.identify_interval = interval;
        self
    }

    /// Sets [`send_limit`](Self::send_limit) and [`send_window`](Self::send_window).
    #[must_use]
    pub fn with_send_limit(mut self, limit: u32, window: Duration) -> Self {
        self.send_limit = limit;
        self.send_window = window;
        self
    }

    /// Sets [`resume_window`](Self::resume_window).
    #[must_use]
    pub fn with_resume_window(mut self, window: Duration) -> Self {
        self.resume_window = window;
        self
    }

    /// Sets [`event_log_capacity`](Self::event_log_capacity) (at least 1).
    #[must_use]
    pub fn with_event_log_capacity(mut self, capacity: usize) -> Self {
        self.event_log_capacity = capacity.max(1);
        self
    }

    /// Sets [`guilds`](Self::guilds).
    #[must_use]
    pub fn with_guilds(mut self, guilds: u32) -> Self {
        self.guilds = guilds;
        self
    }

    /// Sets [`reconnect_grace`](Self::reconnect_grace).
    #[must_use]
    pub fn with_reconnect_grace(mut self, grace: Duration) -> Self {
        self.reconnect_grace = grace;
        self
    }
}
