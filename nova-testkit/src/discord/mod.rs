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
mod counters;
mod events;
mod handle;
mod http;
mod identify;
mod options;
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
pub use counters::{ConnectionInfo, Counters, SessionInfo, SessionStartLimit};
pub use handle::DiscordHandle;
pub use options::{DiscordSimOptions, KNOWN_INTENTS, PRIVILEGED_INTENTS, TEST_TOKEN};

use connection::Command;
use counters::{AtomicCounters, bump};
use identify::IdentifyState;
use session::Sessions;

/// How many closed connections [`DiscordHandle::connections`] remembers.
const CLOSED_CONNECTIONS_KEPT: usize = 1024;

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
