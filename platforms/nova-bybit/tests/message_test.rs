//! The Bybit API's messages without a socket: parsing, classifying, validating, and the
//! requests the adapter and client build.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nova_core::{
    HeartbeatHandler, Message, MessageHandler, MessageType, RateLimitHandler, RequestId,
};
use serde_json::{Value, json};

use nova_bybit::BybitAdapter;
use nova_bybit::{Credentials, Incoming, auth_request, parse, subscribe_request};

#[test]
fn events_are_routed_by_topic() {
    let adapter = BybitAdapter::default();
    let message = Message::text(
        r#"{"topic":"trades.BTC-USD","type":"snapshot","ts":1700000000000,"data":{"price":42}}"#,
    );
    assert_eq!(
        adapter.message_type(&message),
        MessageType::Subscription {
            channel: "trades.BTC-USD".to_owned()
        }
    );
    let Incoming::Event(event) = parse(&message).unwrap() else {
        panic!("not an event");
    };
    assert_eq!(event.kind.as_deref(), Some("snapshot"));
    assert_eq!(event.data, json!({"price": 42}));
}

#[test]
fn responses_are_matched_by_req_id() {
    let adapter = BybitAdapter::default();
    let message = Message::text(r#"{"success":true,"ret_msg":"","op":"subscribe","req_id":"7"}"#);
    assert_eq!(
        adapter.message_type(&message),
        MessageType::Response {
            id: RequestId::Num(7)
        }
    );
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
    assert!(BybitAdapter::default().is_rate_limit_response(&busy));
}

#[test]
fn the_answer_to_a_ping_is_a_heartbeat() {
    let adapter = BybitAdapter::default();
    let pong = Message::text(r#"{"success":true,"ret_msg":"pong","op":"ping","req_id":"3"}"#);
    assert_eq!(adapter.message_type(&pong), MessageType::Heartbeat);
}

#[test]
fn only_op_or_topic_messages_pass_validation() {
    let mut adapter = BybitAdapter::default();
    let mut valid = |text: &str| adapter.validate_message(&Message::text(text)).is_ok();
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
fn credentials_go_into_the_auth_request_but_never_into_debug_output() {
    let credentials = Credentials::new("my-key", "my-s3cret");
    assert!(!format!("{credentials:?}").contains("my-s3cret"));
    let request = auth_request(&RequestId::Num(9), &credentials);
    assert_eq!(request.args, [json!("my-key"), json!("my-s3cret")]);
}

#[test]
fn the_client_pings_at_least_every_twenty_seconds() {
    let mut adapter = BybitAdapter::default();
    assert_eq!(adapter.configure(None), Some(Duration::from_secs(20)));
    let short = Duration::from_secs(5);
    assert_eq!(adapter.configure(Some(short)), Some(short));
    let ping: Value = adapter.generate_heartbeat().unwrap().json().unwrap();
    assert_eq!(ping, json!({"op": "ping"}));
}
