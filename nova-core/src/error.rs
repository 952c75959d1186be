//! nova's error types: one non-exhaustive enum for the library, with a source kept for each.

use std::time::Duration;

use crate::endpoint::EndpointError;
use crate::transport::TransportError;
use crate::types::StopReason;

/// The error underneath a lost connection or a protocol violation: an `io::Error` or the
/// WebSocket layer's error, kept as a trait object so that no dependency's type is part of
/// nova's API. Find an `io::Error` with [`Error::io_error`], or `downcast_ref` it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in nova.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed: DNS, TCP, proxy, TLS or the WebSocket handshake.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The [`EndpointSource`](crate::EndpointSource) gave no URL for a connect attempt.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The connection broke while reading or writing.
    ///
    /// `source` is the error underneath when there is one: the socket's `io::Error` (a reset,
    /// a broken pipe, a TLS alert wrapped by rustls), reachable through
    /// [`std::error::Error::source`] and [`Error::io_error`].
    #[error("connection lost: {reason}")]
    #[non_exhaustive]
    ConnectionLost {
        /// What happened, readable.
        reason: String,
        /// The error that broke the connection, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The peer broke the WebSocket protocol (garbage frames, invalid UTF-8 in a text message,
    /// a frame over the size limit). RFC 6455 requires failing the connection; nova reconnects
    /// per policy.
    ///
    /// `source` is the WebSocket layer's error, when there is one.
    #[error("protocol violation by the peer: {reason}")]
    #[non_exhaustive]
    Protocol {
        /// What the peer did wrong, readable.
        reason: String,
        /// The WebSocket layer's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A message was larger than the configured limit.
    #[error("message too large: {size} bytes, limit {limit}")]
    MessageTooLarge {
        /// Size of the message (as far as it was read).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The send buffer is full while the connection is down; the message was not accepted.
    #[error("send buffer full ({capacity} messages) while disconnected; message not accepted")]
    SendBufferFull {
        /// Capacity of the buffer.
        capacity: usize,
    },
    /// The client has stopped for good; nothing more can be sent.
    #[error("client stopped: {0}")]
    Stopped(StopReason),
    /// An operation was cut short by a disconnect.
    #[error("disconnected")]
    Disconnected,
    /// An operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A handler callback reported an error.
    #[error(transparent)]
    Handler(#[from] HandlerError),
    /// The platform refused the credentials.
    #[error("authentication rejected: {0}")]
    AuthRejected(String),
    /// The platform refused a subscription.
    #[error("subscription to {channel} refused: {reason}")]
    SubscriptionRefused {
        /// The channel.
        channel: String,
        /// The platform's reason.
        reason: String,
    },
    /// Over the rate limit with a full queue; try again after `retry_after`.
    #[error("rate limited: queue full, retry after {retry_after:?}")]
    RateLimited {
        /// When a slot is expected to free up.
        retry_after: Duration,
    },
}

impl Error {
    /// A short label of bounded cardinality for logs and metrics (`"transport.tls"`, `"protocol"`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transport(e) => match e.kind() {
                "invalid_url" => "transport.invalid_url",
                "invalid_config" => "transport.invalid_config",
                "dns" => "transport.dns",
                "connect" => "transport.connect",
                "timeout" => "transport.timeout",
                "tls" => "transport.tls",
                "proxy" => "transport.proxy",
                "handshake_rejected" => "transport.handshake_rejected",
                "handshake" => "transport.handshake",
                _ => "transport.io",
            },
            Self::Endpoint(_) => "endpoint",
            Self::Config(_) => "config",
            Self::ConnectionLost { .. } => "connection_lost",
            Self::Protocol { .. } => "protocol",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::SendBufferFull { .. } => "send_buffer_full",
            Self::Stopped(_) => "stopped",
            Self::Disconnected => "disconnected",
            Self::Timeout(_) => "timeout",
            Self::Handler(_) => "handler",
            Self::AuthRejected(_) => "auth_rejected",
            Self::SubscriptionRefused { .. } => "subscription_refused",
            Self::RateLimited { .. } => "rate_limited",
        }
    }

    /// A lost connection without an underlying error (for tests of handlers, or an adapter
    /// that decides a connection is dead).
    ///
    /// ```
    /// let e = nova_core::Error::connection_lost("no pong within 10s");
    /// assert_eq!(e.to_string(), "connection lost: no pong within 10s");
    /// assert_eq!(e.kind(), "connection_lost");
    /// ```
    #[must_use]
    pub fn connection_lost(reason: impl Into<String>) -> Self {
        Self::ConnectionLost {
            reason: reason.into(),
            source: None,
        }
    }

    /// A protocol violation by the peer, without an underlying error.
    #[must_use]
    pub fn protocol(reason: impl Into<String>) -> Self {
        Self::Protocol {
            reason: reason.into(),
            source: None,
        }
    }

    /// A lost connection caused by `source`.
    pub(crate) fn connection_lost_by(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::ConnectionLost {
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A protocol violation reported by `source`.
    pub(crate) fn protocol_by(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Protocol {
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The first `io::Error` in this error's [`source`](std::error::Error::source) chain: the
    /// socket error of a lost connection, of a failed DNS lookup or TCP connect, the I/O error
    /// wrapping a TLS failure. Match on its [`kind`](std::io::Error::kind).
    ///
    /// ```
    /// use std::io;
    ///
    /// use nova_core::{Error, TransportError};
    ///
    /// let e = Error::from(TransportError::from(io::Error::from(io::ErrorKind::PermissionDenied)));
    /// assert_eq!(e.io_error().map(io::Error::kind), Some(io::ErrorKind::PermissionDenied));
    /// assert!(Error::Disconnected.io_error().is_none());
    /// ```
    #[must_use]
    pub fn io_error(&self) -> Option<&std::io::Error> {
        let mut next = std::error::Error::source(self);
        while let Some(error) = next {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                return Some(io);
            }
            next = error.source();
        }
        None
    }

    /// The delay the server asked for (an HTTP `Retry-After` on a refused handshake), if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transport(e) => e.retry_after(),
            Self::Endpoint(e) => e.wait(),
            _ => None,
        }
    }
}

/// An invalid configuration value, found when the configuration is built or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value outside its allowed range.
    #[error("invalid value for `{field}`: {reason}")]
    Invalid {
        /// The field name as written in the configuration.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for nova's settings.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error, with line and column (the TOML parser's error, kept opaque so
        /// that its type is not part of nova's API).
        source: BoxError,
    },
    /// An environment variable named by the configuration is missing or not valid.
    #[error("environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Why it could not be used.
        reason: String,
    },
}

/// An error reported by a handler callback (an adapter or the application).
///
/// ```
/// use nova_core::HandlerError;
///
/// let e = HandlerError::new("unexpected field `foo`");
/// assert_eq!(e.to_string(), "unexpected field `foo`");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl HandlerError {
    /// An error with a message.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and the error that caused it.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        Self::with_source("invalid JSON", e)
    }
}
