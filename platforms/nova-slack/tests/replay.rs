//! A recorded Socket Mode session replayed against the real adapter on nova's runtime:
//! `hello`, an Events API envelope and a slash command (each acknowledged, the command with a
//! response payload), then Slack's `refresh_requested`: the client opens a second connection
//! before the first one goes (make-before-break), and the envelope that arrives on the new
//! connection is handled and acknowledged there.
//!
//! The fixture (`tests/fixtures/envelopes_and_refresh.jsonl`) was recorded through
//! `nova_testkit::replay::Relay` in front of the Socket Mode simulator; the ticket in each URL
//! is redacted. On replay no `apps.connections.open` is needed: the endpoint source returns the
//! replay server's URL. Record it again with `NOVA_RECORD=1 cargo test -p nova-slack --test
//! replay`, then review and commit the file.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova_core::{EndpointError, EndpointRequest, HandlerError, Secret};
use nova_slack::{Ack, Envelope, EnvelopeType, SlackApp, SlackOptions, SocketModeApi};
use nova_testkit::replay::{Matcher, Relay, RelayOptions, ReplayOptions, ReplayServer};
use nova_testkit::slack::{Disconnect, EnvelopeSpec, SlackHandle, SlackSim, TEST_APP_TOKEN};

const WAIT: Duration = Duration::from_secs(10);
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/envelopes_and_refresh.jsonl"
);

/// What the application was handed: `(type, command or event text)`.
type Handled = Arc<Mutex<Vec<(EnvelopeType, String)>>>;

#[derive(Clone, Default)]
struct App {
    handled: Handled,
}

impl SlackApp for App {
    fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
        let payload: serde_json::Value = serde_json::from_str(envelope.payload_json()).unwrap();
        let what = payload
            .get("command")
            .or_else(|| payload.pointer("/event/text"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        self.handled
            .lock()
            .unwrap()
            .push((envelope.kind.clone(), what));
        if envelope.accepts_response_payload {
            return Ok(envelope.ack().with_text("deployed"));
        }
        Ok(envelope.ack())
    }
}

async fn handled_at_least(handled: &Handled, n: usize) {
    assert!(
        nova_testkit::wait_until(|| handled.lock().unwrap().len() >= n, WAIT).await,
        "handled: {:?}",
        handled.lock().unwrap()
    );
}

/// Where the session runs: against the simulator (recording: the test pushes the envelopes
/// and asks for the refresh) or the replay server.
enum Against<'a> {
    Sim(&'a SlackHandle),
    Replay(&'a ReplayServer),
}

/// The application; `endpoint` gives each connection's URL.
async fn session<F>(endpoint: F, against: Against<'_>) -> Vec<(EnvelopeType, String)>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let sim = match against {
        Against::Sim(sim) => Some(sim),
        Against::Replay(_) => None,
    };
    let api = SocketModeApi::builder(Secret::new(TEST_APP_TOKEN))
        .api_url("http://127.0.0.1:9/api") // never called: the endpoint source replaces it
        .build()
        .unwrap();
    let endpoint = Arc::new(endpoint);
    let config = nova_slack::config(api)
        .endpoint_source(move |_: EndpointRequest| {
            let url = endpoint();
            async move { Ok::<_, EndpointError>(url) }
        })
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        // The old connection goes soon after the handover, not 10 s later.
        .handover_drain(Duration::from_millis(100))
        .build()
        .unwrap();
    let app = App::default();
    let handled = app.handled.clone();
    let (client, _messages) = nova_slack::connect(config, app, SlackOptions::default());
    if let Some(sim) = sim {
        assert!(nova_testkit::wait_until(|| !sim.open_connections().is_empty(), WAIT).await);
        sim.push(EnvelopeSpec::events_api("mention one")).unwrap();
        sim.push(EnvelopeSpec::slash_command("/deploy", "prod"))
            .unwrap();
    }
    handled_at_least(&handled, 2).await;
    if let Some(sim) = sim {
        assert!(nova_testkit::wait_until(|| sim.unacked().is_empty(), WAIT).await);
        sim.disconnect_all(Disconnect::RefreshRequested);
        // The new connection is up when the simulator sees two; push on it after the handover.
        assert!(nova_testkit::wait_until(|| sim.connections().len() >= 2, WAIT).await);
        assert!(nova_testkit::wait_until(|| sim.open_connections().len() == 1, WAIT).await);
        sim.push(EnvelopeSpec::events_api("mention two")).unwrap();
    }
    handled_at_least(&handled, 3).await;
    match against {
        Against::Sim(sim) => {
            assert!(nova_testkit::wait_until(|| sim.unacked().is_empty(), WAIT).await);
        }
        // The old connection is closed after the drain, as recorded, before the client stops.
        Against::Replay(server) => assert!(server.wait_ended(1, WAIT).await),
    }
    client.close(1000, "done").await.unwrap();
    handled.lock().unwrap().clone()
}

async fn record() {
    let sim = SlackSim::start().await.unwrap();
    let handle = sim.handle();
    let relay = Relay::start(
        &format!("ws://{}", handle.addr()),
        RelayOptions::default().note("nova-slack tests/replay.rs: NOVA_RECORD=1 records it again"),
    )
    .await
    .unwrap();
    // Each connection's ticket URL, pointed at the relay (which forwards the path and ticket).
    let sim_base = format!("ws://{}", handle.addr());
    let relay_base = relay.url();
    let tickets = handle.clone();
    session(
        move || tickets.issue_url().replace(&sim_base, &relay_base),
        Against::Sim(&handle),
    )
    .await;
    relay.finish(WAIT).await.save(FIXTURE).unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_refresh_with_envelopes_replays() {
    if std::env::var_os("NOVA_RECORD").is_some() {
        record().await;
    }
    let server = ReplayServer::load(FIXTURE, ReplayOptions::default().matcher(Matcher::json()))
        .await
        .unwrap();
    let url = format!("{}/link/", server.url());
    let handled = session(move || url.clone(), Against::Replay(&server)).await;
    let report = server.finish(WAIT).await;
    report.assert_ok();
    assert_eq!(
        report.recorded, 2,
        "the first connection and the one after the refresh"
    );

    assert_eq!(
        handled,
        vec![
            (EnvelopeType::EventsApi, "mention one".to_owned()),
            (EnvelopeType::SlashCommands, "/deploy".to_owned()),
            (EnvelopeType::EventsApi, "mention two".to_owned()),
        ]
    );
}
