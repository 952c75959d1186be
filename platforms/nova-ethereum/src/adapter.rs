//! [`EthereumAdapter`]: the nova behaviours for Ethereum JSON-RPC pub/sub, and how it keeps a
//! subscription whole across reconnects and node restarts.
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
//! # No block lost, none twice
//!
//! Notifications are only sent for new events, so whatever happened while the connection was
//! down (or before the subscription was restored) has to be fetched. The adapter gives the
//! runtime a sequence for each message and answers its gap callbacks:
//!
//! | channel | sequence | gap noticed | backfill |
//! |---|---|---|---|
//! | `newHeads` | the block number, [`Sequence::next`] (each must be the last + 1) | the first live head after a reconnect is more than one past the last delivered | `eth_getBlockByNumber` for each missing number (at most `max_backfill_blocks`) |
//! | `logs` | `(blockNumber, logIndex)` packed as `blockNumber << 24 \| logIndex`, [`Sequence::monotonic`] | right after every restore (logs have no counter to show a gap) | one `eth_getLogs` with the subscription's filter, from the last delivered block to `latest` |
//!
//! The runtime holds live messages back while the backfill runs, delivers the fetched ones in
//! sequence order, drops everything at or below the last delivered value (so a head or a log
//! that arrives both ways comes once), then releases the held ones. Backfilled messages are
//! shaped as notifications of the current subscription id, so the application cannot tell them
//! from live ones; a backfilled head is the block without its body (`transactions`, `uncles`,
//! `withdrawals`).
//!
//! Limits: a reorg's replacement head at an already delivered height, and a log flagged
//! `removed`, are not sequence-checked — the head is dropped as a duplicate; the removed log is
//! delivered as is. A `logs` subscription that had delivered nothing before a reconnect has no
//! position to backfill from. `newPendingTransactions` and `syncing` have no sequence: what
//! happens while disconnected is not recoverable.
//!
//! [`handle_subscription_response`]: SubscriptionHandler::handle_subscription_response

use std::collections::HashMap;

use nova_core::jsonrpc::Notification;
use nova_core::{
    AuthHandler, ConnectionHandler, Context, Data, ErrorHandler, Gap, GapAction, HandlerError,
    HeartbeatHandler, Message, MessageHandler, MessageType, RateLimitHandler, RequestId, Sequence,
    Subscription, SubscriptionHandler,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jsonrpc::{ErrorCode, Id, JsonRpcRequest, JsonRpcResponse, Route, SUBSCRIPTION_METHOD};
use crate::methods::{self, GetBlockByNumber, GetLogs, Method};
use crate::quantity::{BlockId, Quantity};
use crate::subscription::SubscriptionKind;
use crate::types::{Header, Log};

/// How many bits of a `logs` sequence value hold the log index.
const LOG_INDEX_BITS: u32 = 24;
/// The largest log index that fits; larger ones are clamped (no block has that many logs).
const LOG_INDEX_MAX: u64 = (1 << LOG_INDEX_BITS) - 1;

/// The default cap on heads fetched to close one gap.
pub const DEFAULT_MAX_BACKFILL_BLOCKS: u64 = 1_000;

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
#[derive(Clone, Debug)]
struct SubState {
    kind: SubscriptionKind,
    /// The server's id on the current connection, once acknowledged.
    server_id: Option<String>,
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogPosition {
    block_number: Option<Quantity>,
    log_index: Option<Quantity>,
    #[serde(default)]
    removed: bool,
}

impl EthereumAdapter {
    /// An adapter with the default backfill cap.
    #[must_use]
    pub fn new() -> Self {
        Self {
            subs: HashMap::new(),
            max_backfill_blocks: DEFAULT_MAX_BACKFILL_BLOCKS,
        }
    }

    /// At most this many heads are fetched to close one `newHeads` gap (default 1000; at least
    /// 1). A longer gap is filled from its start up to the cap and then reported as not closed.
    #[must_use]
    pub fn max_backfill_blocks(mut self, blocks: u64) -> Self {
        self.max_backfill_blocks = blocks.max(1);
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
        self.subs.insert(
            subscription.id.clone(),
            SubState {
                kind,
                server_id: None,
            },
        );
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

    /// The sequence of a message of `subscription` (see the module docs).
    #[must_use]
    pub fn sequence_of(&self, subscription: &Subscription, message: &Message) -> Option<Sequence> {
        match subscription.channel.as_str() {
            crate::channel::NEW_HEADS => {
                let head: NotificationEnvelope<HeadPosition> = message.json().ok()?;
                Some(Sequence::next(head.params.result.number.0))
            }
            crate::channel::LOGS => {
                let log: NotificationEnvelope<LogPosition> = message.json().ok()?;
                let log = log.params.result;
                if log.removed {
                    return None;
                }
                Some(Sequence::monotonic(log_sequence(
                    log.block_number?.0,
                    log.log_index?.0,
                )))
            }
            _ => None,
        }
    }

    /// What to do about a gap, with request ids from `next_id` (see the module docs).
    pub(crate) fn plan_gap(
        &self,
        subscription: &Subscription,
        gap: GapView,
        mut next_id: impl FnMut() -> RequestId,
    ) -> GapAction {
        let Some(state) = self.subs.get(&subscription.id) else {
            return GapAction::Report;
        };
        let Some(last) = gap.last else {
            return GapAction::Ignore;
        };
        match (&state.kind, gap.got) {
            (SubscriptionKind::NewHeads, Some(got)) => {
                let first = last.saturating_add(1);
                let end = got.min(first.saturating_add(self.max_backfill_blocks));
                if first >= end {
                    return GapAction::Ignore;
                }
                let requests = (first..end)
                    .map(|number| {
                        let id = next_id();
                        let message = JsonRpcRequest::new(
                            Id::from(&id),
                            GetBlockByNumber::NAME,
                            GetBlockByNumber::new(number, false).params(),
                        )
                        .to_message();
                        (id, message)
                    })
                    .collect();
                GapAction::Backfill(requests)
            }
            // A head gap right after a reconnect shows itself with the next live head.
            (SubscriptionKind::NewHeads, None) => GapAction::Ignore,
            (SubscriptionKind::Logs(filter), None) if gap.after_reconnect => {
                let id = next_id();
                let filter = filter
                    .without_range()
                    .blocks(log_sequence_block(last), BlockId::Latest);
                let message =
                    JsonRpcRequest::new(Id::from(&id), GetLogs::NAME, GetLogs(filter).params())
                        .to_message();
                GapAction::Backfill(vec![(id, message)])
            }
            _ => GapAction::Ignore,
        }
    }

    /// Turns a backfill response into notifications of the subscription's current server id.
    ///
    /// # Errors
    /// When the response is a JSON-RPC error, malformed, or a block the node does not have.
    pub fn backfill_messages(
        &self,
        subscription: &Subscription,
        response: &Message,
    ) -> Result<Vec<Message>, HandlerError> {
        let state = self.subs.get(&subscription.id).ok_or_else(|| {
            HandlerError::new(format!(
                "backfill for unknown subscription {}",
                subscription.id
            ))
        })?;
        let server_id = state.server_id.clone().unwrap_or_default();
        let response: JsonRpcResponse = response
            .json()
            .map_err(|e| HandlerError::new(format!("malformed backfill response: {e}")))?;
        let result = response
            .into_result()
            .map_err(|e| HandlerError::new(format!("backfill request failed: {e}")))?;
        let notification = |result: Value| {
            Notification::new(
                SUBSCRIPTION_METHOD,
                json!({ "subscription": server_id, "result": result }),
            )
            .to_message()
        };
        match &state.kind {
            SubscriptionKind::NewHeads => match result {
                Value::Object(mut block) => {
                    for body in ["transactions", "uncles", "withdrawals"] {
                        block.remove(body);
                    }
                    Ok(vec![notification(Value::Object(block))])
                }
                Value::Null => Err(HandlerError::new(
                    "backfill: the node does not have the block (null)",
                )),
                other => Err(HandlerError::new(format!(
                    "backfill: a block was expected, got {other}"
                ))),
            },
            SubscriptionKind::Logs(_) => match result {
                Value::Array(logs) => Ok(logs.into_iter().map(notification).collect()),
                other => Err(HandlerError::new(format!(
                    "backfill: a list of logs was expected, got {other}"
                ))),
            },
            _ => Ok(Vec::new()),
        }
    }
}

impl MessageHandler for EthereumAdapter {
    /// One look per message: a notification's server subscription id (its route) and its
    /// `result` are borrowed from the message; a `newHeads` result is parsed into a [`Header`]
    /// and a `logs` result into a [`Log`], handed to the stream with the message and its
    /// sequence position, so nothing is parsed again.
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
        let kind = self
            .subs
            .values()
            .find(|s| s.server_id.as_deref() == Some(route))
            .map(|s| &s.kind);
        match kind {
            Some(SubscriptionKind::NewHeads) => {
                match serde_json::from_str::<Header>(result.get()) {
                    Ok(head) => {
                        let position = Sequence::next(head.number);
                        MessageType::data(route, Data::new(head)).with_sequence(position)
                    }
                    Err(_) => MessageType::subscription(route),
                }
            }
            Some(SubscriptionKind::Logs(_)) => match serde_json::from_str::<Log>(result.get()) {
                Ok(log) => {
                    let position = match (log.removed, log.block_number, log.log_index) {
                        (false, Some(block), Some(index)) => {
                            Some(Sequence::monotonic(log_sequence(block, index)))
                        }
                        _ => None,
                    };
                    let typed = MessageType::data(route, Data::new(log));
                    match position {
                        Some(position) => typed.with_sequence(position),
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
        self.plan_gap(subscription, gap.into(), || ctx.next_request_id())
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
mod tests {
    use super::*;
    use crate::types::LogFilter;

    fn sub(id: &str, channel: &str) -> Subscription {
        Subscription::new(id, channel)
    }

    fn text(m: &Message) -> Value {
        m.json().unwrap_or(Value::Null)
    }

    #[test]
    fn a_heads_gap_is_backfilled_with_request_ids_from_the_context() {
        let mut a = EthereumAdapter::new();
        let mut t = nova_core::testing::TestContext::new();
        let heads = sub("sub-1", "newHeads");
        t.run(|ctx| a.subscribe(&heads, &Value::Null, RequestId::Num(1), ctx))
            .expect("a newHeads subscription");
        let gap = Gap::in_stream(Some(10), 13, None);
        let GapAction::Backfill(requests) = t.run(|ctx| a.on_gap(&heads, &gap, ctx)) else {
            panic!("not a backfill");
        };
        let fetched: Vec<(RequestId, Value)> = requests
            .iter()
            .map(|(id, m)| (id.clone(), text(m)["params"][0].clone()))
            .collect();
        assert_eq!(
            fetched,
            [
                (RequestId::Num(1), json!("0xb")),
                (RequestId::Num(2), json!("0xc"))
            ],
            "blocks 11 and 12, each with a fresh id from the context"
        );
        assert_eq!(t.last_request_id(), Some(RequestId::Num(2)));
    }

    fn ids() -> impl FnMut() -> RequestId {
        let mut n = 100;
        move || {
            n += 1;
            RequestId::Num(n)
        }
    }

    fn head(server: &str, number: u64) -> Message {
        Message::text(
            json!({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":server,
                "result":{"number":format!("{number:#x}"),"parentHash":"0x00","timestamp":"0x1"}}})
            .to_string(),
        )
    }

    #[test]
    fn routes_responses_and_notifications() {
        let mut a = EthereumAdapter::new();
        let response = Message::text(r#"{"jsonrpc":"2.0","id":4,"result":"0xab"}"#);
        assert!(matches!(
            a.message_type(&response),
            MessageType::Response {
                id: RequestId::Num(4)
            }
        ));
        // A subscription the adapter does not know yet: routed, nothing parsed.
        let unknown_sub = head("0xsub", 5);
        assert!(matches!(
            a.message_type(&unknown_sub),
            MessageType::Subscription {
                route: "0xsub",
                data: None,
                ..
            }
        ));
        for other in [
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":1}]"#,
            "not json",
        ] {
            assert!(matches!(
                a.message_type(&Message::text(other)),
                MessageType::Unknown
            ));
        }
    }

    #[test]
    fn subscribe_ack_and_unsubscribe() {
        let mut a = EthereumAdapter::new();
        let s = sub("sub-1", "logs");
        let filter = LogFilter::new().address("0xab").topic(0, "0xcd");
        let options = SubscriptionKind::logs(filter).options();
        let m = a
            .subscribe_message(&s, &options, &RequestId::Num(7))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text(&m),
            json!({"jsonrpc":"2.0","id":7,"method":"eth_subscribe",
                   "params":["logs",{"address":"0xab","topics":["0xcd"]}]})
        );
        // Not acknowledged yet: nothing to unsubscribe on the server.
        assert_eq!(a.server_id("sub-1"), None);
        let refused = Message::text(
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"invalid params"}}"#,
        );
        assert!(a.subscription_response(&s, &refused).is_err());
        let ack = Message::text(r#"{"jsonrpc":"2.0","id":7,"result":"0x9cef"}"#);
        assert_eq!(
            a.subscription_response(&s, &ack).ok().as_deref(),
            Some("0x9cef")
        );
        assert_eq!(a.server_id("sub-1"), Some("0x9cef"));
        let un = a.unsubscribe_message(&s, &RequestId::Num(8));
        assert_eq!(
            un.as_ref().map(text),
            Some(json!({"jsonrpc":"2.0","id":8,"method":"eth_unsubscribe","params":["0x9cef"]}))
        );
        assert!(a.unsubscribe_message(&s, &RequestId::Num(9)).is_none());
        assert!(
            a.subscribe_message(&sub("sub-2", "newBlocks"), &Value::Null, &RequestId::Num(1))
                .is_err()
        );
    }

    #[test]
    fn sequences_by_block_and_log_position() {
        let a = EthereumAdapter::new();
        let heads = sub("sub-1", "newHeads");
        assert_eq!(
            a.sequence_of(&heads, &head("0x1", 42)),
            Some(Sequence::next(42))
        );
        assert_eq!(a.sequence_of(&heads, &Message::text("{}")), None);
        let logs = sub("sub-2", "logs");
        let log = |block: &str, index: &str, removed: bool| {
            Message::text(
                json!({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x2",
                    "result":{"address":"0xab","topics":[],"data":"0x","blockNumber":block,
                    "logIndex":index,"removed":removed}}})
                .to_string(),
            )
        };
        assert_eq!(
            a.sequence_of(&logs, &log("0x10", "0x2", false)),
            Some(Sequence::monotonic(log_sequence(16, 2)))
        );
        assert!(log_sequence(16, LOG_INDEX_MAX + 5) < log_sequence(17, 0));
        assert_eq!(log_sequence_block(log_sequence(1 << 39, 3)), 1 << 39);
        assert_eq!(log_sequence(u64::MAX, u64::MAX), u64::MAX);
        assert!(log_sequence(u64::MAX, 0) > log_sequence(1 << 39, 0));
        assert_eq!(a.sequence_of(&logs, &log("0x10", "0x2", true)), None);
        assert_eq!(a.sequence_of(&logs, &log("0xzz", "0x2", false)), None);
        assert_eq!(
            a.sequence_of(&sub("s", "newPendingTransactions"), &head("0x", 1)),
            None
        );
    }

    fn gap(last: Option<u64>, got: Option<u64>, after_reconnect: bool) -> GapView {
        GapView {
            last,
            got,
            after_reconnect,
        }
    }

    #[test]
    fn head_gaps_fetch_each_missing_block_up_to_the_cap() {
        let mut a = EthereumAdapter::new().max_backfill_blocks(3);
        let s = sub("sub-1", "newHeads");
        let _ = a.subscribe_message(&s, &Value::Null, &RequestId::Num(1));
        assert_eq!(
            a.plan_gap(&s, gap(Some(10), None, true), ids()),
            GapAction::Ignore
        );
        assert_eq!(
            a.plan_gap(&s, gap(None, Some(12), false), ids()),
            GapAction::Ignore
        );
        let GapAction::Backfill(requests) = a.plan_gap(&s, gap(Some(10), Some(13), false), ids())
        else {
            panic!("no backfill")
        };
        let params: Vec<Value> = requests
            .iter()
            .map(|(_, m)| text(m)["params"].clone())
            .collect();
        assert_eq!(params, vec![json!(["0xb", false]), json!(["0xc", false])]);
        assert_eq!(requests[0].0, RequestId::Num(101));
        assert_eq!(text(&requests[1].1)["id"], json!(102));
        let GapAction::Backfill(capped) = a.plan_gap(&s, gap(Some(10), Some(100), false), ids())
        else {
            panic!("no backfill")
        };
        assert_eq!(capped.len(), 3);
    }

    #[test]
    fn log_gaps_after_a_reconnect_fetch_from_the_last_block() {
        let mut a = EthereumAdapter::new();
        let s = sub("sub-1", "logs");
        let options = SubscriptionKind::logs(LogFilter::new().address("0xab")).options();
        let _ = a.subscribe_message(&s, &options, &RequestId::Num(1));
        let last = log_sequence(0x20, 1);
        let GapAction::Backfill(requests) = a.plan_gap(&s, gap(Some(last), None, true), ids())
        else {
            panic!("no backfill")
        };
        assert_eq!(
            text(&requests[0].1)["params"],
            json!([{"address":"0xab","fromBlock":"0x20","toBlock":"latest"}])
        );
        assert_eq!(
            a.plan_gap(&s, gap(None, None, true), ids()),
            GapAction::Ignore
        );
    }

    #[test]
    fn backfill_responses_become_notifications_of_the_current_id() {
        let mut a = EthereumAdapter::new();
        let heads = sub("sub-1", "newHeads");
        let _ = a.subscribe_message(&heads, &Value::Null, &RequestId::Num(1));
        let _ = a.subscription_response(
            &heads,
            &Message::text(r#"{"jsonrpc":"2.0","id":1,"result":"0xnew"}"#),
        );
        let block = Message::text(
            r#"{"jsonrpc":"2.0","id":101,"result":{"number":"0xb","hash":"0xh","parentHash":"0xp","timestamp":"0x1","transactions":["0x1"],"uncles":[]}}"#,
        );
        let out = a.backfill_messages(&heads, &block).unwrap_or_default();
        assert_eq!(out.len(), 1);
        let v = text(&out[0]);
        assert_eq!(v["params"]["subscription"], "0xnew");
        assert_eq!(v["params"]["result"]["number"], "0xb");
        assert!(v["params"]["result"].get("transactions").is_none());
        assert_eq!(a.sequence_of(&heads, &out[0]), Some(Sequence::next(11)));
        for bad in [
            r#"{"jsonrpc":"2.0","id":101,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":101,"error":{"code":-32000,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":101,"result":[]}"#,
            "garbage",
        ] {
            assert!(
                a.backfill_messages(&heads, &Message::text(bad)).is_err(),
                "{bad}"
            );
        }

        let logs = sub("sub-2", "logs");
        let _ = a.subscribe_message(&logs, &Value::Null, &RequestId::Num(2));
        let fetched = Message::text(
            r#"{"jsonrpc":"2.0","id":102,"result":[{"address":"0xab","topics":[],"data":"0x","blockNumber":"0x5","logIndex":"0x0"},{"address":"0xab","topics":[],"data":"0x","blockNumber":"0x6","logIndex":"0x0"}]}"#,
        );
        let out = a.backfill_messages(&logs, &fetched).unwrap_or_default();
        assert_eq!(out.len(), 2);
        assert_eq!(
            a.sequence_of(&logs, &out[1]),
            Some(Sequence::monotonic(log_sequence(6, 0)))
        );
    }

    #[test]
    fn limit_exceeded_is_a_rate_limit_answer() {
        let a = EthereumAdapter::new();
        assert!(a.is_rate_limit_response(&Message::text(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"limit exceeded"}}"#
        )));
        assert!(!a.is_rate_limit_response(&Message::text(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}"#
        )));
    }
}
