//! The Gen Golden client against nova-testkit's JSON-RPC 2.0 server on 127.0.0.1: requests,
//! subscriptions that survive a reconnect, authentication, and the server's heartbeat.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nova_core::{Messages, StopReason};
use nova_testkit::{JsonRpcServer, SimOptions, wait_until};
use serde_json::json;

use nova_gen_golden::GenGoldenClient;
use nova_gen_golden::{Credentials, Incoming, parse};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of `server`, connected, reconnecting quickly.
async fn connect(
    server: &JsonRpcServer,
    credentials: Option<Credentials>,
) -> (GenGoldenClient, Messages) {
    let config = GenGoldenClient::config(server.url())
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap();
    let (client, messages) = GenGoldenClient::connect(config, credentials);
    client.wait_connected(TIMEOUT).await.unwrap();
    (client, messages)
}

#[tokio::test]
async fn requests_return_their_result() {
    let server = JsonRpcServer::start().await.unwrap();
    let (client, _messages) = connect(&server, None).await;
    let result = client
        .request("public/echo", json!({"hello": "world"}))
        .await
        .unwrap();
    assert_eq!(result, json!({"hello": "world"}));
    client.close().await.unwrap();
}

#[tokio::test]
async fn subscriptions_receive_notifications_across_a_reconnect() {
    let server = JsonRpcServer::start().await.unwrap();
    let (client, _messages) = connect(&server, None).await;
    let mut trades = client.subscribe("trades.BTC-USD").await.unwrap();

    server.publish("trades.BTC-USD", json!({"price": 42})).await;
    let message = tokio::time::timeout(TIMEOUT, trades.next_message()).await;
    let Incoming::Notification(notification) = parse(&message.unwrap().unwrap()).unwrap() else {
        panic!("expected a notification");
    };
    assert_eq!(notification.params.data, json!({"price": 42}));

    // The connection breaks; the runtime reconnects and subscribes again.
    server.server().next_connection().await.drop_tcp();
    let restored = || server.subscribers("trades.BTC-USD").contains(&1);
    assert!(wait_until(restored, TIMEOUT).await, "not restored");
    server.publish("trades.BTC-USD", json!({"price": 43})).await;
    let message = tokio::time::timeout(TIMEOUT, trades.next_message()).await;
    assert!(message.unwrap().unwrap().as_text().unwrap().contains("43"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn authenticates_with_credentials() {
    let options = SimOptions::default().with_credentials("my-key", "my-secret");
    let server = JsonRpcServer::start_with(options).await.unwrap();

    let (anonymous, _messages) = connect(&server, None).await;
    let refused = anonymous.request("private/get_positions", json!({})).await;
    assert!(refused.unwrap_err().to_string().contains("unauthorized"));
    anonymous.close().await.unwrap();

    let credentials = Credentials::new("my-key", "my-secret");
    let (client, _messages) = connect(&server, Some(credentials)).await;
    let positions = client.request("private/get_positions", json!({})).await;
    assert_eq!(positions.unwrap(), json!({}));
    client.close().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_stop_the_client() {
    let options = SimOptions::default().with_credentials("my-key", "my-secret");
    let server = JsonRpcServer::start_with(options).await.unwrap();
    let config = GenGoldenClient::config(server.url()).build().unwrap();
    let credentials = Credentials::new("my-key", "wrong");
    let (client, _messages) = GenGoldenClient::connect(config, Some(credentials));
    let stopped = tokio::time::timeout(TIMEOUT, client.inner().stopped()).await;
    let StopReason::Policy(reason) = stopped.unwrap() else {
        panic!("expected a stop by policy");
    };
    assert!(reason.contains("invalid_credentials"), "{reason}");
}

#[tokio::test]
async fn answers_the_servers_test_request() {
    let server = JsonRpcServer::start().await.unwrap();
    let (client, _messages) = connect(&server, None).await;
    let connection = server.server().next_connection().await;
    connection
        .send_text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#)
        .await;
    let answer = server.wait_for_request("public/test", TIMEOUT).await;
    assert!(answer.is_some(), "the client did not answer the heartbeat");
    client.close().await.unwrap();
}
