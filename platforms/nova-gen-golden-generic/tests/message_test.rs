//! The Gen Golden Generic API's messages without a socket: parsing, classifying, validating, and the
//! requests the adapter and client build.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, HeartbeatHandler, Message, MessageHandler, MessageType,
    RateLimitHandler, RequestId,
};
use serde_json::{Value, json};

use nova_gen_golden_generic::GenGoldenGenericAdapter;
use nova_gen_golden_generic::{
    Credentials, Incoming, auth_request, parse, subscribe_request, topic_of,
};

#[test]
fn events_are_routed_whatever_their_field_order() {
    let mut adapter = GenGoldenGenericAdapter::default();
    for text in [
        r#"{"topic":"trades.BTC-USD","type":"delta","data":{}}"#,
        r#"{"type":"delta","data":{},"topic":"trades.BTC-USD"}"#,
    ] {
        let message = Message::text(text);
        assert!(
            matches!(
                adapter.message_type(&message),
                MessageType::Subscription {
                    route: "trades.BTC-USD",
                    ..
                }
            ),
            "{text}"
        );
        // What `parse_data` reads the topic with.
        assert_eq!(topic_of(&message), Some("trades.BTC-USD"), "{text}");
    }
    let response = Message::text(r#"{"success":true,"ret_msg":"","op":"subscribe","req_id":"1"}"#);
    assert_eq!(topic_of(&response), None);
}

#[test]
fn events_are_routed_by_topic() {
    let mut adapter = GenGoldenGenericAdapter::default();
    let message = Message::text(
        r#"{"topic":"trades.BTC-USD","type":"snapshot","ts":1700000000000,"data":{"price":42}}"#,
    );
    assert!(matches!(
        adapter.message_type(&message),
        MessageType::Subscription {
            route: "trades.BTC-USD",
            data: None,
            ..
        }
    ));
    let Incoming::Event(event) = parse(&message).unwrap() else {
        panic!("not an event");
    };
    assert_eq!(event.kind.as_deref(), Some("snapshot"));
    assert_eq!(event.data, json!({"price": 42}));
}

#[test]
fn responses_are_matched_by_req_id() {
    let mut adapter = GenGoldenGenericAdapter::default();
    let message = Message::text(r#"{"success":true,"ret_msg":"","op":"subscribe","req_id":"7"}"#);
    assert!(matches!(
        adapter.message_type(&message),
        MessageType::Response {
            id: RequestId::Num(7)
        }
    ));
    let Incoming::Response(response) = parse(&message).unwrap() else {
        panic!("not a response");
    };
    assert!(response.answers(&RequestId::Num(7)));
    assert!(response.check().is_ok());
}

#[test]
fn failures_carry_the_platforms_reason() {
    let message = Message::text(r#"{"success":false,"ret_msg":"unknown topic","op":"subscribe"}"#);
    let Incoming::Response(response) = parse(&message).unwrap() else {
        panic!("not a response");
    };
    let error = response.check().unwrap_err();
    assert_eq!(error.to_string(), "`subscribe` failed: unknown topic");
    let busy = Message::text(r#"{"success":false,"ret_msg":"Too many visits","op":"order"}"#);
    assert!(GenGoldenGenericAdapter::default().is_rate_limit_response(&busy));
}

#[test]
fn the_answer_to_a_ping_is_a_heartbeat() {
    let mut adapter = GenGoldenGenericAdapter::default();
    let pong = Message::text(r#"{"success":true,"ret_msg":"pong","op":"ping","req_id":"3"}"#);
    assert!(matches!(
        adapter.message_type(&pong),
        MessageType::Heartbeat
    ));
}

#[test]
fn only_op_or_topic_messages_pass_validation() {
    let mut adapter = GenGoldenGenericAdapter::default();
    let mut valid = |text: &str| {
        !matches!(
            adapter.message_type(&Message::text(text)),
            MessageType::Invalid(_)
        )
    };
    assert!(!valid("not json"));
    assert!(!valid(r#"{"x":1}"#));
    assert!(valid(r#"{"op":"ping"}"#));
    assert!(valid(r#"{"topic":"t","data":null}"#));
}

#[test]
fn requests_carry_op_and_req_id() {
    let message = subscribe_request(&RequestId::Num(1), &["a", "b"]).to_message();
    let request: Value = message.json().unwrap();
    assert_eq!(
        request,
        json!({"req_id": "1", "op": "subscribe", "args": ["a", "b"]})
    );
}

#[test]
fn the_auth_request_is_signed_and_the_secret_never_shows() {
    let credentials = Credentials::new("my-key", "test_secret");
    assert!(!format!("{credentials:?}").contains("test_secret"));
    let request = auth_request(&RequestId::Num(9), &credentials, 1_662_350_400_000);
    // hex(HMAC-SHA256("test_secret", "GET/realtime1662350400000")), computed with openssl.
    let signature = "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6";
    let expected = [
        json!("my-key"),
        json!(1_662_350_400_000_u64),
        json!(signature),
    ];
    assert_eq!(request.args, expected);
    let wire = request.to_message();
    assert!(!wire.as_text().unwrap().contains("test_secret"));
}

#[test]
fn the_auth_request_carries_the_runtimes_id_and_its_answer_is_judged() {
    let credentials = Credentials::new("my-key", "test_secret");
    let mut adapter = GenGoldenGenericAdapter::new(Some(credentials));
    let mut ctx = TestContext::new();
    let auth = AuthRequest::new(RequestId::Num(5), false);
    let request: Value = ctx
        .run(|ctx| adapter.generate_auth_data(&auth, ctx))
        .unwrap()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(request["req_id"], "5");
    assert_eq!(request["op"], "auth");
    let other = Message::text(r#"{"success":true,"ret_msg":"","op":"subscribe","req_id":"4"}"#);
    let verdict = ctx.run(|ctx| adapter.handle_auth_response(&other, ctx));
    assert_eq!(verdict, AuthOutcome::NotAuthResponse);
    let answer = Message::text(r#"{"success":true,"ret_msg":"","op":"auth","req_id":"5"}"#);
    let verdict = ctx.run(|ctx| adapter.handle_auth_response(&answer, ctx));
    assert_eq!(verdict, AuthOutcome::Authenticated);
}

#[test]
fn the_client_pings_at_least_every_twenty_seconds() {
    let mut adapter = GenGoldenGenericAdapter::default();
    assert_eq!(adapter.configure(None), Some(Duration::from_secs(20)));
    let short = Duration::from_secs(5);
    assert_eq!(adapter.configure(Some(short)), Some(short));
    let mut ctx = TestContext::new();
    let ping: Value = ctx
        .run(|ctx| adapter.generate_heartbeat(ctx))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ping, json!({"op": "ping"}));
}
