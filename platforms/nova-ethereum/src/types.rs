//! Typed results of the `eth_` methods and subscriptions: block headers, blocks, transactions,
//! logs, log filters, sync status, call requests.
//!
//! Numbers that fit 64 bits (block numbers, indices, gas, timestamps) are `u64`, parsed from hex
//! quantities without panicking; values that can exceed 64 bits (wei, difficulty) and all
//! hashes, addresses and byte strings keep their hex text. Every type keeps the members it does
//! not name in `other`, so nothing a node sends is lost (nodes differ: anvil, geth and hosted
//! providers each add their own fields); [`Header::number`] and friends are the typed view, the
//! raw JSON stays reachable.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::quantity::{BlockId, hex_u64, hex_u64_opt};

/// A block header, as `newHeads` notifications carry it (and the header part of a block).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Header {
    /// The block number.
    #[serde(with = "hex_u64")]
    pub number: u64,
    /// The block hash (absent for a pending block on some nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The parent block's hash.
    pub parent_hash: String,
    /// Seconds since the Unix epoch.
    #[serde(with = "hex_u64")]
    pub timestamp: u64,
    /// The gas limit.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub gas_limit: Option<u64>,
    /// The gas used.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub gas_used: Option<u64>,
    /// The base fee (EIP-1559), in wei.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub base_fee_per_gas: Option<u64>,
    /// The fee recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miner: Option<String>,
    /// The state root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<String>,
    /// The transactions root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions_root: Option<String>,
    /// The receipts root (`receiptsRoot`; geth's docs spell it `receiptRoot`).
    #[serde(
        default,
        alias = "receiptRoot",
        skip_serializing_if = "Option::is_none"
    )]
    pub receipts_root: Option<String>,
    /// The difficulty, as hex text (can exceed 64 bits on proof-of-work chains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<String>,
    /// Every other member, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A transaction, as blocks with full transactions and `eth_getTransactionByHash` return it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Transaction {
    /// The transaction hash.
    pub hash: String,
    /// The sender.
    pub from: String,
    /// The recipient (`None` for a contract creation).
    #[serde(default)]
    pub to: Option<String>,
    /// The sender's nonce.
    #[serde(with = "hex_u64")]
    pub nonce: u64,
    /// The value sent, in wei, as hex text.
    #[serde(default)]
    pub value: Option<String>,
    /// The call data (`input`).
    #[serde(default)]
    pub input: Option<String>,
    /// The block number (`None` while pending).
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    /// The block hash (`None` while pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    /// The index in the block (`None` while pending).
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub transaction_index: Option<u64>,
    /// Every other member, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The `transactions` of a block: hashes, or whole transactions when asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum BlockTransactions {
    /// Transaction hashes (`eth_getBlockByNumber(.., false)`).
    Hashes(Vec<String>),
    /// Whole transactions (`eth_getBlockByNumber(.., true)`).
    Full(Vec<Transaction>),
}

impl Default for BlockTransactions {
    fn default() -> Self {
        Self::Hashes(Vec::new())
    }
}

impl BlockTransactions {
    /// How many transactions.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Hashes(h) => h.len(),
            Self::Full(t) => t.len(),
        }
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A block (`eth_getBlockByNumber`): its header and its transactions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Block {
    /// The transactions.
    #[serde(default)]
    pub transactions: BlockTransactions,
    /// The uncles' hashes.
    #[serde(default)]
    pub uncles: Vec<String>,
    /// The size in bytes.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The header, with every other member in `header.other`.
    #[serde(flatten)]
    pub header: Header,
}

/// A log entry (`eth_getLogs`, `logs` notifications).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Log {
    /// The contract that emitted it.
    pub address: String,
    /// The topics (topic 0 is the event signature's hash for non-anonymous events).
    pub topics: Vec<String>,
    /// The non-indexed data, as hex.
    pub data: String,
    /// The block number (`None` for a pending log).
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    /// The block hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    /// The transaction hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_hash: Option<String>,
    /// The transaction's index in the block.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub transaction_index: Option<u64>,
    /// The log's index in the block.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// `true` when a reorg removed the log (it was sent before, and is sent again flagged).
    #[serde(default)]
    pub removed: bool,
    /// Every other member, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Log {
    /// The log's position in the chain, `(block number, log index)`, when both are known.
    #[must_use]
    pub fn position(&self) -> Option<(u64, u64)> {
        Some((self.block_number?, self.log_index?))
    }
}

/// Addresses a log filter matches: one or any of several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AddressFilter {
    /// One address.
    One(String),
    /// Any of these addresses.
    Any(Vec<String>),
}

/// What one topic position of a log filter matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum TopicFilter {
    /// Exactly this topic.
    One(String),
    /// Any of these topics.
    Any(Vec<String>),
}

/// A log filter: for `logs` subscriptions (address and topics) and `eth_getLogs` (with a block
/// range).
///
/// ```
/// use nova_ethereum::LogFilter;
///
/// let filter = LogFilter::new()
///     .address("0x8320fe7702b96808f7bbc0d4a888ed1468216cfd")
///     .topic(0, "0xd78a0cb8bb633d06981248b816e7bd33c2a35a6089241d099fa519e361cab902");
/// assert_eq!(
///     serde_json::to_value(&filter).unwrap(),
///     serde_json::json!({
///         "address": "0x8320fe7702b96808f7bbc0d4a888ed1468216cfd",
///         "topics": ["0xd78a0cb8bb633d06981248b816e7bd33c2a35a6089241d099fa519e361cab902"]
///     })
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
#[non_exhaustive]
pub struct LogFilter {
    /// The contract address(es); `None` matches every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressFilter>,
    /// Topic positions; `None` at a position matches anything there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<Option<TopicFilter>>,
    /// The first block (`eth_getLogs` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_block: Option<BlockId>,
    /// The last block (`eth_getLogs` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_block: Option<BlockId>,
    /// One block by hash, instead of a range (`eth_getLogs` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
}

impl LogFilter {
    /// A filter that matches every log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Matches logs of this contract (replacing earlier addresses).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(AddressFilter::One(address.into()));
        self
    }

    /// Matches logs of any of these contracts.
    pub fn addresses<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.address = Some(AddressFilter::Any(
            addresses.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Matches logs whose topic at `position` (0..=3) is `topic`.
    pub fn topic(self, position: usize, topic: impl Into<String>) -> Self {
        self.topic_filter(position, TopicFilter::One(topic.into()))
    }

    /// Matches logs whose topic at `position` (0..=3) is any of `topics`.
    pub fn topic_any<I, S>(self, position: usize, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topic_filter(
            position,
            TopicFilter::Any(topics.into_iter().map(Into::into).collect()),
        )
    }

    fn topic_filter(mut self, position: usize, filter: TopicFilter) -> Self {
        // Topics have four positions; a larger one is clamped rather than allocating.
        let position = position.min(3);
        if self.topics.len() <= position {
            self.topics.resize(position + 1, None);
        }
        self.topics[position] = Some(filter);
        self
    }

    /// Restricts to blocks `from..=to` (`eth_getLogs`).
    pub fn blocks(mut self, from: impl Into<BlockId>, to: impl Into<BlockId>) -> Self {
        self.from_block = Some(from.into());
        self.to_block = Some(to.into());
        self
    }

    /// The same address and topics, without any block range (what a subscription takes).
    pub fn without_range(&self) -> Self {
        Self {
            address: self.address.clone(),
            topics: self.topics.clone(),
            from_block: None,
            to_block: None,
            block_hash: None,
        }
    }

    /// Whether a log matches the address and topics of this filter (addresses compared without
    /// regard to case).
    #[must_use]
    pub fn matches(&self, log: &Log) -> bool {
        let address_ok = match &self.address {
            None => true,
            Some(AddressFilter::One(a)) => a.eq_ignore_ascii_case(&log.address),
            Some(AddressFilter::Any(all)) => {
                all.iter().any(|a| a.eq_ignore_ascii_case(&log.address))
            }
        };
        address_ok
            && self
                .topics
                .iter()
                .enumerate()
                .all(|(i, filter)| match filter {
                    None => true,
                    Some(TopicFilter::One(t)) => {
                        log.topics.get(i).is_some_and(|l| l.eq_ignore_ascii_case(t))
                    }
                    Some(TopicFilter::Any(ts)) => log
                        .topics
                        .get(i)
                        .is_some_and(|l| ts.iter().any(|t| l.eq_ignore_ascii_case(t))),
                })
    }
}

/// The node's sync state (`eth_syncing`, `syncing` notifications): `false`, or progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum SyncStatus {
    /// `true` / `false` (false: in sync).
    Flag(bool),
    /// Progress, as the node reports it (shapes differ between nodes).
    Progress(Map<String, Value>),
}

/// A call (`eth_call`, `eth_estimateGas`): what to execute, without sending a transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
#[non_exhaustive]
pub struct CallRequest {
    /// The caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The contract called.
    pub to: String,
    /// The call data (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Gas limit for the call.
    #[serde(default, with = "hex_u64_opt", skip_serializing_if = "Option::is_none")]
    pub gas: Option<u64>,
    /// Value in wei, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl CallRequest {
    /// A call to `to` with `data`.
    pub fn new(to: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// Sets the caller.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// Sets the gas limit.
    pub fn gas(mut self, gas: u64) -> Self {
        self.gas = Some(gas);
        self
    }

    /// Sets the value in wei (hex).
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `newHeads` example of the geth pub/sub docs (receiptRoot spelled the docs' way).
    const GETH_HEAD: &str = r#"{"difficulty":"0x15d9223a23aa","extraData":"0xd983010305844765746887676f312e342e328777696e646f7773","gasLimit":"0x47e7c4","gasUsed":"0x38658","logsBloom":"0x00","miner":"0xf8b483dba2c3b7176a3da549ad41a48bb3121069","nonce":"0x084149998194cc5f","number":"0x1348c9","parentHash":"0x7736fab79e05dc611604d22470dadad26f56fe494421b5b333de816ce1f25701","receiptRoot":"0x2fab35823ad00c7bb388595cb46652fe7886e00660a01e867824d3dceb1c8d36","sha3Uncles":"0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347","stateRoot":"0xb3346685172db67de536d8765c43c31009d0eb3bd9c501c9be3229203f15f378","timestamp":"0x56ffeff8","transactionsRoot":"0x0167ffa60e3ebc0b080cdb95f7c0087dd6c0e61413140e39d94d3468d7c9689f"}"#;

    #[test]
    fn geth_head_parses_and_keeps_unknown_members() {
        let head: Header = serde_json::from_str(GETH_HEAD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.number, 0x1348c9);
        assert_eq!(head.timestamp, 0x56ffeff8);
        assert_eq!(head.gas_used, Some(0x38658));
        assert_eq!(head.hash, None);
        assert_eq!(head.difficulty.as_deref(), Some("0x15d9223a23aa"));
        assert!(head.receipts_root.is_some());
        assert_eq!(
            head.other.get("nonce"),
            Some(&Value::from("0x084149998194cc5f"))
        );
        assert!(head.other.contains_key("sha3Uncles"));
    }

    #[test]
    fn bad_quantities_are_errors_not_panics() {
        for bad in [
            r#"{"number":"1348c9","parentHash":"0x","timestamp":"0x1"}"#,
            r#"{"number":"0x1ffffffffffffffff","parentHash":"0x","timestamp":"0x1"}"#,
            r#"{"number":null,"parentHash":"0x","timestamp":"0x1"}"#,
            r#"{"number":"0x1","parentHash":"0x","timestamp":"0x1","gasUsed":"0xq"}"#,
            r#"{"parentHash":"0x","timestamp":"0x1"}"#,
        ] {
            assert!(serde_json::from_str::<Header>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logs_parse_with_their_position() {
        let log: Log = serde_json::from_str(r#"{"address":"0x8320fe7702b96808f7bbc0d4a888ed1468216cfd","blockHash":"0x61cdb2a09ab99abf791d474f20c2ea89bf8de2923a2d42bb49944c8c993cbf04","blockNumber":"0x29e87","data":"0x01","logIndex":"0x2","topics":["0xd78a0cb8bb633d06981248b816e7bd33c2a35a6089241d099fa519e361cab902"],"transactionHash":"0xe044554a0a55067caafd07f8020ab9f2af60bdfe337e395ecd84b4877a3d1ab4","transactionIndex":"0x0"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.position(), Some((0x29e87, 2)));
        assert!(!log.removed);
        let filter = LogFilter::new()
            .address("0x8320FE7702B96808F7BBC0D4A888ED1468216CFD")
            .topic(
                0,
                "0xd78a0cb8bb633d06981248b816e7bd33c2a35a6089241d099fa519e361cab902",
            );
        assert!(filter.matches(&log));
        assert!(!filter.clone().topic(1, "0x01").matches(&log));
        assert!(!filter.topic_any(0, ["0x01", "0x02"]).matches(&log));
    }

    #[test]
    fn filters_serialize_with_ranges_and_gaps() {
        let filter = LogFilter::new()
            .addresses(["0xa", "0xb"])
            .topic(2, "0xc")
            .blocks(16, BlockId::Latest);
        assert_eq!(
            serde_json::to_value(&filter).ok(),
            Some(serde_json::json!({
                "address": ["0xa", "0xb"],
                "topics": [null, null, "0xc"],
                "fromBlock": "0x10",
                "toBlock": "latest"
            }))
        );
        assert_eq!(filter.without_range().from_block, None);
        assert_eq!(LogFilter::new().topic(99, "0x1").topics.len(), 4);
    }

    #[test]
    fn blocks_parse_with_hashes_or_full_transactions() {
        let hashes: Block = serde_json::from_str(r#"{"number":"0x2","hash":"0xaa","parentHash":"0xbb","timestamp":"0x5","transactions":["0x01","0x02"],"uncles":[],"size":"0x100","mixHash":"0x00"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hashes.header.number, 2);
        assert_eq!(hashes.transactions.len(), 2);
        assert_eq!(hashes.size, Some(256));
        assert!(hashes.header.other.contains_key("mixHash"));
        assert!(!hashes.header.other.contains_key("transactions"));
        let full: Block = serde_json::from_str(r#"{"number":"0x2","parentHash":"0xbb","timestamp":"0x5","transactions":[{"hash":"0x01","from":"0xf3","to":null,"nonce":"0x0","value":"0x0","input":"0x60","blockNumber":"0x2","type":"0x2"}]}"#).unwrap_or_else(|e| panic!("{e}"));
        let BlockTransactions::Full(txs) = &full.transactions else {
            panic!("{full:?}")
        };
        assert_eq!(txs[0].to, None);
        assert_eq!(txs[0].block_number, Some(2));
        assert_eq!(txs[0].other.get("type"), Some(&Value::from("0x2")));
    }
}
