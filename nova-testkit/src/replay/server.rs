//! Serving a recording back: a WebSocket server that plays the server's side and expects the
//! client's.
//!
//! [`ReplayServer`] binds `127.0.0.1:0`. Each connection a client opens plays the first
//! recorded connection not played yet whose request path (query aside) is the same, or failing
//! that the first one not played yet: with one endpoint, the *n*-th connection plays the *n*-th
//! recording; with several (a public and a private endpoint), each client gets its own. An
//! `open` record refused upstream is refused with the same HTTP status. For each recorded
//! frame, in order:
//!
//! - a server→client frame is sent (a `drop` drops the TCP connection, a `close` starts the
//!   close handshake); correlated fields are rewritten first (see [`Matcher::correlate`]), and
//!   the recorded upstreams' `scheme://host:port` (the header's `url` and `also`) are replaced
//!   by the server's own URL, so a client told to connect elsewhere (a resume URL) comes back;
//! - a client→server frame is *expected*: the server reads the client's next frame (skipping
//!   those the [`Matcher`] skips) and checks it. A match moves on; anything else becomes an
//!   [`Issue`] with the line number, and (by default) the server closes the connection with
//!   code 4000 and the issue as reason, since what follows would not make sense.
//!
//! With [`ReplayOptions::lookahead`] `n`, a client frame that matches one of the next `n`
//! expected frames instead is accepted early (clients that send several requests at once do
//! not always send them in the recorded order).
//!
//! **Timing**: frames are played as fast as the client allows ([`Pace::Fast`], the default), or
//! at the recorded pace ([`Pace::Recorded`], with a speed factor): each server frame is sent
//! no earlier than its recorded time since the connection opened, divided by the speed.
//!
//! After its last recorded frame a connection stays open; any client frame then is an
//! [`Issue::Unexpected`]. [`ReplayServer::finish`] waits for every connection to be played
//! (or a timeout), stops the server, and returns the [`ReplayReport`].
//!
//! ```
//! use std::time::Duration;
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::replay::{Direction, RecordedFrame, Recording, ReplayOptions, ReplayServer};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rec = Recording::new("wss://example.com/ws");
//! let c = rec.open("/ws", None);
//! let ms = Duration::from_millis;
//! rec.frame(c, ms(0), Direction::ServerToClient, RecordedFrame::Text(r#"{"hello":1}"#.into()));
//! rec.frame(c, ms(5), Direction::ClientToServer, RecordedFrame::Text(r#"{"sub":"btc"}"#.into()));
//! rec.frame(c, ms(9), Direction::ServerToClient, RecordedFrame::Text(r#"{"px":1}"#.into()));
//!
//! let server = ReplayServer::start(rec, ReplayOptions::default()).await?;
//! let tcp = tokio::net::TcpStream::connect(server.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async(server.url(), tcp).await?;
//! assert_eq!(ws.next().await.transpose()?, Some(Message::text(r#"{"hello":1}"#)));
//! ws.send(Message::text(r#"{ "sub": "btc" }"#)).await?; // JSON: spacing does not matter
//! assert_eq!(ws.next().await.transpose()?, Some(Message::text(r#"{"px":1}"#)));
//! let report = server.finish(Duration::from_secs(5)).await;
//! report.assert_ok();
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tracing::debug;

use super::format::{ConnectionScript, Direction, RecordedFrame, Recording, RecordingError};
use super::matcher::{Correlations, Matcher};
use super::report::{Issue, ReplayReport};
use super::wire::{from_message, to_message};

/// How fast server frames are played.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Pace {
    /// As fast as the client reads and answers.
    #[default]
    Fast,
    /// At the recorded pace times `speed` (`2.0` plays twice as fast; values ≤ 0 mean fast).
    Recorded {
        /// The speed factor.
        speed: f64,
    },
}

/// How a [`ReplayServer`] replays. `Default`: [`Matcher::json`], [`Pace::Fast`], 10 s to wait
/// for each expected client frame, no lookahead, stop a connection at its first issue.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// Compares client frames with the recorded ones.
    pub matcher: Matcher,
    /// How fast server frames are played.
    pub pace: Pace,
    /// How long to wait for each expected client frame.
    pub expect_timeout: Duration,
    /// How many expected client frames ahead a client frame may match (0: strict order).
    pub lookahead: usize,
    /// Close a connection at its first issue (`true`), or count the frame as the expected one
    /// and go on.
    pub stop_on_issue: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            matcher: Matcher::default(),
            pace: Pace::Fast,
            expect_timeout: Duration::from_secs(10),
            lookahead: 0,
            stop_on_issue: true,
        }
    }
}

impl ReplayOptions {
    /// Sets [`matcher`](Self::matcher).
    #[must_use]
    pub fn matcher(mut self, matcher: Matcher) -> Self {
        self.matcher = matcher;
        self
    }

    /// Sets [`pace`](Self::pace).
    #[must_use]
    pub fn pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }

    /// Sets [`expect_timeout`](Self::expect_timeout).
    #[must_use]
    pub fn expect_timeout(mut self, timeout: Duration) -> Self {
        self.expect_timeout = timeout;
        self
    }

    /// Sets [`lookahead`](Self::lookahead).
    #[must_use]
    pub fn lookahead(mut self, n: usize) -> Self {
        self.lookahead = n;
        self
    }

    /// Sets [`stop_on_issue`](Self::stop_on_issue).
    #[must_use]
    pub fn stop_on_issue(mut self, stop: bool) -> Self {
        self.stop_on_issue = stop;
        self
    }
}

/// The close code the server uses when it stops a connection at an issue.
pub const MISMATCH_CLOSE_CODE: u16 = 4000;

/// State shared by the accept loop, the connection tasks and the handle.
#[derive(Debug)]
struct Shared {
    scripts: Vec<ConnectionScript>,
    /// `(recorded upstream base, own URL)`: replaced in server text frames.
    redirects: Vec<(String, String)>,
    options: ReplayOptions,
    report: Mutex<ReplayReport>,
    /// For each recorded connection, the line it is waiting at (`None` once played).
    progress: Mutex<Vec<Option<usize>>>,
    /// For each recorded connection, whether a client connection has taken it.
    claimed: Mutex<Vec<bool>>,
    /// Recorded connections that ended (played, or stopped at an issue), for waiters.
    completed: watch::Sender<usize>,
    shutdown: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn issue(&self, issue: Issue) {
        debug!(%issue, "replay issue");
        lock(&self.report).issues.push(issue);
    }

    fn at(&self, conn: usize, line: usize) {
        if let Some(slot) = lock(&self.progress).get_mut(conn) {
            *slot = Some(line);
        }
    }
}

/// A server that plays a [`Recording`]. See the [module docs](self).
///
/// Dropping it stops the server without waiting.
#[derive(Debug)]
pub struct ReplayServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// What can go wrong starting a replay from a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The recording could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The server could not bind its socket.
    #[error("binding the replay server: {0}")]
    Bind(#[from] std::io::Error),
}

impl ReplayServer {
    /// Starts serving `recording` on `127.0.0.1` and a free port.
    pub async fn start(recording: Recording, options: ReplayOptions) -> std::io::Result<Self> {
        Self::start_named(recording, options, "memory".to_owned()).await
    }

    /// Loads a recording file and serves it; the report names the file.
    pub async fn load(path: impl AsRef<Path>, options: ReplayOptions) -> Result<Self, ReplayError> {
        let path = path.as_ref();
        let recording = Recording::load(path)?;
        Ok(Self::start_named(recording, options, path.display().to_string()).await?)
    }

    async fn start_named(
        recording: Recording,
        options: ReplayOptions,
        source: String,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let scripts = recording.connections();
        let own = format!("ws://127.0.0.1:{}", addr.port());
        let redirects = std::iter::once(&recording.header.url)
            .chain(&recording.header.also)
            .filter_map(|url| base_of(url))
            .map(|base| (base, own.clone()))
            .collect();
        let shared = Arc::new(Shared {
            redirects,
            progress: Mutex::new(scripts.iter().map(|s| Some(s.line)).collect()),
            claimed: Mutex::new(vec![false; scripts.len()]),
            report: Mutex::new(ReplayReport {
                source,
                recorded: scripts.len(),
                ..ReplayReport::default()
            }),
            scripts,
            options,
            completed: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        debug!(%addr, "replay server listening");
        Ok(ReplayServer {
            addr,
            shared,
            task: Mutex::new(Some(task)),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT` (any request path is accepted).
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.addr.port())
    }

    /// The report so far.
    pub fn report(&self) -> ReplayReport {
        lock(&self.shared.report).clone()
    }

    /// Waits until every recorded connection has been played to its end (or stopped at an
    /// issue), or `timeout`; returns whether they all ended.
    pub async fn wait_played(&self, timeout: Duration) -> bool {
        let all = self.shared.scripts.len();
        let mut completed = self.shared.completed.subscribe();
        tokio::time::timeout(timeout, completed.wait_for(|n| *n >= all))
            .await
            .is_ok()
    }

    /// Waits until at least `n` recorded connections have ended (played to their end, or
    /// stopped at an issue), or `timeout`; returns whether they had. For a test that must not
    /// go on before one connection is over (an old connection drained after a handover).
    pub async fn wait_ended(&self, n: usize, timeout: Duration) -> bool {
        let mut completed = self.shared.completed.subscribe();
        tokio::time::timeout(timeout, completed.wait_for(|done| *done >= n))
            .await
            .is_ok()
    }

    /// Waits up to `timeout` for every connection to be played, stops the server (dropping any
    /// open connection) and returns the report, with an issue for every recorded connection
    /// not played to its end.
    pub async fn finish(self, timeout: Duration) -> ReplayReport {
        self.wait_played(timeout).await;
        self.shared.shutdown.send_replace(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let progress = lock(&self.shared.progress).clone();
        let mut report = lock(&self.shared.report).clone();
        for (script, at) in self.shared.scripts.iter().zip(progress) {
            let conn = script.open.conn;
            // A connection stopped at an issue has that issue already.
            let Some(line) = at.filter(|_| !has_issue(&report, conn)) else {
                continue;
            };
            let issue = if line == script.line {
                Issue::NotConnected { conn, line }
            } else {
                Issue::Incomplete { conn, line }
            };
            report.issues.push(issue);
        }
        report
    }
}

fn has_issue(report: &ReplayReport, conn: u32) -> bool {
    report.issues.iter().any(|i| issue_conn(i) == Some(conn))
}

fn issue_conn(issue: &Issue) -> Option<u32> {
    match issue {
        Issue::Mismatch { conn, .. }
        | Issue::Missing { conn, .. }
        | Issue::Timeout { conn, .. }
        | Issue::Unexpected { conn, .. }
        | Issue::ClientGone { conn, .. }
        | Issue::NotConnected { conn, .. }
        | Issue::Incomplete { conn, .. } => Some(*conn),
        Issue::UnexpectedConnection { .. } => None,
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tasks = JoinSet::new();
    let mut next = 0usize;
    loop {
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tasks.spawn(handle(tcp, next, Arc::clone(&shared)));
                    next += 1;
                }
                Err(err) => {
                    debug!(%err, "replay accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    tasks.shutdown().await;
}

type Ws = WebSocketStream<TcpStream>;

/// Claims the recorded connection for a request to `path` (see the module docs).
fn claim(shared: &Shared, target: &str) -> Option<usize> {
    let path = |t: &str| {
        t.split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned()
    };
    let wanted = path(target);
    let mut claimed = lock(&shared.claimed);
    let free = |i: &usize| !claimed[*i];
    let all = 0..shared.scripts.len();
    let index = all
        .clone()
        .filter(free)
        .find(|i| path(&shared.scripts[*i].open.target) == wanted)
        .or_else(|| all.clone().find(free))?;
    claimed[index] = true;
    Some(index)
}

/// One accepted TCP connection; `accepted` is its number in accept order.
async fn handle(tcp: TcpStream, accepted: usize, shared: Arc<Shared>) {
    // Chosen in the handshake callback, from the request path.
    let chosen: Arc<Mutex<Option<usize>>> = Arc::default();
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = {
        let shared = Arc::clone(&shared);
        let chosen = Arc::clone(&chosen);
        move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
            let index = claim(&shared, &request.uri().to_string());
            *lock(&chosen) = index;
            let Some(open) = index.map(|i| &shared.scripts[i].open) else {
                return Ok(response);
            };
            if let Some(status) = open.refused {
                let mut refusal =
                    http::Response::new(Some(format!("refused as recorded: {status}")));
                *refusal.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                return Err(refusal);
            }
            let offered = request
                .headers()
                .get(SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if let Some(p) = &open.subprotocol {
                if offered.split(',').any(|o| o.trim() == p) {
                    if let Ok(value) = http::HeaderValue::from_str(p) {
                        response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
                    }
                }
            }
            Ok(response)
        }
    };
    let handshake = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::accept_hdr_async(tcp, callback),
    )
    .await;
    let index = *lock(&chosen);
    let script = index.map(|i| &shared.scripts[i]);
    let ws = match handshake {
        Ok(Ok(ws)) => ws,
        _ => {
            if let (Some(index), Some(script)) = (index, script) {
                lock(&shared.report).opened += 1;
                if script.open.refused.is_some() {
                    finish_script(&shared, script, index);
                } else {
                    // The handshake failed on the client's side: free the recording again.
                    lock(&shared.claimed)[index] = false;
                }
            }
            return;
        }
    };
    lock(&shared.report).opened += 1;
    let (Some(index), Some(script)) = (index, script) else {
        shared.issue(Issue::UnexpectedConnection { index: accepted });
        idle(ws, &shared).await;
        return;
    };
    let mut player = Player {
        ws: Some(ws),
        shared: &shared,
        script,
        index,
        correlations: Correlations::default(),
        client_closed: false,
    };
    match player.run().await {
        End::Played(last_line) => {
            finish_script(&shared, script, index);
            player.trailing(last_line).await;
        }
        End::Dropped => finish_script(&shared, script, index),
        End::Stopped => shared.completed.send_modify(|n| *n += 1),
    }
}

fn finish_script(shared: &Shared, script: &ConnectionScript, index: usize) {
    if let Some(slot) = lock(&shared.progress).get_mut(index) {
        *slot = None;
    }
    lock(&shared.report).completed += 1;
    shared.completed.send_modify(|n| *n += 1);
    debug!(conn = script.open.conn, "replayed connection complete");
}

/// Keeps an extra connection open, reading and discarding, until it ends or shutdown.
async fn idle(mut ws: Ws, shared: &Shared) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
            msg = ws.next() => if !matches!(msg, Some(Ok(_))) { return },
        }
    }
}

/// How a connection's script ended.
enum End {
    /// Every frame played; the last line.
    Played(usize),
    /// Played up to a recorded `drop`, which was done.
    Dropped,
    /// Stopped at an issue or by shutdown.
    Stopped,
}

/// What reading the client's next frame gave.
enum Read {
    Frame(RecordedFrame),
    Timeout,
    Shutdown,
}

struct Player<'a> {
    /// `None` once dropped.
    ws: Option<Ws>,
    shared: &'a Shared,
    script: &'a ConnectionScript,
    index: usize,
    correlations: Correlations,
    /// The client has sent its close frame (tungstenite has answered it).
    client_closed: bool,
}

impl Player<'_> {
    fn conn(&self) -> u32 {
        self.script.open.conn
    }

    async fn run(&mut self) -> End {
        let opts = &self.shared.options;
        let matcher = &opts.matcher;
        let start = Instant::now();
        // Client frames the matcher skips are not expected.
        let events: Vec<_> = self
            .script
            .frames
            .iter()
            .filter(|(_, f)| f.dir == Direction::ServerToClient || !matcher.skips(&f.frame))
            .collect();
        let mut early = vec![false; events.len()];
        let mut last_line = self.script.line;
        for (i, (line, record)) in events.iter().enumerate() {
            let line = *line;
            last_line = line;
            self.shared.at(self.index, line);
            if record.dir == Direction::ServerToClient {
                if let Pace::Recorded { speed } = opts.pace {
                    if speed > 0.0 {
                        tokio::time::sleep_until(start + record.at.div_f64(speed)).await;
                    }
                }
                let frame = redirect(
                    &self.shared.redirects,
                    self.correlations.apply(record.frame.clone()),
                );
                let Some(message) = to_message(&frame) else {
                    debug!(
                        conn = self.conn(),
                        line, "dropping the connection as recorded"
                    );
                    if let Some(ws) = self.ws.take() {
                        abort(ws);
                    }
                    return End::Dropped;
                };
                let is_close = matches!(message, Message::Close(_));
                if self.send(message).await.is_err() {
                    if is_close && self.client_closed {
                        // The close handshake is done already: tungstenite answered the
                        // client's close frame with its own.
                        continue;
                    }
                    self.shared.issue(Issue::ClientGone {
                        conn: self.conn(),
                        line,
                    });
                    return End::Stopped;
                }
                lock(&self.shared.report).sent += 1;
                continue;
            }
            if early[i] {
                continue;
            }
            let expected = &record.frame;
            loop {
                let got = match self.read(opts.expect_timeout).await {
                    Read::Frame(got) => got,
                    Read::Shutdown => return End::Stopped,
                    Read::Timeout => {
                        self.shared.issue(Issue::Timeout {
                            conn: self.conn(),
                            line,
                            expected: expected.describe(),
                            waited: opts.expect_timeout,
                        });
                        return End::Stopped;
                    }
                };
                self.client_closed |= matches!(got, RecordedFrame::Close(_));
                if matcher.skips(&got) {
                    continue;
                }
                let detail = match matcher.check(expected, &got) {
                    Ok(()) => {
                        self.matched(expected, &got);
                        break;
                    }
                    Err(detail) => detail,
                };
                // Lookahead: does it match one of the next expected client frames?
                let ahead = events
                    .iter()
                    .enumerate()
                    .skip(i + 1)
                    .filter(|(_, (_, r))| r.dir == Direction::ClientToServer)
                    .take(opts.lookahead)
                    .find(|(j, (_, r))| !early[*j] && matcher.check(&r.frame, &got).is_ok())
                    .map(|(j, (_, r))| (j, r.frame.clone()));
                if let Some((j, frame)) = ahead {
                    early[j] = true;
                    self.matched(&frame, &got);
                    continue;
                }
                let issue = if got == RecordedFrame::Drop
                    || (matches!(got, RecordedFrame::Close(_))
                        && !matches!(expected, RecordedFrame::Close(_)))
                {
                    Issue::Missing {
                        conn: self.conn(),
                        line,
                        expected: expected.describe(),
                        got: match &got {
                            RecordedFrame::Drop => "the connection ended".to_owned(),
                            other => format!("the client sent {}", other.describe()),
                        },
                    }
                } else {
                    Issue::Mismatch {
                        conn: self.conn(),
                        line,
                        expected: expected.describe(),
                        got: got.describe(),
                        detail,
                    }
                };
                self.shared.issue(issue);
                if opts.stop_on_issue || got == RecordedFrame::Drop {
                    let reason = format!("nova replay: issue at line {line}");
                    let _ = self.send(close_message(&reason)).await;
                    return End::Stopped;
                }
                break;
            }
        }
        End::Played(last_line)
    }

    async fn send(&mut self, message: Message) -> Result<(), ()> {
        match &mut self.ws {
            Some(ws) => ws.send(message).await.map_err(|_| ()),
            None => Err(()),
        }
    }

    fn matched(&mut self, expected: &RecordedFrame, got: &RecordedFrame) {
        let pairs = self.shared.options.matcher.correlations(expected, got);
        self.correlations.learn(pairs);
        lock(&self.shared.report).matched += 1;
    }

    /// The client's next frame (the end of the stream is [`RecordedFrame::Drop`], which a
    /// recorded `drop` matches).
    async fn read(&mut self, timeout: Duration) -> Read {
        let mut shutdown = self.shared.shutdown.subscribe();
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => Read::Shutdown,
            () = tokio::time::sleep(timeout) => Read::Timeout,
            msg = async { match &mut self.ws { Some(ws) => ws.next().await, None => None } } => match msg {
                Some(Ok(msg)) => from_message(msg).map_or(Read::Frame(RecordedFrame::Drop), Read::Frame),
                Some(Err(_)) | None => Read::Frame(RecordedFrame::Drop),
            },
        }
    }

    /// After the last recorded frame: anything but pings, pongs, skipped frames and a close is
    /// unexpected.
    async fn trailing(&mut self, after_line: usize) {
        let matcher = &self.shared.options.matcher;
        loop {
            match self.read(Duration::from_secs(3600)).await {
                Read::Shutdown | Read::Frame(RecordedFrame::Drop) => return,
                Read::Timeout => {}
                Read::Frame(RecordedFrame::Close(_)) => {}
                Read::Frame(f) if matcher.skips(&f) || f.is_ping_or_pong() => {}
                Read::Frame(f) => self.shared.issue(Issue::Unexpected {
                    conn: self.conn(),
                    after_line,
                    got: f.describe(),
                }),
            }
        }
    }
}

/// `scheme://authority` of a `ws://` or `wss://` URL.
fn base_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let scheme_len = url.len() - rest.len();
    Some(url[..scheme_len + end].to_owned()).filter(|b| b.len() > scheme_len)
}

/// A server frame with recorded upstream URLs pointed at this server.
fn redirect(redirects: &[(String, String)], frame: RecordedFrame) -> RecordedFrame {
    let RecordedFrame::Text(mut text) = frame else {
        return frame;
    };
    for (from, to) in redirects {
        if text.contains(from.as_str()) {
            text = text.replace(from.as_str(), to);
        }
    }
    RecordedFrame::Text(text)
}

fn close_message(reason: &str) -> Message {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    to_message(&RecordedFrame::close(MISMATCH_CLOSE_CODE, &reason[..end]))
        .unwrap_or(Message::Close(None))
}

/// Drops the socket with `SO_LINGER` 0, so the client sees a reset, like a dead peer.
fn abort(ws: Ws) {
    // `set_linger` is deprecated because a non-zero linger blocks on drop; zero does not.
    #[allow(deprecated)]
    let _ = ws.get_ref().set_linger(Some(Duration::ZERO));
    drop(ws);
}
