//! Transport errors: one typed, non-exhaustive enum for everything that can go wrong between a
//! URL and an established WebSocket stream.
//!
//! Each variant names the step that failed (URL, config, DNS, TCP, proxy, TLS, handshake) so
//! the runtime's error policy can decide what to do: [`TransportError::is_permanent`] says a
//! retry cannot help (bad URL or config), [`TransportError::retry_after`] carries the server's
//! `Retry-After` from a refused handshake, and [`TransportError::kind`] is a short,
//! bounded-cardinality label for metrics. Sources are kept for `Error::source` chains.
//!
//! `Retry-After` is parsed as delay-seconds or as an HTTP-date in any of its three forms
//! (RFC 9110 §10.2.3, through the `httpdate` crate); a date in the past means "retry now"
//! (zero).

use std::{
    fmt, io,
    time::{Duration, SystemTime},
};

/// The step of a connect that was running, reported by [`TransportError::Timeout`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectStage {
    /// Resolving the server's (or the proxy's) host name.
    Resolve,
    /// Opening the TCP connection to the server (or the proxy).
    TcpConnect,
    /// Negotiating the proxy tunnel.
    Proxy,
    /// The TLS handshake.
    Tls,
    /// The WebSocket (HTTP Upgrade) handshake.
    Handshake,
}

impl ConnectStage {
    /// A short lowercase label: `"resolve"`, `"tcp_connect"`, `"proxy"`, `"tls"`,
    /// `"handshake"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectStage::Resolve => "resolve",
            ConnectStage::TcpConnect => "tcp_connect",
            ConnectStage::Proxy => "proxy",
            ConnectStage::Tls => "tls",
            ConnectStage::Handshake => "handshake",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            ConnectStage::Resolve => 0,
            ConnectStage::TcpConnect => 1,
            ConnectStage::Proxy => 2,
            ConnectStage::Tls => 3,
            ConnectStage::Handshake => 4,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            0 => ConnectStage::Resolve,
            1 => ConnectStage::TcpConnect,
            2 => ConnectStage::Proxy,
            3 => ConnectStage::Tls,
            _ => ConnectStage::Handshake,
        }
    }
}

impl fmt::Display for ConnectStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a connect failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL cannot be used: unparseable, not `ws://`/`wss://`, or without a host.
    #[error("invalid WebSocket URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it (the URL's query and credentials are never included).
        reason: String,
    },
    /// The [`TransportConfig`](super::TransportConfig) is unusable: bad PEM, forbidden header,
    /// inconsistent buffer sizes.
    #[error("invalid transport configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with it (secret values are never included).
        reason: String,
    },
    /// The server's host name did not resolve.
    #[error("DNS lookup of `{host}` failed: {source}")]
    Dns {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The TCP connection to the server failed (refused, unreachable, reset).
    #[error("TCP connect to {addr} failed: {source}")]
    Connect {
        /// The address tried last.
        addr: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The connect did not finish within `connect_timeout`.
    #[error("connect timed out after {after:?} during {stage}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
        /// What the connect was doing when the time ran out.
        stage: ConnectStage,
    },
    /// The TLS handshake failed, for example because the server's certificate is not trusted.
    #[error("TLS handshake with `{host}` failed: {reason}")]
    Tls {
        /// The server name the certificate was checked against (the URL host).
        host: String,
        /// A plain explanation, e.g. `certificate not trusted: UnknownIssuer`.
        reason: String,
        /// The underlying error (wrapping the `rustls::Error` when there is one).
        #[source]
        source: io::Error,
    },
    /// The proxy could not be reached or refused the tunnel (HTTP 407, SOCKS failure...).
    #[error("proxy {proxy} failed: {reason}")]
    Proxy {
        /// The proxy's `host:port`.
        proxy: String,
        /// The HTTP status of a refused `CONNECT`, if that is what happened.
        status: Option<u16>,
        /// A plain explanation.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<io::Error>,
    },
    /// The server answered the WebSocket handshake with a non-101 HTTP response.
    #[error("WebSocket handshake rejected with HTTP {status}{}", RetryHint(*.retry_after))]
    HandshakeRejected {
        /// The HTTP status code.
        status: u16,
        /// The server's `Retry-After`, if it sent a valid one.
        retry_after: Option<Duration>,
        /// The full response: headers and whatever part of the body arrived with them.
        response: Box<http::Response<Option<Vec<u8>>>>,
    },
    /// The WebSocket handshake failed otherwise: malformed response, wrong accept key,
    /// subprotocol mismatch, connection closed mid-handshake.
    #[error("WebSocket handshake failed: {source}")]
    Handshake {
        /// The WebSocket layer's error (an `io::Error` when the connection broke; find it
        /// with [`Error::io_error`](crate::Error::io_error)).
        #[source]
        source: crate::BoxError,
    },
    /// Another I/O error, such as failing to set a socket option.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Formats `" (retry after 2s)"` or nothing.
struct RetryHint(Option<Duration>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, " (retry after {d:?})"),
            None => Ok(()),
        }
    }
}

impl TransportError {
    /// The server's requested delay before the next attempt (`Retry-After` of a refused
    /// handshake).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::HandshakeRejected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short label for metrics, one of `"invalid_url"`, `"invalid_config"`, `"dns"`,
    /// `"connect"`, `"timeout"`, `"tls"`, `"proxy"`, `"handshake_rejected"`, `"handshake"`,
    /// `"io"`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::InvalidUrl { .. } => "invalid_url",
            TransportError::InvalidConfig { .. } => "invalid_config",
            TransportError::Dns { .. } => "dns",
            TransportError::Connect { .. } => "connect",
            TransportError::Timeout { .. } => "timeout",
            TransportError::Tls { .. } => "tls",
            TransportError::Proxy { .. } => "proxy",
            TransportError::HandshakeRejected { .. } => "handshake_rejected",
            TransportError::Handshake { .. } => "handshake",
            TransportError::Io(_) => "io",
        }
    }

    /// `true` when retrying the same URL with the same config cannot succeed (invalid URL or
    /// config). Everything else, including certificate and HTTP 4xx errors, may be fixed on
    /// the other side and is left to the backoff policy.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            TransportError::InvalidUrl { .. } | TransportError::InvalidConfig { .. }
        )
    }

    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        TransportError::InvalidConfig {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_url(reason: impl Into<String>) -> Self {
        TransportError::InvalidUrl {
            reason: reason.into(),
        }
    }

    /// Maps tungstenite's handshake error: a non-101 response becomes `HandshakeRejected`.
    pub(crate) fn from_handshake(error: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match error {
            WsError::Http(response) => {
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                TransportError::HandshakeRejected {
                    status: response.status().as_u16(),
                    retry_after,
                    response,
                }
            }
            // The io::Error itself, when there is one, so `source()` reaches it directly.
            WsError::Io(io) => TransportError::Handshake {
                source: Box::new(io),
            },
            other => TransportError::Handshake {
                source: Box::new(other),
            },
        }
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in any of
/// the three forms a recipient must accept (IMF-fixdate, RFC 850, asctime), relative to `now`.
/// A date in the past means "retry now".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_http_date_in_all_three_forms() {
        // RFC 9110 §5.6.7: the same instant, 784_111_777 s after the epoch, three ways.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
            "Sun Nov  6 08:49:37 1994",       // asctime
        ] {
            assert_eq!(
                parse_retry_after(form, now),
                Some(Duration::from_secs(7)),
                "{form}"
            );
            assert_eq!(
                parse_retry_after(&format!("  {form} "), now),
                Some(Duration::from_secs(7)),
                "{form} with surrounding spaces"
            );
        }
        // A leap day, from the epoch.
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2028 12:00:00 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(1_835_438_400))
        );
        // A date in the past: retry now.
        let later = UNIX_EPOCH + Duration::from_secs(784_111_800);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        // Not dates: another zone, an impossible hour, garbage.
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "",
            "tomorrow",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn kinds_and_permanence() {
        let e = TransportError::invalid_url("x");
        assert_eq!(e.kind(), "invalid_url");
        assert!(e.is_permanent());
        let e = TransportError::Timeout {
            after: Duration::from_secs(1),
            stage: ConnectStage::Tls,
        };
        assert_eq!(e.kind(), "timeout");
        assert!(!e.is_permanent());
        assert_eq!(e.to_string(), "connect timed out after 1s during tls");
        for v in 0..5 {
            assert_eq!(ConnectStage::from_u8(v).to_u8(), v);
        }
    }
}
