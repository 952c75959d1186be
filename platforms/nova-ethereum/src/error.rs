//! The one error type of the Ethereum adapter's typed API.

use crate::jsonrpc::RpcError;

/// What can go wrong with a typed Ethereum call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EthError {
    /// The node answered with a JSON-RPC error.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The answer did not have the shape the method promises.
    #[error("{method}: malformed response: {source}")]
    Decode {
        /// The method.
        method: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The client failed the request (timeout, disconnected, stopped).
    #[error(transparent)]
    Client(#[from] nova_core::Error),
}
