//! Tests of the scriptable test server, driven by a bare tokio-tungstenite client.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nova_testkit::{Frame, Received, ServerOptions, TestServer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const WAIT: Duration = Duration::from_secs(5);

type Client = WebSocketStream<TcpStream>;

async fn connect(server: &TestServer) -> Client {
    connect_with(server, None).await
}

async fn connect_with(server: &TestServer, config: Option<WebSocketConfig>) -> Client {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async_with_config(server.url(), tcp, config)
        .await
        .unwrap();
    ws
}

/// The next message from the client stream, with a deadline.
async fn next<S>(client: &mut WebSocketStream<S>) -> Option<Result<Message, WsError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(WAIT, client.next())
        .await
        .expect("client read timed out")
}

/// Checks that the server still serves a fresh connection end to end.
async fn assert_still_serving(server: &TestServer) {
    let mut client = connect(server).await;
    client.send(Message::text("still alive")).await.unwrap();
    let echoed = next(&mut client).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("still alive"));
}

#[tokio::test]
async fn echoes_text_and_binary() {
    let server = TestServer::start().await.unwrap();
    assert!(server.url().starts_with("ws://127.0.0.1:"));
    let mut client = connect(&server).await;
    client.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("hello")
    );
    client.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    let conn = server.next_connection().await;
    assert_eq!(conn.id(), 0);
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.handshakes_attempted(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn records_received_frames_in_order() {
    let server = TestServer::start_with(ServerOptions::default().with_echo(false))
        .await
        .unwrap();
    let mut a = connect(&server).await;
    let conn_a = server.next_connection().await;
    let mut b = connect(&server).await;
    let conn_b = server.next_connection().await;
    assert_eq!((conn_a.id(), conn_b.id()), (0, 1));

    a.send(Message::text("a1")).await.unwrap();
    assert_eq!(server.wait_for_received(1, WAIT).await.len(), 1);
    b.send(Message::binary(vec![9u8])).await.unwrap();
    assert_eq!(server.wait_for_received(2, WAIT).await.len(), 2);
    a.send(Message::text("a2")).await.unwrap();

    let all = server.wait_for_received(3, WAIT).await;
    assert_eq!(
        all,
        vec![
            Received {
                connection: 0,
                frame: Frame::Text("a1".into())
            },
            Received {
                connection: 1,
                frame: Frame::Binary(vec![9])
            },
            Received {
                connection: 0,
                frame: Frame::Text("a2".into())
            },
        ]
    );
    assert_eq!(
        conn_a.wait_for_received(2, WAIT).await,
        vec![Frame::Text("a1".into()), Frame::Text("a2".into())]
    );
    assert_eq!(conn_b.received(), vec![Frame::Binary(vec![9])]);

    // Echo was off: nothing comes back.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), a.next())
            .await
            .is_err()
    );
    // Turn it on at run time.
    server.set_echo(true);
    a.send(Message::text("a3")).await.unwrap();
    assert_eq!(next(&mut a).await.unwrap().unwrap(), Message::text("a3"));
}

#[tokio::test]
async fn wait_for_received_times_out_with_what_it_has() {
    let server = TestServer::start().await.unwrap();
    let started = Instant::now();
    let got = server
        .wait_for_received(1, Duration::from_millis(100))
        .await;
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(
        server
            .next_connection_timeout(Duration::from_millis(50))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn refuses_handshakes_with_status_and_headers() {
    let server = TestServer::start().await.unwrap();
    server.refuse_next_handshakes(2, 503, vec![("Retry-After".to_string(), "2".to_string())]);
    for _ in 0..2 {
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let err = tokio_tungstenite::client_async(server.url(), tcp)
            .await
            .unwrap_err();
        match err {
            WsError::Http(response) => {
                assert_eq!(response.status(), 503);
                assert_eq!(response.headers().get("retry-after").unwrap(), "2");
            }
            other => panic!("expected an HTTP error, got {other:?}"),
        }
    }
    assert_eq!(server.handshakes_attempted(), 2);
    assert_eq!(server.connections_accepted(), 0);

    // The refusals are used up: the next handshake succeeds.
    assert_still_serving(&server).await;
    assert_eq!(server.handshakes_attempted(), 3);
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.next_connection().await.id(), 0);
}

#[tokio::test]
async fn delays_handshakes() {
    let server = TestServer::start().await.unwrap();
    let delay = Duration::from_millis(600);
    server.delay_next_handshakes(1, delay);
    let started = Instant::now();
    let _slow = connect(&server).await;
    assert!(started.elapsed() >= delay);
    // Only the next one was delayed.
    let started = Instant::now();
    let _fast = connect(&server).await;
    assert!(started.elapsed() < delay);
}

#[tokio::test]
async fn records_handshake_headers_and_agrees_to_a_subprotocol() {
    let server = TestServer::start().await.unwrap();
    let mut request = format!("{}/stream?x=1", server.url())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-api-key", "k123".parse().unwrap());
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "json.v1, json.v2".parse().unwrap(),
    );
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (_client, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "json.v1"
    );

    let all = server.handshake_headers();
    assert_eq!(all.len(), 1);
    assert!(all[0].contains(&("x-api-key".to_string(), "k123".to_string())));
    let conn = server.next_connection().await;
    assert_eq!(conn.uri(), "/stream?x=1");
    assert_eq!(conn.handshake_headers(), all[0]);
}

#[tokio::test]
async fn restricted_subprotocols() {
    let server = TestServer::start_with(ServerOptions::default().with_subprotocols(["json.v2"]))
        .await
        .unwrap();
    let mut request = server.url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "json.v1, json.v2".parse().unwrap(),
    );
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (_client, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "json.v2"
    );
}

#[tokio::test]
async fn drop_tcp_ends_the_client_stream() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.send_text("before").await;
    conn.drop_tcp();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("before")
    );
    match next(&mut client).await {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("expected the stream to end, got {msg:?}"),
    }
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
    assert!(conn.is_closed());
    // Sends on an ended connection return at once.
    tokio::time::timeout(WAIT, conn.send_text("after"))
        .await
        .unwrap();
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn pings_are_answered_unless_silent() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;

    // Normally the server answers a ping.
    client
        .send(Message::Ping(b"p1".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::Pong(b"p1".to_vec().into())
    );
    assert_eq!(conn.pings_received(), 1);

    conn.go_silent();
    // Let the connection task notice before pinging.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client
        .send(Message::Ping(b"p2".to_vec().into()))
        .await
        .unwrap();
    client.send(Message::text("no echo")).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), client.next())
            .await
            .is_err(),
        "a silent server must not answer"
    );
    assert!(!conn.is_closed());
    // Sends on a silent connection are discarded, not stuck.
    tokio::time::timeout(WAIT, conn.send_text("ignored"))
        .await
        .unwrap();

    // A silent connection can still be dropped.
    conn.drop_tcp();
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
    match next(&mut client).await {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("expected the stream to end, got {msg:?}"),
    }
}

#[tokio::test]
async fn server_ping_gets_a_pong() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.send_ping(b"hb".to_vec()).await;
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::Ping(b"hb".to_vec().into())
    );
    // The client queued the pong; the next client write or read flushes it.
    client.send(Message::text("x")).await.unwrap();
    let _echo = next(&mut client).await;
    assert!(nova_testkit::wait_until(|| conn.pongs_received() == 1, WAIT).await);
}

#[tokio::test]
async fn close_sends_a_close_frame_with_the_code() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.close(4001, "bye").await;
    match next(&mut client).await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::from(4001));
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // The client answers the close (tungstenite does it on the next read) and the stream ends.
    assert!(next(&mut client).await.is_none());
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
}

#[tokio::test]
async fn client_close_ends_the_connection() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    client.close(None).await.unwrap();
    while let Some(Ok(_)) = next(&mut client).await {}
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_text_is_a_client_error() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.send_invalid_utf8_text().await;
    match next(&mut client).await {
        Some(Err(WsError::Utf8(_))) => {}
        other => panic!("expected a UTF-8 error, got {other:?}"),
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn oversized_text_is_well_formed() {
    let server = TestServer::start().await.unwrap();
    // A client without limits reads it whole.
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.send_oversized_text(70_000).await;
    match next(&mut client).await.unwrap().unwrap() {
        Message::Text(text) => assert_eq!(text.len(), 70_000),
        other => panic!("expected text, got {other:?}"),
    }

    // A client with a limit rejects it.
    let config = WebSocketConfig::default()
        .max_message_size(Some(1024))
        .max_frame_size(Some(1024));
    let mut limited = connect_with(&server, Some(config)).await;
    let conn = server.next_connection().await;
    conn.send_oversized_text(4096).await;
    match next(&mut limited).await {
        Some(Err(WsError::Capacity(_))) => {}
        other => panic!("expected a capacity error, got {other:?}"),
    }
    drop(limited);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn garbage_is_a_client_protocol_error() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.send_garbage().await;
    match next(&mut client).await {
        Some(Err(WsError::Protocol(_))) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
    drop(client);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn raw_bytes_after_queued_frames() {
    let server = TestServer::start().await.unwrap();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    conn.send_text("first").await;
    // A hand-made unmasked binary frame with payload [7].
    conn.send_raw(vec![0x82, 0x01, 0x07]).await;
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("first")
    );
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::binary(vec![7u8])
    );
}

#[tokio::test]
async fn server_limit_closes_with_1009() {
    let server = TestServer::start_with(ServerOptions::default().with_max_message_size(Some(16)))
        .await
        .unwrap();
    let mut client = connect(&server).await;
    client.send(Message::text("x".repeat(64))).await.unwrap();
    match next(&mut client).await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(server.received().is_empty());
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn survives_clients_that_leave_mid_handshake() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await.unwrap();
    // Connect and leave at once.
    drop(TcpStream::connect(server.addr()).await.unwrap());
    // Send half a request and leave.
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    drop(tcp);
    // Send something that is not HTTP.
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"\x16\x03\x01garbage\r\n\r\n").await.unwrap();
    drop(tcp);
    assert_still_serving(&server).await;
    assert_eq!(server.next_connection().await.id(), 0);
}

#[tokio::test]
async fn shutdown_drops_connections_and_stops_accepting() {
    let server = TestServer::start().await.unwrap();
    let addr = server.addr();
    let mut client = connect(&server).await;
    let conn = server.next_connection().await;
    server.shutdown().await;
    assert!(conn.is_closed());
    match next(&mut client).await {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("expected the stream to end, got {msg:?}"),
    }
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn many_connections_are_all_queued() {
    let server = TestServer::start().await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(&server).await);
    }
    for expected in 0..20 {
        let conn = server.next_connection_timeout(WAIT).await.unwrap();
        assert_eq!(conn.id(), expected);
    }
    assert_eq!(server.connections().len(), 20);
}

fn tls_configs() -> (tokio_rustls::TlsAcceptor, tokio_rustls::TlsConnector) {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
        tokio_rustls::TlsConnector::from(Arc::new(client_config)),
    )
}

#[tokio::test]
async fn serves_wss() {
    let (acceptor, connector) = tls_configs();
    let server = TestServer::start_with(ServerOptions::default().with_tls(acceptor))
        .await
        .unwrap();
    assert!(server.url().starts_with("wss://localhost:"));
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut client, _) = tokio_tungstenite::client_async(server.url(), tls)
        .await
        .unwrap();
    client.send(Message::text("secure")).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("secure")
    );

    let conn = server.next_connection().await;
    conn.send_invalid_utf8_text().await;
    match next(&mut client).await {
        Some(Err(WsError::Utf8(_))) => {}
        other => panic!("expected a UTF-8 error, got {other:?}"),
    }
    conn.drop_tcp();
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
}

#[tokio::test]
async fn responder_replaces_echo() {
    let responder: nova_testkit::Responder =
        Arc::new(|connection, frame: &Frame| match frame.as_text() {
            Some("ping") => vec![
                Frame::from(format!("pong {connection}")),
                Frame::from(vec![1u8]),
            ],
            Some(_) => Vec::new(),
            None => vec![frame.clone()],
        });
    let server = TestServer::start_with(ServerOptions::default().with_responder(responder))
        .await
        .unwrap();
    let mut client = connect(&server).await;
    client.send(Message::text("ping")).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("pong 0")
    );
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::binary(vec![1u8])
    );
    client.send(Message::text("ignored")).await.unwrap();
    client.send(Message::binary(vec![5u8])).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::binary(vec![5u8])
    );
    assert_eq!(server.wait_for_received(3, WAIT).await.len(), 3);

    // Back to echo.
    server.set_responder(None);
    client.send(Message::text("ignored")).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("ignored")
    );
}

#[tokio::test]
async fn recording_can_be_turned_off() {
    let server = TestServer::start_with(ServerOptions::default().with_recording(false))
        .await
        .unwrap();
    let mut client = connect(&server).await;
    client.send(Message::text("a")).await.unwrap();
    assert_eq!(
        next(&mut client).await.unwrap().unwrap(),
        Message::text("a")
    );
    assert!(server.received().is_empty());
    assert!(server.next_connection().await.received().is_empty());
}
