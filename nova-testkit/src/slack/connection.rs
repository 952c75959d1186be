//! One Socket Mode connection's task: `hello` first, then it writes what the dispatcher and
//! the handle send it and reads acks.
//!
//! A new connection beyond [`max_connections`](super::SlackSimOptions::max_connections) gets
//! `{"type":"disconnect","reason":"too_many_websockets",..}` (as the official Python SDK's mock
//! server sends; whether Slack does is not documented) and is closed. Otherwise it is
//! registered, gets `hello` with `num_connections` counting itself, and becomes *ready*: the
//! dispatcher may write envelopes to it from then on.
//!
//! Every text frame from the client is parsed as JSON; an object with a string `envelope_id`
//! is an ack (its `payload`, if any, is recorded), anything else is counted in
//! [`other_messages`](super::Counters::other_messages). Slack answers nothing to an ack.
//!
//! Silent ([`set_silent`](super::SlackHandle::set_silent)): the task stops reading, and the
//! texts sent to it meanwhile are lost (as if the network ate them; their envelopes are
//! redelivered after the ack deadline). Close and drop commands still work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::debug;

use super::envelope::{disconnect_text, hello_text};
use super::ledger::AckOutcome;
use super::{Conn, ConnectionInfo, Shared, bump, lock};

/// How many commands may wait for one connection's task. The dispatcher never waits on a full
/// queue: it tries another connection or tries again on its next step.
pub(super) const COMMAND_CAPACITY: usize = 256;
/// How long a write may wait for a client that does not read before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the dispatcher and the handle ask a connection to do.
#[derive(Clone, Debug)]
pub(super) enum Command {
    /// Write a text frame (an envelope or a `disconnect`).
    Text(String),
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
    /// Drop the TCP socket with a reset (`SO_LINGER` 0), without a close frame.
    Drop,
}

type Ws = WebSocketStream<TcpStream>;

/// How a connection's loop ended.
enum End {
    /// The peer went away or the socket failed: drop it as it is.
    Gone,
    /// Close with this frame first.
    Close(u16, String),
    /// Reset the TCP connection.
    Reset,
}

/// Serves one WebSocket connection after an accepted handshake, until it ends.
pub(super) async fn serve(mut ws: Ws, shared: Arc<Shared>) {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let Some((id, num_connections)) = register(&shared, tx) else {
        bump(&shared.counters.too_many_websockets);
        let text = disconnect_text(u64::MAX, "too_many_websockets");
        let _ = write(&mut ws, text).await;
        close(&mut ws, 1000, "too many websockets").await;
        return;
    };
    let hello = hello_text(
        id,
        num_connections,
        shared.approximate_connection_time(),
        &shared.options.app_id,
    );
    if write(&mut ws, hello).await.is_ok() {
        bump(&shared.counters.hellos);
        shared.with_connection(id, |c| c.info.ready = true);
        shared.wake.notify_one();
        match run(&mut ws, id, &shared, rx).await {
            End::Gone => {}
            End::Close(code, reason) => close(&mut ws, code, &reason).await,
            End::Reset => reset(ws, id),
        }
    }
    if let Some(conn) = lock(&shared.state).conns.get_mut(&id) {
        conn.info.open = false;
        conn.info.ready = false;
        conn.commands = None;
    }
    debug!(id, "slack sim: connection ended");
}

/// Registers a connection unless `max_connections` are open; returns its id and the number of
/// open connections counting it.
fn register(shared: &Shared, commands: mpsc::Sender<Command>) -> Option<(u64, usize)> {
    let mut state = lock(&shared.state);
    let open = state.conns.values().filter(|c| c.info.open).count();
    if open >= shared.options.max_connections {
        return None;
    }
    let id = state.next_connection;
    state.next_connection += 1;
    state.conns.insert(
        id,
        Conn {
            info: ConnectionInfo {
                id,
                open: true,
                ..ConnectionInfo::default()
            },
            commands: Some(commands),
            opened: Instant::now(),
            warned: false,
            refresh_sent: false,
            close_at: None,
            close_requested: false,
        },
    );
    state.trim_connections();
    drop(state);
    bump(&shared.counters.connections);
    Some((id, open + 1))
}

async fn run(ws: &mut Ws, id: u64, shared: &Shared, mut commands: mpsc::Receiver<Command>) -> End {
    let mut shutdown = shared.shutdown.subscribe();
    let mut silent = shared.silent.subscribe();
    loop {
        let is_silent = *silent.borrow_and_update();
        tokio::select! {
            biased;
            _ = shutdown.changed() => return End::Close(1001, "server shutting down".to_owned()),
            command = commands.recv() => match command {
                None | Some(Command::Drop) => return End::Reset,
                Some(Command::Close(code, reason)) => return End::Close(code, reason),
                // Read the flag now: a change may be waiting behind this command.
                Some(Command::Text(_)) if *silent.borrow() => {
                    bump(&shared.counters.lost_while_silent);
                }
                Some(Command::Text(text)) => {
                    if write(ws, text).await.is_err() {
                        return End::Gone;
                    }
                }
            },
            changed = silent.changed() => {
                if changed.is_err() {
                    return End::Gone;
                }
            }
            frame = ws.next(), if !is_silent => match frame {
                Some(Ok(Message::Text(text))) => on_text(shared, id, text.as_str()),
                Some(Ok(Message::Binary(bytes))) => {
                    on_text(shared, id, &String::from_utf8_lossy(&bytes));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Gone,
                // Pings are answered by tungstenite on the next write or flush.
                Some(Ok(_)) => {
                    if ws.flush().await.is_err() {
                        return End::Gone;
                    }
                }
            },
        }
    }
}

/// One text frame from the client: an ack, or something else.
fn on_text(shared: &Shared, id: u64, text: &str) {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let Some(envelope_id) = value.get("envelope_id").and_then(Value::as_str) else {
        bump(&shared.counters.other_messages);
        return;
    };
    let payload = value.get("payload").cloned();
    let outcome = {
        let mut state = lock(&shared.state);
        if let Some(conn) = state.conns.get_mut(&id) {
            conn.info.acks_received += 1;
        }
        state.ledger.ack(envelope_id, payload)
    };
    bump(&shared.counters.acks_received);
    match outcome {
        AckOutcome::First => {}
        AckOutcome::Again => bump(&shared.counters.duplicate_acks),
        AckOutcome::Unknown => bump(&shared.counters.unknown_acks),
    }
}

/// Writes one text frame; fails when the socket fails or the client has not taken it within
/// [`WRITE_TIMEOUT`].
async fn write(ws: &mut Ws, text: String) -> Result<(), ()> {
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn close(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}

/// Drops the socket with `SO_LINGER` 0 so the peer sees a reset.
fn reset(ws: Ws, id: u64) {
    // `set_linger` is deprecated because a non-zero linger blocks the thread on drop; a zero
    // linger does not block.
    #[allow(deprecated)]
    let linger = ws.get_ref().set_linger(Some(Duration::ZERO));
    if let Err(err) = linger {
        debug!(id, %err, "slack sim: could not set SO_LINGER 0; plain drop");
    }
    drop(ws);
}
