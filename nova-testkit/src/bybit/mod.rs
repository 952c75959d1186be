//! A Bybit V5 WebSocket simulator: public, private and trade endpoints on one server, behaving
//! as Bybit's docs say.
//!
//! [`BybitSim`] binds `127.0.0.1:0` and serves, by path:
//!
//! | path | what |
//! |---|---|
//! | `/v5/public/spot`, `/v5/public/linear`, `/v5/public/inverse`, `/v5/public/option` | market data |
//! | `/v5/private` | account data, after `op: auth` |
//! | `/v5/trade` | order entry (`order.create`, `order.amend`, `order.cancel`), after `op: auth` |
//!
//! Any other path is refused at the handshake (404). One task per connection owns the socket
//! and that connection's session; one market task moves prices every
//! [`tick`](BybitSimOptions::tick) and broadcasts the updates the connections pick from.
//!
//! What it implements (wire facts from Bybit's V5 docs):
//!
//! - **Subscribe / unsubscribe** (`{"req_id":..,"op":"subscribe","args":[..]}`) with the ack in
//!   each endpoint's own shape: spot `ret_msg: "subscribe"`, linear/inverse `ret_msg: ""`,
//!   option `{"success":..,"conn_id":..,"data":{"failTopics":[..],"successTopics":[..]},
//!   "type":"COMMAND_RESP"}` (no `req_id`), private `{"success":..,"ret_msg":"","op":..,
//!   "conn_id":..}`; `req_id` is echoed when sent (not by option). A request with an unknown
//!   topic fails as a whole (`"error:handler not found,topic:…"`); spot takes at most
//!   [`spot_args_limit`](BybitSimOptions::spot_args_limit) args per request, a public
//!   connection at most 21,000 characters of args, an option connection 2000 topics; private
//!   topics need auth first and `order` with `order.linear` in one request is refused.
//! - **Topics**: `tickers.{symbol}` (linear/inverse: a `snapshot` then `delta`s; spot/option:
//!   snapshots; `cs` and `ts` strictly increase), `publicTrade.{symbol}` (options:
//!   `publicTrade.{baseCoin}`), `orderbook.{depth}.{symbol}` (a `snapshot` first, then `delta`s
//!   whose `u` grows by one, `seq` the cross sequence; depth 1 is snapshot-only),
//!   `kline.{interval}.{symbol}`, `allLiquidation.{symbol}` (linear/inverse); private `order`,
//!   `execution`, `position`, `wallet` and their category forms (`order.linear`, ...), pushed as
//!   `{"id":..,"topic":..,"creationTime":..,"data":[..]}` by this account's orders.
//! - **Auth** (`{"op":"auth","args":[api_key, expires, signature]}`, `expires` a number or a
//!   string): `signature == hex(HMAC-SHA256(secret, "GET/realtime" + expires))` and
//!   `expires` later than the server's clock (shifted by
//!   [`clock_skew_ms`](BybitSimOptions::clock_skew_ms), to test clients against a clock that is
//!   ahead). Failure: `{"success":false,"ret_msg":"Params Error",..}`; trade endpoint answers
//!   with `retCode` (`0`, `10004` invalid sign, `10001` params error, `20001` repeat auth).
//! - **Ping**: `{"op":"ping"}` answered in the endpoint's own pong shape (spot, linear/inverse,
//!   option, private and trade all differ). A connection that sends no ping for
//!   [`idle_timeout`](BybitSimOptions::idle_timeout) is closed (Bybit: 10 minutes).
//!   `max_active_time` (`?max_active_time=1m`, private and trade) closes the connection when it
//!   has been open that long; values outside
//!   [`max_active_range`](BybitSimOptions::max_active_range) are refused at the handshake (400).
//! - **Order entry** (`/v5/trade`): `{"reqId":..,"header":{"X-BAPI-TIMESTAMP":..,
//!   "X-BAPI-RECV-WINDOW":..},"op":"order.create","args":[{..}]}`; the answer carries `reqId`,
//!   `retCode`, `retMsg`, `op`, `data`, `retExtInfo`, `header` (`X-Bapi-Limit`, ...) and `connId`.
//!   A `reqId` already used on the session is refused (`20006`); a timestamp outside the recv
//!   window (`server_time - recv_window <= timestamp < server_time + 1000`) is `10002`; more
//!   orders than [`order_limit`](BybitSimOptions::order_limit) allows is `20003` "Too frequent
//!   requests under the same session" (and the request is not executed); a repeated
//!   `orderLinkId` is `110072`; amending or cancelling an order that is not open is `110001`.
//!
//! Faults on demand through [`BybitHandle`] (which [`BybitSim`] derefs to): reset every
//! connection ([`drop_all`](BybitHandle::drop_all), TCP RST), close them with a code
//! ([`close_all`](BybitHandle::close_all)), lose one book update so subscribers see `u` jump
//! ([`skip_book_update`](BybitHandle::skip_book_update)), send a crossed book update
//! ([`send_crossed_book`](BybitHandle::send_crossed_book)), restart the books at `u == 1`
//! ([`restart_books`](BybitHandle::restart_books)), go silent
//! ([`set_silent`](BybitHandle::set_silent)), refuse handshakes
//! ([`refuse_handshakes`](BybitHandle::refuse_handshakes)). Counters: [`BybitHandle::counters`],
//! [`BybitHandle::subscribes_for`]; what each connection did, in order:
//! [`BybitHandle::connections`].
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::bybit::BybitSim;
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = BybitSim::start().await?;
//! let tcp = tokio::net::TcpStream::connect(sim.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async(sim.url("/v5/public/linear"), tcp).await?;
//! ws.send(Message::text(r#"{"req_id":"1","op":"subscribe","args":["tickers.BTCUSDT"]}"#)).await?;
//! let ack: serde_json::Value = serde_json::from_str(ws.next().await.expect("an ack")?.to_text()?)?;
//! assert_eq!(ack["success"], true);
//! assert_eq!(ack["req_id"], "1");
//! assert_eq!(sim.subscribes_for("tickers.BTCUSDT"), 1);
//! # Ok(())
//! # }
//! ```

mod auth;
mod connection;
mod endpoint;
mod market;
mod orders;
mod session;
mod topic;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use auth::signature;
pub use endpoint::Endpoint;

use connection::Command;
use market::{Event, Market};
use orders::Account;

/// The API key of the credentials a default simulator accepts.
pub const TEST_API_KEY: &str = "nova-bybit-key";
/// The API secret of the credentials a default simulator accepts.
pub const TEST_API_SECRET: &str = "nova-bybit-secret";

/// How many market and account events may wait for a slow connection before it loses some
/// (and, for books, sees `u` jump, as it would on Bybit).
const EVENT_CAPACITY: usize = 4096;
/// How many closed connections [`BybitHandle::connections`] remembers.
const CLOSED_CONNECTIONS_KEPT: usize = 256;
/// How many operations of one connection [`ConnectionInfo::ops`] keeps.
const OPS_KEPT: usize = 4096;

/// How a [`BybitSim`] behaves. Every field defaults to what Bybit documents, except where a
/// test needs speed (noted).
///
/// ```
/// use std::time::Duration;
/// use nova_testkit::bybit::BybitSimOptions;
///
/// let options = BybitSimOptions::default()
///     .with_account("key", "secret")
///     .with_tick(Duration::from_millis(20))
///     .with_idle_timeout(Duration::from_secs(2));
/// assert_eq!(options.accounts.len(), 2);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BybitSimOptions {
    /// The `(api_key, api_secret)` pairs auth accepts. Default: [`TEST_API_KEY`] /
    /// [`TEST_API_SECRET`].
    pub accounts: Vec<(String, String)>,
    /// How often the market moves and pushes go out. Default 100 ms.
    pub tick: Duration,
    /// A connection that sends no `ping` for this long is closed. Default 10 minutes (the docs).
    pub idle_timeout: Duration,
    /// The accepted range of `max_active_time`. Default 30 s ..= 600 s (the docs); tests lower it.
    pub max_active_range: (Duration, Duration),
    /// Most args in one spot subscribe request. Default 10 (the docs).
    pub spot_args_limit: usize,
    /// Orders per session: `(burst, per second)`. Default `(10, 10.0)` (Bybit's default of 10
    /// requests per second per UID for order entry).
    pub order_limit: (u32, f64),
    /// How far the server's clock is ahead of the machine's (negative: behind), in ms: auth
    /// `expires` and order timestamps are checked against it. Default 0.
    pub clock_skew_ms: i64,
    /// Seed of the price walk. Default 11.
    pub seed: u64,
}

impl Default for BybitSimOptions {
    fn default() -> Self {
        Self {
            accounts: vec![(TEST_API_KEY.to_owned(), TEST_API_SECRET.to_owned())],
            tick: Duration::from_millis(100),
            idle_timeout: Duration::from_secs(600),
            max_active_range: (Duration::from_secs(30), Duration::from_secs(600)),
            spot_args_limit: 10,
            order_limit: (10, 10.0),
            clock_skew_ms: 0,
            seed: 11,
        }
    }
}

impl BybitSimOptions {
    /// Adds an `(api_key, api_secret)` pair to [`accounts`](Self::accounts).
    #[must_use]
    pub fn with_account(mut self, api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.accounts.push((api_key.into(), secret.into()));
        self
    }

    /// Sets [`tick`](Self::tick).
    #[must_use]
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`max_active_range`](Self::max_active_range).
    #[must_use]
    pub fn with_max_active_range(mut self, min: Duration, max: Duration) -> Self {
        self.max_active_range = (min, max);
        self
    }

    /// Sets [`order_limit`](Self::order_limit).
    #[must_use]
    pub fn with_order_limit(mut self, burst: u32, per_second: f64) -> Self {
        self.order_limit = (burst, per_second);
        self
    }

    /// Sets [`clock_skew_ms`](Self::clock_skew_ms).
    #[must_use]
    pub fn with_clock_skew_ms(mut self, skew: i64) -> Self {
        self.clock_skew_ms = skew;
        self
    }
}

/// What the simulator has counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Handshakes refused ([`BybitHandle::refuse_handshakes`], bad path, bad `max_active_time`).
    pub handshakes_refused: u64,
    /// Successful auths.
    pub auths: u64,
    /// Refused auths.
    pub auth_failures: u64,
    /// `ping`s received.
    pub pings: u64,
    /// Topics subscribed (acked successfully), repeats counted.
    pub subscribes: u64,
    /// Subscribe requests refused.
    pub subscribe_failures: u64,
    /// Topics unsubscribed.
    pub unsubscribes: u64,
    /// Order operations (create, amend, cancel) executed.
    pub orders: u64,
    /// Order operations answered `20003` (session rate limit).
    pub rate_limited: u64,
    /// Connections closed for sending no ping within the idle timeout.
    pub idle_disconnects: u64,
    /// Connections closed when their `max_active_time` ran out.
    pub max_active_disconnects: u64,
    /// Topic pushes sent.
    pub pushes: u64,
    /// Book updates lost on purpose ([`BybitHandle::skip_book_update`]).
    pub skipped_book_updates: u64,
    /// Crossed book updates sent on purpose ([`BybitHandle::send_crossed_book`]).
    pub crossed_books: u64,
    /// Book snapshots sent (first after subscribe, depth-1 pushes, restarts).
    pub book_snapshots: u64,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    connections: AtomicU64,
    handshakes_refused: AtomicU64,
    auths: AtomicU64,
    auth_failures: AtomicU64,
    pings: AtomicU64,
    subscribes: AtomicU64,
    subscribe_failures: AtomicU64,
    unsubscribes: AtomicU64,
    orders: AtomicU64,
    rate_limited: AtomicU64,
    idle_disconnects: AtomicU64,
    max_active_disconnects: AtomicU64,
    pushes: AtomicU64,
    skipped_book_updates: AtomicU64,
    crossed_books: AtomicU64,
    book_snapshots: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            connections: get(&self.connections),
            handshakes_refused: get(&self.handshakes_refused),
            auths: get(&self.auths),
            auth_failures: get(&self.auth_failures),
            pings: get(&self.pings),
            subscribes: get(&self.subscribes),
            subscribe_failures: get(&self.subscribe_failures),
            unsubscribes: get(&self.unsubscribes),
            orders: get(&self.orders),
            rate_limited: get(&self.rate_limited),
            idle_disconnects: get(&self.idle_disconnects),
            max_active_disconnects: get(&self.max_active_disconnects),
            pushes: get(&self.pushes),
            skipped_book_updates: get(&self.skipped_book_updates),
            crossed_books: get(&self.crossed_books),
            book_snapshots: get(&self.book_snapshots),
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

/// What the simulator knows about one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's number, from 0 in accept order.
    pub id: u64,
    /// The endpoint it connected to.
    pub endpoint: Endpoint,
    /// Whether it is still open.
    pub open: bool,
    /// The API key it authenticated with, if it did.
    pub api_key: Option<String>,
    /// Its topics now.
    pub topics: BTreeSet<String>,
    /// What it did, in order (the last 4096): `auth`, `auth-failed`, `subscribe TOPIC`,
    /// `unsubscribe TOPIC`, `ping`, `order.create`, ...
    pub ops: Vec<String>,
}

impl ConnectionInfo {
    fn new(id: u64, endpoint: Endpoint) -> Self {
        Self {
            id,
            endpoint,
            open: true,
            api_key: None,
            topics: BTreeSet::new(),
            ops: Vec::new(),
        }
    }

    fn log(&mut self, op: impl Into<String>) {
        if self.ops.len() >= OPS_KEPT {
            self.ops.remove(0);
        }
        self.ops.push(op.into());
    }
}

#[derive(Debug)]
struct ConnectionEntry {
    info: ConnectionInfo,
    commands: Option<mpsc::Sender<Command>>,
}

/// Everything the connection tasks, the market task and the handle share.
#[derive(Debug)]
struct Shared {
    options: BybitSimOptions,
    counters: AtomicCounters,
    subscribes_per_topic: Mutex<HashMap<String, u64>>,
    connections: Mutex<BTreeMap<u64, ConnectionEntry>>,
    market: Mutex<Market>,
    accounts: Mutex<HashMap<String, Account>>,
    events: broadcast::Sender<Arc<Event>>,
    silent: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    skip_book_update: AtomicBool,
    crossed_book: AtomicBool,
    refuse: AtomicU32,
    addr: SocketAddr,
}

impl Shared {
    fn with_connection(&self, id: u64, f: impl FnOnce(&mut ConnectionInfo)) {
        if let Some(entry) = lock(&self.connections).get_mut(&id) {
            f(&mut entry.info);
        }
    }

    fn publish(&self, event: Event) {
        // No receiver (no connection) is fine: the event had nobody to go to.
        let _ = self.events.send(Arc::new(event));
    }

    fn count_subscribe(&self, topic: &str) {
        bump(&self.counters.subscribes);
        *lock(&self.subscribes_per_topic)
            .entry(topic.to_owned())
            .or_default() += 1;
    }

    /// The server's clock, in ms since the epoch (the machine's, shifted by the skew).
    fn now_ms(&self) -> u64 {
        let now = i64::try_from(market::now_ms()).unwrap_or(i64::MAX);
        u64::try_from(now.saturating_add(self.options.clock_skew_ms)).unwrap_or(0)
    }
}

/// A handle on a running [`BybitSim`]: fault injection and counters. Cheap to clone; it does
/// not keep the simulator running.
#[derive(Clone, Debug)]
pub struct BybitHandle {
    shared: Arc<Shared>,
}

impl BybitHandle {
    /// The address the simulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The URL of `path` on the simulator, e.g. `url("/v5/public/linear")`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.shared.addr)
    }

    /// The URL of `endpoint` on the simulator.
    #[must_use]
    pub fn endpoint_url(&self, endpoint: Endpoint) -> String {
        self.url(endpoint.path())
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// How many times `topic` was subscribed (acked), over every connection.
    #[must_use]
    pub fn subscribes_for(&self, topic: &str) -> u64 {
        lock(&self.shared.subscribes_per_topic)
            .get(topic)
            .copied()
            .unwrap_or(0)
    }

    /// Every connection accepted (the last 256 closed ones and all open ones), in accept order.
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

    /// Resets every open connection: `SO_LINGER` 0 and drop, so the client sees a TCP RST, no
    /// close frame.
    pub async fn drop_all(&self) {
        self.command_all(Command::Reset).await;
    }

    /// Closes every open connection with a close frame carrying `code` and `reason`.
    pub async fn close_all(&self, code: u16, reason: &str) {
        self.command_all(Command::Close(code, reason.to_owned()))
            .await;
    }

    /// Loses the next book update of every symbol: the update is made (its `u` used) but never
    /// sent, so every book subscriber sees `u` jump by two.
    pub fn skip_book_update(&self) {
        self.shared.skip_book_update.store(true, Ordering::Relaxed);
    }

    /// Adds to the next book delta of every symbol a bid above the best ask (not applied to the
    /// simulator's own book): a client's local book is crossed until it takes a fresh snapshot.
    pub fn send_crossed_book(&self) {
        self.shared.crossed_book.store(true, Ordering::Relaxed);
    }

    /// Restarts every book at `u == 1`, as Bybit does when its service restarts: every
    /// subscriber gets a `snapshot` with `u: 1`, deltas continue from 2.
    pub fn restart_books(&self) {
        // Published under the market lock, so it comes before any update after the restart.
        let mut market = lock(&self.shared.market);
        let books = market.restart_books();
        self.shared.publish(Event::BooksRestarted(books));
        drop(market);
    }

    /// Silent (`true`): every connection stops reading and writing (no answers, no pushes, no
    /// pongs; the socket stays open, a half-open peer). `false` resumes.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.send_replace(silent);
    }

    /// Refuses the next `count` WebSocket handshakes with HTTP 503.
    pub fn refuse_handshakes(&self, count: u32) {
        self.shared.refuse.store(count, Ordering::Relaxed);
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

/// The Bybit simulator. Derefs to its [`BybitHandle`]; stops when dropped.
#[derive(Debug)]
pub struct BybitSim {
    handle: BybitHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl BybitSim {
    /// Starts a simulator with the default options.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(BybitSimOptions::default()).await
    }

    /// Starts a simulator with `options`.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start_with(options: BybitSimOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let accounts = options
            .accounts
            .iter()
            .map(|(key, secret)| (key.clone(), Account::new(secret.clone())))
            .collect();
        let shared = Arc::new(Shared {
            counters: AtomicCounters::default(),
            subscribes_per_topic: Mutex::new(HashMap::new()),
            connections: Mutex::new(BTreeMap::new()),
            market: Mutex::new(Market::new(options.seed)),
            accounts: Mutex::new(accounts),
            events,
            silent: watch::Sender::new(false),
            shutdown: watch::Sender::new(false),
            skip_book_update: AtomicBool::new(false),
            crossed_book: AtomicBool::new(false),
            refuse: AtomicU32::new(0),
            addr,
            options,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        let market = tokio::spawn(market::run(Arc::clone(&shared)));
        Ok(Self {
            handle: BybitHandle { shared },
            tasks: vec![accept, market],
        })
    }

    /// A handle that can be moved into other tasks.
    #[must_use]
    pub fn handle(&self) -> BybitHandle {
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

impl Deref for BybitSim {
    type Target = BybitHandle;
    fn deref(&self) -> &BybitHandle {
        &self.handle
    }
}

impl Drop for BybitSim {
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
fn register(shared: &Shared, id: u64, endpoint: Endpoint) -> mpsc::Receiver<Command> {
    let (tx, rx) = mpsc::channel(8);
    let mut all = lock(&shared.connections);
    all.insert(
        id,
        ConnectionEntry {
            info: ConnectionInfo::new(id, endpoint),
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
