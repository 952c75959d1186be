//! Runs three `cluster_node` processes against one private redis-server and the in-process
//! Deribit simulator: each channel subscribed upstream once, the owner SIGKILLed and taken over
//! within two seconds, no duplicate on any node, a returning node that subscribes nothing twice,
//! Redis stopped and restarted under the cluster, SIGTERM flushing stdout.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nova_testkit::RedisServer;
use nova_testkit::deribit::{DeribitHandle, DeribitSim, DeribitSimOptions};

const BOOK: &str = "book.BTC-PERPETUAL.100ms";
const TICKER: &str = "ticker.BTC-PERPETUAL.100ms";

/// A line a node printed, with when the test read it.
#[derive(Clone, Debug)]
struct Line {
    at: Instant,
    json: serde_json::Value,
}

struct NodeProcess {
    name: String,
    child: Child,
    out: Arc<Mutex<Vec<Line>>>,
    err: Arc<Mutex<Vec<Line>>>,
    raw_err: Arc<Mutex<Vec<String>>>,
}

fn read_lines(
    stream: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<Vec<Line>>>,
    raw: Option<Arc<Mutex<Vec<String>>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(raw) = &raw {
                raw.lock().unwrap().push(line.clone());
            }
            if let Ok(json) = serde_json::from_str(&line) {
                into.lock().unwrap().push(Line {
                    at: Instant::now(),
                    json,
                });
            }
        }
    });
}

impl NodeProcess {
    fn spawn(redis: Option<&str>, name: &str, region: &str, url: &str) -> Self {
        let mut command = Command::new(common::example_binary("cluster_node"));
        if let Some(redis) = redis {
            command.args(["--redis", redis]);
        }
        command
            .args(["--node", name, "--region", region, "--url", url])
            .args(["--channel", BOOK, "--channel", TICKER])
            .args(["--platform-region", "eu-west"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let raw_err = Arc::new(Mutex::new(Vec::new()));
        read_lines(child.stdout.take().unwrap(), out.clone(), None);
        read_lines(
            child.stderr.take().unwrap(),
            err.clone(),
            Some(raw_err.clone()),
        );
        NodeProcess {
            name: name.to_owned(),
            child,
            out,
            err,
            raw_err,
        }
    }

    fn out(&self) -> Vec<Line> {
        self.out.lock().unwrap().clone()
    }

    fn err(&self) -> Vec<Line> {
        self.err.lock().unwrap().clone()
    }

    fn stderr_text(&self) -> String {
        self.raw_err.lock().unwrap().join("\n")
    }

    fn messages(&self, channel: &str, since: Option<Instant>) -> Vec<Line> {
        self.out()
            .into_iter()
            .filter(|l| l.json["channel"] == channel && since.is_none_or(|s| l.at >= s))
            .collect()
    }

    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> (std::process::ExitStatus, Self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        (status, self)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn subscribers(sim: &DeribitHandle, channel: &str) -> usize {
    sim.open_connections()
        .iter()
        .filter(|c| c.subscriptions.contains(channel))
        .count()
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fails when a node printed the same notification twice on one channel.
fn assert_no_duplicates(node: &NodeProcess) {
    let mut seen = BTreeSet::new();
    for l in node.out() {
        let key = (l.json["channel"].to_string(), l.json["data"].to_string());
        assert!(
            seen.insert(key.clone()),
            "{} printed {key:?} twice",
            node.name
        );
    }
}

async fn sim() -> DeribitSim {
    DeribitSim::start_with(DeribitSimOptions::default().with_tick(Duration::from_millis(50)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_subscriptions_and_fail_over_on_sigkill() {
    let redis = RedisServer::start_new().await.unwrap();
    let sim = sim().await;
    let url = sim.url();
    // `a` first, so that a node of the platform's region is live when the channels are placed
    // (placement happens once, at claim time); then `b` (eu-west) and `c` (us-east).
    let mut nodes = vec![NodeProcess::spawn(Some(&redis.url()), "a", "eu-west", &url)];
    wait_for("data on a", Duration::from_secs(60), || {
        nodes[0].messages(BOOK, None).len() >= 2
    })
    .await;
    nodes.push(NodeProcess::spawn(Some(&redis.url()), "b", "eu-west", &url));
    nodes.push(NodeProcess::spawn(Some(&redis.url()), "c", "us-east", &url));
    wait_for("data on every node", Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.messages(BOOK, None).len() >= 10 && n.messages(TICKER, None).len() >= 10)
    })
    .await;

    // Each channel is subscribed upstream exactly once, by a node in the platform's region.
    assert_eq!(subscribers(&sim, BOOK), 1, "{:?}", sim.connections());
    assert_eq!(subscribers(&sim, TICKER), 1, "{:?}", sim.connections());
    let subscribes: u64 = sim.connections().iter().map(|c| c.subscribe_count).sum();
    assert_eq!(subscribes, 2, "{:?}", sim.connections());
    let owner = nodes[0].messages(BOOK, None).last().unwrap().json["owner"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(owner, "a", "the owner is placed in eu-west");
    for n in &nodes {
        assert!(
            n.messages(BOOK, None)
                .iter()
                .all(|l| l.json["owner"] == owner.as_str())
        );
        // Every node's first book message is a snapshot.
        assert_eq!(n.messages(BOOK, None)[0].json["data"]["type"], "snapshot");
    }

    // SIGKILL the owner: a survivor subscribes upstream within 2 s and everyone gets data.
    let dead = nodes.iter().position(|n| n.name == owner).unwrap();
    let mut victim = nodes.remove(dead);
    let killed = Instant::now();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let mut taken_over = None;
    while killed.elapsed() < Duration::from_secs(10) {
        if subscribers(&sim, BOOK) == 1 {
            taken_over = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let taken_over = taken_over.expect("no survivor subscribed the book again");
    assert!(
        taken_over < Duration::from_secs(2),
        "failover took {taken_over:?}"
    );
    wait_for("data from the new owner", Duration::from_secs(10), || {
        nodes.iter().all(|n| {
            n.messages(BOOK, Some(killed))
                .iter()
                .any(|l| l.json["owner"] != owner.as_str())
        })
    })
    .await;
    for n in &nodes {
        // A gap for the change of owner, closed by the new owner's snapshot.
        let events = n.err();
        let gap = events.iter().position(|l| {
            l.json["event"] == "gap"
                && l.json["channel"] == BOOK
                && l.json["reason"] == "owner_changed"
        });
        let closed = events
            .iter()
            .position(|l| l.json["event"] == "gap_closed" && l.json["channel"] == BOOK);
        assert!(
            matches!((gap, closed), (Some(g), Some(c)) if g < c),
            "{}: {}",
            n.name,
            n.stderr_text()
        );
        let first_new = n
            .messages(BOOK, Some(killed))
            .into_iter()
            .find(|l| l.json["owner"] != owner.as_str())
            .unwrap();
        assert_eq!(first_new.json["data"]["type"], "snapshot");
        // b is in the platform's region, c is not: b takes over.
        assert_eq!(first_new.json["owner"], "b");
        assert_no_duplicates(n);
    }
    wait_for("a failover event", Duration::from_secs(10), || {
        nodes.iter().any(|n| {
            n.err()
                .iter()
                .any(|l| l.json["event"] == "failover" && l.json["from"] == owner.as_str())
        })
    })
    .await;
    wait_for(
        "every survivor to see the owner expire",
        Duration::from_secs(10),
        || {
            nodes.iter().all(|n| {
                n.err()
                    .iter()
                    .any(|l| l.json["event"] == "node_expired" && l.json["node"] == owner.as_str())
            })
        },
    )
    .await;

    // The dead node comes back: its leases are gone and it subscribes nothing twice.
    let back = Instant::now();
    nodes.push(NodeProcess::spawn(
        Some(&redis.url()),
        &owner,
        "eu-west",
        &url,
    ));
    wait_for(
        "data on the returning node",
        Duration::from_secs(30),
        || {
            nodes
                .last()
                .is_some_and(|n| n.messages(BOOK, Some(back)).len() >= 10)
        },
    )
    .await;
    assert_eq!(subscribers(&sim, BOOK), 1, "{:?}", sim.connections());
    assert_eq!(subscribers(&sim, TICKER), 1, "{:?}", sim.connections());
    assert_no_duplicates(nodes.last().unwrap());

    // SIGTERM: every node leaves, flushes and exits cleanly; the owner unsubscribes upstream.
    for n in nodes {
        let name = n.name.clone();
        let (status, n) = n.terminate();
        assert!(status.success(), "{name}: {status}\n{}", n.stderr_text());
        assert!(
            n.stderr_text().contains("\"stopped\""),
            "{}",
            n.stderr_text()
        );
    }
    wait_for("upstream unsubscribed", Duration::from_secs(5), || {
        subscribers(&sim, BOOK) == 0 && subscribers(&sim, TICKER) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_ride_out_a_redis_restart_without_double_subscriptions() {
    let mut redis = RedisServer::start_new().await.unwrap();
    let sim = sim().await;
    let url = sim.url();
    let nodes: Vec<NodeProcess> = [("a", "eu-west"), ("b", "us-east"), ("c", "us-east")]
        .iter()
        .map(|(n, r)| NodeProcess::spawn(Some(&redis.url()), n, r, &url))
        .collect();
    wait_for("data on every node", Duration::from_secs(60), || {
        nodes.iter().all(|n| n.messages(BOOK, None).len() >= 5)
    })
    .await;
    redis.stop().await.unwrap();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(3) {
        assert!(subscribers(&sim, BOOK) <= 1 && subscribers(&sim, TICKER) <= 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        subscribers(&sim, BOOK),
        0,
        "an owner cut off from Redis gives its channels up"
    );
    redis.start().await.unwrap();
    let up = Instant::now();
    while !(subscribers(&sim, BOOK) == 1 && subscribers(&sim, TICKER) == 1) {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "not subscribed again"
        );
        assert!(subscribers(&sim, BOOK) <= 1 && subscribers(&sim, TICKER) <= 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for("data again on every node", Duration::from_secs(20), || {
        nodes.iter().all(|n| n.messages(BOOK, Some(up)).len() >= 5)
    })
    .await;
    // Stable: still one subscription each a while later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(subscribers(&sim, BOOK), 1);
    assert_eq!(subscribers(&sim, TICKER), 1);
    for n in nodes {
        assert_no_duplicates(&n);
        let name = n.name.clone();
        let (status, n) = n.terminate();
        assert!(status.success(), "{name}: {status}\n{}", n.stderr_text());
        assert!(!n.stderr_text().contains("panicked"), "{}", n.stderr_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_one_node_runs_in_process_and_flushes_on_sigterm() {
    let sim = sim().await;
    let node = NodeProcess::spawn(None, "solo", "eu-west", &sim.url());
    wait_for("data", Duration::from_secs(60), || {
        node.messages(BOOK, None).len() >= 5 && node.messages(TICKER, None).len() >= 5
    })
    .await;
    assert_eq!(subscribers(&sim, BOOK), 1);
    let (status, node) = node.terminate();
    assert!(status.success(), "{}", node.stderr_text());
    for l in node.out() {
        assert_eq!(l.json["node"], "solo");
        assert_eq!(l.json["owner"], "solo");
        assert!(l.json["data"].is_object(), "{:?}", l.json);
    }
    assert!(
        node.err()
            .iter()
            .any(|l| l.json["event"] == "lease_acquired"),
        "{}",
        node.stderr_text()
    );
    assert_no_duplicates(&node);
}
