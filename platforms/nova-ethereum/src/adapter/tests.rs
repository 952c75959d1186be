//! Unit tests of the adapter: routing, acks, sequences, gap plans, backfills and reorgs, run
//! through `nova_core::testing::TestContext` without a socket.

use super::*;
use crate::subscription::EthEvent;
use crate::types::LogFilter;

fn sub(id: &str, channel: &str) -> Subscription {
    Subscription::new(id, channel)
}

fn text(m: &Message) -> Value {
    m.json().unwrap_or(Value::Null)
}

/// An adapter with an acknowledged `newHeads` subscription (server id `0xh`) that
/// delivered heads `1..=tip` (hashes `0x01`, `0x02`, …).
fn heads_adapter(tip: u64) -> (EthereumAdapter, Subscription) {
    let mut a = EthereumAdapter::new().max_reorg_depth(2);
    let heads = sub("sub-1", "newHeads");
    let _ = a.subscribe_message(&heads, &Value::Null, &RequestId::Num(1));
    let _ = a.subscription_response(
        &heads,
        &Message::text(r#"{"jsonrpc":"2.0","id":1,"result":"0xh"}"#),
    );
    for n in 1..=tip {
        let m = hashed_head("0xh", n, "");
        let MessageType::Subscription { sequence, .. } = a.message_type(&m) else {
            panic!("not routed")
        };
        assert_eq!(sequence, Some(Sequence::next(n)));
    }
    (a, heads)
}

/// A head notification with hash `0x<fork><number>` and parent `0x<fork'><number - 1>`
/// (forks start at height 10).
fn hashed_head(server: &str, number: u64, fork: &str) -> Message {
    let parent_fork = if number > 10 { fork } else { "" };
    Message::text(
        json!({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":server,
            "result":{"number":format!("{number:#x}"),"hash":format!("0x{fork}{number:02}"),
            "parentHash":format!("0x{parent_fork}{:02}", number - 1),"timestamp":"0x1"}}})
        .to_string(),
    )
}

fn block_answer(id: u64, number: u64, fork: &str) -> Message {
    let parent_fork = if number > 10 { fork } else { "" };
    Message::text(
        json!({"jsonrpc":"2.0","id":id,"result":{"number":format!("{number:#x}"),
            "hash":format!("0x{fork}{number:02}"),"parentHash":format!("0x{parent_fork}{:02}", number - 1),
            "timestamp":"0x1","transactions":["0x1"],"uncles":[]}})
        .to_string(),
    )
}

#[test]
fn a_heads_gap_is_backfilled_with_request_ids_from_the_context() {
    let (mut a, heads) = heads_adapter(10);
    let mut t = nova_core::testing::TestContext::new();
    // After a reconnect, head 13 shows that 11 and 12 were missed.
    let MessageType::Subscription { sequence, .. } = a.message_type(&hashed_head("0xh", 13, ""))
    else {
        panic!()
    };
    assert_eq!(sequence, Some(Sequence::next(13)));
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
            (RequestId::Num(1), json!("0x9")),
            (RequestId::Num(2), json!("0xa")),
            (RequestId::Num(3), json!("0xb")),
            (RequestId::Num(4), json!("0xc")),
            (RequestId::Num(5), json!("0xd")),
        ],
        "2 heights below the last head (to see a reorg), then 11..=13, each with a fresh id"
    );
    assert_eq!(t.last_request_id(), Some(RequestId::Num(5)));
    // The answers, in any order; the last one completes the backfill.
    let mut out = Vec::new();
    for (id, number) in [(3, 11), (1, 9), (5, 13), (2, 10), (4, 12)] {
        let got =
            t.run(|ctx| a.handle_backfill_response(&heads, &block_answer(id, number, ""), ctx));
        out = got.unwrap_or_else(|e| panic!("{e}"));
    }
    let numbers: Vec<Value> = out
        .iter()
        .map(|m| text(m)["params"]["result"]["number"].clone())
        .collect();
    assert_eq!(numbers, [json!("0xb"), json!("0xc"), json!("0xd")]);
    assert!(
        out.iter()
            .all(|m| text(m)["params"]["subscription"] == "0xh"
                && text(m)["params"]["result"].get("transactions").is_none())
    );
    assert_eq!(a.sequence_of(&heads, &out[2]), Some(Sequence::next(13)));
}

#[test]
fn a_fork_is_told_as_a_reorg_then_the_new_heads() {
    let (mut a, heads) = heads_adapter(11);
    let mut t = nova_core::testing::TestContext::new();
    // 10' and 11' (fork "f") replace 10 and 11; 10' arrives first.
    let MessageType::Subscription { sequence, .. } = a.message_type(&hashed_head("0xh", 10, "f"))
    else {
        panic!()
    };
    let got = sequence.map(|s| s.value).unwrap_or_default();
    assert_eq!(got, crate::head_sequence(1, 10));
    let GapAction::Backfill(requests) =
        t.run(|ctx| a.on_gap(&heads, &Gap::in_stream(Some(11), got, None), ctx))
    else {
        panic!("not a backfill")
    };
    assert_eq!(requests.len(), 2, "10 and 11");
    // 11' arrives live meanwhile: no sequence yet.
    let MessageType::Subscription { sequence, .. } = a.message_type(&hashed_head("0xh", 11, "f"))
    else {
        panic!()
    };
    assert_eq!(sequence, None);
    let mut out = Vec::new();
    for ((id, _), number) in requests.iter().zip([10, 11]) {
        let RequestId::Num(id) = id else { panic!() };
        out = t
            .run(|ctx| a.handle_backfill_response(&heads, &block_answer(*id, number, "f"), ctx))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(out.len(), 3, "the reorg, 10' and 11'");
    let reorg = text(&out[0]);
    assert_eq!(reorg["method"], crate::REORG_METHOD);
    assert_eq!(reorg["params"]["result"]["depth"], 2);
    assert_eq!(reorg["params"]["result"]["commonAncestor"]["hash"], "0x09");
    assert_eq!(reorg["params"]["result"]["old"][1]["hash"], "0x11");
    assert_eq!(reorg["params"]["result"]["new"][1]["hash"], "0xf11");
    let values: Vec<Option<u64>> = out
        .iter()
        .map(|m| a.sequence_of(&heads, m).map(|s| s.value))
        .collect();
    assert_eq!(
        values,
        [9, 10, 11].map(|n| Some(crate::head_sequence(1, n))),
        "the reorg sorts first"
    );
    let typed = EthEvent::from_message(&SubscriptionKind::NewHeads, &out[0]);
    assert!(
        matches!(&typed, Ok(EthEvent::Reorg(r)) if r.depth == 2),
        "{typed:?}"
    );
    // The held 11' is a duplicate now; 12' follows.
    assert_eq!(
        a.sequence_of(&heads, &hashed_head("0xh", 11, "f")),
        Some(Sequence::next(crate::head_sequence(1, 11)))
    );
    let MessageType::Subscription { sequence, .. } = a.message_type(&hashed_head("0xh", 12, "f"))
    else {
        panic!()
    };
    assert_eq!(sequence, Some(Sequence::next(crate::head_sequence(1, 12))));
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
    let mut a = EthereumAdapter::new()
        .max_backfill_blocks(3)
        .max_reorg_depth(1);
    let s = sub("sub-1", "newHeads");
    let _ = a.subscribe_message(&s, &Value::Null, &RequestId::Num(1));
    let _ = a.subscription_response(
        &s,
        &Message::text(r#"{"jsonrpc":"2.0","id":1,"result":"0xh"}"#),
    );
    for n in 1..=10 {
        let _ = a.message_type(&hashed_head("0xh", n, ""));
    }
    assert_eq!(
        a.plan_gap(&s, gap(Some(10), None, true), 100, ids()),
        GapAction::Ignore
    );
    let _ = a.message_type(&hashed_head("0xh", 100, ""));
    let GapAction::Backfill(requests) = a.plan_gap(&s, gap(Some(10), Some(100), false), 100, ids())
    else {
        panic!("no backfill")
    };
    let params: Vec<Value> = requests
        .iter()
        .map(|(_, m)| text(m)["params"].clone())
        .collect();
    // The last delivered height again (depth 1), then 3 new ones.
    assert_eq!(
        params,
        vec![
            json!(["0xa", false]),
            json!(["0xb", false]),
            json!(["0xc", false]),
            json!(["0xd", false])
        ]
    );
    assert_eq!(requests[0].0, RequestId::Num(101));
    assert_eq!(text(&requests[1].1)["id"], json!(102));
}

#[test]
fn log_gaps_after_a_reconnect_fetch_from_the_last_block() {
    let mut a = EthereumAdapter::new();
    let s = sub("sub-1", "logs");
    let options = SubscriptionKind::logs(LogFilter::new().address("0xab")).options();
    let _ = a.subscribe_message(&s, &options, &RequestId::Num(1));
    let last = log_sequence(0x20, 1);
    let GapAction::Backfill(requests) = a.plan_gap(&s, gap(Some(last), None, true), 100, ids())
    else {
        panic!("no backfill")
    };
    assert_eq!(
        text(&requests[0].1)["params"],
        json!([{"address":"0xab","fromBlock":"0x20","toBlock":"latest"}])
    );
    assert_eq!(
        a.plan_gap(&s, gap(None, None, true), 100, ids()),
        GapAction::Ignore
    );
}

#[test]
fn log_backfills_become_notifications_of_the_current_id() {
    let mut a = EthereumAdapter::new();
    let logs = sub("sub-2", "logs");
    let _ = a.subscribe_message(&logs, &Value::Null, &RequestId::Num(2));
    let _ = a.subscription_response(
        &logs,
        &Message::text(r#"{"jsonrpc":"2.0","id":2,"result":"0xnew"}"#),
    );
    // Not an answer to a backfill under way: nothing.
    let stray = Message::text(r#"{"jsonrpc":"2.0","id":101,"result":[]}"#);
    assert_eq!(a.backfill_messages(&logs, &stray).ok(), Some(Vec::new()));
    let GapAction::Backfill(requests) =
        a.plan_gap(&logs, gap(Some(log_sequence(4, 0)), None, true), 100, ids())
    else {
        panic!("no backfill")
    };
    assert_eq!(requests[0].0, RequestId::Num(101));
    let fetched = Message::text(
        r#"{"jsonrpc":"2.0","id":101,"result":[{"address":"0xab","topics":[],"data":"0x","blockNumber":"0x5","logIndex":"0x0","blockHash":"0xb5"},{"address":"0xab","topics":[],"data":"0x","blockNumber":"0x6","logIndex":"0x0","blockHash":"0xb6"}]}"#,
    );
    let out = a.backfill_messages(&logs, &fetched).unwrap_or_default();
    assert_eq!(out.len(), 2);
    assert_eq!(text(&out[1])["params"]["subscription"], "0xnew");
    assert_eq!(
        a.sequence_of(&logs, &out[1]),
        Some(Sequence::monotonic(log_sequence(6, 0)))
    );
    // A failed backfill is an error (the gap is reported as not closed).
    let _ = a.plan_gap(&logs, gap(Some(log_sequence(6, 0)), None, true), 100, ids());
    for bad in [
        r#"{"jsonrpc":"2.0","id":101,"error":{"code":-32000,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":101,"result":{}}"#,
    ] {
        let _ = a.plan_gap(&logs, gap(Some(log_sequence(6, 0)), None, true), 100, ids());
        assert!(
            a.backfill_messages(&logs, &Message::text(bad)).is_err(),
            "{bad}"
        );
    }
    assert!(
        a.backfill_messages(&logs, &Message::text("garbage"))
            .is_err()
    );
}

#[test]
fn a_replacing_log_carries_the_removed_ones() {
    let mut a = EthereumAdapter::new();
    let logs = sub("sub-2", "logs");
    let _ = a.subscribe_message(&logs, &Value::Null, &RequestId::Num(2));
    let _ = a.subscription_response(
        &logs,
        &Message::text(r#"{"jsonrpc":"2.0","id":2,"result":"0xl"}"#),
    );
    let log = |block: u64, hash: &str| {
        Message::text(
            json!({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xl",
                "result":{"address":"0xab","topics":[],"data":"0x","blockNumber":format!("{block:#x}"),
                "logIndex":"0x0","blockHash":hash}}})
            .to_string(),
        )
    };
    for (block, hash) in [(5, "0xb5"), (6, "0xb6")] {
        let MessageType::Subscription { sequence, .. } = a.message_type(&log(block, hash)) else {
            panic!()
        };
        assert_eq!(sequence, Some(Sequence::monotonic(log_sequence(block, 0))));
    }
    let m = log(6, "0xc6");
    let MessageType::Subscription { sequence, data, .. } = a.message_type(&m) else {
        panic!()
    };
    assert_eq!(sequence, Some(Sequence::snapshot(log_sequence(6, 0))));
    let reorg = data.as_ref().and_then(|d| d.get::<LogReorg>());
    assert_eq!(
        reorg.map(|r| (r.removed.len(), r.removed[0].removed, r.logs.len())),
        Some((1, true, 1))
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
