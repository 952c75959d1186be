//! Reorgs against a real node (anvil), the chain reorganised under the client:
//!
//! - `anvil_reorg` of depth 1 and 3 on `newHeads`: the application gets a `Reorg` whose depth,
//!   common ancestor, old hashes (what it had) and new hashes (`eth_getBlockByNumber` after the
//!   reorg; a prefix of them when the adapter fetched while anvil was still mining the new
//!   blocks, which it does one by one) are right, then the new chain's heads in order — every head's parent is the head
//!   before it (or, right after the reorg, the common ancestor), none repeated, none skipped.
//! - `evm_snapshot` / `evm_revert` and one block mined: a reorg onto a shorter chain.
//! - A reorg while the client is disconnected (the node restarted, then reorganised before the
//!   client is back): the backfill finds it by comparing the heads by number with those
//!   delivered.
//! - `logs` of a contract that emits an event in every block, three of them replaced by
//!   `anvil_reorg`: the delivered logs come again flagged `removed: true` (anvil does not send
//!   them; the adapter does), then the new chain's logs, as `eth_getLogs` has them after the
//!   reorg, then the next live ones.
//! - The same while the client is disconnected (through a relay that is cut, so the node and
//!   its states stay up): after the restore, the backfill's `eth_getLogs` shows the change, and
//!   the removed logs and the new ones come in the same order.
//!
//! Interval mining is switched off (`evm_setIntervalMining 0`) and blocks are mined with
//! `evm_mine`, so the chain moves only when a test says so. Needs anvil
//! (`bash scripts/install-anvil.sh`); fails with that instruction when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova_core::{ClientConfig, ReconnectStrategy, SubscriptionEvent};
use nova_ethereum::{EthClient, EthEvent, Log, LogFilter, SubscriptionKind};
use nova_testkit::{Anvil, TICK_TOPIC};
use serde_json::{Value, json};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

mod common;
use common::{Seen, collect, config, gather, heads, logs, reorgs};

/// How long a step may take before the test fails (generous: anvil mines on request, but the
/// client reconnects every 4 s).
const WAIT: Duration = Duration::from_secs(40);

/// A node that mines only when told to.
async fn manual_node() -> Anvil {
    let node = Anvil::spawn().await.expect("start anvil");
    manual_mining(&node).await;
    node
}

async fn manual_mining(node: &Anvil) {
    node.rpc("evm_setIntervalMining", json!([0])).await.unwrap();
}

async fn mine(node: &Anvil, blocks: u64) {
    for _ in 0..blocks {
        node.rpc("evm_mine", json!([])).await.unwrap();
    }
}

/// The node's block `number`: (hash, parent hash).
async fn block(node: &Anvil, number: u64) -> (String, String) {
    let block = node
        .rpc(
            "eth_getBlockByNumber",
            json!([format!("{number:#x}"), false]),
        )
        .await
        .unwrap();
    (
        block["hash"].as_str().unwrap().to_owned(),
        block["parentHash"].as_str().unwrap().to_owned(),
    )
}

fn restored(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| matches!(s, Seen::Status(SubscriptionEvent::Restored)))
        .count()
}

/// The events as a line each: `head N hash`, `reorg …`, for failure messages and checks.
fn story(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| match s {
            Seen::Event(EthEvent::Head(h)) => format!(
                "head {} {}",
                h.number,
                h.hash.as_deref().unwrap_or_default()
            ),
            Seen::Event(EthEvent::Reorg(r)) => format!(
                "reorg depth {} ancestor {:?}",
                r.depth,
                r.common_ancestor.as_ref().map(|a| a.number)
            ),
            Seen::Event(EthEvent::Log(l)) => format!(
                "log {:?}/{:?} {} removed {}",
                l.block_number,
                l.log_index,
                l.block_hash.as_deref().unwrap_or_default(),
                l.removed
            ),
            Seen::Event(other) => format!("{other:?}"),
            Seen::Status(status) => format!("status {status:?}"),
        })
        .collect()
}

/// Checks the heads and reorgs delivered form one walk along the chain: each head's parent is
/// the head before it, except right after a reorg, whose common ancestor it builds on; a reorg
/// replaces the heads delivered from its ancestor on (`old` is exactly those). Returns the
/// canonical chain the application ends up with (number → hash).
fn check_walk(seen: &[Seen]) -> std::collections::BTreeMap<u64, String> {
    let mut chain = std::collections::BTreeMap::<u64, String>::new();
    let mut tip: Option<(u64, String)> = None;
    for s in seen {
        match s {
            Seen::Event(EthEvent::Head(h)) => {
                let hash = h.hash.clone().unwrap();
                if let Some((number, parent)) = &tip {
                    assert_eq!(
                        h.number,
                        number + 1,
                        "a head repeated or skipped: {:#?}",
                        story(seen)
                    );
                    assert_eq!(
                        &h.parent_hash,
                        parent,
                        "not built on the head before: {:#?}",
                        story(seen)
                    );
                }
                chain.insert(h.number, hash.clone());
                tip = Some((h.number, hash));
            }
            Seen::Event(EthEvent::Reorg(r)) => {
                let ancestor = r.common_ancestor.as_ref().expect("a known ancestor");
                assert_eq!(
                    chain.get(&ancestor.number),
                    Some(&ancestor.hash),
                    "{:#?}",
                    story(seen)
                );
                let replaced: Vec<(u64, String)> = chain
                    .range(ancestor.number + 1..)
                    .map(|(n, h)| (*n, h.clone()))
                    .collect();
                let old: Vec<(u64, String)> =
                    r.old.iter().map(|b| (b.number, b.hash.clone())).collect();
                assert_eq!(
                    old, replaced,
                    "old = the heads delivered above the ancestor"
                );
                assert_eq!(r.depth, replaced.len() as u64);
                chain.retain(|n, _| *n <= ancestor.number);
                tip = Some((ancestor.number, ancestor.hash.clone()));
            }
            _ => {}
        }
    }
    chain
}

async fn heads_reorg(depth: u64) {
    let node = manual_node().await;
    mine(&node, 5).await;
    let (eth, _messages) = EthClient::connect(config(&node, "eth-reorg-test"));
    let sub = eth.subscribe(SubscriptionKind::NewHeads).await.unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();
    mine(&node, 6).await;
    let tip = node.block_number().await.unwrap();
    gather(&mut rx, &mut seen, WAIT, |s| {
        heads(s).last().is_some_and(|h| h.number == tip)
    })
    .await;
    let before: Vec<(u64, String)> = heads(&seen)
        .iter()
        .map(|h| (h.number, h.hash.clone().unwrap()))
        .collect();

    node.rpc("anvil_reorg", json!([depth, []])).await.unwrap();
    assert_eq!(node.block_number().await.unwrap(), tip);
    gather(&mut rx, &mut seen, WAIT, |s| {
        !reorgs(s).is_empty() && heads(s).last().is_some_and(|h| h.number == tip)
    })
    .await;
    // The chain goes on from the new tip.
    mine(&node, 2).await;
    gather(&mut rx, &mut seen, WAIT, |s| {
        heads(s).last().is_some_and(|h| h.number == tip + 2)
    })
    .await;

    let reorg = reorgs(&seen)[0].clone();
    eprintln!("{:#?}", story(&seen));
    assert_eq!(reorgs(&seen).len(), 1, "{:#?}", story(&seen));
    assert_eq!(reorg.depth, depth);
    let ancestor = reorg.common_ancestor.clone().expect("a common ancestor");
    assert_eq!(ancestor.number, tip - depth);
    assert_eq!(ancestor.hash, block(&node, tip - depth).await.0);
    let replaced: Vec<(u64, String)> = before
        .iter()
        .filter(|(n, _)| *n > tip - depth)
        .cloned()
        .collect();
    let old: Vec<(u64, String)> = reorg
        .old
        .iter()
        .map(|b| (b.number, b.hash.clone()))
        .collect();
    assert_eq!(old, replaced, "the old hashes are the heads delivered");
    let mut new = Vec::new();
    for number in tip - depth + 1..=tip {
        new.push((number, block(&node, number).await.0));
    }
    let reorg_new: Vec<(u64, String)> = reorg
        .new
        .iter()
        .map(|b| (b.number, b.hash.clone()))
        .collect();
    // anvil mines the new blocks one after the other and answers requests meanwhile, so the
    // adapter's fetch may see the new chain before it is complete: `new` is then a prefix, and
    // the heads after the Reorg (checked below) bring the rest.
    assert!(!reorg_new.is_empty(), "{:#?}", story(&seen));
    assert_eq!(
        reorg_new[..],
        new[..reorg_new.len()],
        "the new hashes are the node's after the reorg"
    );
    assert!(new.iter().zip(&replaced).all(|(n, o)| n.1 != o.1));

    // One walk along the chain, ending on the node's canonical chain.
    let chain = check_walk(&seen);
    for (number, hash) in &chain {
        assert_eq!(hash, &block(&node, *number).await.0, "head {number}");
    }
    assert_eq!(chain.keys().last(), Some(&(tip + 2)));
    // The reorg sits right after the last old head and before the first new one.
    let lines = story(&seen);
    let at = lines.iter().position(|l| l.starts_with("reorg")).unwrap();
    let next_head = lines[at..].iter().find(|l| l.starts_with("head")).unwrap();
    assert_eq!(next_head, &format!("head {} {}", tip - depth + 1, new[0].1));
    eth.client().close(1000, "done").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_of_depth_1_is_told_then_the_new_heads_follow() {
    heads_reorg(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_of_depth_3_is_told_then_the_new_heads_follow() {
    heads_reorg(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_to_a_snapshot_and_a_shorter_chain_is_a_reorg() {
    let node = manual_node().await;
    mine(&node, 3).await;
    let (eth, _messages) = EthClient::connect(config(&node, "eth-reorg-test"));
    let sub = eth.subscribe(SubscriptionKind::NewHeads).await.unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();
    mine(&node, 2).await;
    let snapshot = node.rpc("evm_snapshot", json!([])).await.unwrap();
    let base = node.block_number().await.unwrap();
    mine(&node, 3).await;
    gather(&mut rx, &mut seen, WAIT, |s| {
        heads(s).last().is_some_and(|h| h.number == base + 3)
    })
    .await;
    assert_eq!(
        node.rpc("evm_revert", json!([snapshot])).await.unwrap(),
        json!(true)
    );
    // One block on the old base: a chain shorter than what was delivered.
    mine(&node, 1).await;
    gather(&mut rx, &mut seen, WAIT, |s| {
        !reorgs(s).is_empty() && heads(s).last().is_some_and(|h| h.number == base + 1)
    })
    .await;
    let reorg = reorgs(&seen)[0].clone();
    assert_eq!(reorg.depth, 3, "{:#?}", story(&seen));
    assert_eq!(reorg.common_ancestor.as_ref().map(|a| a.number), Some(base));
    assert_eq!(reorg.old.len(), 3);
    assert_eq!(
        reorg
            .new
            .iter()
            .map(|b| (b.number, b.hash.clone()))
            .collect::<Vec<_>>(),
        vec![(base + 1, block(&node, base + 1).await.0)],
        "the new chain has one block at the replaced heights"
    );
    mine(&node, 3).await;
    gather(&mut rx, &mut seen, WAIT, |s| {
        heads(s).last().is_some_and(|h| h.number == base + 4)
    })
    .await;
    let chain = check_walk(&seen);
    for (number, hash) in &chain {
        assert_eq!(hash, &block(&node, *number).await.0, "head {number}");
    }
    eth.client().close(1000, "done").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_while_disconnected_is_found_by_the_backfill() {
    // The states of past blocks kept across the restart, so that it can reorganise them.
    let mut node = Anvil::builder()
        .arg("--preserve-historical-states")
        .spawn()
        .await
        .expect("start anvil");
    manual_mining(&node).await;
    mine(&node, 3).await;
    let (eth, _messages) = EthClient::connect(config(&node, "eth-reorg-test"));
    let sub = eth.subscribe(SubscriptionKind::NewHeads).await.unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();
    mine(&node, 5).await;
    let tip = node.block_number().await.unwrap();
    gather(&mut rx, &mut seen, WAIT, |s| {
        heads(s).last().is_some_and(|h| h.number == tip)
    })
    .await;

    // The node restarts with its chain; before the client is back (it waits 4 s), the last two
    // delivered blocks are replaced (and whatever interval mining added in the moment before it
    // was switched off again), and two more are mined.
    node.restart().await.unwrap();
    manual_mining(&node).await;
    assert_eq!(
        block(&node, tip).await.0,
        heads(&seen).last().unwrap().hash.clone().unwrap()
    );
    let extra = node.block_number().await.unwrap() - tip;
    node.rpc("anvil_reorg", json!([2 + extra, []]))
        .await
        .unwrap();
    mine(&node, 2).await;
    let top = tip + extra + 2;
    gather(&mut rx, &mut seen, WAIT, |s| restored(s) >= 1).await;
    assert!(
        reorgs(&seen).is_empty(),
        "nothing told before a head shows the gap"
    );
    // The next live head shows the gap; the backfill finds the reorg.
    mine(&node, 1).await;
    gather(&mut rx, &mut seen, WAIT, |s| {
        heads(s).last().is_some_and(|h| h.number == top + 1)
    })
    .await;

    eprintln!("{:#?}", story(&seen));
    assert_eq!(reorgs(&seen).len(), 1, "{:#?}", story(&seen));
    let reorg = reorgs(&seen)[0].clone();
    assert_eq!(reorg.depth, 2);
    assert_eq!(
        reorg.common_ancestor.as_ref().map(|a| a.number),
        Some(tip - 2)
    );
    let mut new = Vec::new();
    for number in tip - 1..=tip {
        new.push((number, block(&node, number).await.0));
    }
    assert_eq!(
        reorg
            .new
            .iter()
            .map(|b| (b.number, b.hash.clone()))
            .collect::<Vec<_>>(),
        new
    );
    let chain = check_walk(&seen);
    for (number, hash) in &chain {
        assert_eq!(hash, &block(&node, *number).await.0, "head {number}");
    }
    assert_eq!(chain.keys().last(), Some(&(top + 1)));
    assert_eq!(node.starts(), 2);
    eth.client().close(1000, "done").await.ok();
}

/// A call of the tick emitter from the second dev account.
fn tick(accounts: &[String], contract: &str) -> Value {
    json!({ "from": accounts[1], "to": contract, "data": "0x" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_a_reorg_removed_come_flagged_then_their_replacements() {
    let node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    manual_mining(&node).await;
    let accounts = node.accounts().await.unwrap();
    let (eth, _messages) = EthClient::connect(config(&node, "eth-reorg-test"));
    let filter = LogFilter::new()
        .address(contract.clone())
        .topic(0, TICK_TOPIC);
    let sub = eth
        .subscribe(SubscriptionKind::logs(filter.clone()))
        .await
        .unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();
    // A Tick in each of five blocks.
    for _ in 0..5 {
        node.rpc("eth_sendTransaction", json!([tick(&accounts, &contract)]))
            .await
            .unwrap();
        mine(&node, 1).await;
    }
    let tip = node.block_number().await.unwrap();
    gather(&mut rx, &mut seen, WAIT, |s| logs(s).len() >= 5).await;
    let before: Vec<Log> = logs(&seen).into_iter().cloned().collect();
    assert_eq!(before.last().unwrap().block_number, Some(tip));

    // The last three blocks replaced by three blocks with a Tick each.
    let txs: Vec<Value> = (0..3)
        .map(|i| json!([tick(&accounts, &contract), i]))
        .collect();
    node.rpc("anvil_reorg", json!([3, txs])).await.unwrap();
    let truth = eth.logs(filter.clone().blocks(tip - 2, tip)).await.unwrap();
    assert_eq!(truth.len(), 3, "{truth:?}");
    gather(&mut rx, &mut seen, WAIT, |s| logs(s).len() >= 5 + 3 + 3).await;
    // The next live one.
    node.rpc("eth_sendTransaction", json!([tick(&accounts, &contract)]))
        .await
        .unwrap();
    mine(&node, 1).await;
    gather(&mut rx, &mut seen, WAIT, |s| logs(s).len() > 5 + 3 + 3).await;

    eprintln!("{:#?}", story(&seen));
    let got: Vec<Log> = logs(&seen).into_iter().cloned().collect();
    let removed: Vec<Log> = before[2..]
        .iter()
        .cloned()
        .map(|mut l| {
            l.removed = true;
            l
        })
        .collect();
    assert_eq!(got[..5], before[..], "{:#?}", story(&seen));
    assert_eq!(
        got[5..8],
        removed[..],
        "the replaced blocks' logs, flagged removed"
    );
    let key = |l: &Log| {
        (
            l.block_number,
            l.log_index,
            l.block_hash.clone(),
            l.transaction_hash.clone(),
            l.data.clone(),
            l.removed,
        )
    };
    assert_eq!(
        got[8..11].iter().map(key).collect::<Vec<_>>(),
        truth.iter().map(key).collect::<Vec<_>>(),
        "then the new chain's logs, as eth_getLogs has them"
    );
    assert!(
        got[8..11]
            .iter()
            .zip(&before[2..])
            .all(|(new, old)| new.block_hash != old.block_hash)
    );
    assert_eq!(got[11].block_number, Some(tip + 1));
    assert!(!got[11].removed);
    assert_eq!(got.len(), 12, "nothing else: {:#?}", story(&seen));
    eth.client().close(1000, "done").await.ok();
}

/// A TCP relay to a port on 127.0.0.1 that can be cut: its connections closed, and new ones
/// closed as soon as accepted, until it is restored. The client reaches anvil through it, so a
/// test can disconnect the client while the node (and its chain's states) stays up.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    tunnels: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let tunnels: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up_task, tunnels_task) = (Arc::clone(&up), Arc::clone(&tunnels));
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up_task.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let tunnel = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tunnels_task.lock().unwrap().push(tunnel);
            }
        });
        Self {
            port,
            up,
            tunnels,
            accept,
        }
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for tunnel in self.tunnels.lock().unwrap().drain(..) {
            tunnel.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_a_reorg_removed_while_disconnected_come_flagged_after_the_restore() {
    let node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    manual_mining(&node).await;
    let accounts = node.accounts().await.unwrap();
    let relay = Relay::start(node.port()).await;
    let config = ClientConfig::builder(relay.ws_url())
        .name("eth-reorg-test")
        .reconnect_strategy(ReconnectStrategy::Constant)
        .backoff(Duration::from_secs(1), Duration::from_secs(1))
        .jitter(0.0)
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (eth, _messages) = EthClient::connect(config);
    let filter = LogFilter::new()
        .address(contract.clone())
        .topic(0, TICK_TOPIC);
    let sub = eth
        .subscribe(SubscriptionKind::logs(filter.clone()))
        .await
        .unwrap();
    let mut rx = collect(sub);
    let mut seen = Vec::new();
    for _ in 0..5 {
        node.rpc("eth_sendTransaction", json!([tick(&accounts, &contract)]))
            .await
            .unwrap();
        mine(&node, 1).await;
    }
    gather(&mut rx, &mut seen, WAIT, |s| logs(s).len() >= 5).await;
    let before: Vec<Log> = logs(&seen).into_iter().cloned().collect();
    let tip = before.last().unwrap().block_number.unwrap();

    // Disconnected: the last two blocks are replaced by blocks with a Tick each, and one more
    // block with a Tick follows; then the client may come back.
    relay.cut();
    let txs: Vec<Value> = (0..2)
        .map(|i| json!([tick(&accounts, &contract), i]))
        .collect();
    node.rpc("anvil_reorg", json!([2, txs])).await.unwrap();
    node.rpc("eth_sendTransaction", json!([tick(&accounts, &contract)]))
        .await
        .unwrap();
    mine(&node, 1).await;
    let truth: Vec<Log> = serde_json::from_value(
        node.rpc(
            "eth_getLogs",
            json!([{"address": contract, "fromBlock": format!("{:#x}", tip - 1), "toBlock": "latest"}]),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(truth.len(), 3, "{truth:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.restore();
    gather(&mut rx, &mut seen, WAIT, |s| {
        restored(s) >= 1 && logs(s).last().and_then(|l| l.block_number) == Some(tip + 1)
    })
    .await;

    eprintln!("{:#?}", story(&seen));
    let got: Vec<Log> = logs(&seen).into_iter().cloned().collect();
    let removed: Vec<Log> = before[3..]
        .iter()
        .cloned()
        .map(|mut l| {
            l.removed = true;
            l
        })
        .collect();
    assert_eq!(got[..5], before[..], "{:#?}", story(&seen));
    assert_eq!(
        got[5..7],
        removed[..],
        "the replaced blocks' logs, flagged removed"
    );
    let key = |l: &Log| {
        (
            l.block_number,
            l.log_index,
            l.block_hash.clone(),
            l.transaction_hash.clone(),
            l.removed,
        )
    };
    assert_eq!(
        got[7..].iter().map(key).collect::<Vec<_>>(),
        truth.iter().map(key).collect::<Vec<_>>(),
        "then the new chain's logs from the first replaced block on: {:#?}",
        story(&seen)
    );
    eth.client().close(1000, "done").await.ok();
}
