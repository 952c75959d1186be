//! A scriptable local WebSocket server for testing clients.
//!
//! [`TestServer`] binds `127.0.0.1:0` and runs one tokio task per accepted connection. By
//! default it echoes every data frame back (text as text, binary as binary) and records it.
//! A test can then script faults:
//!
//! - on the whole server: refuse the next handshakes with an HTTP status
//!   ([`TestServer::refuse_next_handshakes`]), delay them ([`TestServer::delay_next_handshakes`]),
//!   turn echo off or answer with a [`Responder`], inspect handshake request headers and
//!   everything received;
//! - on one connection ([`ServerConnection`], from [`TestServer::next_connection`]): send
//!   frames, pings, raw bytes, invalid UTF-8, oversized frames or garbage; close properly; drop
//!   the TCP socket abruptly; or go silent (a half-open peer that never answers pings).
//!
//! Serve `wss://` by passing a `tokio_rustls::TlsAcceptor` in [`ServerOptions::tls`].
//!
//! ```
//! use std::time::Duration;
//! use futures_util::{SinkExt, StreamExt};
//! use nova_testkit::{Frame, TestServer};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start().await?;
//! let tcp = tokio::net::TcpStream::connect(server.addr()).await?;
//! let (mut client, _response) = tokio_tungstenite::client_async(server.url(), tcp).await?;
//!
//! client.send(Message::text("hi")).await?;
//! assert_eq!(client.next().await.transpose()?, Some(Message::text("hi"))); // the echo
//! let got = server.wait_for_received(1, Duration::from_secs(5)).await;
//! assert_eq!(got[0].frame, Frame::Text("hi".into()));
//!
//! let conn = server.next_connection().await;
//! conn.close(1000, "done").await;
//! assert!(matches!(client.next().await, Some(Ok(Message::Close(Some(_))))));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Everything the server records (frames, handshakes, connection handles) is kept until the
//! server is dropped; turn frame recording off with [`ServerOptions::with_recording`] for long
//! benchmarks.

mod connection;
mod raw;
mod stream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::header::{CONNECTION, CONTENT_LENGTH, SEC_WEBSOCKET_PROTOCOL};
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, warn};

pub use connection::ServerConnection;
use stream::ServerStream;

/// How long a client has to complete the TLS and WebSocket handshakes (after any scripted
/// delay) before the server gives up on it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A data frame received by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

impl From<String> for Frame {
    fn from(s: String) -> Self {
        Frame::Text(s)
    }
}

impl From<&str> for Frame {
    fn from(s: &str) -> Self {
        Frame::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Frame {
    fn from(b: Vec<u8>) -> Self {
        Frame::Binary(b)
    }
}

impl From<&[u8]> for Frame {
    fn from(b: &[u8]) -> Self {
        Frame::Binary(b.to_vec())
    }
}

impl Frame {
    /// The text of a text frame, `None` for a binary frame.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Frame::Text(s) => Some(s),
            Frame::Binary(_) => None,
        }
    }

    /// The payload bytes of either kind of frame.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Frame::Text(s) => s.as_bytes(),
            Frame::Binary(b) => b,
        }
    }
}

/// Computes the server's answer to each data frame a client sends: called with the
/// [`ServerConnection::id`] and the frame, it returns the frames to send back on that
/// connection, in order (possibly none). When a responder is set it replaces echo.
///
/// ```
/// use std::sync::Arc;
/// use nova_testkit::{Frame, Responder, ServerOptions};
///
/// let responder: Responder = Arc::new(|_connection, frame: &Frame| match frame.as_text() {
///     Some(r#"{"op":"auth"}"#) => vec![Frame::from(r#"{"op":"auth","ok":true}"#)],
///     _ => Vec::new(),
/// });
/// let opts = ServerOptions::default().with_responder(responder);
/// # let _ = opts;
/// ```
pub type Responder = Arc<dyn Fn(usize, &Frame) -> Vec<Frame> + Send + Sync>;

/// A data frame and the connection it arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The [`ServerConnection::id`] of the connection.
    pub connection: usize,
    /// The frame.
    pub frame: Frame,
}

/// How a [`TestServer`] behaves. `Default`: echo on, recording on, no TLS, no size limits,
/// accept the first subprotocol the client offers.
///
/// ```
/// use nova_testkit::ServerOptions;
///
/// let opts = ServerOptions::default().with_echo(false).with_max_message_size(Some(1024));
/// assert!(!opts.echo);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Echo every data frame back to its sender (text as text, binary as binary).
    pub echo: bool,
    /// Serve `wss://` with this acceptor instead of plain `ws://`.
    pub tls: Option<TlsAcceptor>,
    /// The largest message the server accepts from a client; a larger one makes the server close
    /// the connection with code 1009. `None`: no limit.
    pub max_message_size: Option<usize>,
    /// The largest single frame the server accepts from a client. `None`: no limit.
    pub max_frame_size: Option<usize>,
    /// Record every received data frame (see [`TestServer::received`]).
    pub record: bool,
    /// Which subprotocols the server agrees to. `None`: the first one the client offers.
    /// `Some(list)`: the first offered one that is in `list`; if none is, the handshake answer
    /// names no subprotocol (a conforming client then fails the handshake).
    pub subprotocols: Option<Vec<String>>,
    /// Answer each data frame with what this returns instead of echoing it.
    pub responder: Option<Responder>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            echo: true,
            tls: None,
            max_message_size: None,
            max_frame_size: None,
            record: true,
            subprotocols: None,
            responder: None,
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("echo", &self.echo)
            .field("tls", &self.tls.is_some())
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("record", &self.record)
            .field("subprotocols", &self.subprotocols)
            .field("responder", &self.responder.is_some())
            .finish()
    }
}

impl ServerOptions {
    /// Sets [`echo`](Self::echo).
    pub fn with_echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }

    /// Sets [`tls`](Self::tls): serve `wss://` with this acceptor.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Sets [`tls`](Self::tls) from a rustls server configuration (e.g. one made by the
    /// testkit's certificate authority).
    pub fn with_tls_config(self, config: Arc<rustls::ServerConfig>) -> Self {
        self.with_tls(TlsAcceptor::from(config))
    }

    /// Sets [`responder`](Self::responder).
    pub fn with_responder(mut self, responder: Responder) -> Self {
        self.responder = Some(responder);
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn with_max_message_size(mut self, max: Option<usize>) -> Self {
        self.max_message_size = max;
        self
    }

    /// Sets [`max_frame_size`](Self::max_frame_size).
    pub fn with_max_frame_size(mut self, max: Option<usize>) -> Self {
        self.max_frame_size = max;
        self
    }

    /// Sets [`record`](Self::record).
    pub fn with_recording(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// Sets [`subprotocols`](Self::subprotocols) to `Some(list)`.
    pub fn with_subprotocols<I, S>(mut self, list: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = Some(list.into_iter().map(Into::into).collect());
        self
    }

    fn ws_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(self.max_message_size)
            .max_frame_size(self.max_frame_size)
    }
}

/// A scripted refusal of the next handshakes.
#[derive(Debug)]
struct Refusal {
    remaining: usize,
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// State shared by the accept loop, the connection tasks and the handles.
struct Shared {
    echo: AtomicBool,
    responder: Mutex<Option<Responder>>,
    record: bool,
    tls: Option<TlsAcceptor>,
    ws_config: WebSocketConfig,
    subprotocols: Option<Vec<String>>,
    attempted: AtomicUsize,
    refusal: Mutex<Option<Refusal>>,
    delay: Mutex<Option<(usize, Duration)>>,
    handshake_headers: Mutex<Vec<Vec<(String, String)>>>,
    connections: Mutex<Vec<ServerConnection>>,
    /// Number of entries in `connections`, for waiters.
    accepted: watch::Sender<usize>,
    received: Mutex<Vec<Received>>,
    /// Number of entries in `received`, for waiters.
    received_count: watch::Sender<usize>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("echo", &self.echo)
            .field("tls", &self.tls.is_some())
            .field("attempted", &self.attempted)
            .field("accepted", &*self.accepted.borrow())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn echo(&self) -> bool {
        self.echo.load(Ordering::Relaxed)
    }

    fn responder(&self) -> Option<Responder> {
        lock(&self.responder).clone()
    }

    fn record(&self, connection: usize, frame: Frame) {
        let count = {
            let mut all = lock(&self.received);
            all.push(Received { connection, frame });
            all.len()
        };
        self.received_count.send_replace(count);
    }

    /// Takes one scripted handshake delay, if any is left.
    fn take_delay(&self) -> Option<Duration> {
        let mut slot = lock(&self.delay);
        let (remaining, delay) = slot.as_mut()?;
        let delay = *delay;
        *remaining -= 1;
        if *remaining == 0 {
            *slot = None;
        }
        Some(delay)
    }

    /// Takes one scripted refusal, if any is left, as the response to send.
    fn take_refusal(&self) -> Option<ErrorResponse> {
        let mut slot = lock(&self.refusal);
        let refusal = slot.as_mut()?;
        let body = format!("refused by nova-testkit: {}", refusal.status);
        let mut response = http::Response::new(Some(body.clone()));
        *response.status_mut() = refusal.status;
        let headers = response.headers_mut();
        for (name, value) in &refusal.headers {
            headers.append(name.clone(), value.clone());
        }
        if !headers.contains_key(CONTENT_LENGTH) {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        if !headers.contains_key(CONNECTION) {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        refusal.remaining -= 1;
        if refusal.remaining == 0 {
            *slot = None;
        }
        Some(response)
    }

    /// The subprotocol to answer for a request, if any.
    fn choose_subprotocol(&self, request: &Request) -> Option<HeaderValue> {
        let offered = request
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)?
            .to_str()
            .ok()?;
        let chosen = offered
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .find(|p| match &self.subprotocols {
                None => true,
                Some(list) => list.iter().any(|s| s == p),
            })?;
        HeaderValue::from_str(chosen).ok()
    }
}

/// Polls `cond` every 5 ms until it holds or `timeout` has passed; returns whether it held.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// let start = std::time::Instant::now();
/// let ok = nova_testkit::wait_until(|| start.elapsed() > Duration::from_millis(20), Duration::from_secs(1)).await;
/// assert!(ok);
/// # }
/// ```
pub async fn wait_until(mut cond: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Locks a mutex, ignoring poisoning: the data is plain records, valid after any panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scriptable WebSocket server on `127.0.0.1`. See the [module docs](self).
///
/// Dropping it stops the server like [`shutdown`](Self::shutdown) does, without waiting.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    /// Index of the next connection [`next_connection`](Self::next_connection) returns.
    cursor: tokio::sync::Mutex<usize>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl TestServer {
    /// Starts an echo server with [`ServerOptions::default`].
    pub async fn start() -> std::io::Result<TestServer> {
        TestServer::start_with(ServerOptions::default()).await
    }

    /// Starts a server with these options on `127.0.0.1` and a free port.
    pub async fn start_with(opts: ServerOptions) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            echo: AtomicBool::new(opts.echo),
            ws_config: opts.ws_config(),
            responder: Mutex::new(opts.responder),
            record: opts.record,
            tls: opts.tls,
            subprotocols: opts.subprotocols,
            attempted: AtomicUsize::new(0),
            refusal: Mutex::new(None),
            delay: Mutex::new(None),
            handshake_headers: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
            accepted: watch::Sender::new(0),
            received: Mutex::new(Vec::new()),
            received_count: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        });
        let tls = shared.tls.is_some();
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        debug!(%addr, tls, "test server listening");
        Ok(TestServer {
            addr,
            tls,
            shared,
            cursor: tokio::sync::Mutex::new(0),
            accept_task: Mutex::new(Some(accept_task)),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to connect to: `ws://127.0.0.1:PORT`, or `wss://localhost:PORT` with TLS (the
    /// name a test certificate is issued for).
    pub fn url(&self) -> String {
        if self.tls {
            format!("wss://localhost:{}", self.addr.port())
        } else {
            format!("ws://127.0.0.1:{}", self.addr.port())
        }
    }

    /// Waits for the next connection whose handshake completed, in accept order. Every
    /// accepted connection is returned exactly once across calls, however late the call.
    pub async fn next_connection(&self) -> ServerConnection {
        let mut cursor = self.cursor.lock().await;
        let mut accepted = self.shared.accepted.subscribe();
        let index = *cursor;
        // The sender lives in `self.shared`, so this cannot fail while `self` exists.
        let _ = accepted.wait_for(|n| *n > index).await;
        *cursor += 1;
        lock(&self.shared.connections)[index].clone()
    }

    /// Like [`next_connection`](Self::next_connection), giving up after `d`.
    pub async fn next_connection_timeout(&self, d: Duration) -> Option<ServerConnection> {
        tokio::time::timeout(d, self.next_connection()).await.ok()
    }

    /// Every connection accepted so far, in accept order (indexed by [`ServerConnection::id`]).
    pub fn connections(&self) -> Vec<ServerConnection> {
        lock(&self.shared.connections).clone()
    }

    /// The number of completed handshakes.
    pub fn connections_accepted(&self) -> usize {
        *self.shared.accepted.borrow()
    }

    /// The number of (complete) upgrade requests received, including refused ones.
    pub fn handshakes_attempted(&self) -> usize {
        self.shared.attempted.load(Ordering::Relaxed)
    }

    /// Every data frame received on every connection, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// Waits until at least `n` frames have been received in total or `timeout` has passed,
    /// and returns everything received.
    pub async fn wait_for_received(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut count = self.shared.received_count.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        self.received()
    }

    /// Answers the next `n` upgrade requests with HTTP `status` and these extra `headers`
    /// (e.g. `503` and `Retry-After: 2`), then closes those connections. Replaces any
    /// refusal still pending.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status or a header name or value is invalid: that is a
    /// mistake in the test.
    pub fn refuse_next_handshakes(&self, n: usize, status: u16, headers: Vec<(String, String)>) {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("refuse_next_handshakes: invalid HTTP status {status}"));
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                let parsed_name = HeaderName::try_from(name.as_str()).unwrap_or_else(|_| {
                    panic!("refuse_next_handshakes: invalid header name {name:?}")
                });
                let parsed_value = HeaderValue::try_from(value.as_str()).unwrap_or_else(|_| {
                    panic!("refuse_next_handshakes: invalid header value {value:?}")
                });
                (parsed_name, parsed_value)
            })
            .collect();
        *lock(&self.shared.refusal) = (n > 0).then_some(Refusal {
            remaining: n,
            status,
            headers,
        });
    }

    /// For the next `n` TCP connections: accept, then wait `delay` before reading and answering
    /// the upgrade request. Replaces any delay still pending.
    pub fn delay_next_handshakes(&self, n: usize, delay: Duration) {
        *lock(&self.shared.delay) = (n > 0).then_some((n, delay));
    }

    /// Turns echo on or off for every connection, now and later.
    pub fn set_echo(&self, on: bool) {
        self.shared.echo.store(on, Ordering::Relaxed);
    }

    /// Sets or removes the [`Responder`] for every connection, now and later. While one is set
    /// it replaces echo.
    pub fn set_responder(&self, responder: Option<Responder>) {
        *lock(&self.shared.responder) = responder;
    }

    /// The request headers of every upgrade request received (refused ones included), in
    /// order. Header names are lower-case.
    pub fn handshake_headers(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.shared.handshake_headers).clone()
    }

    /// Stops accepting and drops every connection (without close frames), then returns.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        let task = lock(&self.accept_task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        debug!(addr = %self.addr, "test server stopped");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// Accepts connections until shutdown, then aborts every connection task and waits for them.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(err) = joined {
                    if err.is_panic() {
                        warn!(%err, "test server connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(handle_connection(tcp, peer, Arc::clone(&shared)));
                }
                Err(err) => {
                    // E.g. too many open files: keep serving, but do not spin.
                    warn!(%err, "test server accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    tasks.shutdown().await;
}

/// The request headers and target of a handshake.
type RequestInfo = (Vec<(String, String)>, String);

/// Runs the handshakes of one TCP connection, then the connection itself.
async fn handle_connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    debug!(%peer, "tcp accepted");
    let _ = tcp.set_nodelay(true);
    if let Some(delay) = shared.take_delay() {
        debug!(%peer, ?delay, "delaying the handshake");
        tokio::time::sleep(delay).await;
    }
    let stream = match &shared.tls {
        None => ServerStream::Plain(tcp),
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
        {
            Ok(Ok(tls)) => ServerStream::Tls(Box::new(tls)),
            Ok(Err(err)) => {
                debug!(%peer, %err, "tls handshake failed");
                return;
            }
            Err(_) => {
                debug!(%peer, "tls handshake timed out");
                return;
            }
        },
    };

    let request_info: Arc<Mutex<Option<RequestInfo>>> = Arc::default();
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = {
        let shared = Arc::clone(&shared);
        let request_info = Arc::clone(&request_info);
        move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
            shared.attempted.fetch_add(1, Ordering::Relaxed);
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect();
            lock(&shared.handshake_headers).push(headers.clone());
            *lock(&request_info) = Some((headers, request.uri().to_string()));
            if let Some(refusal) = shared.take_refusal() {
                debug!(status = %refusal.status(), "refusing the handshake");
                return Err(refusal);
            }
            if let Some(protocol) = shared.choose_subprotocol(request) {
                response
                    .headers_mut()
                    .insert(SEC_WEBSOCKET_PROTOCOL, protocol);
            }
            Ok(response)
        }
    };
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(shared.ws_config));
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => {
            debug!(%peer, %err, "websocket handshake failed or refused");
            return;
        }
        Err(_) => {
            debug!(%peer, "websocket handshake timed out");
            return;
        }
    };
    let (headers, uri) = lock(&request_info).take().unwrap_or_default();

    let (conn, cmd_rx) = {
        let mut connections = lock(&shared.connections);
        let id = connections.len();
        let (conn, cmd_rx) = ServerConnection::new(id, headers, uri);
        connections.push(conn.clone());
        shared.accepted.send_replace(connections.len());
        (conn, cmd_rx)
    };
    debug!(%peer, connection = conn.id(), "websocket accepted");
    connection::run(ws, conn, cmd_rx, shared).await;
}
