//! Property tests of everything that reads what an Ethereum node sends: hex quantities (against
//! a reference model), the envelope ([`Peek`], [`Incoming`]), every method's typed result
//! ([`decode_response`]), notification payloads ([`EthEvent`]) and the adapter's callbacks run
//! through `nova_core::testing::TestContext` (routing, sequencing, subscribe acks, backfill
//! responses, rate-limit recognition).
//!
//! Inputs: arbitrary strings and bytes, arbitrary JSON with JSON-RPC's and the result types'
//! field names, and valid node messages mutated (fields dropped, types swapped, numbers at the
//! limits, hex strings of every length, huge strings; see `nova_testkit::hostile`). Property: no
//! panic, a typed error, and the adapter's state unchanged by classifying a message.
//!
//! Cases per property: 2,000 by default; `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use nova_core::testing::TestContext;
use nova_core::{
    Gap, GapAction, Message, MessageHandler, MessageType, RateLimitHandler, RequestId,
    Subscription, SubscriptionHandler,
};
use nova_ethereum::methods::{
    BlockNumber, ChainId, GasPrice, GetBlockByNumber, GetLogs, Subscribe, Syncing, Unsubscribe,
    decode_response,
};
use nova_ethereum::{
    BlockId, EthEvent, EthereumAdapter, Incoming, LogFilter, Peek, Quantity, SubscriptionKind,
    parse_quantity, parse_quantity_u128, to_quantity,
};
use nova_testkit::hostile::arbitrary_json;
use nova_testkit::hostile::strategy::{config, messages};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The field names the node messages' parsers look at.
const KEYS: &[&str] = &[
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "code",
    "message",
    "data",
    "subscription",
    "eth_subscription",
    "number",
    "hash",
    "parentHash",
    "timestamp",
    "gasLimit",
    "gasUsed",
    "baseFeePerGas",
    "miner",
    "difficulty",
    "transactions",
    "uncles",
    "size",
    "address",
    "topics",
    "blockNumber",
    "blockHash",
    "transactionHash",
    "transactionIndex",
    "logIndex",
    "removed",
    "from",
    "to",
    "nonce",
    "value",
    "input",
    "syncing",
    "status",
    "startingBlock",
];

const HEAD: &str = r#"{"number":"0x1348c9","hash":"0x61cd","parentHash":"0x7736","timestamp":"0x56ffeff8","gasLimit":"0x47e7c4","gasUsed":"0x38658","baseFeePerGas":"0x7","miner":"0xf8b4","difficulty":"0x15d9223a23aa","stateRoot":"0xb334","transactionsRoot":"0x0167","receiptsRoot":"0x2fab","extraData":"0xd983"}"#;
const LOG: &str = r#"{"address":"0x8320fe7702b96808f7bbc0d4a888ed1468216cfd","blockHash":"0x61cd","blockNumber":"0x29e87","data":"0x0001","logIndex":"0x0","topics":["0xd78a"],"transactionHash":"0xe044","transactionIndex":"0x0","removed":false}"#;
const TX: &str = r#"{"hash":"0xd6fd","from":"0xa1","to":null,"nonce":"0x1","value":"0xde0b6b3a7640000","input":"0x","blockNumber":null,"blockHash":null,"transactionIndex":null}"#;

/// Valid messages of every kind a node sends (subscription ids `0xaa` for heads, `0xbb` for
/// logs, as the adapter below is told).
fn valid() -> Vec<Value> {
    let head: Value = serde_json::from_str(HEAD).unwrap();
    let log: Value = serde_json::from_str(LOG).unwrap();
    let tx: Value = serde_json::from_str(TX).unwrap();
    let mut block = head.clone();
    block["transactions"] = json!(["0x01", "0x02"]);
    block["uncles"] = json!([]);
    block["size"] = json!("0x220");
    let note = |id: &str, result: &Value| json!({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":id,"result":result}});
    vec![
        note("0xaa", &head),
        note("0xbb", &log),
        note(
            "0xcc",
            &json!("0xd6fdc5cc41a9959e922f30cb772a9aef46f4daea279307bc5f7024edc4ccd7fa"),
        ),
        note("0xcc", &tx),
        note(
            "0xdd",
            &json!({"syncing":true,"status":{"startingBlock":674427,"currentBlock":67400,"highestBlock":674432}}),
        ),
        json!({"jsonrpc":"2.0","id":1,"result":"0xcd0c3e8af590364c09d0fa6a1210faf5"}),
        json!({"jsonrpc":"2.0","id":2,"result":"0x10"}),
        json!({"jsonrpc":"2.0","id":3,"result":block}),
        json!({"jsonrpc":"2.0","id":4,"result":[log]}),
        json!({"jsonrpc":"2.0","id":5,"result":false}),
        json!({"jsonrpc":"2.0","id":6,"result":true}),
        json!({"jsonrpc":"2.0","id":7,"error":{"code":-32005,"message":"limit exceeded","data":"0x08c379a0"}}),
        json!([{"jsonrpc":"2.0","id":8,"result":"0x1"},{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"nope"}}]),
    ]
}

/// A hostile message (`nova_testkit::hostile::strategy::messages`) from the valid ones above.
fn hostile() -> impl Strategy<Value = Message> {
    let valid: Vec<String> = valid().iter().map(Value::to_string).collect();
    messages(&valid, KEYS)
}

/// What a hex quantity is worth, computed digit by digit (`None` when it is not one, or does
/// not fit 128 bits).
fn reference(text: &str) -> Option<u128> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() {
        return None;
    }
    digits.chars().try_fold(0u128, |acc, c| {
        let d = c.to_digit(16)?;
        acc.checked_mul(16)?.checked_add(u128::from(d))
    })
}

/// Strings that look like quantities, and anything else.
fn quantity_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "0[xX][0-9a-fA-F]{0,40}",
        "0[xX]0{0,40}[0-9a-f]{0,20}",
        "(0x|0X|x|-0x|0x-|\\+0x| 0x)?[0-9a-fA-FgG_ .\u{0660}-\u{0669}]{0,40}",
        any::<String>(),
        any::<u64>().prop_map(to_quantity),
        any::<u128>().prop_map(|n| format!("{n:#x}")),
    ]
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Quantities parse to exactly what they are worth, are refused with a typed error otherwise,
    /// and round-trip through `to_quantity`.
    #[test]
    fn quantities_match_the_model(text in quantity_text(), n in any::<u64>()) {
        let model = reference(&text);
        match parse_quantity(&text) {
            Ok(v) => prop_assert_eq!(Some(u128::from(v)), model),
            Err(e) => {
                prop_assert!(model.is_none_or(|m| m > u128::from(u64::MAX)), "{text:?} refused: {e}");
                prop_assert!(e.text.chars().count() <= 80);
            }
        }
        match parse_quantity_u128(&text) {
            Ok(v) => prop_assert_eq!(Some(v), model),
            Err(e) => prop_assert!(model.is_none(), "{text:?} refused: {e}"),
        }
        prop_assert_eq!(parse_quantity(&to_quantity(n)), Ok(n));
        let json = Value::String(text.clone());
        let q = serde_json::from_value::<Quantity>(json.clone());
        prop_assert_eq!(q.ok().map(|q| u128::from(q.0)), model.filter(|m| *m <= u128::from(u64::MAX)));
        let _ = serde_json::from_value::<BlockId>(json);
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Quantities from any JSON value: a number or a string, else a typed error.
    #[test]
    fn quantities_from_any_json(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let value = arbitrary_json(&bytes, KEYS);
        match serde_json::from_value::<Quantity>(value.clone()) {
            Ok(q) => prop_assert!(value.as_u64() == Some(q.0) || value.is_string()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = serde_json::from_value::<BlockId>(value);
    }

    /// Every decoder answers hostile input with a value or a typed error, never a panic.
    #[test]
    fn decoders_never_panic(message in hostile()) {
        let bytes = message.as_bytes();
        let _ = Peek::of(bytes);
        match Incoming::parse(bytes) {
            Ok(Incoming::Notification(n)) => {
                for kind in [
                    SubscriptionKind::NewHeads,
                    SubscriptionKind::logs(LogFilter::new()),
                    SubscriptionKind::NewPendingTransactions { full: false },
                    SubscriptionKind::Syncing,
                ] {
                    if let Err(e) = EthEvent::decode(&kind, &n.result) {
                        prop_assert!(!e.to_string().is_empty());
                    }
                    let _ = EthEvent::from_message(&kind, &message);
                }
            }
            Ok(Incoming::Response(r)) => {
                let _ = r.into_result();
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let typed_error = |r: Result<(), nova_ethereum::EthError>| r.err().is_none_or(|e| !e.to_string().is_empty());
        prop_assert!(typed_error(decode_response::<BlockNumber>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<ChainId>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<GetBlockByNumber>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<GetLogs>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<Syncing>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<GasPrice>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<Subscribe>(&message).map(drop)));
        prop_assert!(typed_error(decode_response::<Unsubscribe>(&message).map(drop)));
    }

    /// The adapter's callbacks take hostile input without panicking, and classifying a message
    /// changes nothing in the adapter unless it is a head or log it routes (its reorg trackers
    /// record those).
    #[test]
    fn adapter_callbacks_never_panic(message in hostile()) {
        let mut adapter = EthereumAdapter::new();
        let mut t = TestContext::new();
        let heads = Subscription::new("s-heads", "newHeads");
        let logs = Subscription::new("s-logs", "logs");
        for (sub, options, server_id) in [(&heads, json!(null), "0xaa"), (&logs, json!({}), "0xbb")] {
            let request = t.run(|ctx| adapter.subscribe(sub, &options, RequestId::Num(1), ctx));
            prop_assert!(request.is_ok());
            let ack = Message::text(format!(r#"{{"jsonrpc":"2.0","id":1,"result":"{server_id}"}}"#));
            let routed = t.run(|ctx| adapter.handle_subscription_response(sub, &ack, ctx));
            prop_assert_eq!(routed.ok().flatten(), Some(server_id.to_owned()));
        }
        let before = format!("{adapter:?}");

        // A head or log the adapter routes is recorded by its reorg trackers; anything else
        // leaves it as it was.
        let routed = matches!(adapter.message_type(&message), MessageType::Subscription { .. });
        if !routed {
            prop_assert_eq!(&format!("{adapter:?}"), &before, "message_type changed the adapter");
        }
        for sub in [&heads, &logs] {
            let _ = adapter.sequence(sub, &message);
            let before = format!("{adapter:?}");
            match t.run(|ctx| adapter.handle_backfill_response(sub, &message, ctx)) {
                Ok(notes) => {
                    for note in notes {
                        prop_assert!(serde_json::from_slice::<Value>(note.as_bytes()).is_ok());
                    }
                }
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    prop_assert_eq!(&format!("{adapter:?}"), &before, "a refused backfill response changed the adapter");
                }
            }
        }
        let _ = adapter.is_rate_limit_response(&message);

        // A subscribe answered with hostile input: an id, or a typed refusal.
        let fresh = Subscription::new("s-new", "newHeads");
        let _ = t.run(|ctx| adapter.subscribe(&fresh, &json!(null), RequestId::Num(2), ctx));
        match t.run(|ctx| adapter.handle_subscription_response(&fresh, &message, ctx)) {
            Ok(route) => prop_assert!(route.is_some()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Gaps are planned from sequence values read off the network (block numbers, log
    /// positions): any values, including the limits, give a bounded plan.
    #[test]
    fn gaps_at_any_values_give_a_bounded_plan(
        last in prop_oneof![Just(None), any::<u64>().prop_map(Some), Just(Some(u64::MAX))],
        got in prop_oneof![any::<u64>(), Just(u64::MAX), Just(0u64)],
        claimed in any::<Option<u64>>(),
    ) {
        let mut adapter = EthereumAdapter::new().max_backfill_blocks(50);
        let mut t = TestContext::new();
        let heads = Subscription::new("s-heads", "newHeads");
        let logs = Subscription::new("s-logs", "logs");
        for sub in [&heads, &logs] {
            let _ = t.run(|ctx| adapter.subscribe(sub, &json!({}), RequestId::Num(1), ctx));
            for gap in [Gap::in_stream(last, got, claimed), Gap::after_reconnect(last)] {
                if let GapAction::Backfill(requests) = t.run(|ctx| adapter.on_gap(sub, &gap, ctx)) {
                    prop_assert!(!requests.is_empty() && requests.len() <= 50);
                }
            }
        }
    }
}
