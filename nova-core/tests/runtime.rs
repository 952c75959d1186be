//! The connection runtime against the test kit's real WebSocket server: reconnect policy, dead
//! peers, buffered sends, overflow policies and bad input.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nova_core::{
    Client, ClientConfig, ClientConfigBuilder, ConnectionHandler, Context, DefaultHandler,
    DisconnectReason, Error, ErrorHandler, Frame, HandlerError, Lagged, LifecycleEvent, Message,
    MessageHandler, OverflowPolicy, ReconnectStrategy, StopReason,
};
use nova_testkit::{TestServer, wait_until};
use tokio::sync::broadcast;

const MS: fn(u64) -> Duration = Duration::from_millis;
const LONG: Duration = Duration::from_secs(20);

fn config(server: &TestServer) -> ClientConfigBuilder {
    ClientConfig::builder(server.url())
        .name("test")
        .backoff(MS(20), MS(200))
        .jitter(0.0)
        .stable_after(Duration::from_secs(3600))
}

/// Reads events until `pred` matches one; returns every event seen, that one last.
async fn events_until(
    rx: &mut broadcast::Receiver<LifecycleEvent>,
    mut pred: impl FnMut(&LifecycleEvent) -> bool,
) -> Vec<LifecycleEvent> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(LONG, async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let done = pred(&e);
                    seen.push(e);
                    if done {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
    .await;
    assert!(found.is_ok(), "event not seen in time; saw {seen:#?}");
    seen
}

fn delays(events: &[LifecycleEvent]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|e| match e {
            LifecycleEvent::ReconnectScheduled { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_delays_follow_the_exponential_policy_with_jitter() {
    let server = TestServer::start().await.unwrap();
    let cfg = config(&server)
        .backoff(MS(100), MS(1000))
        .jitter(0.3)
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    let mut events = client.events();
    let first = server.next_connection().await;

    // Four refused handshakes after the drop: the delays must grow 100, 200, 400, 800 ms, each
    // with up to 30 % taken off by jitter.
    server.refuse_next_handshakes(4, 500, vec![]);
    let dropped_at = Instant::now();
    first.drop_tcp();
    let seen = events_until(&mut events, |e| {
        matches!(
            e,
            LifecycleEvent::Connected {
                connection_index: 1,
                ..
            }
        )
    })
    .await;
    let elapsed = dropped_at.elapsed();
    let got = delays(&seen);
    assert_eq!(got.len(), 5, "{seen:#?}");
    for (n, d) in got.iter().enumerate() {
        let base = MS(100 * (1 << n)).min(MS(1000));
        assert!(
            *d <= base && *d >= base.mul_f64(0.7),
            "attempt {n}: {d:?} outside [0.7, 1] x {base:?}"
        );
    }
    assert!(
        got.iter().any(|d| d.as_millis() % 100 != 0),
        "jitter should move some delays: {got:?}"
    );
    // The client really waited: the whole episode took at least the sum of the delays.
    let total: Duration = got.iter().sum();
    assert!(
        elapsed >= total,
        "reconnected after {elapsed:?}, before the delays' sum {total:?}"
    );
    assert_eq!(server.handshakes_attempted(), 6);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_and_constant_policies_are_followed() {
    for (strategy, expect) in [
        (ReconnectStrategy::Linear, [50u64, 100, 150]),
        (ReconnectStrategy::Constant, [50, 50, 50]),
    ] {
        let server = TestServer::start().await.unwrap();
        server.refuse_next_handshakes(3, 502, vec![]);
        let cfg = config(&server)
            .reconnect_strategy(strategy)
            .backoff(MS(50), MS(1000))
            .build()
            .unwrap();
        let (client, _messages) = Client::connect(cfg, DefaultHandler);
        let mut events = client.events();
        let seen = events_until(&mut events, |e| {
            matches!(e, LifecycleEvent::Connected { .. })
        })
        .await;
        let got: Vec<u64> = delays(&seen).iter().map(|d| d.as_millis() as u64).collect();
        assert_eq!(got, expect, "{strategy:?}");
        client.close(1000, "done").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_stops_the_client_with_the_reason() {
    let server = TestServer::start().await.unwrap();
    server.refuse_next_handshakes(1000, 500, vec![]);
    let cfg = config(&server)
        .max_reconnect_attempts(Some(3))
        .build()
        .unwrap();
    let (client, mut messages) = Client::connect(cfg, DefaultHandler);
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    match &reason {
        StopReason::MaxAttemptsReached {
            attempts: 3,
            last_error,
        } => {
            assert!(last_error.contains("500"), "{last_error}");
        }
        other => panic!("unexpected stop: {other:?}"),
    }
    // The first connect plus three reconnects, then nothing more.
    assert_eq!(server.handshakes_attempted(), 4);
    let state = client.current_state();
    assert_eq!(state.stopped, Some(reason.clone()));
    assert_eq!(state.status, nova_core::ConnectionStatus::Error);
    assert!(matches!(client.send_text("late").await, Err(Error::Stopped(r)) if r == reason));
    assert!(
        messages.recv().await.is_none(),
        "the message stream ends with the client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_503_is_honoured() {
    let server = TestServer::start().await.unwrap();
    server.refuse_next_handshakes(1, 503, vec![("Retry-After".into(), "1".into())]);
    let started = Instant::now();
    let (client, _messages) = Client::connect(config(&server).build().unwrap(), DefaultHandler);
    let mut events = client.events();
    let seen = events_until(&mut events, |e| {
        matches!(e, LifecycleEvent::Connected { .. })
    })
    .await;
    assert_eq!(
        delays(&seen),
        [Duration::from_secs(1)],
        "the policy's 20 ms gives way to Retry-After"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    let failed = seen.iter().find_map(|e| match e {
        LifecycleEvent::ConnectFailed { kind, error, .. } => Some((*kind, error.clone())),
        _ => None,
    });
    let (kind, error) = failed.unwrap();
    assert_eq!(kind, "transport.handshake_rejected");
    assert!(error.contains("503"), "{error}");
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_backs_off_instead_of_looping() {
    // A port nobody listens on: every connect is refused at once; the delays must still grow.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = ClientConfig::builder(format!("ws://127.0.0.1:{port}"))
        .backoff(MS(10), MS(80))
        .jitter(0.0)
        .max_reconnect_attempts(Some(5))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    let mut events = client.events();
    let seen = events_until(&mut events, |e| matches!(e, LifecycleEvent::Stopped { .. })).await;
    let got: Vec<u64> = delays(&seen).iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(got, [10, 20, 40, 80, 80]);
    let kinds: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            LifecycleEvent::ConnectFailed { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["transport.connect"; 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_detected_within_interval_plus_deadline() {
    let server = TestServer::start().await.unwrap();
    let interval = MS(300);
    let deadline = MS(300);
    let cfg = config(&server)
        .heartbeat_interval(Some(interval))
        .pong_timeout(deadline)
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    let mut events = client.events();
    let conn = server.next_connection().await;

    // While the peer answers, idle pings keep the connection up.
    assert!(wait_until(|| conn.pings_received() >= 2, LONG).await);
    assert!(client.current_state().status.is_open());

    conn.go_silent();
    let seen = events_until(&mut events, |e| {
        matches!(e, LifecycleEvent::Disconnected { .. })
    })
    .await;
    let Some(LifecycleEvent::Disconnected { reason, .. }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(*reason, DisconnectReason::HeartbeatTimeout);
    // The client comes back on a new connection.
    let again = server.next_connection_timeout(LONG).await;
    assert!(again.is_some_and(|c| c.id() == 1));
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_noticed_no_sooner_than_interval_plus_deadline() {
    // On a connection that goes silent right away, detection takes at least interval + deadline
    // (lower bound only: upper bounds would be timing assertions on a shared machine).
    let server = TestServer::start().await.unwrap();
    let cfg = config(&server)
        .heartbeat_interval(Some(MS(200)))
        .pong_timeout(MS(200))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    let mut events = client.events();
    server.next_connection().await.go_silent();
    let seen = events_until(&mut events, |e| {
        matches!(e, LifecycleEvent::Disconnected { .. })
    })
    .await;
    match seen.last() {
        Some(LifecycleEvent::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout,
            uptime,
        }) => {
            assert!(*uptime >= MS(400), "{uptime:?}");
            assert!(*uptime < Duration::from_secs(10), "{uptime:?}");
        }
        other => panic!("{other:?}"),
    }
    client.close(1000, "done").await.unwrap();
}

/// Sends 0..10,000 as text while the server ends the connection five times, gracefully (close
/// handshake) or abruptly (TCP reset); returns the numbers the server received, in order, and
/// how many connections it accepted.
async fn send_through_drops(abrupt: bool) -> (Vec<u64>, u64) {
    const TOTAL: u64 = 10_000;
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let cfg = config(&server).send_buffer(256).build().unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while n < TOTAL {
                match client.send_text(n.to_string()).await {
                    Ok(()) => n += 1,
                    // Disconnected with a full buffer: the message was not taken; try again soon.
                    Err(Error::SendBufferFull { .. }) => tokio::time::sleep(MS(1)).await,
                    Err(e) => panic!("send failed: {e}"),
                }
            }
        })
    };
    for round in 1..=5u64 {
        let conn = server.next_connection().await;
        // Let traffic flow on this connection first (unless everything was already sent).
        let target = (round * TOTAL / 6) as usize;
        assert!(
            wait_until(
                || conn.received().len() >= 100
                    || sender.is_finished()
                    || server.received().len() >= target,
                LONG
            )
            .await,
            "round {round}"
        );
        if abrupt {
            conn.drop_tcp();
        } else {
            conn.close(1012, "service restart").await;
        }
    }
    sender.await.unwrap();
    // A last message on the sixth connection marks the end.
    server.next_connection().await;
    client.send_text("end").await.unwrap();
    assert!(
        wait_until(
            || server.received().last().and_then(|r| r.frame.as_text()) == Some("end"),
            LONG
        )
        .await
    );
    let got = server.received();
    let got = got[..got.len() - 1]
        .iter()
        .map(|r| r.frame.as_text().unwrap().parse().unwrap())
        .collect();
    client.close(1000, "done").await.unwrap();
    (got, server.connections_accepted() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_across_five_server_closes_arrive_exactly_once_in_order() {
    let (got, connections) = send_through_drops(false).await;
    assert_eq!(connections, 6);
    assert_eq!(got.len(), 10_000, "lost or duplicated messages");
    assert!(
        got.iter().copied().eq(0..10_000),
        "out of order or duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_drops_never_duplicate_or_reorder() {
    let (got, connections) = send_through_drops(true).await;
    assert_eq!(connections, 6);
    // Strictly increasing: no duplicate, no reordering. Messages in flight (written to the
    // socket, not yet read by the server) when the TCP connection was reset are lost: WebSocket
    // has no acknowledgements, and nova does not resend what it cannot know was lost (documented
    // on `Client`). Everything sent after the last reset arrives (the "end" marker).
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "duplicate or reordered message"
    );
    assert!(!got.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_send_buffer_is_an_error_and_buffered_sends_are_flushed_in_order() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    // Refuse handshakes so that the client stays disconnected while we fill its buffer.
    server.refuse_next_handshakes(1000, 503, vec![]);
    let cfg = config(&server)
        .send_buffer(8)
        .backoff(MS(50), MS(50))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    for n in 0..8 {
        client.send_text(format!("m{n}")).await.unwrap();
    }
    match client.send_text("m8").await {
        Err(Error::SendBufferFull { capacity: 8 }) => {}
        other => panic!("expected SendBufferFull, got {other:?}"),
    }
    assert!(matches!(
        client.try_send("m8"),
        Err(Error::SendBufferFull { capacity: 8 })
    ));
    // Let the client in: the eight buffered messages arrive in order, the refused one never.
    server.refuse_next_handshakes(0, 503, vec![]);
    let got = server.wait_for_received(8, LONG).await;
    let texts: Vec<_> = got
        .iter()
        .map(|r| r.frame.as_text().unwrap().to_owned())
        .collect();
    assert_eq!(texts, (0..8).map(|n| format!("m{n}")).collect::<Vec<_>>());
    client.send_text("after").await.unwrap();
    let got = server.wait_for_received(9, LONG).await;
    assert_eq!(got[8].frame.as_text(), Some("after"));
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_tells_the_consumer_how_many_were_lost() {
    /// Counts every message handed to the application.
    struct Counting(Arc<AtomicUsize>);
    impl ConnectionHandler for Counting {}
    impl MessageHandler for Counting {
        fn handle_message(
            &mut self,
            message: Message,
            ctx: &mut Context<'_>,
        ) -> Result<(), HandlerError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            ctx.deliver(message);
            Ok(())
        }
    }
    impl nova_core::SubscriptionHandler for Counting {}
    impl nova_core::AuthHandler for Counting {}
    impl ErrorHandler for Counting {}
    impl nova_core::HeartbeatHandler for Counting {}
    impl nova_core::RateLimitHandler for Counting {}

    let server = TestServer::start().await.unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let cfg = config(&server)
        .inbound(16, OverflowPolicy::DropOldest)
        .build()
        .unwrap();
    let (client, mut messages) = Client::connect(cfg, Counting(count.clone()));
    let conn = server.next_connection().await;
    for n in 0..100 {
        conn.send_text(format!("{n}")).await;
    }
    assert!(wait_until(|| count.load(Ordering::SeqCst) == 100, LONG).await);
    assert_eq!(messages.recv().await, Some(Err(Lagged(84))));
    for n in 84..100 {
        let m = messages.recv().await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some(n.to_string().as_str()));
    }
    assert_eq!(messages.dropped(), 84);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_policy_loses_nothing_with_a_slow_consumer() {
    let server = TestServer::start().await.unwrap();
    let cfg = config(&server)
        .inbound(4, OverflowPolicy::Wait)
        .build()
        .unwrap();
    let (client, mut messages) = Client::connect(cfg, DefaultHandler);
    let conn = server.next_connection().await;
    let pusher = tokio::spawn(async move {
        for n in 0..2000 {
            conn.send_text(format!("{n}")).await;
        }
    });
    for n in 0..2000 {
        if n % 500 == 0 {
            tokio::task::yield_now().await;
        }
        let m = tokio::time::timeout(LONG, messages.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.as_text(), Some(n.to_string().as_str()));
    }
    pusher.await.unwrap();
    assert_eq!(messages.dropped(), 0);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_panics_and_the_client_recovers() {
    let server = TestServer::start().await.unwrap();
    let cfg = config(&server).max_sizes(1024, 4096).build().unwrap();
    let (client, mut messages) = Client::connect(cfg, DefaultHandler);
    let mut events = client.events();

    let faults: [(&str, &str); 3] = [
        ("utf8", "protocol"),
        ("oversized", "message_too_large"),
        ("garbage", "protocol"),
    ];
    for (n, (fault, kind)) in faults.iter().enumerate() {
        let conn = server.next_connection().await;
        assert_eq!(conn.id(), n);
        match *fault {
            "utf8" => conn.send_invalid_utf8_text().await,
            "oversized" => conn.send_oversized_text(64 * 1024).await,
            _ => conn.send_garbage().await,
        }
        let seen = events_until(&mut events, |e| {
            matches!(e, LifecycleEvent::Disconnected { .. })
        })
        .await;
        let error = seen.iter().find_map(|e| match e {
            LifecycleEvent::Error {
                kind,
                source: "read",
                ..
            } => Some(*kind),
            _ => None,
        });
        assert_eq!(error, Some(*kind), "{fault}: {seen:#?}");
        assert!(
            matches!(
                seen.last(),
                Some(LifecycleEvent::Disconnected {
                    reason: DisconnectReason::ProtocolError(_),
                    ..
                })
            ),
            "{fault}: {seen:#?}"
        );
    }
    // After all that, the client is connected again and works.
    let conn = server.next_connection().await;
    client.send_text("still alive").await.unwrap();
    let echoed = tokio::time::timeout(LONG, messages.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.as_text(), Some("still alive"));
    assert_eq!(conn.id(), 3);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_are_reported_and_the_connection_stays_up() {
    /// Accepts only JSON objects.
    struct JsonOnly;
    impl ConnectionHandler for JsonOnly {}
    impl MessageHandler for JsonOnly {
        fn message_type<'m>(&mut self, message: &'m Message) -> nova_core::MessageType<'m> {
            match message.json::<serde_json::Value>() {
                Ok(v) if v.is_object() => nova_core::MessageType::Unknown,
                Ok(_) => nova_core::MessageType::Invalid(HandlerError::new("not a JSON object")),
                Err(e) => nova_core::MessageType::Invalid(HandlerError::new(e.to_string())),
            }
        }
    }
    impl nova_core::SubscriptionHandler for JsonOnly {}
    impl nova_core::AuthHandler for JsonOnly {}
    impl ErrorHandler for JsonOnly {}
    impl nova_core::HeartbeatHandler for JsonOnly {}
    impl nova_core::RateLimitHandler for JsonOnly {}

    let server = TestServer::start().await.unwrap();
    let (client, mut messages) = Client::connect(config(&server).build().unwrap(), JsonOnly);
    let mut events = client.events();
    let conn = server.next_connection().await;
    conn.send_text("{not json").await;
    conn.send_text("[1, 2]").await;
    conn.send_binary(vec![0xff, 0x00]).await;
    conn.send_text(r#"{"ok": true}"#).await;
    let m = tokio::time::timeout(LONG, messages.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.as_text(), Some(r#"{"ok": true}"#));
    let seen = events_until(&mut events, |e| matches!(e, LifecycleEvent::Error { .. })).await;
    assert!(matches!(
        seen.last(),
        Some(LifecycleEvent::Error {
            kind: "handler",
            source: "validation",
            ..
        })
    ));
    assert_eq!(server.connections_accepted(), 1, "the connection stayed up");
    assert!(client.current_state().status.is_open());
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_performs_a_handshake_and_dropping_every_handle_stops_the_task() {
    let server = TestServer::start().await.unwrap();
    let (client, _messages) = Client::connect(config(&server).build().unwrap(), DefaultHandler);
    let conn = server.next_connection().await;
    client.wait_connected(LONG).await.unwrap();
    client.send_text("last words").await.unwrap();
    client.close(4000, "bye").await.unwrap();
    // Everything accepted before close was written first.
    assert_eq!(
        conn.received(),
        vec![nova_testkit::Frame::Text("last words".into())]
    );
    tokio::time::timeout(LONG, conn.closed()).await.unwrap();
    assert_eq!(client.stopped().await, StopReason::Closed { code: 4000 });
    assert!(matches!(
        client.close(1000, "again").await,
        Err(Error::Stopped(_))
    ));

    let (client, messages) = Client::connect(config(&server).build().unwrap(), DefaultHandler);
    let conn = server.next_connection().await;
    drop((client, messages));
    tokio::time::timeout(LONG, conn.closed()).await.unwrap();
}

/// `handle_disconnect` answering `after(0)` reconnects at once: the attempt is scheduled with no
/// delay (and made without a timer, which would wait for the next tick of tokio's wheel), every
/// drop, while a long configured backoff would otherwise apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_delay_from_handle_disconnect_reconnects_at_once() {
    struct AtOnce;
    impl ConnectionHandler for AtOnce {
        fn handle_disconnect(
            &mut self,
            _reason: &DisconnectReason,
            _ctx: &Context<'_>,
        ) -> nova_core::ReconnectDecision {
            nova_core::ReconnectDecision::after(Duration::ZERO)
        }
    }
    impl MessageHandler for AtOnce {}
    impl nova_core::SubscriptionHandler for AtOnce {}
    impl nova_core::AuthHandler for AtOnce {}
    impl ErrorHandler for AtOnce {}
    impl nova_core::HeartbeatHandler for AtOnce {}
    impl nova_core::RateLimitHandler for AtOnce {}

    let server = TestServer::start().await.unwrap();
    // A backoff far longer than the test: only the zero delay can reconnect in time.
    let cfg = config(&server).backoff(Duration::from_secs(60), Duration::from_secs(120));
    let (client, _messages) = Client::connect(cfg.build().unwrap(), AtOnce);
    let mut events = client.events();
    let mut conn = server.next_connection().await;
    client.wait_connected(LONG).await.unwrap();
    for drop in 1..=3u64 {
        conn.drop_tcp();
        let seen = events_until(&mut events, |e| {
            matches!(e, LifecycleEvent::Connected { connection_index, .. } if *connection_index == drop)
        })
        .await;
        assert_eq!(delays(&seen), vec![Duration::ZERO], "{seen:#?}");
        conn = server.next_connection_timeout(LONG).await.unwrap();
    }
    client.close(1000, "done").await.unwrap();
}

/// Commands sent while the client stops are all answered: each call returns (closed, or
/// `Stopped`), none waits for ever. A command could slip into the control channel after the
/// driver had emptied it and stay there with its caller waiting, for as long as a handle lived
/// (a window of nanoseconds: this guards the property, it does not reproduce that race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_racing_the_stop_all_return() {
    let server = TestServer::start().await.unwrap();
    for round in 0..50 {
        let (client, _messages) = Client::connect(config(&server).build().unwrap(), DefaultHandler);
        let _conn = server.next_connection().await;
        client.wait_connected(LONG).await.unwrap();
        let callers: Vec<_> = (0..16)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        client.close(1000, "race").await.map(drop)
                    } else {
                        client
                            .subscribe(format!("c{i}"), serde_json::Value::Null)
                            .await
                            .map(drop)
                    }
                })
            })
            .collect();
        for caller in callers {
            let answered = tokio::time::timeout(LONG, caller).await;
            assert!(answered.is_ok(), "round {round}: a call never returned");
        }
        assert!(client.current_state().stopped.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_connect_output_goes_first_and_frames_reach_handle_frame() {
    /// Says hello on every connect and echoes binary frames itself.
    struct Greeter;
    impl ConnectionHandler for Greeter {
        fn handle_connect(
            &mut self,
            info: &nova_core::ConnectInfo,
            ctx: &mut Context<'_>,
        ) -> Result<(), HandlerError> {
            ctx.send(format!("hello #{}", info.connection_index));
            Ok(())
        }
        fn handle_frame(&mut self, frame: &Frame, ctx: &mut Context<'_>) -> nova_core::FrameAction {
            if let Frame::Binary(b) = frame {
                ctx.send_frame(Frame::Binary(b.clone()));
                return nova_core::FrameAction::Consumed;
            }
            nova_core::FrameAction::Continue
        }
    }
    impl MessageHandler for Greeter {}
    impl nova_core::SubscriptionHandler for Greeter {}
    impl nova_core::AuthHandler for Greeter {}
    impl ErrorHandler for Greeter {}
    impl nova_core::HeartbeatHandler for Greeter {}
    impl nova_core::RateLimitHandler for Greeter {}

    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let (client, _messages) = Client::connect(config(&server).build().unwrap(), Greeter);
    let conn = server.next_connection().await;
    conn.send_binary(vec![1, 2, 3]).await;
    let got = conn.wait_for_received(2, LONG).await;
    assert_eq!(
        got,
        vec![
            nova_testkit::Frame::Text("hello #0".into()),
            nova_testkit::Frame::Binary(vec![1, 2, 3])
        ]
    );
    conn.drop_tcp();
    let conn = server.next_connection().await;
    let got = conn.wait_for_received(1, LONG).await;
    assert_eq!(got[0], nova_testkit::Frame::Text("hello #1".into()));
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reaches_a_wss_server_through_a_socks5_proxy_and_refuses_an_untrusted_one() {
    use nova_core::{ProxyConfig, TlsConfig, TlsRoots};
    let ca = nova_testkit::TestCa::new();
    let opts = nova_testkit::ServerOptions::default().with_tls(ca.acceptor(&["localhost"]));
    let server = TestServer::start_with(opts).await.unwrap();
    let proxy = nova_testkit::Socks5Proxy::start(Some(("nova".into(), "s3cret".into())))
        .await
        .unwrap();

    let tls = TlsConfig::default()
        .with_roots(TlsRoots::None)
        .with_extra_ca_pem(ca.ca_pem());
    let proxy_cfg = ProxyConfig::socks5(proxy.addr().to_string()).with_auth("nova", "s3cret");
    let cfg = config(&server).tls(tls).proxy(proxy_cfg).build().unwrap();
    assert!(
        !format!("{cfg:?}").contains("s3cret"),
        "the proxy password leaked into Debug"
    );
    let (client, mut messages) = Client::connect(cfg, DefaultHandler);
    client.send_text("through the tunnel").await.unwrap();
    let m = tokio::time::timeout(LONG, messages.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.as_text(), Some("through the tunnel"));
    assert_eq!(proxy.tunnels_opened(), 1);
    client.close(1000, "done").await.unwrap();

    // With only the public roots the test CA is unknown: a clear error, and backoff.
    let tls = TlsConfig::default();
    let cfg = config(&server)
        .tls(tls)
        .max_reconnect_attempts(Some(1))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, DefaultHandler);
    let mut events = client.events();
    let seen = events_until(&mut events, |e| matches!(e, LifecycleEvent::Stopped { .. })).await;
    let failure = seen.iter().find_map(|e| match e {
        LifecycleEvent::ConnectFailed { kind, error, .. } => Some((*kind, error.clone())),
        _ => None,
    });
    let (kind, error) = failure.unwrap();
    assert_eq!(kind, "transport.tls");
    assert!(error.contains("not trusted"), "{error}");
}
