//! What the anvil tests of this crate share: the client's configuration (a constant 4 s
//! reconnect, longer than anvil's block time, so every restore has a gap to backfill), a task
//! collecting what a subscription delivers, and views of what it collected.
// Each test file compiles this module and uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use nova_core::{ClientConfig, ReconnectStrategy, SubscriptionEvent};
use nova_ethereum::{EthEvent, EthItem, EthSubscription, Header, Log, Reorg};
use nova_testkit::Anvil;
use tokio::sync::mpsc;

/// A client of `node` named `name`: reconnects every 4 s exactly, requests time out after 10 s.
pub(crate) fn config(node: &Anvil, name: &str) -> ClientConfig {
    ClientConfig::builder(node.ws_url())
        .name(name)
        .reconnect_strategy(ReconnectStrategy::Constant)
        .backoff(Duration::from_secs(4), Duration::from_secs(4))
        .jitter(0.0)
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What a subscription delivered, collected by a background task.
#[derive(Debug)]
pub(crate) enum Seen {
    Event(EthEvent),
    Status(SubscriptionEvent),
}

/// Collects what `sub` delivers, in a task, into the returned queue.
pub(crate) fn collect(mut sub: EthSubscription) -> mpsc::Receiver<Seen> {
    let (tx, rx) = mpsc::channel(10_000);
    tokio::spawn(async move {
        while let Some(item) = sub.recv().await {
            let seen = match item {
                EthItem::Event(e) => Seen::Event(e),
                EthItem::Status(s) => Seen::Status(s),
                other => panic!("malformed notification: {other:?}"),
            };
            if tx.send(seen).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Receives into `into` until `done` says so; fails when `within` passes first.
pub(crate) async fn gather(
    rx: &mut mpsc::Receiver<Seen>,
    into: &mut Vec<Seen>,
    within: Duration,
    done: impl Fn(&[Seen]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(into) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(seen)) => into.push(seen),
            Ok(None) => panic!("subscription ended"),
            Err(_) => panic!("timed out; got so far: {into:#?}"),
        }
    }
}

/// The heads delivered.
pub(crate) fn heads(seen: &[Seen]) -> Vec<&Header> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(EthEvent::Head(h)) => Some(&**h),
            _ => None,
        })
        .collect()
}

/// The reorgs told.
pub(crate) fn reorgs(seen: &[Seen]) -> Vec<&Reorg> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(EthEvent::Reorg(r)) => Some(&**r),
            _ => None,
        })
        .collect()
}

/// The logs delivered (removed ones included).
pub(crate) fn logs(seen: &[Seen]) -> Vec<&Log> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(EthEvent::Log(l)) => Some(&**l),
            _ => None,
        })
        .collect()
}
