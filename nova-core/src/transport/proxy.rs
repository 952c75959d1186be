//! Proxy tunnels: HTTP `CONNECT` and SOCKS5, opened on a TCP stream to the proxy.
//!
//! **HTTP CONNECT** (RFC 9110 §9.3.6): the client sends
//! `CONNECT host:port HTTP/1.1` with a `Host` header and, when credentials are configured,
//! `Proxy-Authorization: Basic base64(user:pass)`. The proxy answers with an HTTP response head;
//! any 2xx status means the TCP stream is now a byte tunnel to the target, anything else
//! (407 Proxy Authentication Required, 403, 502...) is a [`TransportError::Proxy`] carrying the
//! status. The response head is read with a size cap (8 KiB) and parsed with `httparse`; since
//! a WebSocket client speaks first, bytes after the head are a protocol error.
//!
//! **SOCKS5** (RFC 1928, username/password from RFC 1929) through `tokio-socks`. The target is
//! sent as a domain name when the URL has one, so the proxy resolves it (like `socks5h://`).
//!
//! In both cases TLS, when the URL is `wss://`, runs afterwards inside the tunnel.

use base64::Engine as _;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{ProxyAuth, TransportError};

/// Largest CONNECT response head accepted.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Formats `host:port`, bracketing IPv6 literals.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn proxy_error(proxy: &str, status: Option<u16>, reason: impl Into<String>) -> TransportError {
    TransportError::Proxy {
        proxy: proxy.to_owned(),
        status,
        reason: reason.into(),
        source: None,
    }
}

fn proxy_io_error(proxy: &str, what: &str, error: std::io::Error) -> TransportError {
    TransportError::Proxy {
        proxy: proxy.to_owned(),
        status: None,
        reason: format!("{what}: {error}"),
        source: Some(error),
    }
}

/// Opens an HTTP CONNECT tunnel to `host:port` over `stream`.
pub(crate) async fn http_connect(
    stream: &mut TcpStream,
    proxy: &str,
    host: &str,
    port: u16,
    auth: Option<&ProxyAuth>,
) -> Result<(), TransportError> {
    let target = authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            auth.username,
            auth.password()
        ));
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| proxy_io_error(proxy, "sending CONNECT", e))?;

    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_RESPONSE_HEAD {
            return Err(proxy_error(
                proxy,
                None,
                "CONNECT response head larger than 8 KiB",
            ));
        }
        let mut chunk = [0u8; 1024];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| proxy_io_error(proxy, "reading the CONNECT response", e))?;
        if n == 0 {
            return Err(proxy_error(
                proxy,
                None,
                "proxy closed the connection before answering CONNECT",
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());

        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(head_len)) => {
                let status = response.code.unwrap_or(0);
                if !(200..300).contains(&status) {
                    let reason = response.reason.unwrap_or("");
                    let hint = if status == 407 {
                        if auth.is_some() {
                            " (credentials rejected)"
                        } else {
                            " (credentials required)"
                        }
                    } else {
                        ""
                    };
                    return Err(proxy_error(
                        proxy,
                        Some(status),
                        format!("CONNECT refused: {status} {reason}{hint}"),
                    ));
                }
                if head_len != buf.len() {
                    return Err(proxy_error(
                        proxy,
                        Some(status),
                        "unexpected bytes after the CONNECT response",
                    ));
                }
                return Ok(());
            }
            Err(e) => {
                return Err(proxy_error(
                    proxy,
                    None,
                    format!("malformed CONNECT response: {e}"),
                ));
            }
        }
    }
}

/// Opens a SOCKS5 tunnel to `host:port` over `stream`.
pub(crate) async fn socks5_connect(
    stream: TcpStream,
    proxy: &str,
    host: &str,
    port: u16,
    auth: Option<&ProxyAuth>,
) -> Result<TcpStream, TransportError> {
    use tokio_socks::tcp::Socks5Stream;
    let target = (host, port);
    let result = match auth {
        None => Socks5Stream::connect_with_socket(stream, target).await,
        Some(auth) => {
            Socks5Stream::connect_with_password_and_socket(
                stream,
                target,
                &auth.username,
                auth.password(),
            )
            .await
        }
    };
    match result {
        Ok(tunnel) => Ok(tunnel.into_inner()),
        Err(tokio_socks::Error::Io(e)) => Err(proxy_io_error(proxy, "SOCKS5 negotiation", e)),
        Err(e) => Err(TransportError::Proxy {
            proxy: proxy.to_owned(),
            status: None,
            reason: format!("SOCKS5: {e}"),
            source: Some(std::io::Error::other(e)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_ipv6() {
        assert_eq!(authority("::1", 443), "[::1]:443");
        assert_eq!(authority("example.com", 80), "example.com:80");
    }
}
