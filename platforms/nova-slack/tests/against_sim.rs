//! The protocol pieces against nova-testkit's Socket Mode simulator: `apps.connections.open`
//! through `SocketModeApi`, then a bare WebSocket whose frames are parsed with `Inbound` and
//! answered with `Ack`, de-duplicated with `DedupWindow`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nova_core::Secret;
use nova_slack::{
    DedupWindow, DisconnectAction, DisconnectReason, DuplicateBy, Envelope, EnvelopeType, Inbound,
    OpenError, SocketModeApi, Verdict,
};
use nova_testkit::slack::{
    Disconnect, EnvelopeSpec, RetryIds, SlackSim, SlackSimOptions, TEST_APP_TOKEN,
};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

fn api(sim: &SlackSim, token: &str) -> SocketModeApi {
    SocketModeApi::builder(Secret::new(token))
        .api_url(sim.api_url())
        .build()
        .unwrap()
}

async fn connect(url: &url::Url) -> Result<WebSocketStream<TcpStream>, String> {
    let addr = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

async fn next(ws: &mut WebSocketStream<TcpStream>) -> Inbound {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            return Inbound::parse(text.as_str()).unwrap();
        }
    }
}

async fn envelope(ws: &mut WebSocketStream<TcpStream>) -> Envelope {
    match next(ws).await {
        Inbound::Envelope(e) => e,
        other => panic!("expected an envelope, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connect_hello_envelopes_and_acks() {
    let sim = SlackSim::start().await.unwrap();
    let url = api(&sim, TEST_APP_TOKEN).open_connection().await.unwrap();
    assert_eq!(url.scheme(), "ws");
    assert!(url.query_pairs().any(|(k, _)| k == "ticket"));

    let mut ws = connect(&url).await.unwrap();
    let Inbound::Hello(hello) = next(&mut ws).await else {
        panic!("hello first")
    };
    assert_eq!(hello.num_connections, Some(1));
    assert_eq!(
        hello.debug_info.approximate_connection_time,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(hello.app_id.as_deref(), Some("A0SIM"));

    // The URL was single-use: the runtime has to ask for a new one.
    assert!(connect(&url).await.is_err());

    let event = sim.push(EnvelopeSpec::events_api("hi")).unwrap();
    let slash = sim.push(EnvelopeSpec::slash_command("/hello", "")).unwrap();
    let e = envelope(&mut ws).await;
    assert_eq!(
        (e.envelope_id.as_str(), &e.kind),
        (event.as_str(), &EnvelopeType::EventsApi)
    );
    assert!(e.event_id.as_deref().unwrap().starts_with("Ev"));
    ws.send(Message::text(e.ack().to_json())).await.unwrap();
    let s = envelope(&mut ws).await;
    assert_eq!(s.kind, EnvelopeType::SlashCommands);
    let ack = s.ack_with(&serde_json::json!({"text": "Hi!"})).unwrap();
    ws.send(Message::text(ack.to_json())).await.unwrap();

    assert!(sim.wait_for(WAIT, |c| c.acks_received == 2).await);
    assert_eq!(
        sim.record(&slash).unwrap().ack_payload,
        Some(serde_json::json!({"text": "Hi!"}))
    );
    assert!(sim.unacked().is_empty());
    assert!(sim.acked_more_than_once().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_recognized_and_acked_but_not_handled_again() {
    for retry_ids in [RetryIds::SameEnvelopeId, RetryIds::NewEnvelopeId] {
        let options = SlackSimOptions::default()
            .with_ack_deadline(Duration::from_millis(200))
            .with_retry_ids(retry_ids);
        let sim = SlackSim::start_with(options).await.unwrap();
        let url = api(&sim, TEST_APP_TOKEN).open_connection().await.unwrap();
        let mut ws = connect(&url).await.unwrap();
        let _hello = next(&mut ws).await;
        let mut window = DedupWindow::new(16);
        let mut handled = 0;

        sim.push(EnvelopeSpec::events_api("hi")).unwrap();
        let first = envelope(&mut ws).await;
        assert_eq!(window.observe(&first), Verdict::New);
        handled += 1;
        // Not acked before the deadline: Slack redelivers.
        let again = envelope(&mut ws).await;
        assert!(again.is_retry());
        assert_eq!(again.retry_reason.as_deref(), Some("timeout"));
        let expected = match retry_ids {
            RetryIds::SameEnvelopeId => DuplicateBy::EnvelopeId,
            _ => DuplicateBy::EventId,
        };
        assert_eq!(window.observe(&again), Verdict::Duplicate(expected));
        ws.send(Message::text(again.ack().to_json())).await.unwrap();
        assert!(sim.wait_for(WAIT, |c| c.acks_received == 1).await);
        assert_eq!(handled, 1);
        assert!(sim.unacked().is_empty(), "{retry_ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reasons_arrive_typed() {
    let sim = SlackSim::start().await.unwrap();
    let api = api(&sim, TEST_APP_TOKEN);
    let mut ws = connect(&api.open_connection().await.unwrap())
        .await
        .unwrap();
    let _hello = next(&mut ws).await;
    sim.disconnect_all(Disconnect::Warning);
    let Inbound::Disconnect(d) = next(&mut ws).await else {
        panic!("disconnect")
    };
    assert_eq!(d.reason, DisconnectReason::Warning);
    assert_eq!(d.reason.action(), DisconnectAction::Handover);

    let mut second = connect(&api.open_connection().await.unwrap())
        .await
        .unwrap();
    let Inbound::Hello(hello) = next(&mut second).await else {
        panic!("hello")
    };
    assert_eq!(hello.num_connections, Some(2));
    sim.disconnect_all(Disconnect::LinkDisabled);
    let Inbound::Disconnect(d) = next(&mut second).await else {
        panic!("disconnect")
    };
    assert_eq!(d.reason.action(), DisconnectAction::Stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_errors() {
    let sim = SlackSim::start().await.unwrap();

    let refused = api(&sim, "xapp-1-not-this-one").open_connection().await;
    let err = refused.unwrap_err();
    assert!(matches!(err, OpenError::InvalidAuth));
    assert!(err.is_fatal());
    assert!(!err.to_string().contains("xapp-1-not-this-one"));

    sim.rate_limit_opens(1, Duration::from_secs(7));
    let ok_api = api(&sim, TEST_APP_TOKEN);
    let err = ok_api.open_connection().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(!err.is_fatal());
    assert!(ok_api.open_connection().await.is_ok());
    assert!(!format!("{ok_api:?}").contains(TEST_APP_TOKEN));

    let wrong_path = SocketModeApi::builder(Secret::new(TEST_APP_TOKEN))
        .api_url(format!("http://{}/elsewhere", sim.addr()))
        .build()
        .unwrap();
    assert!(matches!(
        wrong_path.open_connection().await,
        Err(OpenError::Status { status: 404 })
    ));

    // Nothing listens there: a transport error, worth a retry.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = SocketModeApi::builder(Secret::new(TEST_APP_TOKEN))
        .api_url(format!("http://127.0.0.1:{port}/api"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = nowhere.open_connection().await.unwrap_err();
    assert!(matches!(err, OpenError::Transport(_)));
    assert!(!err.is_fatal());

    let counters = sim.counters();
    assert_eq!(
        (
            counters.opens,
            counters.open_failures,
            counters.rate_limited
        ),
        (1, 1, 1)
    );
}
