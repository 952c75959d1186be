//! The adapter on nova's runtime against the Socket Mode simulator, over real sockets: refresh
//! cycles and forced drops with every envelope acknowledged and none handled twice; a handover
//! whose connections overlap; a redelivery acknowledged but not handled again; spent and
//! expired URLs answered by asking for a new one; `link_disabled` stopping the client; a
//! refused token stopping it too.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova_core::{
    Client, EndpointError, EndpointRequest, HandlerError, LifecycleEvent, Secret, StopReason,
};
use nova_slack::{Ack, Envelope, SlackApp, SlackOptions, SocketModeApi};
use nova_testkit::slack::{
    Disconnect, EnvelopeSpec, RetryIds, SlackHandle, SlackSim, SlackSimOptions, TEST_APP_TOKEN,
};

const LONG: Duration = Duration::from_secs(30);

/// Records every envelope handed to it (by event id when there is one, else envelope id), and
/// answers slash commands.
#[derive(Clone, Default)]
struct Recorder {
    handled: Arc<Mutex<Vec<String>>>,
    /// Envelope ids whose callback takes longer than the ack deadline (once).
    slow: Arc<Mutex<BTreeSet<String>>>,
    slow_for: Duration,
}

impl SlackApp for Recorder {
    fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
        let key = envelope
            .event_id
            .clone()
            .unwrap_or_else(|| envelope.envelope_id.clone());
        if self.slow.lock().unwrap().remove(&envelope.envelope_id) {
            // A slow application; the simulator's tasks move to the other worker meanwhile.
            tokio::task::block_in_place(|| std::thread::sleep(self.slow_for));
        }
        self.handled.lock().unwrap().push(key);
        if envelope.accepts_response_payload {
            return Ok(envelope.ack().with_text("done"));
        }
        Ok(envelope.ack())
    }
}

fn api(sim: &SlackHandle) -> SocketModeApi {
    SocketModeApi::builder(Secret::new(TEST_APP_TOKEN))
        .api_url(sim.api_url())
        .build()
        .unwrap()
}

fn client(sim: &SlackHandle, app: Recorder) -> (Client, nova_core::Messages) {
    let config = nova_slack::config(api(sim))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .unwrap();
    nova_slack::connect(config, app, SlackOptions::default())
}

/// The key each record is handled under.
fn key(record: &nova_testkit::slack::EnvelopeRecord) -> String {
    record
        .event_id
        .clone()
        .unwrap_or_else(|| record.envelope_id.clone())
}

/// Pushes envelopes of every type every 10 ms until `stop`.
fn pusher(sim: SlackHandle, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut n = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let spec = match n % 3 {
                0 => EnvelopeSpec::events_api(&format!("mention {n}")),
                1 => EnvelopeSpec::slash_command("/deploy", &format!("{n}")),
                _ => EnvelopeSpec::events_api(&format!("again {n}")),
            };
            if sim.push(spec).is_some() {
                n += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        n
    })
}

/// Every pushed envelope acknowledged, none given up, and each handed to the application
/// exactly once.
async fn assert_exactly_once(sim: &SlackHandle, handled: &Arc<Mutex<Vec<String>>>) {
    assert!(
        nova_testkit::wait_until(|| sim.unacked().is_empty(), LONG).await,
        "unacknowledged: {:?}",
        sim.unacked().len()
    );
    let records = sim.records();
    assert!(records.iter().all(|r| r.acked && !r.given_up));
    let handled = handled.lock().unwrap().clone();
    let unique: BTreeSet<&String> = handled.iter().collect();
    assert_eq!(unique.len(), handled.len(), "an envelope was handled twice");
    let expected: BTreeSet<String> = records.iter().map(key).collect();
    let got: BTreeSet<String> = handled.into_iter().collect();
    assert_eq!(got, expected, "every envelope handled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_cycles_and_drops_leave_nothing_unacked_and_nothing_handled_twice() {
    let options = SlackSimOptions::default()
        .with_refresh_after(Some(Duration::from_millis(1500)))
        .with_warning_before_refresh(Some(Duration::from_millis(300)))
        .with_overlap(Duration::from_millis(600))
        .with_ack_deadline(Duration::from_millis(800));
    let sim = SlackSim::start_with(options).await.unwrap();
    let handle = sim.handle();
    let app = Recorder::default();
    let handled = app.handled.clone();
    let (client, mut messages) = client(&handle, app);
    // Lifecycle events counted as they come (the event ring is short).
    let (handovers, disconnects) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut events = client.events();
    let counting = {
        let (handovers, disconnects) = (handovers.clone(), disconnects.clone());
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(LifecycleEvent::HandoverCompleted { .. }) => {
                        handovers.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(LifecycleEvent::Disconnected { .. }) => {
                        disconnects.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let pushing = pusher(handle.clone(), stop.clone());

    // Three refresh cycles (each a warning, then refresh_requested, then the close), each a
    // completed handover.
    assert!(handle.wait_for(LONG, |c| c.refreshes_requested >= 3).await);
    assert!(nova_testkit::wait_until(|| handovers.load(Ordering::SeqCst) >= 3, LONG).await);
    // Three forced drops (TCP resets), each followed by a fresh ticket and a hello.
    for _ in 0..3 {
        let hellos = handle.counters().hellos;
        handle.drop_all().await;
        assert!(handle.wait_for(LONG, |c| c.hellos > hellos).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let pushed = pushing.await.unwrap();
    assert!(pushed > 100, "{pushed}");
    assert_exactly_once(&handle, &handled).await;
    let counters = handle.counters();
    assert_eq!(counters.tickets_reused, 0, "a URL is never used twice");
    assert!(counters.redeliveries > 0 || counters.duplicate_acks == 0);

    // The application got each envelope on Messages too, exactly once.
    let mut delivered = 0;
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_millis(100), messages.recv()).await
    {
        delivered += 1;
    }
    assert_eq!(delivered, handled.lock().unwrap().len());

    // The refreshes were handovers (completed), the drops reconnects.
    client.close(1000, "done").await.unwrap();
    drop(client);
    let _ = tokio::time::timeout(LONG, counting).await;
    assert_eq!(
        disconnects.load(Ordering::SeqCst),
        3,
        "only the forced drops disconnected the client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_opens_the_next_connection_before_the_old_one_closes() {
    let options = SlackSimOptions::default().with_overlap(Duration::from_secs(1));
    let sim = SlackSim::start_with(options).await.unwrap();
    let handle = sim.handle();
    let app = Recorder::default();
    let handled = app.handled.clone();
    let (client, _messages) = client(&handle, app);
    let mut events = client.events();
    assert!(handle.wait_for(LONG, |c| c.hellos == 1).await);
    let first = handle.open_connections()[0].id;
    assert!(handle.disconnect(first, Disconnect::Warning));
    // Both open at once: the next one greeted while the first still stands.
    assert!(handle.wait_for(LONG, |c| c.hellos == 2).await);
    let open: Vec<u64> = handle.open_connections().iter().map(|c| c.id).collect();
    assert!(open.contains(&first) && open.len() == 2, "{open:?}");
    // Envelopes during the overlap reach the application once.
    for n in 0..20 {
        handle.push(EnvelopeSpec::events_api(&format!("overlap {n}")));
    }
    let overlap = loop {
        match tokio::time::timeout(LONG, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            LifecycleEvent::HandoverCompleted { overlap } => break overlap,
            LifecycleEvent::Disconnected { reason, .. } => panic!("disconnected: {reason}"),
            _ => {}
        }
    };
    assert!(overlap >= Duration::from_millis(500), "{overlap:?}");
    assert_exactly_once(&handle, &handled).await;
    assert_eq!(
        handle.counters().connections,
        2,
        "no reconnect, one handover"
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_acknowledged_and_not_handled_again() {
    for retry_ids in [RetryIds::SameEnvelopeId, RetryIds::NewEnvelopeId] {
        let options = SlackSimOptions::default()
            .with_ack_deadline(Duration::from_millis(300))
            .with_retry_ids(retry_ids);
        let sim = SlackSim::start_with(options).await.unwrap();
        let handle = sim.handle();
        let app = Recorder {
            slow_for: Duration::from_millis(800),
            ..Recorder::default()
        };
        let (handled, slow) = (app.handled.clone(), app.slow.clone());
        let (client, _messages) = client(&handle, app);
        assert!(handle.wait_for(LONG, |c| c.hellos == 1).await);
        // The application takes longer than the deadline: Slack sends it again meanwhile.
        let id = {
            let mut slow = slow.lock().unwrap();
            let id = handle.push(EnvelopeSpec::events_api("slow")).unwrap();
            slow.insert(id.clone());
            id
        };
        assert!(handle.wait_for(LONG, |c| c.redeliveries >= 1).await);
        assert!(nova_testkit::wait_until(|| handle.unacked().is_empty(), LONG).await);
        let record = handle.record(&id).unwrap();
        assert!(record.deliveries >= 2, "{record:?}");
        assert!(record.acked && !record.given_up);
        assert_eq!(
            handled.lock().unwrap().len(),
            1,
            "{retry_ids:?}: handled once"
        );
        client.close(1000, "done").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_or_expired_url_is_answered_by_asking_for_a_new_one() {
    let options = SlackSimOptions::default().with_ticket_lifetime(Duration::from_millis(200));
    let sim = SlackSim::start_with(options).await.unwrap();
    let handle = sim.handle();
    let spent = handle.issue_url();
    let expired = handle.issue_url();
    // Spend the first ticket.
    {
        let tcp = tokio::net::TcpStream::connect(handle.addr()).await.unwrap();
        let _ = tokio_tungstenite::client_async(spent.clone(), tcp)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the second expires
    // A source that hands out the spent URL, then the expired one, then asks Slack.
    let slack = api(&handle);
    let calls = Arc::new(AtomicU32::new(0));
    let source = {
        let calls = calls.clone();
        move |_request: EndpointRequest| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let (api, spent, expired) = (slack.clone(), spent.clone(), expired.clone());
            async move {
                match n {
                    0 => Ok(spent),
                    1 => Ok(expired),
                    _ => api
                        .open_connection()
                        .await
                        .map(String::from)
                        .map_err(|e| EndpointError::retry(e.to_string())),
                }
            }
        }
    };
    let config = nova_slack::config(api(&handle))
        .endpoint_source(source)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .unwrap();
    let (client, _messages) =
        nova_slack::connect(config, Recorder::default(), SlackOptions::default());
    assert!(handle.wait_for(LONG, |c| c.hellos >= 2).await);
    let counters = handle.counters();
    assert_eq!(counters.tickets_reused, 1);
    assert_eq!(counters.tickets_expired, 1);
    assert!(calls.load(Ordering::SeqCst) >= 3);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_disabled_stops_the_client() {
    let sim = SlackSim::start().await.unwrap();
    let handle = sim.handle();
    let (client, _messages) = client(&handle, Recorder::default());
    assert!(handle.wait_for(LONG, |c| c.hellos == 1).await);
    handle.disconnect_all(Disconnect::LinkDisabled);
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert_eq!(
        reason,
        StopReason::Policy("slack: link_disabled".to_owned())
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        handle.counters().opens,
        1,
        "no new URL asked after the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_client_without_a_socket() {
    let sim = SlackSim::start().await.unwrap();
    let handle = sim.handle();
    let api = SocketModeApi::builder(Secret::new("xapp-1-wrong"))
        .api_url(handle.api_url())
        .build()
        .unwrap();
    let config = nova_slack::config(api).build().unwrap();
    let (client, _messages) =
        nova_slack::connect(config, Recorder::default(), SlackOptions::default());
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert!(
        matches!(&reason, StopReason::Fatal(why) if why.contains("invalid_auth")),
        "{reason:?}"
    );
    assert_eq!(handle.counters().connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_open_waits_its_retry_after() {
    let sim = SlackSim::start().await.unwrap();
    let handle = sim.handle();
    handle.rate_limit_opens(1, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let (client, _messages) = client(&handle, Recorder::default());
    assert!(handle.wait_for(LONG, |c| c.hellos == 1).await);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(handle.counters().rate_limited, 1);
    client.close(1000, "done").await.unwrap();
}
