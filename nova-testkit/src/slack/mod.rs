//! A Slack Socket Mode simulator: `apps.connections.open` over HTTP and the WebSocket it
//! hands out, behaving as Slack's "Using Socket Mode" page says (PROTOCOLS.md section 4).
//!
//! [`SlackSim`] binds `127.0.0.1:0` and serves, on that one port:
//!
//! - **`POST /api/apps.connections.open`**: checks `Authorization: Bearer xapp-...` against
//!   [`app_tokens`](SlackSimOptions::app_tokens) and answers
//!   `{"ok":true,"url":"ws://127.0.0.1:PORT/link/?ticket=..&app_id=.."}` with a single-use
//!   ticket that expires after [`ticket_lifetime`](SlackSimOptions::ticket_lifetime);
//!   `{"ok":false,"error":"invalid_auth"}` for a wrong token, `not_authed` for none; `429` with
//!   `Retry-After` while [`SlackHandle::rate_limit_opens`] is in force.
//! - **The WebSocket at the ticket URL**: a reused, expired or unknown ticket is refused at the
//!   handshake (`401`). A connection gets `hello` (`num_connections`, `debug_info` with
//!   `approximate_connection_time`, `connection_info.app_id`), then envelopes
//!   (`events_api`, `slash_commands`, `interactive`, with `envelope_id`, `payload`,
//!   `accepts_response_payload`, and for `events_api` `retry_attempt`/`retry_reason`) pushed on
//!   demand ([`SlackHandle::push`]) or every [`envelope_interval`](SlackSimOptions::envelope_interval).
//! - **Acks** `{"envelope_id": ..}` (optionally with `payload`) are recorded per envelope
//!   ([`SlackHandle::records`]). An envelope not acked within
//!   [`ack_deadline`](SlackSimOptions::ack_deadline) (3 s by default) is redelivered with
//!   `retry_attempt + 1` to the next connection in turn (the same or another), at most
//!   [`max_redeliveries`](SlackSimOptions::max_redeliveries) times.
//! - **Disconnects**: a connection older than [`refresh_after`](SlackSimOptions::refresh_after)
//!   gets `refresh_requested` and is closed [`overlap`](SlackSimOptions::overlap) later (new
//!   envelopes go to other connections meanwhile); `warning`, `refresh_requested` and
//!   `link_disabled` on demand ([`SlackHandle::disconnect`]). At most
//!   [`max_connections`](SlackSimOptions::max_connections) (10) connections at once; one more
//!   gets `too_many_websockets` and is closed.
//! - **Faults on demand**: reset every connection ([`SlackHandle::drop_all`]), close them
//!   ([`SlackHandle::close_all`]), go silent ([`SlackHandle::set_silent`]).
//!
//! What Slack does not document and the simulator chooses (each configurable where it
//! matters): the ticket lifetime (30 s), the refusal status (401), `retry_reason` (`"timeout"`),
//! whether a redelivery keeps its envelope id ([`RetryIds`]), the number of redeliveries (3, as
//! the HTTP Events API), the close code after a refresh (1000), `too_many_websockets`.
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::slack::{EnvelopeSpec, SlackSim, TEST_APP_TOKEN, connections_open};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = SlackSim::start().await?;
//! let reply = connections_open(sim.addr(), Some(TEST_APP_TOKEN)).await?;
//! let url = reply.url().expect("a url").to_owned();
//! let tcp = tokio::net::TcpStream::connect(sim.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
//! let hello: serde_json::Value = serde_json::from_str(ws.next().await.expect("hello")?.to_text()?)?;
//! assert_eq!(hello["type"], "hello");
//!
//! let id = sim.push(EnvelopeSpec::slash_command("/hello", "")).expect("room");
//! let envelope: serde_json::Value = serde_json::from_str(ws.next().await.expect("envelope")?.to_text()?)?;
//! assert_eq!(envelope["envelope_id"], id.as_str());
//! ws.send(Message::text(format!(r#"{{"envelope_id":"{id}","payload":{{"text":"hi"}}}}"#))).await?;
//! assert!(sim.wait_for(std::time::Duration::from_secs(5), |c| c.acks_received == 1).await);
//! assert_eq!(sim.record(&id).expect("kept").acks, 1);
//! # Ok(())
//! # }
//! ```

mod connection;
mod dispatch;
mod envelope;
mod http;
mod ids;
mod ledger;
mod ticket;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

pub use envelope::{EnvelopeKind, EnvelopeSpec};
pub use http::{OpenReply, connections_open};
pub use ledger::{EnvelopeRecord, RetryIds};

use connection::Command;
use envelope::disconnect_text;
use ids::Ids;
use ledger::Ledger;
use ticket::Tickets;

/// The app-level token a default simulator accepts.
pub const TEST_APP_TOKEN: &str = "xapp-1-A0SIM-1-nova-test";
/// How many closed connections [`SlackHandle::connections`] remembers.
const CLOSED_CONNECTIONS_KEPT: usize = 1024;

/// How a [`SlackSim`] behaves. Every field has a default that follows Slack's docs where they
/// say something, and is noted as the simulator's choice where they do not.
///
/// ```
/// use std::time::Duration;
/// use nova_testkit::slack::SlackSimOptions;
///
/// let options = SlackSimOptions::default()
///     .with_ack_deadline(Duration::from_millis(300))
///     .with_refresh_after(Some(Duration::from_secs(2)))
///     .with_overlap(Duration::from_millis(500));
/// assert_eq!(options.max_connections, 10);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SlackSimOptions {
    /// The app-level tokens `apps.connections.open` accepts. Default: [`TEST_APP_TOKEN`].
    /// Never shown by `Debug`.
    pub app_tokens: Vec<String>,
    /// `connection_info.app_id` and the `app_id` of the URL. Default `A0SIM`.
    pub app_id: String,
    /// How long a ticket may wait before its handshake. Default 30 s (the simulator's choice).
    pub ticket_lifetime: Duration,
    /// How long a client has to ack an envelope. Default 3 s.
    pub ack_deadline: Duration,
    /// How many times an unacked envelope is redelivered before it is given up. Default 3.
    pub max_redeliveries: u32,
    /// Whether redeliveries keep their envelope id. Default [`RetryIds::SameEnvelopeId`].
    pub retry_ids: RetryIds,
    /// The connection age at which the simulator sends `refresh_requested`. `None`: never.
    /// Default one hour; reported as `approximate_connection_time`.
    pub refresh_after: Option<Duration>,
    /// When set, a `warning` goes out this long before each `refresh_requested`. Default none.
    pub warning_before_refresh: Option<Duration>,
    /// How long a connection told to go (`refresh_requested`, `warning`) stays open before the
    /// simulator closes it. Default 10 s.
    pub overlap: Duration,
    /// How many connections may be open at once. Default 10 (Slack's limit).
    pub max_connections: usize,
    /// When set, a generated envelope is pushed this often. Default none.
    pub envelope_interval: Option<Duration>,
    /// The types generated envelopes cycle through. Default all three.
    pub tick_kinds: Vec<EnvelopeKind>,
    /// How often the dispatcher checks deadlines and connection ages. Default 20 ms.
    pub check_interval: Duration,
    /// How many envelopes may be queued or in flight; a push beyond is refused. Default 10,000.
    pub max_unfinished: usize,
    /// How many envelope records are kept (oldest finished ones forgotten first).
    /// Default 100,000.
    pub records_kept: usize,
}

impl fmt::Debug for SlackSimOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSimOptions")
            .field(
                "app_tokens",
                &format_args!("[{} redacted]", self.app_tokens.len()),
            )
            .field("app_id", &self.app_id)
            .field("ticket_lifetime", &self.ticket_lifetime)
            .field("ack_deadline", &self.ack_deadline)
            .field("max_redeliveries", &self.max_redeliveries)
            .field("retry_ids", &self.retry_ids)
            .field("refresh_after", &self.refresh_after)
            .field("warning_before_refresh", &self.warning_before_refresh)
            .field("overlap", &self.overlap)
            .field("max_connections", &self.max_connections)
            .field("envelope_interval", &self.envelope_interval)
            .field("tick_kinds", &self.tick_kinds)
            .field("check_interval", &self.check_interval)
            .field("max_unfinished", &self.max_unfinished)
            .field("records_kept", &self.records_kept)
            .finish()
    }
}

impl Default for SlackSimOptions {
    fn default() -> Self {
        Self {
            app_tokens: vec![TEST_APP_TOKEN.to_owned()],
            app_id: "A0SIM".to_owned(),
            ticket_lifetime: Duration::from_secs(30),
            ack_deadline: Duration::from_secs(3),
            max_redeliveries: 3,
            retry_ids: RetryIds::default(),
            refresh_after: Some(Duration::from_secs(3600)),
            warning_before_refresh: None,
            overlap: Duration::from_secs(10),
            max_connections: 10,
            envelope_interval: None,
            tick_kinds: vec![
                EnvelopeKind::EventsApi,
                EnvelopeKind::SlashCommands,
                EnvelopeKind::Interactive,
            ],
            check_interval: Duration::from_millis(20),
            max_unfinished: 10_000,
            records_kept: 100_000,
        }
    }
}

impl SlackSimOptions {
    /// Adds a token to [`app_tokens`](Self::app_tokens).
    #[must_use]
    pub fn with_app_token(mut self, token: impl Into<String>) -> Self {
        self.app_tokens.push(token.into());
        self
    }

    /// Sets [`ticket_lifetime`](Self::ticket_lifetime).
    #[must_use]
    pub fn with_ticket_lifetime(mut self, lifetime: Duration) -> Self {
        self.ticket_lifetime = lifetime;
        self
    }

    /// Sets [`ack_deadline`](Self::ack_deadline).
    #[must_use]
    pub fn with_ack_deadline(mut self, deadline: Duration) -> Self {
        self.ack_deadline = deadline;
        self
    }

    /// Sets [`max_redeliveries`](Self::max_redeliveries).
    #[must_use]
    pub fn with_max_redeliveries(mut self, count: u32) -> Self {
        self.max_redeliveries = count;
        self
    }

    /// Sets [`retry_ids`](Self::retry_ids).
    #[must_use]
    pub fn with_retry_ids(mut self, retry_ids: RetryIds) -> Self {
        self.retry_ids = retry_ids;
        self
    }

    /// Sets [`refresh_after`](Self::refresh_after).
    #[must_use]
    pub fn with_refresh_after(mut self, age: Option<Duration>) -> Self {
        self.refresh_after = age;
        self
    }

    /// Sets [`warning_before_refresh`](Self::warning_before_refresh).
    #[must_use]
    pub fn with_warning_before_refresh(mut self, lead: Option<Duration>) -> Self {
        self.warning_before_refresh = lead;
        self
    }

    /// Sets [`overlap`](Self::overlap).
    #[must_use]
    pub fn with_overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, count: usize) -> Self {
        self.max_connections = count;
        self
    }

    /// Sets [`envelope_interval`](Self::envelope_interval).
    #[must_use]
    pub fn with_envelope_interval(mut self, interval: Option<Duration>) -> Self {
        self.envelope_interval = interval;
        self
    }

    /// Sets [`tick_kinds`](Self::tick_kinds).
    #[must_use]
    pub fn with_tick_kinds(mut self, kinds: Vec<EnvelopeKind>) -> Self {
        self.tick_kinds = kinds;
        self
    }

    /// Sets [`max_unfinished`](Self::max_unfinished).
    #[must_use]
    pub fn with_max_unfinished(mut self, count: usize) -> Self {
        self.max_unfinished = count;
        self
    }
}

/// What the simulator has counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// `apps.connections.open` calls answered with a URL.
    pub opens: u64,
    /// `apps.connections.open` calls answered `ok: false` (bad or missing token).
    pub open_failures: u64,
    /// `apps.connections.open` calls answered `429`.
    pub rate_limited: u64,
    /// WebSocket connections registered (handshake accepted, under the connection limit).
    pub connections: u64,
    /// Handshakes refused for their ticket (unknown, reused or expired).
    pub refused_handshakes: u64,
    /// Of those, tickets used a second time.
    pub tickets_reused: u64,
    /// Of those, tickets past their lifetime.
    pub tickets_expired: u64,
    /// Connections turned away with `too_many_websockets`.
    pub too_many_websockets: u64,
    /// `hello` messages sent.
    pub hellos: u64,
    /// Envelopes pushed (on demand or by the tick).
    pub envelopes_pushed: u64,
    /// Pushes refused because [`max_unfinished`](SlackSimOptions::max_unfinished) envelopes
    /// were unfinished.
    pub pushes_refused: u64,
    /// Envelope deliveries handed to a connection (first deliveries and redeliveries).
    pub envelopes_sent: u64,
    /// Of those, redeliveries (`retry_attempt > 0`).
    pub redeliveries: u64,
    /// Envelopes that ran out of redeliveries unacked.
    pub given_up: u64,
    /// Ack messages received.
    pub acks_received: u64,
    /// Acks of an envelope already acked.
    pub duplicate_acks: u64,
    /// Acks naming an envelope id the simulator never sent (or forgot).
    pub unknown_acks: u64,
    /// Text messages from clients that were not acks.
    pub other_messages: u64,
    /// Texts (envelopes, disconnects) a silent connection lost.
    pub lost_while_silent: u64,
    /// `disconnect` messages with reason `warning`.
    pub warnings_sent: u64,
    /// `disconnect` messages with reason `refresh_requested`.
    pub refreshes_requested: u64,
    /// `disconnect` messages with reason `link_disabled`.
    pub links_disabled: u64,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    opens: AtomicU64,
    open_failures: AtomicU64,
    rate_limited: AtomicU64,
    connections: AtomicU64,
    refused_handshakes: AtomicU64,
    tickets_reused: AtomicU64,
    tickets_expired: AtomicU64,
    too_many_websockets: AtomicU64,
    hellos: AtomicU64,
    envelopes_pushed: AtomicU64,
    pushes_refused: AtomicU64,
    envelopes_sent: AtomicU64,
    redeliveries: AtomicU64,
    given_up: AtomicU64,
    acks_received: AtomicU64,
    duplicate_acks: AtomicU64,
    unknown_acks: AtomicU64,
    other_messages: AtomicU64,
    lost_while_silent: AtomicU64,
    warnings_sent: AtomicU64,
    refreshes_requested: AtomicU64,
    links_disabled: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            opens: get(&self.opens),
            open_failures: get(&self.open_failures),
            rate_limited: get(&self.rate_limited),
            connections: get(&self.connections),
            refused_handshakes: get(&self.refused_handshakes),
            tickets_reused: get(&self.tickets_reused),
            tickets_expired: get(&self.tickets_expired),
            too_many_websockets: get(&self.too_many_websockets),
            hellos: get(&self.hellos),
            envelopes_pushed: get(&self.envelopes_pushed),
            pushes_refused: get(&self.pushes_refused),
            envelopes_sent: get(&self.envelopes_sent),
            redeliveries: get(&self.redeliveries),
            given_up: get(&self.given_up),
            acks_received: get(&self.acks_received),
            duplicate_acks: get(&self.duplicate_acks),
            unknown_acks: get(&self.unknown_acks),
            other_messages: get(&self.other_messages),
            lost_while_silent: get(&self.lost_while_silent),
            warnings_sent: get(&self.warnings_sent),
            refreshes_requested: get(&self.refreshes_requested),
            links_disabled: get(&self.links_disabled),
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

/// What the simulator knows about one WebSocket connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's number, from 0 in registration order.
    pub id: u64,
    /// Whether it is still open.
    pub open: bool,
    /// Whether it got its `hello` (and may get envelopes).
    pub ready: bool,
    /// Whether it was told to go (`refresh_requested`, `warning`, `link_disabled`): it gets no
    /// new envelopes while another connection is ready.
    pub draining: bool,
    /// Envelope deliveries handed to it.
    pub envelopes_sent: u64,
    /// Acks received on it.
    pub acks_received: u64,
}

/// A `disconnect` the simulator can send on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnect {
    /// `warning`: the connection is closed [`overlap`](SlackSimOptions::overlap) later.
    Warning,
    /// `refresh_requested`: the connection is closed [`overlap`](SlackSimOptions::overlap)
    /// later.
    RefreshRequested,
    /// `link_disabled`: Socket Mode was turned off; the connection is closed at once.
    LinkDisabled,
}

/// The simulator's rate limit on `apps.connections.open`.
#[derive(Debug)]
struct RateLimit {
    remaining: u32,
    retry_after: Duration,
}

/// One connection in the registry.
#[derive(Debug)]
struct Conn {
    info: ConnectionInfo,
    commands: Option<mpsc::Sender<Command>>,
    opened: Instant,
    warned: bool,
    refresh_sent: bool,
    close_at: Option<Instant>,
    close_requested: bool,
}

/// Everything behind the one state lock.
#[derive(Debug)]
struct State {
    conns: BTreeMap<u64, Conn>,
    next_connection: u64,
    ledger: Ledger,
    tickets: Tickets,
    ids: Ids,
    rate_limit: Option<RateLimit>,
    round_robin: u64,
    generated: u64,
    next_event: u64,
}

impl State {
    /// Pushes `spec`, assigning its envelope id (and event id, for `events_api` without one).
    fn push(&mut self, mut spec: EnvelopeSpec, max_unfinished: usize) -> Option<String> {
        if spec.kind == EnvelopeKind::EventsApi {
            if let Some(payload) = spec.payload.as_object_mut() {
                if !payload.contains_key("event_id") {
                    self.next_event += 1;
                    let id = format!("Ev{:08}", self.next_event);
                    payload.insert("event_id".to_owned(), id.into());
                }
            }
        }
        let envelope_id = self.ids.uuid();
        self.ledger
            .push(spec, envelope_id.clone(), max_unfinished)
            .map(|_| envelope_id)
    }

    /// Forgets the oldest closed connections beyond [`CLOSED_CONNECTIONS_KEPT`].
    fn trim_connections(&mut self) {
        let closed: Vec<u64> = self
            .conns
            .values()
            .filter(|c| !c.info.open)
            .map(|c| c.info.id)
            .collect();
        if closed.len() > CLOSED_CONNECTIONS_KEPT {
            for old in &closed[..closed.len() - CLOSED_CONNECTIONS_KEPT] {
                self.conns.remove(old);
            }
        }
    }
}

/// Everything the tasks and the handle share.
#[derive(Debug)]
struct Shared {
    options: SlackSimOptions,
    addr: SocketAddr,
    counters: AtomicCounters,
    state: Mutex<State>,
    /// Wakes the dispatcher for an immediate step.
    wake: Notify,
    silent: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn link_url(&self, ticket: &str) -> String {
        format!(
            "ws://{}/link/?ticket={ticket}&app_id={}",
            self.addr, self.options.app_id
        )
    }

    fn approximate_connection_time(&self) -> u64 {
        // The Python SDK's mock reports 18060 s; used when the simulator never refreshes.
        self.options.refresh_after.map_or(18_060, |d| d.as_secs())
    }

    fn with_connection(&self, id: u64, f: impl FnOnce(&mut Conn)) {
        if let Some(conn) = lock(&self.state).conns.get_mut(&id) {
            f(conn);
        }
    }
}

/// A handle on a running [`SlackSim`]: pushes, disconnects, faults, counters and records.
/// Cheap to clone; it does not keep the simulator running.
#[derive(Clone, Debug)]
pub struct SlackHandle {
    shared: Arc<Shared>,
}

impl SlackHandle {
    /// The address the simulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The Web API base URL: `http://127.0.0.1:PORT/api` (Slack's is `https://slack.com/api`).
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.shared.addr)
    }

    /// Issues a ticket without the HTTP call and returns its WebSocket URL.
    #[must_use]
    pub fn issue_url(&self) -> String {
        let mut state = lock(&self.shared.state);
        let ticket = state.ids.ticket();
        state.tickets.issue(
            ticket.clone(),
            Instant::now(),
            self.shared.options.ticket_lifetime,
        );
        drop(state);
        self.shared.link_url(&ticket)
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Every connection registered (the last 1024 closed ones and all open ones), in order.
    #[must_use]
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        lock(&self.shared.state)
            .conns
            .values()
            .map(|c| c.info.clone())
            .collect()
    }

    /// The connections open now.
    #[must_use]
    pub fn open_connections(&self) -> Vec<ConnectionInfo> {
        self.connections().into_iter().filter(|c| c.open).collect()
    }

    /// Pushes an envelope; returns its envelope id, or `None` when
    /// [`max_unfinished`](SlackSimOptions::max_unfinished) envelopes are unfinished. It goes
    /// out at once when a connection is ready, otherwise when one is.
    pub fn push(&self, spec: EnvelopeSpec) -> Option<String> {
        let pushed = lock(&self.shared.state).push(spec, self.shared.options.max_unfinished);
        if pushed.is_some() {
            bump(&self.shared.counters.envelopes_pushed);
            self.shared.wake.notify_one();
        } else {
            bump(&self.shared.counters.pushes_refused);
        }
        pushed
    }

    /// Every envelope record kept, in push order.
    #[must_use]
    pub fn records(&self) -> Vec<EnvelopeRecord> {
        lock(&self.shared.state).ledger.records()
    }

    /// The record of the envelope that went out under `envelope_id`.
    #[must_use]
    pub fn record(&self, envelope_id: &str) -> Option<EnvelopeRecord> {
        lock(&self.shared.state).ledger.record(envelope_id)
    }

    /// How many acks named the envelope that went out under `envelope_id` (0 when unknown).
    #[must_use]
    pub fn acks_of(&self, envelope_id: &str) -> u32 {
        self.record(envelope_id).map_or(0, |r| r.acks)
    }

    /// The records not acked (queued, in flight, or given up).
    #[must_use]
    pub fn unacked(&self) -> Vec<EnvelopeRecord> {
        self.records().into_iter().filter(|r| !r.acked).collect()
    }

    /// The records acked more than once.
    #[must_use]
    pub fn acked_more_than_once(&self) -> Vec<EnvelopeRecord> {
        self.records().into_iter().filter(|r| r.acks > 1).collect()
    }

    /// How many envelopes are queued or in flight.
    #[must_use]
    pub fn unfinished(&self) -> usize {
        lock(&self.shared.state).ledger.unfinished()
    }

    /// Sends a `disconnect` with `reason` on connection `id` (see [`Disconnect`] for when it
    /// is then closed). Returns whether the connection was open.
    pub fn disconnect(&self, id: u64, reason: Disconnect) -> bool {
        let sent = self.disconnect_where(reason, |c| c.info.id == id) > 0;
        self.shared.wake.notify_one();
        sent
    }

    /// Sends a `disconnect` with `reason` on every open connection; returns how many.
    pub fn disconnect_all(&self, reason: Disconnect) -> usize {
        let sent = self.disconnect_where(reason, |_| true);
        self.shared.wake.notify_one();
        sent
    }

    fn disconnect_where(&self, reason: Disconnect, select: impl Fn(&Conn) -> bool) -> usize {
        let now = Instant::now();
        let counters = &self.shared.counters;
        let mut state = lock(&self.shared.state);
        let mut sent = 0;
        for (&id, conn) in &mut state.conns {
            let Some(commands) = conn.commands.as_ref() else {
                continue;
            };
            if !select(conn) {
                continue;
            }
            let (text, counter) = match reason {
                Disconnect::Warning => ("warning", &counters.warnings_sent),
                Disconnect::RefreshRequested => {
                    ("refresh_requested", &counters.refreshes_requested)
                }
                Disconnect::LinkDisabled => ("link_disabled", &counters.links_disabled),
            };
            if commands
                .try_send(Command::Text(disconnect_text(id, text)))
                .is_err()
            {
                continue;
            }
            bump(counter);
            sent += 1;
            conn.info.draining = true;
            if reason == Disconnect::LinkDisabled {
                let close = Command::Close(1000, "link disabled".to_owned());
                conn.close_requested = commands.try_send(close).is_ok();
                conn.close_at = Some(now);
            } else {
                let close_at = now + self.shared.options.overlap;
                conn.close_at = Some(conn.close_at.map_or(close_at, |at| at.min(close_at)));
            }
        }
        sent
    }

    /// Answers the next `count` `apps.connections.open` calls with `429` and
    /// `Retry-After: retry_after` (whole seconds).
    pub fn rate_limit_opens(&self, count: u32, retry_after: Duration) {
        lock(&self.shared.state).rate_limit = Some(RateLimit {
            remaining: count,
            retry_after,
        });
    }

    /// Resets every open connection: the TCP socket closes with RST, no close frame.
    pub async fn drop_all(&self) {
        self.command_all(Command::Drop).await;
    }

    /// Closes every open connection with a close frame carrying `code` and `reason`.
    pub async fn close_all(&self, code: u16, reason: &str) {
        self.command_all(Command::Close(code, reason.to_owned()))
            .await;
    }

    /// Silent (`true`): every connection stops reading and writing (no envelopes, no acks
    /// read, no pongs; the socket stays open, a half-open peer). `false` resumes.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.send_replace(silent);
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
        let senders: Vec<_> = lock(&self.shared.state)
            .conns
            .values()
            .filter(|c| c.info.open)
            .filter_map(|c| c.commands.clone())
            .collect();
        for sender in senders {
            // A connection that ended meanwhile has nothing left to close.
            let _ = sender.send(command.clone()).await;
        }
    }
}

/// The Socket Mode simulator. Derefs to its [`SlackHandle`]; stops when dropped.
#[derive(Debug)]
pub struct SlackSim {
    handle: SlackHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl SlackSim {
    /// Starts a simulator with the default options.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(SlackSimOptions::default()).await
    }

    /// Starts a simulator with `options`.
    ///
    /// # Errors
    /// When `127.0.0.1:0` cannot be bound.
    pub async fn start_with(options: SlackSimOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            addr,
            counters: AtomicCounters::default(),
            state: Mutex::new(State {
                conns: BTreeMap::new(),
                next_connection: 0,
                ledger: Ledger::default(),
                tickets: Tickets::default(),
                ids: Ids::new(),
                rate_limit: None,
                round_robin: 0,
                generated: 0,
                next_event: 0,
            }),
            wake: Notify::new(),
            silent: watch::Sender::new(false),
            shutdown: watch::Sender::new(false),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        let dispatcher = tokio::spawn(dispatch::run(Arc::clone(&shared)));
        Ok(Self {
            handle: SlackHandle { shared },
            tasks: vec![accept, dispatcher],
        })
    }

    /// A handle that can be moved into other tasks.
    #[must_use]
    pub fn handle(&self) -> SlackHandle {
        self.handle.clone()
    }

    /// Stops accepting and dispatching, and closes every connection.
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

impl Deref for SlackSim {
    type Target = SlackHandle;
    fn deref(&self) -> &SlackHandle {
        &self.handle
    }
}

impl Drop for SlackSim {
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Out of file descriptors and the like: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(http::serve(stream, Arc::clone(&shared)));
    }
}
