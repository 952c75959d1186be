//! Typed `eth_` methods: each names its JSON-RPC method, builds its parameters and decodes its
//! result into a Rust type.
//!
//! ```
//! use nova_ethereum::methods::{GetBlockByNumber, Method};
//! use nova_ethereum::BlockId;
//!
//! let get = GetBlockByNumber::new(BlockId::Number(16), false);
//! assert_eq!(GetBlockByNumber::NAME, "eth_getBlockByNumber");
//! assert_eq!(get.params(), serde_json::json!(["0x10", false]));
//! ```
//!
//! [`Method::decode`] turns a response's `result` into [`Method::Output`]; [`decode_response`]
//! does the whole message, JSON-RPC errors included.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::EthError;
use crate::jsonrpc::JsonRpcResponse;
use crate::quantity::{BlockId, Quantity};
use crate::subscription::SubscriptionKind;
use crate::types::{Block, CallRequest, Log, LogFilter, SyncStatus};

/// A JSON-RPC method with typed parameters and result.
pub trait Method {
    /// The method name.
    const NAME: &'static str;
    /// The decoded result.
    type Output;
    /// Whether the method only reads (and so may be sent again after a reconnect).
    const READ_ONLY: bool = true;

    /// The `params` array.
    fn params(&self) -> Value;

    /// Decodes the `result` member.
    ///
    /// # Errors
    /// When the result does not have the expected shape.
    fn decode(result: Value) -> Result<Self::Output, serde_json::Error>;
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(value)
}

/// `eth_blockNumber`: the number of the most recent block.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockNumber;

impl Method for BlockNumber {
    const NAME: &'static str = "eth_blockNumber";
    type Output = u64;
    fn params(&self) -> Value {
        json!([])
    }
    fn decode(result: Value) -> Result<u64, serde_json::Error> {
        from_value::<Quantity>(result).map(|q| q.0)
    }
}

/// `eth_chainId`: the chain id (EIP-155).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainId;

impl Method for ChainId {
    const NAME: &'static str = "eth_chainId";
    type Output = u64;
    fn params(&self) -> Value {
        json!([])
    }
    fn decode(result: Value) -> Result<u64, serde_json::Error> {
        from_value::<Quantity>(result).map(|q| q.0)
    }
}

/// `eth_getBlockByNumber`: a block, `None` when the node does not have it (yet).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct GetBlockByNumber {
    /// The block.
    pub block: BlockId,
    /// Whole transactions instead of their hashes.
    pub full_transactions: bool,
}

impl GetBlockByNumber {
    /// The method for `block`.
    #[must_use]
    pub fn new(block: impl Into<BlockId>, full_transactions: bool) -> Self {
        Self {
            block: block.into(),
            full_transactions,
        }
    }
}

impl Method for GetBlockByNumber {
    const NAME: &'static str = "eth_getBlockByNumber";
    type Output = Option<Block>;
    fn params(&self) -> Value {
        json!([self.block, self.full_transactions])
    }
    fn decode(result: Value) -> Result<Option<Block>, serde_json::Error> {
        from_value(result)
    }
}

/// `eth_getLogs`: the logs matching a filter with a block range.
#[derive(Clone, Debug)]
pub struct GetLogs(pub LogFilter);

impl Method for GetLogs {
    const NAME: &'static str = "eth_getLogs";
    type Output = Vec<Log>;
    fn params(&self) -> Value {
        json!([self.0])
    }
    fn decode(result: Value) -> Result<Vec<Log>, serde_json::Error> {
        from_value(result)
    }
}

/// `eth_call`: executes a call against a block's state; the result is the returned data (hex).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Call {
    /// The call.
    pub call: CallRequest,
    /// The state to run it on.
    pub block: BlockId,
}

impl Call {
    /// `call` run on the state of `block`.
    #[must_use]
    pub fn new(call: CallRequest, block: impl Into<BlockId>) -> Self {
        Self {
            call,
            block: block.into(),
        }
    }
}

impl Method for Call {
    const NAME: &'static str = "eth_call";
    type Output = String;
    fn params(&self) -> Value {
        json!([self.call, self.block])
    }
    fn decode(result: Value) -> Result<String, serde_json::Error> {
        from_value(result)
    }
}

/// `eth_syncing`: `false`, or the sync progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct Syncing;

impl Method for Syncing {
    const NAME: &'static str = "eth_syncing";
    type Output = SyncStatus;
    fn params(&self) -> Value {
        json!([])
    }
    fn decode(result: Value) -> Result<SyncStatus, serde_json::Error> {
        from_value(result)
    }
}

/// `eth_gasPrice`: the gas price in wei (hex text: it may exceed 64 bits in theory).
#[derive(Clone, Copy, Debug, Default)]
pub struct GasPrice;

impl Method for GasPrice {
    const NAME: &'static str = "eth_gasPrice";
    type Output = u128;
    fn params(&self) -> Value {
        json!([])
    }
    fn decode(result: Value) -> Result<u128, serde_json::Error> {
        let text: String = from_value(result)?;
        crate::quantity::parse_quantity_u128(&text).map_err(serde::de::Error::custom)
    }
}

/// `eth_subscribe`: the result is the server's subscription id.
#[derive(Clone, Debug)]
pub struct Subscribe(pub SubscriptionKind);

impl Method for Subscribe {
    const NAME: &'static str = "eth_subscribe";
    type Output = String;
    const READ_ONLY: bool = false;
    fn params(&self) -> Value {
        self.0.params()
    }
    fn decode(result: Value) -> Result<String, serde_json::Error> {
        from_value(result)
    }
}

/// `eth_unsubscribe`: `true` when the subscription existed and was removed.
#[derive(Clone, Debug)]
pub struct Unsubscribe(pub String);

impl Method for Unsubscribe {
    const NAME: &'static str = "eth_unsubscribe";
    type Output = bool;
    const READ_ONLY: bool = false;
    fn params(&self) -> Value {
        json!([self.0])
    }
    fn decode(result: Value) -> Result<bool, serde_json::Error> {
        from_value(result)
    }
}

/// Decodes a response message for method `M`: its result, or its JSON-RPC error.
///
/// ```
/// use nova_ethereum::methods::{decode_response, BlockNumber};
/// use nova_ethereum::{ErrorCode, EthError};
///
/// let ok = nova_core::Message::text(r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#);
/// assert_eq!(decode_response::<BlockNumber>(&ok).unwrap(), 16);
///
/// let err = nova_core::Message::text(
///     r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}"#,
/// );
/// assert!(matches!(
///     decode_response::<BlockNumber>(&err),
///     Err(EthError::Rpc(e)) if e.code == ErrorCode::MethodNotFound
/// ));
/// ```
///
/// # Errors
/// [`EthError::Rpc`] for an error response, [`EthError::Decode`] for anything malformed.
pub fn decode_response<M: Method>(message: &nova_core::Message) -> Result<M::Output, EthError> {
    let decode = |source| EthError::Decode {
        method: M::NAME,
        source,
    };
    let response: JsonRpcResponse = message.json().map_err(decode)?;
    let result = response.into_result().map_err(EthError::Rpc)?;
    M::decode(result).map_err(decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::ErrorCode;

    fn msg(text: &str) -> nova_core::Message {
        nova_core::Message::text(text.to_owned())
    }

    #[test]
    fn results_decode_to_their_types() {
        assert_eq!(
            decode_response::<ChainId>(&msg(r#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#)).ok(),
            Some(31337)
        );
        assert!(matches!(
            decode_response::<GetBlockByNumber>(&msg(r#"{"jsonrpc":"2.0","id":1,"result":null}"#)),
            Ok(None)
        ));
        assert_eq!(
            decode_response::<GetLogs>(&msg(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#)).ok(),
            Some(vec![])
        );
        assert_eq!(
            decode_response::<Unsubscribe>(&msg(r#"{"jsonrpc":"2.0","id":1,"result":true}"#)).ok(),
            Some(true)
        );
        assert_eq!(
            decode_response::<GasPrice>(&msg(r#"{"jsonrpc":"2.0","id":1,"result":"0x3b9aca00"}"#))
                .ok(),
            Some(1_000_000_000)
        );
    }

    #[test]
    fn malformed_results_are_errors() {
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"result":"10"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"0x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"x":1}}"#,
            r#"not json"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            assert!(
                matches!(
                    decode_response::<BlockNumber>(&msg(bad)),
                    Err(EthError::Decode { .. })
                ),
                "{bad}"
            );
        }
        let reverted = decode_response::<Call>(&msg(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted","data":"0x"}}"#,
        ));
        assert!(
            matches!(reverted, Err(EthError::Rpc(e)) if e.code == ErrorCode::ExecutionReverted)
        );
    }

    #[test]
    fn params_have_the_wire_shape() {
        assert_eq!(
            GetLogs(LogFilter::new().address("0xab").blocks(1, 3)).params(),
            json!([{"address": "0xab", "fromBlock": "0x1", "toBlock": "0x3"}])
        );
        assert_eq!(
            Call {
                call: CallRequest::new("0xab", "0x01"),
                block: BlockId::Latest
            }
            .params(),
            json!([{"to": "0xab", "data": "0x01"}, "latest"])
        );
        assert_eq!(Unsubscribe("0x9c".into()).params(), json!(["0x9c"]));
        assert_eq!(
            Subscribe(SubscriptionKind::NewHeads).params(),
            json!(["newHeads"])
        );
    }
}
