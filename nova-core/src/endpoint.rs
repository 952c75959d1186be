//! Where to connect: a source of URLs the runtime awaits before every connection attempt.
//!
//! Most platforms have one fixed URL, given to [`ClientConfig::builder`](crate::ClientConfig::builder).
//! Some hand out a fresh one per connection: Slack's Socket Mode gives a single-use ticket URL
//! from an HTTP call (`apps.connections.open`), others put a short-lived token in the query. For
//! those, an [`EndpointSource`] is set with
//! [`ClientConfigBuilder::endpoint_source`](crate::ClientConfigBuilder::endpoint_source): the
//! runtime awaits it before each attempt (the first, every reconnect, every handover), never
//! reuses a URL for a second attempt, and treats its failures as failed connect attempts (through
//! `ErrorHandler::should_reconnect` and the backoff; [`EndpointError::RetryAfter`] waits at least
//! as long as asked; [`EndpointError::Fatal`] stops the client). A `close()` cancels the wait.
//!
//! ```
//! use nova_core::{ClientConfig, EndpointError, EndpointRequest};
//!
//! # fn build() -> Result<ClientConfig, nova_core::ConfigError> {
//! let config = ClientConfig::builder("wss://gateway.example.com/socket")
//!     .endpoint_source(|request: EndpointRequest| async move {
//!         // An HTTP call would go here; its 429 becomes EndpointError::RetryAfter.
//!         Ok::<_, EndpointError>(format!(
//!             "wss://gateway.example.com/socket?ticket={}",
//!             request.attempt
//!         ))
//!     })
//!     .build()?;
//! # Ok(config) }
//! # build().unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Why a connection is being opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectPurpose {
    /// The client's first connection.
    First,
    /// A reconnect after a connection ended or an attempt failed.
    Reconnect,
    /// The next connection of a make-before-break handover (see
    /// [`Context::request_handover`](crate::Context::request_handover)); the current one is
    /// still open.
    Handover,
}

impl ConnectPurpose {
    /// A short label for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Reconnect => "reconnect",
            Self::Handover => "handover",
        }
    }
}

/// What the runtime tells an [`EndpointSource`] about the connection it is about to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointRequest {
    /// Consecutive failed attempts before this one (0 when the last connection was fine).
    pub attempt: u32,
    /// Why the connection is opened.
    pub purpose: ConnectPurpose,
}

impl EndpointRequest {
    /// A request for `purpose` after `attempt` failed attempts (for tests of a source).
    #[must_use]
    pub fn new(attempt: u32, purpose: ConnectPurpose) -> Self {
        Self { attempt, purpose }
    }
}

/// Why an [`EndpointSource`] has no URL to give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Try again after the backoff policy's delay.
    #[error("no endpoint: {reason}")]
    Retry {
        /// What went wrong.
        reason: String,
    },
    /// Try again, but not before `after` (an HTTP 429's `Retry-After`); the wait is the longer of
    /// this and the backoff, capped by `max_retry_after`.
    #[error("no endpoint: {reason} (retry after {after:?})")]
    RetryAfter {
        /// The least wait the server asked for.
        after: Duration,
        /// What went wrong.
        reason: String,
    },
    /// Retrying cannot help (a revoked token): the client stops.
    #[error("no endpoint, and retrying cannot help: {reason}")]
    Fatal {
        /// What went wrong.
        reason: String,
    },
}

impl EndpointError {
    /// A failure worth a retry after the backoff.
    #[must_use]
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            reason: reason.into(),
        }
    }

    /// A failure worth a retry, not before `after`.
    #[must_use]
    pub fn retry_after(after: Duration, reason: impl Into<String>) -> Self {
        Self::RetryAfter {
            after,
            reason: reason.into(),
        }
    }

    /// A failure no retry can mend.
    #[must_use]
    pub fn fatal(reason: impl Into<String>) -> Self {
        Self::Fatal {
            reason: reason.into(),
        }
    }

    /// The least wait asked for, if any.
    #[must_use]
    pub fn wait(&self) -> Option<Duration> {
        match self {
            Self::RetryAfter { after, .. } => Some(*after),
            _ => None,
        }
    }

    /// Whether retrying cannot help.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal { .. })
    }
}

/// The future an [`EndpointSource`] returns.
pub type EndpointFuture<'a> =
    Pin<Box<dyn Future<Output = Result<String, EndpointError>> + Send + 'a>>;

/// Gives the URL of each connection attempt.
///
/// Implemented for closures `Fn(EndpointRequest) -> impl Future<Output = Result<String,
/// EndpointError>>`. A handler's [`ConnectionHandler::connect_url`](crate::ConnectionHandler::connect_url),
/// when it returns a URL, comes first.
pub trait EndpointSource: Send + Sync + 'static {
    /// The URL (`ws://` or `wss://`) to connect to now.
    fn endpoint(&self, request: EndpointRequest) -> EndpointFuture<'_>;
}

impl<F, Fut> EndpointSource for F
where
    F: Fn(EndpointRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, EndpointError>> + Send + 'static,
{
    fn endpoint(&self, request: EndpointRequest) -> EndpointFuture<'_> {
        Box::pin(self(request))
    }
}

/// An endpoint source in the configuration (shared by clones of it).
#[derive(Clone)]
pub(crate) struct SharedEndpoint(pub(crate) Arc<dyn EndpointSource>);

impl fmt::Debug for SharedEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSource")
    }
}

/// `url` with its query and fragment replaced by `…`: the form that goes into logs, since a
/// query often carries a credential (a ticket, a token).
pub(crate) fn redacted(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(at) => format!("{}?…", &url[..at]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_never_reaches_a_log() {
        assert_eq!(
            redacted("wss://x.example/link/?ticket=abc&app_id=1"),
            "wss://x.example/link/?…"
        );
        assert_eq!(redacted("wss://x.example/a#frag"), "wss://x.example/a?…");
        assert_eq!(redacted("ws://127.0.0.1:9/"), "ws://127.0.0.1:9/");
    }

    #[tokio::test]
    async fn a_closure_is_a_source() {
        let source = |request: EndpointRequest| async move {
            match request.purpose {
                ConnectPurpose::Handover => Err(EndpointError::retry_after(
                    Duration::from_secs(3),
                    "ratelimited",
                )),
                _ => Ok(format!("ws://h/{}", request.attempt)),
            }
        };
        let url = source
            .endpoint(EndpointRequest::new(2, ConnectPurpose::Reconnect))
            .await;
        assert_eq!(url, Ok("ws://h/2".to_owned()));
        let err = source
            .endpoint(EndpointRequest::new(0, ConnectPurpose::Handover))
            .await
            .err();
        assert_eq!(err.and_then(|e| e.wait()), Some(Duration::from_secs(3)));
    }
}
