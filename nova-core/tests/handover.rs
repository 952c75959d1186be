//! The runtime hooks for platforms whose connections are handed out and replaced (Slack's
//! shape), against the test kit's real WebSocket server: a URL awaited from an endpoint source
//! before every attempt (its failures through the backoff, its Retry-After honoured, a fatal one
//! stopping), a server greeting that must come in time, a make-before-break handover whose two
//! connections overlap with nothing lost, and a stop asked by a callback.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nova_core::{
    AuthHandler, Client, ClientConfig, ConnectInfo, ConnectPurpose, ConnectionHandler, Context,
    DisconnectReason, EndpointError, EndpointRequest, ErrorHandler, HandlerError, HeartbeatHandler,
    LifecycleEvent, Message, MessageHandler, RateLimitHandler, StopReason, SubscriptionHandler,
};
use nova_testkit::{TestServer, wait_until};

const LONG: Duration = Duration::from_secs(20);

/// A greeting-first protocol: `hello` opens the connection for sends, `refresh` asks for a
/// handover, `disabled` stops; anything else goes to the application.
#[derive(Default)]
struct Relay {
    purposes: Arc<Mutex<Vec<ConnectPurpose>>>,
}

impl ConnectionHandler for Relay {
    fn handle_connect(
        &mut self,
        info: &ConnectInfo,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        self.purposes.lock().unwrap().push(info.purpose);
        Ok(())
    }
}

impl MessageHandler for Relay {
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        match message.as_text() {
            Some("hello") => ctx.begin_authentication(),
            Some("refresh") => ctx.request_handover("refresh asked"),
            Some("disabled") => ctx.request_stop("link disabled"),
            _ => ctx.deliver(message),
        }
        Ok(())
    }
}

impl AuthHandler for Relay {
    fn authenticates_on_connect(&self) -> bool {
        false
    }
}
impl HeartbeatHandler for Relay {}
impl SubscriptionHandler for Relay {}
impl ErrorHandler for Relay {}
impl RateLimitHandler for Relay {}

fn texts_on(server: &TestServer, connection: usize) -> Vec<String> {
    server
        .received()
        .into_iter()
        .filter(|r| r.connection == connection)
        .filter_map(|r| r.frame.as_text().map(str::to_owned))
        .collect()
}

async fn next_text(messages: &mut nova_core::Messages) -> String {
    let m = tokio::time::timeout(LONG, messages.recv())
        .await
        .expect("a message in time")
        .expect("the client runs")
        .expect("nothing lagged");
    m.as_text().unwrap().to_owned()
}

/// A source of URLs: the `n`th call fails as `failures` says, then gives `base?n=N`.
fn source(
    base: String,
    calls: Arc<AtomicU32>,
    failures: Vec<Option<EndpointError>>,
) -> impl Fn(
    EndpointRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<String, EndpointError>> + Send>,
> + Send
+ Sync
+ 'static {
    move |request: EndpointRequest| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let failure = failures.get(n as usize).cloned().flatten();
        let url = format!("{base}?n={n}&purpose={}", request.purpose.as_str());
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await; // an HTTP call's await
            match failure {
                Some(e) => Err(e),
                None => Ok(url),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_awaits_a_fresh_url_and_its_failures_go_through_the_backoff() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let calls = Arc::new(AtomicU32::new(0));
    let failures = vec![
        Some(EndpointError::retry("internal_error")),
        Some(EndpointError::retry_after(
            Duration::from_millis(400),
            "ratelimited",
        )),
    ];
    let config = ClientConfig::builder("ws://placeholder.invalid/")
        .endpoint_source(source(server.url(), calls.clone(), failures))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .jitter(0.0)
        .build()
        .unwrap();
    let mut events = {
        let (client, _messages) = Client::connect(config.clone(), Relay::default());
        let events = client.events();
        std::mem::forget(client); // kept running for the whole test
        events
    };
    let started = Instant::now();
    let conn = server.next_connection().await;
    // Two failed asks (the second asking for 400 ms), then the third URL.
    assert!(conn.uri().ends_with("?n=2&purpose=first"), "{}", conn.uri());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the Retry-After of the source was honoured: {:?}",
        started.elapsed()
    );
    let mut failed = 0;
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
    {
        if let LifecycleEvent::ConnectFailed { kind, .. } = event {
            assert_eq!(kind, "endpoint");
            failed += 1;
        }
    }
    assert_eq!(failed, 2, "each failed ask is a failed attempt");
    // A reconnect asks again: a URL is never used twice.
    conn.send_text("hello").await;
    conn.drop_tcp();
    let conn = server.next_connection().await;
    assert!(
        conn.uri().ends_with("?n=3&purpose=reconnect"),
        "{}",
        conn.uri()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_endpoint_error_stops_the_client() {
    let calls = Arc::new(AtomicU32::new(0));
    let config = ClientConfig::builder("ws://placeholder.invalid/")
        .endpoint_source(source(
            "ws://127.0.0.1:9/".to_owned(),
            calls.clone(),
            vec![Some(EndpointError::fatal("invalid_auth"))],
        ))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(config, Relay::default());
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert!(
        matches!(&reason, StopReason::Fatal(why) if why.contains("invalid_auth")),
        "{reason:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no retry after a fatal error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_greeting_gives_the_connection_up() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let config = ClientConfig::builder(server.url())
        .greeting_timeout(Duration::from_millis(300))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(config, Relay::default());
    let mut events = client.events();
    let silent = server.next_connection().await;
    tokio::time::timeout(LONG, silent.closed()).await.unwrap();
    let reason = loop {
        match tokio::time::timeout(LONG, events.recv()).await.unwrap() {
            Ok(LifecycleEvent::Disconnected { reason, .. }) => break reason,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(reason, DisconnectReason::GreetingTimeout);
    // The next connection greets: sends flow.
    let conn = server.next_connection().await;
    conn.send_text("hello").await;
    client.send_text("after hello").await.unwrap();
    let id = conn.id();
    assert!(wait_until(|| texts_on(&server, id) == ["after hello"], LONG).await);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_overlaps_two_connections_and_loses_nothing() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let purposes = Arc::new(Mutex::new(Vec::new()));
    let relay = Relay {
        purposes: purposes.clone(),
    };
    let config = ClientConfig::builder(server.url())
        .handover_drain(Duration::from_secs(30))
        .build()
        .unwrap();
    let (client, mut messages) = Client::connect(config, relay);
    let mut events = client.events();
    let old = server.next_connection().await;
    old.send_text("hello").await;
    client.send_text("s1").await.unwrap();
    assert!(wait_until(|| texts_on(&server, old.id()) == ["s1"], LONG).await);

    // The platform announces the end: a second connection opens beside the first.
    old.send_text("refresh").await;
    let new = server.next_connection().await;
    assert!(
        !old.is_closed(),
        "make before break: the old one is still open"
    );
    // Until the new one greets, the old one still delivers, and sends wait.
    old.send_text("old-1").await;
    assert_eq!(next_text(&mut messages).await, "old-1");
    client.send_text("s2").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(texts_on(&server, new.id()).is_empty());
    // The new one greets: sends flow there, and only there.
    new.send_text("hello").await;
    assert!(wait_until(|| texts_on(&server, new.id()) == ["s2"], LONG).await);
    client.send_text("s3").await.unwrap();
    assert!(wait_until(|| texts_on(&server, new.id()) == ["s2", "s3"], LONG).await);
    // Both deliver during the overlap.
    old.send_text("old-2").await;
    new.send_text("new-1").await;
    let mut got = vec![
        next_text(&mut messages).await,
        next_text(&mut messages).await,
    ];
    got.sort();
    assert_eq!(got, ["new-1", "old-2"]);
    // The server closes the old one: the handover is complete, the new one carries on.
    old.close(1000, "refreshed").await;
    let overlap = loop {
        match tokio::time::timeout(LONG, events.recv()).await.unwrap() {
            Ok(LifecycleEvent::HandoverCompleted { overlap }) => break overlap,
            Ok(LifecycleEvent::Disconnected { reason, .. }) => {
                panic!("the client disconnected during a handover: {reason}")
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert!(overlap >= Duration::from_millis(100), "{overlap:?}");
    assert_eq!(
        texts_on(&server, old.id()),
        ["s1"],
        "nothing else on the old one"
    );
    new.send_text("new-2").await;
    assert_eq!(next_text(&mut messages).await, "new-2");
    assert_eq!(
        *purposes.lock().unwrap(),
        [ConnectPurpose::First, ConnectPurpose::Handover]
    );
    assert_eq!(server.connections_accepted(), 2, "no reconnect happened");
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_whose_old_connection_lingers_ends_after_the_drain() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let config = ClientConfig::builder(server.url())
        .handover_drain(Duration::from_millis(300))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(config, Relay::default());
    let old = server.next_connection().await;
    old.send_text("hello").await;
    old.send_text("refresh").await;
    let new = server.next_connection().await;
    new.send_text("hello").await;
    // The server never closes the old one: the client does, once the drain is over.
    tokio::time::timeout(LONG, old.closed()).await.unwrap();
    client.send_text("still here").await.unwrap();
    assert!(wait_until(|| texts_on(&server, new.id()) == ["still here"], LONG).await);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_can_stop_the_client() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let config = ClientConfig::builder(server.url()).build().unwrap();
    let (client, _messages) = Client::connect(config, Relay::default());
    let conn = server.next_connection().await;
    conn.send_text("hello").await;
    conn.send_text("disabled").await;
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert_eq!(reason, StopReason::Policy("link disabled".to_owned()));
    tokio::time::timeout(LONG, conn.closed()).await.unwrap();
    assert_eq!(
        server.connections_accepted(),
        1,
        "no reconnect after a stop"
    );
}
