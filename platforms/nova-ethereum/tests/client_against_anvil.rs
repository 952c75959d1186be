//! `EthClient` over WebSocket against a real node: typed calls, typed errors, pending
//! transactions, unsubscribe. Needs anvil (`bash scripts/install-anvil.sh`); fails with that
//! instruction when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nova_core::{ClientConfig, Request};
use nova_ethereum::methods::{BlockNumber, decode_response};
use nova_ethereum::{
    BlockId, CallRequest, ErrorCode, EthClient, EthError, EthEvent, LogFilter, SubscriptionKind,
};
use nova_testkit::{Anvil, TICK_TOPIC};
use serde_json::json;

fn connect(node: &Anvil) -> EthClient {
    let config = ClientConfig::builder(node.ws_url())
        .name("eth-client-test")
        .build()
        .unwrap();
    EthClient::connect(config).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_over_websocket() {
    let node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    let eth = connect(&node);

    assert_eq!(eth.chain_id().await.unwrap(), 31337);
    let tip = eth.block_number().await.unwrap();
    assert!(tip >= 1);
    let block = eth.block_by_number(tip, true).await.unwrap().unwrap();
    assert_eq!(block.header.number, tip);
    assert!(
        eth.block_by_number(tip + 1000, false)
            .await
            .unwrap()
            .is_none()
    );
    let latest = eth
        .block_by_number(BlockId::Latest, false)
        .await
        .unwrap()
        .unwrap();
    assert!(latest.header.number >= tip);

    // The deployment's block has no Tick yet (the constructor does not log); a call logs nothing
    // either, as it is not mined, and returns no data.
    let out = eth
        .eth_call(CallRequest::new(contract.clone(), "0x"), BlockId::Latest)
        .await
        .unwrap();
    assert_eq!(out, "0x");
    let logs = eth
        .logs(
            LogFilter::new()
                .address(contract)
                .topic(0, TICK_TOPIC)
                .blocks(0, BlockId::Latest),
        )
        .await
        .unwrap();
    assert!(logs.is_empty(), "{logs:?}");

    // Typed JSON-RPC errors come back through the same path.
    let response = eth
        .client()
        .request(Request::json_rpc("eth_noSuchMethod", json!([])))
        .await
        .unwrap();
    match decode_response::<BlockNumber>(&response) {
        // anvil answers an unknown method with -32601 over HTTP but -32602 ("did not match any
        // variant") over WebSocket; either is a typed error.
        Err(EthError::Rpc(e)) => assert!(
            matches!(e.code, ErrorCode::MethodNotFound | ErrorCode::InvalidParams),
            "{response:?}"
        ),
        other => panic!("{other:?}"),
    }
    let bad_block = eth
        .client()
        .request(Request::json_rpc(
            "eth_getBlockByNumber",
            json!(["nope", false]),
        ))
        .await
        .unwrap();
    assert!(matches!(
        decode_response::<BlockNumber>(&bad_block),
        Err(EthError::Rpc(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_transactions_and_unsubscribe() {
    let node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    let eth = connect(&node);
    let mut pending = eth
        .subscribe(SubscriptionKind::NewPendingTransactions { full: false })
        .await
        .unwrap();
    let _ticker = node.spawn_ticker(&contract);
    let event = tokio::time::timeout(Duration::from_secs(20), pending.next_event())
        .await
        .expect("a pending transaction in time")
        .unwrap();
    let EthEvent::PendingTransactionHash(hash) = event else {
        panic!("{event:?}")
    };
    assert!(hash.starts_with("0x") && hash.len() == 66, "{hash}");
    tokio::time::timeout(Duration::from_secs(10), pending.unsubscribe())
        .await
        .expect("unsubscribed in time")
        .unwrap();

    // A refused subscription is an error, not a stream.
    let refused = eth
        .client()
        .subscribe("logs", json!({"address": "not-an-address"}))
        .await;
    assert!(refused.is_err(), "{refused:?}");
}
