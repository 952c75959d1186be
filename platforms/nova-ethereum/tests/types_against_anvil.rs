//! The typed results against a real node: every typed method decodes what anvil really sends,
//! over HTTP and as WebSocket notifications. Needs anvil (`bash scripts/install-anvil.sh`); fails
//! with that instruction when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nova_ethereum::methods::{
    BlockNumber, Call, ChainId, GetBlockByNumber, GetLogs, Method, Subscribe, Unsubscribe,
};
use nova_ethereum::{
    BlockId, BlockTransactions, CallRequest, ErrorCode, EthEvent, Incoming, JsonRpcRequest,
    LogFilter, Peek, SubscriptionKind,
};
use nova_testkit::{Anvil, AnvilError, TICK_TOPIC};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn call<M: Method>(node: &Anvil, method: &M) -> M::Output {
    let result = node.rpc(M::NAME, method.params()).await.unwrap();
    M::decode(result).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_methods_decode_real_answers() {
    let node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    let ticker = node.spawn_ticker(&contract);
    let start = call(&node, &BlockNumber).await;
    while call(&node, &BlockNumber).await < start + 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(ticker);

    assert_eq!(call(&node, &ChainId).await, 31337);
    let latest = call(&node, &BlockNumber).await;
    let block = call(&node, &GetBlockByNumber::new(latest, false))
        .await
        .unwrap();
    assert_eq!(block.header.number, latest);
    assert!(block.header.hash.is_some());
    let parent = call(&node, &GetBlockByNumber::new(latest - 1, true))
        .await
        .unwrap();
    assert_eq!(Some(block.header.parent_hash.clone()), parent.header.hash);
    assert!(matches!(parent.transactions, BlockTransactions::Full(_)));
    assert!(
        call(&node, &GetBlockByNumber::new(latest + 1000, false))
            .await
            .is_none()
    );

    let logs = call(
        &node,
        &GetLogs(
            LogFilter::new()
                .address(contract.clone())
                .topic(0, TICK_TOPIC)
                .blocks(0, BlockId::Latest),
        ),
    )
    .await;
    assert!(logs.len() >= 2, "{logs:?}");
    for pair in logs.windows(2) {
        assert!(pair[0].position() < pair[1].position());
    }
    assert!(
        logs.iter()
            .all(|l| l.address.eq_ignore_ascii_case(&contract))
    );

    // The emitter returns nothing.
    let out = call(
        &node,
        &Call::new(CallRequest::new(contract.clone(), "0x"), BlockId::Latest),
    )
    .await;
    assert_eq!(out, "0x");

    match node.rpc("eth_noSuchMethod", json!([])).await {
        Err(AnvilError::Rpc { code, .. }) => {
            assert_eq!(ErrorCode::from_code(code), ErrorCode::MethodNotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_over_websocket_decode() {
    let node = Anvil::spawn().await.expect("start anvil");
    let contract = node.deploy_tick_emitter().await.unwrap();
    let _ticker = node.spawn_ticker(&contract);

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", node.port()))
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(node.ws_url(), tcp)
        .await
        .unwrap();
    let heads = SubscriptionKind::NewHeads;
    let logs = SubscriptionKind::logs(
        LogFilter::new()
            .address(contract.clone())
            .topic(0, TICK_TOPIC),
    );
    let mut ids = Vec::new();
    for (n, kind) in [&heads, &logs].into_iter().enumerate() {
        let request = JsonRpcRequest::new(
            nova_ethereum::Id::Num(n as u64 + 1),
            Subscribe::NAME,
            Subscribe(kind.clone()).params(),
        );
        ws.send(WsMessage::text(request.to_json())).await.unwrap();
    }
    let mut got_head = None;
    let mut got_log = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got_head.is_none() || got_log.is_none() {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("notifications in time")
            .unwrap()
            .unwrap();
        let WsMessage::Text(text) = frame else {
            continue;
        };
        match Peek::of(text.as_bytes()) {
            Peek::Response(id) => {
                let Ok(Incoming::Response(r)) = Incoming::parse(text.as_bytes()) else {
                    panic!("{text}")
                };
                let sub = Subscribe::decode(r.into_result().unwrap()).unwrap();
                ids.push((id, sub));
            }
            Peek::Notification(sub) => {
                let message = nova_core::Message::text(text.as_str());
                let (id, _) = ids.iter().find(|(_, s)| *s == sub).expect("known id");
                let kind = if *id == nova_ethereum::Id::Num(1) {
                    &heads
                } else {
                    &logs
                };
                match EthEvent::from_message(kind, &message).unwrap() {
                    EthEvent::Head(h) => got_head = Some(h),
                    EthEvent::Log(l) => got_log = Some(l),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}: {text}"),
        }
    }
    let head = got_head.unwrap();
    assert!(head.hash.is_some());
    assert!(head.number > 0);
    let log = got_log.unwrap();
    assert!(log.position().is_some());
    assert_eq!(log.topics[0], TICK_TOPIC);

    // eth_unsubscribe answers true for a live id.
    let (_, server_id) = &ids[0];
    let request = JsonRpcRequest::new(
        nova_ethereum::Id::Num(9),
        Unsubscribe::NAME,
        Unsubscribe(server_id.clone()).params(),
    );
    ws.send(WsMessage::text(request.to_json())).await.unwrap();
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("unsubscribe answer in time")
            .unwrap()
            .unwrap();
        let WsMessage::Text(text) = frame else {
            continue;
        };
        if Peek::of(text.as_bytes()) == Peek::Response(nova_ethereum::Id::Num(9)) {
            let value: Value = serde_json::from_str(&text).unwrap();
            assert!(Unsubscribe::decode(value["result"].clone()).unwrap());
            break;
        }
    }
}
