//! The adapter's callbacks run on a [`TestContext`]: what each queues (frames, deliveries, a
//! reconnect with its close code, the start of authentication) is what the runtime would do next.

use std::time::{Duration, Instant};

use nova_core::testing::TestContext;
use nova_core::{
    DisconnectReason, HeartbeatHandler, Message, MessageHandler, ReconnectDecision, Secret,
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
