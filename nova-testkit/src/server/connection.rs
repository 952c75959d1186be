//! One accepted connection: the task that owns its socket, and the [`ServerConnection`] handle
//! that scripts it.
//!
//! The handle talks to the task through a bounded command channel; every `send_*` method waits
//! until the task has written (and flushed) the bytes, so a test can rely on ordering:
//! after `conn.send_text("a").await; conn.drop_tcp();` the client sees `a` before the reset.
//! The two abrupt controls ([`ServerConnection::drop_tcp`] and [`ServerConnection::go_silent`])
//! are not queued behind commands: they travel through a `watch` so they never wait on a full
//! channel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, trace};

use super::stream::ServerStream;
use super::{Frame, Shared, lock, raw};

/// Capacity of each connection's command channel.
const COMMAND_CAPACITY: usize = 64;

/// How long the task waits for the peer's answer after [`ServerConnection::close`] before it
/// drops the socket anyway.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the task tries to send a close frame after a read error (best effort).
const ERROR_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The WebSocket stream a connection task owns.
pub(crate) type WsStream = WebSocketStream<ServerStream>;

/// What the connection task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Reading, echoing and executing commands.
    Normal,
    /// Neither reading nor writing; the socket stays open.
    Silent,
    /// Drop the socket now (with `SO_LINGER` 0, so the peer sees a reset).
    Drop,
}

/// A queued command for the connection task; the `oneshot` is answered once it has been done.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a message through the WebSocket sink.
    Send(Message, oneshot::Sender<()>),
    /// Flush the sink, then write these bytes directly on the stream.
    Raw(Vec<u8>, oneshot::Sender<()>),
    /// Start the close handshake with this frame.
    Close(CloseFrame, oneshot::Sender<()>),
}

/// The state a connection shares between its task and its handles.
#[derive(Debug)]
pub(crate) struct ConnShared {
    id: usize,
    cmd_tx: mpsc::Sender<Command>,
    mode: watch::Sender<Mode>,
    closed: watch::Sender<bool>,
    received: Mutex<Vec<Frame>>,
    received_count: watch::Sender<usize>,
    pings: AtomicUsize,
    pongs: AtomicUsize,
    headers: Vec<(String, String)>,
    uri: String,
}

/// A handle to one accepted WebSocket connection of a [`TestServer`](super::TestServer).
///
/// Cheap to clone; every clone controls the same connection. All methods are harmless after
/// the connection has ended: sends are then dropped (with a debug log) and return at once.
#[derive(Clone, Debug)]
pub struct ServerConnection {
    inner: Arc<ConnShared>,
}

impl ServerConnection {
    /// Creates the handle of connection `id` and the command receiver its task reads.
    pub(crate) fn new(
        id: usize,
        headers: Vec<(String, String)>,
        uri: String,
    ) -> (ServerConnection, mpsc::Receiver<Command>) {
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
        let inner = ConnShared {
            id,
            cmd_tx,
            mode: watch::Sender::new(Mode::Normal),
            closed: watch::Sender::new(false),
            received: Mutex::new(Vec::new()),
            received_count: watch::Sender::new(0),
            pings: AtomicUsize::new(0),
            pongs: AtomicUsize::new(0),
            headers,
            uri,
        };
        (
            ServerConnection {
                inner: Arc::new(inner),
            },
            cmd_rx,
        )
    }

    /// This connection's number: 0, 1, 2… in the order handshakes completed.
    pub fn id(&self) -> usize {
        self.inner.id
    }

    /// The request headers of this connection's handshake, in the order the client sent them
    /// (names are lower-case).
    pub fn handshake_headers(&self) -> Vec<(String, String)> {
        self.inner.headers.clone()
    }

    /// The request target of this connection's handshake, e.g. `/ws?token=abc`.
    pub fn uri(&self) -> String {
        self.inner.uri.clone()
    }

    /// Sends a text frame.
    pub async fn send_text(&self, s: impl Into<String>) {
        self.send_message(Message::text(s.into())).await;
    }

    /// Sends a binary frame.
    pub async fn send_binary(&self, b: impl Into<Vec<u8>>) {
        self.send_message(Message::binary(b.into())).await;
    }

    /// Sends a ping frame (the payload must be at most 125 bytes). A tungstenite client answers
    /// with a pong the next time it reads; see [`pongs_received`](Self::pongs_received).
    pub async fn send_ping(&self, payload: Vec<u8>) {
        self.send_message(Message::Ping(payload.into())).await;
    }

    /// Sends an unsolicited pong frame (the payload must be at most 125 bytes).
    pub async fn send_pong(&self, payload: Vec<u8>) {
        self.send_message(Message::Pong(payload.into())).await;
    }

    /// Writes `bytes` as they are on the TCP (or TLS) stream, after flushing every frame
    /// queued before. Use it for hand-made frames; server frames must not be masked.
    pub async fn send_raw(&self, bytes: Vec<u8>) {
        let (ack, done) = oneshot::channel();
        self.command(Command::Raw(bytes, ack), done).await;
    }

    /// Sends a text frame whose payload is not valid UTF-8 (made by hand with
    /// [`send_raw`](Self::send_raw)). A conforming client must fail the connection.
    pub async fn send_invalid_utf8_text(&self) {
        self.send_raw(raw::invalid_utf8_text()).await;
    }

    /// Sends a single well-formed text frame with a payload of `len` ASCII bytes, built by
    /// hand so that no server-side limit applies. Use it to exceed a client's maximum message
    /// size.
    pub async fn send_oversized_text(&self, len: usize) {
        self.send_raw(raw::text_of_len(len)).await;
    }

    /// Sends bytes that are not a valid WebSocket frame (RSV bits set without an extension and
    /// a reserved opcode). A conforming client must fail the connection.
    pub async fn send_garbage(&self) {
        self.send_raw(raw::garbage()).await;
    }

    /// Starts a real close handshake with this code and reason, and returns once the close
    /// frame is written. The connection ends when the client answers (or after 5 s).
    pub async fn close(&self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let (ack, done) = oneshot::channel();
        self.command(Command::Close(frame, ack), done).await;
    }

    /// Drops the socket now, without a close frame. `SO_LINGER` is set to 0 first, so the
    /// client sees a connection reset rather than an orderly end of stream.
    pub fn drop_tcp(&self) {
        self.inner.mode.send_replace(Mode::Drop);
    }

    /// Stops reading and writing on this connection for good while keeping the socket open:
    /// a half-open peer that never answers pings and never sends again. Later sends on this
    /// handle are discarded. [`drop_tcp`](Self::drop_tcp) still works; the socket is otherwise
    /// released when the server shuts down.
    pub fn go_silent(&self) {
        // Never downgrade a requested drop to silence.
        self.inner.mode.send_if_modified(|mode| {
            if *mode == Mode::Normal {
                *mode = Mode::Silent;
                true
            } else {
                false
            }
        });
    }

    /// Resolves when this connection has ended (closed by either side, dropped, or the server
    /// shut down).
    pub async fn closed(&self) {
        let mut rx = self.inner.closed.subscribe();
        // The sender lives in `self.inner`, so this cannot fail while `self` exists.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Whether this connection has ended.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Every data frame received on this connection, in order.
    pub fn received(&self) -> Vec<Frame> {
        lock(&self.inner.received).clone()
    }

    /// Waits until at least `n` data frames have been received on this connection or `timeout`
    /// has passed, and returns what has been received.
    pub async fn wait_for_received(&self, n: usize, timeout: Duration) -> Vec<Frame> {
        let mut rx = self.inner.received_count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        self.received()
    }

    /// How many ping frames the client has sent on this connection.
    pub fn pings_received(&self) -> usize {
        self.inner.pings.load(Ordering::Relaxed)
    }

    /// How many pong frames the client has sent on this connection.
    pub fn pongs_received(&self) -> usize {
        self.inner.pongs.load(Ordering::Relaxed)
    }

    async fn send_message(&self, msg: Message) {
        let (ack, done) = oneshot::channel();
        self.command(Command::Send(msg, ack), done).await;
    }

    async fn command(&self, cmd: Command, done: oneshot::Receiver<()>) {
        if self.inner.cmd_tx.send(cmd).await.is_err() {
            debug!(
                connection = self.inner.id,
                "command dropped: connection has ended"
            );
            return;
        }
        // The task answers through `done`, or drops it when it ends. Not always: a command
        // queued while the task's receiver is being dropped can miss tokio's drain of the
        // channel and stay there, its `done` alive, for as long as this handle lives. So the
        // end of the connection releases the caller too.
        let ended = tokio::select! {
            answer = done => answer.is_err(),
            () = self.closed() => true,
        };
        if ended {
            debug!(
                connection = self.inner.id,
                "command not done: connection ended or went silent"
            );
        }
    }

    /// Records one received data frame here and on the server.
    fn record(&self, server: &Shared, frame: Frame) {
        if !server.record {
            return;
        }
        let count = {
            let mut frames = lock(&self.inner.received);
            frames.push(frame.clone());
            frames.len()
        };
        self.inner.received_count.send_replace(count);
        server.record(self.inner.id, frame);
    }
}

/// Marks the connection closed when its task ends, however it ends (including abort).
struct ClosedGuard(Arc<ConnShared>);

impl Drop for ClosedGuard {
    fn drop(&mut self) {
        self.0.closed.send_replace(true);
        debug!(connection = self.0.id, "connection ended");
    }
}

/// Runs one connection until it ends.
pub(crate) async fn run(
    mut ws: WsStream,
    conn: ServerConnection,
    mut cmd_rx: mpsc::Receiver<Command>,
    server: Arc<Shared>,
) {
    let id = conn.id();
    let _guard = ClosedGuard(Arc::clone(&conn.inner));
    let mut mode_rx = conn.inner.mode.subscribe();
    // A drop or silence requested before this task subscribed must still take effect.
    mode_rx.mark_changed();
    // When we started a close handshake: give up waiting for the answer at this instant.
    let mut close_deadline: Option<Instant> = None;
    loop {
        let deadline = close_deadline.unwrap_or_else(far_future);
        tokio::select! {
            biased;
            changed = mode_rx.changed() => {
                if changed.is_err() {
                    // Cannot happen: `conn` holds the sender.
                    return;
                }
                let mode = *mode_rx.borrow_and_update();
                match mode {
                    Mode::Normal => {}
                    Mode::Silent => {
                        debug!(connection = id, "going silent");
                        park_silent(ws, mode_rx, cmd_rx, id).await;
                        return;
                    }
                    Mode::Drop => {
                        abort(ws, id);
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline), if close_deadline.is_some() => {
                debug!(connection = id, "no close answer in time; dropping the socket");
                return;
            }
            cmd = cmd_rx.recv() => match cmd {
                Some(cmd) => {
                    if let Some(started_close) = execute(&mut ws, cmd, id).await {
                        if started_close && close_deadline.is_none() {
                            close_deadline = Some(Instant::now() + CLOSE_REPLY_TIMEOUT);
                        }
                    } else {
                        return;
                    }
                }
                // Cannot happen: `conn` holds the sender.
                None => return,
            },
            msg = ws.next() => match msg {
                None => {
                    debug!(connection = id, "stream ended");
                    return;
                }
                Some(Ok(msg)) => {
                    if !on_message(&mut ws, &conn, &server, msg).await {
                        return;
                    }
                }
                Some(Err(err)) => {
                    on_read_error(&mut ws, id, err).await;
                    return;
                }
            },
        }
    }
}

/// An instant far enough away never to fire in a test.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Handles one message from the client; `false` ends the connection.
async fn on_message(
    ws: &mut WsStream,
    conn: &ServerConnection,
    server: &Shared,
    msg: Message,
) -> bool {
    let id = conn.id();
    let responder = server.responder();
    let keep = server.record || responder.is_some();
    let (frame, echo) = match msg {
        Message::Text(text) => {
            trace!(connection = id, len = text.len(), "text received");
            let frame = keep.then(|| Frame::Text(text.as_str().to_owned()));
            (frame, Message::Text(text))
        }
        Message::Binary(bytes) => {
            trace!(connection = id, len = bytes.len(), "binary received");
            let frame = keep.then(|| Frame::Binary(bytes.to_vec()));
            (frame, Message::Binary(bytes))
        }
        Message::Ping(_) => {
            // tungstenite queues the pong and writes it with the next read or write.
            conn.inner.pings.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        Message::Pong(_) => {
            conn.inner.pongs.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        Message::Close(frame) => {
            // tungstenite queues the close answer; the stream ends after it is written.
            debug!(connection = id, ?frame, "close received");
            return true;
        }
        Message::Frame(_) => return true,
    };
    let replies = match (&responder, &frame) {
        (Some(responder), Some(frame)) => Some(responder(id, frame)),
        _ => None,
    };
    if let Some(frame) = frame {
        conn.record(server, frame);
    }
    match replies {
        Some(replies) => {
            for reply in replies {
                if !reply_with(ws, id, into_message(reply)).await {
                    return false;
                }
            }
            true
        }
        None if server.echo() => reply_with(ws, id, echo).await,
        None => true,
    }
}

/// Sends one answer to the client; `false` ends the connection.
async fn reply_with(ws: &mut WsStream, id: usize, msg: Message) -> bool {
    match ws.send(msg).await {
        Ok(()) => true,
        Err(err) => {
            debug!(connection = id, %err, "reply failed");
            !is_fatal(&err)
        }
    }
}

fn into_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(s) => Message::text(s),
        Frame::Binary(b) => Message::binary(b),
    }
}

/// Executes one command. `None` ends the connection; `Some(true)` means a close was started.
async fn execute(ws: &mut WsStream, cmd: Command, id: usize) -> Option<bool> {
    match cmd {
        Command::Send(msg, ack) => {
            let result = ws.send(msg).await;
            let _ = ack.send(());
            match result {
                Ok(()) => Some(false),
                Err(err) => {
                    debug!(connection = id, %err, "send failed");
                    if is_fatal(&err) { None } else { Some(false) }
                }
            }
        }
        Command::Raw(bytes, ack) => {
            let result = write_raw(ws, &bytes).await;
            let _ = ack.send(());
            match result {
                Ok(()) => Some(false),
                Err(err) => {
                    debug!(connection = id, %err, "raw write failed");
                    None
                }
            }
        }
        Command::Close(frame, ack) => {
            debug!(connection = id, ?frame, "starting close handshake");
            let result = ws.close(Some(frame)).await;
            let _ = ack.send(());
            match result {
                Ok(()) => Some(true),
                Err(err) => {
                    debug!(connection = id, %err, "close failed");
                    if is_fatal(&err) { None } else { Some(true) }
                }
            }
        }
    }
}

/// Flushes the WebSocket sink, then writes `bytes` on the stream under it.
async fn write_raw(ws: &mut WsStream, bytes: &[u8]) -> Result<(), WsError> {
    ws.flush().await?;
    let stream = ws.get_mut();
    stream.write_all(bytes).await?;
    stream.flush().await?;
    Ok(())
}

/// Errors after which the socket is unusable.
fn is_fatal(err: &WsError) -> bool {
    matches!(
        err,
        WsError::Io(_) | WsError::ConnectionClosed | WsError::Tls(_)
    )
}

/// Logs a read error and, when the client broke a limit, tries to say so with a close frame.
async fn on_read_error(ws: &mut WsStream, id: usize, err: WsError) {
    match &err {
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            debug!(connection = id, "connection closed");
        }
        WsError::Capacity(cap) => {
            debug!(connection = id, %cap, "client exceeded a size limit; closing with 1009");
            let frame = CloseFrame {
                code: CloseCode::Size,
                reason: "message too big".into(),
            };
            let _ = tokio::time::timeout(ERROR_CLOSE_TIMEOUT, ws.close(Some(frame))).await;
        }
        WsError::Protocol(protocol) => {
            debug!(connection = id, %protocol, "client broke the protocol; closing with 1002");
            let frame = CloseFrame {
                code: CloseCode::Protocol,
                reason: "protocol error".into(),
            };
            let _ = tokio::time::timeout(ERROR_CLOSE_TIMEOUT, ws.close(Some(frame))).await;
        }
        _ => debug!(connection = id, %err, "read failed"),
    }
}

/// Keeps the socket open without touching it until a drop is requested or the task is aborted
/// (server shutdown). Queued and later commands are discarded, which releases their callers.
async fn park_silent(
    ws: WsStream,
    mut mode_rx: watch::Receiver<Mode>,
    mut cmd_rx: mpsc::Receiver<Command>,
    id: usize,
) {
    loop {
        tokio::select! {
            changed = mode_rx.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
                if *mode_rx.borrow_and_update() == Mode::Drop {
                    abort(ws, id);
                    return;
                }
            }
            cmd = cmd_rx.recv() => match cmd {
                Some(cmd) => trace!(connection = id, ?cmd, "silent: command discarded"),
                None => std::future::pending::<()>().await,
            },
        }
    }
}

/// Drops the socket with `SO_LINGER` 0 so the peer sees a reset.
fn abort(ws: WsStream, id: usize) {
    // `set_linger` is deprecated because a non-zero linger blocks the thread on drop; a zero
    // linger does not block (it is what `set_zero_linger` does in newer tokio).
    #[allow(deprecated)]
    let linger = ws.get_ref().tcp().set_linger(Some(Duration::ZERO));
    if let Err(err) = linger {
        debug!(connection = id, %err, "could not set SO_LINGER 0; plain drop");
    }
    debug!(connection = id, "dropping the socket");
    drop(ws);
}
