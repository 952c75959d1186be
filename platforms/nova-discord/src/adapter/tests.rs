//! The adapter's callbacks run on a [`TestContext`]: what each queues (frames, deliveries, a
//! reconnect with its close code, the start of authentication) is what the runtime would do next.

use std::time::{Duration, Instant};

use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthOutcome, DisconnectReason, HeartbeatHandler, Message, MessageHandler,
    MessageType, Operation, RateLimitDecision, RateLimitHandler, ReconnectDecision, Secret,
};

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
        RateLimitDecision::Allow => panic!("the window is full"),
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
