//! The connect sequence: URL → DNS → TCP → (proxy tunnel) → (TLS) → WebSocket handshake.
//!
//! A [`Transport`] is built once from a [`TransportConfig`]: it validates the config, prepares
//! the handshake headers and the tungstenite `WebSocketConfig`, and builds the rustls client
//! config on the first `wss://` connect (then reuses it, so TLS session resumption works across
//! reconnects). [`Transport::connect`] runs the whole sequence under one deadline,
//! `connect_timeout`; when it fires, the error names the stage that was running.
//!
//! Without a proxy, the host's addresses are raced with Happy Eyeballs (RFC 8305, see
//! [`eyeballs`](super::eyeballs)): attempts staggered by
//! [`happy_eyeballs_delay`](TransportConfig::happy_eyeballs_delay), families interleaved, the
//! first to answer wins. With a proxy, only the proxy's address is resolved locally (and raced
//! the same way); the target host name goes to the proxy. An IP literal or a single address is
//! connected to directly. The WebSocket handshake request carries the extra headers and the offered
//! subprotocols; a non-101 answer becomes [`TransportError::HandshakeRejected`] with the
//! status and the parsed `Retry-After`.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{
    Error as WsError, client::IntoClientRequest as _, handshake::client::Response,
    protocol::WebSocketConfig,
};

use super::{
    AdaptiveStream, ConnectStage, NovaStream, ProxyConfig, TlsRoots, TransportConfig,
    TransportError, WsStream, eyeballs, proxy, stream::SMALL_READ_BUFFER, tls,
};
use crate::error::Error;
use crate::message::{CloseFrame, Frame, Message};

/// An established WebSocket connection and what the handshake said.
///
/// Sends and receives nova's [`Message`]s and [`Frame`]s; the socket libraries underneath are
/// not part of nova's API. This is the transport alone: no reconnect, no heartbeat, no handler
/// (the [`Client`](crate::Client) runtime adds those). Pings are answered by the WebSocket
/// layer while [`recv`](Self::recv) is being called.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use nova_core::{Frame, Message, TransportConfig};
///
/// let mut connected = nova_core::connect("wss://example.com/ws", &TransportConfig::default()).await?;
/// connected.send(Message::text("hello")).await?;
/// if let Some(Frame::Text(reply)) = connected.recv().await.transpose()? {
///     println!("{reply}");
/// }
/// connected.close(None).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Connected {
    /// The WebSocket stream, ready for messages.
    pub(crate) stream: WsStream,
    /// The server's `101 Switching Protocols` response (status and headers).
    pub(crate) response: Response,
    /// The server's socket address; `None` when connected through a proxy.
    pub(crate) peer_addr: Option<SocketAddr>,
    /// The subprotocol the server selected from the offered ones, if any.
    pub(crate) protocol: Option<String>,
}

impl Connected {
    /// The server's `101 Switching Protocols` response (status and headers).
    #[must_use]
    pub fn response(&self) -> &http::Response<Option<Vec<u8>>> {
        &self.response
    }

    /// The server's socket address; `None` when connected through a proxy.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The subprotocol the server selected from the offered ones, if any.
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// `true` for `wss://`.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.stream.get_ref().is_tls()
    }

    /// The ALPN protocol the TLS server selected, if any.
    #[must_use]
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.stream.get_ref().alpn_protocol()
    }

    /// The TCP socket underneath (to the server, or to the proxy when tunnelled).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        self.stream.get_ref().tcp()
    }

    /// Sends a data message and flushes it.
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] when the socket broke (the `io::Error` is the source),
    /// [`Error::MessageTooLarge`] over the configured limit.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.stream.send(message.into_ws()).await.map_err(ws_error)
    }

    /// Sends any frame (a ping, a pong, a close) and flushes it.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_frame(&mut self, frame: Frame) -> Result<(), Error> {
        self.stream.send(frame.into_ws()).await.map_err(ws_error)
    }

    /// The next frame from the server; `None` once the connection is closed.
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] when the socket broke, [`Error::Protocol`] when the server
    /// broke the WebSocket protocol, [`Error::MessageTooLarge`] over the configured limit.
    pub async fn recv(&mut self) -> Option<Result<Frame, Error>> {
        loop {
            match self.stream.next().await? {
                Ok(message) => match Frame::from_ws(message) {
                    Some(frame) => return Some(Ok(frame)),
                    None => continue,
                },
                Err(WsError::ConnectionClosed) => return None,
                Err(e) => return Some(Err(ws_error(e))),
            }
        }
    }

    /// Starts the closing handshake with `frame` (or a plain close) and flushes it; keep calling
    /// [`recv`](Self::recv) until it returns `None` to complete it.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        self.send_frame(Frame::Close(frame)).await
    }
}

/// nova's error for a WebSocket error on an open connection (the cause kept as the source).
fn ws_error(e: WsError) -> Error {
    use tokio_tungstenite::tungstenite::error::CapacityError;
    match e {
        WsError::Io(io) => Error::connection_lost_by(io.to_string(), io),
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Error::MessageTooLarge {
                size,
                limit: max_size,
            }
        }
        e @ (WsError::Protocol(_) | WsError::Utf8(_) | WsError::Capacity(_)) => {
            Error::protocol_by(e.to_string(), e)
        }
        other => Error::connection_lost_by(other.to_string(), other),
    }
}

/// Connects WebSocket clients with one validated [`TransportConfig`].
///
/// Cheap to clone (the state is shared); the rustls client config is built on the first
/// `wss://` connect and reused.
///
/// ```no_run
/// # async fn run() -> Result<(), nova_core::TransportError> {
/// use nova_core::{Transport, TransportConfig};
///
/// let transport = Transport::new(TransportConfig::default().with_subprotocol("json"))?;
/// let connected = transport.connect("wss://example.com/ws").await?;
/// println!("selected subprotocol: {:?}", connected.protocol());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Transport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TransportConfig,
    ws_config: WebSocketConfig,
    headers: HeaderMap,
    tls: OnceLock<Arc<ClientConfig>>,
}

/// `true` for the handshake headers the WebSocket protocol sets itself.
fn is_reserved(name: &HeaderName) -> bool {
    [
        header::HOST,
        header::CONNECTION,
        header::UPGRADE,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_PROTOCOL,
    ]
    .contains(name)
}

impl Transport {
    /// Validates `config` and prepares everything that does not need I/O.
    ///
    /// Fails with [`TransportError::InvalidConfig`] for a forbidden or malformed header,
    /// an invalid subprotocol name, inconsistent buffer sizes, unparseable TLS material or a
    /// [`TlsRoots`] whose feature is off. The rustls client config is built here, except with
    /// `TlsRoots::Native` (the OS store is read on the first `wss://` connect) and with
    /// `TlsRoots::None` and no extra CA (a `ws://`-only config; a `wss://` connect then fails
    /// with `InvalidConfig`).
    pub fn new(config: TransportConfig) -> Result<Self, TransportError> {
        config.validate_sizes()?;
        let headers = build_headers(&config)?;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(config.read_buffer_size.min(SMALL_READ_BUFFER))
            .write_buffer_size(config.write_buffer_size)
            .max_write_buffer_size(config.max_write_buffer_size)
            .max_message_size(config.max_message_size)
            .max_frame_size(config.max_frame_size);
        // Build the TLS config now, so bad PEM or a missing feature is reported here, except
        // when that would cost I/O (the OS store) or fail a ws://-only config (no roots at all).
        let eager = match config.tls.roots {
            TlsRoots::Native => cfg!(not(feature = "native-roots")),
            TlsRoots::None => {
                !config.tls.extra_ca_pem.is_empty() || config.tls.client_identity.is_some()
            }
            TlsRoots::WebPki => true,
        };
        let tls = OnceLock::new();
        if eager {
            let _ = tls.set(tls::build_client_config(&config.tls)?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                ws_config,
                headers,
                tls,
            }),
        })
    }

    /// The configuration this transport was built from.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    /// Connects to a `ws://` or `wss://` URL and completes the WebSocket handshake, all within
    /// `connect_timeout`.
    pub async fn connect(&self, url: &str) -> Result<Connected, TransportError> {
        self.connect_with_headers(url, &[]).await
    }

    /// Like [`connect`](Self::connect), adding `headers` to this one handshake after the
    /// configured ones (for credentials computed per connect, such as a signed timestamp).
    /// They are validated like [`TransportConfig::headers`].
    pub async fn connect_with_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Connected, TransportError> {
        self.connect_resolved(url, headers, None).await
    }

    /// The connect; `addrs`, when given, replaces what the host (or the proxy's host) resolves
    /// to (for tests).
    pub(crate) async fn connect_resolved(
        &self,
        url: &str,
        headers: &[(String, String)],
        addrs: Option<Vec<SocketAddr>>,
    ) -> Result<Connected, TransportError> {
        let target = Target::parse(url)?;
        let mut extra = HeaderMap::new();
        for (name, value) in headers {
            let (name, value) = header_pair(name, value)?;
            extra.append(name, value);
        }
        let stage = AtomicU8::new(ConnectStage::Resolve.to_u8());
        let timeout = self.inner.config.connect_timeout;
        let attempt = self.connect_inner(target, extra, addrs, &stage);
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => Err(TransportError::Timeout {
                after: timeout,
                stage: ConnectStage::from_u8(stage.load(Ordering::Relaxed)),
            }),
        }
    }

    async fn connect_inner(
        &self,
        target: Target,
        extra_headers: HeaderMap,
        resolved: Option<Vec<SocketAddr>>,
        stage: &AtomicU8,
    ) -> Result<Connected, TransportError> {
        let set_stage = |s: ConnectStage| stage.store(s.to_u8(), Ordering::Relaxed);
        let config = &self.inner.config;
        let delay = config.happy_eyeballs_delay;

        let (tcp, peer_addr) = match &config.proxy {
            None => {
                let addrs = match resolved {
                    Some(addrs) => addrs,
                    None => resolve(&target.host, target.port).await?,
                };
                set_stage(ConnectStage::TcpConnect);
                let tcp = connect_tcp(&addrs, delay).await?;
                let peer = tcp.peer_addr().ok();
                (tcp, peer)
            }
            Some(proxy_config) => {
                let proxy_addr = proxy_config.addr();
                let addrs = match resolved {
                    Some(addrs) => addrs,
                    None => tokio::net::lookup_host(proxy_addr)
                        .await
                        .map(|a| a.collect::<Vec<_>>())
                        .map_err(|e| TransportError::Proxy {
                            proxy: proxy_addr.to_owned(),
                            status: None,
                            reason: format!("cannot resolve the proxy address: {e}"),
                            source: Some(e),
                        })?,
                };
                set_stage(ConnectStage::TcpConnect);
                let mut tcp = connect_tcp(&addrs, delay).await.map_err(|e| match e {
                    TransportError::Connect { source, .. } => TransportError::Proxy {
                        proxy: proxy_addr.to_owned(),
                        status: None,
                        reason: format!("cannot connect to the proxy: {source}"),
                        source: Some(source),
                    },
                    other => other,
                })?;
                set_stage(ConnectStage::Proxy);
                match proxy_config {
                    ProxyConfig::HttpConnect { auth, .. } => {
                        proxy::http_connect(
                            &mut tcp,
                            proxy_addr,
                            &target.host,
                            target.port,
                            auth.as_ref(),
                        )
                        .await?;
                    }
                    ProxyConfig::Socks5 { auth, .. } => {
                        tcp = proxy::socks5_connect(
                            tcp,
                            proxy_addr,
                            &target.host,
                            target.port,
                            auth.as_ref(),
                        )
                        .await?;
                    }
                }
                (tcp, None)
            }
        };
        tcp.set_nodelay(config.tcp_nodelay)?;
        if let Some(idle) = config.tcp_keepalive {
            let keepalive = socket2::TcpKeepalive::new().with_time(idle);
            socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive)?;
        }

        let stream = if target.secure {
            set_stage(ConnectStage::Tls);
            let client_config = self.tls_config()?;
            let server_name = ServerName::try_from(target.host.clone()).map_err(|_| {
                TransportError::invalid_url(format!(
                    "`{}` is not a valid TLS server name",
                    target.host
                ))
            })?;
            let tls_stream = tokio_rustls::TlsConnector::from(client_config)
                .connect(server_name, tcp)
                .await
                .map_err(|e| tls::tls_error(&target.host, e))?;
            NovaStream::Tls(Box::new(tls_stream))
        } else {
            NovaStream::Plain(tcp)
        };

        set_stage(ConnectStage::Handshake);
        let mut request = target
            .uri
            .into_client_request()
            .map_err(|e| TransportError::invalid_url(e.to_string()))?;
        for (name, value) in &self.inner.headers {
            request.headers_mut().append(name, value.clone());
        }
        for (name, value) in extra_headers {
            if let Some(name) = name {
                request.headers_mut().append(name, value);
            }
        }
        let stream = AdaptiveStream::new(stream, self.inner.config.read_buffer_size);
        let (stream, response) = tokio_tungstenite::client_async_with_config(
            request,
            stream,
            Some(self.inner.ws_config),
        )
        .await
        .map_err(|e| match e {
            // With TLS 1.3 the server checks the client certificate after the client's
            // handshake is done: its alert arrives while reading the upgrade response.
            WsError::Io(io) if tls::is_tls_error(&io) => tls::tls_error(&target.host, io),
            other => TransportError::from_handshake(other),
        })?;
        let protocol = response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        tracing::debug!(
            host = %target.host,
            port = target.port,
            tls = target.secure,
            proxy = config.proxy.as_ref().map(ProxyConfig::kind),
            "websocket connected"
        );
        Ok(Connected {
            stream,
            response,
            peer_addr,
            protocol,
        })
    }

    fn tls_config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        if let Some(config) = self.inner.tls.get() {
            return Ok(Arc::clone(config));
        }
        let config = tls::build_client_config(&self.inner.config.tls)?;
        // A concurrent connect may have won the race; either config is equivalent.
        Ok(Arc::clone(self.inner.tls.get_or_init(|| config)))
    }
}

/// Connects to `url` with `config`: a one-shot [`Transport::new`] plus
/// [`Transport::connect`]. Reconnecting clients should keep a [`Transport`] instead, so the
/// TLS config (and its session cache) is built once.
pub async fn connect(url: &str, config: &TransportConfig) -> Result<Connected, TransportError> {
    Transport::new(config.clone())?.connect(url).await
}

/// The parts of a WebSocket URL the connect needs.
struct Target {
    secure: bool,
    /// Host name or IP literal, without IPv6 brackets.
    host: String,
    port: u16,
    /// The URL without fragment and credentials, for the handshake request.
    uri: http::Uri,
}

impl Target {
    fn parse(url: &str) -> Result<Self, TransportError> {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| TransportError::invalid_url(format!("cannot parse: {e}")))?;
        let secure = match parsed.scheme() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(TransportError::invalid_url(format!(
                    "scheme `{other}` is not ws or wss"
                )));
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(TransportError::invalid_url("no host")),
        };
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if secure { 443 } else { 80 });
        parsed.set_fragment(None);
        // Credentials in the URL are not sent anywhere; drop them from the request.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let uri = parsed
            .as_str()
            .parse::<http::Uri>()
            .map_err(|e| TransportError::invalid_url(e.to_string()))?;
        Ok(Self {
            secure,
            host,
            port,
            uri,
        })
    }
}

/// Validates and converts the extra headers and subprotocols.
fn build_headers(config: &TransportConfig) -> Result<HeaderMap, TransportError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let (name, value) = header_pair(name, value)?;
        headers.append(name, value);
    }
    if !config.subprotocols.is_empty() {
        for protocol in &config.subprotocols {
            let is_token = !protocol.is_empty()
                && protocol
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !is_token {
                return Err(TransportError::invalid_config(format!(
                    "subprotocol `{protocol}` is not an HTTP token"
                )));
            }
        }
        let value = HeaderValue::from_str(&config.subprotocols.join(", ")).map_err(|_| {
            TransportError::invalid_config("subprotocols do not form a valid header value")
        })?;
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(headers)
}

/// Validates one extra handshake header.
fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), TransportError> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| TransportError::invalid_config(format!("invalid header name `{name}`")))?;
    if is_reserved(&name) {
        return Err(TransportError::invalid_config(format!(
            "header `{name}` is set by the WebSocket handshake and cannot be overridden{}",
            if name == header::SEC_WEBSOCKET_PROTOCOL {
                " (use subprotocols)"
            } else {
                ""
            }
        )));
    }
    // Never quote the value: it may be a credential.
    let value = HeaderValue::from_str(value).map_err(|_| {
        TransportError::invalid_config(format!("header `{name}` has an invalid value"))
    })?;
    Ok((name, value))
}

/// Resolves `host:port`; IP literals skip the resolver.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, TransportError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| TransportError::Dns {
            host: host.to_owned(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TransportError::Dns {
            host: host.to_owned(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        });
    }
    Ok(addrs)
}

/// Opens TCP to one of `addrs`: directly when there is one, else with Happy Eyeballs
/// ([`eyeballs::race`] over the [`eyeballs::interleave`]d list, attempts `delay` apart).
async fn connect_tcp(
    addrs: &[SocketAddr],
    delay: Option<Duration>,
) -> Result<TcpStream, TransportError> {
    if let [addr] = addrs {
        return match TcpStream::connect(addr).await {
            Ok(tcp) => {
                tracing::debug!(%addr, "TCP connected");
                Ok(tcp)
            }
            Err(source) => {
                tracing::debug!(%addr, error = %source, "TCP connect failed");
                Err(TransportError::Connect {
                    addr: addr.to_string(),
                    source,
                })
            }
        };
    }
    let ordered = eyeballs::interleave(addrs);
    match eyeballs::race(&ordered, delay, TcpStream::connect).await {
        Ok((_, tcp)) => Ok(tcp),
        Err(failures) => Err(eyeballs::connect_error(failures)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("wss://user:pw@Example.COM/a?b=c#frag").ok();
        let t = t.as_ref();
        assert_eq!(
            t.map(|t| (t.secure, t.host.as_str(), t.port)),
            Some((true, "example.com", 443))
        );
        assert_eq!(
            t.map(|t| t.uri.to_string()),
            Some("wss://example.com/a?b=c".to_owned())
        );
        let t = Target::parse("ws://[::1]:9000").ok();
        assert_eq!(t.map(|t| (t.host, t.port)), Some(("::1".to_owned(), 9000)));
        for bad in ["http://x", "ws://", "nonsense", "wss://[::1"] {
            let e = Target::parse(bad).err();
            assert!(e.is_some_and(|e| e.is_permanent()), "{bad}");
        }
    }

    #[test]
    fn rejects_reserved_and_bad_headers() {
        for (name, value) in [
            ("Host", "x"),
            ("sec-websocket-key", "x"),
            ("bad name", "x"),
            ("X-A", "a\nb"),
        ] {
            let config = TransportConfig::default().with_header(name, value);
            let err = Transport::new(config).err();
            assert!(
                matches!(err, Some(TransportError::InvalidConfig { .. })),
                "{name}"
            );
        }
        let config = TransportConfig::default().with_subprotocol("a b");
        assert!(Transport::new(config).is_err());
        let config = TransportConfig::default()
            .with_subprotocol("v2.json")
            .with_subprotocol("v1.json")
            .with_header("X-Api-Key", "k");
        let transport = Transport::new(config).ok();
        let headers = transport
            .map(|t| t.inner.headers.clone())
            .unwrap_or_default();
        assert_eq!(
            headers
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok()),
            Some("v2.json, v1.json")
        );
        assert!(headers.contains_key("x-api-key"));
    }
}
