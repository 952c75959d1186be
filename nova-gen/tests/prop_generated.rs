//! Property tests of what nova-gen generates, through its golden copy `platforms/nova-gen-golden`
//! (a JSON-RPC platform): the generated message parsing ([`parse`]) and the generated adapter's
//! callbacks, run through `nova_core::testing::TestContext`, take hostile input without a panic.
//!
//! They live here rather than in the generated crate: `platforms/nova-gen-golden` must be exactly
//! what the templates render (the golden test), so a test file there needs a template of its
//! own, with its snapshots and the `proptest` dependency in every generated `Cargo.toml`. The
//! templates are left as they are; these tests guard the code they generate.
//!
//! Inputs: arbitrary bytes, arbitrary JSON with JSON-RPC's field names, and valid messages
//! mutated (see `nova_testkit::hostile`). Property: no panic, a typed error, and the adapter's
//! state unchanged by a message that is not the awaited answer.
//!
//! Cases per property: 2,000 by default; `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, HeartbeatHandler, Message, MessageHandler,
    RateLimitHandler, RequestId, Subscription, SubscriptionHandler,
};
use nova_gen_golden::{Credentials, GenGoldenAdapter, Incoming, channel_of, parse, parse_data};
use nova_testkit::hostile::strategy::{config, messages};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "code",
    "message",
    "data",
    "channel",
    "type",
    "subscription",
    "heartbeat",
    "test_request",
];

const VALID: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"result":["trades.BTC-USD"]}"#,
    r#"{"jsonrpc":"2.0","id":2,"result":{"access_token":"t"}}"#,
    r#"{"jsonrpc":"2.0","id":3,"error":{"code":10028,"message":"too_many_requests"}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-USD","data":[{"price":1.5}]}}"#,
    r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
];

/// A hostile message (`nova_testkit::hostile::strategy::messages`) from the valid ones above.
fn hostile() -> impl Strategy<Value = Message> {
    messages(VALID, KEYS)
}

proptest! {
    #![proptest_config(config(2_000))]

    /// The generated parsing answers any message with a value or a typed error.
    #[test]
    fn generated_parsing_never_panics(message in hostile()) {
        match parse(&message) {
            Ok(Incoming::Response(r)) => {
                let _ = r.answers(&RequestId::Num(1));
                if let Err(e) = r.into_result() {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(Incoming::Heartbeat(h)) => {
                let _ = h.params.is_test_request();
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = parse_data(&message);
        let _ = channel_of(&message);
    }

    /// The generated adapter's callbacks take any message; classifying it, or a message that
    /// is not the awaited answer, changes nothing.
    #[test]
    fn generated_adapter_never_panics(message in hostile()) {
        let mut adapter = GenGoldenAdapter::new(Some(Credentials::new("key", "secret")));
        let mut t = TestContext::new();
        let auth = t.run(|ctx| adapter.generate_auth_data(&AuthRequest::new(RequestId::Num(2), false), ctx));
        prop_assert!(auth.is_ok());
        let before = format!("{adapter:?}");
        let _ = adapter.message_type(&message);
        prop_assert_eq!(&format!("{adapter:?}"), &before);
        let _ = adapter.is_rate_limit_response(&message);
        if let Err(e) = t.run(|ctx| adapter.handle_heartbeat(&message, ctx)) {
            prop_assert!(!e.to_string().is_empty());
        }
        let sub = Subscription::new("s", "trades.BTC-USD");
        if let Err(e) = t.run(|ctx| adapter.handle_subscription_response(&sub, &message, ctx)) {
            prop_assert!(!e.to_string().is_empty());
        }
        let _ = adapter.sequence(&sub, &message);
        match t.run(|ctx| adapter.handle_auth_response(&message, ctx)) {
            AuthOutcome::NotAuthResponse => prop_assert_eq!(&format!("{adapter:?}"), &before),
            AuthOutcome::Rejected(reason) => prop_assert!(!reason.is_empty()),
            _ => {}
        }
    }
}
