//! Recording a live session: a WebSocket relay between a client and its real server.
//!
//! [`Relay::start`] binds `127.0.0.1:0` and, for each client connection:
//!
//! 1. reads the client's upgrade request (path, query, headers) without consuming it;
//! 2. opens the same request to the upstream (`ws://` or `wss://`, TLS by rustls with the
//!    Mozilla roots, or [`RelayOptions::tls`]): the upstream URL's path and query if it has
//!    any, else the client's; the client's headers are forwarded (except those of the
//!    handshake itself), and the upstream's subprotocol is agreed with the client. An upstream
//!    refusal (say `503`) is passed on to the client with its status, and recorded; an
//!    upstream that cannot be reached is answered (and recorded) as `502`, or `504` when it
//!    does not answer in time;
//! 3. relays every frame both ways, unchanged, and records each one (after [`Redactions`]) with
//!    its direction and its time since the connection opened. A connection that ends without a
//!    close handshake on one side is recorded as a `drop` and dropped on the other side too.
//!
//! **Several upstreams**: a platform may send the client elsewhere (Discord's READY names a
//! `resume_gateway_url`). Each URL given to [`RelayOptions::also`] gets a listener of its own;
//! in server frames forwarded to the client, every upstream's `scheme://host:port` is replaced
//! by its listener's URL, so the client's next connection comes through the relay too. The
//! recording keeps the frames as the upstream sent them, and its header lists the extra URLs
//! (`also`), which a [`ReplayServer`](super::ReplayServer) points back at itself.
//!
//! Records go to memory ([`Relay::recording`], at most [`RelayOptions::max_records`] of them)
//! and, with [`RelayOptions::file`], to a JSON Lines file as they happen (flushed after each
//! record, so a crash keeps what was seen). This is how a user captures a production incident:
//! point the client at [`Relay::url`] instead of the platform, run until the incident
//! reproduces, and keep the file (see the crate's README).
//!
//! ```
//! use std::time::Duration;
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::TestServer;
//! use nova_testkit::replay::{Direction, RecordedFrame, Redactions, Relay, RelayOptions};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let upstream = TestServer::start().await?; // echoes
//! let options = RelayOptions::default().redactions(Redactions::new().string("s3cr3t"));
//! let relay = Relay::start(&upstream.url(), options).await?;
//! let tcp = tokio::net::TcpStream::connect(relay.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async(relay.url(), tcp).await?;
//! ws.send(Message::text("key=s3cr3t")).await?;
//! assert_eq!(ws.next().await.transpose()?, Some(Message::text("key=s3cr3t")));
//! ws.close(None).await?;
//! let recording = relay.finish(Duration::from_secs(5)).await;
//! let frames = &recording.connections()[0].frames;
//! assert_eq!(frames[0].1.dir, Direction::ClientToServer);
//! assert_eq!(frames[1].1.frame, RecordedFrame::Text("key=<redacted>".into()));
//! # Ok(()) }
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::SEC_WEBSOCKET_PROTOCOL;
use http::{HeaderValue, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tracing::debug;

use super::format::{
    Direction, FrameRecord, Open, Record, RecordedFrame, Recording, RecordingError, whole_micros,
};
use super::redact::{Redactions, redact_url};
use super::wire::{from_message, to_message};

/// How long the client has to send its upgrade request, and the upstream to answer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest upgrade request the relay reads.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// How long the other side may take to finish after one side completed a close handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Request headers that belong to the handshake itself, not forwarded upstream.
const HOP_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "content-length",
];

/// How a [`Relay`] records. `Default`: no redaction, memory only, Mozilla roots for `wss://`,
/// at most 1,000,000 records in memory.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RelayOptions {
    /// Applied to every recorded frame (never to forwarded ones).
    pub redactions: Redactions,
    /// Also write the recording to this file as it happens (created or replaced).
    pub file: Option<PathBuf>,
    /// The TLS client configuration for `wss://` upstreams.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The most records kept in memory; later ones still go to the file.
    pub max_records: usize,
    /// The header's note.
    pub note: Option<String>,
    /// More upstreams to relay (see the module docs).
    pub also: Vec<String>,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            redactions: Redactions::new(),
            file: None,
            tls: None,
            max_records: 1_000_000,
            note: None,
            also: Vec::new(),
        }
    }
}

impl RelayOptions {
    /// Sets [`redactions`](Self::redactions).
    #[must_use]
    pub fn redactions(mut self, redactions: Redactions) -> Self {
        self.redactions = redactions;
        self
    }

    /// Sets [`file`](Self::file).
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Sets [`max_records`](Self::max_records).
    #[must_use]
    pub fn max_records(mut self, max: usize) -> Self {
        self.max_records = max;
        self
    }

    /// Adds an upstream to [`also`](Self::also).
    #[must_use]
    pub fn also(mut self, upstream: impl Into<String>) -> Self {
        self.also.push(upstream.into());
        self
    }

    /// Sets [`note`](Self::note).
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// What can go wrong starting a relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The upstream URL is not a `ws://` or `wss://` URL with a host.
    #[error("invalid upstream URL {url:?}: {reason}")]
    Url {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("binding the relay: {0}")]
    Bind(#[from] std::io::Error),
    /// The recording file could not be written.
    #[error(transparent)]
    File(#[from] RecordingError),
}

/// The parsed upstream.
#[derive(Debug, Clone)]
struct Upstream {
    url: Uri,
    tls: bool,
    host: String,
    port: u16,
}

/// An upstream and the listener for it.
#[derive(Debug, Clone)]
struct Route {
    upstream: Upstream,
    /// `scheme://authority` of the upstream, as servers write it in frames.
    upstream_base: String,
    /// `ws://127.0.0.1:PORT` of the listener.
    relay_url: String,
}

/// State shared by the relay's tasks and its handle.
struct Shared {
    routes: Vec<Route>,
    options: RelayOptions,
    tls: TlsConnector,
    started: Instant,
    recording: Mutex<Recording>,
    file: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    next_conn: Mutex<u32>,
    /// Connections currently relayed, for waiters.
    live: watch::Sender<usize>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("routes", &self.routes.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn record(&self, record: Record) {
        let line = Recording::record_line(&record);
        {
            let mut rec = lock(&self.recording);
            if rec.records.len() < self.options.max_records {
                rec.records.push(record);
            }
        }
        if let Some(file) = lock(&self.file).as_mut() {
            if let Err(err) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                debug!(%err, "writing the recording file failed");
            }
        }
    }

    /// A server frame as forwarded to the client: upstream URLs point at the relay.
    fn to_client(&self, frame: &RecordedFrame) -> Option<RecordedFrame> {
        let RecordedFrame::Text(text) = frame else {
            return None;
        };
        let mut out: Option<String> = None;
        for route in &self.routes {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(&route.upstream_base) {
                out = Some(current.replace(&route.upstream_base, &route.relay_url));
            }
        }
        out.map(RecordedFrame::Text)
    }

    fn frame(&self, conn: u32, opened: Instant, dir: Direction, frame: RecordedFrame) {
        let frame = self.options.redactions.apply(frame);
        self.record(Record::Frame(FrameRecord {
            conn,
            at: whole_micros(opened.elapsed()),
            dir,
            frame,
        }));
    }
}

/// A recording relay. See the [module docs](self).
///
/// Dropping it stops it without waiting.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn default_tls() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    match config {
        Ok(config) => Arc::new(config),
        // The ring provider supports the default versions; keep a config that fails the
        // handshake rather than panic.
        Err(_) => Arc::new(
            rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    }
}

fn parse_upstream(url: &str) -> Result<Upstream, RelayError> {
    let error = |reason: &str| RelayError::Url {
        url: redact_url(url),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| error("not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(error("the scheme must be ws or wss")),
    };
    let host = uri.host().ok_or_else(|| error("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Upstream {
        url: uri,
        tls,
        host,
        port,
    })
}

/// `scheme://authority` of a parsed upstream.
fn base_of(upstream: &Upstream) -> String {
    let scheme = if upstream.tls { "wss" } else { "ws" };
    let authority = upstream.url.authority().map_or("", |a| a.as_str());
    format!("{scheme}://{authority}")
}

impl Relay {
    /// Starts a relay to `upstream` (and [`RelayOptions::also`]) on `127.0.0.1` and free ports.
    pub async fn start(upstream: &str, options: RelayOptions) -> Result<Relay, RelayError> {
        let mut upstreams = vec![parse_upstream(upstream)?];
        for also in &options.also {
            upstreams.push(parse_upstream(also)?);
        }
        let mut recording = Recording::new(upstream);
        recording.header.note.clone_from(&options.note);
        recording.header.also = options.also.iter().map(|u| redact_url(u)).collect();
        let file = match &options.file {
            None => None,
            Some(path) => {
                let io = |source| RecordingError::Io {
                    path: path.clone(),
                    source,
                };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
                writeln!(file, "{}", recording.header_line())
                    .and_then(|()| file.flush())
                    .map_err(io)?;
                Some(file)
            }
        };
        let mut listeners = Vec::new();
        let mut routes = Vec::new();
        for upstream in upstreams {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            routes.push(Route {
                upstream_base: base_of(&upstream),
                relay_url: format!("ws://127.0.0.1:{}", addr.port()),
                upstream,
            });
            listeners.push(listener);
        }
        let addr = listeners[0].local_addr()?;
        let tls = TlsConnector::from(options.tls.clone().unwrap_or_else(default_tls));
        let shared = Arc::new(Shared {
            routes,
            options,
            tls,
            started: Instant::now(),
            recording: Mutex::new(recording),
            file: Mutex::new(file),
            next_conn: Mutex::new(0),
            live: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        });
        let tasks = listeners
            .into_iter()
            .enumerate()
            .map(|(route, listener)| {
                tokio::spawn(accept_loop(listener, route, Arc::clone(&shared)))
            })
            .collect();
        debug!(%addr, "relay listening");
        Ok(Relay {
            addr,
            shared,
            tasks: Mutex::new(tasks),
        })
    }

    /// The address it listens on for the main upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT`: where the client connects instead of the upstream (a path and
    /// query added to it are forwarded when the upstream URL has none).
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.addr.port())
    }

    /// The relay's URL for the `i`-th [`RelayOptions::also`] upstream.
    pub fn also_url(&self, i: usize) -> Option<String> {
        self.shared.routes.get(i + 1).map(|r| r.relay_url.clone())
    }

    /// What has been recorded so far.
    pub fn recording(&self) -> Recording {
        lock(&self.shared.recording).clone()
    }

    /// The number of connections being relayed now.
    pub fn live_connections(&self) -> usize {
        *self.shared.live.borrow()
    }

    /// Waits until no connection is being relayed, or `timeout`; returns whether none is.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut live = self.shared.live.subscribe();
        tokio::time::timeout(timeout, live.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }

    /// Waits up to `timeout` for the relayed connections to end, then stops (dropping any left
    /// without recording more) and returns the recording.
    pub async fn finish(self, timeout: Duration) -> Recording {
        self.wait_idle(timeout).await;
        self.shared.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            let _ = task.await;
        }
        if let Some(file) = lock(&self.shared.file).as_mut() {
            let _ = file.flush();
        }
        self.recording()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, route: usize, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    tasks.spawn(async move {
                        shared.live.send_modify(|n| *n += 1);
                        relay_one(tcp, route, &shared).await;
                        shared.live.send_modify(|n| *n = n.saturating_sub(1));
                    });
                }
                Err(err) => {
                    debug!(%err, "relay accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    tasks.shutdown().await;
}

/// The byte stream to the upstream: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The client's upgrade request: target and headers.
struct Head {
    target: String,
    headers: Vec<(String, Vec<u8>)>,
}

/// Peeks the client's request head (it stays in the socket for the WebSocket handshake).
async fn peek_head(tcp: &TcpStream) -> Option<Head> {
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut last = 0;
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..n]) {
            Ok(httparse::Status::Complete(_)) => {
                return Some(Head {
                    target: request.path.unwrap_or("/").to_owned(),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                        .collect(),
                });
            }
            Ok(httparse::Status::Partial) if n < buf.len() => {
                if n == last {
                    // Nothing new yet: peek returns at once while data waits, so pause.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                last = n;
            }
            _ => return None,
        }
    }
}

/// The result of the upstream handshake.
enum Dialed {
    Up(Box<WebSocketStream<Box<dyn Io>>>, Option<HeaderValue>),
    Refused(u16),
}

async fn dial(shared: &Shared, up: &Upstream, head: &Head) -> Dialed {
    let path = up.url.path_and_query().map_or("/", |p| p.as_str());
    let target = if path == "/" {
        head.target.as_str()
    } else {
        path
    };
    let scheme = if up.tls { "wss" } else { "ws" };
    let authority = up.url.authority().map_or("", |a| a.as_str());
    let url = format!("{scheme}://{authority}{target}");
    let Ok(mut request) = url.as_str().into_client_request() else {
        return Dialed::Refused(400);
    };
    for (name, value) in &head.headers {
        if HOP_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    let connect = async {
        let tcp = TcpStream::connect((up.host.as_str(), up.port)).await.ok()?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if up.tls {
            let name = rustls_pki_types::ServerName::try_from(up.host.clone()).ok()?;
            Box::new(shared.tls.connect(name, tcp).await.ok()?)
        } else {
            Box::new(tcp)
        };
        Some(tokio_tungstenite::client_async(request, stream).await)
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect).await {
        Ok(Some(Ok((ws, response)))) => {
            let protocol = response.headers().get(SEC_WEBSOCKET_PROTOCOL).cloned();
            Dialed::Up(Box::new(ws), protocol)
        }
        Ok(Some(Err(WsError::Http(response)))) => Dialed::Refused(response.status().as_u16()),
        Ok(Some(Err(err))) => {
            debug!(%err, "upstream handshake failed");
            Dialed::Refused(502)
        }
        Ok(None) => Dialed::Refused(502),
        Err(_) => Dialed::Refused(504),
    }
}

async fn relay_one(tcp: TcpStream, route: usize, shared: &Shared) {
    let Some(head) = peek_head(&tcp).await else {
        debug!("no upgrade request from the client");
        return;
    };
    let dialed = dial(shared, &shared.routes[route].upstream, &head).await;
    let conn = {
        let mut next = lock(&shared.next_conn);
        let conn = *next;
        *next += 1;
        conn
    };
    let (upstream, protocol, refused) = match dialed {
        Dialed::Up(ws, protocol) => (Some(ws), protocol, None),
        Dialed::Refused(status) => (None, None, Some(status)),
    };
    shared.record(Record::Open(Open {
        conn,
        at: whole_micros(shared.started.elapsed()),
        target: redact_url(&head.target),
        subprotocol: protocol
            .as_ref()
            .and_then(|p| p.to_str().ok())
            .map(str::to_owned),
        refused,
    }));
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = move |_: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        if let Some(status) = refused {
            let mut refusal = http::Response::new(Some(format!("upstream refused: {status}")));
            *refusal.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Err(refusal);
        }
        if let Some(protocol) = protocol {
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        Ok(response)
    };
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async(tcp, callback),
    )
    .await;
    let (Some(upstream), Ok(Ok(client))) = (upstream, accepted) else {
        return;
    };
    pump(client, *upstream, conn, shared).await;
}

/// Relays frames both ways until both sides have ended, recording each.
async fn pump(
    client: WebSocketStream<TcpStream>,
    upstream: WebSocketStream<Box<dyn Io>>,
    conn: u32,
    shared: &Shared,
) {
    let opened = Instant::now();
    let (mut client_tx, mut client_rx) = client.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    let mut shutdown = shared.shutdown.subscribe();
    // A side is done when its stream ended; `closed` when it sent a close frame first.
    let (mut client_done, mut up_done) = (false, false);
    let (mut client_closed, mut up_closed) = (false, false);
    let mut grace: Option<Instant> = None;
    while !(client_done && up_done) {
        let deadline = grace.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
            () = tokio::time::sleep_until(deadline), if grace.is_some() => return,
            msg = client_rx.next(), if !client_done => match msg.and_then(Result::ok).and_then(from_message) {
                Some(frame) => {
                    client_closed |= matches!(frame, RecordedFrame::Close(_));
                    let message = to_message(&frame);
                    shared.frame(conn, opened, Direction::ClientToServer, frame);
                    if let Some(message) = message {
                        let _ = up_tx.send(message).await;
                    }
                }
                None => {
                    client_done = true;
                    if !client_closed {
                        shared.frame(conn, opened, Direction::ClientToServer, RecordedFrame::Drop);
                        return;
                    }
                    grace.get_or_insert(Instant::now() + CLOSE_GRACE);
                }
            },
            msg = up_rx.next(), if !up_done => match msg.and_then(Result::ok).and_then(from_message) {
                Some(frame) => {
                    up_closed |= matches!(frame, RecordedFrame::Close(_));
                    let message = match shared.to_client(&frame) {
                        Some(rewritten) => to_message(&rewritten),
                        None => to_message(&frame),
                    };
                    shared.frame(conn, opened, Direction::ServerToClient, frame);
                    if let Some(message) = message {
                        let _ = client_tx.send(message).await;
                    }
                }
                None => {
                    up_done = true;
                    if !up_closed {
                        shared.frame(conn, opened, Direction::ServerToClient, RecordedFrame::Drop);
                        return;
                    }
                    grace.get_or_insert(Instant::now() + CLOSE_GRACE);
                }
            },
        }
    }
}
