//! The must-show guarantees against a real node (anvil, a block a second), restarted under the
//! client with its chain kept:
//!
//! - `newHeads`: with the node restarted twice, every block number arrives exactly once, in
//!   order, none missing — and each is the node's block (same hash).
//! - `logs` of a contract that emits an event in every block: none missed, none repeated across
//!   restarts — the same list, in the same order, as `eth_getLogs` over the whole range.
//!
//! The reconnect delay (4 s, constant) is longer than the block time, so blocks are always mined
//! between the node coming back and the subscription being restored: the backfill path is
//! exercised on every restart (several blocks per gap), and the tests check that it was. The
//! second outage outlasts a reconnect attempt, which fails before the next one succeeds.
//!
//! Needs anvil (`bash scripts/install-anvil.sh`); fails with that instruction when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nova_core::SubscriptionEvent;
use nova_ethereum::{EthClient, LogFilter, SubscriptionKind};
use nova_testkit::{Anvil, TICK_TOPIC};
use serde_json::json;

mod common;
use common::{Seen, collect, config, gather, heads, logs};

fn statuses(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Status(SubscriptionEvent::Restored) => Some("restored".to_owned()),
            Seen::Status(SubscriptionEvent::Gap { action, .. }) => Some(format!("gap:{action}")),
            Seen::Status(SubscriptionEvent::GapClosed { .. }) => Some("gap-closed".to_owned()),
            Seen::Status(other) => Some(format!("{other:?}")),
            Seen::Event(_) => None,
        })
        .collect()
}

fn count(statuses: &[String], what: &str) -> usize {
    statuses.iter().filter(|s| *s == what).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_heads_arrive_exactly_once_in_order_across_two_node_restarts() {
    let mut node = Anvil::spawn().await.expect("start anvil");
    let (eth, _messages) = EthClient::connect(config(&node, "eth-restart-test"));
    let sub = eth.subscribe(SubscriptionKind::NewHeads).await.unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();

    gather(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        heads(s).len() >= 3
    })
    .await;
    for round in 1..=2 {
        // The second time the node stays down past the first reconnect attempt, so more
        // blocks are mined before the subscription is back.
        let down = if round == 1 { 500 } else { 5_000 };
        node.restart_after(Duration::from_millis(down))
            .await
            .unwrap();
        // Wait until the subscription is back and a few live heads followed.
        gather(&mut rx, &mut seen, Duration::from_secs(40), |s| {
            count(&statuses(s), "restored") >= round && count(&statuses(s), "gap-closed") >= round
        })
        .await;
        let at = heads(&seen).len();
        gather(&mut rx, &mut seen, Duration::from_secs(20), |s| {
            heads(s).len() >= at + 2
        })
        .await;
    }
    let tip = node.block_number().await.unwrap();
    gather(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        heads(s).last().is_some_and(|h| h.number >= tip)
    })
    .await;

    let numbers: Vec<u64> = heads(&seen).iter().map(|h| h.number).collect();
    let first = numbers[0];
    let expected: Vec<u64> = (first..first + numbers.len() as u64).collect();
    assert_eq!(
        numbers,
        expected,
        "heads not contiguous / repeated; statuses {:?}",
        statuses(&seen)
    );
    assert!(numbers.last().unwrap() >= &tip);
    // Each head is the node's block of that number.
    for head in heads(&seen) {
        let block = node
            .rpc(
                "eth_getBlockByNumber",
                json!([format!("{:#x}", head.number), false]),
            )
            .await
            .unwrap();
        assert_eq!(
            Some(block["hash"].as_str().unwrap()),
            head.hash.as_deref(),
            "block {}",
            head.number
        );
    }
    let st = statuses(&seen);
    eprintln!(
        "heads {}..={} ({} in all), statuses {st:?}",
        numbers[0],
        numbers[numbers.len() - 1],
        numbers.len()
    );
    assert_eq!(node.starts(), 3);
    assert!(count(&st, "restored") >= 2, "{st:?}");
    // The restarts left blocks to fetch, and the backfill closed every gap.
    assert!(count(&st, "gap:backfill") >= 2, "{st:?}");
    assert_eq!(
        count(&st, "gap:backfill"),
        count(&st, "gap-closed"),
        "{st:?}"
    );
    // Heads fetched by the backfills: the gaps' sizes (the second outage lasts longer).
    let fetched: u64 = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Status(SubscriptionEvent::Gap { gap, .. }) => Some(gap.got? - gap.last? - 1),
            _ => None,
        })
        .sum();
    eprintln!("heads fetched by backfill: {fetched}");
    assert!(fetched >= 3, "{st:?}");
    eth.client().close(1000, "done").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_an_every_block_contract_are_neither_missed_nor_repeated_across_restarts() {
    let mut node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    let ticker = node.spawn_ticker(&contract);
    let (eth, _messages) = EthClient::connect(config(&node, "eth-restart-test"));
    let filter = LogFilter::new()
        .address(contract.clone())
        .topic(0, TICK_TOPIC);
    let sub = eth
        .subscribe(SubscriptionKind::logs(filter.clone()))
        .await
        .unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();

    gather(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        logs(s).len() >= 3
    })
    .await;
    for round in 1..=2 {
        // The second time the node stays down past the first reconnect attempt, so more
        // blocks are mined before the subscription is back.
        let down = if round == 1 { 500 } else { 5_000 };
        node.restart_after(Duration::from_millis(down))
            .await
            .unwrap();
        gather(&mut rx, &mut seen, Duration::from_secs(40), |s| {
            count(&statuses(s), "restored") >= round && count(&statuses(s), "gap-closed") >= round
        })
        .await;
        let at = logs(&seen).len();
        gather(&mut rx, &mut seen, Duration::from_secs(20), |s| {
            logs(s).len() >= at + 2
        })
        .await;
    }
    drop(ticker);
    // Let the last transaction be mined, then wait for its log.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let tip = node.block_number().await.unwrap();
    let truth = eth
        .logs(filter.clone().blocks(0, tip))
        .await
        .expect("eth_getLogs through nova");
    let last_truth = truth.last().unwrap().position();
    gather(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        logs(s).last().and_then(|l| l.position()) >= last_truth
    })
    .await;

    let got: Vec<(u64, u64, Option<String>)> = logs(&seen)
        .iter()
        .map(|l| {
            let (b, i) = l.position().unwrap();
            (b, i, l.transaction_hash.clone())
        })
        .collect();
    let first = got[0].0;
    let want: Vec<(u64, u64, Option<String>)> = truth
        .iter()
        .filter(|l| l.block_number >= Some(first))
        .map(|l| {
            let (b, i) = l.position().unwrap();
            (b, i, l.transaction_hash.clone())
        })
        .collect();
    let st = statuses(&seen);
    eprintln!(
        "logs {:?}..={:?} ({} in all), statuses {st:?}",
        got.first().map(|g| (g.0, g.1)),
        got.last().map(|g| (g.0, g.1)),
        got.len()
    );
    assert_eq!(got, want, "statuses {st:?}");
    // The restarts happened in the middle of the run, with logs on both sides of each.
    assert_eq!(node.starts(), 3);
    // Each restore fetched the logs mined meanwhile, and each backfill closed its gap.
    assert!(count(&st, "restored") >= 2, "{st:?}");
    assert_eq!(count(&st, "gap:backfill"), count(&st, "restored"), "{st:?}");
    assert_eq!(count(&st, "gap-closed"), count(&st, "restored"), "{st:?}");
    // Every log's data is the number of the block it was emitted in.
    for log in logs(&seen) {
        let data = log.data.trim_start_matches("0x");
        assert_eq!(
            u64::from_str_radix(&data[48..], 16).ok(),
            log.block_number,
            "{log:?}"
        );
    }
    eth.client().close(1000, "done").await.ok();
}
