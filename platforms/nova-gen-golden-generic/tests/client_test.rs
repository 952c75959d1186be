//! The Gen Golden Generic client against nova-testkit's `op`/`topic` server on 127.0.0.1: requests,
//! subscriptions that survive a reconnect, authentication, and pings.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nova_core::{Messages, StopReason};
use nova_testkit::{OpServer, SimOptions, wait_until};
use serde_json::json;

use nova_gen_golden_generic::GenGoldenGenericClient;
use nova_gen_golden_generic::{Credentials, Incoming, parse};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of `server`, connected, reconnecting quickly, pinging every `ping`.
async fn connect(
    server: &OpServer,
    credentials: Option<Credentials>,
    ping: Duration,
) -> (GenGoldenGenericClient, Messages) {
    let config = GenGoldenGenericClient::config(server.url())
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .heartbeat_interval(Some(ping))
        .build()
        .unwrap();
    let (client, messages) = GenGoldenGenericClient::connect(config, credentials);
    client.wait_connected(TIMEOUT).await.unwrap();
    (client, messages)
}

#[tokio::test]
async fn requests_return_the_response_or_the_refusal() {
    let server = OpServer::start().await.unwrap();
    let (client, _messages) = connect(&server, None, Duration::from_secs(20)).await;
    let response = client.request("subscribe", vec![json!("a")]).await.unwrap();
    assert!(response.success);
    let refused = client.request("frobnicate", Vec::new()).await.unwrap_err();
    assert!(refused.to_string().contains("unknown op"), "{refused}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn subscriptions_receive_data_across_a_reconnect() {
    let server = OpServer::start().await.unwrap();
    let (client, _messages) = connect(&server, None, Duration::from_secs(20)).await;
    let mut trades = client.subscribe("trades.BTC-USD").await.unwrap();

    server.publish("trades.BTC-USD", json!({"price": 42})).await;
    let message = tokio::time::timeout(TIMEOUT, trades.next_message()).await;
    let Incoming::Event(event) = parse(&message.unwrap().unwrap()).unwrap() else {
        panic!("expected an event");
    };
    assert_eq!(event.data, json!({"price": 42}));

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
    let server = OpServer::start_with(options).await.unwrap();
    let credentials = Credentials::new("my-key", "my-secret");
    let (client, _messages) = connect(&server, Some(credentials), Duration::from_secs(20)).await;
    assert!(wait_until(|| server.is_authenticated(0), TIMEOUT).await);
    client.close().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_stop_the_client() {
    let options = SimOptions::default().with_credentials("my-key", "my-secret");
    let server = OpServer::start_with(options).await.unwrap();
    let config = GenGoldenGenericClient::config(server.url())
        .build()
        .unwrap();
    let credentials = Credentials::new("my-key", "wrong");
    let (client, _messages) = GenGoldenGenericClient::connect(config, Some(credentials));
    let stopped = tokio::time::timeout(TIMEOUT, client.inner().stopped()).await;
    let StopReason::Policy(reason) = stopped.unwrap() else {
        panic!("expected a stop by policy");
    };
    assert!(reason.contains("invalid credentials"), "{reason}");
}

#[tokio::test]
async fn pings_the_server() {
    let server = OpServer::start().await.unwrap();
    let (client, _messages) = connect(&server, None, Duration::from_millis(50)).await;
    let ping = server.wait_for_request("ping", TIMEOUT).await;
    assert!(ping.is_some(), "the client did not ping");
    client.close().await.unwrap();
}
