//! The Gen Golden API's messages without a socket: parsing, classifying, validating, and the
//! requests the adapter and client build.

#![allow(clippy::unwrap_used)]

use nova_core::testing::TestContext;
use nova_core::{
    HeartbeatHandler, Message, MessageHandler, MessageType, RateLimitHandler, RequestId,
};
use serde_json::{Value, json};

use nova_gen_golden::GenGoldenAdapter;
use nova_gen_golden::{Credentials, Incoming, auth_request, channel_of, parse, subscribe_request};

#[test]
fn responses_are_matched_by_id() {
    let mut adapter = GenGoldenAdapter::default();
    let message = Message::text(r#"{"jsonrpc":"2.0","id":7,"result":["trades.BTC-USD"]}"#);
    let id = RequestId::Num(7);
    assert!(matches!(
        adapter.message_type(&message),
        MessageType::Response {
            id: RequestId::Num(7)
        }
    ));
    let Incoming::Response(response) = parse(&message).unwrap() else {
        panic!("not a response");
    };
    assert!(response.answers(&id));
    assert_eq!(response.into_result().unwrap(), json!(["trades.BTC-USD"]));
}

#[test]
fn errors_are_read_with_their_code() {
    let message = Message::text(
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":10028,"message":"too_many_requests"}}"#,
    );
    assert!(GenGoldenAdapter::default().is_rate_limit_response(&message));
    let Incoming::Response(response) = parse(&message).unwrap() else {
        panic!("not a response");
    };
    let error = response.into_result().unwrap_err();
    assert_eq!(error.code, 10028);
    assert_eq!(error.message, "too_many_requests");
}

#[test]
fn notifications_are_routed_by_channel() {
    let mut adapter = GenGoldenAdapter::default();
    let message = Message::text(
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-USD","data":{"price":42}}}"#,
    );
    assert!(matches!(
        adapter.message_type(&message),
        MessageType::Subscription {
            route: "trades.BTC-USD",
            data: None,
            ..
        }
    ));
    let Incoming::Notification(notification) = parse(&message).unwrap() else {
        panic!("not a notification");
    };
    assert_eq!(notification.params.data, json!({"price": 42}));
}

#[test]
fn notifications_are_routed_whatever_their_field_order() {
    let mut adapter = GenGoldenAdapter::default();
    for text in [
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-USD","data":[]}}"#,
        r#"{"params":{"data":[],"channel":"trades.BTC-USD"},"method":"subscription","jsonrpc":"2.0"}"#,
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
        // What `parse_data` reads the channel with.
        assert_eq!(channel_of(&message), Some("trades.BTC-USD"), "{text}");
    }
    let response = Message::text(r#"{"jsonrpc":"2.0","id":7,"result":[]}"#);
    assert_eq!(channel_of(&response), None);
}

#[test]
fn server_heartbeats_are_recognised() {
    let mut adapter = GenGoldenAdapter::default();
    let message =
        Message::text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#);
    assert!(matches!(
        adapter.message_type(&message),
        MessageType::Heartbeat
    ));
    let Incoming::Heartbeat(heartbeat) = parse(&message).unwrap() else {
        panic!("not a heartbeat");
    };
    assert!(heartbeat.params.is_test_request());
}

#[test]
fn only_json_rpc_passes_validation() {
    let mut adapter = GenGoldenAdapter::default();
    let mut valid = |text: &str| {
        !matches!(
            adapter.message_type(&Message::text(text)),
            MessageType::Invalid(_)
        )
    };
    assert!(!valid("[1,2]"));
    assert!(!valid("not json"));
    assert!(!valid(r#"{"id":1}"#));
    assert!(valid(r#"{"jsonrpc":"2.0","id":1,"result":null}"#));
}

#[test]
fn requests_are_json_rpc_with_ids() {
    let message = subscribe_request(&RequestId::Num(1), &["a", "b"]).to_message();
    let request: Value = message.json().unwrap();
    assert_eq!(
        request,
        json!({"jsonrpc": "2.0", "id": 1, "method": "public/subscribe", "params": {"channels": ["a", "b"]}})
    );
}

#[test]
fn credentials_go_into_the_auth_request_but_never_into_debug_output() {
    let credentials = Credentials::new("my-key", "my-s3cret");
    assert!(!format!("{credentials:?}").contains("my-s3cret"));
    let request = auth_request(&RequestId::Num(9), &credentials);
    assert_eq!(request.params["client_id"], "my-key");
    assert_eq!(request.params["client_secret"], "my-s3cret");
}

#[test]
fn the_server_sends_the_heartbeats() {
    let mut adapter = GenGoldenAdapter::default();
    assert_eq!(adapter.configure(None), None);
    let mut ctx = TestContext::new();
    assert!(ctx.run(|ctx| adapter.generate_heartbeat(ctx)).is_none());
}

#[test]
fn a_test_request_is_answered_with_public_test() {
    let mut adapter = GenGoldenAdapter::default();
    let mut ctx = TestContext::new();
    let test_request =
        Message::text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#);
    ctx.run(|ctx| adapter.handle_heartbeat(&test_request, ctx))
        .unwrap();
    let sent = ctx.sent_texts();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let answer: Value = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(answer["method"], "public/test");
    assert_eq!(answer["id"], json!(1), "the id comes from the context");

    let plain =
        Message::text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#);
    ctx.run(|ctx| adapter.handle_heartbeat(&plain, ctx))
        .unwrap();
    assert_eq!(
        ctx.sent_texts().len(),
        1,
        "a plain heartbeat needs no answer"
    );
}
