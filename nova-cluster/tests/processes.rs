//! A rate budget shared by three OS processes on one redis-server. The processes are this test
//! binary run again with `NOVA_CLUSTER_TEST_CHILD` set: the `budget_child` test then acts as a
//! node (joins, takes one token at a time for a while, prints each grant's wall-clock time).
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nova_cluster::{Cluster, ClusterConfig, RedisBackend};
use nova_core::RateLimit;
use nova_testkit::RedisServer;

const CHILD_ENV: &str = "NOVA_CLUSTER_TEST_CHILD";
/// Capacity 5 + refill 10/s: at most 15 grants in any one-second window, cluster-wide.
const CAPACITY: u32 = 5;
const REFILL: f64 = 10.0;
const BUDGET: usize = 15;

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// The node process (does nothing unless started by the test below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, node) = spec.split_once('|').unwrap();
    let backend = RedisBackend::connect(url, "budget").unwrap();
    let cluster = Cluster::join(ClusterConfig::new(node, "eu-west"), backend)
        .await
        .unwrap();
    let budget = cluster.rate_limiter("api-key", RateLimit::new(CAPACITY, REFILL));
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        budget.acquire(1).await;
        println!("grant {}", micros_now());
    }
    cluster.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_never_exceed_the_shared_budget() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let redis = RedisServer::start_new().await.unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|node| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "budget_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, format!("{}|{node}", redis.url()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut grants: Vec<u128> = Vec::new();
    let mut per_process = Vec::new();
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mine: Vec<u128> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("grant "))
            .map(|t| t.trim().parse().unwrap())
            .collect();
        per_process.push(mine.len());
        grants.extend(mine);
    }
    grants.sort_unstable();
    let second = 1_000_000u128;
    let busiest = (0..grants.len())
        .map(|i| {
            grants[i..]
                .iter()
                .take_while(|g| **g - grants[i] < second)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= BUDGET,
        "{busiest} grants in one second: {per_process:?}"
    );
    // Every process got a share of the budget.
    assert!(per_process.iter().all(|n| *n > 0), "{per_process:?}");
}
