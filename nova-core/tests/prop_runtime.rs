//! Property tests of the runtime's frame-level entry: whatever the test kit's server writes on
//! the socket, the client never panics, reports a typed error, and keeps or reconnects by the
//! documented rule (DESIGN.md, "Bad input"):
//!
//! - **Message-level bad input** (well-formed frames whose content the handler refuses: not
//!   JSON, JSON of the wrong shape, invalid UTF-8 in a binary message, huge messages within the
//!   limits) never costs the connection: the handler's verdict is reported, every valid message
//!   is delivered in order, the connection and its state are unchanged.
//! - **Protocol-level bad input** (invalid UTF-8 in a text frame, a frame over the size limit,
//!   reserved bits or opcodes, a control frame too long or fragmented, a continuation without a
//!   start, arbitrary bytes) fails the connection (RFC 6455 §7.1.7): everything before it is
//!   delivered in order, the error is a typed [`LifecycleEvent::Error`] from the read side, the
//!   disconnect a typed [`DisconnectReason`], and the client reconnects through its backoff
//!   policy. (One exception, from tungstenite: a close frame with a forbidden code is answered
//!   with 1002 and reported as `ClosedByPeer { code: 1002 }`.)
//!
//! Real sockets: a `nova_testkit::TestServer` scripts the frames, by its API or as raw bytes.
//! A panic anywhere in the process (the connection task included) fails the property.
//!
//! Cases per property: 300 by default (each one a round trip or a reconnect over loopback);
//! `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use nova_core::{
    Client, ClientConfig, ConnectionHandler, DisconnectReason, ErrorHandler, HandlerError,
    LifecycleEvent, Message, MessageHandler, MessageType, Messages,
};
use nova_testkit::hostile::strategy::config;
use nova_testkit::{ServerConnection, ServerOptions, TestServer};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use tokio::sync::broadcast;

/// Frames and messages larger than this fail the connection (the client's limits).
const MAX: usize = 16 * 1024;
const LONG: Duration = Duration::from_secs(20);

/// Every panic of the process, whatever the thread, with its message.
fn panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    PANICS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut seen) = PANICS.get().unwrap().lock() {
                seen.push(info.to_string());
            }
            previous(info);
        }));
        Mutex::new(Vec::new())
    })
}

fn no_panic() -> Result<(), TestCaseError> {
    let seen = panics().lock().unwrap();
    prop_assert!(seen.is_empty(), "a panic: {seen:?}");
    Ok(())
}

/// Accepts JSON objects; everything else is invalid at message level.
#[derive(Clone, Default)]
struct JsonObjects {
    refused: Arc<AtomicUsize>,
}

impl ConnectionHandler for JsonObjects {}
impl MessageHandler for JsonObjects {
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        match message.json::<serde_json::Value>() {
            Ok(v) if v.is_object() => MessageType::Unknown,
            Ok(_) => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                MessageType::Invalid(HandlerError::new("not a JSON object"))
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                MessageType::Invalid(HandlerError::new(e.to_string()))
            }
        }
    }
}
impl nova_core::SubscriptionHandler for JsonObjects {}
impl nova_core::AuthHandler for JsonObjects {}
impl ErrorHandler for JsonObjects {}
impl nova_core::HeartbeatHandler for JsonObjects {}
impl nova_core::RateLimitHandler for JsonObjects {}

/// One frame the server sends in the message-level property.
#[derive(Clone, Debug)]
enum Good {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

impl Good {
    /// The payload's size.
    fn len(&self) -> usize {
        match self {
            Good::Text(t) => t.len(),
            Good::Binary(b) | Good::Ping(b) | Good::Pong(b) => b.len(),
        }
    }

    /// The message the handler accepts, if it does.
    fn accepted(&self) -> Option<Message> {
        let (message, bytes) = match self {
            Good::Text(t) => (Message::text(t.clone()), t.as_bytes()),
            Good::Binary(b) => (Message::binary(b.clone()), b.as_slice()),
            Good::Ping(_) | Good::Pong(_) => return None,
        };
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .filter(serde_json::Value::is_object)
            .map(|_| message)
    }
}

fn good() -> impl Strategy<Value = Good> {
    let keys = &["id", "method", "params", "result", "type", "data"];
    let json = proptest::collection::vec(any::<u8>(), 0..128)
        .prop_map(move |b| nova_testkit::hostile::arbitrary_json(&b, keys));
    prop_oneof![
        3 => json.clone().prop_map(|v| Good::Text(v.to_string())),
        1 => json.prop_map(|v| Good::Binary(v.to_string().into_bytes())),
        2 => any::<String>().prop_map(Good::Text),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Good::Binary),
        1 => (1..MAX).prop_map(|n| Good::Text(format!("{{\"x\":\"{}\"}}", "y".repeat(n.saturating_sub(8))))),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Good::Ping),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Good::Pong),
    ]
    // Within the client's limits (larger ones are the other property's).
    .prop_filter("within the size limit", |g| g.len() < MAX)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client_config(server: &TestServer) -> ClientConfig {
    ClientConfig::builder(server.url())
        .name("prop")
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .jitter(0.0)
        .stable_after(Duration::from_secs(3600))
        .max_sizes(MAX, MAX)
        .inbound(4096, nova_core::OverflowPolicy::Wait)
        .build()
        .unwrap()
}

/// Reads messages until `sentinel`, returning those before it.
async fn until_sentinel(messages: &mut Messages, sentinel: &str) -> Vec<Message> {
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout(LONG, messages.recv()).await;
        let Ok(Some(Ok(message))) = next else {
            panic!("no sentinel {sentinel}; got {seen:?} then {next:?}");
        };
        if message.as_text() == Some(sentinel) {
            return seen;
        }
        seen.push(message);
    }
}

/// Well-formed frames of any content: each valid message delivered in order, each other one
/// refused at message level, and the connection never lost.
#[test]
fn message_level_bad_input_never_costs_the_connection() {
    let _ = panics();
    let rt = runtime();
    let handler = JsonObjects::default();
    let refused = handler.refused.clone();
    let (server, client, messages, conn) = rt.block_on(async {
        let server = TestServer::start_with(
            ServerOptions::default()
                .with_echo(false)
                .with_recording(false),
        )
        .await
        .unwrap();
        let (client, messages) = Client::connect(client_config(&server), handler);
        let conn = server.next_connection().await;
        client.wait_connected(LONG).await.unwrap();
        (server, client, messages, conn)
    });
    let messages = RefCell::new(messages);
    let case = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config(300));
    runner
        .run(&proptest::collection::vec(good(), 0..12), |frames| {
            // After a failure the connection may be gone: fail at once while shrinking.
            prop_assert!(
                !conn.is_closed(),
                "the connection was lost by an earlier case"
            );
            let n = case.fetch_add(1, Ordering::SeqCst);
            let sentinel = format!("{{\"sentinel\":{n}}}");
            let refused_before = refused.load(Ordering::SeqCst);
            let mut guard = messages.borrow_mut();
            let messages: &mut Messages = &mut guard;
            let delivered = rt.block_on(async {
                for frame in &frames {
                    match frame {
                        Good::Text(t) => conn.send_text(t.clone()).await,
                        Good::Binary(b) => conn.send_binary(b.clone()).await,
                        Good::Ping(p) => conn.send_ping(p.clone()).await,
                        Good::Pong(p) => conn.send_pong(p.clone()).await,
                    }
                }
                conn.send_text(sentinel.clone()).await;
                until_sentinel(messages, &sentinel).await
            });
            let expected: Vec<Message> = frames.iter().filter_map(Good::accepted).collect();
            prop_assert_eq!(&delivered, &expected);
            let data = frames
                .iter()
                .filter(|f| matches!(f, Good::Text(_) | Good::Binary(_)))
                .count();
            prop_assert_eq!(
                refused.load(Ordering::SeqCst) - refused_before,
                data - expected.len()
            );
            prop_assert_eq!(server.connections_accepted(), 1, "the connection was lost");
            prop_assert!(!conn.is_closed());
            let state = client.current_state();
            prop_assert!(state.status.is_open(), "{state:?}");
            prop_assert_eq!(state.reconnection_attempts, 0);
            no_panic()
        })
        .unwrap();
    rt.block_on(async {
        client.close(1000, "done").await.unwrap();
        server.shutdown().await;
    });
}

/// Bytes that are not a valid frame, or frames the protocol forbids, built by hand.
#[derive(Clone, Debug)]
enum Bad {
    /// A text frame whose payload is not UTF-8.
    InvalidUtf8(Vec<u8>),
    /// A frame whose length is over the client's limit (only the header and part of the body
    /// are sent).
    Oversized { len: u64, binary: bool },
    /// A frame with RSV bits set (no extension negotiated).
    Reserved { rsv: u8, opcode: u8 },
    /// A reserved opcode (3-7, 11-15).
    ReservedOpcode(u8),
    /// A ping or pong longer than 125 bytes.
    LongControl { len: usize, ping: bool },
    /// A ping or close without FIN.
    FragmentedControl(u8),
    /// A continuation frame with nothing to continue.
    LoneContinuation(Vec<u8>),
    /// A new data frame while a fragmented message is open.
    InterleavedData(Vec<u8>),
    /// A close frame with a one-byte payload.
    ShortClose,
    /// A close frame with an invalid code.
    CloseCode(u16),
    /// Arbitrary bytes (they may or may not parse as frames).
    Arbitrary(Vec<u8>),
}

impl Bad {
    /// Whether the bytes surely break the protocol (arbitrary bytes may not).
    fn surely_fatal(&self) -> bool {
        !matches!(self, Bad::Arbitrary(_))
    }

    /// A close frame with a code the protocol forbids: tungstenite answers it with 1002
    /// "Protocol violation" and hands that frame up as the peer's close, so the runtime reports
    /// `ClosedByPeer { code: 1002 }` rather than a protocol error of its own.
    fn answered_with_1002(&self) -> bool {
        matches!(self, Bad::CloseCode(_))
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Bad::InvalidUtf8(valid) => {
                let mut payload = valid.clone();
                payload.extend_from_slice(&[0xC3, 0x28, 0xFF]);
                frame(0x81, &payload)
            }
            Bad::Oversized { len, binary } => {
                let mut out = vec![if *binary { 0x82 } else { 0x81 }, 127];
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&[b'x'; 64]);
                out
            }
            Bad::Reserved { rsv, opcode } => {
                frame(0x80 | (rsv & 0x70).max(0x10) | (opcode & 0x0f), b"{}")
            }
            Bad::ReservedOpcode(op) => frame(0x80 | op, b"{}"),
            Bad::LongControl { len, ping } => {
                frame(if *ping { 0x89 } else { 0x8A }, &vec![0; *len])
            }
            Bad::FragmentedControl(op) => frame(*op, b""),
            Bad::LoneContinuation(p) => frame(0x80, p),
            Bad::InterleavedData(p) => {
                let mut out = frame(0x01, b"{\"a\":");
                out.extend(frame(0x81, p));
                out
            }
            Bad::ShortClose => frame(0x88, &[0x03]),
            Bad::CloseCode(code) => frame(0x88, &code.to_be_bytes()),
            Bad::Arbitrary(b) => b.clone(),
        }
    }
}

/// An unmasked server frame: first byte as given, then the length and the payload.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(u8::try_from(n).unwrap()),
        n @ 126..=65535 => {
            out.push(126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn bad() -> impl Strategy<Value = Bad> {
    let small = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        "[a-z{}\":]{0,30}".prop_map(|s| Bad::InvalidUtf8(s.into_bytes())),
        (
            prop_oneof![
                Just(MAX as u64 + 1),
                Just(u64::MAX),
                Just(1 << 63),
                (MAX as u64 + 1)..(1 << 40)
            ],
            any::<bool>()
        )
            .prop_map(|(len, binary)| Bad::Oversized { len, binary }),
        (
            1u8..8,
            prop_oneof![Just(1u8), Just(2), Just(8), Just(9), Just(10)]
        )
            .prop_map(|(rsv, opcode)| Bad::Reserved {
                rsv: rsv << 4,
                opcode
            }),
        prop_oneof![3u8..8, 11u8..16].prop_map(Bad::ReservedOpcode),
        (126usize..300, any::<bool>()).prop_map(|(len, ping)| Bad::LongControl { len, ping }),
        prop_oneof![Just(0x09u8), Just(0x0A), Just(0x08)].prop_map(Bad::FragmentedControl),
        small().prop_map(Bad::LoneContinuation),
        small().prop_map(Bad::InterleavedData),
        Just(Bad::ShortClose),
        prop_oneof![
            0u16..1000,
            Just(1004),
            Just(1005),
            Just(1006),
            Just(1015),
            1016u16..3000,
            5000u16..=u16::MAX
        ]
        .prop_map(Bad::CloseCode),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bad::Arbitrary),
    ]
}

/// Reads events until the client is connected again; returns them all.
async fn until_reconnected(
    events: &mut broadcast::Receiver<LifecycleEvent>,
    index: u64,
) -> Option<Vec<LifecycleEvent>> {
    let mut seen = Vec::new();
    let done = tokio::time::timeout(LONG, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    let last = matches!(e, LifecycleEvent::Connected { connection_index, .. } if connection_index == index);
                    seen.push(e);
                    if last {
                        return true;
                    }
                }
                // The lifecycle ring is small (16 events) and a case makes about ten in a burst:
                // when this reader was not scheduled in time it lost some, maybe the
                // `Connected` it waits for. The case's events cannot be checked then; the
                // caller waits for the reconnection on the server's side.
                Err(broadcast::error::RecvError::Lagged(_)) => return false,
                Err(broadcast::error::RecvError::Closed) => return true,
            }
        }
    })
    .await;
    assert!(done.is_ok(), "not reconnected; saw {seen:#?}");
    done.unwrap_or(false).then_some(seen)
}

/// The read-side error kinds the runtime reports (bounded labels).
const READ_KINDS: &[&str] = &["protocol", "message_too_large", "connection_lost"];

/// Hand-made bad frames after valid ones: the valid ones are delivered, the connection fails
/// with a typed error, and the client reconnects through its backoff.
#[test]
fn protocol_level_bad_input_fails_the_connection_and_the_client_reconnects() {
    let _ = panics();
    let rt = runtime();
    let (server, client, messages, events, first) = rt.block_on(async {
        let server = TestServer::start_with(
            ServerOptions::default()
                .with_echo(false)
                .with_recording(false),
        )
        .await
        .unwrap();
        let (client, messages) = Client::connect(client_config(&server), nova_core::DefaultHandler);
        let events = client.events();
        let conn = server.next_connection().await;
        client.wait_connected(LONG).await.unwrap();
        (server, client, messages, events, conn)
    });
    let state = RefCell::new((messages, events, first, 0u64));
    let mut runner = TestRunner::new(config(300));
    let prefix = proptest::collection::vec("[a-z0-9]{0,12}", 0..4);
    runner
        .run(&(prefix, bad(), any::<bool>()), |(prefix, bad, close)| {
            let mut guard = state.borrow_mut();
            let (messages, events, conn, index) = &mut *guard;
            let sentinel = format!("sentinel-{index}");
            let (delivered, seen, next) = rt.block_on(async {
                for text in &prefix {
                    conn.send_text(text.clone()).await;
                }
                conn.send_raw(bad.bytes()).await;
                conn.send_text(sentinel.clone()).await;
                // End the connection whatever the client made of the bytes: a reset, after a
                // close frame or not.
                if close {
                    conn.send_raw(frame(0x88, &1000u16.to_be_bytes())).await;
                }
                conn.drop_tcp();
                let seen = until_reconnected(events, *index + 1).await;
                let next: ServerConnection = server
                    .next_connection_timeout(LONG)
                    .await
                    .expect("the client reconnects");
                let mut delivered = Vec::new();
                while let Some(Some(Ok(m))) = messages.recv().now_or_never() {
                    delivered.push(m);
                }
                (delivered, seen, next)
            });
            *conn = next;
            *index += 1;
            // Everything before the bad bytes arrives, in order.
            let texts: Vec<&str> = delivered.iter().filter_map(Message::as_text).collect();
            prop_assert!(texts.len() >= prefix.len(), "{texts:?} {prefix:?}");
            prop_assert_eq!(
                &texts[..prefix.len()],
                &prefix.iter().map(String::as_str).collect::<Vec<_>>()[..]
            );
            let Some(seen) = seen else {
                // Events were lost to the ring's lag: only the delivery could be checked.
                return Ok(());
            };
            let disconnect = seen.iter().find_map(|e| match e {
                LifecycleEvent::Disconnected { reason, .. } => Some(reason.clone()),
                _ => None,
            });
            let Some(reason) = disconnect else {
                return Err(TestCaseError::fail(format!("no disconnect: {seen:#?}")));
            };
            prop_assert!(
                seen.iter()
                    .any(|e| matches!(e, LifecycleEvent::ReconnectScheduled { .. })),
                "{seen:#?}"
            );
            for e in &seen {
                if let LifecycleEvent::Error {
                    kind,
                    source,
                    message,
                } = e
                {
                    prop_assert!(!message.is_empty());
                    if *source == "read" {
                        prop_assert!(
                            READ_KINDS.contains(kind),
                            "read error of kind {kind}: {message}"
                        );
                    }
                }
            }
            if bad.surely_fatal() {
                // The sentinel after the bad bytes never arrives, and the connection failed at
                // the protocol level (or, for a close frame the client answers, by the peer).
                prop_assert!(!texts.contains(&sentinel.as_str()), "{bad:?}: {texts:?}");
                let protocol = matches!(reason, DisconnectReason::ProtocolError(_));
                let violation = matches!(
                    reason,
                    DisconnectReason::ClosedByPeer {
                        code: Some(1002),
                        ..
                    }
                );
                if bad.answered_with_1002() {
                    prop_assert!(protocol || violation, "{bad:?}: disconnected by {reason:?}");
                } else {
                    prop_assert!(protocol, "{bad:?}: disconnected by {reason:?}");
                    prop_assert!(
                        seen.iter()
                            .any(|e| matches!(e, LifecycleEvent::Error { source: "read", .. })),
                        "{bad:?}: no read error in {seen:#?}"
                    );
                }
            }
            let state = client.current_state();
            prop_assert!(state.stopped.is_none(), "{state:?}");
            no_panic()
        })
        .unwrap();
    rt.block_on(async {
        client.close(1000, "done").await.unwrap();
        server.shutdown().await;
    });
}
