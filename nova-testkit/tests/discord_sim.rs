//! The Discord Gateway simulator, driven by bare tokio-tungstenite clients and raw HTTP.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use nova_testkit::discord::{DiscordSim, DiscordSimOptions, TEST_TOKEN, ZLIB_SUFFIX};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(5);
/// GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_TYPING | MESSAGE_CONTENT.
const INTENTS: u64 = 1 | (1 << 9) | (1 << 11) | (1 << 15);

/// What a client read.
#[derive(Debug)]
enum Read {
    Payload(Value),
    Closed(Option<u16>),
    /// The socket ended without a close frame (a reset or EOF).
    Gone,
}

struct Client {
    ws: WebSocketStream<TcpStream>,
    inflate: Option<Decompress>,
    /// Every binary message ended with `00 00 ff ff`.
    suffix_ok: bool,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr, query: &str) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}/?{query}");
        let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        let inflate = query
            .contains("compress=zlib-stream")
            .then(|| Decompress::new(true));
        Self {
            ws,
            inflate,
            suffix_ok: true,
        }
    }

    /// Connects to the main listener and reads Hello.
    async fn hello(sim: &DiscordSim) -> Self {
        Self::hello_at(sim.addr(), "v=10&encoding=json").await
    }

    async fn hello_at(addr: std::net::SocketAddr, query: &str) -> Self {
        let mut client = Self::connect(addr, query).await;
        let hello = client.payload().await;
        assert_eq!(hello["op"], 10, "{hello}");
        assert!(hello["d"]["heartbeat_interval"].as_u64().is_some());
        client
    }

    async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    async fn identify(&mut self, shard: Option<[u32; 2]>, intents: u64) {
        let mut d = json!({
            "token": TEST_TOKEN,
            "intents": intents,
            "properties": {"os": "linux", "browser": "nova", "device": "nova"},
        });
        if let Some(shard) = shard {
            d["shard"] = json!(shard);
        }
        self.send(json!({"op": 2, "d": d})).await;
    }

    async fn resume(&mut self, session_id: &str, seq: u64) {
        let d = json!({"token": TEST_TOKEN, "session_id": session_id, "seq": seq});
        self.send(json!({"op": 6, "d": d})).await;
    }

    async fn read(&mut self) -> Read {
        loop {
            let Ok(next) = timeout(WAIT, self.ws.next()).await else {
                panic!("nothing read in {WAIT:?}");
            };
            match next {
                Some(Ok(Message::Text(t))) => {
                    return Read::Payload(serde_json::from_str(&t).unwrap());
                }
                Some(Ok(Message::Binary(b))) => {
                    self.suffix_ok &= b.ends_with(&ZLIB_SUFFIX);
                    let inflate = self.inflate.as_mut().expect("binary only when compressed");
                    let mut out = Vec::with_capacity(64 * 1024);
                    inflate
                        .decompress_vec(&b, &mut out, FlushDecompress::Sync)
                        .unwrap();
                    return Read::Payload(serde_json::from_slice(&out).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Read::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return Read::Gone,
            }
        }
    }

    async fn payload(&mut self) -> Value {
        match self.read().await {
            Read::Payload(value) => value,
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    /// Reads until the close frame and returns its code (payloads before it are skipped).
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.read().await {
                Read::Payload(_) => {}
                Read::Closed(code) => return code,
                Read::Gone => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Reads payloads until READY; returns `(session_id, resume_gateway_url, READY's s)`.
    async fn ready(&mut self) -> (String, String, u64) {
        let ready = self.payload().await;
        assert_eq!(ready["t"], "READY", "{ready}");
        let d = &ready["d"];
        (
            d["session_id"].as_str().unwrap().to_owned(),
            d["resume_gateway_url"].as_str().unwrap().to_owned(),
            ready["s"].as_u64().unwrap(),
        )
    }

    async fn close(mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        while let Ok(Some(Ok(_))) = timeout(WAIT, self.ws.next()).await {}
    }
}

fn quiet() -> DiscordSimOptions {
    DiscordSimOptions::default().with_tick(None)
}

/// A raw HTTP/1.1 GET; returns status and body.
async fn http_get(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, Value) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn gateway_bot_needs_the_bot_token_and_reports_the_start_limit() {
    let sim = DiscordSim::start_with(quiet().with_shards(3).with_max_concurrency(2))
        .await
        .unwrap();
    let (status, body) = http_get(sim.addr(), "/api/v10/gateway/bot", None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("401: Unauthorized"))
    );
    let wrong = http_get(sim.addr(), "/api/v10/gateway/bot", Some("Bot nope")).await;
    assert_eq!(wrong.0, 401);
    let bearer = format!("Bearer {TEST_TOKEN}");
    assert_eq!(
        http_get(sim.addr(), "/api/v10/gateway/bot", Some(&bearer))
            .await
            .0,
        401
    );

    let auth = format!("Bot {TEST_TOKEN}");
    let (status, body) = http_get(sim.addr(), "/api/v10/gateway/bot", Some(&auth)).await;
    assert_eq!(status, 200);
    assert_eq!(body["url"], sim.gateway_url());
    assert_eq!(body["shards"], 3);
    let limit = &body["session_start_limit"];
    assert_eq!(
        (limit["total"].as_u64(), limit["remaining"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(limit["max_concurrency"], 2);
    assert!(limit["reset_after"].as_u64().unwrap() > 0);

    let mut client = Client::hello(&sim).await;
    client.identify(None, INTENTS).await;
    client.ready().await;
    let (_, body) = http_get(sim.addr(), "/api/v10/gateway/bot", Some(&auth)).await;
    assert_eq!(body["session_start_limit"]["remaining"], 999);
    assert_eq!(sim.session_start_limit().remaining, 999);

    let (status, body) = http_get(sim.addr(), "/api/v10/gateway", None).await;
    assert_eq!(
        (status, body["url"].as_str()),
        (200, Some(sim.gateway_url().as_str()))
    );
    assert_eq!(
        http_get(sim.addr(), "/api/v10/nothing", Some(&auth))
            .await
            .0,
        404
    );
    assert_eq!(sim.counters().http_requests, 7);
}

#[tokio::test]
async fn identify_ready_guilds_and_heartbeats() {
    let sim = DiscordSim::start_with(quiet().with_heartbeat_interval(Duration::from_secs(30)))
        .await
        .unwrap();
    let mut client = Client::connect(sim.addr(), "v=10&encoding=json").await;
    let hello = client.payload().await;
    assert_eq!(
        hello,
        json!({"op":10,"s":null,"t":null,"d":{"heartbeat_interval":30000,"_trace":["nova-sim"]}})
    );

    // A heartbeat before Identify is allowed and carries null.
    client.send(json!({"op": 1, "d": null})).await;
    assert_eq!(client.payload().await["op"], 11);

    client.identify(Some([0, 1]), INTENTS).await;
    let (session_id, resume_url, s) = client.ready().await;
    assert_eq!(s, 1);
    assert_eq!(resume_url, sim.resume_gateway_url());
    assert_ne!(resume_url, sim.gateway_url());
    for expected in [2, 3] {
        let guild = client.payload().await;
        assert_eq!(
            (guild["t"].as_str(), guild["s"].as_u64()),
            (Some("GUILD_CREATE"), Some(expected))
        );
    }
    client.send(json!({"op": 1, "d": 3})).await;
    assert_eq!(
        client.payload().await,
        json!({"op":11,"s":null,"t":null,"d":null})
    );

    sim.request_heartbeat().await;
    assert_eq!(client.payload().await["op"], 1);
    client.send(json!({"op": 1, "d": 3})).await;
    assert_eq!(client.payload().await["op"], 11);

    let counters = sim.counters();
    assert_eq!((counters.heartbeats, counters.heartbeat_acks), (3, 3));
    assert_eq!(counters.heartbeat_seq_mismatches, 0);
    assert_eq!(counters.heartbeat_requests, 1);
    let sessions = sim.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_id, session_id);
    assert_eq!(sessions[0].shard, Some([0, 1]));
    assert_eq!(sessions[0].sent_seqs, vec![1, 2, 3]);

    // A wrong `d` is counted.
    client.send(json!({"op": 1, "d": 2})).await;
    assert_eq!(client.payload().await["op"], 11);
    assert_eq!(sim.counters().heartbeat_seq_mismatches, 1);
}

#[tokio::test]
async fn resume_after_resets_replays_exactly_the_missed_dispatches() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(10)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let mut client = Client::hello(&sim).await;
    client.identify(None, INTENTS).await;
    let (session_id, resume_url, mut last) = client.ready().await;
    let resume_addr = resume_url.trim_start_matches("ws://").parse().unwrap();
    let mut seen = vec![last];
    for round in 0..3 {
        // Read a few dispatches on this connection.
        for _ in 0..5 {
            let dispatch = client.payload().await;
            assert_eq!(dispatch["op"], 0);
            let s = dispatch["s"].as_u64().unwrap();
            assert_eq!(s, last + 1, "round {round}: {dispatch}");
            last = s;
            seen.push(s);
        }
        sim.drop_all().await;
        // Drain what was in flight, then the reset.
        loop {
            match client.read().await {
                Read::Payload(dispatch) => {
                    let s = dispatch["s"].as_u64().unwrap();
                    assert_eq!(s, last + 1);
                    last = s;
                    seen.push(s);
                }
                Read::Gone => break,
                Read::Closed(code) => panic!("a close frame ({code:?}) instead of a reset"),
            }
        }
        // Events go on while the client is away.
        let target = last + 3;
        assert!(
            nova_testkit::wait_until(|| sim.sessions()[0].last_seq >= target, WAIT).await,
            "the session moves on while disconnected"
        );
        client = Client::hello_at(resume_addr, "v=10&encoding=json").await;
        client.resume(&session_id, last).await;
        loop {
            let dispatch = client.payload().await;
            let s = dispatch["s"].as_u64().unwrap();
            assert_eq!(s, last + 1, "replay is gapless and unrepeated: {dispatch}");
            last = s;
            seen.push(s);
            if dispatch["t"] == "RESUMED" {
                break;
            }
        }
    }
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(seen, expected);
    let counters = sim.counters();
    assert_eq!(counters.resumes, 3);
    assert_eq!(counters.resume_url_connections, 3);
    assert_eq!(counters.identifies, 1);
    assert!(sim.connections()[1..].iter().all(|c| c.via_resume_url));
}

#[tokio::test]
async fn zombie_server_stops_acking() {
    let sim = DiscordSim::start_with(quiet()).await.unwrap();
    let mut client = Client::hello(&sim).await;
    client.identify(None, 0).await;
    client.ready().await;
    sim.set_zombie(true);
    client.send(json!({"op": 1, "d": 1})).await;
    assert!(sim.wait_for(WAIT, |c| c.heartbeats == 1).await);
    // Had the heartbeat been ACKed, the ACK would come before this request.
    sim.request_heartbeat().await;
    assert_eq!(client.payload().await["op"], 1);
    assert_eq!(sim.counters().heartbeat_acks, 0);
    sim.set_zombie(false);
    client.send(json!({"op": 1, "d": 1})).await;
    assert_eq!(client.payload().await["op"], 11);
}

#[tokio::test]
async fn a_client_that_does_not_heartbeat_is_closed() {
    let options = quiet().with_heartbeat_interval(Duration::from_millis(50));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let mut client = Client::hello(&sim).await;
    assert_eq!(client.close_code().await, Some(4000));
    assert_eq!(sim.counters().heartbeat_timeouts, 1);
}

#[tokio::test]
async fn reconnect_then_the_server_closes() {
    let options = quiet().with_reconnect_grace(Duration::from_millis(50));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let mut client = Client::hello(&sim).await;
    client.identify(None, 0).await;
    let (session_id, _, seq) = client.ready().await;
    sim.reconnect_all().await;
    assert_eq!(
        client.payload().await,
        json!({"op":7,"s":null,"t":null,"d":null})
    );
    assert_eq!(client.close_code().await, Some(4000));
    // The session is still resumable.
    let mut client = Client::hello_at(sim.resume_addr(), "v=10&encoding=json").await;
    client.resume(&session_id, seq).await;
    assert_eq!(client.payload().await["t"], "RESUMED");
    assert_eq!(sim.counters().reconnects, 1);
}

#[tokio::test]
async fn invalid_session_both_ways() {
    let sim = DiscordSim::start_with(quiet()).await.unwrap();
    let mut client = Client::hello(&sim).await;
    client.identify(None, 0).await;
    let (session_id, _, seq) = client.ready().await;

    sim.invalidate_sessions(true).await;
    assert_eq!(client.payload().await["d"], json!(true));
    client.close(4000).await;
    let mut client = Client::hello_at(sim.resume_addr(), "v=10&encoding=json").await;
    client.resume(&session_id, seq).await;
    let resumed = client.payload().await;
    assert_eq!(resumed["t"], "RESUMED");
    let seq = resumed["s"].as_u64().unwrap();

    sim.invalidate_sessions(false).await;
    assert_eq!(
        client.payload().await,
        json!({"op":9,"s":null,"t":null,"d":false})
    );
    client.close(4000).await;
    let mut client = Client::hello_at(sim.resume_addr(), "v=10&encoding=json").await;
    client.resume(&session_id, seq).await;
    assert_eq!(client.payload().await["d"], json!(false));
    let counters = sim.counters();
    assert_eq!((counters.resumes, counters.resume_failures), (1, 1));
    assert_eq!(counters.invalid_sessions, 3);
}

#[tokio::test]
async fn a_client_close_with_1000_ends_the_session() {
    let sim = DiscordSim::start_with(quiet()).await.unwrap();
    let mut client = Client::hello(&sim).await;
    client.identify(None, 0).await;
    let (session_id, _, seq) = client.ready().await;
    client.close(1000).await;
    assert!(nova_testkit::wait_until(|| !sim.sessions()[0].live, WAIT).await);
    let mut client = Client::hello_at(sim.resume_addr(), "v=10&encoding=json").await;
    client.resume(&session_id, seq).await;
    assert_eq!(client.payload().await["d"], json!(false));
    assert_eq!(sim.connections()[0].client_close_code, Some(1000));
}

#[tokio::test]
async fn close_codes() {
    let options = quiet()
        .with_token("other-token")
        .with_allowed_privileged_intents(1 << 15);
    let sim = DiscordSim::start_with(options).await.unwrap();
    let identify = |token: &str, intents: u64, shard: Option<[u32; 2]>| {
        let mut d = json!({"token": token, "intents": intents, "properties": {"os": "linux"}});
        if let Some(shard) = shard {
            d["shard"] = json!(shard);
        }
        json!({"op": 2, "d": d})
    };
    let cases: Vec<(Vec<Value>, u16)> = vec![
        (vec![identify("wrong", 1, None)], 4004),
        (vec![identify(TEST_TOKEN, 1, Some([1, 1]))], 4010),
        (vec![identify(TEST_TOKEN, 1, Some([0, 0]))], 4010),
        (vec![identify(TEST_TOKEN, 1 << 40, None)], 4013),
        (vec![identify(TEST_TOKEN, 1 << 1, None)], 4014),
        (vec![json!({"op": 3, "d": {}})], 4003),
        (vec![json!({"op": 99, "d": null})], 4001),
        (vec![json!({"d": null})], 4002),
        (vec![json!({"op": 1, "d": "x".repeat(5000)})], 4002),
        (
            vec![
                identify(TEST_TOKEN, 1, None),
                identify("other-token", 1, None),
            ],
            4005,
        ),
    ];
    for (payloads, code) in cases {
        let mut client = Client::hello(&sim).await;
        for payload in payloads {
            client.send(payload).await;
        }
        assert_eq!(client.close_code().await, Some(code), "expected {code}");
    }
    // Not JSON.
    let mut client = Client::hello(&sim).await;
    client.ws.send(Message::text("{nope")).await.unwrap();
    assert_eq!(client.close_code().await, Some(4002));
    // A sequence beyond the session's.
    let session_id = sim.sessions()[0].session_id.clone();
    let mut client = Client::hello(&sim).await;
    client.resume(&session_id, 1000).await;
    assert_eq!(client.close_code().await, Some(4007));
    // API version.
    let mut client = Client::connect(sim.addr(), "v=9&encoding=json").await;
    assert_eq!(client.close_code().await, Some(4012));
    // Chosen by the test.
    let mut client = Client::hello(&sim).await;
    sim.close_all(4009, "Session timed out.").await;
    assert_eq!(client.close_code().await, Some(4009));
    assert_eq!(sim.counters().auth_failures, 1);

    let sharded = DiscordSim::start_with(quiet().with_sharding_required(true))
        .await
        .unwrap();
    let mut client = Client::hello(&sharded).await;
    client.send(identify(TEST_TOKEN, 1, None)).await;
    assert_eq!(client.close_code().await, Some(4011));
}

#[tokio::test]
async fn the_send_limit_closes_with_4008() {
    let options = quiet().with_send_limit(5, Duration::from_secs(60));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let mut client = Client::hello(&sim).await;
    for _ in 0..5 {
        client.send(json!({"op": 1, "d": null})).await;
        assert_eq!(client.payload().await["op"], 11);
    }
    client.send(json!({"op": 1, "d": null})).await;
    assert_eq!(client.close_code().await, Some(4008));
    assert_eq!(sim.counters().rate_limited, 1);
}

#[tokio::test]
async fn identify_buckets_follow_max_concurrency() {
    // One bucket: the second shard's Identify within 5 s is refused.
    let sim = DiscordSim::start_with(quiet()).await.unwrap();
    let mut first = Client::hello(&sim).await;
    first.identify(Some([0, 2]), 0).await;
    first.ready().await;
    let mut second = Client::hello(&sim).await;
    second.identify(Some([1, 2]), 0).await;
    assert_eq!(
        second.payload().await,
        json!({"op":9,"s":null,"t":null,"d":false})
    );
    let counters = sim.counters();
    assert_eq!(
        (counters.identifies, counters.identify_rate_limited),
        (1, 1)
    );
    assert_eq!(sim.session_start_limit().remaining, 999);

    // Two buckets: shards 0 and 1 identify together; shard 2 shares shard 0's bucket.
    let sim = DiscordSim::start_with(quiet().with_max_concurrency(2))
        .await
        .unwrap();
    for shard in [0, 1] {
        let mut client = Client::hello(&sim).await;
        client.identify(Some([shard, 3]), 0).await;
        client.ready().await;
    }
    let mut third = Client::hello(&sim).await;
    third.identify(Some([2, 3]), 0).await;
    assert_eq!(third.payload().await["op"], 9);
    assert_eq!(sim.counters().identifies, 2);
}

#[tokio::test]
async fn compressed_and_plain_carry_the_same_dispatches() {
    let sim = DiscordSim::start_with(quiet().with_max_concurrency(2))
        .await
        .unwrap();
    let mut plain = Client::hello(&sim).await;
    let mut zlib = Client::hello_at(sim.addr(), "v=10&encoding=json&compress=zlib-stream").await;
    assert!(sim.connections()[1].compressed);
    plain.identify(Some([0, 2]), INTENTS).await;
    zlib.identify(Some([1, 2]), INTENTS).await;
    plain.ready().await;
    zlib.ready().await;
    for n in 0..20 {
        let d = json!({"n": n, "text": "x".repeat(n * 50)}).to_string();
        assert_eq!(sim.emit("MESSAGE_CREATE", &d), 2);
    }
    let mut streams = Vec::new();
    for client in [&mut plain, &mut zlib] {
        let mut dispatches = Vec::new();
        while dispatches.len() < 22 {
            let p = client.payload().await;
            dispatches.push((p["s"].clone(), p["t"].clone(), p["d"].clone()));
        }
        streams.push(dispatches);
    }
    assert_eq!(streams[0], streams[1]);
    assert!(zlib.suffix_ok);
    // The compressed connection's heartbeat ACK is compressed too.
    zlib.send(json!({"op": 1, "d": 22})).await;
    assert_eq!(zlib.payload().await["op"], 11);
}

#[tokio::test]
async fn unsupported_compression_is_refused() {
    let sim = DiscordSim::start_with(quiet()).await.unwrap();
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    let url = format!(
        "{}/?v=10&encoding=json&compress=zstd-stream",
        sim.gateway_url()
    );
    let refused = tokio_tungstenite::client_async(url, tcp).await;
    assert!(refused.is_err());
}
