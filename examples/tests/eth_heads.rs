//! Runs the `eth_heads` example against a real node (anvil, a block a second) restarted halfway:
//! every head printed once, in order, none missing. Needs anvil (`bash scripts/install-anvil.sh`);
//! fails with that instruction when it is missing.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use nova_ethereum::parse_quantity;
use nova_testkit::Anvil;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eth_heads_prints_each_head_once_across_a_node_restart() {
    let mut node = Anvil::spawn().await.expect("start anvil");
    let start = node.block_number().await.unwrap();
    let child = Command::new(common::example_binary("eth_heads"))
        .args(["--url", &node.ws_url(), "--count", "8"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // A few heads in, the node goes away for a while and comes back with its chain.
    while node.block_number().await.unwrap() < start + 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.restart_after(Duration::from_secs(2)).await.unwrap();

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the example finished in time")
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Restored"), "{stderr}");
    eprintln!("{stderr}");

    let heads: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(heads.len(), 8, "{stdout}");
    let numbers: Vec<u64> = heads
        .iter()
        .map(|h| parse_quantity(h["number"].as_str().unwrap()).unwrap())
        .collect();
    let expected: Vec<u64> = (numbers[0]..numbers[0] + 8).collect();
    assert_eq!(numbers, expected, "{stdout}\n{stderr}");
    for head in &heads {
        let block = node
            .rpc("eth_getBlockByNumber", json!([head["number"], false]))
            .await
            .unwrap();
        assert_eq!(block["hash"], head["hash"]);
    }
}
