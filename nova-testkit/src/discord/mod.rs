//! A Discord Gateway v10 simulator: the REST discovery endpoint and the gateway WebSocket,
//! behaving as Discord's docs say (wire facts: `shared/PROTOCOLS.md` section 3).
//!
//! [`DiscordSim`] binds two listeners on `127.0.0.1`: the **main** one serves HTTP
//! (`GET /api/v10/gateway/bot`, `GET /api/v10/gateway`) and the gateway WebSocket; the
//! **resume** one serves the same gateway and is what READY's `resume_gateway_url` points at, so
//! a test can see that a client resumed where Discord told it to. One task per connection owns
//! the socket; sessions live beside the connections, so a session outlives its connection and
//! can be resumed on another. One ticker task appends dispatches to every live session's event
//! log, connected or not, so events happen while a client is away, as on Discord.
//!
//! What it implements:
//!
//! - **Discovery**: `GET /api/v10/gateway/bot` checks `Authorization: Bot TOKEN` (401 otherwise)
//!   and answers `url`, `shards` and `session_start_limit {total, remaining, reset_after,
//!   max_concurrency}`; `remaining` goes down with every accepted Identify.
//! - **Connect**: `?v=10&encoding=json[&compress=zlib-stream]`. Another `v` closes with
//!   **4012** right after the upgrade; another encoding or compression is refused with HTTP 400.
//!   With `zlib-stream`, every payload goes out as one binary message deflated through one zlib
//!   context per connection and flushed with `Z_SYNC_FLUSH` (so it ends with `00 00 ff ff`).
//! - **Hello and heartbeats**: Hello (op 10) with [`heartbeat_interval`](DiscordSimOptions::heartbeat_interval);
//!   every op 1 is answered with op 11 and its `d` compared with the last sequence sent on the
//!   connection (a difference is counted, not punished: a dispatch in flight makes one). No
//!   heartbeat for 1.5 intervals closes with [`heartbeat_timeout_code`](DiscordSimOptions::heartbeat_timeout_code).
//!   On demand: a server heartbeat request (op 1), or a zombie server that stops ACKing.
//! - **Identify** (op 2): wrong token **4004**; bad `shard` **4010**; no `shard` while
//!   [`sharding_required`](DiscordSimOptions::sharding_required) **4011**; undefined intent bits
//!   **4013**; privileged intents not [`allowed`](DiscordSimOptions::allowed_privileged_intents)
//!   **4014**; a second Identify **4005**; any other op before Identify **4003**; an unknown op
//!   **4001**; bad JSON or a payload over 4096 bytes **4002**. Identify pacing: one per
//!   [`identify_interval`](DiscordSimOptions::identify_interval) per bucket
//!   `shard_id % max_concurrency`; a faster one is answered Invalid Session (op 9, `d: false`)
//!   and counted, as the docs say. No `session_start_limit` left closes with 4004 (Discord resets
//!   the token). An accepted Identify gets READY (`session_id`, `resume_gateway_url`, `shard`)
//!   and a GUILD_CREATE per guild (with the `GUILDS` intent).
//! - **Dispatches** (op 0) with increasing `s`, per session: MESSAGE_CREATE (with
//!   `GUILD_MESSAGES`; `content` empty without `MESSAGE_CONTENT`), INTERACTION_CREATE,
//!   TYPING_START (with `GUILD_MESSAGE_TYPING`) and GUILD_SCHEDULED_EVENT_CREATE (a dispatch
//!   clients usually do not type) every [`tick`](DiscordSimOptions::tick), plus any
//!   [`emit`](DiscordHandle::emit)ted by a test.
//! - **Resume** (op 6): the session's bounded event log replays exactly the dispatches after
//!   `seq`, then RESUMED. An unknown, expired or invalidated session, or a `seq` older than the
//!   log, is answered op 9 `d: false`; a `seq` beyond the last dispatch closes with **4007**. A
//!   client that closes with 1000 or 1001 ends its session (the docs: the bot goes offline).
//! - **Send limit**: more than [`send_limit`](DiscordSimOptions::send_limit) client payloads in
//!   [`send_window`](DiscordSimOptions::send_window) (120 per 60 s) closes with **4008**.
//!
//! Faults on demand through [`DiscordHandle`] (which [`DiscordSim`] derefs to):
//! [`drop_all`](DiscordHandle::drop_all) (TCP RST), [`close_all`](DiscordHandle::close_all)
//! (a chosen code), [`request_heartbeat`](DiscordHandle::request_heartbeat) (op 1),
//! [`reconnect_all`](DiscordHandle::reconnect_all) (op 7),
//! [`invalidate_sessions`](DiscordHandle::invalidate_sessions) (op 9 either way),
//! [`set_zombie`](DiscordHandle::set_zombie) (no more ACKs), [`set_paused`](DiscordHandle::set_paused)
//! (no more ticks), [`withhold_hello`](DiscordHandle::withhold_hello) (the next connections get
//! no Hello: a silent server). Counters: [`DiscordHandle::counters`]; per session (with every sequence sent):
//! [`DiscordHandle::sessions`]; per connection: [`DiscordHandle::connections`].
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::discord::{DiscordSim, TEST_TOKEN};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = DiscordSim::start().await?;
//! let tcp = tokio::net::TcpStream::connect(sim.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async(sim.ws_url(), tcp).await?;
//! let hello: serde_json::Value = serde_json::from_str(ws.next().await.expect("hello")?.to_text()?)?;
//! assert_eq!(hello["op"], 10);
//! let identify = format!(
//!     r#"{{"op":2,"d":{{"token":"{TEST_TOKEN}","intents":513,"properties":{{"os":"linux","browser":"nova","device":"nova"}}}}}}"#
//! );
//! ws.send(Message::text(identify)).await?;
//! let ready: serde_json::Value = serde_json::from_str(ws.next().await.expect("ready")?.to_text()?)?;
//! assert_eq!(ready["t"], "READY");
//! assert_eq!(ready["s"], 1);
//! assert_eq!(sim.counters().identifies, 1);
//! # Ok(())
//! # }
//! ```

mod compress;
mod connection;
mod events;
mod http;
mod identify;
mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use compress::{ZLIB_SUFFIX, ZlibStreamDeflater};

use connection::Command;
use identify::IdentifyState;
use session::Sessions;

/// The bot token a default simulator accepts.
pub const TEST_TOKEN: &str = "nova-test-token";

/// Every intent bit Discord defines (bits 0–16, 20, 21, 24, 25); others close with 4013.
pub const KNOWN_INTENTS: u64 = 0x0001_FFFF | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
/// The privileged intents: `GUILD_MEMBERS` (1), `GUILD_PRESENCES` (8), `MESSAGE_CONTENT` (15).
pub const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);

/// How many closed connections [`DiscordHandle::connections`] remembers.
const CLOSED_CONNECTIONS_KEPT: usize = 1024;

/// How a [`DiscordSim`] behaves. Every field has a default that follows Discord's docs, except
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
    /// How often every live session gets a dispatch. `None`: only [`DiscordHandle::emit`].
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

/// What the simulator has counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Gateway WebSocket connections accepted (both listeners).
    pub connections: u64,
    /// Of those, the ones on the resume listener (`resume_gateway_url`).
    pub resume_url_connections: u64,
    /// HTTP requests answered (any path, any status).
    pub http_requests: u64,
    /// Identifies accepted (READY sent).
    pub identifies: u64,
    /// Identifies answered op 9 because their bucket identified less than
    /// [`identify_interval`](DiscordSimOptions::identify_interval) before.
    pub identify_rate_limited: u64,
    /// Identifies and Resumes closed with 4004.
    pub auth_failures: u64,
    /// Resumes accepted (RESUMED sent).
    pub resumes: u64,
    /// Resumes refused (op 9 `d: false` or 4007).
    pub resume_failures: u64,
    /// Heartbeats (op 1) received.
    pub heartbeats: u64,
    /// Heartbeat ACKs (op 11) sent.
    pub heartbeat_acks: u64,
    /// Heartbeats whose `d` was not the last sequence sent on their connection.
    pub heartbeat_seq_mismatches: u64,
    /// Server heartbeat requests (op 1) sent.
    pub heartbeat_requests: u64,
    /// Connections closed for not heartbeating.
    pub heartbeat_timeouts: u64,
    /// Dispatches (op 0) sent, replays included.
    pub dispatches: u64,
    /// Reconnects (op 7) sent.
    pub reconnects: u64,
    /// Invalid Sessions (op 9) sent, for any reason.
    pub invalid_sessions: u64,
    /// Connections closed with 4008 for exceeding the send limit.
    pub rate_limited: u64,
    /// Close frames the simulator sent, any code.
    pub closes: u64,
    /// Connections that got no Hello ([`DiscordHandle::withhold_hello`]).
    pub hellos_withheld: u64,
}

/// What the simulator knows about one gateway connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's number, from 0 in accept order.
    pub id: u64,
    /// Whether the connection is still open.
    pub open: bool,
    /// Whether it came in on the resume listener.
    pub via_resume_url: bool,
    /// Whether it asked for `compress=zlib-stream`.
    pub compressed: bool,
    /// The session it identified or resumed, if any.
    pub session_id: Option<String>,
    /// Payloads the client sent.
    pub received: u64,
    /// The close code the client sent, if it closed with one.
    pub client_close_code: Option<u16>,
    /// The close code the server sent, if it closed with one.
    pub server_close_code: Option<u16>,
}

/// What the simulator knows about one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The `session_id` READY gave.
    pub session_id: String,
    /// Identify's `shard`, if given.
    pub shard: Option<[u32; 2]>,
    /// Identify's `intents`.
    pub intents: u64,
    /// The last sequence number given to a dispatch of this session.
    pub last_seq: u64,
    /// Every sequence number written to a connection of this session, in write order,
    /// replays included (at most the last 100,000).
    pub sent_seqs: Vec<u64>,
    /// Resumes accepted.
    pub resumes: u64,
    /// Whether it can still be resumed.
    pub live: bool,
    /// Whether a connection is attached now.
    pub attached: bool,
}

/// The `session_start_limit` now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStartLimit {
    /// Identifies allowed per reset period.
    pub total: u32,
    /// Identifies left.
    pub remaining: u32,
    /// Milliseconds until `remaining` goes back to `total`.
    pub reset_after: u64,
    /// Identify buckets per 5 s.
    pub max_concurrency: u32,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    connections: AtomicU64,
    resume_url_connections: AtomicU64,
    http_requests: AtomicU64,
    identifies: AtomicU64,
    identify_rate_limited: AtomicU64,
    auth_failures: AtomicU64,
    resumes: AtomicU64,
    resume_failures: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_acks: AtomicU64,
    heartbeat_seq_mismatches: AtomicU64,
    heartbeat_requests: AtomicU64,
    heartbeat_timeouts: AtomicU64,
    dispatches: AtomicU64,
    reconnects: AtomicU64,
    invalid_sessions: AtomicU64,
    rate_limited: AtomicU64,
    closes: AtomicU64,
    hellos_withheld: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            connections: get(&self.connections),
            resume_url_connections: get(&self.resume_url_connections),
            http_requests: get(&self.http_requests),
            identifies: get(&self.identifies),
            identify_rate_limited: get(&self.identify_rate_limited),
            auth_failures: get(&self.auth_failures),
            resumes: get(&self.resumes),
            resume_failures: get(&self.resume_failures),
            heartbeats: get(&self.heartbeats),
            heartbeat_acks: get(&self.heartbeat_acks),
            heartbeat_seq_mismatches: get(&self.heartbeat_seq_mismatches),
            heartbeat_requests: get(&self.heartbeat_requests),
            heartbeat_timeouts: get(&self.heartbeat_timeouts),
            dispatches: get(&self.dispatches),
            reconnects: get(&self.reconnects),
            invalid_sessions: get(&self.invalid_sessions),
            rate_limited: get(&self.rate_limited),
            closes: get(&self.closes),
            hellos_withheld: get(&self.hellos_withheld),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Locks a mutex, ignoring poisoning: the data is plain records, valid after any panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection in the registry: its info and the way to command its task.
#[derive(Debug)]
struct ConnectionEntry {
    info: ConnectionInfo,
    commands: Option<mpsc::Sender<Command>>,
}

/// Everything the connection tasks, the ticker and the handle share.
struct Shared {
    options: DiscordSimOptions,
    counters: AtomicCounters,
    connections: Mutex<BTreeMap<u64, ConnectionEntry>>,
    sessions: Mutex<Sessions>,
    identify: Mutex<IdentifyState>,
    zombie: AtomicBool,
    paused: AtomicBool,
    /// How many of the next connections get no Hello.
    withhold_hello: AtomicU64,
    shutdown: watch::Sender<bool>,
    next_connection: AtomicU64,
    addr: SocketAddr,
    resume_addr: SocketAddr,
}

impl Shared {
    fn with_connection(&self, id: u64, f: impl FnOnce(&mut ConnectionInfo)) {
        if let Some(entry) = lock(&self.connections).get_mut(&id) {
            f(&mut entry.info);
        }
    }

    /// Whether this new connection is one that gets no Hello (counts it down).
    fn take_withheld_hello(&self) -> bool {
        self.withhold_hello
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    fn token_ok(&self, token: &str) -> bool {
        self.options.tokens.iter().any(|t| t == token)
    }

    fn gateway_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    fn resume_url(&self) -> String {
        format!("ws://{}", self.resume_addr)
    }
}

/// A handle on a running [`DiscordSim`]: fault injection and counters. Cheap to clone; it does
/// not keep the simulator running.
#[derive(Clone)]
pub struct DiscordHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DiscordHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordHandle")
            .field("addr", &self.shared.addr)
            .field("resume_addr", &self.shared.resume_addr)
            .finish_non_exhaustive()
    }
}

impl DiscordHandle {
    /// The main listener's address (HTTP and gateway).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The resume listener's address (READY's `resume_gateway_url`).
    #[must_use]
    pub fn resume_addr(&self) -> SocketAddr {
        self.shared.resume_addr
    }

    /// The REST base: `http://127.0.0.1:PORT/api/v10`.
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v10", self.shared.addr)
    }

    /// The gateway URL `/gateway/bot` answers: `ws://127.0.0.1:PORT` (no query, like Discord's).
    #[must_use]
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    /// READY's `resume_gateway_url`: `ws://127.0.0.1:RESUME_PORT`.
    #[must_use]
    pub fn resume_gateway_url(&self) -> String {
        self.shared.resume_url()
    }

    /// The URL to connect to: `ws://127.0.0.1:PORT/?v=10&encoding=json`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("{}/?v=10&encoding=json", self.gateway_url())
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Every connection accepted (the last 1024 closed ones, and all open ones), in accept
    /// order.
    #[must_use]
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        lock(&self.shared.connections)
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    /// The connections open now.
    #[must_use]
    pub fn open_connections(&self) -> Vec<ConnectionInfo> {
        self.connections().into_iter().filter(|c| c.open).collect()
    }

    /// Every session, in creation order.
    #[must_use]
    pub fn sessions(&self) -> Vec<SessionInfo> {
        lock(&self.shared.sessions).infos()
    }

    /// The `session_start_limit` `/gateway/bot` would answer now.
    #[must_use]
    pub fn session_start_limit(&self) -> SessionStartLimit {
        lock(&self.shared.identify).limit(&self.shared.options, tokio::time::Instant::now())
    }

    /// Drops every open connection abruptly: SO_LINGER 0, so the peer sees a TCP reset and no
    /// close frame. Sessions stay resumable.
    pub async fn drop_all(&self) {
        self.command_all(Command::Drop).await;
    }

    /// Closes every open connection with a close frame carrying `code` and `reason`.
    pub async fn close_all(&self, code: u16, reason: &str) {
        self.command_all(Command::Close(code, reason.to_owned()))
            .await;
    }

    /// Sends a heartbeat request (`{"op":1,"d":null}`) on every open connection.
    pub async fn request_heartbeat(&self) {
        self.command_all(Command::RequestHeartbeat).await;
    }

    /// Sends Reconnect (`{"op":7,"d":null}`) on every open connection; each is closed with 4000
    /// after [`reconnect_grace`](DiscordSimOptions::reconnect_grace) unless the client closes
    /// first.
    pub async fn reconnect_all(&self) {
        self.command_all(Command::Reconnect).await;
    }

    /// Sends Invalid Session (`{"op":9,"d":resumable}`) on every identified connection. With
    /// `resumable: false`, their sessions end first (a Resume of them fails).
    pub async fn invalidate_sessions(&self, resumable: bool) {
        if !resumable {
            lock(&self.shared.sessions).invalidate_attached();
        }
        self.command_all(Command::InvalidSession(resumable)).await;
    }

    /// Zombie (`true`): heartbeats are no longer ACKed (dispatches go on). `false` ACKs again.
    pub fn set_zombie(&self, zombie: bool) {
        self.shared.zombie.store(zombie, Ordering::Relaxed);
    }

    /// Paused (`true`): the ticker adds no dispatches. [`emit`](Self::emit) still works.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    /// The next `connections` gateway connections get no Hello: the server stays silent (it
    /// still reads, ACKs heartbeats and closes for the usual reasons). Counted in
    /// [`Counters::hellos_withheld`].
    pub fn withhold_hello(&self, connections: u64) {
        self.shared
            .withhold_hello
            .store(connections, Ordering::Relaxed);
    }

    /// Appends a dispatch named `t` with data `d` (JSON text) to every live session, connected
    /// or not. Returns how many sessions got it.
    pub fn emit(&self, t: &str, d: &str) -> usize {
        lock(&self.shared.sessions).emit_all(t, d, &self.shared.options)
    }

    /// Waits up to `timeout` for `condition` on the counters; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, condition: impl Fn(&Counters) -> bool) -> bool {
        crate::wait_until(|| condition(&self.counters()), timeout).await
    }

    /// Waits up to `timeout` until `count` connections are open; returns whether they were.
    pub async fn wait_for_open_connections(&self, count: usize, timeout: Duration) -> bool {
        crate::wait_until(|| self.open_connections().len() == count, timeout).await
    }

    async fn command_all(&self, command: Command) {
        let senders: Vec<_> = lock(&self.shared.connections)
            .values()
            .filter(|e| e.info.open)
            .filter_map(|e| e.commands.clone())
            .collect();
        for sender in senders {
            // A connection that ended meanwhile has nothing left to do.
            let _ = sender.send(command.clone()).await;
        }
    }
}

/// The Discord simulator. Derefs to its [`DiscordHandle`]; stops when dropped.
#[derive(Debug)]
pub struct DiscordSim {
    handle: DiscordHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl DiscordSim {
    /// Starts a simulator with the default options.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(DiscordSimOptions::default()).await
    }

    /// Starts a simulator with `options`.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start_with(options: DiscordSimOptions) -> std::io::Result<Self> {
        let main = TcpListener::bind("127.0.0.1:0").await?;
        let resume = TcpListener::bind("127.0.0.1:0").await?;
        let addr = main.local_addr()?;
        let resume_addr = resume.local_addr()?;
        let identify = IdentifyState::new(&options, tokio::time::Instant::now());
        let shared = Arc::new(Shared {
            counters: AtomicCounters::default(),
            connections: Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(Sessions::default()),
            identify: Mutex::new(identify),
            zombie: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            withhold_hello: AtomicU64::new(0),
            shutdown: watch::Sender::new(false),
            next_connection: AtomicU64::new(0),
            addr,
            resume_addr,
            options,
        });
        let mut tasks = vec![
            tokio::spawn(accept_loop(main, Arc::clone(&shared), false)),
            tokio::spawn(accept_loop(resume, Arc::clone(&shared), true)),
        ];
        if let Some(tick) = shared.options.tick {
            tasks.push(tokio::spawn(session::tick(Arc::clone(&shared), tick)));
        }
        Ok(Self {
            handle: DiscordHandle { shared },
            tasks,
        })
    }

    /// A handle that can be moved into other tasks.
    #[must_use]
    pub fn handle(&self) -> DiscordHandle {
        self.handle.clone()
    }

    /// Stops accepting, closes every connection and stops the ticker.
    pub async fn shutdown(self) {
        self.handle.shared.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
        crate::wait_until(
            || self.handle.open_connections().is_empty(),
            Duration::from_secs(2),
        )
        .await;
    }
}

impl Deref for DiscordSim {
    type Target = DiscordHandle;
    fn deref(&self) -> &DiscordHandle {
        &self.handle
    }
}

impl Drop for DiscordSim {
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, resume: bool) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Out of file descriptors and the like: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(http::serve(stream, Arc::clone(&shared), resume));
    }
}

/// Registers a new gateway connection; returns its id and the receiver of its commands.
fn register(shared: &Shared, info: ConnectionInfo) -> (u64, mpsc::Receiver<Command>) {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(8);
    if info.via_resume_url {
        bump(&shared.counters.resume_url_connections);
    }
    let mut all = lock(&shared.connections);
    all.insert(
        id,
        ConnectionEntry {
            info: ConnectionInfo {
                id,
                open: true,
                ..info
            },
            commands: Some(tx),
        },
    );
    let closed: Vec<u64> = all
        .values()
        .filter(|e| !e.info.open)
        .map(|e| e.info.id)
        .collect();
    if closed.len() > CLOSED_CONNECTIONS_KEPT {
        for old in &closed[..closed.len() - CLOSED_CONNECTIONS_KEPT] {
            all.remove(old);
        }
    }
    drop(all);
    bump(&shared.counters.connections);
    (id, rx)
}

fn unregister(shared: &Shared, id: u64) {
    if let Some(entry) = lock(&shared.connections).get_mut(&id) {
        entry.info.open = false;
        entry.commands = None;
    }
}
