//! The crate's errors: one `thiserror` enum per concern, each variant documented, sources kept.
//! None of them carries the bot token.

use std::time::Duration;

/// A received payload that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a gateway payload (bad JSON, no `op`, a field of the wrong type).
    #[error("malformed gateway payload: {0}")]
    Payload(#[source] serde_json::Error),
    /// A dispatch without `t`.
    #[error("dispatch without an event name (`t`)")]
    MissingName,
    /// A payload whose `d` is missing or of the wrong shape for its op (Hello, Invalid Session).
    #[error("op {op}: unexpected `d`")]
    Data {
        /// The op.
        op: u64,
        /// Why.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A dispatch with a known name whose `d` did not decode. Its sequence number is kept, so the
    /// session still counts it.
    #[error("dispatch {name} (s = {seq:?}) did not decode: {source}")]
    Dispatch {
        /// The dispatch's `s`.
        seq: Option<u64>,
        /// The dispatch's `t`.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// The sequence number the payload carried, when it is known despite the error.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Dispatch { seq, .. } => *seq,
            _ => None,
        }
    }
}

/// A command that cannot be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Over the gateway's 4096 bytes per client payload (Discord closes with 4002).
    #[error("payload of {len} bytes is over the gateway's {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A shard id that is not below the shard count, or a count of zero (Discord closes with
    /// 4010).
    #[error("invalid shard [{id}, {total}]")]
    InvalidShard {
        /// The shard id.
        id: u32,
        /// The shard count.
        total: u32,
    },
    /// Serialisation failed.
    #[error("could not serialise the command: {0}")]
    Json(#[source] serde_json::Error),
}

/// A `zlib-stream` message that could not be inflated. The connection's inflate context is
/// unusable afterwards: close the connection (resumably) and start a new context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The compressed bytes are not a valid continuation of the connection's zlib stream (the
    /// decompressor's error, kept opaque, is the source).
    #[error("corrupt zlib-stream data: {0}")]
    Corrupt(#[source] nova_core::BoxError),
    /// A message inflated (or buffered while waiting for its end) past the size limit.
    #[error("zlib-stream message over the {limit}-byte limit")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The inflated message is not UTF-8 (JSON must be).
    #[error("inflated message is not UTF-8: {0}")]
    Utf8(#[source] std::str::Utf8Error),
    /// The zlib stream ended (a final block); Discord never ends it on a live connection.
    #[error("the zlib stream ended")]
    StreamEnded,
}

/// Gateway discovery (`GET /gateway/bot`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The HTTP client could not be built (TLS setup; the HTTP client's error, kept opaque, is
    /// the source).
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] nova_core::BoxError),
    /// The token has characters an HTTP header cannot carry (the token itself is not shown).
    #[error("the token cannot be sent in an Authorization header")]
    InvalidToken,
    /// The request failed (connect, TLS, timeout, reading the body; the HTTP client's error,
    /// kept opaque, is the source).
    #[error("request failed: {0}")]
    Request(#[source] nova_core::BoxError),
    /// 401: the token was refused. Not worth retrying.
    #[error("the token was refused (401)")]
    Unauthorized,
    /// 429: try again after this long (from `Retry-After` or the body's `retry_after`).
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// How long to wait, when Discord said.
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx status.
    #[error("unexpected HTTP status {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// The body was larger than the limit.
    #[error("response body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body was not the documented JSON.
    #[error("could not decode the response: {0}")]
    Decode(#[source] serde_json::Error),
}
