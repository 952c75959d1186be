//! The adapter's callbacks run on a [`TestContext`]: what each queues (frames, deliveries, a
//! reconnect with its close code, the start of authentication) is what the runtime would do next.

use std::time::{Duration, Instant};

use nova_core::testing::TestContext;
use nova_core::{
    DisconnectReason, HeartbeatHandler, Message, MessageHandler, Operation, RateLimitDecision,
    RateLimitHandler, ReconnectDecision, Secret,
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
