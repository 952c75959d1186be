//! The runtime hooks for platforms with a session protocol (Discord's shape), against the test
//! kit's real WebSocket server: a URL chosen per connect, frames decoded before classification,
//! authentication begun by a server greeting (with the replay that precedes the verdict flowing
//! and the application's sends held until it), a heartbeat schedule the handler owns, and a
//! reconnect with a chosen close code.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, Client, ClientConfig, ConnectInfo, ConnectionHandler,
    Context, ErrorHandler, Frame, FrameAction, HandlerError, HeartbeatHandler, Message,
    MessageHandler, Operation, RateLimitHandler, SubscriptionHandler,
};
use nova_testkit::TestServer;

const LONG: Duration = Duration::from_secs(20);
const BEAT: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Shared {
    urls: Vec<String>,
    zombie: AtomicBool,
}

struct Gateway {
    base: String,
    connects: u32,
    next_beat: Option<Instant>,
    shared: Arc<Mutex<Shared>>,
}

impl ConnectionHandler for Gateway {
    fn connect_url(&mut self, _ctx: &Context<'_>) -> Option<String> {
        let url = format!("{}?c={}", self.base, self.connects);
        self.connects += 1;
        Some(url)
    }
    fn handle_connect(
        &mut self,
        info: &ConnectInfo,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        self.next_beat = None;
        self.shared.lock().unwrap().urls.push(info.url.clone());
        Ok(())
    }
    fn handle_frame(&mut self, frame: &Frame, _ctx: &mut Context<'_>) -> FrameAction {
        match frame {
            // The "transport encoding": binary frames carry text.
            Frame::Binary(b) => match std::str::from_utf8(b) {
                Ok(text) => FrameAction::Replace(Message::text(text)),
                Err(_) => FrameAction::Consumed,
            },
            _ => FrameAction::Continue,
        }
    }
}

impl MessageHandler for Gateway {
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        if message.as_text() == Some("hello") {
            self.next_beat = Some(Instant::now() + BEAT);
            ctx.begin_authentication();
            return Ok(());
        }
        ctx.deliver(message);
        Ok(())
    }
}

impl AuthHandler for Gateway {
    fn authenticates_on_connect(&self) -> bool {
        false
    }
    fn generate_auth_data(
        &mut self,
        _r: &AuthRequest,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        Ok(Some(Message::text("auth")))
    }
    fn handle_auth_response(&mut self, response: &Message, _ctx: &mut Context<'_>) -> AuthOutcome {
        match response.as_text() {
            Some("ok") => AuthOutcome::Authenticated,
            _ => AuthOutcome::NotAuthResponse,
        }
    }
}

impl HeartbeatHandler for Gateway {
    fn next_heartbeat(&self) -> Option<Instant> {
        self.next_beat
    }
    fn heartbeat_due(&mut self, now: Instant, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        if self
            .shared
            .lock()
            .unwrap()
            .zombie
            .swap(false, Ordering::SeqCst)
        {
            self.next_beat = None;
            ctx.request_reconnect_with_close(4000, "no heartbeat ack");
            return Ok(());
        }
        self.next_beat = Some(now + BEAT);
        ctx.send_as("beat", Operation::Heartbeat);
        Ok(())
    }
}

impl SubscriptionHandler for Gateway {}
impl ErrorHandler for Gateway {}
impl RateLimitHandler for Gateway {}

fn texts(server: &TestServer) -> Vec<String> {
    server
        .received()
        .into_iter()
        .filter_map(|r| r.frame.as_text().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_protocol_runs_on_the_runtime_hooks() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let handler = Gateway {
        base: server.url(),
        connects: 0,
        next_beat: None,
        shared: shared.clone(),
    };
    let config = ClientConfig::builder(server.url())
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .jitter(0.0)
        .build()
        .unwrap();
    let (client, mut messages) = Client::connect(config, handler);
    let conn = server.next_connection().await;
    assert!(conn.uri().ends_with("?c=0"), "{}", conn.uri());
    // Sent before authentication: held until the verdict.
    client.send_text("user").await.unwrap();

    // The greeting comes encoded; decoded, it begins authentication.
    conn.send_binary(b"hello".to_vec()).await;
    assert!(nova_testkit::wait_until(|| texts(&server).contains(&"auth".to_owned()), LONG).await);
    assert_eq!(texts(&server)[0], "auth", "authentication goes first");
    // A replay before the verdict reaches the application, in order; the sends stay held.
    conn.send_text("replay-1").await;
    conn.send_binary(b"replay-2".to_vec()).await;
    for expected in ["replay-1", "replay-2"] {
        let m = tokio::time::timeout(LONG, messages.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.as_text(), Some(expected));
    }
    assert!(!texts(&server).contains(&"user".to_owned()));
    conn.send_text("ok").await;
    assert!(nova_testkit::wait_until(|| texts(&server).contains(&"user".to_owned()), LONG).await);

    // The handler's heartbeat schedule runs.
    assert!(
        nova_testkit::wait_until(
            || texts(&server).iter().filter(|t| *t == "beat").count() >= 2,
            LONG
        )
        .await
    );

    // A missing ack: the handler closes (code 4000) and the runtime reconnects, at the next URL.
    shared.lock().unwrap().zombie.store(true, Ordering::SeqCst);
    tokio::time::timeout(LONG, conn.closed()).await.unwrap();
    let conn = server.next_connection().await;
    assert!(conn.uri().ends_with("?c=1"), "{}", conn.uri());
    assert!(nova_testkit::wait_until(|| shared.lock().unwrap().urls.len() == 2, LONG).await);
    let urls = shared.lock().unwrap().urls.clone();
    assert!(
        urls[0].ends_with("?c=0") && urls[1].ends_with("?c=1"),
        "ConnectInfo::url is the URL used: {urls:?}"
    );
    client.close(1000, "done").await.unwrap();
}
