//! A Deribit API v2 simulator: JSON-RPC 2.0 over WebSocket, behaving as Deribit's docs say.
//!
//! [`DeribitSim`] binds `127.0.0.1:0` and runs one task per connection that owns the socket and
//! that connection's session: its authentication, heartbeat, subscriptions and credits. One
//! market task moves prices every [`tick`](DeribitSimOptions::tick) and broadcasts tickers,
//! order book changes, trades and index prices to the connections subscribed to them.
//!
//! What it implements (wire facts from Deribit's docs):
//!
//! - **Envelopes**: `{"jsonrpc":"2.0","id":..,"result":..}` with `usIn`/`usOut`/`usDiff`/`testnet`;
//!   errors `{"code":..,"message":..}` with Deribit's codes; requests without an `id` are rejected
//!   (`-32600`), batches are not supported.
//! - **Session**: `public/hello`, `public/test` (`expected_result: "exception"` answers an error),
//!   `public/get_time`.
//! - **Auth** (`public/auth`): `client_credentials`; `client_signature` verified as
//!   `hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + data))` with a timestamp no older
//!   than [`signature_window`](DeribitSimOptions::signature_window) and single-use nonces;
//!   `refresh_token` (single use, gives a new pair). Tokens are `connection`-scoped and expire
//!   after [`token_lifetime`](DeribitSimOptions::token_lifetime) (`expires_in` is reported in whole
//!   seconds). `private/*` methods answer `13009 unauthorized` without a live token.
//! - **Heartbeat**: `public/set_heartbeat {interval}` (at least
//!   [`min_heartbeat_interval`](DeribitSimOptions::min_heartbeat_interval)) makes the server send
//!   `{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}` every interval;
//!   a connection that has not sent `public/test` within the interval after a test request is
//!   closed. Intervals are in seconds scaled by [`heartbeat_unit`](DeribitSimOptions::heartbeat_unit),
//!   so tests can run a "10 s" heartbeat in one second. `public/disable_heartbeat` stops it.
//! - **Subscriptions**: `public/subscribe`, `private/subscribe`, `public|private/unsubscribe`,
//!   `public|private/unsubscribe_all`. The result lists the channels subscribed; unknown channels,
//!   private channels through `public/subscribe` and `.raw` channels before auth are left out of
//!   the result (Deribit's partial failure). Channels: `ticker.{instrument}.{interval}`,
//!   `book.{instrument}.{interval}` (a snapshot with `change_id` first, then changes whose
//!   `prev_change_id` is the previous `change_id`), `trades.{instrument}.{interval}`,
//!   `trades.{kind}.{currency}.{interval}`, `deribit_price_index.{index}`, and, with auth,
//!   `user.orders.{instrument|kind.currency}.{interval}` and `user.trades.…` fed by this account's
//!   `private/buy`, `private/sell` and `private/cancel`. Ticker timestamps strictly increase, so
//!   ticker data is numbered.
//! - **Requests**: `public/get_instruments`, `public/ticker`, `private/buy`, `private/sell`,
//!   `private/cancel`, `private/get_positions`; anything else is `-32601 Method not found`.
//! - **Credits** ([`CreditLimits`]): every request costs credits from a bucket that refills
//!   continuously (default 500 per request, 50,000 maximum, 10,000 per second: a burst of 100,
//!   20 per second); order methods draw from a separate, stricter matching-engine bucket. An
//!   empty bucket answers `10028 too_many_requests` and closes the session. Buckets are per
//!   connection (Deribit's are per sub-account; for one client the difference does not show).
//!
//! Faults on demand, through [`DeribitHandle`] (which [`DeribitSim`] derefs to): drop every
//! connection abruptly ([`drop_all`](DeribitHandle::drop_all)), close them with a code
//! ([`close_all`](DeribitHandle::close_all)), lose a book change so subscribers see a `change_id`
//! gap ([`skip_book_change`](DeribitHandle::skip_book_change)), go silent
//! ([`set_silent`](DeribitHandle::set_silent)), change the token lifetime
//! ([`set_token_lifetime`](DeribitHandle::set_token_lifetime)), refuse the next refreshes
//! ([`revoke_refresh_tokens`](DeribitHandle::revoke_refresh_tokens)). Counters:
//! [`DeribitHandle::counters`]; subscriptions per connection: [`DeribitHandle::connections`].
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::deribit::DeribitSim;
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = DeribitSim::start().await?;
//! let tcp = tokio::net::TcpStream::connect(sim.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async(sim.url(), tcp).await?;
//! let auth = r#"{"jsonrpc":"2.0","id":1,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"nova-test-id","client_secret":"nova-test-secret"}}"#;
//! ws.send(Message::text(auth)).await?;
//! let reply: serde_json::Value = serde_json::from_str(ws.next().await.expect("a reply")?.to_text()?)?;
//! assert_eq!(reply["result"]["token_type"], "bearer");
//! assert_eq!(sim.counters().auths, 1);
//! # Ok(())
//! # }
//! ```

mod auth;
mod channel;
mod connection;
mod credits;
mod market;
mod methods;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use credits::CreditLimits;

use connection::Command;
use market::{Account, Event, Market};

/// The client id of the credentials a default simulator accepts.
pub const TEST_CLIENT_ID: &str = "nova-test-id";
/// The client secret of the credentials a default simulator accepts.
pub const TEST_CLIENT_SECRET: &str = "nova-test-secret";

/// How many market and account events may wait for a slow connection before it loses some
/// (and, for books, sees a `change_id` gap, as it would on Deribit).
const EVENT_CAPACITY: usize = 4096;
/// How many closed connections [`DeribitHandle::connections`] remembers.
const CLOSED_CONNECTIONS_KEPT: usize = 1024;

/// How a [`DeribitSim`] behaves. Every field has a default that follows Deribit's docs, except
/// where a test needs speed (noted).
///
/// ```
/// use std::time::Duration;
/// use nova_testkit::deribit::DeribitSimOptions;
///
/// let options = DeribitSimOptions::default()
///     .with_client("id", "secret")
///     .with_token_lifetime(Duration::from_secs(2))
///     .with_heartbeat_unit(Duration::from_millis(100));
/// assert_eq!(options.clients.len(), 2);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeribitSimOptions {
    /// The `(client_id, client_secret)` pairs `public/auth` accepts. Default: one pair,
    /// [`TEST_CLIENT_ID`] / [`TEST_CLIENT_SECRET`].
    pub clients: Vec<(String, String)>,
    /// How long an access token lives. Default 900 s (what real deployments commonly return).
    pub token_lifetime: Duration,
    /// How old a `client_signature` timestamp may be. Default 60 s (the docs).
    pub signature_window: Duration,
    /// How often the market moves and notifications go out. Default 100 ms.
    pub tick: Duration,
    /// How long one "second" of a `public/set_heartbeat` interval lasts. Default 1 s; tests
    /// shorten it.
    pub heartbeat_unit: Duration,
    /// The smallest heartbeat interval accepted, in (scaled) seconds. Default 10 (the docs).
    pub min_heartbeat_interval: u64,
    /// The credits of non-matching-engine requests. `None`: unlimited. Default: Deribit's
    /// defaults ([`CreditLimits::deribit_default`]).
    pub credits: Option<CreditLimits>,
    /// The credits of order methods (buy, sell, edit, cancel, cancel_all*, close_position).
    /// `None`: unlimited. Default: [`CreditLimits::matching_engine_default`].
    pub matching_engine_credits: Option<CreditLimits>,
    /// Whether a `10028 too_many_requests` also closes the connection. Default `true` (the docs).
    pub close_on_rate_limit: bool,
    /// The `testnet` field of every response. Default `true`.
    pub testnet: bool,
    /// Seed of the simulator's price walk and token bytes. Default 7.
    pub seed: u64,
}

impl Default for DeribitSimOptions {
    fn default() -> Self {
        Self {
            clients: vec![(TEST_CLIENT_ID.to_owned(), TEST_CLIENT_SECRET.to_owned())],
            token_lifetime: Duration::from_secs(900),
            signature_window: Duration::from_secs(60),
            tick: Duration::from_millis(100),
            heartbeat_unit: Duration::from_secs(1),
            min_heartbeat_interval: 10,
            credits: Some(CreditLimits::deribit_default()),
            matching_engine_credits: Some(CreditLimits::matching_engine_default()),
            close_on_rate_limit: true,
            testnet: true,
            seed: 7,
        }
    }
}

impl DeribitSimOptions {
    /// Adds a `(client_id, client_secret)` pair to [`clients`](Self::clients).
    #[must_use]
    pub fn with_client(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.clients.push((client_id.into(), secret.into()));
        self
    }

    /// Sets [`token_lifetime`](Self::token_lifetime).
    #[must_use]
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Sets [`tick`](Self::tick).
    #[must_use]
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets [`heartbeat_unit`](Self::heartbeat_unit).
    #[must_use]
    pub fn with_heartbeat_unit(mut self, unit: Duration) -> Self {
        self.heartbeat_unit = unit;
        self
    }

    /// Sets [`min_heartbeat_interval`](Self::min_heartbeat_interval).
    #[must_use]
    pub fn with_min_heartbeat_interval(mut self, seconds: u64) -> Self {
        self.min_heartbeat_interval = seconds;
        self
    }

    /// Sets [`credits`](Self::credits).
    #[must_use]
    pub fn with_credits(mut self, credits: Option<CreditLimits>) -> Self {
        self.credits = credits;
        self
    }

    /// Sets [`matching_engine_credits`](Self::matching_engine_credits).
    #[must_use]
    pub fn with_matching_engine_credits(mut self, credits: Option<CreditLimits>) -> Self {
        self.matching_engine_credits = credits;
        self
    }

    /// Sets [`close_on_rate_limit`](Self::close_on_rate_limit).
    #[must_use]
    pub fn with_close_on_rate_limit(mut self, close: bool) -> Self {
        self.close_on_rate_limit = close;
        self
    }

    /// Sets [`signature_window`](Self::signature_window).
    #[must_use]
    pub fn with_signature_window(mut self, window: Duration) -> Self {
        self.signature_window = window;
        self
    }
}

/// What the simulator has counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Successful `public/auth` with `client_credentials` or `client_signature`.
    pub auths: u64,
    /// Successful `public/auth` with `refresh_token`.
    pub refreshes: u64,
    /// `public/auth` requests refused.
    pub auth_failures: u64,
    /// Requests answered `13009 unauthorized` (private method without a live token).
    pub unauthorized: u64,
    /// Requests answered `10028 too_many_requests`.
    pub rate_limited: u64,
    /// `test_request` heartbeats sent.
    pub test_requests: u64,
    /// Connections closed because a `test_request` went unanswered.
    pub heartbeat_drops: u64,
    /// JSON-RPC requests received.
    pub requests: u64,
    /// Subscription notifications sent.
    pub notifications: u64,
    /// Book changes lost on purpose ([`DeribitHandle::skip_book_change`]).
    pub skipped_book_changes: u64,
}

/// What the simulator knows about one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's number, from 0 in accept order.
    pub id: u64,
    /// Whether the connection is still open.
    pub open: bool,
    /// The client id it authenticated as, if it did.
    pub client_id: Option<String>,
    /// Its channels now.
    pub subscriptions: BTreeSet<String>,
    /// How many channels it has subscribed to in total (acks returned, repeats counted).
    pub subscribe_count: u64,
    /// How many requests it sent.
    pub requests: u64,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    connections: AtomicU64,
    auths: AtomicU64,
    refreshes: AtomicU64,
    auth_failures: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    test_requests: AtomicU64,
    heartbeat_drops: AtomicU64,
    requests: AtomicU64,
    notifications: AtomicU64,
    skipped_book_changes: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            connections: get(&self.connections),
            auths: get(&self.auths),
            refreshes: get(&self.refreshes),
            auth_failures: get(&self.auth_failures),
            unauthorized: get(&self.unauthorized),
            rate_limited: get(&self.rate_limited),
            test_requests: get(&self.test_requests),
            heartbeat_drops: get(&self.heartbeat_drops),
            requests: get(&self.requests),
            notifications: get(&self.notifications),
            skipped_book_changes: get(&self.skipped_book_changes),
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

/// Everything the connection tasks, the market task and the handle share.
#[derive(Debug)]
struct Shared {
    options: DeribitSimOptions,
    token_lifetime_ms: AtomicU64,
    counters: AtomicCounters,
    connections: Mutex<BTreeMap<u64, ConnectionEntry>>,
    market: Mutex<Market>,
    accounts: Mutex<HashMap<String, Account>>,
    nonces: Mutex<auth::Nonces>,
    events: broadcast::Sender<Arc<Event>>,
    silent: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    skip_book_change: AtomicBool,
    refresh_generation: AtomicU64,
    addr: SocketAddr,
}

impl Shared {
    fn token_lifetime(&self) -> Duration {
        Duration::from_millis(self.token_lifetime_ms.load(Ordering::Relaxed))
    }

    fn with_connection(&self, id: u64, f: impl FnOnce(&mut ConnectionInfo)) {
        if let Some(entry) = lock(&self.connections).get_mut(&id) {
            f(&mut entry.info);
        }
    }

    fn publish(&self, event: Event) {
        // No receiver (no connection) is fine: the event had nobody to go to.
        let _ = self.events.send(Arc::new(event));
    }
}

/// A handle on a running [`DeribitSim`]: fault injection and counters. Cheap to clone; it does
/// not keep the simulator running.
#[derive(Clone, Debug)]
pub struct DeribitHandle {
    shared: Arc<Shared>,
}

impl DeribitHandle {
    /// The address the simulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The URL to connect to: `ws://127.0.0.1:PORT/ws/api/v2`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/ws/api/v2", self.shared.addr)
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Every connection accepted (the last 1024 closed ones, and all
    /// open ones), in accept order.
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

    /// Drops every open connection abruptly: the TCP socket closes without a close frame.
    pub async fn drop_all(&self) {
        self.command_all(Command::Drop).await;
    }

    /// Closes every open connection with a close frame carrying `code` and `reason`.
    pub async fn close_all(&self, code: u16, reason: &str) {
        self.command_all(Command::Close(code, reason.to_owned()))
            .await;
    }

    /// Loses the next book change of every instrument: the change is made (its `change_id`
    /// used) but never sent, so each book subscriber sees `prev_change_id` skip one.
    pub fn skip_book_change(&self) {
        self.shared.skip_book_change.store(true, Ordering::Relaxed);
    }

    /// Silent (`true`): every connection stops reading and writing (no answers, no
    /// notifications, no heartbeats; the socket stays open, a half-open peer). `false` resumes.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.send_replace(silent);
    }

    /// Invalidates every refresh token issued so far: the next `refresh_token` grant of each
    /// connection is refused with `13009 unauthorized`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared
            .refresh_generation
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The lifetime of access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.shared.token_lifetime_ms.store(ms, Ordering::Relaxed);
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
            // A connection that ended meanwhile has nothing left to drop.
            let _ = sender.send(command.clone()).await;
        }
    }
}

/// The Deribit simulator. Derefs to its [`DeribitHandle`]; stops when dropped.
#[derive(Debug)]
pub struct DeribitSim {
    handle: DeribitHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl DeribitSim {
    /// Starts a simulator with the default options.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(DeribitSimOptions::default()).await
    }

    /// Starts a simulator with `options`.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start_with(options: DeribitSimOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let token_lifetime_ms =
            u64::try_from(options.token_lifetime.as_millis()).unwrap_or(u64::MAX);
        let market = Market::new(options.seed);
        let shared = Arc::new(Shared {
            token_lifetime_ms: AtomicU64::new(token_lifetime_ms),
            counters: AtomicCounters::default(),
            connections: Mutex::new(BTreeMap::new()),
            market: Mutex::new(market),
            accounts: Mutex::new(HashMap::new()),
            nonces: Mutex::new(auth::Nonces::default()),
            events,
            silent: watch::Sender::new(false),
            shutdown: watch::Sender::new(false),
            skip_book_change: AtomicBool::new(false),
            refresh_generation: AtomicU64::new(0),
            addr,
            options,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        let market = tokio::spawn(market::run(Arc::clone(&shared)));
        Ok(Self {
            handle: DeribitHandle { shared },
            tasks: vec![accept, market],
        })
    }

    /// A handle that can be moved into other tasks.
    #[must_use]
    pub fn handle(&self) -> DeribitHandle {
        self.handle.clone()
    }

    /// Stops accepting, closes every connection and stops the market.
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

impl Deref for DeribitSim {
    type Target = DeribitHandle;
    fn deref(&self) -> &DeribitHandle {
        &self.handle
    }
}

impl Drop for DeribitSim {
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Out of file descriptors and the like: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let id = next_id;
        next_id += 1;
        tokio::spawn(connection::serve(stream, id, Arc::clone(&shared)));
    }
}

/// Registers a new connection; returns the receiver of its commands.
fn register(shared: &Shared, id: u64) -> mpsc::Receiver<Command> {
    let (tx, rx) = mpsc::channel(8);
    let mut all = lock(&shared.connections);
    all.insert(
        id,
        ConnectionEntry {
            info: ConnectionInfo {
                id,
                open: true,
                ..ConnectionInfo::default()
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
    rx
}

fn unregister(shared: &Shared, id: u64) {
    if let Some(entry) = lock(&shared.connections).get_mut(&id) {
        entry.info.open = false;
        entry.commands = None;
    }
}
