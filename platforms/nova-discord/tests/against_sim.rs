//! nova-discord's pieces against the Discord simulator: discovery over real HTTP, and a bare
//! tokio-tungstenite loop that uses the crate's parser, commands, session decisions, heartbeat
//! schedule, identify limiter and inflater (what the adapter will do through the runtime).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nova_core::Secret;
use nova_discord::{
    CloseAction, CloseCode, ConnectParams, Disconnect, Discovery, DiscoveryError, Event,
    GatewayEvent, GatewaySession, Heartbeat, HeartbeatAction, Identify, IdentifyLimiter, Intents,
    NextConnect, RESUME_CLOSE_CODE, Resume, ZlibStreamInflater, close_action, heartbeat,
};
use nova_testkit::discord::{DiscordSim, DiscordSimOptions, TEST_TOKEN};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

const WAIT: Duration = Duration::from_secs(5);

fn token() -> Secret {
    Secret::new(TEST_TOKEN)
}

#[tokio::test]
async fn discovery_against_the_simulator() {
    let options = DiscordSimOptions::default()
        .with_tick(None)
        .with_shards(4)
        .with_max_concurrency(2);
    let sim = DiscordSim::start_with(options).await.unwrap();
    let discovery = Discovery::new(sim.api_url()).unwrap();
    let gateway = discovery.gateway_bot(&token()).await.unwrap();
    assert_eq!(gateway.url, sim.gateway_url());
    assert_eq!(gateway.shards, 4);
    let limit = gateway.session_start_limit;
    assert_eq!(
        (limit.total, limit.remaining, limit.max_concurrency),
        (1000, 1000, 2)
    );

    let refused = discovery.gateway_bot(&Secret::new("wrong")).await;
    assert!(matches!(refused, Err(DiscoveryError::Unauthorized)));
    let bad = discovery.gateway_bot(&Secret::new("bad\ntoken")).await;
    assert!(matches!(bad, Err(DiscoveryError::InvalidToken)));
    assert!(!format!("{bad:?}").contains("bad\ntoken"));

    // One Identify later, the budget shows it.
    let mut conn = Conn::connect(&ConnectParams::default().url(&gateway.url), false).await;
    conn.hello().await;
    conn.send(Identify::new(token(), Intents::GUILDS).to_json().unwrap())
        .await;
    assert!(matches!(
        conn.event().await,
        Ok(GatewayEvent::Dispatch {
            event: Event::Ready(_),
            ..
        })
    ));
    let gateway = discovery.gateway_bot(&token()).await.unwrap();
    assert_eq!(gateway.session_start_limit.remaining, 999);
    assert_eq!(sim.counters().http_requests, 3);
}

/// A gateway connection seen through the crate's pieces.
struct Conn {
    ws: WebSocketStream<TcpStream>,
    inflater: Option<ZlibStreamInflater>,
}

impl Conn {
    async fn connect(url: &str, zlib: bool) -> Self {
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        Self {
            ws,
            inflater: zlib.then(ZlibStreamInflater::default),
        }
    }

    async fn send(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next gateway event, or how the connection ended (`Err(close code)`).
    async fn event(&mut self) -> Result<GatewayEvent, Option<u16>> {
        loop {
            let next = timeout(WAIT, self.ws.next())
                .await
                .expect("something within WAIT");
            let event = match next {
                Some(Ok(Message::Text(text))) => GatewayEvent::parse(&text),
                Some(Ok(Message::Binary(bytes))) => {
                    let inflater = self.inflater.as_mut().expect("compressed");
                    match inflater.push_text(&bytes).unwrap() {
                        Some(text) => GatewayEvent::parse(text),
                        None => continue,
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return Err(None),
            };
            return Ok(event.unwrap());
        }
    }

    async fn hello(&mut self) -> Duration {
        match self.event().await {
            Ok(GatewayEvent::Hello { heartbeat_interval }) => heartbeat_interval,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    async fn close(mut self, code: u16) {
        let frame = CloseFrame {
            code: WsCloseCode::from(code),
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }
}

/// Reads dispatches into `session` and `seen` until `stop` says so; returns why it stopped.
async fn read_dispatches(
    conn: &mut Conn,
    session: &mut GatewaySession,
    seen: &mut Vec<(u64, String)>,
    mut stop: impl FnMut(&Event, usize) -> bool,
) -> Result<(), Option<u16>> {
    let mut count = 0;
    loop {
        if let GatewayEvent::Dispatch { seq, event } = conn.event().await? {
            session.observe_seq(seq);
            if let Event::Ready(ready) = &event {
                session.on_ready(ready);
            }
            seen.push((seq.unwrap(), event.name().to_owned()));
            count += 1;
            if stop(&event, count) {
                return Ok(());
            }
        }
    }
}

#[tokio::test]
async fn compressed_identify_drop_and_resume_with_the_crate_pieces() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(10)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let gateway = Discovery::new(sim.api_url())
        .unwrap()
        .gateway_bot(&token())
        .await
        .unwrap();
    let limiter = IdentifyLimiter::new(&gateway.session_start_limit, Instant::now());
    let params = ConnectParams::default().with_zlib_stream(true);
    let mut session = GatewaySession::new(&gateway.url, params);

    let mut conn = Conn::connect(&session.identify_url(), true).await;
    conn.hello().await;
    limiter.acquire(0).await.unwrap();
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    conn.send(Identify::new(token(), intents).to_json().unwrap())
        .await;
    let mut seen = Vec::new();
    read_dispatches(&mut conn, &mut session, &mut seen, |_, n| n >= 5)
        .await
        .unwrap();
    assert_eq!(seen[0].1, "READY");
    assert_eq!(
        session.session().unwrap().resume_gateway_url,
        sim.resume_gateway_url()
    );

    for _ in 0..3 {
        sim.drop_all().await;
        let ended = read_dispatches(&mut conn, &mut session, &mut seen, |_, _| false).await;
        assert_eq!(ended, Err(None), "a reset, no close frame");
        let NextConnect::Resume {
            url,
            session_id,
            seq,
        } = session.next_connect(Disconnect::Dropped, 0.5)
        else {
            panic!("a drop resumes")
        };
        assert!(url.starts_with(&sim.resume_gateway_url()));
        assert!(url.ends_with("compress=zlib-stream"));
        conn = Conn::connect(&url, true).await;
        conn.hello().await;
        conn.send(Resume::new(token(), session_id, seq).to_json().unwrap())
            .await;
        read_dispatches(&mut conn, &mut session, &mut seen, |e, _| {
            matches!(e, Event::Resumed)
        })
        .await
        .unwrap();
        read_dispatches(&mut conn, &mut session, &mut seen, |_, n| n >= 3)
            .await
            .unwrap();
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every dispatch once, in order");
    assert_eq!(seen.iter().filter(|(_, t)| t == "RESUMED").count(), 3);
    let counters = sim.counters();
    assert_eq!((counters.identifies, counters.resumes), (1, 3));
    assert_eq!(counters.resume_url_connections, 3);
    assert_eq!(limiter.report(Instant::now()).remaining, 999);
}

#[tokio::test]
async fn the_heartbeat_schedule_notices_a_zombie_server() {
    let options = DiscordSimOptions::default()
        .with_tick(None)
        .with_heartbeat_interval(Duration::from_millis(50))
        // A loaded machine may beat late; the server's own deadline is not under test here.
        .with_heartbeat_timeout_code(None);
    let sim = DiscordSim::start_with(options).await.unwrap();
    let mut session = GatewaySession::new(sim.gateway_url(), ConnectParams::default());
    let mut conn = Conn::connect(&session.identify_url(), false).await;
    let interval = conn.hello().await;
    let mut beats = Heartbeat::new(interval, Instant::now(), 0.3);
    conn.send(Identify::new(token(), Intents::GUILDS).to_json().unwrap())
        .await;

    let mut zombie_after_acks = None;
    while zombie_after_acks.is_none() {
        let deadline = tokio::time::Instant::from_std(beats.deadline());
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => match beats.poll(Instant::now()) {
                Some(HeartbeatAction::Send) => conn.send(heartbeat(session.seq())).await,
                Some(HeartbeatAction::Zombie) => zombie_after_acks = Some(beats.counts().1),
                None => {}
            },
            event = conn.event() => match event.unwrap() {
                GatewayEvent::HeartbeatAck => {
                    beats.on_ack(Instant::now());
                    if beats.counts().1 == 3 {
                        sim.set_zombie(true);
                    }
                }
                GatewayEvent::Dispatch { seq, event } => {
                    session.observe_seq(seq);
                    if let Event::Ready(ready) = &event {
                        session.on_ready(ready);
                    }
                }
                other => panic!("unexpected {other:?}"),
            },
        }
    }
    assert_eq!(zombie_after_acks, Some(3));
    conn.close(RESUME_CLOSE_CODE).await;
    sim.set_zombie(false);
    let NextConnect::Resume {
        url,
        session_id,
        seq,
    } = session.next_connect(Disconnect::Zombie, 0.0)
    else {
        panic!("a zombie resumes")
    };
    let mut conn = Conn::connect(&url, false).await;
    conn.hello().await;
    conn.send(Resume::new(token(), session_id, seq).to_json().unwrap())
        .await;
    assert!(matches!(
        conn.event().await,
        Ok(GatewayEvent::Dispatch {
            event: Event::Resumed,
            ..
        })
    ));
}

#[tokio::test]
async fn a_4004_stops() {
    let sim = DiscordSim::start_with(DiscordSimOptions::default().with_tick(None))
        .await
        .unwrap();
    let mut session = GatewaySession::new(sim.gateway_url(), ConnectParams::default());
    let mut conn = Conn::connect(&session.identify_url(), false).await;
    conn.hello().await;
    conn.send(
        Identify::new(Secret::new("wrong"), Intents::GUILDS)
            .to_json()
            .unwrap(),
    )
    .await;
    let code = conn.event().await.unwrap_err().unwrap();
    assert_eq!(
        close_action(Some(code)),
        CloseAction::Fatal(CloseCode::AuthenticationFailed)
    );
    assert_eq!(
        session.next_connect(Disconnect::Closed(code), 0.0),
        NextConnect::Stop(CloseCode::AuthenticationFailed)
    );
    assert_eq!(sim.counters().connections, 1);
}

#[tokio::test]
async fn invalid_session_both_ways_through_the_decision() {
    let sim = DiscordSim::start_with(DiscordSimOptions::default().with_tick(None))
        .await
        .unwrap();
    let mut session = GatewaySession::new(sim.gateway_url(), ConnectParams::default());
    let mut conn = Conn::connect(&session.identify_url(), false).await;
    conn.hello().await;
    conn.send(Identify::new(token(), Intents::GUILDS).to_json().unwrap())
        .await;
    let mut seen = Vec::new();
    read_dispatches(&mut conn, &mut session, &mut seen, |_, n| n >= 3)
        .await
        .unwrap();

    sim.invalidate_sessions(true).await;
    let Ok(GatewayEvent::InvalidSession { resumable }) = conn.event().await else {
        panic!("op 9")
    };
    let NextConnect::Resume {
        url,
        session_id,
        seq,
    } = session.next_connect(Disconnect::InvalidSession { resumable }, 0.0)
    else {
        panic!("op 9 d:true resumes")
    };
    conn.close(RESUME_CLOSE_CODE).await;
    let mut conn = Conn::connect(&url, false).await;
    conn.hello().await;
    conn.send(Resume::new(token(), session_id, seq).to_json().unwrap())
        .await;
    read_dispatches(&mut conn, &mut session, &mut seen, |e, _| {
        matches!(e, Event::Resumed)
    })
    .await
    .unwrap();

    sim.invalidate_sessions(false).await;
    let Ok(GatewayEvent::InvalidSession { resumable }) = conn.event().await else {
        panic!("op 9")
    };
    let next = session.next_connect(Disconnect::InvalidSession { resumable }, 0.25);
    assert_eq!(
        next,
        NextConnect::Identify {
            url: session.identify_url(),
            after: Duration::from_secs(2),
        }
    );
    assert!(session.session().is_none());
}
