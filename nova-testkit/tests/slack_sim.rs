//! The Socket Mode simulator, driven by raw HTTP requests and bare tokio-tungstenite clients.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nova_testkit::slack::{
    Disconnect, EnvelopeKind, EnvelopeSpec, RetryIds, SlackSim, SlackSimOptions, TEST_APP_TOKEN,
    connections_open,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(5);

type Handshake = Result<
    (
        WebSocketStream<TcpStream>,
        tungstenite::handshake::client::Response,
    ),
    tungstenite::Error,
>;

/// A plain `ws://HOST:PORT/...` connection.
async fn ws_connect(url: &str) -> Handshake {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let tcp = TcpStream::connect(authority).await.unwrap();
    tokio_tungstenite::client_async(url, tcp).await
}

struct Client {
    ws: WebSocketStream<TcpStream>,
    hello: Value,
}

/// What a client read next.
#[derive(Debug)]
enum Read {
    Json(Value),
    Closed(Option<u16>),
    Failed,
}

impl Client {
    /// `apps.connections.open`, then the WebSocket, then `hello`.
    async fn open(sim: &SlackSim) -> Self {
        let reply = connections_open(sim.addr(), Some(TEST_APP_TOKEN))
            .await
            .unwrap();
        Self::connect(reply.url().unwrap()).await
    }

    async fn connect(url: &str) -> Self {
        let (ws, _) = ws_connect(url).await.unwrap();
        let mut client = Self {
            ws,
            hello: Value::Null,
        };
        client.hello = client.json().await;
        assert_eq!(client.hello["type"], "hello");
        client
    }

    async fn read(&mut self) -> Read {
        loop {
            match timeout(WAIT, self.ws.next()).await.expect("read in time") {
                Some(Ok(Message::Text(text))) => {
                    return Read::Json(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Read::Closed(frame.map(|f| u16::from(f.code)));
                }
                None => return Read::Closed(None),
                Some(Err(_)) => return Read::Failed,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn json(&mut self) -> Value {
        match self.read().await {
            Read::Json(value) => value,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next envelope, skipping `disconnect` messages.
    async fn envelope(&mut self) -> Value {
        loop {
            let value = self.json().await;
            if value["type"] != "disconnect" {
                return value;
            }
        }
    }

    async fn ack(&mut self, envelope_id: &str, payload: Option<Value>) {
        let mut ack = json!({ "envelope_id": envelope_id });
        if let Some(payload) = payload {
            ack["payload"] = payload;
        }
        self.ws.send(Message::text(ack.to_string())).await.unwrap();
    }
}

#[tokio::test]
async fn open_hands_out_a_single_use_url() {
    let sim = SlackSim::start().await.unwrap();
    let reply = connections_open(sim.addr(), Some(TEST_APP_TOKEN))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["ok"], true);
    let url = reply.url().unwrap().to_owned();
    assert!(url.starts_with(&format!("ws://{}/link/?ticket=", sim.addr())));

    let client = Client::connect(&url).await;
    assert_eq!(client.hello["num_connections"], 1);
    assert_eq!(
        client.hello["debug_info"]["approximate_connection_time"],
        3600
    );
    assert_eq!(client.hello["connection_info"]["app_id"], "A0SIM");

    // The same URL a second time is refused at the handshake.
    match ws_connect(url.as_str()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let counters = sim.counters();
    assert_eq!((counters.opens, counters.connections), (1, 1));
    assert_eq!(
        (counters.refused_handshakes, counters.tickets_reused),
        (1, 1)
    );

    // A second connection is told it is the second.
    let second = Client::open(&sim).await;
    assert_eq!(second.hello["num_connections"], 2);
}

#[tokio::test]
async fn bad_or_missing_token_and_rate_limit() {
    let sim = SlackSim::start().await.unwrap();
    let bad = connections_open(sim.addr(), Some("xapp-1-wrong"))
        .await
        .unwrap();
    assert_eq!((bad.status, bad.error()), (200, Some("invalid_auth")));
    assert_eq!(bad.body["ok"], false);
    let none = connections_open(sim.addr(), None).await.unwrap();
    assert_eq!(none.error(), Some("not_authed"));

    sim.rate_limit_opens(2, Duration::from_secs(7));
    for _ in 0..2 {
        let limited = connections_open(sim.addr(), Some(TEST_APP_TOKEN))
            .await
            .unwrap();
        assert_eq!(limited.status, 429);
        assert_eq!(limited.retry_after, Some(7));
        assert_eq!(limited.error(), Some("ratelimited"));
    }
    let ok = connections_open(sim.addr(), Some(TEST_APP_TOKEN))
        .await
        .unwrap();
    assert!(ok.url().is_some());
    let counters = sim.counters();
    assert_eq!(
        (
            counters.open_failures,
            counters.rate_limited,
            counters.opens
        ),
        (2, 2, 1)
    );
}

#[tokio::test]
async fn expired_ticket_is_refused() {
    let options = SlackSimOptions::default().with_ticket_lifetime(Duration::from_millis(20));
    let sim = SlackSim::start_with(options).await.unwrap();
    let url = sim.issue_url();
    tokio::time::sleep(Duration::from_millis(200)).await;
    match ws_connect(url.as_str()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(sim.counters().tickets_expired, 1);
    // A bad path is not a WebSocket.
    let other = format!("ws://{}/elsewhere", sim.addr());
    assert!(ws_connect(other.as_str()).await.is_err());
}

#[tokio::test]
async fn the_three_envelope_types_and_acks_with_payload() {
    let sim = SlackSim::start().await.unwrap();
    let mut client = Client::open(&sim).await;
    let event = sim.push(EnvelopeSpec::events_api("<@U111> hi")).unwrap();
    let slash = sim
        .push(EnvelopeSpec::slash_command("/deploy", "prod"))
        .unwrap();
    let shortcut = sim.push(EnvelopeSpec::interactive("do-it")).unwrap();

    let e = client.json().await;
    assert_eq!(e["envelope_id"], event.as_str());
    assert_eq!(e["type"], "events_api");
    assert_eq!(e["accepts_response_payload"], false);
    assert_eq!(
        (e["retry_attempt"].as_u64(), e["retry_reason"].as_str()),
        (Some(0), Some(""))
    );
    assert_eq!(e["payload"]["type"], "event_callback");
    assert!(e["payload"]["event_id"].as_str().unwrap().starts_with("Ev"));
    assert_eq!(e["payload"]["event"]["type"], "app_mention");

    let s = client.json().await;
    assert_eq!(
        (s["envelope_id"].as_str(), s["type"].as_str()),
        (Some(slash.as_str()), Some("slash_commands"))
    );
    assert_eq!(s["accepts_response_payload"], true);
    assert_eq!(s["payload"]["command"], "/deploy");
    assert!(s.get("retry_attempt").is_none());

    let i = client.json().await;
    assert_eq!(
        (i["envelope_id"].as_str(), i["type"].as_str()),
        (Some(shortcut.as_str()), Some("interactive"))
    );
    assert_eq!(i["payload"]["callback_id"], "do-it");

    client.ack(&event, None).await;
    client.ack(&slash, Some(json!({"text": "deployed"}))).await;
    client.ack(&shortcut, None).await;
    client.ack("not-an-envelope", None).await;
    client
        .ws
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    assert!(
        sim.wait_for(WAIT, |c| c.acks_received == 4 && c.other_messages == 1)
            .await
    );

    assert_eq!(
        sim.record(&slash).unwrap().ack_payload,
        Some(json!({"text": "deployed"}))
    );
    assert!(sim.unacked().is_empty());
    let counters = sim.counters();
    assert_eq!(
        (
            counters.envelopes_sent,
            counters.unknown_acks,
            counters.duplicate_acks
        ),
        (3, 1, 0)
    );
    assert_eq!(sim.open_connections()[0].acks_received, 4);
    assert_eq!(sim.unfinished(), 0);
}

#[tokio::test]
async fn an_unacked_envelope_is_redelivered_with_retry_attempt() {
    let options = SlackSimOptions::default().with_ack_deadline(Duration::from_millis(500));
    let sim = SlackSim::start_with(options).await.unwrap();
    let mut client = Client::open(&sim).await;
    let id = sim.push(EnvelopeSpec::events_api("hi")).unwrap();
    let first = client.json().await;
    assert_eq!(first["retry_attempt"], 0);
    // Not acked: it comes again.
    let again = client.json().await;
    assert_eq!(again["envelope_id"], id.as_str());
    assert_eq!(again["retry_attempt"], 1);
    assert_eq!(again["retry_reason"], "timeout");
    assert_eq!(again["payload"]["event_id"], first["payload"]["event_id"]);
    client.ack(&id, None).await;
    // A second ack of the same envelope is counted as a duplicate.
    client.ack(&id, None).await;
    assert!(sim.wait_for(WAIT, |c| c.acks_received == 2).await);
    let record = sim.record(&id).unwrap();
    assert_eq!((record.deliveries, record.acks, record.acked), (2, 2, true));
    assert_eq!(sim.acks_of(&id), 2);
    assert_eq!(sim.acked_more_than_once().len(), 1);
    let counters = sim.counters();
    assert_eq!((counters.redeliveries, counters.duplicate_acks), (1, 1));
}

#[tokio::test]
async fn redeliveries_with_new_envelope_ids_keep_the_event_id_and_give_up() {
    let options = SlackSimOptions::default()
        .with_ack_deadline(Duration::from_millis(100))
        .with_retry_ids(RetryIds::NewEnvelopeId)
        .with_max_redeliveries(2);
    let sim = SlackSim::start_with(options).await.unwrap();
    let mut client = Client::open(&sim).await;
    let id = sim
        .push(EnvelopeSpec::events_api_with_id("Ev42", "hi"))
        .unwrap();
    let mut seen = Vec::new();
    for attempt in 0..3 {
        let e = client.json().await;
        assert_eq!(e["retry_attempt"], attempt);
        assert_eq!(e["payload"]["event_id"], "Ev42");
        seen.push(e["envelope_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen[0], id);
    assert!(seen[0] != seen[1] && seen[1] != seen[2]);
    assert!(sim.wait_for(WAIT, |c| c.given_up == 1).await);
    let record = sim.record(&seen[2]).unwrap();
    assert!(record.given_up && !record.acked);
    assert_eq!(record.envelope_ids, seen);
    assert_eq!(record.event_id.as_deref(), Some("Ev42"));
    assert_eq!(sim.unacked().len(), 1);
}

#[tokio::test]
async fn an_envelope_lost_with_its_connection_goes_to_the_next_one() {
    let options = SlackSimOptions::default().with_ack_deadline(Duration::from_millis(500));
    let sim = SlackSim::start_with(options).await.unwrap();
    let mut first = Client::open(&sim).await;
    let id = sim.push(EnvelopeSpec::slash_command("/x", "")).unwrap();
    assert_eq!(first.json().await["envelope_id"], id.as_str());
    first.ws.close(None).await.unwrap();
    drop(first);
    assert!(sim.wait_for_open_connections(0, WAIT).await);

    let mut second = Client::open(&sim).await;
    let e = second.json().await;
    assert_eq!(e["envelope_id"], id.as_str());
    second.ack(&id, None).await;
    assert!(sim.wait_for(WAIT, |c| c.acks_received == 1).await);
    let record = sim.record(&id).unwrap();
    assert_eq!(record.connections, vec![0, 1]);
    assert!(record.acked);
}

#[tokio::test]
async fn refresh_cycle_warns_requests_and_closes_after_the_overlap() {
    let options = SlackSimOptions::default()
        .with_refresh_after(Some(Duration::from_secs(1)))
        .with_warning_before_refresh(Some(Duration::from_millis(500)))
        .with_overlap(Duration::from_millis(1500));
    let sim = SlackSim::start_with(options).await.unwrap();
    let mut old = Client::open(&sim).await;
    let warning = old.json().await;
    assert_eq!(
        (warning["type"].as_str(), warning["reason"].as_str()),
        (Some("disconnect"), Some("warning"))
    );
    let refresh = old.json().await;
    assert_eq!(refresh["reason"], "refresh_requested");

    // Make before break: the new connection is up while the old one is still open, and new
    // envelopes go to the new one.
    let mut new = Client::open(&sim).await;
    assert_eq!(new.hello["num_connections"], 2);
    let id = sim.push(EnvelopeSpec::interactive("cb")).unwrap();
    assert_eq!(new.envelope().await["envelope_id"], id.as_str());
    // The old one is closed after the overlap, with code 1000.
    match old.read().await {
        Read::Closed(code) => assert_eq!(code, Some(1000)),
        other => panic!("expected the close, got {other:?}"),
    }
    new.ack(&id, None).await;
    assert!(sim.wait_for(WAIT, |c| c.acks_received == 1).await);
    let counters = sim.counters();
    assert!(counters.warnings_sent >= 1 && counters.refreshes_requested >= 1);
}

#[tokio::test]
async fn disconnects_on_demand() {
    let options = SlackSimOptions::default().with_overlap(Duration::from_secs(1));
    let sim = SlackSim::start_with(options).await.unwrap();
    let mut a = Client::open(&sim).await;
    let id = sim.open_connections()[0].id;
    assert!(sim.disconnect(id, Disconnect::Warning));
    assert_eq!(a.json().await["reason"], "warning");
    // Both open during the overlap.
    let mut b = Client::open(&sim).await;
    assert!(
        sim.open_connections()
            .iter()
            .any(|c| c.id == id && c.draining)
    );
    assert_eq!(sim.open_connections().len(), 2);
    assert!(matches!(a.read().await, Read::Closed(Some(1000))));

    assert_eq!(sim.disconnect_all(Disconnect::LinkDisabled), 1);
    assert_eq!(b.json().await["reason"], "link_disabled");
    assert!(matches!(b.read().await, Read::Closed(Some(1000))));
    assert!(sim.wait_for_open_connections(0, WAIT).await);
    assert_eq!(sim.counters().links_disabled, 1);
}

#[tokio::test]
async fn at_most_max_connections() {
    let options = SlackSimOptions::default().with_max_connections(2);
    let sim = SlackSim::start_with(options).await.unwrap();
    let _a = Client::open(&sim).await;
    let _b = Client::open(&sim).await;
    let url = connections_open(sim.addr(), Some(TEST_APP_TOKEN))
        .await
        .unwrap();
    let (mut c, _) = ws_connect(url.url().unwrap()).await.unwrap();
    let text = c.next().await.unwrap().unwrap();
    let v: Value = serde_json::from_str(text.to_text().unwrap()).unwrap();
    assert_eq!(v["reason"], "too_many_websockets");
    assert_eq!(sim.counters().too_many_websockets, 1);
    assert_eq!(sim.open_connections().len(), 2);
}

#[tokio::test]
async fn faults_reset_close_and_silence() {
    let options = SlackSimOptions::default().with_ack_deadline(Duration::from_millis(200));
    let sim = SlackSim::start_with(options).await.unwrap();

    let mut a = Client::open(&sim).await;
    sim.drop_all().await;
    assert!(matches!(a.read().await, Read::Failed | Read::Closed(None)));

    let mut b = Client::open(&sim).await;
    sim.close_all(4000, "bye").await;
    assert!(matches!(b.read().await, Read::Closed(Some(4000))));

    // Silent: what is sent meanwhile is lost, and redelivered once the sim speaks again.
    let mut c = Client::open(&sim).await;
    sim.set_silent(true);
    let id = sim.push(EnvelopeSpec::events_api("lost")).unwrap();
    assert!(sim.wait_for(WAIT, |c| c.lost_while_silent == 1).await);
    sim.set_silent(false);
    let e = c.json().await;
    assert_eq!(
        (e["envelope_id"].as_str(), e["retry_attempt"].as_u64()),
        (Some(id.as_str()), Some(1))
    );
}

#[tokio::test]
async fn the_tick_pushes_envelopes_of_every_kind() {
    let options = SlackSimOptions::default()
        .with_envelope_interval(Some(Duration::from_millis(20)))
        .with_tick_kinds(vec![EnvelopeKind::SlashCommands, EnvelopeKind::EventsApi]);
    let sim = SlackSim::start_with(options).await.unwrap();
    let mut client = Client::open(&sim).await;
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let e = client.json().await;
        kinds.push(e["type"].as_str().unwrap().to_owned());
        client.ack(e["envelope_id"].as_str().unwrap(), None).await;
    }
    assert!(kinds.iter().any(|k| k == "slash_commands"));
    assert!(kinds.iter().any(|k| k == "events_api"));
    assert!(sim.wait_for(WAIT, |c| c.acks_received == 4).await);
}

#[tokio::test]
async fn tokens_stay_out_of_debug() {
    let options = SlackSimOptions::default();
    assert!(!format!("{options:?}").contains(TEST_APP_TOKEN));
}
