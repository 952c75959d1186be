//! The seed's data types: connection state, subscriptions, and why a connection ended.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::endpoint::ConnectPurpose;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionStatus {
    /// No connection (before the first connect, between reconnects, or after stopping).
    #[default]
    Disconnected,
    /// A connect attempt is under way.
    Connecting,
    /// The WebSocket is open.
    Connected,
    /// The WebSocket is open and the platform accepted the credentials.
    Authenticated,
    /// The client stopped because of an error (see [`ConnectionState::stopped`]).
    Error,
}

impl ConnectionStatus {
    /// Whether a WebSocket is open (connected or authenticated).
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::Connected | Self::Authenticated)
    }

    /// A short label for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Authenticated => "authenticated",
            Self::Error => "error",
        }
    }
}

/// State of one subscription in [`ConnectionState::subscription_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubscriptionStatus {
    /// Requested; the acknowledgement has not arrived yet.
    Pending,
    /// Acknowledged by the server.
    Active,
    /// Refused or failed.
    Error,
}

impl SubscriptionStatus {
    /// A short lowercase label: `"pending"`, `"active"`, `"error"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a connection, as published through the client handle's `watch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionState {
    /// Where the connection is now.
    pub status: ConnectionStatus,
    /// When the last connection was established.
    pub last_connected_at: Option<SystemTime>,
    /// Why the last connection ended.
    pub disconnect_reason: Option<DisconnectReason>,
    /// Consecutive failed or short-lived connections since the last stable one.
    pub reconnection_attempts: u32,
    /// Status of each subscription, by channel.
    pub subscription_status: BTreeMap<String, SubscriptionStatus>,
    /// Set once the client has stopped for good, with the reason.
    pub stopped: Option<StopReason>,
}

/// A channel subscription (the seed's `Subscription`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// nova's id for this subscription; stable across reconnects.
    pub id: String,
    /// The channel or topic.
    pub channel: String,
    /// Pending, active or error.
    pub status: SubscriptionStatus,
    /// When the application subscribed.
    pub created_at: SystemTime,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl Subscription {
    /// A pending subscription created now.
    #[must_use]
    pub fn new(id: impl Into<String>, channel: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            channel: channel.into(),
            status: SubscriptionStatus::Pending,
            created_at: SystemTime::now(),
            error: None,
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed with a close frame.
    ClosedByPeer {
        /// The close code, if the peer sent one.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// The TCP connection ended without a close handshake (reset, EOF, I/O error).
    ConnectionLost(String),
    /// No pong (or any other frame) arrived before the deadline after a ping: the peer is gone.
    HeartbeatTimeout,
    /// The peer broke the WebSocket protocol; the connection was failed (RFC 6455 §7.1.7).
    ProtocolError(String),
    /// The server's greeting did not come within `greeting_timeout`, for a handler that
    /// authenticates only after it.
    GreetingTimeout,
    /// A handler asked for a reconnect.
    Requested(String),
    /// The application closed the client.
    ClosedByUser {
        /// The close code sent.
        code: u16,
    },
}

impl DisconnectReason {
    /// A short label of bounded cardinality (`"heartbeat_timeout"`, `"closed_by_peer"`, ...).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClosedByPeer { .. } => "closed_by_peer",
            Self::ConnectionLost(_) => "connection_lost",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::GreetingTimeout => "greeting_timeout",
            Self::ProtocolError(_) => "protocol_error",
            Self::Requested(_) => "requested",
            Self::ClosedByUser { .. } => "closed_by_user",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClosedByPeer {
                code: Some(code),
                reason,
            } => {
                write!(f, "closed by peer with code {code}")?;
                if !reason.is_empty() {
                    write!(f, " ({reason})")?;
                }
                Ok(())
            }
            Self::ClosedByPeer { code: None, .. } => f.write_str("closed by peer"),
            Self::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            Self::HeartbeatTimeout => f.write_str("heartbeat timeout: no pong before the deadline"),
            Self::GreetingTimeout => f.write_str("no greeting from the server before the deadline"),
            Self::ProtocolError(e) => write!(f, "protocol error: {e}"),
            Self::Requested(why) => write!(f, "reconnect requested: {why}"),
            Self::ClosedByUser { code } => write!(f, "closed by the application with code {code}"),
        }
    }
}

/// Why a client stopped for good.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The application closed it.
    Closed {
        /// The close code sent.
        code: u16,
    },
    /// Every handle was dropped.
    HandlesDropped,
    /// `max_reconnect_attempts` was reached; the last error is kept.
    MaxAttemptsReached {
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt ran into.
        last_error: String,
    },
    /// A handler (handle_disconnect, handle_error, should_reconnect) decided to stop.
    Policy(String),
    /// An error that retrying cannot fix (an invalid URL, a bad TLS configuration).
    Fatal(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed { code } => write!(f, "closed by the application with code {code}"),
            Self::HandlesDropped => f.write_str("every client handle was dropped"),
            Self::MaxAttemptsReached {
                attempts,
                last_error,
            } => {
                write!(
                    f,
                    "gave up after {attempts} reconnect attempts; last error: {last_error}"
                )
            }
            Self::Policy(why) => write!(f, "stopped by policy: {why}"),
            Self::Fatal(why) => write!(f, "fatal: {why}"),
        }
    }
}

/// What a handler learns about a fresh connection in `handle_connect`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// The URL connected to.
    pub url: String,
    /// The peer's address (the proxy's when connected through one).
    pub peer_addr: Option<SocketAddr>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// How long the connect took (DNS, TCP, proxy, TLS, handshake).
    pub duration: Duration,
    /// 0 for the first connection, then 1, 2, ... for each reconnect.
    pub connection_index: u64,
    /// Why it was opened: the first connection, a reconnect, or a handover (the previous
    /// connection is still open and draining).
    pub purpose: ConnectPurpose,
}
