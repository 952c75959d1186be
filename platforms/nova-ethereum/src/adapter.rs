//! [`EthereumAdapter`]: the nova behaviours for Ethereum JSON-RPC pub/sub, and how it keeps a
//! subscription whole across reconnects, node restarts and reorgs.
//!
//! # Routing
//!
//! `message_type` reads only `id`, `method` and `params` (one pass over nova-core's
//! [`Envelope`](nova_core::jsonrpc::Envelope), everything borrowed): a response is
//! routed to its request by id; an `eth_subscription` notification is routed by the *server's*
//! subscription id, which [`handle_subscription_response`] hands to the runtime as the routing
//! key. That id is new on every connection; the runtime maps each new one to the same
//! application stream.
//!
//! # No block lost, none twice, reorgs told
//!
//! Notifications are only sent for new events, so whatever happened while the connection was
//! down (or before the subscription was restored) has to be fetched. And a reorg sends heads and
//! logs at heights already delivered. The adapter gives the runtime a sequence for each message
//! and answers its gap callbacks:
//!
//! | channel | sequence | gap noticed | backfill |
//! |---|---|---|---|
//! | `newHeads` | [`head_sequence`]`(branch, number)`, [`Sequence::next`]; the branch grows at every reorg | a head more than one past the last delivered, or not built on it | `eth_getBlockByNumber` for each height from the fork (or `max_reorg_depth` below the last delivered head) to the new head (at most `max_backfill_blocks` past the last delivered) |
//! | `logs` | [`log_sequence`]`(blockNumber, logIndex)`, [`Sequence::monotonic`]; a snapshot at a log that replaces delivered ones | right after every restore (logs have no counter to show a gap) | one `eth_getLogs` with the subscription's filter, from the oldest remembered block to `latest` |
//!
//! The runtime holds live messages back while the backfill runs, delivers the fetched ones in
//! sequence order, drops everything at or below the last delivered value (so a head or a log
//! that arrives both ways comes once), then releases the held ones. Backfilled messages are
//! shaped as notifications of the current subscription id, so the application cannot tell them
//! from live ones; a backfilled head is the block without its body (`transactions`, `uncles`,
//! `withdrawals`).
//!
//! A head that forks from the delivered chain — at a height already delivered with another
//! hash, or whose parent is not the last delivered head — starts the same backfill; the fetched
//! blocks are compared with the delivered heads by hash, and when they differ the application
//! gets a [`Reorg`] (depth, common ancestor, old and new hashes) and then the new chain's heads
//! in order from the first replaced height (see `heads.rs` for the whole algorithm). A reorg
//! that happened while disconnected is found the same way: after a gap, the heights up to
//! `max_reorg_depth` below the last delivered head are fetched again and compared.
//!
//! On `logs`, the delivered logs of the last `max_reorg_depth` blocks are remembered with their
//! block hashes: a log in a block seen with another hash, or at a position already passed,
//! replaces them — the application gets every delivered log from that height on flagged
//! `removed: true` (unless the node sent those itself), then the new logs ([`LogReorg`]; see
//! `logs.rs`).
//!
//! Limits: a `logs` subscription that had delivered nothing before a reconnect has no position
//! to backfill from. A reorg deeper than `max_reorg_depth` is told with an unknown common
//! ancestor. On a node that does not send removed logs (anvil), a reorg that leaves no matching
//! log at an already passed height cannot be seen on a `logs` stream alone.
//! `newPendingTransactions` and `syncing` have no sequence: what happens while disconnected is
//! not recoverable.
//!
//! [`handle_subscription_response`]: SubscriptionHandler::handle_subscription_response
//! [`Reorg`]: crate::Reorg
//! [`LogReorg`]: crate::LogReorg
//! [`head_sequence`]: crate::head_sequence

use std::collections::HashMap;

use nova_core::jsonrpc::Notification;
use nova_core::{
    AuthHandler, ConnectionHandler, Context, Data, ErrorHandler, Gap, GapAction, HandlerError,
    HeartbeatHandler, Message, MessageHandler, MessageType, RateLimitHandler, RequestId, Sequence,
    Subscription, SubscriptionHandler,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::heads::{self, HeadFields, HeadId, HeadTracker};
use crate::jsonrpc::{
    ErrorCode, Id, JsonRpcRequest, JsonRpcResponse, Peek, Route, SUBSCRIPTION_METHOD,
};
use crate::logs::{self, LogTracker};
use crate::methods::{self, GetBlockByNumber, GetLogs, Method};
use crate::quantity::{BlockId, Quantity};
use crate::reorg::{LogReorg, reorg_message, reorg_position};
use crate::subscription::SubscriptionKind;
use crate::types::{Header, Log};

/// How many bits of a `logs` sequence value hold the log index.
const LOG_INDEX_BITS: u32 = 24;
/// The largest log index that fits; larger ones are clamped (no block has that many logs).
const LOG_INDEX_MAX: u64 = (1 << LOG_INDEX_BITS) - 1;

/// The default cap on heads fetched to close one gap.
pub const DEFAULT_MAX_BACKFILL_BLOCKS: u64 = 1_000;

/// The default depth of the reorgs the adapter resolves (see
/// [`EthereumAdapter::max_reorg_depth`]).
pub const DEFAULT_MAX_REORG_DEPTH: u64 = 16;

/// The largest block number a log sequence holds (2^40 - 1, a trillion blocks); larger ones are
/// clamped rather than wrapped.
const LOG_BLOCK_MAX: u64 = (1 << (64 - LOG_INDEX_BITS)) - 1;

/// The sequence value of a log at `(block, index)`: ordered like the chain (block numbers up to
/// 2^40 - 1, log indices up to 2^24 - 1; larger values are clamped, never wrapped).
#[must_use]
pub fn log_sequence(block: u64, index: u64) -> u64 {
    (block.min(LOG_BLOCK_MAX) << LOG_INDEX_BITS) | index.min(LOG_INDEX_MAX)
}

/// The block number of a [`log_sequence`] value.
#[must_use]
pub fn log_sequence_block(value: u64) -> u64 {
    value >> LOG_INDEX_BITS
}

/// The parts of a [`Gap`] the adapter looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GapView {
    pub(crate) last: Option<u64>,
    pub(crate) got: Option<u64>,
    pub(crate) after_reconnect: bool,
}

impl From<&Gap> for GapView {
    fn from(gap: &Gap) -> Self {
        Self {
            last: gap.last,
            got: gap.got,
            after_reconnect: gap.after_reconnect,
        }
    }
}

/// What the adapter remembers of one subscription.
#[derive(Debug)]
struct SubState {
    kind: SubscriptionKind,
    /// The server's id on the current connection, once acknowledged.
    server_id: Option<String>,
    /// What was delivered, for gaps and reorgs (`newHeads` and `logs`).
    tracker: Tracker,
}

/// The delivery state of a subscription kind that has one.
#[derive(Debug)]
enum Tracker {
    Heads(HeadTracker),
    Logs(LogTracker),
    None,
}

/// The Ethereum JSON-RPC adapter: message routing, `eth_subscribe` / `eth_unsubscribe`, and
/// gap recovery for `newHeads` and `logs` (see the module docs). Policy behaviours (connection,
/// errors) keep nova's defaults.
///
/// ```no_run
/// use nova_core::{Client, ClientConfig};
/// use nova_ethereum::{EthereumAdapter, SubscriptionKind};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ClientConfig::builder("ws://127.0.0.1:8545").build()?;
/// let (client, _messages) = Client::connect(config, EthereumAdapter::new());
/// let kind = SubscriptionKind::NewHeads;
/// let mut heads = client.subscribe(kind.channel(), kind.options()).await?;
/// while let Some(head) = heads.next_message().await {
///     println!("{}", head.as_text().unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EthereumAdapter {
    subs: HashMap<String, SubState>,
    max_backfill_blocks: u64,
    max_reorg_depth: u64,
}

impl Default for EthereumAdapter {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Deserialize)]
struct NotificationEnvelope<T> {
    params: NotificationParams<T>,
}

#[derive(Deserialize)]
struct NotificationParams<T> {
    result: T,
}

#[derive(Deserialize)]
struct HeadPosition {
    number: Quantity,
}

impl EthereumAdapter {
    /// An adapter with the default backfill cap.
    #[must_use]
    pub fn new() -> Self {
        Self {
            subs: HashMap::new(),
            max_backfill_blocks: DEFAULT_MAX_BACKFILL_BLOCKS,
            max_reorg_depth: DEFAULT_MAX_REORG_DEPTH,
        }
    }

    /// At most this many heads are fetched to close one `newHeads` gap (default 1000; at least
    /// 1). A longer gap is filled from its start up to the cap and then reported as not closed.
    #[must_use]
    pub fn max_backfill_blocks(mut self, blocks: u64) -> Self {
        self.max_backfill_blocks = blocks.max(1);
        self
    }

    /// The deepest reorg told with its common ancestor (default 16; at least 1): a `newHeads`
    /// subscription remembers this many delivered heads (plus one) and, after a gap, fetches
    /// again this many heights below the last delivered head to find a fork that happened
    /// meanwhile; a `logs` subscription remembers the logs it delivered from this many blocks.
    /// A deeper reorg is still told, without its common ancestor.
    #[must_use]
    pub fn max_reorg_depth(mut self, depth: u64) -> Self {
        self.max_reorg_depth = depth.max(1);
        self
    }

    /// The server's current id for a subscription (by nova's subscription id), once
    /// acknowledged on this connection.
    #[must_use]
    pub fn server_id(&self, subscription_id: &str) -> Option<&str> {
        self.subs.get(subscription_id)?.server_id.as_deref()
    }

    /// Builds the `eth_subscribe` request for `subscription` and remembers its kind.
    ///
    /// # Errors
    /// For a channel that is not a subscription kind, or options that do not fit it.
    pub fn subscribe_message(
        &mut self,
        subscription: &Subscription,
        options: &Value,
        id: &RequestId,
    ) -> Result<Message, HandlerError> {
        let kind = SubscriptionKind::from_channel(&subscription.channel, options)
            .map_err(|e| HandlerError::new(e.to_string()))?;
        let message =
            JsonRpcRequest::new(Id::from(id), methods::Subscribe::NAME, kind.params()).to_message();
        // A restore subscribes again: what was delivered stays.
        let state = match self.subs.remove(&subscription.id) {
            Some(state) if state.kind == kind => SubState {
                server_id: None,
                ..state
            },
            _ => {
                let tracker = match kind {
                    SubscriptionKind::NewHeads => Tracker::Heads(HeadTracker::new(
                        self.max_reorg_depth,
                        self.max_backfill_blocks,
                    )),
                    SubscriptionKind::Logs(_) => {
                        Tracker::Logs(LogTracker::new(self.max_reorg_depth))
                    }
                    _ => Tracker::None,
                };
                SubState {
                    kind,
                    server_id: None,
                    tracker,
                }
            }
        };
        self.subs.insert(subscription.id.clone(), state);
        Ok(message)
    }

    /// Builds the `eth_unsubscribe` request (when the server knows the subscription) and forgets
    /// it.
    pub fn unsubscribe_message(
        &mut self,
        subscription: &Subscription,
        id: &RequestId,
    ) -> Option<Message> {
        let server_id = self.subs.remove(&subscription.id)?.server_id?;
        Some(
            JsonRpcRequest::new(
                Id::from(id),
                methods::Unsubscribe::NAME,
                methods::Unsubscribe(server_id).params(),
            )
            .to_message(),
        )
    }

    /// Reads the server's subscription id from the `eth_subscribe` response: the routing key.
    ///
    /// # Errors
    /// When the node refused the subscription, or answered something else than an id.
    pub fn subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
    ) -> Result<String, HandlerError> {
        let server_id = methods::decode_response::<methods::Subscribe>(response).map_err(|e| {
            HandlerError::new(format!(
                "eth_subscribe {} refused: {e}",
                subscription.channel
            ))
        })?;
        if let Some(state) = self.subs.get_mut(&subscription.id) {
            state.server_id = Some(server_id.clone());
        }
        Ok(server_id)
    }

    /// The sequence of a message of `subscription` (see the module docs): what the runtime
    /// asks for messages the adapter did not give one when it classified them (held while a
    /// backfill ran, or fetched by one).
    #[must_use]
    pub fn sequence_of(&self, subscription: &Subscription, message: &Message) -> Option<Sequence> {
        let state = self.subs.get(&subscription.id);
        match subscription.channel.as_str() {
            crate::channel::NEW_HEADS => {
                if let Some(position) = reorg_position(message) {
                    return Some(Sequence::next(position));
                }
                match state.map(|s| &s.tracker) {
                    Some(Tracker::Heads(tracker)) => {
                        let head: NotificationEnvelope<HeadFields> = message.json().ok()?;
                        let value = tracker.value_of(&HeadId::from(head.params.result));
                        Some(Sequence::next(value))
                    }
                    _ => {
                        let head: NotificationEnvelope<HeadPosition> = message.json().ok()?;
                        Some(Sequence::next(head.params.result.number.0))
                    }
                }
            }
            crate::channel::LOGS => {
                if let Some(position) = reorg_position(message) {
                    return Some(Sequence::monotonic(position));
                }
                let log: NotificationEnvelope<Log> = message.json().ok()?;
                let log = log.params.result;
                match state.map(|s| &s.tracker) {
                    Some(Tracker::Logs(tracker)) => tracker.sequence_of(&log),
                    _ if log.removed => None,
                    _ => Some(Sequence::monotonic(log_sequence(
                        log.block_number?,
                        log.log_index?,
                    ))),
                }
            }
            _ => None,
        }
    }

    /// What to do about a gap, with request ids from `next_id`, when the runtime gives up a
    /// backfill after holding `hold_cap` messages (see the module docs).
    pub(crate) fn plan_gap(
        &mut self,
        subscription: &Subscription,
        gap: GapView,
        hold_cap: usize,
        mut next_id: impl FnMut() -> RequestId,
    ) -> GapAction {
        let Some(state) = self.subs.get_mut(&subscription.id) else {
            return GapAction::Report;
        };
        match (&mut state.tracker, &state.kind) {
            (Tracker::Heads(tracker), _) => {
                match tracker.on_gap(gap.last, gap.got, hold_cap, next_id) {
                    heads::Plan::Ignore => GapAction::Ignore,
                    heads::Plan::Report => GapAction::Report,
                    heads::Plan::Fetch(requests) => GapAction::Backfill(
                        requests
                            .into_iter()
                            .map(|(id, number)| {
                                let message = JsonRpcRequest::new(
                                    Id::from(&id),
                                    GetBlockByNumber::NAME,
                                    GetBlockByNumber::new(number, false).params(),
                                )
                                .to_message();
                                (id, message)
                            })
                            .collect(),
                    ),
                }
            }
            (Tracker::Logs(tracker), SubscriptionKind::Logs(filter))
                if gap.after_reconnect && gap.got.is_none() =>
            {
                match tracker.on_reconnect(gap.last, hold_cap, &mut next_id) {
                    Some((id, from)) => {
                        let filter = filter.without_range().blocks(from, BlockId::Latest);
                        let message = JsonRpcRequest::new(
                            Id::from(&id),
                            GetLogs::NAME,
                            GetLogs(filter).params(),
                        )
                        .to_message();
                        GapAction::Backfill(vec![(id, message)])
                    }
                    None => GapAction::Ignore,
                }
            }
            _ => GapAction::Ignore,
        }
    }

    /// Takes in a backfill response; returns the messages to deliver once the backfill is
    /// complete (notifications of the subscription's current server id, and the reorg
    /// messages of the [`REORG_METHOD`](crate::REORG_METHOD)), nothing while answers are awaited.
    ///
    /// # Errors
    /// When the response is a JSON-RPC error, malformed, or not what was asked; the gap is then
    /// reported as not closed.
    pub fn backfill_messages(
        &mut self,
        subscription: &Subscription,
        response: &Message,
    ) -> Result<Vec<Message>, HandlerError> {
        let state = self.subs.get_mut(&subscription.id).ok_or_else(|| {
            HandlerError::new(format!(
                "backfill for unknown subscription {}",
                subscription.id
            ))
        })?;
        let server_id = state.server_id.clone().unwrap_or_default();
        let (id, answer) = read_answer(response);
        let Some(id) = id else {
            return Err(HandlerError::new("a backfill response without an id"));
        };
        let notification = |result: Value| {
            Notification::new(
                SUBSCRIPTION_METHOD,
                json!({ "subscription": server_id, "result": result }),
            )
            .to_message()
        };
        match &mut state.tracker {
            Tracker::Heads(tracker) => match tracker.on_answer(&id, answer) {
                heads::Answer::NotOurs | heads::Answer::Pending => Ok(Vec::new()),
                heads::Answer::Failed(reason) => {
                    Err(HandlerError::new(format!("backfill: {reason}")))
                }
                heads::Answer::Done(delivery) => {
                    let mut out = Vec::with_capacity(delivery.heads.len() + 1);
                    if let Some((reorg, position)) = delivery.reorg {
                        let result = serde_json::to_value(&reorg).unwrap_or(Value::Null);
                        out.push(reorg_message(&server_id, position, result));
                    }
                    out.extend(
                        delivery
                            .heads
                            .into_iter()
                            .map(|(block, _)| notification(Value::Object(block))),
                    );
                    Ok(out)
                }
            },
            Tracker::Logs(tracker) => {
                match tracker.on_answer(&id, answer) {
                    logs::Answer::NotOurs => Ok(Vec::new()),
                    logs::Answer::Failed(reason) => {
                        Err(HandlerError::new(format!("backfill: {reason}")))
                    }
                    logs::Answer::Done(delivery) => {
                        let mut out = Vec::with_capacity(delivery.logs.len() + 1);
                        if let Some((reorg, position)) = delivery.reorg {
                            let result = serde_json::to_value(&reorg).unwrap_or(Value::Null);
                            out.push(reorg_message(&server_id, position, result));
                        }
                        out.extend(delivery.logs.iter().map(|log| {
                            notification(serde_json::to_value(log).unwrap_or(Value::Null))
                        }));
                        Ok(out)
                    }
                }
            }
            Tracker::None => Ok(Vec::new()),
        }
    }
}

/// A response's request id and its result (or why there is none).
fn read_answer(response: &Message) -> (Option<RequestId>, Result<Value, String>) {
    match response.json::<JsonRpcResponse>() {
        Ok(response) => (
            response.id.to_request_id(),
            response.into_result().map_err(|e| e.to_string()),
        ),
        Err(e) => {
            let id = match Peek::of(response.as_bytes()) {
                Peek::Response(id) => id.to_request_id(),
                _ => None,
            };
            (id, Err(format!("malformed response: {e}")))
        }
    }
}

impl MessageHandler for EthereumAdapter {
    /// One look per message: a notification's server subscription id (its route) and its
    /// `result` are borrowed from the message; a `newHeads` result is parsed into a [`Header`]
    /// and a `logs` result into a [`Log`] (a [`LogReorg`] when it replaces delivered logs),
    /// handed to the stream with the message and its sequence position, so nothing is parsed
    /// again.
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        let (route, result) = match crate::jsonrpc::route(message.as_bytes()) {
            Route::Notification(route, result) => (route, result),
            Route::Response(id) => {
                return match id.into_request_id() {
                    Some(id) => MessageType::Response { id },
                    None => MessageType::Unknown,
                };
            }
            Route::Other => return MessageType::Unknown,
        };
        let tracker = self
            .subs
            .values_mut()
            .find(|s| s.server_id.as_deref() == Some(route))
            .map(|s| &mut s.tracker);
        match tracker {
            Some(Tracker::Heads(tracker)) => match serde_json::from_str::<Header>(result.get()) {
                Ok(head) => {
                    let value = tracker.on_live(HeadId::of(&head));
                    let typed = MessageType::data(route, Data::new(head));
                    match value {
                        Some(value) => typed.with_sequence(Sequence::next(value)),
                        None => typed,
                    }
                }
                Err(_) => MessageType::subscription(route),
            },
            Some(Tracker::Logs(tracker)) => match serde_json::from_str::<Log>(result.get()) {
                Ok(log) => {
                    let live = tracker.on_live(&log);
                    let data = if live.removed.is_empty() {
                        Data::new(log)
                    } else {
                        Data::new(LogReorg::new(live.removed, vec![log]))
                    };
                    let typed = MessageType::data(route, data);
                    match live.sequence {
                        Some(sequence) => typed.with_sequence(sequence),
                        None => typed,
                    }
                }
                Err(_) => MessageType::subscription(route),
            },
            _ => MessageType::subscription(route),
        }
    }
}

impl SubscriptionHandler for EthereumAdapter {
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        options: &Value,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        self.subscribe_message(subscription, options, &id)
    }

    fn unsubscribe(
        &mut self,
        subscription: &Subscription,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        Ok(self.unsubscribe_message(subscription, &id))
    }

    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        self.subscription_response(subscription, response).map(Some)
    }

    fn sequence(&self, subscription: &Subscription, message: &Message) -> Option<Sequence> {
        self.sequence_of(subscription, message)
    }

    fn on_gap(
        &mut self,
        subscription: &Subscription,
        gap: &Gap,
        ctx: &mut Context<'_>,
    ) -> GapAction {
        let hold_cap = ctx.config().inbound_buffer();
        self.plan_gap(subscription, gap.into(), hold_cap, || ctx.next_request_id())
    }

    fn handle_backfill_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Vec<Message>, HandlerError> {
        self.backfill_messages(subscription, response)
    }
}

impl RateLimitHandler for EthereumAdapter {
    /// EIP-1474's "limit exceeded" (`-32005`), what hosted nodes answer when rate limited.
    fn is_rate_limit_response(&self, response: &Message) -> bool {
        response
            .json::<JsonRpcResponse>()
            .ok()
            .and_then(|r| r.error)
            .is_some_and(|e| e.code == ErrorCode::LimitExceeded)
    }
}

impl ConnectionHandler for EthereumAdapter {}
impl AuthHandler for EthereumAdapter {}
impl ErrorHandler for EthereumAdapter {}
impl HeartbeatHandler for EthereumAdapter {}

#[cfg(test)]
mod tests;
