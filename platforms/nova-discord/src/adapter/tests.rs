//! The adapter's callbacks run on a [`TestContext`]: what each queues (frames, deliveries, a
//! reconnect with its close code, the start of authentication) is what the runtime would do next.

use std::time::{Duration, Instant};

use nova_core::ClientConfig;
use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ConnectionHandler, DisconnectReason, Frame, FrameAction,
    HeartbeatHandler, Message, MessageHandler, MessageType, Operation, RateLimitDecision,
    RateLimitHandler, ReconnectDecision, RequestId, Secret,
};
use nova_testkit::discord::ZlibStreamDeflater;
use serde_json::Value;

use crate::discovery::SessionStartLimit;

use super::*;

const HELLO: &str = r#"{"op":10,"s":null,"t":null,"d":{"heartbeat_interval":45000}}"#;

fn config() -> DiscordConfig {
    DiscordConfig::new(Secret::new("a-token"), "ws://gateway.test", Intents::GUILDS)
}

/// A handler whose socket just opened at `at`.
fn connected(config: DiscordConfig, at: Instant) -> Discord {
    let mut discord = Discord::new(config);
    discord.on_connect(at, 0);
    discord
}

#[test]
fn no_hello_in_time_gives_the_connection_up_with_4000() {
    let t0 = Instant::now();
    let mut discord = connected(config().with_hello_timeout(Duration::from_secs(10)), t0);
    assert_eq!(discord.next_heartbeat(), Some(t0 + Duration::from_secs(10)));
    let mut t = TestContext::new();
    t.run(|ctx| discord.heartbeat_due(t0 + Duration::from_secs(9), ctx))
        .expect("the callback succeeds");
    assert_eq!(t.reconnect_requested(), None, "not yet");
    t.run(|ctx| discord.heartbeat_due(t0 + Duration::from_secs(10), ctx))
        .expect("the callback succeeds");
    assert_eq!(t.reconnect_close_code(), Some(RESUME_CLOSE_CODE));
    assert!(t.sent_texts().is_empty(), "nothing sent before Hello");
    assert_eq!(
        discord.next_heartbeat(),
        None,
        "no timer left on this connection"
    );
    // No session yet: the next connection identifies, after the runtime's backoff.
    let reason = DisconnectReason::Requested("no Hello in time".into());
    let decision = t.run(|ctx| discord.handle_disconnect(&reason, ctx));
    assert_eq!(decision, ReconnectDecision::backoff());
    assert!(!discord.resuming);
}

#[test]
fn a_hello_in_time_ends_the_wait() {
    let t0 = Instant::now();
    let mut discord = connected(config(), t0);
    let mut t = TestContext::new();
    t.run(|ctx| discord.handle_message(Message::text(HELLO), ctx))
        .expect("the callback succeeds");
    assert!(t.authentication_begun(), "Hello starts the Identify");
    assert_eq!(discord.hello_deadline, None);
    // The timer now serves the heartbeat only (first beat within one interval).
    let beat = discord.next_heartbeat().expect("the callback succeeds");
    assert!(beat <= Instant::now() + Duration::from_secs(45));
    t.run(|ctx| discord.heartbeat_due(t0 + DEFAULT_HELLO_TIMEOUT, ctx))
        .expect("the callback succeeds");
    assert_eq!(t.reconnect_requested(), None);
}

#[test]
fn application_sends_leave_the_reserve_for_what_the_adapter_sends() {
    let mut discord = connected(config(), Instant::now());
    let mut t = TestContext::new();
    // Hello's 45 s: two beats per 60 s, plus the spare: 6 reserved, 114 for the application.
    t.run(|ctx| discord.handle_message(Message::text(HELLO), ctx))
        .expect("the callback succeeds");
    discord.update_rate_limit(Operation::Auth); // the Identify, written by the runtime
    let mut allowed = 0;
    while discord.check_rate_limit(Operation::Other) == RateLimitDecision::Allow {
        discord.update_rate_limit(Operation::Other);
        allowed += 1;
        assert!(allowed <= 120, "never past the gateway's limit");
    }
    assert_eq!(allowed, 113, "114 minus the Identify");
    // What the adapter must send still fits: every beat of the window and a spare.
    for _ in 0..6 {
        discord.update_rate_limit(Operation::Heartbeat);
    }
    assert_eq!(discord.send_limit.sent_in_window(Instant::now()), 120);
    match discord.check_rate_limit(Operation::Other) {
        RateLimitDecision::Wait(wait) => {
            assert!(
                wait > Duration::from_secs(50) && wait <= Duration::from_millis(61_200),
                "{wait:?}"
            );
        }
        other => panic!("the window is full: {other:?}"),
    }
    // A new connection has a window of its own.
    discord.on_connect(Instant::now(), 1);
    assert_eq!(
        discord.check_rate_limit(Operation::Other),
        RateLimitDecision::Allow
    );
}

const READY: &str = r#"{"op":0,"s":1,"t":"READY","d":{"v":10,"user":{"id":"111","username":"bot","bot":true},"guilds":[{"id":"222","unavailable":true}],"session_id":"abc123","resume_gateway_url":"ws://resume.test","application":{"id":"111","flags":0}}}"#;
const MESSAGE_CREATE: &str = r#"{"op":0,"s":7,"t":"MESSAGE_CREATE","d":{"id":"9","channel_id":"8","guild_id":"222","author":{"id":"5","username":"u"},"content":"hi","timestamp":"2026-01-01T00:00:00.000000+00:00"}}"#;

/// The typed dispatch a classification carries, with its route.
fn typed<'k, 'm>(kind: &'k MessageType<'m>) -> (&'m str, Option<&'k Dispatch>) {
    match kind {
        MessageType::Subscription { route, data, .. } => {
            (*route, data.as_ref().and_then(|d| d.get::<Dispatch>()))
        }
        other => panic!("not routed: {other:?}"),
    }
}

#[test]
fn a_dispatch_is_parsed_once_routed_by_name_with_its_typed_event() {
    let mut discord = connected(config(), Instant::now());
    let message = Message::text(MESSAGE_CREATE);
    let kind = discord.message_type(&message);
    let (route, dispatch) = typed(&kind);
    assert_eq!(route, "MESSAGE_CREATE");
    let dispatch = dispatch.expect("the typed dispatch");
    assert_eq!(dispatch.seq, Some(7));
    match &dispatch.event {
        Event::MessageCreate(m) => assert_eq!(m.content, "hi"),
        other => panic!("{other:?}"),
    }
    assert_eq!(discord.session.seq(), Some(7), "counted while classified");
    // No subscription takes it: `handle_message` delivers the text as received, unparsed.
    let mut t = TestContext::new();
    t.run(|ctx| discord.handle_message(message.clone(), ctx))
        .expect("the callback succeeds");
    assert_eq!(t.take_delivered(), [Message::text(MESSAGE_CREATE)]);
    assert_eq!(
        discord.parses, 1,
        "one parse for classification and handling"
    );
    assert_eq!(discord.session.seq(), Some(7));
}

#[test]
fn unknown_undecodable_and_invalid_payloads() {
    let mut discord = connected(config(), Instant::now());
    let mut t = TestContext::new();
    // A dispatch no type is written for: routed by its name, kept raw.
    let unknown =
        Message::text(r#"{"op":0,"s":2,"t":"GUILD_SCHEDULED_EVENT_CREATE","d":{"id":"1"}}"#);
    let kind = discord.message_type(&unknown);
    match typed(&kind) {
        (
            "GUILD_SCHEDULED_EVENT_CREATE",
            Some(Dispatch {
                seq: Some(2),
                event: Event::Unknown { name, .. },
            }),
        ) => {
            assert_eq!(name, "GUILD_SCHEDULED_EVENT_CREATE");
        }
        other => panic!("{other:?}"),
    }
    // A known dispatch whose `d` does not decode: counted, routed without data, delivered.
    let broken = Message::text(r#"{"op":0,"s":3,"t":"MESSAGE_CREATE","d":{"id":5}}"#);
    let kind = discord.message_type(&broken);
    assert_eq!(kind, MessageType::subscription("MESSAGE_CREATE"));
    assert_eq!(discord.session.seq(), Some(3));
    t.run(|ctx| discord.handle_message(broken.clone(), ctx))
        .expect("the callback succeeds");
    assert_eq!(t.take_delivered(), [broken]);
    // Not a gateway payload at all: invalid (the error handler logs and skips it).
    let junk = Message::text("not json");
    assert!(matches!(
        discord.message_type(&junk),
        MessageType::Invalid(_)
    ));
    // The server's heartbeat request.
    let request = Message::text(r#"{"op":1,"d":null}"#);
    assert_eq!(discord.message_type(&request), MessageType::Heartbeat);
    assert_eq!(discord.parses, 4);
}

#[test]
fn ready_is_the_verdict_and_a_replayed_dispatch_goes_on_unparsed() {
    let mut discord = connected(config(), Instant::now());
    let mut t = TestContext::new();
    // A dispatch before the verdict (a resumed session's replay) is not it...
    let replayed = Message::text(MESSAGE_CREATE);
    let _ = discord.message_type(&replayed);
    let outcome = t.run(|ctx| discord.handle_auth_response(&replayed, ctx));
    assert_eq!(outcome, AuthOutcome::NotAuthResponse);
    t.run(|ctx| discord.handle_message(replayed.clone(), ctx))
        .expect("the callback succeeds");
    assert_eq!(t.take_delivered(), [replayed]);
    // ...READY is: delivered as received, its session kept.
    let ready = Message::text(READY);
    let kind = discord.message_type(&ready);
    assert_eq!(typed(&kind).0, "READY");
    let outcome = t.run(|ctx| discord.handle_auth_response(&ready, ctx));
    assert_eq!(outcome, AuthOutcome::Authenticated);
    assert_eq!(t.take_delivered(), [ready]);
    let session = discord.session.session().expect("READY's session");
    assert_eq!(session.id, "abc123");
    assert_eq!(session.resume_gateway_url, "ws://resume.test");
    assert_eq!(discord.parses, 2, "each payload parsed once");
}

/// The payload a callback queued, as JSON.
fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("the adapter sends JSON")
}

/// Feeds a payload through classification and the callback the runtime would call next.
fn feed(discord: &mut Discord, t: &mut TestContext, text: &str) {
    let message = Message::text(text.to_owned());
    match discord.message_type(&message) {
        MessageType::Heartbeat => t.run(|ctx| discord.handle_heartbeat(&message, ctx)),
        _ => t.run(|ctx| discord.handle_message(message.clone(), ctx)),
    }
    .expect("the callback succeeds");
}

fn auth_data(discord: &mut Discord, t: &mut TestContext) -> Value {
    let request = AuthRequest::new(RequestId::Num(1), false);
    let message = t
        .run(|ctx| discord.generate_auth_data(&request, ctx))
        .expect("credentials")
        .expect("a message");
    json(message.as_text().expect("text"))
}

fn disconnect(
    discord: &mut Discord,
    t: &mut TestContext,
    reason: DisconnectReason,
) -> ReconnectDecision {
    t.run(|ctx| discord.handle_disconnect(&reason, ctx))
}

fn closed(code: u16) -> DisconnectReason {
    DisconnectReason::ClosedByPeer {
        code: Some(code),
        reason: String::new(),
    }
}

fn url(discord: &mut Discord, t: &mut TestContext) -> String {
    t.run(|ctx| discord.connect_url(ctx)).expect("a URL")
}

/// A handler through Hello, Identify and READY (s = 1), then MESSAGE_CREATE (s = 7).
fn ready(t: &mut TestContext) -> Discord {
    let mut discord = connected(
        config().with_shard(ShardId::new(0, 2).expect("a shard")),
        Instant::now(),
    );
    feed(&mut discord, t, HELLO);
    let ready = Message::text(READY);
    let _ = discord.message_type(&ready);
    assert_eq!(
        t.run(|ctx| discord.handle_auth_response(&ready, ctx)),
        AuthOutcome::Authenticated
    );
    feed(&mut discord, t, MESSAGE_CREATE);
    let _ = t.take_sent();
    let _ = t.take_delivered();
    discord
}

#[test]
fn identify_first_then_resume_after_ready_at_the_resume_url() {
    let mut t = TestContext::new();
    let mut discord = connected(
        config().with_shard(ShardId::new(0, 2).expect("a shard")),
        Instant::now(),
    );
    assert_eq!(
        url(&mut discord, &mut t),
        "ws://gateway.test/?v=10&encoding=json"
    );
    assert!(!discord.authenticates_on_connect(), "Hello comes first");
    feed(&mut discord, &mut t, HELLO);
    assert!(t.authentication_begun());
    let identify = auth_data(&mut discord, &mut t);
    assert_eq!(identify["op"], 2);
    assert_eq!(identify["d"]["token"], "a-token");
    assert_eq!(identify["d"]["intents"], Intents::GUILDS.bits());
    assert_eq!(identify["d"]["shard"], serde_json::json!([0, 2]));
    assert!(
        !format!("{discord:?}").contains("a-token"),
        "no token in Debug"
    );

    let mut discord = ready(&mut t);
    // The connection drops: the next one resumes where READY said, with the last `s`.
    let decision = disconnect(
        &mut discord,
        &mut t,
        DisconnectReason::ConnectionLost("reset".into()),
    );
    assert_eq!(decision, ReconnectDecision::backoff());
    assert_eq!(
        url(&mut discord, &mut t),
        "ws://resume.test/?v=10&encoding=json"
    );
    discord.on_connect(Instant::now(), 1);
    feed(&mut discord, &mut t, HELLO);
    assert!(t.authentication_begun());
    let resume = auth_data(&mut discord, &mut t);
    assert_eq!(resume["op"], 6);
    assert_eq!(resume["d"]["session_id"], "abc123");
    assert_eq!(resume["d"]["seq"], 7);
    assert_eq!(resume["d"]["token"], "a-token");
    // RESUMED is the verdict.
    let resumed = Message::text(r#"{"op":0,"s":8,"t":"RESUMED","d":{}}"#);
    let _ = discord.message_type(&resumed);
    assert_eq!(
        t.run(|ctx| discord.handle_auth_response(&resumed, ctx)),
        AuthOutcome::Authenticated
    );
    assert_eq!(discord.session.seq(), Some(8));
}

#[test]
fn the_servers_heartbeat_request_is_answered_at_once_without_moving_the_schedule() {
    let mut t = TestContext::new();
    let mut discord = ready(&mut t);
    let scheduled = discord.next_heartbeat();
    feed(
        &mut discord,
        &mut t,
        r#"{"op":1,"s":null,"t":null,"d":null}"#,
    );
    let sent = t.take_sent();
    assert_eq!(sent.len(), 1);
    assert!(
        matches!(&sent[0], (Frame::Text(text), Operation::Heartbeat) if text.as_str() == r#"{"op":1,"d":7}"#),
        "{sent:?}"
    );
    assert_eq!(discord.next_heartbeat(), scheduled);
}

#[test]
fn beats_on_schedule_and_a_missing_ack_is_a_zombie_closed_with_4000_then_resumed() {
    let mut t = TestContext::new();
    let mut discord = ready(&mut t);
    let due = discord.next_heartbeat().expect("a beat scheduled");
    t.run(|ctx| discord.heartbeat_due(due, ctx))
        .expect("the callback succeeds");
    let sent = t.take_sent();
    assert!(
        matches!(&sent[..], [(Frame::Text(text), Operation::Heartbeat)] if text.as_str() == r#"{"op":1,"d":7}"#),
        "{sent:?}"
    );
    let next = discord.next_heartbeat().expect("the next beat");
    assert!(next > due);
    // An ACK keeps it alive...
    feed(&mut discord, &mut t, r#"{"op":11}"#);
    t.run(|ctx| discord.heartbeat_due(next, ctx))
        .expect("the callback succeeds");
    assert_eq!(t.take_sent().len(), 1);
    assert_eq!(t.reconnect_requested(), None);
    // ...none before the next beat is a zombie.
    let after = discord.next_heartbeat().expect("the next beat");
    t.run(|ctx| discord.heartbeat_due(after, ctx))
        .expect("the callback succeeds");
    assert!(t.take_sent().is_empty());
    assert_eq!(t.reconnect_close_code(), Some(RESUME_CLOSE_CODE));
    let reason =
        DisconnectReason::Requested(t.reconnect_requested().unwrap_or_default().to_owned());
    assert_eq!(
        disconnect(&mut discord, &mut t, reason),
        ReconnectDecision::backoff()
    );
    assert!(discord.resuming);
    assert_eq!(
        url(&mut discord, &mut t),
        "ws://resume.test/?v=10&encoding=json"
    );
}

#[test]
fn op7_and_op9_resumable_close_with_4000_and_resume() {
    for payload in [r#"{"op":7,"d":null}"#, r#"{"op":9,"d":true}"#] {
        let mut t = TestContext::new();
        let mut discord = ready(&mut t);
        feed(&mut discord, &mut t, payload);
        assert_eq!(
            t.reconnect_close_code(),
            Some(RESUME_CLOSE_CODE),
            "{payload}"
        );
        assert_eq!(
            discord.next_heartbeat(),
            None,
            "{payload}: the schedule is dropped"
        );
        // The server's own close that follows does not change the decision.
        let decision = disconnect(&mut discord, &mut t, closed(4000));
        assert_eq!(decision, ReconnectDecision::backoff(), "{payload}");
        assert!(discord.resuming, "{payload}");
        assert_eq!(
            url(&mut discord, &mut t),
            "ws://resume.test/?v=10&encoding=json"
        );
    }
}

#[test]
fn op9_not_resumable_identifies_again_after_one_to_five_seconds() {
    let mut t = TestContext::new();
    let mut discord = ready(&mut t);
    feed(&mut discord, &mut t, r#"{"op":9,"d":false}"#);
    assert_eq!(t.reconnect_close_code(), Some(RESUME_CLOSE_CODE));
    let reason = DisconnectReason::Requested("op 9".into());
    match disconnect(&mut discord, &mut t, reason) {
        ReconnectDecision::Reconnect { after: Some(after) } => {
            assert!(
                (Duration::from_secs(1)..=Duration::from_secs(5)).contains(&after),
                "{after:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!discord.resuming);
    assert_eq!(
        discord.session.session(),
        None,
        "the dead session is forgotten"
    );
    assert_eq!(
        url(&mut discord, &mut t),
        "ws://gateway.test/?v=10&encoding=json"
    );
    discord.on_connect(Instant::now(), 1);
    feed(&mut discord, &mut t, HELLO);
    assert_eq!(auth_data(&mut discord, &mut t)["op"], 2);
}

#[test]
fn close_codes_decide_resume_identify_or_stop() {
    for code in [
        4000, 4001, 4002, 4003, 4005, 4008, 1000, 1001, 1006, 1011, 4999,
    ] {
        let mut t = TestContext::new();
        let mut discord = ready(&mut t);
        assert_eq!(
            disconnect(&mut discord, &mut t, closed(code)),
            ReconnectDecision::backoff(),
            "{code}"
        );
        assert!(discord.resuming, "{code} resumes");
    }
    for code in [4007, 4009] {
        let mut t = TestContext::new();
        let mut discord = ready(&mut t);
        assert_eq!(
            disconnect(&mut discord, &mut t, closed(code)),
            ReconnectDecision::backoff(),
            "{code}"
        );
        assert!(!discord.resuming, "{code} identifies");
        assert_eq!(
            url(&mut discord, &mut t),
            "ws://gateway.test/?v=10&encoding=json"
        );
    }
    for code in [4004, 4010, 4011, 4012, 4013, 4014] {
        let mut t = TestContext::new();
        let mut discord = ready(&mut t);
        match disconnect(&mut discord, &mut t, closed(code)) {
            ReconnectDecision::Stop { reason } => {
                assert!(reason.contains(&code.to_string()), "{reason}");
                assert!(!reason.contains("a-token"));
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    // No close frame at all: resume.
    let mut t = TestContext::new();
    let mut discord = ready(&mut t);
    let lost = DisconnectReason::HeartbeatTimeout;
    assert_eq!(
        disconnect(&mut discord, &mut t, lost),
        ReconnectDecision::backoff()
    );
    assert!(discord.resuming);
}

#[test]
fn identify_waits_for_its_bucket_and_a_spent_budget_stops() {
    let limit = SessionStartLimit {
        total: 1000,
        remaining: 1,
        reset_after: 86_400_000,
        max_concurrency: 1,
    };
    let now = Instant::now();
    let limiter = Arc::new(IdentifyLimiter::with_window(
        &limit,
        now,
        Duration::from_secs(5),
    ));
    // The budget's one Identify goes to another shard of the process.
    assert!(matches!(
        limiter.poll_acquire(1, now),
        crate::Acquire::Granted
    ));
    let mut t = TestContext::new();
    let mut discord = connected(config().with_limiter(Arc::clone(&limiter)), now);
    feed(&mut discord, &mut t, HELLO);
    assert!(!t.authentication_begun());
    assert_eq!(t.reconnect_close_code(), Some(RESUME_CLOSE_CODE));
    match disconnect(&mut discord, &mut t, closed(4000)) {
        ReconnectDecision::Stop { reason } => {
            assert!(reason.contains("session_start_limit"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // With budget left, a busy bucket is waited for on the heartbeat timer.
    let limit = SessionStartLimit {
        remaining: 10,
        ..limit
    };
    let limiter = Arc::new(IdentifyLimiter::with_window(
        &limit,
        now,
        Duration::from_secs(5),
    ));
    assert!(matches!(
        limiter.poll_acquire(1, now),
        crate::Acquire::Granted
    ));
    let mut t = TestContext::new();
    let mut discord = connected(config().with_limiter(limiter), now);
    feed(&mut discord, &mut t, HELLO);
    assert!(!t.authentication_begun(), "the bucket is busy");
    let at = discord.identify_at.expect("a wait");
    assert!(discord.next_heartbeat().is_some_and(|next| next <= at));
    t.run(|ctx| discord.heartbeat_due(at, ctx))
        .expect("the callback succeeds");
    assert!(t.authentication_begun(), "granted when the bucket opens");
}

#[test]
fn zlib_stream_frames_are_inflated_and_a_broken_stream_resumes() {
    let mut t = TestContext::new();
    let mut discord = connected(config().with_compress(true), Instant::now());
    let mut deflater = ZlibStreamDeflater::new();
    let frame = deflater.compress(HELLO.as_bytes());
    // Split across two frames: the first is buffered, the second completes the message.
    let (a, b) = frame.split_at(frame.len() / 2);
    let first = t.run(|ctx| discord.handle_frame(&Frame::Binary(a.to_vec().into()), ctx));
    assert_eq!(first, FrameAction::Consumed);
    let second = t.run(|ctx| discord.handle_frame(&Frame::Binary(b.to_vec().into()), ctx));
    assert_eq!(second, FrameAction::Replace(Message::text(HELLO)));
    // Garbage ending like a message: the stream is broken, the connection given up to resume.
    let mut junk = vec![0x55; 16];
    junk.extend_from_slice(&crate::ZLIB_SUFFIX);
    let broken = t.run(|ctx| discord.handle_frame(&Frame::Binary(junk.into()), ctx));
    assert_eq!(broken, FrameAction::Consumed);
    assert_eq!(t.reconnect_close_code(), Some(RESUME_CLOSE_CODE));
}

/// A `metrics` recorder that keeps every value set or recorded, by metric name and labels.
#[derive(Clone, Default)]
struct Recorded(Arc<std::sync::Mutex<Vec<(String, f64)>>>);

impl Recorded {
    /// The values of `name{labels}` (labels as `k=v` joined by `,`, in the order given).
    fn values(&self, key: &str) -> Vec<f64> {
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .collect()
    }
}

struct Handle {
    key: String,
    recorded: Recorded,
}

impl Handle {
    fn push(&self, value: f64) {
        let mut all = self
            .recorded
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.push((self.key.clone(), value));
    }
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        #[allow(clippy::cast_precision_loss)]
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        #[allow(clippy::cast_precision_loss)]
        self.push(value as f64);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.push(value);
    }
    fn decrement(&self, value: f64) {
        self.push(-value);
    }
    fn set(&self, value: f64) {
        self.push(value);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl Recorded {
    fn handle(&self, key: &metrics::Key) -> Arc<Handle> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Handle {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            recorded: self.clone(),
        })
    }
}

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.handle(key))
    }
}

#[test]
fn telemetry_reports_the_identify_budget_ack_latency_verdicts_and_give_ups() {
    let recorded = Recorded::default();
    let limit = SessionStartLimit {
        total: 1000,
        remaining: 42,
        reset_after: 86_400_000,
        max_concurrency: 1,
    };
    let now = Instant::now();
    let limiter = Arc::new(IdentifyLimiter::new(&limit, now));
    let mut discord = Discord::new(config().with_limiter(limiter));
    let client = ClientConfig::builder("ws://gateway.test")
        .name("shard-a")
        .build()
        .expect("a config");
    // Handles resolve against the recorder in place when `init` runs.
    metrics::with_local_recorder(&recorded, || discord.init(&client)).expect("init");
    discord.on_connect(now, 0);
    let mut t = TestContext::new();
    feed(&mut discord, &mut t, HELLO);
    assert!(t.authentication_begun());
    assert_eq!(
        recorded.values("nova_discord_session_start_remaining{client_id=shard-a}"),
        [41.0]
    );
    assert_eq!(
        recorded.values("nova_discord_session_start_total{client_id=shard-a}"),
        [1000.0]
    );
    let ready = Message::text(READY);
    let _ = discord.message_type(&ready);
    assert_eq!(
        t.run(|ctx| discord.handle_auth_response(&ready, ctx)),
        AuthOutcome::Authenticated
    );
    assert_eq!(
        recorded.values("nova_discord_sessions_total{client_id=shard-a,kind=identified}"),
        [1.0]
    );
    // A beat and its ACK: one latency, in seconds, small.
    let due = discord.next_heartbeat().expect("a beat");
    t.run(|ctx| discord.heartbeat_due(due, ctx))
        .expect("the callback succeeds");
    feed(&mut discord, &mut t, r#"{"op":11}"#);
    let latencies = recorded.values("nova_discord_heartbeat_latency_seconds{client_id=shard-a}");
    assert_eq!(latencies.len(), 1);
    assert!((0.0..60.0).contains(&latencies[0]), "{latencies:?}");
    // op 7: a connection given up, by cause.
    feed(&mut discord, &mut t, r#"{"op":7,"d":null}"#);
    assert_eq!(
        recorded.values("nova_discord_gave_up_total{client_id=shard-a,cause=reconnect}"),
        [1.0]
    );
}
