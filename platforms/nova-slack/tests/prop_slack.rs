//! Property tests of everything that reads what Slack sends: Socket Mode frames
//! ([`Inbound::parse`], [`Envelope`] and its acks, the [`DedupWindow`]), the adapter's
//! `handle_message` run through `nova_core::testing::TestContext`, and the answers of
//! `apps.connections.open` ([`SocketModeApi`]) from a hostile HTTP server on loopback.
//!
//! Inputs: arbitrary bytes, arbitrary JSON with Socket Mode's field names, valid frames mutated
//! (fields dropped, types swapped, numbers at the limits, huge strings; see
//! `nova_testkit::hostile`); for `apps.connections.open`, any status, any `Retry-After` and any
//! body. Property: no panic, a typed error, the adapter's counters unchanged by a frame that does
//! not parse, one ack per envelope handled, and the HTTP answer mapped to the error its status
//! and body call for.
//!
//! Cases per property: 2,000 by default (300 for the HTTP answers, one request each);
//! `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nova_core::testing::TestContext;
use nova_core::{Message, MessageHandler, Secret};
use nova_slack::{
    AckOnly, DEFAULT_RETRY_AFTER, DedupWindow, Inbound, OpenError, Slack, SlackOptions,
    SocketModeApi,
};
use nova_testkit::hostile::mutate;
use nova_testkit::hostile::strategy::{config, messages};
use proptest::prelude::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The field names Socket Mode's parsers look at.
const KEYS: &[&str] = &[
    "type",
    "envelope_id",
    "payload",
    "accepts_response_payload",
    "retry_attempt",
    "retry_reason",
    "event_id",
    "event",
    "num_connections",
    "debug_info",
    "host",
    "approximate_connection_time",
    "connection_info",
    "app_id",
    "reason",
    "hello",
    "disconnect",
    "events_api",
    "slash_commands",
    "interactive",
    "refresh_requested",
    "warning",
    "link_disabled",
    "ok",
    "url",
    "error",
];

/// Valid frames of every kind Socket Mode sends.
const VALID: &[&str] = &[
    r#"{"type":"hello","num_connections":2,"debug_info":{"host":"applink-111-xxx","build_number":10,"approximate_connection_time":18060},"connection_info":{"app_id":"A111"}}"#,
    r#"{"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"wss-111.slack.com"}}"#,
    r#"{"type":"disconnect","reason":"warning","debug_info":{"host":"wss-111.slack.com"}}"#,
    r#"{"type":"disconnect","reason":"link_disabled","debug_info":{"host":"wss-111.slack.com"}}"#,
    r#"{"envelope_id":"1d3c79ab-0ffb-41f3-a080-d19e85f53649","payload":{"token":"verification-token","team_id":"T111","channel_id":"C111","user_id":"U111","command":"/hello-socket-mode","text":"","api_app_id":"A111","response_url":"https://hooks.slack.com/commands/T111/111/xxx","trigger_id":"111.222.xxx"},"type":"slash_commands","accepts_response_payload":true}"#,
    r#"{"envelope_id":"cda4159a-72a5-4744-aba3-4d66eb52682b","payload":{"token":"verification-token","team_id":"T111","api_app_id":"A111","event":{"type":"app_mention","text":"<@U111>","user":"U222","ts":"1610241741.000200","channel":"C111"},"type":"event_callback","event_id":"Ev111","event_time":1610241741},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}"#,
    r#"{"envelope_id":"57d6a792-4d35-4d0b-b6aa-3361493e1caf","payload":{"type":"shortcut","token":"verification-token","action_ts":"1610198080.300836","team":{"id":"T111","domain":"testxyz"},"user":{"id":"U111"},"callback_id":"do-something","trigger_id":"111.222.xxx"},"type":"interactive","accepts_response_payload":false}"#,
];

/// A hostile message (`nova_testkit::hostile::strategy::messages`) from the valid ones above.
fn hostile() -> impl Strategy<Value = Message> {
    messages(VALID, KEYS)
}

proptest! {
    #![proptest_config(config(2_000))]

    /// `Inbound::parse` answers any frame with a message or a typed error; an envelope's acks
    /// and the de-duplication window take whatever ids it carries.
    #[test]
    fn frames_parse_or_fail_typed(message in hostile()) {
        let Some(text) = message.as_text() else {
            return Ok(());
        };
        match Inbound::parse(text) {
            Ok(Inbound::Envelope(envelope)) => {
                let ack = envelope.ack().to_json();
                let back: Value = serde_json::from_str(&ack).unwrap();
                prop_assert_eq!(back["envelope_id"].as_str(), Some(envelope.envelope_id.as_str()));
                prop_assert_eq!(envelope.ack_with(&"reply").is_ok(), envelope.accepts_response_payload);
                let _ = envelope.payload_as::<Value>();
                let mut window = DedupWindow::new(4);
                prop_assert!(window.observe(&envelope).is_new());
                prop_assert!(!window.observe(&envelope).is_new());
                window.forget(&envelope);
            }
            Ok(Inbound::Disconnect(d)) => {
                let _ = d.reason.action();
                let _ = d.reason.as_str();
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// The adapter takes any frame: an envelope is acknowledged once, a frame that does not
    /// parse is a typed error that changes none of the adapter's counters.
    #[test]
    fn the_adapter_takes_any_frame(message in hostile()) {
        let mut slack = Slack::new(AckOnly, SlackOptions::default());
        let mut t = TestContext::new();
        let before = slack.stats();
        let envelope = message.as_text().and_then(|text| match Inbound::parse(text) {
            Ok(Inbound::Envelope(e)) => Some(e),
            _ => None,
        });
        match t.run(|ctx| slack.handle_message(message.clone(), ctx)) {
            Ok(()) => {
                let acks = t.sent_texts();
                prop_assert_eq!(acks.len(), usize::from(envelope.is_some()));
                prop_assert_eq!(slack.stats().acks, before.acks + u64::from(envelope.is_some()));
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(t.sent_texts().is_empty());
                prop_assert_eq!(slack.stats(), before);
            }
        }
    }
}

/// One hostile answer of `apps.connections.open`.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn answer() -> impl Strategy<Value = Answer> {
    let valid = [
        r#"{"ok":true,"url":"wss://wss-primary.slack.com/link/?ticket=1234-5678&app_id=A1"}"#,
        r#"{"ok":false,"error":"invalid_auth"}"#,
        r#"{"ok":false,"error":"ratelimited"}"#,
        r#"{"ok":false,"error":"missing_scope","needed":"connections:write"}"#,
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..128),
        (
            0..valid.len(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(move |(i, b)| {
                let v: Value = serde_json::from_str(valid[i]).unwrap();
                mutate(&v, &b, KEYS).to_string().into_bytes()
            }),
        (0..valid.len()).prop_map(move |i| valid[i].as_bytes().to_vec()),
        Just(b"{\"ok\":true,\"url\":\"http://example.invalid/\"}".to_vec()),
    ];
    (
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(400),
            Just(401),
            Just(429),
            Just(500),
            Just(503),
            200u16..600
        ],
        prop::option::of(prop_oneof![
            "[0-9]{1,25}",
            " *[0-9]{1,5} *",
            "[ -~]{0,30}",
            Just("Wed, 21 Oct 2015 07:28:00 GMT".to_owned()),
        ]),
        body,
    )
        .prop_map(|(status, retry_after, body)| Answer {
            status,
            retry_after,
            body,
        })
}

/// Serves `answer` to the next request on `listener`.
async fn serve(listener: &TcpListener, answer: &Answer) {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            return;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut response = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    if let Some(value) = &answer.retry_after {
        response.push_str(&format!("Retry-After: {value}\r\n"));
    }
    response.push_str("\r\n");
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(&answer.body);
    let _ = socket.write_all(&bytes).await;
    let _ = socket.shutdown().await;
}

proptest! {
    #![proptest_config(config(300))]

    /// Whatever `apps.connections.open` answers, the result is a `ws(s)://` URL or the typed
    /// error the status and body call for; a 429 carries its `Retry-After` in seconds.
    #[test]
    fn open_answers_map_to_typed_errors(answer in answer()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let api = SocketModeApi::builder(Secret::new("xapp-1-prop"))
                .api_url(format!("http://{}/api/", listener.local_addr().unwrap()))
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            let (result, ()) = tokio::join!(api.open_connection(), serve(&listener, &answer));
            result
        });
        let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let ok = json.as_ref().and_then(|j| j.get("ok")).and_then(Value::as_bool);
        match result {
            Ok(url) => {
                prop_assert!(matches!(url.scheme(), "ws" | "wss"));
                prop_assert_ne!(answer.status, 429);
                prop_assert_eq!(ok, Some(true));
            }
            Err(OpenError::RateLimited { retry_after }) => {
                if answer.status == 429 {
                    let want = answer
                        .retry_after
                        .as_deref()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
                    prop_assert_eq!(retry_after, want);
                } else {
                    prop_assert_eq!(json.as_ref().and_then(|j| j.get("error")).and_then(Value::as_str), Some("ratelimited"));
                }
            }
            Err(OpenError::Status { status }) => {
                prop_assert_eq!(status, answer.status);
                prop_assert!(!(200..300).contains(&status));
            }
            Err(OpenError::Transport(e)) => prop_assert!(false, "a well-formed answer failed the transport: {e}"),
            Err(e) => {
                prop_assert_ne!(answer.status, 429);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
