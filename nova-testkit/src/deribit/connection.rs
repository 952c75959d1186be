//! One connection's task: reads requests, writes answers, forwards subscribed events, runs the
//! heartbeat, and obeys the handle's fault commands.
//!
//! The task owns the socket; everything it shares with others goes through [`Shared`]. A
//! heartbeat set to `interval` sends a `test_request` every interval; when the next one is due
//! and the last was not answered by a `public/test`, the connection is closed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::debug;

use super::channel::Spec;
use super::market::Event;
use super::methods::{Session, handle_text, notification, with_type};
use super::{Shared, bump, register, unregister};

/// The heartbeat notification asking for a `public/test`.
const TEST_REQUEST: &str =
    r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#;
/// How long a write may wait for a client that does not read before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to complete the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A fault the handle asks a connection to perform.
#[derive(Clone, Debug)]
pub(super) enum Command {
    /// Drop the TCP socket without a close frame.
    Drop,
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
}

type Ws = WebSocketStream<TcpStream>;

/// Serves one accepted TCP connection until it ends.
pub(super) async fn serve(stream: TcpStream, id: u64, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_async(stream))
        .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            debug!(id, error = %e, "deribit sim: handshake failed");
            return;
        }
        Err(_) => return,
    };
    let commands = register(&shared, id);
    run(ws, id, &shared, commands).await;
    unregister(&shared, id);
}

/// How a connection's loop ended.
enum End {
    /// Drop the socket as it is.
    Drop,
    /// Close with this frame first.
    Close(u16, String),
}

async fn run(
    mut ws: Ws,
    id: u64,
    shared: &Shared,
    mut commands: tokio::sync::mpsc::Receiver<Command>,
) {
    // Market events only for a connection with subscriptions: idle connections cost nothing
    // per tick.
    let mut events: Option<broadcast::Receiver<Arc<Event>>> = None;
    let mut shutdown = shared.shutdown.subscribe();
    let mut silent = shared.silent.subscribe();
    let mut session = Session::new(shared, id, std::time::Instant::now());
    // The next test_request; and when the last one went out unanswered.
    let mut next_test: Option<Instant> = None;
    let mut awaiting_since: Option<Instant> = None;
    let end = loop {
        let is_silent = *silent.borrow();
        let heartbeat_due = next_test.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = shutdown.changed() => break End::Close(1001, "server shutting down".to_owned()),
            command = commands.recv() => match command {
                Some(Command::Drop) | None => break End::Drop,
                Some(Command::Close(code, reason)) => break End::Close(code, reason),
            },
            changed = silent.changed() => {
                if changed.is_err() {
                    break End::Drop;
                }
                if !*silent.borrow() {
                    // Back from silence: the heartbeat starts over.
                    awaiting_since = None;
                    next_test = session.heartbeat.map(|i| Instant::now() + i);
                }
            }
            frame = ws.next(), if !is_silent => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text.into(),
                        Err(_) => continue,
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::Drop,
                    Some(Ok(_)) => continue,
                };
                // Listen before a subscribe takes its book snapshot, so no change after the
                // snapshot can be missed; stop listening when nothing is subscribed.
                if events.is_none() {
                    events = Some(shared.events.subscribe());
                }
                let reply = handle_text(shared, &mut session, text.as_str(), std::time::Instant::now());
                if session.subscriptions.is_empty() {
                    events = None;
                }
                if session.tested {
                    session.tested = false;
                    awaiting_since = None;
                }
                if session.heartbeat_changed {
                    session.heartbeat_changed = false;
                    awaiting_since = None;
                    next_test = session.heartbeat.map(|i| Instant::now() + i);
                }
                let texts: Vec<String> = reply.text.into_iter().chain(reply.after).collect();
                if write(&mut ws, texts).await.is_err() {
                    break End::Drop;
                }
                if let Some((code, reason)) = reply.close {
                    break End::Close(code, reason);
                }
            }
            event = next_event(&mut events), if !is_silent && events.is_some() => {
                let event = match event {
                    Ok(event) => event,
                    // This connection fell behind and lost events (a gap its client can see).
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break End::Drop,
                };
                let texts = select(&mut session, &event);
                if texts.is_empty() {
                    continue;
                }
                let sent = texts.len() as u64;
                if write(&mut ws, texts).await.is_err() {
                    break End::Drop;
                }
                shared.counters.notifications.fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
            }
            () = tokio::time::sleep_until(heartbeat_due), if !is_silent && next_test.is_some() => {
                let now = Instant::now();
                if awaiting_since.is_some() {
                    bump(&shared.counters.heartbeat_drops);
                    debug!(id, "deribit sim: test_request not answered, closing");
                    break End::Close(1000, "test_request not answered".to_owned());
                }
                bump(&shared.counters.test_requests);
                if write(&mut ws, vec![TEST_REQUEST.to_owned()]).await.is_err() {
                    break End::Drop;
                }
                awaiting_since = Some(now);
                next_test = session.heartbeat.map(|i| now + i);
            }
        }
    };
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
    }
}

/// The next event, when listening (otherwise never).
async fn next_event(
    events: &mut Option<broadcast::Receiver<Arc<Event>>>,
) -> Result<Arc<Event>, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes `texts` and flushes; fails when the socket fails or the client has not taken them
/// within [`WRITE_TIMEOUT`] (a client that stopped reading).
async fn write(ws: &mut Ws, texts: Vec<String>) -> Result<(), ()> {
    let all = async {
        for text in texts {
            ws.feed(Message::text(text)).await?;
        }
        ws.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, all).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The notifications `event` makes on this connection's channels.
fn select(session: &mut Session, event: &Event) -> Vec<String> {
    let account = session.client_id().map(str::to_owned);
    let mut out = Vec::new();
    for (channel, spec) in &session.subscriptions {
        if !spec.matches(event, account.as_deref()) {
            continue;
        }
        let text = match (spec, event) {
            (
                Spec::Book { raw, .. },
                Event::Book {
                    change_id, data, ..
                },
            ) => {
                let mark = session.book_marks.get(channel).copied().unwrap_or(0);
                if *change_id <= mark {
                    continue;
                }
                session.book_marks.insert(channel.clone(), *change_id);
                if *raw {
                    notification(channel, data)
                } else {
                    notification(channel, &with_type(data, "change"))
                }
            }
            (Spec::UserOrders { raw: false, .. }, Event::Order { data, .. }) => {
                notification(channel, &format!("[{data}]"))
            }
            (
                _,
                Event::Ticker { data, .. }
                | Event::Trades { data, .. }
                | Event::Index { data, .. }
                | Event::Order { data, .. }
                | Event::UserTrades { data, .. },
            ) => notification(channel, data),
            (_, Event::Book { .. }) => continue,
        };
        out.push(text);
    }
    out
}
