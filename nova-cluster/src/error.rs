//! Errors of the cluster and of its backends.

use std::time::Duration;

/// An error of a backend operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend cannot be reached (connection refused or lost); retried by the callers.
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    /// The backend did not answer in time.
    #[error("backend did not answer within {0:?}")]
    Timeout(Duration),
    /// The backend answered something this crate does not understand.
    #[error("unexpected answer from the backend: {0}")]
    Protocol(String),
    /// The backend refused the operation (a script error, a wrong type).
    #[error("backend error: {0}")]
    Refused(String),
}

impl BackendError {
    /// Classifies a Redis client error. A function rather than `From`, so that the Redis
    /// client's error type is not part of this crate's public API.
    pub(crate) fn from_redis(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            BackendError::Unreachable(e.to_string())
        } else if e.is_timeout() {
            BackendError::Timeout(Duration::ZERO)
        } else {
            BackendError::Refused(e.to_string())
        }
    }
}

/// An error of the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A backend operation failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The configuration is not valid.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// The node has left the cluster (or was stopped).
    #[error("this node has left the cluster")]
    Stopped,
    /// The upstream client failed.
    #[error("upstream: {0}")]
    Upstream(#[from] nova_core::Error),
}
