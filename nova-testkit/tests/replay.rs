//! Record and replay: the format, the relay (against `TestServer`, plain and TLS), the replay
//! server and its matcher (with a raw tokio-tungstenite client and a nova client).

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nova_core::{Client, ClientConfig, DefaultHandler};
use nova_testkit::replay::{
    Direction, Issue, Matcher, Pace, RecordedFrame, Recording, RecordingError, Redactions, Relay,
    RelayOptions, ReplayOptions, ReplayServer,
};
use nova_testkit::{TestCa, TestServer};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

const WAIT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<TcpStream>;

async fn connect(url: &str, addr: std::net::SocketAddr) -> Ws {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

/// The next data or close message (pings and pongs skipped); `None` at the end.
async fn next(ws: &mut Ws) -> Option<Message> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

fn text(s: &str) -> RecordedFrame {
    RecordedFrame::Text(s.to_owned())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------
// The format

#[test]
fn every_kind_of_record_round_trips() {
    let mut rec = Recording::new("wss://user:pw@example.com/ws?api_key=k");
    rec.header.note = Some("hand-written".into());
    let c0 = rec.open("/ws?ticket=t", Some("json"));
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};
    rec.frame(c0, ms(1), C2S, text(r#"{"a":"é\n"}"#));
    rec.frame(c0, ms(2), S2C, RecordedFrame::Binary(vec![0, 1, 255]));
    rec.frame(c0, ms(3), S2C, RecordedFrame::Ping(vec![]));
    rec.frame(c0, ms(3), C2S, RecordedFrame::Pong(b"p".to_vec()));
    rec.frame(c0, ms(4), S2C, RecordedFrame::close(4000, "bye"));
    rec.frame(c0, ms(4), C2S, RecordedFrame::Close(None));
    let c1 = rec.open("/ws", None);
    rec.frame(c1, ms(9), S2C, RecordedFrame::Drop);
    let text_form = rec.to_jsonl();
    assert_eq!(text_form.lines().count(), 10);
    assert!(!text_form.contains("pw") && !text_form.contains("api_key"));
    let back = Recording::parse(&text_form).unwrap();
    assert_eq!(back, rec);
    assert_eq!(back.header.url, "wss://example.com/ws?<redacted>");
    let conns = back.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[0].frames.len(), 6);
    assert_eq!(conns[0].frames[0].0, 3, "the line of the first frame");
    assert_eq!(conns[1].line, 9);
    // Through a file too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/rec.jsonl");
    rec.save(&path).unwrap();
    assert_eq!(Recording::load(&path).unwrap(), rec);
}

fn line_error(text: &str) -> (usize, String) {
    match Recording::parse(text).unwrap_err() {
        RecordingError::Line { line, message } => (line, message),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn bad_files_name_the_line() {
    let header = r#"{"type":"header","format":"nova-recording","version":1,"url":"ws://x"}"#;
    let open = r#"{"type":"open","conn":0,"t_us":0,"target":"/"}"#;
    assert!(matches!(Recording::parse(""), Err(RecordingError::Empty)));
    assert!(matches!(
        Recording::parse("\n\n"),
        Err(RecordingError::Empty)
    ));

    let (line, msg) = line_error(open);
    assert_eq!(line, 1);
    assert!(msg.contains("header"), "{msg}");

    let v2 = r#"{"type":"header","format":"nova-recording","version":2,"url":"ws://x"}"#;
    let err = Recording::parse(v2).unwrap_err();
    assert!(matches!(
        err,
        RecordingError::UnsupportedVersion {
            line: 1,
            found: 2,
            supported: 1
        }
    ));
    assert!(err.to_string().contains("version 2"), "{err}");

    let (line, msg) = line_error(&format!("{header}\n{open}\n{{not json\n"));
    assert_eq!(line, 3, "{msg}");

    let frame = r#"{"type":"frame","conn":1,"t_us":5,"dir":"s2c","kind":"text","text":"x"}"#;
    let (line, msg) = line_error(&format!("{header}\n{open}\n{frame}"));
    assert_eq!(line, 3);
    assert!(msg.contains("before its `open`"), "{msg}");

    let weird = r#"{"type":"frame","conn":0,"t_us":5,"dir":"s2c","kind":"smoke"}"#;
    let (line, msg) = line_error(&format!("{header}\n{open}\n{weird}"));
    assert_eq!(line, 3);
    assert!(msg.contains("unknown frame kind `smoke`"), "{msg}");

    let no_text = r#"{"type":"frame","conn":0,"t_us":5,"dir":"c2s","kind":"text"}"#;
    let (_, msg) = line_error(&format!("{header}\n{open}\n{no_text}"));
    assert!(msg.contains("without `text`"), "{msg}");

    let bad_b64 = r#"{"type":"frame","conn":0,"t_us":5,"dir":"c2s","kind":"binary","base64":"@@"}"#;
    let (_, msg) = line_error(&format!("{header}\n{open}\n{bad_b64}"));
    assert!(msg.contains("base64"), "{msg}");

    let typo = r#"{"type":"frame","conn":0,"t_us":5,"dir":"c2s","kind":"text","txt":"x"}"#;
    let (_, msg) = line_error(&format!("{header}\n{open}\n{typo}"));
    assert!(msg.contains("txt"), "{msg}");

    let bad_dir = r#"{"type":"frame","conn":0,"t_us":5,"dir":"up","kind":"drop"}"#;
    assert_eq!(line_error(&format!("{header}\n{open}\n{bad_dir}")).0, 3);

    let (line, msg) = line_error(&format!("{header}\n\n{open}"));
    assert_eq!(line, 2);
    assert!(msg.contains("blank"), "{msg}");
    assert_eq!(line_error(&format!("{header}\n{open}\n{open}")).0, 3);
    // Trailing blank lines are fine.
    assert!(Recording::parse(&format!("{header}\n{open}\n\n\n")).is_ok());

    let missing = Recording::load("/nonexistent/rec.jsonl").unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/rec.jsonl"),
        "{missing}"
    );
}

// ---------------------------------------------------------------------------------------------
// The relay

fn frames(rec: &Recording, conn: usize) -> Vec<(Direction, RecordedFrame)> {
    rec.connections()[conn]
        .frames
        .iter()
        .map(|(_, f)| (f.dir, f.frame.clone()))
        .collect()
}

#[tokio::test]
async fn the_relay_records_both_ways_closes_drops_and_reconnects() {
    let upstream = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.jsonl");
    let options = RelayOptions::default()
        .file(&file)
        .note("relay test")
        .redactions(Redactions::new().field("secret").string("KEY123"));
    let relay = Relay::start(&upstream.url(), options).await.unwrap();
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};

    // Connection 0: echo, redaction, then the server closes.
    let target = format!("{}/stream?token=KEY123", relay.url());
    let mut ws = connect(&target, relay.addr()).await;
    ws.send(Message::text(r#"{"op":"auth","secret":"hush"}"#))
        .await
        .unwrap();
    next(&mut ws).await.unwrap();
    ws.send(Message::binary(b"KEY123!".to_vec())).await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::binary(b"KEY123!".to_vec()))
    );
    let server_side = upstream.next_connection().await;
    assert_eq!(
        server_side.uri(),
        "/stream?token=KEY123",
        "the client's target is forwarded"
    );
    server_side.close(4001, "go away").await;
    let Some(Message::Close(Some(close))) = next(&mut ws).await else {
        panic!("a close")
    };
    assert_eq!(u16::from(close.code), 4001);
    assert_eq!(next(&mut ws).await, None);

    // Connection 1: the server drops the TCP connection.
    let mut ws = connect(&relay.url(), relay.addr()).await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("hello")));
    upstream.next_connection().await.drop_tcp();
    assert_eq!(next(&mut ws).await, None);

    // Connection 2: the client closes.
    let mut ws = connect(&relay.url(), relay.addr()).await;
    ws.close(Some(CloseFrame {
        code: 1000.into(),
        reason: "done".into(),
    }))
    .await
    .unwrap();
    assert!(
        matches!(next(&mut ws).await, Some(Message::Close(_))),
        "the close answer"
    );
    assert_eq!(next(&mut ws).await, None);

    let rec = relay.finish(WAIT).await;
    let conns = rec.connections();
    assert_eq!(conns.len(), 3);
    assert_eq!(conns[0].open.target, "/stream?<redacted>");
    assert_eq!(rec.header.note.as_deref(), Some("relay test"));
    let c0 = frames(&rec, 0);
    assert_eq!(c0[0], (C2S, text(r#"{"op":"auth","secret":"<redacted>"}"#)));
    assert_eq!(c0[1], (S2C, text(r#"{"op":"auth","secret":"<redacted>"}"#)));
    assert_eq!(c0[2], (C2S, RecordedFrame::Binary(b"<redacted>!".to_vec())));
    assert_eq!(c0[3], (S2C, RecordedFrame::Binary(b"<redacted>!".to_vec())));
    assert_eq!(c0[4], (S2C, RecordedFrame::close(4001, "go away")));
    assert_eq!(c0[5].0, C2S);
    assert!(matches!(c0[5].1, RecordedFrame::Close(_)), "{c0:?}");
    assert_eq!(
        frames(&rec, 1),
        vec![
            (C2S, text("hello")),
            (S2C, text("hello")),
            (S2C, RecordedFrame::Drop)
        ]
    );
    let c2 = frames(&rec, 2);
    assert_eq!(c2[0], (C2S, RecordedFrame::close(1000, "done")));
    assert!(matches!(c2[1], (S2C, RecordedFrame::Close(_))), "{c2:?}");
    // Times grow within a connection.
    let times: Vec<_> = conns[0].frames.iter().map(|(_, f)| f.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // The file holds the same recording, and no secret.
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(!written.contains("KEY123") && !written.contains("hush"));
    assert_eq!(Recording::parse(&written).unwrap(), rec);
    upstream.shutdown().await;
}

#[tokio::test]
async fn the_relay_speaks_tls_upstream_and_passes_refusals_on() {
    let ca = TestCa::new();
    let options = nova_testkit::ServerOptions::default().with_tls(ca.acceptor(&["localhost"]));
    let upstream = TestServer::start_with(options).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca_der()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let relay = Relay::start(&upstream.url(), RelayOptions::default().tls(Arc::new(tls)))
        .await
        .unwrap();
    let mut ws = connect(&relay.url(), relay.addr()).await;
    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("over tls")));
    drop(ws);

    upstream.refuse_next_handshakes(1, 503, vec![("Retry-After".into(), "2".into())]);
    let tcp = TcpStream::connect(relay.addr()).await.unwrap();
    let err = tokio_tungstenite::client_async(relay.url(), tcp)
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("{err}")
    };
    assert_eq!(response.status().as_u16(), 503);

    let rec = relay.finish(WAIT).await;
    let conns = rec.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(
        frames(&rec, 0)[0],
        (Direction::ClientToServer, text("over tls"))
    );
    assert_eq!(frames(&rec, 0).last().unwrap().1, RecordedFrame::Drop);
    assert_eq!(conns[1].open.refused, Some(503));

    // A refused connection is refused again on replay, then the next one plays.
    let server = ReplayServer::start(rec, ReplayOptions::default())
        .await
        .unwrap();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let mut ws = tokio_tungstenite::client_async(server.url(), tcp)
        .await
        .unwrap()
        .0;
    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("over tls")));
    drop(ws); // as recorded
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let err = tokio_tungstenite::client_async(server.url(), tcp)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    server.finish(WAIT).await.assert_ok();
}

#[test]
fn a_bad_upstream_url_is_a_typed_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let err = Relay::start("http://example.com/?key=s", RelayOptions::default())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ws or wss") && !msg.contains("key=s"), "{msg}");
    });
}

// ---------------------------------------------------------------------------------------------
// The replay server and its matcher

/// hello, then expects a subscribe, answers it, pushes data, expects an unsubscribe.
fn script() -> Recording {
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};
    let mut rec = Recording::new("wss://venue.example/ws");
    let c = rec.open("/ws", None);
    rec.frame(c, ms(0), S2C, text(r#"{"hello":true}"#)); // line 3
    rec.frame(
        c,
        ms(10),
        C2S,
        text(r#"{"id":1,"op":"subscribe","args":["btc"],"ts":100}"#),
    ); // 4
    rec.frame(c, ms(20), S2C, text(r#"{"id":1,"ok":true}"#)); // 5
    rec.frame(c, ms(30), S2C, text(r#"{"topic":"btc","px":1}"#)); // 6
    rec.frame(
        c,
        ms(40),
        C2S,
        text(r#"{"id":2,"op":"unsubscribe","args":["btc"],"ts":200}"#),
    ); // 7
    rec.frame(c, ms(50), S2C, text(r#"{"id":2,"ok":true}"#)); // 8
    rec
}

fn options() -> ReplayOptions {
    ReplayOptions::default().matcher(Matcher::volatile())
}

#[tokio::test]
async fn a_faithful_client_replays_ok_with_ids_correlated() {
    let server = ReplayServer::start(script(), options().pace(Pace::Recorded { speed: 10.0 }))
        .await
        .unwrap();
    let mut ws = connect(&server.url(), server.addr()).await;
    assert_eq!(
        next(&mut ws).await,
        Some(Message::text(r#"{"hello":true}"#))
    );
    // Other ids and timestamps than recorded: the answers carry the client's ids.
    ws.send(Message::text(
        r#"{"op":"subscribe","args":["btc"],"id":41,"ts":9}"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::text(r#"{"id":41,"ok":true}"#))
    );
    assert_eq!(
        next(&mut ws).await,
        Some(Message::text(r#"{"topic":"btc","px":1}"#))
    );
    ws.send(Message::Ping(b"keepalive".to_vec().into()))
        .await
        .unwrap(); // skipped
    ws.send(Message::text(
        r#"{"id":42,"op":"unsubscribe","args":["btc"],"ts":10}"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::text(r#"{"id":42,"ok":true}"#))
    );
    assert!(server.wait_played(WAIT).await);
    ws.close(None).await.unwrap();
    let report = server.finish(WAIT).await;
    report.assert_ok();
    assert_eq!((report.matched, report.sent, report.completed), (2, 4, 1));
    assert!(report.to_string().contains("OK"), "{report}");
}

#[tokio::test]
async fn a_different_frame_is_a_mismatch_with_its_line() {
    let server = ReplayServer::start(script(), options()).await.unwrap();
    let mut ws = connect(&server.url(), server.addr()).await;
    next(&mut ws).await.unwrap();
    ws.send(Message::text(
        r#"{"id":1,"op":"subscribe","args":["eth"],"ts":100}"#,
    ))
    .await
    .unwrap();
    // The server stops the connection with the issue.
    let Some(Message::Close(Some(close))) = next(&mut ws).await else {
        panic!("a close")
    };
    assert_eq!(
        u16::from(close.code),
        nova_testkit::replay::MISMATCH_CLOSE_CODE
    );
    assert!(close.reason.contains("line 4"), "{}", close.reason);
    let report = server.finish(WAIT).await;
    assert!(!report.is_ok());
    let Issue::Mismatch {
        conn,
        line,
        detail,
        got,
        ..
    } = &report.issues[0]
    else {
        panic!("{report}")
    };
    assert_eq!((*conn, *line), (0, 4));
    assert_eq!(detail, r#"at /args/0: expected "btc", got "eth""#);
    assert!(got.contains("eth"));
    let shown = report.to_string();
    assert!(
        shown.contains("line 4") && shown.contains("expected:") && shown.contains("got:"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_client_that_leaves_early_is_missing_frames() {
    let server = ReplayServer::start(script(), options()).await.unwrap();
    let mut ws = connect(&server.url(), server.addr()).await;
    next(&mut ws).await.unwrap();
    ws.close(None).await.unwrap();
    let report = server.finish(WAIT).await;
    assert!(
        matches!(&report.issues[..], [Issue::Missing { line: 4, .. }]),
        "{report}"
    );
}

#[tokio::test]
async fn silence_times_out_and_extra_frames_and_connections_are_reported() {
    let opts = options().expect_timeout(ms(200));
    let server = ReplayServer::start(script(), opts).await.unwrap();
    let mut ws = connect(&server.url(), server.addr()).await;
    next(&mut ws).await.unwrap();
    let report = server.finish(WAIT).await;
    assert!(
        matches!(&report.issues[..], [Issue::Timeout { line: 4, .. }]),
        "{report}"
    );
    drop(ws);

    // A script that ends after the hello: anything more from the client is extra.
    let mut short = Recording::new("ws://x");
    let c = short.open("/", None);
    short.frame(c, ms(0), Direction::ServerToClient, text("hi"));
    let server = ReplayServer::start(short, options()).await.unwrap();
    let mut ws = connect(&server.url(), server.addr()).await;
    assert_eq!(next(&mut ws).await, Some(Message::text("hi")));
    ws.send(Message::text("one more")).await.unwrap();
    let _second = connect(&server.url(), server.addr()).await;
    assert!(
        nova_testkit::wait_until(|| server.report().issues.len() == 2, WAIT).await,
        "{}",
        server.report()
    );
    let report = server.finish(WAIT).await;
    assert!(
        report.issues.contains(&Issue::Unexpected {
            conn: 0,
            after_line: 3,
            got: "one more".into()
        }),
        "{report}"
    );
    assert!(
        report
            .issues
            .contains(&Issue::UnexpectedConnection { index: 1 }),
        "{report}"
    );

    // A recorded connection never opened.
    let server = ReplayServer::start(script(), options()).await.unwrap();
    let report = server.finish(ms(50)).await;
    assert_eq!(
        report.issues,
        vec![Issue::NotConnected { conn: 0, line: 2 }]
    );
}

#[tokio::test]
async fn lookahead_accepts_requests_sent_out_of_order_and_skips_heartbeats() {
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};
    let mut rec = Recording::new("ws://x");
    let c = rec.open("/", None);
    rec.frame(c, ms(0), C2S, text(r#"{"sub":"a"}"#));
    rec.frame(c, ms(0), C2S, text(r#"{"op":1}"#)); // a heartbeat: skipped
    rec.frame(c, ms(0), C2S, text(r#"{"sub":"b"}"#));
    rec.frame(c, ms(1), S2C, text("both"));
    let matcher = Matcher::json().skip_client_json("op", json!(1));

    let strict = ReplayServer::start(
        rec.clone(),
        ReplayOptions::default().matcher(matcher.clone()),
    )
    .await
    .unwrap();
    let mut ws = connect(&strict.url(), strict.addr()).await;
    ws.send(Message::text(r#"{"sub":"b"}"#)).await.unwrap();
    let report = strict.finish(WAIT).await;
    assert!(
        matches!(&report.issues[..], [Issue::Mismatch { line: 3, .. }]),
        "{report}"
    );

    let lenient = ReplayServer::start(rec, ReplayOptions::default().matcher(matcher).lookahead(2))
        .await
        .unwrap();
    let mut ws = connect(&lenient.url(), lenient.addr()).await;
    ws.send(Message::text(r#"{"op":1}"#)).await.unwrap();
    ws.send(Message::text(r#"{"sub":"b"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"op":1}"#)).await.unwrap();
    ws.send(Message::text(r#"{"sub":"a"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("both")));
    lenient.finish(WAIT).await.assert_ok();
}

// ---------------------------------------------------------------------------------------------
// A nova client, recorded and replayed, across a reconnect

#[tokio::test]
async fn a_nova_client_session_with_a_reconnect_replays() {
    let upstream = TestServer::start().await.unwrap();
    let relay = Relay::start(&upstream.url(), RelayOptions::default())
        .await
        .unwrap();
    let run = |url: String| async move {
        let config = ClientConfig::builder(url)
            .backoff(ms(10), ms(50))
            .build()
            .unwrap();
        let (client, mut messages) = Client::connect(config, DefaultHandler);
        client.send_text("first").await.unwrap();
        let a = messages.recv().await.unwrap().unwrap();
        (client, messages, a)
    };
    let (client, mut messages, a) = run(relay.url()).await;
    assert_eq!(a.as_text(), Some("first"));
    upstream.next_connection().await.drop_tcp();
    upstream.next_connection().await; // the client is back
    client.send_text("second").await.unwrap();
    let b = messages.recv().await.unwrap().unwrap();
    assert_eq!(b.as_text(), Some("second"));
    client.close(1000, "done").await.unwrap();
    let rec = relay.finish(WAIT).await;
    upstream.shutdown().await;
    assert_eq!(rec.connections().len(), 2, "{}", rec.to_jsonl());

    // Replayed without the upstream.
    let server = ReplayServer::start(rec, ReplayOptions::default())
        .await
        .unwrap();
    let (client, mut messages, a) = run(server.url()).await;
    assert_eq!(a.as_text(), Some("first"));
    // Sent while reconnecting or after: buffered and flushed either way.
    client.send_text("second").await.unwrap();
    let b = messages.recv().await.unwrap().unwrap();
    assert_eq!(b.as_text(), Some("second"));
    client.close(1000, "done").await.unwrap();
    server.finish(WAIT).await.assert_ok();
}

// ---------------------------------------------------------------------------------------------
// Several endpoints

#[tokio::test]
async fn connections_are_matched_to_recordings_by_path() {
    use Direction::ServerToClient as S2C;
    let mut rec = Recording::new("ws://x");
    let private = rec.open("/private", None);
    rec.frame(private, ms(0), S2C, text("private hello"));
    let public = rec.open("/public?ticket=t", None);
    rec.frame(public, ms(0), S2C, text("public hello"));
    let server = ReplayServer::start(rec, ReplayOptions::default())
        .await
        .unwrap();
    let mut ws = connect(
        &format!("{}/public?ticket=other", server.url()),
        server.addr(),
    )
    .await;
    assert_eq!(next(&mut ws).await, Some(Message::text("public hello")));
    let mut ws2 = connect(&format!("{}/private", server.url()), server.addr()).await;
    assert_eq!(next(&mut ws2).await, Some(Message::text("private hello")));
    server.finish(WAIT).await.assert_ok();
}

#[tokio::test]
async fn a_second_upstream_the_server_points_to_is_relayed_and_replayed() {
    // The main server tells the client where to go next; the other one echoes.
    let other = TestServer::start().await.unwrap();
    let resume_url = other.url();
    let answer = format!(r#"{{"resume_url":"{resume_url}/resume"}}"#);
    let responder: nova_testkit::Responder =
        Arc::new(move |_, _| vec![nova_testkit::Frame::from(answer.as_str())]);
    let main =
        TestServer::start_with(nova_testkit::ServerOptions::default().with_responder(responder))
            .await
            .unwrap();
    let relay = Relay::start(&main.url(), RelayOptions::default().also(&resume_url))
        .await
        .unwrap();

    /// Asks the first server where to go, goes there, says hello.
    async fn client(url: String, addr: std::net::SocketAddr) -> String {
        let mut ws = connect(&url, addr).await;
        ws.send(Message::text("where?")).await.unwrap();
        let Some(Message::Text(t)) = next(&mut ws).await else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        let go = v["resume_url"].as_str().unwrap().to_owned();
        ws.close(None).await.unwrap();
        while next(&mut ws).await.is_some() {}
        let port: u16 = go
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut ws = connect(&go, ([127, 0, 0, 1], port).into()).await;
        ws.send(Message::text("hello")).await.unwrap();
        assert_eq!(next(&mut ws).await, Some(Message::text("hello")));
        ws.close(None).await.unwrap();
        while next(&mut ws).await.is_some() {}
        go
    }

    let went = client(relay.url(), relay.addr()).await;
    assert_eq!(
        went,
        format!("{}/resume", relay.also_url(0).unwrap()),
        "pointed at the relay"
    );
    let rec = relay.finish(WAIT).await;
    assert_eq!(rec.header.also, vec![resume_url.clone()]);
    assert_eq!(rec.connections().len(), 2);
    assert_eq!(rec.connections()[1].open.target, "/resume");
    // Recorded as the upstream sent it.
    let first = &rec.connections()[0].frames[1].1.frame;
    assert_eq!(
        first,
        &text(&format!(r#"{{"resume_url":"{resume_url}/resume"}}"#))
    );
    main.shutdown().await;
    other.shutdown().await;

    let server = ReplayServer::start(rec, ReplayOptions::default())
        .await
        .unwrap();
    let went = client(server.url(), server.addr()).await;
    assert_eq!(
        went,
        format!("{}/resume", server.url()),
        "pointed at the replay server"
    );
    server.finish(WAIT).await.assert_ok();
}
