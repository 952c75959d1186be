//! The front door of both listeners: one HTTP/1.1 request head, parsed with httparse, then
//! either a REST answer or the WebSocket upgrade into the gateway.
//!
//! REST (main listener only): `GET /api/v10/gateway` answers `{"url"}`; `GET
//! /api/v10/gateway/bot` needs `Authorization: Bot TOKEN` (401 otherwise) and answers `url`,
//! `shards` and `session_start_limit`. Every REST answer closes the connection.
//!
//! Gateway: an upgrade request on any path, with the query `v`, `encoding` and `compress`. The
//! handshake is written here (RFC 6455 section 4.2.2) so the same socket can serve both; an
//! `encoding` other than `json` or a `compress` other than `zlib-stream` is refused with 400.
//! A `v` other than 10 is accepted and then closed with 4012, as Discord does.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::debug;

use super::{ConnectionInfo, Shared, bump, connection, lock};

/// The largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest WebSocket message the gateway reads (Discord's own limit, 4096, is checked
/// after reading, to close with 4002).
const MAX_MESSAGE: usize = 64 * 1024;
/// The only API version the gateway accepts.
const API_VERSION: &str = "10";

/// A parsed request head.
#[derive(Debug, Default)]
struct Head {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    authorization: Option<String>,
    websocket_key: Option<String>,
    upgrade: bool,
}

impl Head {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one accepted TCP connection.
pub(super) async fn serve(mut stream: TcpStream, shared: Arc<Shared>, resume: bool) {
    let _ = stream.set_nodelay(true);
    let Ok(Some((head, leftover))) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream))
        .await
        .unwrap_or(Ok(None))
    else {
        return;
    };
    if head.upgrade {
        upgrade(stream, head, leftover, shared, resume).await;
        return;
    }
    bump(&shared.counters.http_requests);
    let (status, body) = if resume {
        (404, not_found())
    } else {
        rest(&head, &shared)
    };
    let response = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads until the end of the request head; returns it and the bytes read after it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Head, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = to_head(&request);
                return Ok(Some((head, buf[len..].to_vec())));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Ok(None),
        }
    }
}

fn to_head(request: &httparse::Request<'_, '_>) -> Head {
    let target = request.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut head = Head {
        method: request.method.unwrap_or("").to_owned(),
        path: path.to_owned(),
        query,
        ..Head::default()
    };
    for header in request.headers.iter() {
        let value = String::from_utf8_lossy(header.value).into_owned();
        if header.name.eq_ignore_ascii_case("authorization") {
            head.authorization = Some(value);
        } else if header.name.eq_ignore_ascii_case("sec-websocket-key") {
            head.websocket_key = Some(value);
        } else if header.name.eq_ignore_ascii_case("upgrade") {
            head.upgrade = value.eq_ignore_ascii_case("websocket");
        }
    }
    head
}

/// The REST answer: status and JSON body.
fn rest(head: &Head, shared: &Shared) -> (u16, String) {
    let path = head.path.trim_end_matches('/');
    if head.method != "GET" {
        return (
            405,
            r#"{"message": "405: Method Not Allowed", "code": 0}"#.into(),
        );
    }
    match path {
        "/api/v10/gateway" => (
            200,
            serde_json::json!({ "url": shared.gateway_url() }).to_string(),
        ),
        "/api/v10/gateway/bot" => {
            let authorized = head
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bot "))
                .is_some_and(|token| shared.token_ok(token));
            if !authorized {
                return (401, r#"{"message": "401: Unauthorized", "code": 0}"#.into());
            }
            let limit = lock(&shared.identify).limit(&shared.options, tokio::time::Instant::now());
            let body = serde_json::json!({
                "url": shared.gateway_url(),
                "shards": shared.options.shards,
                "session_start_limit": {
                    "total": limit.total,
                    "remaining": limit.remaining,
                    "reset_after": limit.reset_after,
                    "max_concurrency": limit.max_concurrency,
                },
            });
            (200, body.to_string())
        }
        _ => (404, not_found()),
    }
}

fn not_found() -> String {
    r#"{"message": "404: Not Found", "code": 0}"#.into()
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        _ => "Not Found",
    }
}

/// Completes the WebSocket handshake and runs the gateway connection.
async fn upgrade(
    mut stream: TcpStream,
    head: Head,
    leftover: Vec<u8>,
    shared: Arc<Shared>,
    resume: bool,
) {
    let compressed = match head.query("compress") {
        None => false,
        Some("zlib-stream") => true,
        Some(_) => return refuse(stream, &shared, "unsupported compress").await,
    };
    if !matches!(head.query("encoding"), None | Some("json")) {
        return refuse(stream, &shared, "unsupported encoding").await;
    }
    let Some(key) = head.websocket_key.as_deref() else {
        return refuse(stream, &shared, "missing Sec-WebSocket-Key").await;
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key.trim().as_bytes())
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let version_ok = head.query("v") == Some(API_VERSION);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(config)).await;
    let info = ConnectionInfo {
        via_resume_url: resume,
        compressed,
        ..ConnectionInfo::default()
    };
    debug!(
        resume,
        compressed, version_ok, "discord sim: gateway connection"
    );
    connection::serve(ws, shared, info, version_ok).await;
}

async fn refuse(mut stream: TcpStream, shared: &Shared, why: &str) {
    bump(&shared.counters.http_requests);
    let body = serde_json::json!({ "message": why, "code": 0 }).to_string();
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
