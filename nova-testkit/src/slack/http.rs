//! The simulator's HTTP side: `POST /api/apps.connections.open` and the WebSocket handshake at
//! `/link/?ticket=...`, both on the one listening port.
//!
//! A request head is read up to [`MAX_HEAD`] bytes and parsed with httparse; every answer
//! closes the connection (`Connection: close`), except a handshake that is accepted, where the
//! socket becomes the WebSocket.
//!
//! `apps.connections.open` (Slack's method page): the app-level token in
//! `Authorization: Bearer xapp-...`. Answers, all `200` with a JSON body unless noted:
//! `{"ok":true,"url":"ws://127.0.0.1:PORT/link/?ticket=T&app_id=A"}` for an accepted token;
//! `{"ok":false,"error":"not_authed"}` without a token; `{"ok":false,"error":"invalid_auth"}`
//! for any other token; `429` with `Retry-After: N` (seconds) and
//! `{"ok":false,"error":"ratelimited"}` while [`SlackHandle::rate_limit_opens`] is in force.
//!
//! The handshake is answered `101` for a fresh ticket, `401` for an unknown, reused or expired
//! one (what Slack answers there is not documented; any refusal tells the client to ask for a
//! new URL), `404` for any other path.
//!
//! [`connections_open`] is the same call written by hand over a `TcpStream`, for tests that
//! want to see the raw answer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use super::ticket::Refusal;
use super::{Shared, bump, connection, lock};

/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// The largest request body read (and ignored).
const MAX_BODY: usize = 64 * 1024;
/// The largest response [`connections_open`] reads.
const MAX_RESPONSE: usize = 64 * 1024;
/// How long a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the simulator needs from a request head.
#[derive(Debug, Default)]
struct Head {
    method: String,
    path: String,
    authorization: Option<String>,
    websocket_key: Option<String>,
    upgrade: bool,
    content_length: usize,
    /// Bytes read past the head (the start of a body).
    rest: Vec<u8>,
}

/// Serves one accepted TCP connection: an API call or a WebSocket handshake.
pub(super) async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(e)) => {
            debug!(error = %e, "slack sim: bad request head");
            let _ = respond(&mut stream, 400, "Bad Request", None, "").await;
            return;
        }
    };
    let path = head.path.split('?').next().unwrap_or_default();
    match (head.method.as_str(), path) {
        ("POST", "/api/apps.connections.open") => {
            if tokio::time::timeout(REQUEST_TIMEOUT, skip_body(&mut stream, &head))
                .await
                .is_err()
            {
                return;
            }
            let (status, retry_after, body) = open_answer(&shared, head.authorization.as_deref());
            let reason = if status == 429 {
                "Too Many Requests"
            } else {
                "OK"
            };
            let _ = respond(&mut stream, status, reason, retry_after, &body).await;
        }
        ("GET", "/link" | "/link/") if head.upgrade => {
            let Some(key) = head.websocket_key.as_deref() else {
                let _ = respond(&mut stream, 400, "Bad Request", None, "").await;
                return;
            };
            let ticket = query_param(&head.path, "ticket").unwrap_or_default();
            if let Err(refusal) = redeem(&shared, ticket) {
                let _ = respond(
                    &mut stream,
                    401,
                    "Unauthorized",
                    None,
                    &format!("ticket refused: {refusal:?}"),
                )
                .await;
                return;
            }
            let accept = derive_accept_key(key.as_bytes());
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            let ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
            connection::serve(ws, shared).await;
        }
        _ => {
            let _ = respond(&mut stream, 404, "Not Found", None, "").await;
        }
    }
}

/// Uses `ticket`, counting a refusal.
fn redeem(shared: &Shared, ticket: &str) -> Result<(), Refusal> {
    let result =
        lock(&shared.state)
            .tickets
            .redeem(ticket, Instant::now(), shared.options.ticket_lifetime);
    if let Err(refusal) = result {
        bump(&shared.counters.refused_handshakes);
        match refusal {
            Refusal::Reused => bump(&shared.counters.tickets_reused),
            Refusal::Expired => bump(&shared.counters.tickets_expired),
            Refusal::Unknown => {}
        }
    }
    result
}

/// The answer to `apps.connections.open`: status, `Retry-After` seconds, JSON body.
fn open_answer(shared: &Shared, authorization: Option<&str>) -> (u16, Option<u64>, String) {
    let mut state = lock(&shared.state);
    if let Some(limit) = state.rate_limit.as_mut() {
        if limit.remaining > 0 {
            limit.remaining -= 1;
            let seconds = limit.retry_after.as_secs();
            drop(state);
            bump(&shared.counters.rate_limited);
            let body = json!({"ok": false, "error": "ratelimited"}).to_string();
            return (429, Some(seconds), body);
        }
    }
    let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
    let error = match token {
        None => Some("not_authed"),
        Some(token) if !shared.options.app_tokens.iter().any(|t| t == token) => {
            Some("invalid_auth")
        }
        Some(_) => None,
    };
    if let Some(error) = error {
        drop(state);
        bump(&shared.counters.open_failures);
        return (200, None, json!({"ok": false, "error": error}).to_string());
    }
    let ticket = state.ids.ticket();
    state.tickets.issue(
        ticket.clone(),
        Instant::now(),
        shared.options.ticket_lifetime,
    );
    drop(state);
    bump(&shared.counters.opens);
    let url = shared.link_url(&ticket);
    (200, None, json!({"ok": true, "url": url}).to_string())
}

/// The value of `name` in the query of `path`.
fn query_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Reads and parses a request head; `None` when the client closed first.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            Ok(httparse::Status::Complete(len)) => {
                let mut head = Head {
                    method: request.method.unwrap_or_default().to_owned(),
                    path: request.path.unwrap_or_default().to_owned(),
                    rest: buf.get(len..).unwrap_or_default().to_vec(),
                    ..Head::default()
                };
                for header in request.headers.iter() {
                    let value = String::from_utf8_lossy(header.value).trim().to_owned();
                    let name = header.name;
                    if name.eq_ignore_ascii_case("authorization") {
                        head.authorization = Some(value);
                    } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                        head.websocket_key = Some(value);
                    } else if name.eq_ignore_ascii_case("upgrade") {
                        head.upgrade = value.eq_ignore_ascii_case("websocket");
                    } else if name.eq_ignore_ascii_case("content-length") {
                        head.content_length = value.parse().unwrap_or(0);
                    }
                }
                return Ok(Some(head));
            }
        }
    }
}

/// Reads (and drops) the request body announced by `Content-Length`, up to [`MAX_BODY`].
async fn skip_body(stream: &mut TcpStream, head: &Head) {
    let mut left = head
        .content_length
        .min(MAX_BODY)
        .saturating_sub(head.rest.len());
    let mut chunk = [0u8; 1024];
    while left > 0 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    retry_after: Option<u64>,
    body: &str,
) -> io::Result<()> {
    let content_type = if body.starts_with('{') {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let retry_after = retry_after
        .map(|s| format!("Retry-After: {s}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{retry_after}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The raw answer to an `apps.connections.open` call made by [`connections_open`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OpenReply {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, in seconds, when there was one.
    pub retry_after: Option<u64>,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
}

impl OpenReply {
    /// The `url` of a successful answer.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.body.get("url").and_then(Value::as_str)
    }

    /// The `error` of a failed answer.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }
}

/// Calls `POST /api/apps.connections.open` on the simulator at `addr`, written by hand over a
/// `TcpStream`, with `Authorization: Bearer {token}` when `token` is given.
///
/// # Errors
/// When the connection fails or the answer is not a complete HTTP response.
pub async fn connections_open(addr: SocketAddr, token: Option<&str>) -> io::Result<OpenReply> {
    let mut stream = TcpStream::connect(addr).await?;
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /api/apps.connections.open HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{authorization}\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut response)
        .await?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(&response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"));
        }
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let retry_after = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse().ok());
    let body =
        serde_json::from_slice(response.get(head_len..).unwrap_or_default()).unwrap_or(Value::Null);
    Ok(OpenReply {
        status: parsed.code.unwrap_or(0),
        retry_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        assert_eq!(
            query_param("/link/?ticket=abc&app_id=A1", "ticket"),
            Some("abc")
        );
        assert_eq!(query_param("/link/?app_id=A1", "ticket"), None);
        assert_eq!(query_param("/link/", "ticket"), None);
    }
}
