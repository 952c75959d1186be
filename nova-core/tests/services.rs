//! Requests, subscriptions, authentication, heartbeats and rate limits, against the test kit's
//! JSON-RPC server and scripted servers. The adapter here only describes a protocol; the runtime
//! does the work.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{MS, Recover, Rpc, config};
use nova_core::{
    Client, Error, LifecycleEvent, Message, RateLimit, Request, SubscriptionEvent,
    SubscriptionStream,
};
use nova_testkit::{Frame, JsonRpcServer, SimOptions, TestServer, wait_until};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(20);

async fn next_message(stream: &mut SubscriptionStream) -> Value {
    let m = tokio::time::timeout(LONG, stream.next_message())
        .await
        .unwrap()
        .unwrap();
    m.json().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_each_get_their_own_response() {
    let server = JsonRpcServer::start().await.unwrap();
    let (client, _messages) = Client::connect(
        config(server.url()).send_buffer(2048).build().unwrap(),
        Rpc::new(),
    );
    let mut tasks = Vec::new();
    for n in 0..1000u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .request(Request::json_rpc("public/echo", json!({"n": n})))
                .await
                .unwrap();
            let v: Value = response.json().unwrap();
            assert_eq!(
                v["result"]["n"], n,
                "request {n} got someone else's response"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_times_out_and_its_late_answer_is_harmless() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let (client, mut messages) = Client::connect(config(server.url()).build().unwrap(), Rpc::new());
    let conn = server.next_connection().await;
    let started = Instant::now();
    let result = client
        .request(Request::json_rpc("public/slow", json!({})).timeout(MS(300)))
        .await;
    assert!(
        matches!(result, Err(Error::Timeout(d)) if d == MS(300)),
        "{result:?}"
    );
    assert!(started.elapsed() >= MS(300));
    // The answer arrives late: dropped, nothing breaks, nothing reaches the application.
    let request: Value = serde_json::from_str(conn.received()[0].as_text().unwrap()).unwrap();
    conn.send_text(json!({"jsonrpc": "2.0", "id": request["id"], "result": "late"}).to_string())
        .await;
    // The connection still works for the next request.
    server.set_responder(Some(Arc::new(|_, frame: &Frame| {
        let v: Value = serde_json::from_slice(frame.as_bytes()).unwrap();
        vec![Frame::Text(
            json!({"jsonrpc": "2.0", "id": v["id"], "result": "on time"}).to_string(),
        )]
    })));
    let answer = client
        .request(Request::json_rpc("public/fast", json!({})))
        .await
        .unwrap();
    assert_eq!(answer.json::<Value>().unwrap()["result"], "on time");
    assert!(
        messages.try_recv_for_test().is_none(),
        "the late answer reached the application"
    );
    assert_eq!(server.connections_accepted(), 1);
    client.close(1000, "done").await.unwrap();
}

trait TryRecvForTest {
    fn try_recv_for_test(&mut self) -> Option<Message>;
}

impl TryRecvForTest for nova_core::Messages {
    fn try_recv_for_test(&mut self) -> Option<Message> {
        use futures_util::FutureExt;
        self.recv().now_or_never().flatten().and_then(Result::ok)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_disconnect_requests_fail_unless_idempotent_which_are_sent_again() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let (client, _messages) = Client::connect(config(server.url()).build().unwrap(), Rpc::new());
    let conn = server.next_connection().await;
    let plain = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request(Request::json_rpc("private/buy", json!({"amount": 1})))
                .await
        }
    });
    let safe = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request(Request::json_rpc("public/get_positions", json!({})).idempotent())
                .await
        }
    });
    conn.wait_for_received(2, LONG).await;
    let ids: Vec<Value> = conn
        .received()
        .iter()
        .map(|f| serde_json::from_slice::<Value>(f.as_bytes()).unwrap()["id"].clone())
        .collect();
    conn.drop_tcp();
    assert!(matches!(plain.await.unwrap(), Err(Error::Disconnected)));
    // On the new connection only the idempotent request comes back, with the same id.
    let conn = server.next_connection().await;
    let again = conn.wait_for_received(1, LONG).await;
    let v: Value = serde_json::from_slice(again[0].as_bytes()).unwrap();
    assert_eq!(v["method"], "public/get_positions");
    assert!(ids.contains(&v["id"]));
    conn.send_text(json!({"jsonrpc": "2.0", "id": v["id"], "result": []}).to_string())
        .await;
    let answer = safe.await.unwrap().unwrap();
    assert_eq!(answer.json::<Value>().unwrap()["result"], json!([]));
    assert_eq!(
        conn.received().len(),
        1,
        "the failed request must not be sent again"
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_subscriptions_are_restored_after_reauth_and_keep_their_streams() {
    let sim = JsonRpcServer::start_with(SimOptions::default().with_credentials("id", "secret"))
        .await
        .unwrap();
    let mut adapter = Rpc::new();
    adapter.credentials = Some(("id".into(), "secret".into()));
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let channels = ["ticker.BTC", "book.BTC", "user.orders"];
    let mut streams = Vec::new();
    for c in channels {
        streams.push(client.subscribe(c, json!({})).await.unwrap());
    }
    assert_eq!(
        client.current_state().status,
        nova_core::ConnectionStatus::Authenticated
    );
    for (n, c) in channels.iter().enumerate() {
        sim.publish(c, json!({"n": n})).await;
        assert_eq!(
            next_message(&mut streams[n]).await["params"]["data"]["n"],
            n
        );
    }

    sim.server().next_connection().await.drop_tcp();
    // Restored on the new connection: after a fresh auth, each ack verified.
    for s in &mut streams {
        let event = tokio::time::timeout(LONG, s.recv()).await.unwrap().unwrap();
        assert_eq!(event, SubscriptionEvent::Restored);
    }
    assert!(sim.is_authenticated(1));
    let on_second: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|(conn, _)| *conn == 1)
        .map(|(_, r)| r["method"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        on_second[0], "public/auth",
        "authentication comes first: {on_second:?}"
    );
    assert_eq!(
        on_second[1..]
            .iter()
            .filter(|m| *m == "public/subscribe")
            .count(),
        3
    );
    for (n, c) in channels.iter().enumerate() {
        assert!(sim.subscribers(c).contains(&1));
        sim.publish(c, json!({"n": n + 10})).await;
        assert_eq!(
            next_message(&mut streams[n]).await["params"]["data"]["n"],
            n + 10
        );
    }
    let status = client.current_state().subscription_status;
    assert!(
        channels
            .iter()
            .all(|c| status[*c] == nova_core::SubscriptionStatus::Active)
    );

    // Dropping a stream unsubscribes.
    let dropped = streams.pop().unwrap();
    drop(dropped);
    assert!(wait_until(|| !sim.subscribers("user.orders").contains(&1), LONG).await);
    assert!(
        !client
            .current_state()
            .subscription_status
            .contains_key("user.orders")
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_is_an_error_for_the_caller() {
    let server = TestServer::start().await.unwrap();
    server.set_responder(Some(Arc::new(|_, frame: &Frame| {
        let v: Value = serde_json::from_slice(frame.as_bytes()).unwrap();
        vec![Frame::Text(json!({"jsonrpc": "2.0", "id": v["id"], "error": {"code": 11050, "message": "bad_request"}}).to_string())]
    })));
    let (client, _messages) = Client::connect(config(server.url()).build().unwrap(), Rpc::new());
    let error = client.subscribe("nope", json!({})).await.unwrap_err();
    assert!(
        matches!(&error, Error::SubscriptionRefused { channel, reason } if channel == "nope" && reason.contains("bad_request")),
        "{error}"
    );
    assert!(client.current_state().subscription_status.is_empty());
    client.close(1000, "done").await.unwrap();
}

async fn publish_seq(sim: &JsonRpcServer, channel: &str, seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        sim.publish(channel, json!({"seq": seq})).await;
    }
}

async fn seqs_until(
    stream: &mut SubscriptionStream,
    last: u64,
) -> (Vec<u64>, Vec<SubscriptionEvent>) {
    let mut seqs = Vec::new();
    let mut notices = Vec::new();
    while seqs.last() != Some(&last) {
        match tokio::time::timeout(LONG, stream.recv())
            .await
            .unwrap()
            .unwrap()
        {
            SubscriptionEvent::Message(m) => {
                seqs.push(
                    m.json::<Value>().unwrap()["params"]["data"]["seq"]
                        .as_u64()
                        .unwrap(),
                );
            }
            other => notices.push(other),
        }
    }
    (seqs, notices)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_closed_by_a_backfill_in_order_without_duplicates() {
    let sim = JsonRpcServer::start().await.unwrap();
    let mut adapter = Rpc::new();
    adapter.recover = Recover::Backfill;
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let mut stream = client.subscribe("counter", json!({})).await.unwrap();
    publish_seq(&sim, "counter", [1, 2, 3, 7, 8]).await;
    let (seqs, notices) = seqs_until(&mut stream, 8).await;
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(
        matches!(&notices[0], SubscriptionEvent::Gap { action: "backfill", gap } if gap.last == Some(3) && gap.got == Some(7)),
        "{notices:?}"
    );
    assert!(
        notices.contains(&SubscriptionEvent::GapClosed { value: 6 }),
        "{notices:?}"
    );
    let asked = sim
        .wait_for_request("public/get_missed", LONG)
        .await
        .unwrap();
    assert_eq!(
        asked["params"],
        json!({"channel": "counter", "from": 4, "to": 6})
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_closed_by_resubscribing_for_a_snapshot() {
    let sim = JsonRpcServer::start().await.unwrap();
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), Rpc::new());
    let mut stream = client.subscribe("book", json!({})).await.unwrap();
    publish_seq(&sim, "book", [1, 2, 5]).await;
    // The runtime unsubscribes and subscribes again; the server then sends a snapshot.
    let unsubscribed = sim.wait_for_request("public/unsubscribe", LONG).await;
    assert!(unsubscribed.is_some());
    assert!(
        wait_until(
            || sim
                .requests()
                .iter()
                .filter(|(_, r)| r["method"] == "public/subscribe")
                .count()
                == 2,
            LONG
        )
        .await
    );
    assert!(wait_until(|| sim.subscribers("book") == vec![0], LONG).await);
    sim.publish("book", json!({"seq": 40, "snapshot": true}))
        .await;
    publish_seq(&sim, "book", [41]).await;
    let (seqs, notices) = seqs_until(&mut stream, 41).await;
    assert_eq!(seqs, [1, 2, 40, 41]);
    assert!(
        matches!(
            &notices[0],
            SubscriptionEvent::Gap {
                action: "resubscribe",
                ..
            }
        ),
        "{notices:?}"
    );
    assert!(
        notices.contains(&SubscriptionEvent::GapClosed { value: 40 }),
        "{notices:?}"
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_that_cannot_be_closed_is_reported_to_the_consumer() {
    let sim = JsonRpcServer::start().await.unwrap();
    let mut adapter = Rpc::new();
    adapter.recover = Recover::Report;
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let mut stream = client.subscribe("counter", json!({})).await.unwrap();
    publish_seq(&sim, "counter", [1, 2, 9, 10]).await;
    let (seqs, notices) = seqs_until(&mut stream, 10).await;
    assert_eq!(seqs, [1, 2, 9, 10]);
    assert!(
        matches!(
            notices.as_slice(),
            [
                SubscriptionEvent::Gap {
                    action: "report",
                    ..
                },
                SubscriptionEvent::GapNotClosed { .. }
            ]
        ),
        "{notices:?}"
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_across_a_reconnect_is_noticed_and_closed() {
    let sim = JsonRpcServer::start().await.unwrap();
    let mut adapter = Rpc::new();
    adapter.recover = Recover::Backfill;
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let mut stream = client.subscribe("counter", json!({})).await.unwrap();
    publish_seq(&sim, "counter", [1, 2]).await;
    seqs_until(&mut stream, 2).await;
    sim.server().next_connection().await.drop_tcp();
    assert_eq!(
        tokio::time::timeout(LONG, stream.recv()).await.unwrap(),
        Some(SubscriptionEvent::Restored)
    );
    // Data flowed while the client was away; the next live message reveals the gap.
    publish_seq(&sim, "counter", [6, 7]).await;
    let (seqs, _) = seqs_until(&mut stream, 7).await;
    assert_eq!(seqs, [3, 4, 5, 6, 7]);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_in_two_seconds_is_refreshed_without_a_disconnect() {
    let sim = JsonRpcServer::start_with(SimOptions::default().with_credentials("id", "secret"))
        .await
        .unwrap();
    let mut adapter = Rpc::new();
    adapter.credentials = Some(("id".into(), "secret".into()));
    adapter.token_lifetime = Duration::from_secs(2);
    let cfg = config(sim.url())
        .auth_check_interval(MS(100))
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, adapter);
    client.wait_connected(LONG).await.unwrap();
    let auths = || {
        sim.requests()
            .iter()
            .filter(|(_, r)| r["method"] == "public/auth")
            .count()
    };
    // Over 4.5 s a 2 s token is refreshed (at least) twice, each time before it expires.
    assert!(
        wait_until(|| auths() >= 3, Duration::from_secs(10)).await,
        "auths: {}",
        auths()
    );
    assert_eq!(
        sim.server().connections_accepted(),
        1,
        "refresh must not reconnect"
    );
    assert_eq!(
        client.current_state().status,
        nova_core::ConnectionStatus::Authenticated
    );
    // Private calls keep working on the refreshed session.
    let answer = client
        .request(Request::json_rpc("private/get_positions", json!({})))
        .await
        .unwrap();
    assert!(answer.json::<Value>().unwrap().get("error").is_none());
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_credential_stops_the_client_with_a_clear_error() {
    let sim = JsonRpcServer::start_with(SimOptions::default().with_credentials("id", "secret"))
        .await
        .unwrap();
    let mut adapter = Rpc::new();
    adapter.credentials = Some(("id".into(), "wrong".into()));
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    assert_eq!(
        reason,
        nova_core::StopReason::Policy("authentication rejected: invalid_credentials".into())
    );
    assert_eq!(
        sim.server().connections_accepted(),
        1,
        "no retry loop on a bad credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_answer_left_unjudged_is_a_rejection_not_a_pass() {
    // An adapter that sends credentials but forgot to judge the answer: the answer to its auth
    // request (recognised by id) stops the client with a reason that names the fix, instead of
    // the client counting as authenticated (and restoring private subscriptions) on whatever
    // arrives first.
    let sim = JsonRpcServer::start_with(SimOptions::default().with_credentials("id", "secret"))
        .await
        .unwrap();
    let mut adapter = Rpc::new();
    adapter.credentials = Some(("id".into(), "secret".into()));
    adapter.judges_auth = false;
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let reason = tokio::time::timeout(LONG, client.stopped()).await.unwrap();
    let nova_core::StopReason::Policy(reason) = reason else {
        panic!("stopped for another reason: {reason:?}");
    };
    assert!(
        reason.contains("handle_auth_response"),
        "the reason names the callback to write: {reason}"
    );
    assert_ne!(
        client.state().borrow().status,
        nova_core::ConnectionStatus::Authenticated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_ops_per_second_with_fifty_queued_none_fails_none_early_heartbeats_on_time() {
    let arrivals: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    server.set_responder(Some(Arc::new({
        let arrivals = arrivals.clone();
        move |_, frame: &Frame| {
            arrivals.lock().unwrap().push((
                Instant::now(),
                frame.as_text().unwrap_or_default().to_owned(),
            ));
            Vec::new()
        }
    })));
    let mut adapter = Rpc::new();
    adapter.platform_heartbeat = Some(MS(100));
    // Ten ops per second; the platform heartbeat is free under this limit.
    let limit = RateLimit::new(1, 10.0).cost(nova_core::Operation::Heartbeat, 0);
    let cfg = config(server.url())
        .rate_limit(limit)
        .send_buffer(64)
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, adapter);
    client.wait_connected(LONG).await.unwrap();
    for n in 0..50 {
        client.send(format!("op {n}")).await.unwrap();
    }
    let done = || {
        arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t)| t.starts_with("op "))
            .count()
            == 50
    };
    assert!(wait_until(done, LONG).await);
    let arrivals = arrivals.lock().unwrap().clone();
    let ops: Vec<Instant> = arrivals
        .iter()
        .filter(|(_, t)| t.starts_with("op "))
        .map(|(at, _)| *at)
        .collect();
    let order: Vec<u32> = arrivals
        .iter()
        .filter_map(|(_, t)| t.strip_prefix("op ")?.parse().ok())
        .collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>());
    // Never faster than the limit: any 11 consecutive ops span at least a second (10 refills).
    for w in ops.windows(11) {
        let span = w[10] - w[0];
        assert!(span >= MS(990), "11 ops within {span:?}");
    }
    // Heartbeats were not queued behind the ops: they kept coming while the ops trickled out.
    let first = ops[10];
    let last = ops[40];
    let beats = arrivals
        .iter()
        .filter(|(at, t)| t.contains("public/ping") && *at > first && *at < last)
        .count();
    assert!(
        beats >= 15,
        "only {beats} heartbeats went out while 30 ops waited their turn"
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_under_the_rate_limit_answers_rate_limited_with_retry_after() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let cfg = config(server.url())
        .rate_limit(RateLimit::new(1, 2.0))
        .send_buffer(4)
        .build()
        .unwrap();
    let (client, _messages) = Client::connect(cfg, Rpc::new());
    client.wait_connected(LONG).await.unwrap();
    let mut limited = None;
    for n in 0..20 {
        match client.send(format!("op {n}")).await {
            Ok(()) => {}
            Err(Error::RateLimited { retry_after }) => {
                limited = Some(retry_after);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let retry_after = limited.expect("the queue should have filled up");
    assert!(
        retry_after > Duration::ZERO && retry_after <= MS(500),
        "{retry_after:?}"
    );
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platforms_too_many_requests_answer_is_retried_after_its_delay() {
    let server = TestServer::start().await.unwrap();
    let calls = Arc::new(Mutex::new(0u32));
    server.set_responder(Some(Arc::new({
        let calls = calls.clone();
        move |_, frame: &Frame| {
            let v: Value = serde_json::from_slice(frame.as_bytes()).unwrap();
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            let body = if *calls == 1 {
                json!({"jsonrpc": "2.0", "id": v["id"], "error": {"code": 10028, "message": "too_many_requests"}})
            } else {
                json!({"jsonrpc": "2.0", "id": v["id"], "result": "ok"})
            };
            vec![Frame::Text(body.to_string())]
        }
    })));
    let (client, _messages) = Client::connect(config(server.url()).build().unwrap(), Rpc::new());
    let started = Instant::now();
    let answer = client
        .request(Request::json_rpc("private/buy", json!({})))
        .await
        .unwrap();
    assert_eq!(answer.json::<Value>().unwrap()["result"], "ok");
    assert!(started.elapsed() >= MS(100));
    assert_eq!(*calls.lock().unwrap(), 2);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_drops_clients_missing_its_heartbeats_keeps_this_one_for_a_long_run() {
    let server = TestServer::start().await.unwrap();
    server.set_echo(false);
    let mut adapter = Rpc::new();
    adapter.platform_heartbeat = Some(MS(300));
    let (client, _messages) = Client::connect(config(server.url()).build().unwrap(), adapter);
    let conn = server.next_connection().await;
    // The server asks every 50 ms and drops the client when an answer is missing for 250 ms.
    let mut answered = 0;
    for round in 0..60 {
        conn.send_text(
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
        )
        .await;
        let want = round + 1;
        let ok = wait_until(
            || {
                conn.received()
                    .iter()
                    .filter(|f| f.as_text().is_some_and(|t| t.contains("public/test")))
                    .count()
                    >= want
            },
            MS(250),
        )
        .await;
        if !ok {
            conn.drop_tcp();
            panic!("no answer to heartbeat request {round}");
        }
        answered += 1;
        tokio::time::sleep(MS(50)).await;
    }
    assert_eq!(answered, 60);
    assert_eq!(server.connections_accepted(), 1);
    assert!(client.current_state().status.is_open());

    // And a client that stops answering is dropped by such a server — the test can fail.
    let mut silent = Rpc::new();
    silent.answer_test_requests = false;
    let (quiet, _m) = Client::connect(config(server.url()).build().unwrap(), silent);
    let conn = server.next_connection().await;
    conn.send_text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#)
        .await;
    let answered = wait_until(
        || {
            conn.received()
                .iter()
                .any(|f| f.as_text().is_some_and(|t| t.contains("public/test")))
        },
        MS(250),
    )
    .await;
    assert!(!answered);
    quiet.close(1000, "done").await.unwrap();
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_channel_alone_is_subscribed_again() {
    let sim = JsonRpcServer::start().await.unwrap();
    let mut adapter = Rpc::new();
    adapter.stale_after = Some(Duration::from_millis(400));
    let (client, _messages) = Client::connect(config(sim.url()).build().unwrap(), adapter);
    let mut events = client.events();
    let mut ticker = client.subscribe("ticker.BTC", json!({})).await.unwrap();
    let mut orders = client.subscribe("orders.mine", json!({})).await.unwrap();
    sim.publish("ticker.BTC", json!({"price": 1})).await;
    assert_eq!(
        next_message(&mut ticker).await["params"]["data"]["price"],
        1
    );
    // The ticker goes quiet (a dead channel on a live connection): it alone is subscribed again.
    let event = tokio::time::timeout(LONG, ticker.recv())
        .await
        .unwrap()
        .unwrap();
    let SubscriptionEvent::Stale { silent } = event else {
        panic!("{event:?}");
    };
    assert!(silent > Duration::from_millis(400), "{silent:?}");
    let unsubscribed = sim
        .wait_for_request("public/unsubscribe", LONG)
        .await
        .unwrap();
    assert_eq!(unsubscribed["params"]["channels"], json!(["ticker.BTC"]));
    assert!(
        wait_until(
            || sim
                .requests()
                .iter()
                .filter(|(_, r)| r["method"] == "public/subscribe"
                    && r["params"]["channels"] == json!(["ticker.BTC"]))
                .count()
                == 2,
            LONG
        )
        .await
    );
    // Data flows again on the same stream; the connection was never dropped.
    assert!(wait_until(|| sim.subscribers("ticker.BTC") == vec![0], LONG).await);
    sim.publish("ticker.BTC", json!({"price": 2})).await;
    assert_eq!(
        next_message(&mut ticker).await["params"]["data"]["price"],
        2
    );
    assert_eq!(sim.server().connections_accepted(), 1);
    // The order channel, never stale, was silent all along and left alone.
    sim.publish("orders.mine", json!({"id": 7})).await;
    assert_eq!(next_message(&mut orders).await["params"]["data"]["id"], 7);
    let orders_subscribes = sim
        .requests()
        .iter()
        .filter(|(_, r)| r["params"]["channels"] == json!(["orders.mine"]))
        .count();
    assert_eq!(orders_subscribes, 1);
    let mut stale_events = 0;
    while let Ok(event) = events.try_recv() {
        match event {
            LifecycleEvent::SubscriptionStale { channel, .. } => {
                assert_eq!(channel, "ticker.BTC");
                stale_events += 1;
            }
            LifecycleEvent::Disconnected { .. } => panic!("the connection was dropped"),
            _ => {}
        }
    }
    assert!(stale_events >= 1);
    client.close(1000, "done").await.unwrap();
}
