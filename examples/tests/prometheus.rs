//! Runs the Prometheus example against the simulator and scrapes `/metrics` for the series the
//! dashboard shows.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use nova_examples::prometheus::{Options, install, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: SocketAddr) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_serves_every_series_of_the_dashboard() {
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    install(listen).unwrap();
    let options = Options {
        listen,
        run_for: Duration::from_secs(4),
        drop_every: Duration::from_secs(1),
    };
    let summary = run(&options).await.unwrap();
    assert!(summary.contains("reconnects"), "{summary}");

    let metrics = scrape(listen).await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for series in [
        "nova_connections_started_total{client_id=\"prometheus-example\"}",
        "nova_connection_up{client_id=\"prometheus-example\"}",
        "nova_connection_duration_seconds",
        "nova_disconnects_total{client_id=\"prometheus-example\",reason=\"closed_by_peer\"}",
        "nova_reconnections_started_total{client_id=\"prometheus-example\"}",
        "nova_reconnection_duration_seconds",
        "nova_messages_received_total{client_id=\"prometheus-example\",type=\"subscription\"}",
        "nova_messages_sent_total{client_id=\"prometheus-example\",type=\"subscribe\"}",
        "nova_message_received_bytes",
        "nova_subscription_duration_seconds",
        "nova_subscriptions_restored_total{client_id=\"prometheus-example\",channel=\"ticker.BTC-PERPETUAL.100ms\"}",
        "nova_heartbeat_rtt_seconds",
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
    // Every series the dashboard queries exists.
    let dashboard = include_str!("../grafana/nova-dashboard.json");
    let v: serde_json::Value = serde_json::from_str(dashboard).unwrap();
    let panels = v["panels"].as_array().unwrap();
    assert!(panels.len() >= 7);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let name = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|w| w.starts_with("nova_"))
                .unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            // These appear once their event has happened, which this run does not provoke.
            let rare = [
                "nova_rate_limit_wait_seconds",
                "nova_gaps_total",
                "nova_gaps_recovered_total",
                "nova_subscription_restore_failures_total",
                "nova_errors_total",
            ];
            let known = metrics.contains(base) || rare.contains(&base);
            assert!(
                known,
                "panel {} queries {name}, which nova does not export",
                panel["title"]
            );
        }
    }
}
