//! The anvil harness against the real node: the chain survives restarts, block numbers continue,
//! and the tick emitter logs once per call. Fails (does not skip) when anvil is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nova_testkit::{Anvil, TICK_TOPIC};
use serde_json::{Value, json};

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

async fn wait_for_block(node: &Anvil, at_least: u64) -> u64 {
    for _ in 0..100 {
        let n = node.block_number().await.unwrap();
        if n >= at_least {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("block {at_least} never came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_survives_restarts_and_block_numbers_continue() {
    let mut node = Anvil::spawn().await.expect("start anvil");
    let port = node.port();
    let reached = wait_for_block(&node, 3).await;
    let hash_of_2 = node
        .rpc("eth_getBlockByNumber", json!(["0x2", false]))
        .await
        .unwrap()["hash"]
        .clone();
    assert!(hash_of_2.is_string());

    for round in 0..2 {
        node.stop().await.unwrap();
        assert!(!node.is_running());
        assert!(
            node.block_number().await.is_err(),
            "node answers while stopped"
        );
        assert!(node.state_path().is_file(), "anvil wrote no state on exit");
        node.start().await.unwrap();
        assert_eq!(node.port(), port);
        let after = node.block_number().await.unwrap();
        assert!(
            after >= reached,
            "round {round}: chain went back from {reached} to {after}"
        );
        let again = node
            .rpc("eth_getBlockByNumber", json!(["0x2", false]))
            .await
            .unwrap();
        assert_eq!(again["hash"], hash_of_2, "round {round}: block 2 changed");
        // Mining goes on from there.
        let _ = wait_for_block(&node, after + 1).await;
    }
    assert_eq!(node.starts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_emitter_logs_once_per_block_across_a_restart() {
    let mut node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    let first = node.block_number().await.unwrap();
    let ticker = node.spawn_ticker(&contract);
    wait_for_block(&node, first + 3).await;
    node.restart().await.unwrap();
    let now = node.block_number().await.unwrap();
    wait_for_block(&node, now + 3).await;
    drop(ticker);
    let last = node.block_number().await.unwrap();

    let logs = node
        .rpc(
            "eth_getLogs",
            json!([{
                "address": contract,
                "topics": [TICK_TOPIC],
                "fromBlock": format!("{first:#x}"),
                "toBlock": format!("{last:#x}"),
            }]),
        )
        .await
        .unwrap();
    let logs = logs.as_array().unwrap();
    assert!(logs.len() >= 4, "too few logs: {logs:?}");
    for log in logs {
        // The data is the block number the log was emitted in.
        let block = hex_u64(&log["blockNumber"]);
        let data = log["data"].as_str().unwrap().trim_start_matches("0x");
        assert_eq!(u64::from_str_radix(&data[48..], 16).unwrap(), block);
        assert_eq!(log["topics"][0], TICK_TOPIC);
    }
}

#[tokio::test]
async fn a_missing_binary_fails_with_install_instructions() {
    let err = Anvil::builder()
        .binary("/nonexistent/anvil")
        .spawn()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/anvil"), "{err}");
    let not_installed = nova_testkit::AnvilError::NotInstalled { looked: "x".into() };
    // Display and Debug (what `.expect()` prints) both say how to install it.
    for text in [not_installed.to_string(), format!("{not_installed:?}")] {
        assert!(text.contains("scripts/install-anvil.sh"), "{text}");
    }
}
