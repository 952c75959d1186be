//! [`EthClient`]: typed Ethereum calls and subscriptions on a nova [`Client`].
//!
//! A thin layer over the runtime: [`EthClient::call`] sends a [`Method`] as a JSON-RPC request
//! (read-only methods are marked idempotent, so a call cut off by a reconnect is sent again
//! rather than failed) and decodes its result; [`EthClient::subscribe`] opens a subscription
//! whose stream survives reconnects and yields typed [`EthEvent`]s.

use std::collections::VecDeque;

use nova_core::{
    Client, ClientConfig, Messages, Request, RequestId, SubscriptionEvent, SubscriptionStream,
};

use crate::adapter::EthereumAdapter;
use crate::error::EthError;
use crate::jsonrpc::{Id, JsonRpcRequest};
use crate::methods::{
    BlockNumber, Call, ChainId, GetBlockByNumber, GetLogs, Method, decode_response,
};
use crate::quantity::BlockId;
use crate::reorg::LogReorg;
use crate::subscription::{EthEvent, EventDecodeError, SubscriptionKind};
use crate::types::{Block, CallRequest, Header, Log, LogFilter};

/// A nova client speaking Ethereum JSON-RPC, with typed calls and subscriptions.
///
/// ```no_run
/// use nova_core::ClientConfig;
/// use nova_ethereum::{EthClient, EthItem, SubscriptionKind};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ClientConfig::builder("ws://127.0.0.1:8545").build()?;
/// let (eth, _messages) = EthClient::connect(config);
/// println!("chain {} at block {}", eth.chain_id().await?, eth.block_number().await?);
/// let mut heads = eth.subscribe(SubscriptionKind::NewHeads).await?;
/// while let Some(item) = heads.recv().await {
///     if let EthItem::Event(event) = item {
///         println!("{}", serde_json::to_string(&event)?);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct EthClient {
    client: Client,
}

impl EthClient {
    /// Connects with an [`EthereumAdapter`] (default settings). The [`Messages`] queue receives
    /// what is neither a response nor a subscription's notification.
    #[must_use]
    pub fn connect(config: ClientConfig) -> (Self, Messages) {
        Self::connect_with(config, EthereumAdapter::new())
    }

    /// Connects with this adapter (for a different backfill cap).
    #[must_use]
    pub fn connect_with(config: ClientConfig, adapter: EthereumAdapter) -> (Self, Messages) {
        let (client, messages) = Client::connect(config, adapter);
        (Self { client }, messages)
    }

    /// Wraps a client whose handler routes Ethereum messages (an [`EthereumAdapter`], or a type
    /// that delegates to one).
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The nova client underneath (state, events, close).
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Calls a typed method and decodes its result. Read-only methods are idempotent: when the
    /// connection breaks before the answer, they are sent again after the reconnect.
    ///
    /// # Errors
    /// [`EthError::Rpc`] for the node's error, [`EthError::Decode`] for a malformed answer,
    /// [`EthError::Client`] for a timeout, a disconnect or a stopped client.
    pub async fn call<M: Method>(&self, method: &M) -> Result<M::Output, EthError> {
        let params = method.params();
        let mut request = Request::new(move |id: &RequestId| {
            JsonRpcRequest::new(Id::from(id), M::NAME, params).to_message()
        });
        if M::READ_ONLY {
            request = request.idempotent();
        }
        let response = self.client.request(request).await?;
        decode_response::<M>(&response)
    }

    /// `eth_blockNumber`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn block_number(&self) -> Result<u64, EthError> {
        self.call(&BlockNumber).await
    }

    /// `eth_chainId`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn chain_id(&self) -> Result<u64, EthError> {
        self.call(&ChainId).await
    }

    /// `eth_getBlockByNumber`; `None` when the node does not have the block.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn block_by_number(
        &self,
        block: impl Into<BlockId>,
        full_transactions: bool,
    ) -> Result<Option<Block>, EthError> {
        self.call(&GetBlockByNumber::new(block, full_transactions))
            .await
    }

    /// `eth_getLogs`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn logs(&self, filter: LogFilter) -> Result<Vec<Log>, EthError> {
        self.call(&GetLogs(filter)).await
    }

    /// `eth_call`: the data the call returns (hex).
    ///
    /// # Errors
    /// As [`call`](Self::call); a revert is [`EthError::Rpc`] with
    /// [`ErrorCode::ExecutionReverted`](crate::ErrorCode::ExecutionReverted).
    pub async fn eth_call(
        &self,
        call: CallRequest,
        block: impl Into<BlockId>,
    ) -> Result<String, EthError> {
        self.call(&Call {
            call,
            block: block.into(),
        })
        .await
    }

    /// Subscribes (`eth_subscribe`) and returns once the node acknowledged. The subscription is
    /// restored after every reconnect, and for `newHeads` and `logs` what was missed meanwhile is
    /// fetched and delivered in order before the live events (see [`EthereumAdapter`]).
    ///
    /// # Errors
    /// [`EthError::Client`] when the node refuses or the client stopped.
    pub async fn subscribe(&self, kind: SubscriptionKind) -> Result<EthSubscription, EthError> {
        let stream = self
            .client
            .subscribe(kind.channel(), kind.options())
            .await?;
        Ok(EthSubscription {
            kind,
            stream,
            pending: VecDeque::new(),
        })
    }
}

/// What an [`EthSubscription`] yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum EthItem {
    /// A head, a reorg, a log (`removed: true` when a reorg took it out), a transaction or a
    /// sync state, live or backfilled.
    Event(EthEvent),
    /// Something about the subscription itself: restored, gap, gap closed, lagged.
    Status(SubscriptionEvent),
    /// A notification whose payload did not decode (kept whole).
    Malformed {
        /// Why.
        error: EventDecodeError,
        /// The message.
        message: nova_core::Message,
    },
}

/// A typed subscription stream; stays the same across reconnects. Dropping it unsubscribes.
///
/// On a `newHeads` subscription, a reorg comes as an [`EthEvent::Reorg`] followed by the new
/// chain's heads; on a `logs` subscription, as the removed logs (`removed: true`) followed by
/// the new ones, one event each.
#[derive(Debug)]
pub struct EthSubscription {
    kind: SubscriptionKind,
    stream: SubscriptionStream,
    /// Events of one message not handed out yet (the logs of a reorg).
    pending: VecDeque<EthEvent>,
}

impl EthSubscription {
    /// The kind of subscription.
    #[must_use]
    pub fn kind(&self) -> &SubscriptionKind {
        &self.kind
    }

    /// The next item; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<EthItem> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(EthItem::Event(event));
            }
            let mut delivery = match self.stream.recv().await? {
                SubscriptionEvent::Message(delivery) => delivery,
                other => return Some(EthItem::Status(other)),
            };
            // The adapter parsed live heads and logs already; everything else is decoded here.
            if let Some(head) = delivery.take::<Header>() {
                return Some(EthItem::Event(EthEvent::Head(Box::new(head))));
            }
            if let Some(log) = delivery.take::<Log>() {
                return Some(EthItem::Event(EthEvent::Log(Box::new(log))));
            }
            if let Some(reorg) = delivery.take::<LogReorg>() {
                self.pending.extend(EthEvent::from_log_reorg(reorg));
                continue;
            }
            let message = delivery.into_message();
            match EthEvent::all_from_message(&self.kind, &message) {
                Ok(events) => self.pending.extend(events),
                Err(error) => return Some(EthItem::Malformed { error, message }),
            }
        }
    }

    /// The next event, skipping status items and malformed notifications; `None` once the
    /// client has stopped.
    pub async fn next_event(&mut self) -> Option<EthEvent> {
        loop {
            if let EthItem::Event(event) = self.recv().await? {
                return Some(event);
            }
        }
    }

    /// The untyped stream underneath.
    #[must_use]
    pub fn into_stream(self) -> SubscriptionStream {
        self.stream
    }

    /// Ends the subscription (`eth_unsubscribe`) and waits until it is done.
    ///
    /// # Errors
    /// When the client has stopped.
    pub async fn unsubscribe(self) -> Result<(), EthError> {
        Ok(self.stream.unsubscribe().await?)
    }
}
