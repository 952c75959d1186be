//! One connection's task: the handshake (path, `max_active_time`, refusals), then reading
//! requests, writing answers and pushes, closing idle connections and obeying the handle's
//! fault commands.
//!
//! A connection that sends no `ping` for the idle timeout is closed (code 1000, "idle"); one
//! opened with `max_active_time` is closed when that time is up (code 1000,
//! "max_active_time"). Both are counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::debug;

use super::endpoint::Endpoint;
use super::market::Event;
use super::session::{Session, handle_text, pushes};
use super::{Shared, bump, register, unregister};

/// How long a write may wait for a client that does not read before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to complete the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A fault the handle asks a connection to perform.
#[derive(Clone, Debug)]
pub(super) enum Command {
    /// Reset the TCP connection (RST, no close frame).
    Reset,
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
}

type Ws = WebSocketStream<TcpStream>;

/// `max_active_time` as Bybit writes it: `30s`, `1m`, `600s`.
fn parse_active_time(value: &str) -> Option<Duration> {
    let (number, unit) = value.split_at(value.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    match unit {
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "ms" => Some(Duration::from_millis(n)),
        _ => None,
    }
}

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(why.to_owned()));
    *response.status_mut() = status;
    response
}

/// What the handshake learned.
#[derive(Debug, Default)]
struct Accepted {
    endpoint: Option<Endpoint>,
    max_active: Option<Duration>,
}

/// Serves one accepted TCP connection until it ends.
// The handshake callback's error type is tungstenite's, not ours to shrink.
#[allow(clippy::result_large_err)]
pub(super) async fn serve(stream: TcpStream, id: u64, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let accepted = Arc::new(Mutex::new(Accepted::default()));
    let seen = Arc::clone(&accepted);
    let check = Arc::clone(&shared);
    let callback =
        move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
            let refused = check.refuse.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
            if refused.is_ok() {
                bump(&check.counters.handshakes_refused);
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "refusing handshakes (fault)",
                ));
            }
            let Some(endpoint) = Endpoint::from_path(request.uri().path()) else {
                bump(&check.counters.handshakes_refused);
                return Err(refuse(StatusCode::NOT_FOUND, "no such endpoint"));
            };
            let mut max_active = None;
            if matches!(endpoint, Endpoint::Private | Endpoint::Trade) {
                let query = request.uri().query().unwrap_or("");
                for pair in query.split('&') {
                    if let Some(value) = pair.strip_prefix("max_active_time=") {
                        let (min, max) = check.options.max_active_range;
                        match parse_active_time(value) {
                            Some(d) if d >= min && d <= max => max_active = Some(d),
                            _ => {
                                bump(&check.counters.handshakes_refused);
                                return Err(refuse(
                                    StatusCode::BAD_REQUEST,
                                    "max_active_time out of range",
                                ));
                            }
                        }
                    }
                }
            }
            let mut slot = super::lock(&seen);
            slot.endpoint = Some(endpoint);
            slot.max_active = max_active;
            Ok(response)
        };
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async(stream, callback),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            debug!(id, error = %e, "bybit sim: handshake failed");
            return;
        }
        Err(_) => return,
    };
    let (endpoint, max_active) = {
        let a = super::lock(&accepted);
        (a.endpoint, a.max_active)
    };
    let Some(endpoint) = endpoint else { return };
    let commands = register(&shared, id, endpoint);
    run(ws, id, endpoint, max_active, &shared, commands).await;
    unregister(&shared, id);
}

/// How a connection's loop ended.
enum End {
    /// Drop the socket as it is.
    Drop,
    /// Reset it (RST).
    Reset,
    /// Close with this frame first.
    Close(u16, String),
}

async fn run(
    mut ws: Ws,
    id: u64,
    endpoint: Endpoint,
    max_active: Option<Duration>,
    shared: &Shared,
    mut commands: tokio::sync::mpsc::Receiver<Command>,
) {
    // Events only for a connection with topics (and always for private: its account pushes).
    let mut events: Option<broadcast::Receiver<Arc<Event>>> = None;
    let mut shutdown = shared.shutdown.subscribe();
    let mut silent = shared.silent.subscribe();
    let mut session = Session::new(shared, id, endpoint);
    let opened = Instant::now();
    let active_until = max_active.map(|d| opened + d);
    let mut idle_deadline = opened + shared.options.idle_timeout;
    let end = loop {
        let is_silent = *silent.borrow();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break End::Close(1001, "server shutting down".to_owned()),
            command = commands.recv() => match command {
                Some(Command::Reset) | None => break End::Reset,
                Some(Command::Close(code, reason)) => break End::Close(code, reason),
            },
            changed = silent.changed() => {
                if changed.is_err() {
                    break End::Drop;
                }
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                bump(&shared.counters.idle_disconnects);
                debug!(id, "bybit sim: no ping within the idle timeout, closing");
                break End::Close(1000, "idle: no ping".to_owned());
            }
            () = sleep_until(active_until), if active_until.is_some() => {
                bump(&shared.counters.max_active_disconnects);
                break End::Close(1000, "max_active_time reached".to_owned());
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
                // Listen before a subscribe takes its book snapshot, so no update after the
                // snapshot can be missed.
                if events.is_none() {
                    events = Some(shared.events.subscribe());
                }
                let texts = handle_text(shared, &mut session, text.as_str());
                if session.topics.is_empty() {
                    events = None;
                }
                if std::mem::take(&mut session.pinged) {
                    idle_deadline = Instant::now() + shared.options.idle_timeout;
                }
                if write(&mut ws, texts).await.is_err() {
                    break End::Drop;
                }
            }
            event = next_event(&mut events), if !is_silent && events.is_some() => {
                let event = match event {
                    Ok(event) => event,
                    // This connection fell behind and lost events (a gap its client can see).
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break End::Drop,
                };
                let texts = pushes(shared, &mut session, &event);
                if texts.is_empty() {
                    continue;
                }
                let sent = texts.len() as u64;
                if write(&mut ws, texts).await.is_err() {
                    break End::Drop;
                }
                shared.counters.pushes.fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
            }
        }
    };
    match end {
        End::Close(code, reason) => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
        }
        End::Reset => {
            // A zero linger does not block on drop (what `set_zero_linger` does in newer tokio).
            #[allow(deprecated)]
            let _ = ws.get_ref().set_linger(Some(Duration::ZERO));
            drop(ws);
        }
        End::Drop => {}
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
    if texts.is_empty() {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_times() {
        assert_eq!(parse_active_time("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_active_time("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_active_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_active_time("m"), None);
        assert_eq!(parse_active_time("10h"), None);
        assert_eq!(parse_active_time("10"), None);
    }
}
