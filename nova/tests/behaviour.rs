//! `#[nova::client]` clients run against the test kit's WebSocket server on 127.0.0.1: each
//! strategy does what the seed says, a callback in an `impl` block wins over the strategy, and a
//! platform bot that overrides only `handle_message` keeps its adapter's behaviours.
//!
//! Delays are read from `LifecycleEvent::ReconnectScheduled` (what the client decided), never
//! timed, so the tests do not depend on the machine's speed.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova::prelude::*;
use nova::{ClientConfigBuilder, RateLimitDecision};
use nova_testkit::{Frame as ServerFrame, Responder, ServerOptions, TestServer, wait_until};
use tokio::sync::broadcast;

const MS: fn(u64) -> Duration = Duration::from_millis;
/// Upper bound for waiting on something that happens within a second or two.
const LONG: Duration = Duration::from_secs(20);

fn config(server: &TestServer) -> ClientConfigBuilder {
    ClientConfig::builder(server.url())
        .name("macro-test")
        // A configured policy the strategies must not use: their own delays win.
        .backoff(Duration::from_secs(7), Duration::from_secs(70))
        // The attempt counter is not reset between the test's drops.
        .stable_after(Duration::from_secs(3600))
}

/// Reads events until `pred` matches one; returns that event.
async fn next_event(
    rx: &mut broadcast::Receiver<LifecycleEvent>,
    mut pred: impl FnMut(&LifecycleEvent) -> bool,
) -> LifecycleEvent {
    let found = tokio::time::timeout(LONG, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return Some(e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .await;
    found.ok().flatten().expect("event not seen in time")
}

/// The next reconnect the client schedules: `(attempt, delay)`.
async fn next_reconnect(rx: &mut broadcast::Receiver<LifecycleEvent>) -> (u32, Duration) {
    match next_event(rx, |e| {
        matches!(e, LifecycleEvent::ReconnectScheduled { .. })
    })
    .await
    {
        LifecycleEvent::ReconnectScheduled { attempt, delay } => (attempt, delay),
        _ => unreachable!(),
    }
}

#[nova::client(strategy = "always_reconnect")]
struct Reconnecting;

#[tokio::test]
async fn always_reconnect_reconnects_after_each_drop_with_exponential_delays() {
    let server = TestServer::start().await.unwrap();
    let config = config(&server).jitter(0.5).build().unwrap();
    let (client, _messages) = Client::connect(config, Reconnecting);
    let mut events = client.events();

    // 250 ms × 2^attempt, less up to half (the configured jitter), never more.
    for (attempt, base) in [(1, MS(250)), (2, MS(500)), (3, MS(1000))] {
        let conn = server
            .next_connection_timeout(LONG)
            .await
            .expect("a connection");
        client.wait_connected(LONG).await.unwrap();
        conn.drop_tcp();
        let (scheduled, delay) = next_reconnect(&mut events).await;
        assert_eq!(scheduled, attempt);
        assert!(
            delay <= base && delay >= base / 2,
            "attempt {attempt}: {delay:?} not in [{:?}, {base:?}]",
            base / 2
        );
    }
    // And the reconnect happens: a fourth connection arrives.
    let fourth = server
        .next_connection_timeout(LONG)
        .await
        .expect("a new connection after the last drop");
    assert_eq!(fourth.id(), 3);
    client.wait_connected(LONG).await.unwrap();
    client.close(1000, "done").await.unwrap();
}

#[tokio::test]
async fn always_reconnect_retries_refused_handshakes_with_the_same_delays() {
    let server = TestServer::start().await.unwrap();
    server.refuse_next_handshakes(2, 503, Vec::new());
    let config = config(&server).jitter(0.0).build().unwrap();
    let (client, _messages) = Client::connect(config, Reconnecting);
    let mut events = client.events();
    assert_eq!(next_reconnect(&mut events).await, (1, MS(250)));
    assert_eq!(next_reconnect(&mut events).await, (2, MS(500)));
    client.wait_connected(LONG).await.unwrap();
    assert_eq!(server.handshakes_attempted(), 3);
}

#[nova::client(strategy = "fail_fast")]
struct Failing;

#[tokio::test]
async fn fail_fast_stops_at_the_first_disconnect_with_its_reason() {
    let server = TestServer::start().await.unwrap();
    let (client, _messages) = Client::connect(config(&server).build().unwrap(), Failing);
    let conn = server.next_connection_timeout(LONG).await.unwrap();
    client.wait_connected(LONG).await.unwrap();
    conn.close(1001, "maintenance").await;
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    match reason {
        StopReason::Policy(why) => {
            assert!(why.contains("1001") && why.contains("maintenance"), "{why}")
        }
        other => panic!("expected a policy stop, got {other:?}"),
    }
    assert_eq!(
        server.connections_accepted(),
        1,
        "a stopped client never reconnects"
    );
}

#[tokio::test]
async fn fail_fast_stops_at_the_first_failed_connect() {
    let server = TestServer::start().await.unwrap();
    server.refuse_next_handshakes(1, 503, Vec::new());
    let (client, _messages) = Client::connect(config(&server).build().unwrap(), Failing);
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert!(matches!(reason, StopReason::Policy(_)), "{reason:?}");
    assert_eq!(server.handshakes_attempted(), 1);
}

/// A `tracing` writer into a buffer the test reads.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[nova::client(strategy = "log_and_continue")]
struct Logging;

// current_thread: the client's task runs on this thread, where the subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn log_and_continue_logs_the_disconnect_and_the_error_and_reconnects_linearly() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await.unwrap();
    let (client, _messages) =
        Client::connect(config(&server).jitter(0.5).build().unwrap(), Logging);
    let mut events = client.events();
    let conn = server.next_connection_timeout(LONG).await.unwrap();
    client.wait_connected(LONG).await.unwrap();
    conn.drop_tcp();
    // 1000 ms × (attempt + 1), no jitter, whatever the configuration says.
    assert_eq!(next_reconnect(&mut events).await, (1, MS(1000)));
    server
        .next_connection_timeout(LONG)
        .await
        .expect("reconnected");
    client.wait_connected(LONG).await.unwrap();

    let text = logs.text();
    let warning = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("reconnecting"));
    let warning = warning.unwrap_or_else(|| panic!("no disconnect warning in:\n{text}"));
    assert!(
        warning.contains("disconnected:") && warning.contains("delay_ms=1000"),
        "{warning}"
    );
    let error = text
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("context:"));
    let error = error.unwrap_or_else(|| panic!("no error log in:\n{text}"));
    assert!(
        error.contains("source=\"read\"") || error.contains("source=read"),
        "{error}"
    );
    client.close(1000, "done").await.unwrap();
}

#[nova::client(strategy = "echo")]
struct Echoing;

#[tokio::test]
async fn echo_answers_text_with_text_and_binary_with_binary_and_delivers_both() {
    let server = TestServer::start_with(ServerOptions::default().with_echo(false))
        .await
        .unwrap();
    let (client, mut messages) = Client::connect(config(&server).build().unwrap(), Echoing);
    let conn = server.next_connection_timeout(LONG).await.unwrap();
    client.wait_connected(LONG).await.unwrap();

    conn.send_text("hello").await;
    conn.send_binary(vec![1, 2, 3]).await;
    conn.send_ping(b"not echoed".to_vec()).await;
    conn.send_text("after the ping").await;
    let got = conn.wait_for_received(3, LONG).await;
    assert_eq!(
        got,
        [
            ServerFrame::Text("hello".into()),
            ServerFrame::Binary(vec![1, 2, 3]),
            ServerFrame::Text("after the ping".into()),
        ]
    );
    // handle_message passes every message through to the application.
    assert_eq!(
        messages.recv().await.unwrap().unwrap(),
        Message::text("hello")
    );
    assert_eq!(
        messages.recv().await.unwrap().unwrap(),
        Message::binary(vec![1, 2, 3])
    );
    assert_eq!(
        messages.recv().await.unwrap().unwrap(),
        Message::text("after the ping")
    );
    client.close(1000, "done").await.unwrap();
}

/// fail_fast, except that a disconnect reconnects after 50 ms.
struct Patient {
    disconnects: Arc<AtomicUsize>,
}

#[nova::client(strategy = "fail_fast")]
impl Patient {
    fn handle_disconnect(
        &mut self,
        _reason: &DisconnectReason,
        _ctx: &Context<'_>,
    ) -> ReconnectDecision {
        self.disconnects.fetch_add(1, Ordering::SeqCst);
        ReconnectDecision::after(MS(50))
    }
}

#[tokio::test]
async fn a_callback_in_the_impl_block_wins_over_the_strategy_and_the_rest_stays() {
    let server = TestServer::start().await.unwrap();
    let disconnects = Arc::new(AtomicUsize::new(0));
    let bot = Patient {
        disconnects: Arc::clone(&disconnects),
    };
    let (client, _messages) = Client::connect(config(&server).build().unwrap(), bot);
    let mut events = client.events();

    // The override: a disconnect reconnects (fail_fast would stop).
    let conn = server.next_connection_timeout(LONG).await.unwrap();
    client.wait_connected(LONG).await.unwrap();
    conn.drop_tcp();
    assert_eq!(next_reconnect(&mut events).await, (1, MS(50)));
    let conn = server
        .next_connection_timeout(LONG)
        .await
        .expect("reconnected by the override");
    client.wait_connected(LONG).await.unwrap();
    assert_eq!(disconnects.load(Ordering::SeqCst), 1);

    // Not overridden: should_reconnect is still fail_fast's, so a refused reconnect stops.
    server.refuse_next_handshakes(1, 503, Vec::new());
    conn.drop_tcp();
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert!(
        matches!(reason, StopReason::Policy(ref why) if why.contains("no reconnect")),
        "{reason:?}"
    );
    assert_eq!(disconnects.load(Ordering::SeqCst), 2);
}

/// A small platform adapter, as a `nova-<platform>` crate would write it: its own heartbeat
/// every 50 ms, answers to the server's heartbeats, authentication, a rate limit, and a
/// `handle_message` of its own that the bot below replaces.
#[derive(Default)]
struct TestPlatform {
    beats: u32,
}

impl MessageHandler for TestPlatform {
    fn message_type(&self, message: &Message) -> MessageType {
        match message.as_text() {
            Some("server heartbeat") => MessageType::Heartbeat,
            _ => MessageType::Unknown,
        }
    }

    fn handle_message(
        &mut self,
        _message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        ctx.deliver(Message::text("the adapter's handle_message"));
        Ok(())
    }
}

impl HeartbeatHandler for TestPlatform {
    fn configure(&mut self, _interval: Option<Duration>) -> Option<Duration> {
        Some(MS(50))
    }

    fn handle_heartbeat(
        &mut self,
        _message: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        ctx.send(Message::text("heartbeat ack"));
        Ok(())
    }

    fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
        self.beats += 1;
        Some(Message::text(format!("beat {}", self.beats)))
    }
}

impl AuthHandler for TestPlatform {
    fn generate_auth_data(
        &mut self,
        _auth: &AuthRequest,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        Ok(Some(Message::text("auth")))
    }

    fn handle_auth_response(&mut self, response: &Message, _ctx: &mut Context<'_>) -> AuthOutcome {
        match response.as_text() {
            Some("auth ok") => AuthOutcome::Authenticated,
            _ => AuthOutcome::NotAuthResponse,
        }
    }
}

impl RateLimitHandler for TestPlatform {
    fn check_rate_limit(&mut self, operation: Operation) -> RateLimitDecision {
        match operation {
            Operation::Order => RateLimitDecision::Wait(MS(7)),
            _ => RateLimitDecision::Allow,
        }
    }
}

impl SubscriptionHandler for TestPlatform {}

/// The bot: the adapter's protocol, always_reconnect's policy, its own handle_message.
struct PlatformBot {
    platform: TestPlatform,
}

#[nova::client(strategy = "always_reconnect", platform = TestPlatform)]
impl PlatformBot {
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let text = message.as_text().unwrap_or_default();
        ctx.deliver(Message::text(format!("bot: {text}")));
        Ok(())
    }
}

#[tokio::test]
async fn a_platform_bot_overriding_only_handle_message_keeps_the_adapters_behaviours() {
    // Accepts the adapter's authentication; otherwise silent.
    let responder: Responder = Arc::new(|_, frame: &ServerFrame| match frame.as_text() {
        Some("auth") => vec![ServerFrame::from("auth ok")],
        _ => Vec::new(),
    });
    let server = TestServer::start_with(ServerOptions::default().with_responder(responder))
        .await
        .unwrap();
    let bot = PlatformBot {
        platform: TestPlatform::default(),
    };
    let (client, mut messages) = Client::connect(config(&server).build().unwrap(), bot);
    let conn = server.next_connection_timeout(LONG).await.unwrap();
    client.wait_connected(LONG).await.unwrap();

    // The adapter authenticates: its auth message goes first, its verdict on the answer counts.
    let first = conn.wait_for_received(1, LONG).await;
    assert_eq!(first.first(), Some(&ServerFrame::from("auth")));
    let mut state = client.state();
    let authenticated = state.wait_for(|s| s.status == nova::ConnectionStatus::Authenticated);
    tokio::time::timeout(LONG, authenticated)
        .await
        .unwrap()
        .unwrap();

    // The adapter's heartbeat runs, on the adapter's interval, with the adapter's state.
    let beats = |frames: &[ServerFrame]| -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| f.as_text())
            .filter(|t| t.starts_with("beat"))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        wait_until(|| beats(&conn.received()).len() >= 2, LONG).await,
        "{:?}",
        conn.received()
    );
    assert_eq!(beats(&conn.received())[..2], ["beat 1", "beat 2"]);

    // The adapter classifies the server's heartbeat and answers it.
    conn.send_text("server heartbeat").await;
    let acked = || {
        conn.received()
            .iter()
            .any(|f| f.as_text() == Some("heartbeat ack"))
    };
    assert!(wait_until(acked, LONG).await, "{:?}", conn.received());

    // The bot's own handle_message wins over the adapter's.
    conn.send_text("price 42").await;
    assert_eq!(
        messages.recv().await.unwrap().unwrap(),
        Message::text("bot: price 42")
    );
    client.close(1000, "done").await.unwrap();
}

#[test]
fn a_platform_bot_delegates_the_protocol_callbacks_to_its_adapter() {
    let mut bot = PlatformBot {
        platform: TestPlatform::default(),
    };
    assert_eq!(
        RateLimitHandler::check_rate_limit(&mut bot, Operation::Order),
        RateLimitDecision::Wait(MS(7))
    );
    assert_eq!(
        RateLimitHandler::check_rate_limit(&mut bot, Operation::Query),
        RateLimitDecision::Allow
    );
    assert_eq!(
        MessageHandler::message_type(&bot, &Message::text("server heartbeat")),
        MessageType::Heartbeat
    );
    assert_eq!(HeartbeatHandler::configure(&mut bot, None), Some(MS(50)));
    let mut ctx = nova::testing::TestContext::new();
    assert_eq!(
        ctx.run(|ctx| HeartbeatHandler::generate_heartbeat(&mut bot, ctx)),
        Some(Message::text("beat 1"))
    );
    assert_eq!(
        bot.platform.beats, 1,
        "the adapter value in the struct is the one used"
    );
}
