//! Ethereum JSON-RPC over WebSocket for nova: typed requests and results, and `eth_subscribe`
//! subscriptions (`newHeads`, `logs`, `newPendingTransactions`, `syncing`) that survive
//! reconnects and node restarts.
//!
//! # What is here
//!
//! - [`EthereumAdapter`]: the nova behaviours for a node — routing by request id and by the
//!   server's subscription id (new on every connection, mapped to the same stream), and
//!   recovery of what was missed while disconnected: `newHeads` backfilled block by block with
//!   `eth_getBlockByNumber`, `logs` with `eth_getLogs`, delivered in order, without duplicates,
//!   before the live ones.
//! - Reorgs, live or while disconnected: a `newHeads` stream gets a [`Reorg`] event (depth,
//!   common ancestor, old and new hashes) and then the new chain's heads in order; a `logs`
//!   stream gets the logs the reorg removed flagged `removed: true`, then their replacements
//!   ([`LogReorg`]).
//! - [`EthClient`]: typed calls ([`EthClient::block_number`], [`EthClient::logs`], any
//!   [`methods::Method`] through [`EthClient::call`]) and typed subscriptions
//!   ([`EthClient::subscribe`] → [`EthSubscription`] of [`EthEvent`]s).
//! - [`JsonRpcRequest`], [`JsonRpcResponse`], [`RpcError`] with typed [`ErrorCode`]s, and
//!   [`Incoming`], which classifies anything a node sends (response, notification, batch).
//! - Typed results: [`Header`], [`Block`], [`Transaction`], [`Log`], [`SyncStatus`]; hex
//!   quantities parsed without panicking ([`parse_quantity`], [`Quantity`]), unknown members
//!   kept in each type's `other` map.
//! - [`methods`]: `eth_blockNumber`, `eth_chainId`, `eth_getBlockByNumber`, `eth_getLogs`,
//!   `eth_call`, `eth_syncing`, `eth_gasPrice`, `eth_subscribe`, `eth_unsubscribe`, each with
//!   its parameters and result type.
//! - [`SubscriptionKind`] and [`EthEvent`]: the subscription kinds and their payloads.
//!
//! # Wire protocol
//!
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}
//! ← {"jsonrpc":"2.0","id":1,"result":"0xcd0c3e8af590364c09d0fa6a1210faf5"}
//! ← {"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xcd0c…","result":{…header…}}}
//! → {"jsonrpc":"2.0","id":2,"method":"eth_unsubscribe","params":["0xcd0c3e8af590364c09d0fa6a1210faf5"]}
//! ← {"jsonrpc":"2.0","id":2,"result":true}
//! ```
//!
//! Subscriptions are tied to a connection: when it closes, the node forgets them, and the ones
//! made on the next connection get new ids. Notifications are only for new events, never for
//! past ones — what was missed while disconnected has to be fetched (`eth_getBlockByNumber`,
//! `eth_getLogs`).
//!
//! # Example
//!
//! Every new block header of a node (a local anvil here), across reconnects:
//!
//! ```no_run
//! use std::time::Duration;
//! use nova_core::ClientConfig;
//! use nova_ethereum::{EthClient, EthEvent, EthItem, SubscriptionKind};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::builder("ws://127.0.0.1:8545").build()?;
//! let (eth, _messages) = EthClient::connect(config);
//! eth.client().wait_connected(Duration::from_secs(10)).await?;
//! println!("block {}", eth.block_number().await?);
//! let mut heads = eth.subscribe(SubscriptionKind::NewHeads).await?;
//! while let Some(item) = heads.recv().await {
//!     if let EthItem::Event(EthEvent::Head(head)) = item {
//!         println!("{} {:?}", head.number, head.hash);
//!     }
//! }
//! # Ok(()) }
//! ```

mod adapter;
mod client;
mod error;
mod heads;
mod jsonrpc;
mod logs;
pub mod methods;
mod quantity;
mod reorg;
mod subscription;
mod types;

pub use adapter::{
    DEFAULT_MAX_BACKFILL_BLOCKS, DEFAULT_MAX_REORG_DEPTH, EthereumAdapter, log_sequence,
    log_sequence_block,
};
pub use client::{EthClient, EthItem, EthSubscription};
pub use error::EthError;
pub use jsonrpc::{
    ErrorCode, Id, Incoming, JsonRpcRequest, JsonRpcResponse, Notification, Peek, RpcError,
    SUBSCRIPTION_METHOD,
};
pub use quantity::{
    BlockId, Quantity, QuantityError, parse_quantity, parse_quantity_u128, to_quantity,
};
pub use reorg::{BlockRef, LogReorg, REORG_METHOD, Reorg, head_sequence, head_sequence_parts};
pub use subscription::{
    EthEvent, EventDecodeError, SubscriptionKind, SubscriptionKindError, channel,
};
pub use types::{
    AddressFilter, Block, BlockTransactions, CallRequest, Header, Log, LogFilter, SyncStatus,
    TopicFilter, Transaction,
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
