//! Client configuration (the seed's `ClientConfig`) and its builder.
//!
//! Every field has a default that suits a long-lived connection; `build()` checks the values and
//! returns an error instead of panicking.

use std::sync::Arc;
use std::time::Duration;

use crate::backoff::{Backoff, ReconnectStrategy};
use crate::endpoint::{EndpointSource, SharedEndpoint};
use crate::error::ConfigError;
use crate::rate_limit::RateLimit;
use crate::settings::Settings;
use crate::transport::{ProxyConfig, TlsConfig, TransportConfig};

/// What happens when the application reads messages more slowly than they arrive and the inbound
/// queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Stop reading the socket until there is room: TCP backpressure slows the server down.
    /// Nothing is lost. The default.
    #[default]
    Wait,
    /// Drop the oldest queued message to make room, and tell the consumer how many were dropped
    /// (the receiver yields [`Lagged`](crate::Lagged)). For market data where only the latest matters.
    DropOldest,
}

/// Configuration of one client connection.
///
/// ```
/// use std::time::Duration;
/// use nova_core::{ClientConfig, ReconnectStrategy};
///
/// let config = ClientConfig::builder("wss://test.deribit.com/ws/api/v2")
///     .name("deribit-md")
///     .reconnect_strategy(ReconnectStrategy::Exponential)
///     .backoff(Duration::from_millis(250), Duration::from_secs(30))
///     .max_reconnect_attempts(Some(20))
///     .heartbeat_interval(Some(Duration::from_secs(15)))
///     .build()?;
/// assert_eq!(config.name(), "deribit-md");
/// # Ok::<(), nova_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) heartbeat_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) reconnect_strategy: ReconnectStrategy,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) jitter: f64,
    pub(crate) max_reconnect_attempts: Option<u32>,
    pub(crate) stable_after: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) send_buffer: usize,
    pub(crate) inbound_buffer: usize,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) close_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) auth_check_interval: Duration,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) transport: TransportConfig,
    pub(crate) endpoint: Option<SharedEndpoint>,
    pub(crate) handover_drain: Duration,
    pub(crate) greeting_timeout: Duration,
}

impl ClientConfig {
    /// A builder for a client of `url` (`ws://` or `wss://`).
    pub fn builder(url: impl Into<String>) -> ClientConfigBuilder {
        ClientConfigBuilder::new(url.into())
    }

    /// The client's name (the `client_id` in logs and metrics).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL connected to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Idle time after which a WebSocket ping is sent; `None` disables dead-peer detection.
    #[must_use]
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat_interval
    }

    /// How long to wait for an answer to a ping before declaring the peer dead.
    #[must_use]
    pub fn pong_timeout(&self) -> Duration {
        self.pong_timeout
    }

    /// The reconnect delay policy.
    #[must_use]
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            self.reconnect_strategy,
            self.backoff_initial,
            self.backoff_max,
        )
        .with_jitter(self.jitter)
    }

    /// The maximum number of consecutive reconnect attempts; `None` is unlimited.
    #[must_use]
    pub fn max_reconnect_attempts(&self) -> Option<u32> {
        self.max_reconnect_attempts
    }

    /// How long a connection must stay up before the attempt counter is reset.
    #[must_use]
    pub fn stable_after(&self) -> Duration {
        self.stable_after
    }

    /// Capacity of the buffer of messages sent while disconnected.
    #[must_use]
    pub fn send_buffer(&self) -> usize {
        self.send_buffer
    }

    /// Capacity of the inbound message queue.
    #[must_use]
    pub fn inbound_buffer(&self) -> usize {
        self.inbound_buffer
    }

    /// What happens when the inbound queue is full.
    #[must_use]
    pub fn overflow(&self) -> OverflowPolicy {
        self.overflow
    }

    /// Default timeout of a request.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The rate limit, if any.
    #[must_use]
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        self.rate_limit.as_ref()
    }

    /// The transport configuration (TLS, proxy, handshake, limits).
    #[must_use]
    pub fn transport(&self) -> &TransportConfig {
        &self.transport
    }

    /// Whether an [`EndpointSource`] gives the URL of each connection.
    #[must_use]
    pub fn has_endpoint_source(&self) -> bool {
        self.endpoint.is_some()
    }

    /// How long the old connection of a handover may still deliver after the new one took over.
    #[must_use]
    pub fn handover_drain(&self) -> Duration {
        self.handover_drain
    }

    /// How long a connection waits for the server's greeting when the handler authenticates only
    /// after one (see [`AuthHandler::authenticates_on_connect`](crate::AuthHandler::authenticates_on_connect)).
    #[must_use]
    pub fn greeting_timeout(&self) -> Duration {
        self.greeting_timeout
    }
}

/// Builds a [`ClientConfig`]; nothing is checked until [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientConfigBuilder {
    config: ClientConfig,
}

impl ClientConfigBuilder {
    fn new(url: String) -> Self {
        Self {
            config: ClientConfig {
                name: "nova".to_owned(),
                url,
                heartbeat_interval: Some(Duration::from_secs(30)),
                pong_timeout: Duration::from_secs(10),
                reconnect_strategy: ReconnectStrategy::Exponential,
                backoff_initial: Duration::from_millis(250),
                backoff_max: Duration::from_secs(30),
                jitter: 0.2,
                max_reconnect_attempts: None,
                stable_after: Duration::from_secs(30),
                max_retry_after: Duration::from_secs(3600),
                send_buffer: 1024,
                inbound_buffer: 1024,
                overflow: OverflowPolicy::Wait,
                close_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(10),
                auth_check_interval: Duration::from_millis(500),
                rate_limit: None,
                transport: TransportConfig::default(),
                endpoint: None,
                handover_drain: Duration::from_secs(10),
                greeting_timeout: Duration::from_secs(10),
            },
        }
    }

    /// Applies the global [`Settings`] (reconnect delays, attempts, connect timeout).
    pub fn settings(mut self, settings: &Settings) -> Self {
        let c = &mut self.config;
        if let Some(d) = settings.default_reconnect_delay {
            c.backoff_initial = d;
        }
        if let Some(d) = settings.max_reconnect_delay {
            c.backoff_max = d;
        }
        if let Some(n) = settings.max_reconnect_attempts {
            c.max_reconnect_attempts = Some(n);
        }
        if let Some(d) = settings.connection_timeout {
            c.transport.connect_timeout = d;
        }
        self
    }

    /// The client's name: the `client_id` in logs and metrics (default `"nova"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// An extra header for the WebSocket handshake.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config
            .transport
            .headers
            .push((name.into(), value.into()));
        self
    }

    /// A subprotocol to offer in `Sec-WebSocket-Protocol`.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.config.transport.subprotocols.push(protocol.into());
        self
    }

    /// Time allowed for one connect: DNS, TCP, proxy, TLS and handshake (the seed's `timeout`;
    /// default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.transport.connect_timeout = timeout;
        self
    }

    /// Idle time after which a ping is sent (default 30 s); `None` turns dead-peer detection off.
    pub fn heartbeat_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// How long to wait for any frame after a ping before reconnecting (default 10 s).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.config.pong_timeout = timeout;
        self
    }

    /// How reconnect delays grow (default exponential).
    pub fn reconnect_strategy(mut self, strategy: ReconnectStrategy) -> Self {
        self.config.reconnect_strategy = strategy;
        self
    }

    /// First and largest reconnect delay (default 250 ms and 30 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.backoff_initial = initial;
        self.config.backoff_max = max;
        self
    }

    /// Fraction of each delay taken off at random, `0.0..=1.0` (default 0.2).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.config.jitter = jitter;
        self
    }

    /// Consecutive reconnect attempts before the client stops; `None` (the default) never stops.
    pub fn max_reconnect_attempts(mut self, attempts: Option<u32>) -> Self {
        self.config.max_reconnect_attempts = attempts;
        self
    }

    /// How long a connection must stay up for the attempt counter to reset (default 30 s).
    pub fn stable_after(mut self, period: Duration) -> Self {
        self.config.stable_after = period;
        self
    }

    /// The longest `Retry-After` honoured (default 1 hour); longer ones are cut to this.
    pub fn max_retry_after(mut self, limit: Duration) -> Self {
        self.config.max_retry_after = limit;
        self
    }

    /// Capacity of the buffer for messages sent while disconnected (default 1024).
    pub fn send_buffer(mut self, capacity: usize) -> Self {
        self.config.send_buffer = capacity;
        self
    }

    /// Capacity of the inbound queue and of each subscription stream's queue, in messages
    /// (default 1024), and what happens when one is full. A consumer may hold up to 64 more,
    /// already taken from its queue and not yet yielded.
    pub fn inbound(mut self, capacity: usize, overflow: OverflowPolicy) -> Self {
        self.config.inbound_buffer = capacity;
        self.config.overflow = overflow;
        self
    }

    /// How long a close waits for the server's close frame (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Default timeout of a request (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// How often `needs_reauthentication` is asked while authenticated (default 500 ms).
    pub fn auth_check_interval(mut self, every: Duration) -> Self {
        self.config.auth_check_interval = every;
        self
    }

    /// Paces what the application sends with a cost-weighted token bucket (default: no limit).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit = Some(limit);
        self
    }

    /// Largest accepted frame and message, in bytes (defaults 16 MiB and 64 MiB).
    pub fn max_sizes(mut self, frame: usize, message: usize) -> Self {
        self.config.transport.max_frame_size = Some(frame);
        self.config.transport.max_message_size = Some(message);
        self
    }

    /// TLS settings: trusted roots, extra CA certificates, client certificate.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config.transport.tls = tls;
        self
    }

    /// Connect through an HTTP CONNECT or SOCKS5 proxy.
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.config.transport.proxy = Some(proxy);
        self
    }

    /// Replaces the whole transport configuration.
    pub fn transport(mut self, transport: TransportConfig) -> Self {
        self.config.transport = transport;
        self
    }

    /// Asks `source` for the URL of every connection attempt instead of using the static URL
    /// (see [`EndpointSource`]); the static URL stays the client's identity in the configuration.
    pub fn endpoint_source(mut self, source: impl EndpointSource) -> Self {
        self.config.endpoint = Some(SharedEndpoint(Arc::new(source)));
        self
    }

    /// How long the old connection of a make-before-break handover keeps delivering after the
    /// new one took over, unless the server closes it first (default 10 s).
    pub fn handover_drain(mut self, drain: Duration) -> Self {
        self.config.handover_drain = drain;
        self
    }

    /// How long a connection waits for the server's greeting, for handlers that authenticate
    /// only after one (default 10 s); past it the connection is given up and retried.
    pub fn greeting_timeout(mut self, timeout: Duration) -> Self {
        self.config.greeting_timeout = timeout;
        self
    }

    /// Checks every value and returns the configuration.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field with a bad value.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        let c = self.config;
        let invalid = |field, reason: &str| ConfigError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        let scheme = c.url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("ws" | "wss") => {}
            _ => return Err(invalid("url", "must start with ws:// or wss://")),
        }
        if url::Url::parse(&c.url)
            .map(|u| u.host().is_none())
            .unwrap_or(true)
        {
            return Err(invalid("url", "not a valid URL with a host"));
        }
        if c.backoff_initial.is_zero() {
            return Err(invalid("backoff_initial", "must be greater than zero"));
        }
        if c.backoff_max < c.backoff_initial {
            return Err(invalid("backoff_max", "must be at least backoff_initial"));
        }
        if !(0.0..=1.0).contains(&c.jitter) {
            return Err(invalid("jitter", "must be between 0.0 and 1.0"));
        }
        if c.heartbeat_interval.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                "heartbeat_interval",
                "must be greater than zero (or None)",
            ));
        }
        if c.greeting_timeout.is_zero() {
            return Err(invalid("greeting_timeout", "must be greater than zero"));
        }
        if c.pong_timeout.is_zero() {
            return Err(invalid("pong_timeout", "must be greater than zero"));
        }
        if c.send_buffer == 0 {
            return Err(invalid("send_buffer", "must hold at least one message"));
        }
        if c.inbound_buffer == 0 {
            return Err(invalid("inbound_buffer", "must hold at least one message"));
        }
        if c.auth_check_interval.is_zero() {
            return Err(invalid("auth_check_interval", "must be greater than zero"));
        }
        if c.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be greater than zero"));
        }
        if c.transport.connect_timeout.is_zero() {
            return Err(invalid("connection_timeout", "must be greater than zero"));
        }
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seed() {
        let c = ClientConfig::builder("ws://127.0.0.1:1").build().unwrap();
        assert_eq!(c.backoff_initial, Duration::from_millis(250));
        assert_eq!(c.backoff_max, Duration::from_secs(30));
        assert_eq!(c.reconnect_strategy, ReconnectStrategy::Exponential);
        assert_eq!(c.max_reconnect_attempts, None);
    }

    #[test]
    fn bad_values_are_named() {
        let err = |b: ClientConfigBuilder| b.build().unwrap_err().to_string();
        assert!(err(ClientConfig::builder("http://x")).contains("`url`"));
        assert!(err(ClientConfig::builder("ws://")).contains("`url`"));
        assert!(err(ClientConfig::builder("ws://x").jitter(1.5)).contains("`jitter`"));
        assert!(err(ClientConfig::builder("ws://x").send_buffer(0)).contains("`send_buffer`"));
        assert!(
            err(ClientConfig::builder("ws://x")
                .backoff(Duration::from_secs(2), Duration::from_secs(1)))
            .contains("`backoff_max`")
        );
    }
}
