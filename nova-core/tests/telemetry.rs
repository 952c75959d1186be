//! The telemetry event catalog, recorded for one scenario against the test kit: connect,
//! subscribe, three messages, a forced drop, reconnect, resubscribe.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Rpc, config};
use nova_core::telemetry::{self, EventKind, TelemetryEvent};
use nova_core::{Client, SubscriptionEvent};
use nova_testkit::JsonRpcServer;
use serde_json::json;

const LONG: Duration = Duration::from_secs(20);

/// A readable name for each event, with the measurements that are exact.
fn name(kind: &EventKind) -> String {
    match kind {
        EventKind::ConnectionStarted { attempt } => format!("connection_started attempt={attempt}"),
        EventKind::ConnectionCompleted { .. } => "connection_completed".into(),
        EventKind::Disconnected { reason } => format!("disconnected reason={reason}"),
        EventKind::ReconnectionStarted { attempt, .. } => {
            format!("reconnection_started attempt={attempt}")
        }
        EventKind::ReconnectionCompleted { attempt, .. } => {
            format!("reconnection_completed attempt={attempt}")
        }
        EventKind::SubscriptionStarted { channel } => format!("subscription_started {channel}"),
        EventKind::SubscriptionCompleted { channel, .. } => {
            format!("subscription_completed {channel}")
        }
        EventKind::SubscriptionRestored { channel } => format!("subscription_restored {channel}"),
        EventKind::MessageReceived { message_type, .. } => {
            format!("message_received {message_type}")
        }
        EventKind::MessageSent { message_type, .. } => format!("message_sent {message_type}"),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_emits_the_catalog_in_order_with_its_measurements() {
    let sim = JsonRpcServer::start().await.unwrap();
    let events: Arc<Mutex<Vec<TelemetryEvent>>> = Arc::default();
    let id = telemetry::attach({
        let events = events.clone();
        move |e: &TelemetryEvent| {
            if &*e.client_id == "telemetry-scenario" {
                events.lock().unwrap().push(e.clone());
            }
        }
    });

    let cfg = config(sim.url())
        .name("telemetry-scenario")
        .heartbeat_interval(None)
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, Rpc::new());
    let mut stream = client.subscribe("ticker", json!({})).await.unwrap();
    for n in 0..3 {
        sim.publish("ticker", json!({"n": n})).await;
        tokio::time::timeout(LONG, stream.next_message())
            .await
            .unwrap()
            .unwrap();
    }
    sim.server()
        .next_connection()
        .await
        .close(1012, "restart")
        .await;
    assert_eq!(
        tokio::time::timeout(LONG, stream.recv()).await.unwrap(),
        Some(SubscriptionEvent::Restored)
    );
    client.close(1000, "done").await.unwrap();
    telemetry::detach(id);

    let events = events.lock().unwrap().clone();
    let names: Vec<String> = events.iter().map(|e| name(&e.kind)).collect();
    let expected = [
        "connection_started attempt=0",
        "connection_completed",
        "subscription_started ticker",
        "message_sent subscribe",
        "message_received response",
        "subscription_completed ticker",
        "message_received subscription",
        "message_received subscription",
        "message_received subscription",
        "disconnected reason=closed_by_peer",
        "reconnection_started attempt=1",
        "connection_started attempt=1",
        "connection_completed",
        "reconnection_completed attempt=1",
        "subscription_started ticker",
        "message_sent subscribe",
        "message_received response",
        "subscription_completed ticker",
        "subscription_restored ticker",
    ];
    assert_eq!(names, expected);

    // Measurements: sizes are the real sizes, durations are positive, the reconnect waited.
    for e in &events {
        match &e.kind {
            EventKind::MessageReceived { size, .. } | EventKind::MessageSent { size, .. } => {
                assert!(*size > 20, "{e:?}");
            }
            EventKind::ConnectionCompleted { duration }
            | EventKind::SubscriptionCompleted { duration, .. } => {
                assert!(*duration > Duration::ZERO && *duration < LONG, "{e:?}");
            }
            EventKind::ReconnectionStarted { delay, .. } => {
                assert_eq!(*delay, Duration::from_millis(20))
            }
            EventKind::ReconnectionCompleted { duration, .. } => {
                assert!(*duration >= Duration::from_millis(20))
            }
            _ => {}
        }
    }
    let notification = events.iter().find_map(|e| match &e.kind {
        EventKind::MessageReceived {
            message_type: "subscription",
            size,
        } => Some(*size),
        _ => None,
    });
    let expected_size = json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "ticker", "data": {"n": 0}}})
        .to_string()
        .len();
    assert_eq!(notification, Some(expected_size));
    assert!(
        events
            .windows(2)
            .all(|w| w[0].system_time <= w[1].system_time)
    );
}
