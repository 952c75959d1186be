//! Transport tests against local servers: plain and TLS WebSocket servers from nova-testkit,
//! its test CA, and its HTTP CONNECT and SOCKS5 proxies. Everything binds 127.0.0.1:0.

use std::{net::Ipv4Addr, time::Duration};

use nova_core::{
    ClientIdentity, ConnectStage, Connected, Frame, Message, ProxyConfig, TlsConfig, TlsRoots,
    Transport, TransportConfig, TransportError, connect,
};
use nova_testkit::{ConnectProxy, ServerOptions, Socks5Proxy, TestCa, TestServer};
use tokio::net::TcpListener;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Trusts only `ca`.
fn trusting(ca: &TestCa) -> TransportConfig {
    TransportConfig::default()
        .with_connect_timeout(Duration::from_secs(5))
        .with_tls(
            TlsConfig::default()
                .with_roots(TlsRoots::None)
                .with_extra_ca_pem(ca.ca_pem()),
        )
}

async fn tls_server(ca: &TestCa) -> std::io::Result<TestServer> {
    TestServer::start_with(
        ServerOptions::default().with_tls(ca.acceptor(&["localhost", "127.0.0.1"])),
    )
    .await
}

/// Sends one text message and expects the server's echo.
async fn assert_echo(connected: &mut Connected) -> TestResult {
    connected.send(Message::text("ping?")).await?;
    let reply = tokio::time::timeout(Duration::from_secs(5), connected.recv()).await?;
    match reply {
        Some(Ok(Frame::Text(text))) => assert_eq!(text.as_str(), "ping?"),
        other => panic!("expected the echo, got {other:?}"),
    }
    Ok(())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn ws_sends_headers_and_subprotocols() -> TestResult {
    let server = TestServer::start().await?;
    let config = TransportConfig::default()
        .with_header("X-Nova-Test", "yes")
        .with_header("Authorization", "Bearer t0ken")
        .with_subprotocol("v2.nova")
        .with_subprotocol("v1.nova");
    let mut connected = connect(&server.url(), &config).await?;
    assert_eq!(connected.protocol(), Some("v2.nova"));
    assert_eq!(connected.response().status().as_u16(), 101);
    assert_eq!(connected.peer_addr(), Some(server.addr()));
    assert!(!connected.is_tls());
    assert_echo(&mut connected).await?;

    let seen = server.handshake_headers();
    let first = seen.first().ok_or("no handshake recorded")?;
    assert_eq!(header(first, "x-nova-test"), Some("yes"));
    assert_eq!(header(first, "authorization"), Some("Bearer t0ken"));
    assert_eq!(
        header(first, "sec-websocket-protocol"),
        Some("v2.nova, v1.nova")
    );
    Ok(())
}

#[tokio::test]
async fn ws_path_and_query_reach_the_server() -> TestResult {
    let server = TestServer::start().await?;
    let url = format!("{}/stream/v1?channel=a&x=1", server.url());
    let _connected = connect(&url, &TransportConfig::default()).await?;
    let conn = server
        .next_connection_timeout(Duration::from_secs(5))
        .await
        .ok_or("no connection")?;
    assert!(
        conn.uri().ends_with("/stream/v1?channel=a&x=1"),
        "{}",
        conn.uri()
    );
    Ok(())
}

#[tokio::test]
async fn wss_with_the_test_ca_connects() -> TestResult {
    let ca = TestCa::new();
    let server = tls_server(&ca).await?;
    let transport = Transport::new(trusting(&ca))?;
    let mut connected = transport.connect(&server.url()).await?;
    assert!(connected.is_tls());
    assert_eq!(connected.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_echo(&mut connected).await?;

    // Same transport again (cached TLS config), by IP literal this time (IP SAN).
    let by_ip = format!("wss://127.0.0.1:{}", server.addr().port());
    let mut again = transport.connect(&by_ip).await?;
    assert_echo(&mut again).await?;
    Ok(())
}

#[tokio::test]
async fn wss_without_the_ca_is_not_trusted() -> TestResult {
    let ca = TestCa::new();
    let server = tls_server(&ca).await?;

    // Default roots (webpki) do not know the test CA.
    let err = connect(&server.url(), &TransportConfig::default())
        .await
        .err()
        .ok_or("connected without trusting the CA")?;
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("certificate not trusted"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("localhost"), "{text}");
    assert_eq!(err.kind(), "tls");
    assert!(!err.is_permanent());

    // Another CA is no better.
    let other = TestCa::new();
    let err = connect(&server.url(), &trusting(&other)).await.err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("certificate not trusted")),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn wss_with_a_certificate_for_another_name_fails() -> TestResult {
    let ca = TestCa::new();
    let server =
        TestServer::start_with(ServerOptions::default().with_tls(ca.acceptor(&["other.example"])))
            .await?;
    let err = connect(&server.url(), &trusting(&ca)).await.err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("not valid for this host name")),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn mutual_tls() -> TestResult {
    let ca = TestCa::new();
    let server = TestServer::start_with(
        ServerOptions::default()
            .with_tls(ca.acceptor_requiring_client_auth(&["localhost", "127.0.0.1"])),
    )
    .await?;

    let (cert_pem, key_pem) = ca.issue_client_identity("nova-client");
    let identity = ClientIdentity::from_pem(cert_pem, key_pem.clone());
    let config = trusting(&ca);
    let with_identity = config
        .clone()
        .with_tls(config.tls.clone().with_client_identity(identity));
    let mut connected = connect(&server.url(), &with_identity).await?;
    assert_echo(&mut connected).await?;
    assert!(!format!("{with_identity:?}").contains(key_pem.trim()));

    // Without a client certificate the server refuses.
    let err = connect(&server.url(), &config)
        .await
        .err()
        .ok_or("connected without a client certificate")?;
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("client certificate"), "{err}");

    // A client certificate from another CA is refused too.
    let (cert_pem, key_pem) = TestCa::new().issue_client_identity("stranger");
    let stranger = config.clone().with_tls(
        config
            .tls
            .clone()
            .with_client_identity(ClientIdentity::from_pem(cert_pem, key_pem)),
    );
    let err = connect(&server.url(), &stranger).await.err();
    assert!(matches!(err, Some(TransportError::Tls { .. })), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn bad_tls_material_is_a_permanent_config_error() {
    let config = TransportConfig::default().with_tls(
        TlsConfig::default()
            .with_roots(TlsRoots::None)
            .with_extra_ca_pem("-----BEGIN CERTIFICATE-----\nnot base64\n"),
    );
    let err = Transport::new(config).err();
    assert!(
        matches!(&err, Some(TransportError::InvalidConfig { .. })),
        "{err:?}"
    );
    assert!(err.is_some_and(|e| e.is_permanent()));

    let ca = TestCa::new();
    let (cert_pem, _key) = ca.issue_client_identity("c");
    let config = trusting(&ca);
    let bad_key = config.clone().with_tls(
        config
            .tls
            .clone()
            .with_client_identity(ClientIdentity::from_pem(cert_pem, "SECRET-KEY-MATERIAL")),
    );
    let err = Transport::new(bad_key).err();
    let text = format!(
        "{err:?} {}",
        err.as_ref().map(ToString::to_string).unwrap_or_default()
    );
    assert!(
        matches!(err, Some(TransportError::InvalidConfig { .. })),
        "{text}"
    );
    assert!(!text.contains("SECRET-KEY-MATERIAL"), "{text}");
}

#[tokio::test]
async fn refused_handshake_carries_status_and_retry_after() -> TestResult {
    let server = TestServer::start().await?;
    server.refuse_next_handshakes(1, 503, vec![("Retry-After".into(), "2".into())]);
    let err = connect(&server.url(), &TransportConfig::default())
        .await
        .err()
        .ok_or("handshake was not refused")?;
    match &err {
        TransportError::HandshakeRejected {
            status,
            retry_after,
            response,
        } => {
            assert_eq!(*status, 503);
            assert_eq!(*retry_after, Some(Duration::from_secs(2)));
            assert_eq!(response.status().as_u16(), 503);
        }
        other => panic!("expected HandshakeRejected, got {other:?}"),
    }
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(err.kind(), "handshake_rejected");
    assert!(err.to_string().contains("503"), "{err}");

    // The refusal was for one handshake only.
    connect(&server.url(), &TransportConfig::default()).await?;
    Ok(())
}

#[tokio::test]
async fn refused_tcp_is_a_connect_error() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let err = connect(
        &format!("ws://127.0.0.1:{port}"),
        &TransportConfig::default(),
    )
    .await
    .err()
    .ok_or("connected to a closed port")?;
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert_eq!(err.kind(), "connect");
    Ok(())
}

#[tokio::test]
async fn silent_server_times_out() -> TestResult {
    // Accepts TCP, never reads or answers.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let _holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = TransportConfig::default().with_connect_timeout(Duration::from_millis(300));

    let started = std::time::Instant::now();
    let err = connect(&format!("ws://127.0.0.1:{port}"), &config)
        .await
        .err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(
            err,
            Some(TransportError::Timeout {
                stage: ConnectStage::Handshake,
                ..
            })
        ),
        "{err:?}"
    );

    let err = connect(&format!("wss://localhost:{port}"), &config)
        .await
        .err()
        .ok_or("connected to a silent server")?;
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                stage: ConnectStage::Tls,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "timeout");
    assert!(err.to_string().contains("during tls"), "{err}");
    Ok(())
}

#[tokio::test]
async fn invalid_urls_are_permanent() {
    for url in ["http://127.0.0.1:1", "not a url", "ws://", "wss://[::1"] {
        let err = connect(url, &TransportConfig::default()).await.err();
        assert!(
            matches!(&err, Some(TransportError::InvalidUrl { .. })),
            "{url}: {err:?}"
        );
        assert!(err.is_some_and(|e| e.is_permanent() && e.kind() == "invalid_url"));
    }
}

fn creds(user: &str, pass: &str) -> Option<(String, String)> {
    Some((user.to_owned(), pass.to_owned()))
}

#[tokio::test]
async fn http_connect_proxy_ws_and_wss() -> TestResult {
    let proxy = ConnectProxy::start(creds("alice", "pr0xy-pass")).await?;
    let proxy_config = ProxyConfig::http_connect(proxy.addr().to_string());

    let plain = TestServer::start().await?;
    let config = TransportConfig::default()
        .with_proxy(proxy_config.clone().with_auth("alice", "pr0xy-pass"));
    let mut connected = connect(&plain.url(), &config).await?;
    assert_eq!(connected.peer_addr(), None);
    assert_echo(&mut connected).await?;

    let ca = TestCa::new();
    let secure = tls_server(&ca).await?;
    let config = trusting(&ca).with_proxy(proxy_config.with_auth("alice", "pr0xy-pass"));
    let mut connected = connect(&secure.url(), &config).await?;
    assert!(connected.is_tls());
    assert_echo(&mut connected).await?;

    assert_eq!(proxy.tunnels_opened(), 2);
    // The host name went to the proxy, unresolved.
    assert_eq!(
        proxy.targets().last().map(String::as_str),
        Some(format!("localhost:{}", secure.addr().port()).as_str())
    );
    Ok(())
}

#[tokio::test]
async fn http_connect_proxy_refuses_bad_credentials() -> TestResult {
    let proxy = ConnectProxy::start(creds("alice", "right")).await?;
    let server = TestServer::start().await?;
    for auth in [None, Some(("alice", "wrong")), Some(("bob", "right"))] {
        let mut proxy_config = ProxyConfig::http_connect(proxy.addr().to_string());
        if let Some((user, pass)) = auth {
            proxy_config = proxy_config.with_auth(user, pass);
        }
        let config = TransportConfig::default().with_proxy(proxy_config);
        let err = connect(&server.url(), &config)
            .await
            .err()
            .ok_or("proxy let a bad client through")?;
        match &err {
            TransportError::Proxy { status, .. } => assert_eq!(*status, Some(407)),
            other => panic!("expected a proxy error, got {other:?}"),
        }
        assert_eq!(err.kind(), "proxy");
        assert!(err.to_string().contains("407"), "{err}");
        assert!(!format!("{err:?} {err}").contains("wrong"));
    }
    assert_eq!(proxy.auth_failures(), 3);
    assert_eq!(proxy.tunnels_opened(), 0);
    assert_eq!(server.handshakes_attempted(), 0);

    // The proxy still serves good clients after bad ones.
    let config = TransportConfig::default().with_proxy(
        ProxyConfig::http_connect(proxy.addr().to_string()).with_auth("alice", "right"),
    );
    connect(&server.url(), &config).await?;
    Ok(())
}

#[tokio::test]
async fn http_connect_proxy_refusals_and_unreachable_proxy() -> TestResult {
    let proxy = ConnectProxy::start(None).await?;
    let config =
        TransportConfig::default().with_proxy(ProxyConfig::http_connect(proxy.addr().to_string()));
    // The test proxy refuses non-loopback targets (and nova does no local DNS for them).
    let err = connect("ws://example.invalid/", &config).await.err();
    assert!(
        matches!(
            &err,
            Some(TransportError::Proxy {
                status: Some(403),
                ..
            })
        ),
        "{err:?}"
    );

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let dead = listener.local_addr()?;
    drop(listener);
    let config = TransportConfig::default().with_proxy(ProxyConfig::http_connect(dead.to_string()));
    let err = connect("ws://127.0.0.1:1/", &config).await.err();
    assert!(
        matches!(&err, Some(TransportError::Proxy { status: None, .. })),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn socks5_proxy_without_credentials_ws_and_wss() -> TestResult {
    let proxy = Socks5Proxy::start(None).await?;
    let proxy_config = ProxyConfig::socks5(proxy.addr().to_string());

    let plain = TestServer::start().await?;
    let config = TransportConfig::default().with_proxy(proxy_config.clone());
    let mut connected = connect(&plain.url(), &config).await?;
    assert_echo(&mut connected).await?;

    let ca = TestCa::new();
    let secure = tls_server(&ca).await?;
    let mut connected = connect(&secure.url(), &trusting(&ca).with_proxy(proxy_config)).await?;
    assert_echo(&mut connected).await?;

    assert_eq!(proxy.tunnels_opened(), 2);
    assert_eq!(
        proxy.targets(),
        vec![
            format!("127.0.0.1:{}", plain.addr().port()),
            // The proxy resolved the name.
            format!("localhost:{}", secure.addr().port()),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn socks5_proxy_with_credentials_ws_and_wss() -> TestResult {
    let proxy = Socks5Proxy::start(creds("carol", "s0cks")).await?;
    let proxy_config = ProxyConfig::socks5(proxy.addr().to_string()).with_auth("carol", "s0cks");

    let plain = TestServer::start().await?;
    let config = TransportConfig::default().with_proxy(proxy_config.clone());
    let mut connected = connect(&plain.url(), &config).await?;
    assert_echo(&mut connected).await?;

    let ca = TestCa::new();
    let secure = tls_server(&ca).await?;
    let mut connected = connect(&secure.url(), &trusting(&ca).with_proxy(proxy_config)).await?;
    assert_echo(&mut connected).await?;
    assert_eq!(proxy.tunnels_opened(), 2);

    // Wrong password, and no credentials at all.
    for proxy_config in [
        ProxyConfig::socks5(proxy.addr().to_string()).with_auth("carol", "wrong"),
        ProxyConfig::socks5(proxy.addr().to_string()),
    ] {
        let config = TransportConfig::default().with_proxy(proxy_config);
        let err = connect(&plain.url(), &config).await.err();
        assert!(
            matches!(&err, Some(TransportError::Proxy { .. })),
            "{err:?}"
        );
    }
    assert_eq!(proxy.auth_failures(), 2);
    assert_eq!(proxy.tunnels_opened(), 2);

    // Refused target.
    let config = TransportConfig::default()
        .with_proxy(ProxyConfig::socks5(proxy.addr().to_string()).with_auth("carol", "s0cks"));
    let err = connect("wss://example.invalid/", &config).await.err();
    assert!(
        matches!(&err, Some(TransportError::Proxy { .. })),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn debug_never_shows_secrets() {
    let identity = ClientIdentity::from_pem("CERT-PEM", "KEY-PEM-SECRET");
    let proxy = ProxyConfig::socks5("127.0.0.1:1080").with_auth("user", "PROXY-PASSWORD");
    let config = TransportConfig::default()
        .with_header("Authorization", "Bearer HEADER-TOKEN")
        .with_proxy(proxy.clone())
        .with_tls(TlsConfig::default().with_client_identity(identity.clone()));

    let all = format!(
        "{identity:?} {proxy:?} {:?} {config:?} {config:#?}",
        proxy.auth()
    );
    for secret in ["KEY-PEM-SECRET", "PROXY-PASSWORD", "HEADER-TOKEN"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    assert!(all.contains("user") && all.contains("CERT-PEM") && all.contains("Authorization"));
    assert_eq!(proxy.auth().map(|a| a.password()), Some("PROXY-PASSWORD"));
    assert_eq!(identity.key_pem(), "KEY-PEM-SECRET");
}

#[tokio::test]
async fn socket_options_are_applied() -> TestResult {
    let server = TestServer::start().await?;
    let config = TransportConfig::default().with_tcp_keepalive(Some(Duration::from_secs(30)));
    let connected = connect(&server.url(), &config).await?;
    assert!(connected.tcp().nodelay()?);

    let config = config.with_tcp_nodelay(false).with_tcp_keepalive(None);
    let connected = connect(&server.url(), &config).await?;
    assert!(!connected.tcp().nodelay()?);
    Ok(())
}

#[tokio::test]
async fn silent_proxy_times_out_in_the_proxy_stage() -> TestResult {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let _holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    for proxy in [
        ProxyConfig::http_connect(addr.to_string()),
        ProxyConfig::socks5(addr.to_string()),
    ] {
        let config = TransportConfig::default()
            .with_connect_timeout(Duration::from_millis(200))
            .with_proxy(proxy);
        let err = connect("ws://localhost:1/", &config).await.err();
        assert!(
            matches!(
                err,
                Some(TransportError::Timeout {
                    stage: ConnectStage::Proxy,
                    ..
                })
            ),
            "{err:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_serve_many_clients_at_once() -> TestResult {
    let server = TestServer::start().await?;
    let http = ConnectProxy::start(None).await?;
    let socks = Socks5Proxy::start(creds("u", "p")).await?;
    let configs = [
        TransportConfig::default().with_proxy(ProxyConfig::http_connect(http.addr().to_string())),
        TransportConfig::default()
            .with_proxy(ProxyConfig::socks5(socks.addr().to_string()).with_auth("u", "p")),
    ];
    let transports = configs
        .into_iter()
        .map(Transport::new)
        .collect::<Result<Vec<_>, _>>()?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let transport = transports[i % 2].clone();
        let url = server.url();
        tasks.spawn(async move {
            let mut connected = transport.connect(&url).await?;
            assert_echo(&mut connected).await?;
            TestResult::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    assert_eq!(http.tunnels_opened(), 20);
    assert_eq!(socks.tunnels_opened(), 20);
    Ok(())
}

#[tokio::test]
async fn per_connect_headers() -> TestResult {
    let server = TestServer::start().await?;
    let transport = Transport::new(TransportConfig::default().with_header("X-Static", "1"))?;
    let extra = [("X-Signature".to_owned(), "abc".to_owned())];
    transport
        .connect_with_headers(&server.url(), &extra)
        .await?;
    let seen = server.handshake_headers();
    let first = seen.first().ok_or("no handshake recorded")?;
    assert_eq!(header(first, "x-static"), Some("1"));
    assert_eq!(header(first, "x-signature"), Some("abc"));

    let reserved = [("Sec-WebSocket-Key".to_owned(), "x".to_owned())];
    let err = transport
        .connect_with_headers(&server.url(), &reserved)
        .await
        .err();
    assert!(
        matches!(err, Some(TransportError::InvalidConfig { .. })),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_reset_is_a_lost_connection_whose_source_is_the_io_error() -> TestResult {
    let server = TestServer::start().await?;
    let mut connected = connect(&server.url(), &TransportConfig::default()).await?;
    let conn = server.next_connection().await;
    conn.drop_tcp();
    let read = tokio::time::timeout(Duration::from_secs(5), connected.recv()).await?;
    let err = match read {
        Some(Err(err)) => err,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(err.kind(), "connection_lost", "{err}");
    let source = std::error::Error::source(&err).ok_or("no source")?;
    let io = source
        .downcast_ref::<std::io::Error>()
        .ok_or("the source is not the io::Error")?;
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(
        err.io_error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionReset)
    );
    Ok(())
}

#[tokio::test]
async fn a_close_completes_the_closing_handshake() -> TestResult {
    let server = TestServer::start().await?;
    let mut connected = connect(&server.url(), &TransportConfig::default()).await?;
    connected
        .close(Some(nova_core::CloseFrame {
            code: 1000,
            reason: "done".into(),
        }))
        .await?;
    let until_closed = async {
        while let Some(frame) = connected.recv().await {
            frame?;
        }
        Ok::<_, nova_core::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), until_closed).await??;
    Ok(())
}
