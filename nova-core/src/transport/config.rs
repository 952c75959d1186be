//! Transport configuration: what a connect needs besides the URL.
//!
//! A [`TransportConfig`] says how long a connect may take, which extra handshake headers and
//! subprotocols to send, the WebSocket frame/message limits and buffer sizes handed to
//! tungstenite, the TCP socket options, the TLS trust ([`TlsConfig`]) and an optional proxy
//! ([`ProxyConfig`]). Every type here is plain data: nothing is validated or built until a
//! [`Transport`](super::Transport) is created from it, which reports a bad config as
//! [`TransportError::InvalidConfig`](super::TransportError::InvalidConfig) instead of panicking.
//!
//! Secrets (header values, proxy passwords, client private keys) never appear in `Debug` output.

use std::{fmt, time::Duration};

use super::TransportError;
use crate::Secret;

/// Text printed by `Debug` in place of a secret.
const REDACTED: &str = "[redacted]";

/// How to establish the WebSocket connection: timeouts, headers, limits, TCP, TLS and proxy.
///
/// Built from [`Default`] and chainable `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use nova_core::{ProxyConfig, TransportConfig};
///
/// let config = TransportConfig::default()
///     .with_connect_timeout(Duration::from_secs(5))
///     .with_header("Authorization", "Bearer secret-token")
///     .with_subprotocol("json")
///     .with_proxy(ProxyConfig::socks5("127.0.0.1:1080"));
/// assert!(!format!("{config:?}").contains("secret-token"));
/// ```
#[non_exhaustive]
#[derive(Clone)]
pub struct TransportConfig {
    /// Upper bound for the whole connect: DNS, TCP, proxy tunnel, TLS and the WebSocket
    /// handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// Extra HTTP headers sent with the handshake request (for example `Authorization`).
    ///
    /// The headers the WebSocket handshake sets itself (`Host`, `Connection`, `Upgrade`,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, `Sec-WebSocket-Protocol`) are rejected:
    /// use [`subprotocols`](Self::subprotocols) for the latter. Values are never printed by
    /// `Debug`.
    pub headers: Vec<(String, String)>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, in order of preference. When not
    /// empty, the server must pick one of them.
    pub subprotocols: Vec<String>,
    /// Largest incoming frame payload accepted; `None` means no limit. Default 16 MiB.
    pub max_frame_size: Option<usize>,
    /// Largest incoming (reassembled) message accepted; `None` means no limit. Default 64 MiB.
    pub max_message_size: Option<usize>,
    /// The most bytes read from the socket at once. Default 128 KiB.
    ///
    /// This buffer fits the traffic: an idle or quiet connection reads through a 2 KiB buffer
    /// (tungstenite's, resident for every connection); once a read fills that, a burst buffer
    /// of this size is allocated and used until traffic calms down, then released. Values up
    /// to 2 KiB keep a single buffer.
    pub read_buffer_size: usize,
    /// Bytes tungstenite buffers before writing to the socket (0 writes every message at
    /// once). Default 128 KiB.
    pub write_buffer_size: usize,
    /// Hard cap of the write buffer when writes are failing; must be greater than
    /// [`write_buffer_size`](Self::write_buffer_size). Default unlimited (`usize::MAX`).
    pub max_write_buffer_size: usize,
    /// Disable Nagle's algorithm (`TCP_NODELAY`). Default `true`.
    pub tcp_nodelay: bool,
    /// Enable TCP keepalive probes after this much idle time (`SO_KEEPALIVE`). Default `None`.
    pub tcp_keepalive: Option<Duration>,
    /// Happy Eyeballs' Connection Attempt Delay (RFC 8305): when a host (or the proxy's host)
    /// resolves to several addresses, the next one is tried this long after the previous
    /// attempt started, or as soon as it fails, with IPv6 and IPv4 interleaved; the first
    /// connection established wins and the others are dropped. So a dead address family costs
    /// this delay, not the whole [`connect_timeout`](Self::connect_timeout).
    ///
    /// Default 250 ms (the RFC's recommendation); values under 10 ms count as 10 ms (the RFC's
    /// floor). `None` tries one address at a time, the next only after the previous failed: a
    /// black-holed address then holds the connect until `connect_timeout`. IP literals and
    /// single-address hosts are connected to directly either way.
    pub happy_eyeballs_delay: Option<Duration>,
    /// TLS settings for `wss://` URLs.
    pub tls: TlsConfig,
    /// Proxy to tunnel through; `None` connects directly.
    pub proxy: Option<ProxyConfig>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            headers: Vec::new(),
            subprotocols: Vec::new(),
            max_frame_size: Some(16 << 20),
            max_message_size: Some(64 << 20),
            read_buffer_size: 128 * 1024,
            write_buffer_size: 128 * 1024,
            max_write_buffer_size: usize::MAX,
            tcp_nodelay: true,
            tcp_keepalive: None,
            happy_eyeballs_delay: Some(super::eyeballs::DEFAULT_DELAY),
            tls: TlsConfig::default(),
            proxy: None,
        }
    }
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values often carry credentials: print the names only.
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), REDACTED))
            .collect();
        f.debug_struct("TransportConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("headers", &headers)
            .field("subprotocols", &self.subprotocols)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_write_buffer_size", &self.max_write_buffer_size)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("tcp_keepalive", &self.tcp_keepalive)
            .field("happy_eyeballs_delay", &self.happy_eyeballs_delay)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl TransportConfig {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Adds one extra handshake header (see [`headers`](Self::headers)).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds one offered subprotocol (see [`subprotocols`](Self::subprotocols)).
    #[must_use]
    pub fn with_subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Sets [`max_frame_size`](Self::max_frame_size).
    #[must_use]
    pub fn with_max_frame_size(mut self, size: Option<usize>) -> Self {
        self.max_frame_size = size;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    #[must_use]
    pub fn with_max_message_size(mut self, size: Option<usize>) -> Self {
        self.max_message_size = size;
        self
    }

    /// Sets [`read_buffer_size`](Self::read_buffer_size).
    #[must_use]
    pub fn with_read_buffer_size(mut self, size: usize) -> Self {
        self.read_buffer_size = size;
        self
    }

    /// Sets [`write_buffer_size`](Self::write_buffer_size).
    #[must_use]
    pub fn with_write_buffer_size(mut self, size: usize) -> Self {
        self.write_buffer_size = size;
        self
    }

    /// Sets [`max_write_buffer_size`](Self::max_write_buffer_size).
    #[must_use]
    pub fn with_max_write_buffer_size(mut self, size: usize) -> Self {
        self.max_write_buffer_size = size;
        self
    }

    /// Sets [`tcp_nodelay`](Self::tcp_nodelay).
    #[must_use]
    pub fn with_tcp_nodelay(mut self, nodelay: bool) -> Self {
        self.tcp_nodelay = nodelay;
        self
    }

    /// Sets [`tcp_keepalive`](Self::tcp_keepalive).
    #[must_use]
    pub fn with_tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Sets [`happy_eyeballs_delay`](Self::happy_eyeballs_delay): how long an address gets
    /// before the next one is tried alongside it; `None` tries them one after the other.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nova_core::{Transport, TransportConfig};
    ///
    /// // A faster fallback from a broken IPv6 route to IPv4 (or the other way round).
    /// let config = TransportConfig::default().with_happy_eyeballs_delay(Some(Duration::from_millis(100)));
    /// assert_eq!(config.happy_eyeballs_delay, Some(Duration::from_millis(100)));
    /// let transport = Transport::new(config)?;
    ///
    /// // Strictly sequential attempts.
    /// let sequential = TransportConfig::default().with_happy_eyeballs_delay(None);
    /// assert_eq!(sequential.happy_eyeballs_delay, None);
    /// # drop(transport);
    /// # Ok::<(), nova_core::TransportError>(())
    /// ```
    #[must_use]
    pub fn with_happy_eyeballs_delay(mut self, delay: Option<Duration>) -> Self {
        self.happy_eyeballs_delay = delay;
        self
    }

    /// Replaces the whole [`tls`](Self::tls) configuration.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Sets or clears the [`proxy`](Self::proxy).
    #[must_use]
    pub fn with_proxy(mut self, proxy: impl Into<Option<ProxyConfig>>) -> Self {
        self.proxy = proxy.into();
        self
    }

    /// Checks the parts of the config that do not need I/O: buffer sizes and header names and
    /// values. TLS material is checked when the TLS client config is built.
    pub(crate) fn validate_sizes(&self) -> Result<(), TransportError> {
        if self.max_write_buffer_size <= self.write_buffer_size {
            return Err(TransportError::InvalidConfig {
                reason: format!(
                    "max_write_buffer_size ({}) must be greater than write_buffer_size ({})",
                    self.max_write_buffer_size, self.write_buffer_size
                ),
            });
        }
        if self.read_buffer_size == 0 {
            return Err(TransportError::InvalidConfig {
                reason: "read_buffer_size must not be 0".to_owned(),
            });
        }
        Ok(())
    }
}

/// Which root certificates a `wss://` connection trusts, besides
/// [`TlsConfig::extra_ca_pem`].
///
/// Every variant exists whatever the crate features; choosing one whose feature is off makes
/// [`Transport::new`](super::Transport::new) fail with
/// [`TransportError::InvalidConfig`](super::TransportError::InvalidConfig).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRoots {
    /// Mozilla's root program, compiled in (feature `webpki-roots`, on by default).
    WebPki,
    /// The operating system's certificate store (feature `native-roots`), loaded on the
    /// first `wss://` connect of a [`Transport`](super::Transport); a store without usable
    /// certificates fails that connect with `InvalidConfig`.
    Native,
    /// No built-in roots: only the certificates in [`TlsConfig::extra_ca_pem`] are trusted.
    None,
}

impl Default for TlsRoots {
    /// [`TlsRoots::WebPki`] when that feature is on, else [`TlsRoots::Native`] when that
    /// feature is on, else [`TlsRoots::None`].
    fn default() -> Self {
        #[cfg(feature = "webpki-roots")]
        {
            TlsRoots::WebPki
        }
        #[cfg(all(not(feature = "webpki-roots"), feature = "native-roots"))]
        {
            TlsRoots::Native
        }
        #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
        {
            TlsRoots::None
        }
    }
}

/// TLS settings for `wss://` connections (rustls with the ring provider).
///
/// ```
/// use nova_core::{TlsConfig, TlsRoots};
///
/// let ca_pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
/// let tls = TlsConfig::default().with_roots(TlsRoots::None).with_extra_ca_pem(ca_pem);
/// assert_eq!(tls.extra_ca_pem.len(), 1);
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    /// Built-in root certificates to trust.
    pub roots: TlsRoots,
    /// Additional trusted CA certificates, PEM encoded; one string may hold several
    /// certificates.
    pub extra_ca_pem: Vec<String>,
    /// Client certificate for mutual TLS.
    pub client_identity: Option<ClientIdentity>,
}

impl TlsConfig {
    /// Sets [`roots`](Self::roots).
    #[must_use]
    pub fn with_roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Adds PEM-encoded CA certificates to [`extra_ca_pem`](Self::extra_ca_pem).
    #[must_use]
    pub fn with_extra_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.extra_ca_pem.push(pem.into());
        self
    }

    /// Sets [`client_identity`](Self::client_identity).
    #[must_use]
    pub fn with_client_identity(mut self, identity: ClientIdentity) -> Self {
        self.client_identity = Some(identity);
        self
    }
}

/// A client certificate chain and its private key, for mutual TLS.
///
/// `Debug` never prints the private key.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate chain, PEM encoded, leaf first.
    pub cert_chain_pem: String,
    key_pem: Secret,
}

impl ClientIdentity {
    /// Creates an identity from a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1). The PEM is parsed when the transport is built.
    pub fn from_pem(cert_chain_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        Self {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: Secret::new(key_pem),
        }
    }

    /// The private key, PEM encoded.
    pub fn key_pem(&self) -> &str {
        self.key_pem.expose()
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &self.key_pem)
            .finish()
    }
}

/// A proxy the connection is tunnelled through. TLS (for `wss://`) runs inside the tunnel,
/// end to end with the server; the proxy only sees the target host and port.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyConfig {
    /// An HTTP proxy that supports the `CONNECT` method (RFC 9110 §9.3.6).
    HttpConnect {
        /// The proxy's `host:port`.
        addr: String,
        /// Credentials sent as `Proxy-Authorization: Basic`.
        auth: Option<ProxyAuth>,
    },
    /// A SOCKS5 proxy (RFC 1928); the proxy resolves the target host name.
    Socks5 {
        /// The proxy's `host:port`.
        addr: String,
        /// Username/password credentials (RFC 1929).
        auth: Option<ProxyAuth>,
    },
}

impl ProxyConfig {
    /// An HTTP `CONNECT` proxy at `addr` (`host:port`), without credentials.
    pub fn http_connect(addr: impl Into<String>) -> Self {
        ProxyConfig::HttpConnect {
            addr: addr.into(),
            auth: None,
        }
    }

    /// A SOCKS5 proxy at `addr` (`host:port`), without credentials.
    pub fn socks5(addr: impl Into<String>) -> Self {
        ProxyConfig::Socks5 {
            addr: addr.into(),
            auth: None,
        }
    }

    /// Parses a proxy URL: `http://[user:pass@]host:port` for HTTP `CONNECT`,
    /// `socks5://` or `socks5h://[user:pass@]host:port` for SOCKS5 (the proxy always resolves
    /// the target name). Percent-encoded credentials are decoded.
    ///
    /// ```
    /// use nova_core::ProxyConfig;
    ///
    /// let proxy = ProxyConfig::parse("socks5://alice:s%40cret@127.0.0.1:1080").unwrap();
    /// assert_eq!(proxy.addr(), "127.0.0.1:1080");
    /// assert_eq!(proxy.auth().unwrap().password(), "s@cret");
    /// ```
    pub fn parse(proxy_url: &str) -> Result<Self, TransportError> {
        let invalid = |reason: &str| TransportError::InvalidConfig {
            reason: format!("invalid proxy URL: {reason}"),
        };
        let url = url::Url::parse(proxy_url).map_err(|e| invalid(&e.to_string()))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            None => return Err(invalid("no host")),
        };
        let auth = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| invalid("credentials are not valid UTF-8"))
            };
            Some(ProxyAuth::new(
                decode(url.username())?,
                decode(url.password().unwrap_or(""))?,
            ))
        };
        match url.scheme() {
            "http" => Ok(ProxyConfig::HttpConnect {
                addr: format!("{host}:{}", url.port().unwrap_or(80)),
                auth,
            }),
            "socks5" | "socks5h" => Ok(ProxyConfig::Socks5 {
                addr: format!("{host}:{}", url.port().unwrap_or(1080)),
                auth,
            }),
            other => Err(invalid(&format!(
                "unsupported scheme `{other}`, expected http, socks5 or socks5h"
            ))),
        }
    }

    /// The proxy's `host:port`.
    pub fn addr(&self) -> &str {
        match self {
            ProxyConfig::HttpConnect { addr, .. } | ProxyConfig::Socks5 { addr, .. } => addr,
        }
    }

    /// The proxy credentials, if any.
    pub fn auth(&self) -> Option<&ProxyAuth> {
        match self {
            ProxyConfig::HttpConnect { auth, .. } | ProxyConfig::Socks5 { auth, .. } => {
                auth.as_ref()
            }
        }
    }

    /// Sets the proxy credentials.
    #[must_use]
    pub fn with_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        match &mut self {
            ProxyConfig::HttpConnect { auth, .. } | ProxyConfig::Socks5 { auth, .. } => {
                *auth = Some(ProxyAuth::new(username, password));
            }
        }
        self
    }

    /// `"http_connect"` or `"socks5"`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyConfig::HttpConnect { .. } => "http_connect",
            ProxyConfig::Socks5 { .. } => "socks5",
        }
    }
}

/// Decodes `%XX` escapes (as found in URL userinfo); `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    fn hex(b: &u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let high = bytes.get(i + 1).and_then(hex);
            let low = bytes.get(i + 2).and_then(hex);
            if let (Some(high), Some(low)) = (high, low) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Proxy credentials. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// The user name.
    pub username: String,
    password: Secret,
}

impl ProxyAuth {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret::new(password),
        }
    }

    /// The password.
    pub fn password(&self) -> &str {
        self.password.expose()
    }
}

impl fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let config = TransportConfig::default()
            .with_header("Authorization", "Bearer hunter2")
            .with_proxy(ProxyConfig::http_connect("127.0.0.1:1").with_auth("u", "hunter3"))
            .with_tls(
                TlsConfig::default()
                    .with_client_identity(ClientIdentity::from_pem("CERT", "hunter4")),
            );
        let debug = format!("{config:?}");
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("Authorization"));
    }

    #[test]
    fn parses_proxy_urls() {
        let p = ProxyConfig::parse("http://127.0.0.1:3128").ok();
        assert_eq!(p, Some(ProxyConfig::http_connect("127.0.0.1:3128")));
        let p = ProxyConfig::parse("socks5h://a%3Ab:c%25d@[::1]:9050").ok();
        assert_eq!(
            p,
            Some(ProxyConfig::socks5("[::1]:9050").with_auth("a:b", "c%d"))
        );
        assert!(ProxyConfig::parse("ftp://x:1").is_err());
        assert!(ProxyConfig::parse("nonsense").is_err());
    }

    #[test]
    fn rejects_bad_buffer_sizes() {
        let c = TransportConfig::default().with_write_buffer_size(usize::MAX);
        assert!(c.validate_sizes().is_err());
        let c = TransportConfig::default().with_read_buffer_size(0);
        assert!(c.validate_sizes().is_err());
        assert!(TransportConfig::default().validate_sizes().is_ok());
    }
}
