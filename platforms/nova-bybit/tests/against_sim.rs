//! nova-bybit against the Bybit simulator of nova-testkit: real sockets on 127.0.0.1, the real
//! runtime, no mocks of nova's traits.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use nova_bybit::{
    BookEvent, BybitClient, BybitConfig, BybitError, BybitEvent, BybitLimits, Credentials,
    Endpoint, OrderAmend, OrderCancel, OrderCreate, OrderRef, OrderType, Push, RetCode, Side,
    Topic,
};
use nova_core::{ClientConfig, Error, SubscriptionEvent};
use nova_testkit::bybit::{
    BybitHandle, BybitSim, BybitSimOptions, Endpoint as SimEndpoint, TEST_API_KEY, TEST_API_SECRET,
};
use nova_testkit::wait_until;

const WAIT: Duration = Duration::from_secs(20);

fn credentials() -> Credentials {
    Credentials::new(TEST_API_KEY, TEST_API_SECRET)
}

/// A client of `endpoint` on `sim`, reconnecting quickly.
fn connect(sim: &BybitHandle, config: BybitConfig) -> BybitClient {
    let url = sim.endpoint_url(match config.endpoint {
        Endpoint::Spot => SimEndpoint::Spot,
        Endpoint::Linear => SimEndpoint::Linear,
        Endpoint::Inverse => SimEndpoint::Inverse,
        Endpoint::Option => SimEndpoint::Option,
        Endpoint::Private => SimEndpoint::Private,
        Endpoint::Trade => SimEndpoint::Trade,
        other => panic!("no simulator endpoint for {other:?}"),
    });
    let client_config = BybitClient::config_builder(&url, &config)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap();
    let (client, _messages) =
        BybitClient::connect_with(client_config, nova_bybit::BybitAdapter::new(config));
    client
}

fn open_on(sim: &BybitHandle, endpoint: SimEndpoint) -> usize {
    sim.open_connections()
        .iter()
        .filter(|c| c.endpoint == endpoint)
        .count()
}

#[derive(Default)]
struct Seen {
    /// (ts, cs) of every ticker push, in delivery order.
    tickers: Vec<(u64, u64)>,
    trades: u64,
    /// Book events, labelled, in order.
    book: Vec<String>,
    /// Problems seen by the book reader.
    violations: Vec<String>,
    /// orderLinkIds of `order` pushes.
    orders: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_forced_drops_restore_auth_then_subscriptions_and_close_every_book_break() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(20)))
        .await
        .unwrap();
    let public = connect(&sim, BybitConfig::new(Endpoint::Linear));
    let private = connect(
        &sim,
        BybitConfig::new(Endpoint::Private).credentials(credentials()),
    );
    let trade = connect(
        &sim,
        BybitConfig::new(Endpoint::Trade).credentials(credentials()),
    );

    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut tickers = public.subscribe(Topic::tickers("BTCUSDT")).await.unwrap();
    let mut trades = public
        .subscribe(Topic::public_trade("BTCUSDT"))
        .await
        .unwrap();
    let mut book = public
        .subscribe_book(Topic::orderbook(50, "BTCUSDT"))
        .await
        .unwrap();
    let mut orders = private
        .subscribe(Topic::Order { category: None })
        .await
        .unwrap();

    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(event) = tickers.next().await {
            if let SubscriptionEvent::Message(m) = event {
                let push = Push::parse(&m).unwrap();
                s.lock()
                    .unwrap()
                    .tickers
                    .push((push.ts.unwrap(), push.cs.unwrap()));
            }
        }
    });
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(event) = trades.next().await {
            if let SubscriptionEvent::Message(m) = event {
                assert!(matches!(
                    Push::parse(&m).unwrap().event(),
                    Ok(BybitEvent::Trades(_))
                ));
                s.lock().unwrap().trades += 1;
            }
        }
    });
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        // Since when the book is waiting for a snapshot, and why.
        let mut waiting: Option<&'static str> = Some("subscribe");
        while let Some(event) = book.next().await {
            let mut seen = s.lock().unwrap();
            let label = match &event {
                BookEvent::Snapshot { .. } => {
                    waiting = None;
                    "snapshot"
                }
                BookEvent::Delta { u, .. } => {
                    if let Some(why) = waiting {
                        seen.violations.push(format!(
                            "delta {u} while waiting for a snapshot after {why}"
                        ));
                    }
                    "delta"
                }
                BookEvent::Gap(_) => {
                    waiting = Some("gap");
                    "gap"
                }
                BookEvent::GapClosed { .. } => "gap-closed",
                BookEvent::Restored => {
                    waiting = Some("restore");
                    "restored"
                }
                BookEvent::Resubscribed(_) => {
                    waiting = Some("resubscribe");
                    "resubscribed"
                }
                BookEvent::Other(_) => "other",
                _ => "unknown",
            };
            match book.book() {
                Some(b) if b.check_crossed().is_err() => {
                    seen.violations.push(format!("crossed book shown: {b}"))
                }
                Some(_) if waiting.is_some() => {
                    seen.violations.push("book shown while waiting".into())
                }
                _ => {}
            }
            seen.book.push(label.to_owned());
        }
    });
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(event) = orders.next().await {
            if let SubscriptionEvent::Message(m) = event {
                if let Ok(BybitEvent::Orders(list)) = Push::parse(&m).unwrap().event() {
                    let mut seen = s.lock().unwrap();
                    seen.orders
                        .extend(list.into_iter().map(|o| o.order_link_id));
                }
            }
        }
    });

    for round in 0..=5u64 {
        // Restored: both connections open, every topic subscribed once more.
        let restored = wait_until(
            || {
                sim.subscribes_for("tickers.BTCUSDT") == round + 1
                    && sim.subscribes_for("publicTrade.BTCUSDT") == round + 1
                    && sim.subscribes_for("order") == round + 1
                    && open_on(&sim, SimEndpoint::Linear) == 1
                    && open_on(&sim, SimEndpoint::Private) == 1
            },
            WAIT,
        )
        .await;
        assert!(restored, "round {round}: {:?}", sim.counters());
        // A book break in every round: `u` jumps, the runtime resubscribes.
        let gaps_before = seen
            .lock()
            .unwrap()
            .book
            .iter()
            .filter(|l| *l == "gap-closed")
            .count();
        sim.skip_book_update();
        assert!(
            wait_until(
                || seen
                    .lock()
                    .unwrap()
                    .book
                    .iter()
                    .filter(|l| *l == "gap-closed")
                    .count()
                    > gaps_before,
                WAIT
            )
            .await,
            "round {round}: the break was not closed: {:?}",
            seen.lock().unwrap().book
        );
        // An order placed now shows on the private topic.
        let link = format!("round-{round}");
        trade.wait_connected(WAIT).await.unwrap();
        let order = OrderCreate::new("linear", "BTCUSDT", Side::Buy, OrderType::Limit, "0.01")
            .price("1000")
            .order_link_id(&link);
        match trade.create_order(&order).await {
            Ok(ack) => assert_eq!(ack.order_link_id, link),
            // A create cut off is not replayed: sending the same orderLinkId again is safe.
            Err(BybitError::Nova(Error::Disconnected)) => {
                let again = trade.create_order(&order).await;
                assert!(
                    again.is_ok()
                        || again.as_ref().err().and_then(BybitError::ret_code)
                            == Some(RetCode::DuplicateOrderLinkId)
                );
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            wait_until(|| seen.lock().unwrap().orders.contains(&link), WAIT).await,
            "round {round}"
        );
        if round < 5 {
            let ticks = seen.lock().unwrap().tickers.len();
            assert!(wait_until(|| seen.lock().unwrap().tickers.len() > ticks + 3, WAIT).await);
            sim.drop_all().await;
        }
    }

    // Every private connection authenticated before subscribing.
    let privates: Vec<_> = sim
        .connections()
        .into_iter()
        .filter(|c| c.endpoint == SimEndpoint::Private)
        .collect();
    assert_eq!(privates.len(), 6);
    for c in &privates {
        let auth = c.ops.iter().position(|op| op == "auth");
        let sub = c.ops.iter().position(|op| op.starts_with("subscribe"));
        assert!(
            matches!((auth, sub), (Some(a), Some(s)) if a < s),
            "{:?}",
            c.ops
        );
    }
    assert_eq!(
        sim.counters().auths,
        12,
        "6 private + 6 trade connections: {:?}",
        sim.counters()
    );
    assert_eq!(sim.counters().auth_failures, 0);

    let seen = seen.lock().unwrap();
    // No duplicate or reordered ticker, across five reconnects.
    assert!(
        seen.tickers
            .windows(2)
            .all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1),
        "tickers out of order"
    );
    assert!(seen.trades > 0);
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    // Every gap closed, every restore followed by a snapshot.
    let labels = &seen.book;
    assert_eq!(
        labels.iter().filter(|l| *l == "restored").count(),
        5,
        "{labels:?}"
    );
    // Six injected breaks, and each of the five reconnects: the consumer is told of every one
    // and sees each closed.
    assert_eq!(
        labels.iter().filter(|l| *l == "gap").count(),
        11,
        "{labels:?}"
    );
    assert_eq!(
        labels.iter().filter(|l| *l == "gap-closed").count(),
        11,
        "{labels:?}"
    );
    for (i, l) in labels.iter().enumerate() {
        if l == "restored" {
            assert_eq!(
                labels.get(i + 1..i + 3),
                Some(&["gap".to_owned(), "gap-closed".to_owned()][..]),
                "a reconnect is a gap, closed by the restore's snapshot: {labels:?}"
            );
        }
    }
    for (i, l) in labels.iter().enumerate() {
        if l == "gap" || l == "restored" {
            let next_data = labels[i + 1..]
                .iter()
                .find(|l| *l == "snapshot" || *l == "delta");
            assert_eq!(
                next_data.map(String::as_str),
                Some("snapshot"),
                "{labels:?}"
            );
        }
    }
    assert_eq!(sim.counters().idle_disconnects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_connections_past_the_idle_timeout_and_silence_reconnects() {
    let options = BybitSimOptions::default()
        .with_idle_timeout(Duration::from_millis(600))
        .with_tick(Duration::from_millis(50));
    let sim = BybitSim::start_with(options).await.unwrap();
    let ping = Duration::from_millis(150);
    let public = connect(&sim, BybitConfig::new(Endpoint::Spot).ping_interval(ping));
    let private = connect(
        &sim,
        BybitConfig::new(Endpoint::Private)
            .credentials(credentials())
            .ping_interval(ping),
    );
    let mut tickers = public.subscribe("tickers.BTCUSDT").await.unwrap();
    let _wallet = private.subscribe(Topic::Wallet).await.unwrap();
    // Longer than four idle timeouts, in pings rather than time.
    assert!(
        sim.wait_for(WAIT, |c| c.pings >= 40).await,
        "{:?}",
        sim.counters()
    );
    let c = sim.counters();
    assert_eq!((c.idle_disconnects, c.connections), (0, 2), "{c:?}");

    // A silent server: the pongs stop, the client reconnects (and keeps trying until it answers).
    sim.set_silent(true);
    assert!(
        sim.wait_for(WAIT, |c| c.connections >= 4).await,
        "{:?}",
        sim.counters()
    );
    sim.set_silent(false);
    assert!(wait_until(|| public.inner().current_state().status.is_open(), WAIT).await);
    let restored = loop {
        match tokio::time::timeout(WAIT, tickers.next()).await.unwrap() {
            Some(SubscriptionEvent::Restored) => break true,
            Some(_) => {}
            None => break false,
        }
    };
    assert!(restored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_entry_round_trips_with_typed_errors() {
    let sim = BybitSim::start().await.unwrap();
    let trade = connect(
        &sim,
        BybitConfig::new(Endpoint::Trade).credentials(credentials()),
    );
    let private = connect(
        &sim,
        BybitConfig::new(Endpoint::Private).credentials(credentials()),
    );
    let mut orders = private.subscribe("order.linear").await.unwrap();

    let create = OrderCreate::new("linear", "ETHUSDT", Side::Buy, OrderType::Limit, "0.2")
        .price("2800")
        .time_in_force("PostOnly")
        .order_link_id("bot-1");
    let ack = trade.create_order(&create).await.unwrap();
    assert!(!ack.order_id.is_empty());
    assert_eq!(ack.order_link_id, "bot-1");
    let pushed = Push::parse(&orders.next_message().await.unwrap()).unwrap();
    assert!(matches!(pushed.event(), Ok(BybitEvent::Orders(o)) if o[0].order_status == "New"));

    let duplicate = trade.create_order(&create).await.unwrap_err();
    assert_eq!(
        duplicate.ret_code(),
        Some(RetCode::DuplicateOrderLinkId),
        "{duplicate}"
    );

    let by_link = OrderRef::OrderLinkId("bot-1".into());
    trade
        .amend_order(&OrderAmend::new("linear", "ETHUSDT", by_link.clone()).price("2790"))
        .await
        .unwrap();
    let cancelled = trade
        .cancel_order(&OrderCancel::new(
            "linear",
            "ETHUSDT",
            OrderRef::OrderId(ack.order_id.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(cancelled.order_id, ack.order_id);
    let again = trade
        .cancel_order(&OrderCancel::new("linear", "ETHUSDT", by_link))
        .await
        .unwrap_err();
    assert_eq!(again.ret_code(), Some(RetCode::OrderNotExists));

    let market = OrderCreate::new("linear", "ETHUSDT", Side::Sell, OrderType::Market, "0.1");
    trade.create_order(&market).await.unwrap();
    let bad = OrderCreate::new("linear", "NOPE", Side::Sell, OrderType::Market, "0.1");
    assert_eq!(
        trade.create_order(&bad).await.unwrap_err().ret_code(),
        Some(RetCode::ParamsError)
    );

    let public = connect(&sim, BybitConfig::new(Endpoint::Linear));
    assert!(matches!(
        public.create_order(&market).await,
        Err(BybitError::WrongEndpoint(_))
    ));
    assert_eq!(sim.counters().orders, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_rate_limit_is_respected_and_20003_is_retried() {
    // The client paces orders at the server's own limit: nothing is refused.
    let sim = BybitSim::start_with(BybitSimOptions::default().with_order_limit(4, 8.0))
        .await
        .unwrap();
    let trade = connect(
        &sim,
        BybitConfig::new(Endpoint::Trade)
            .credentials(credentials())
            .limits(BybitLimits::new(8.0, 4)),
    );
    let mut calls = Vec::new();
    for i in 0..16 {
        let trade = trade.clone();
        calls.push(tokio::spawn(async move {
            let order = OrderCreate::new("spot", "BTCUSDT", Side::Buy, OrderType::Limit, "0.001")
                .price("100")
                .order_link_id(&format!("paced-{i}"));
            trade.create_order(&order).await
        }));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(sim.counters().rate_limited, 0, "{:?}", sim.counters());
    assert_eq!(sim.counters().orders, 16);

    // A client allowed more than the server takes: 20003 answers, each resent until accepted.
    let sim = BybitSim::start_with(BybitSimOptions::default().with_order_limit(2, 10.0))
        .await
        .unwrap();
    let mut config = BybitConfig::new(Endpoint::Trade)
        .credentials(credentials())
        .limits(BybitLimits::new(1000.0, 100));
    config.rate_limited_retry = Duration::from_millis(50);
    let trade = connect(&sim, config);
    let mut calls = Vec::new();
    for i in 0..8 {
        let trade = trade.clone();
        calls.push(tokio::spawn(async move {
            let order = OrderCreate::new("spot", "BTCUSDT", Side::Buy, OrderType::Limit, "0.001")
                .price("100")
                .order_link_id(&format!("burst-{i}"));
            trade.create_order(&order).await
        }));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let c = sim.counters();
    assert!(c.rate_limited > 0, "{c:?}");
    assert_eq!(c.orders, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_books_and_restarts_are_recovered_by_snapshots() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(20)))
        .await
        .unwrap();
    let public = connect(&sim, BybitConfig::new(Endpoint::Inverse));
    let mut book = public.subscribe_book("orderbook.50.BTCUSD").await.unwrap();
    let first = tokio::time::timeout(WAIT, book.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, BookEvent::Snapshot { .. }));
    sim.send_crossed_book();
    let mut labels = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, book.next())
            .await
            .unwrap()
            .unwrap();
        if let Some(b) = book.book() {
            assert!(b.check_crossed().is_ok(), "a crossed book was shown: {b}");
        }
        let closed = matches!(event, BookEvent::GapClosed { .. });
        labels.push(event);
        if closed {
            break;
        }
    }
    assert!(
        labels
            .iter()
            .any(|e| matches!(e, BookEvent::Gap(g) if g.claimed_previous == g.got)),
        "{labels:?}"
    );
    assert_eq!(sim.counters().crossed_books, 1);
    assert_eq!(
        sim.subscribes_for("orderbook.50.BTCUSD"),
        2,
        "resubscribed once"
    );

    // A service restart: a snapshot with u == 1 replaces the book, no gap.
    sim.restart_books();
    loop {
        match tokio::time::timeout(WAIT, book.next())
            .await
            .unwrap()
            .unwrap()
        {
            BookEvent::Snapshot { u: 1, .. } => break,
            BookEvent::Gap(g) => panic!("a restart is no gap: {g:?}"),
            _ => {}
        }
    }
    assert!(matches!(
        tokio::time::timeout(WAIT, book.next())
            .await
            .unwrap()
            .unwrap(),
        BookEvent::Delta { u: 2, .. }
    ));
    assert_eq!(book.book().unwrap().update_id(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_acks_without_req_id_and_refusals() {
    let sim = BybitSim::start().await.unwrap();
    let option = connect(&sim, BybitConfig::new(Endpoint::Option));
    let mut trades = option.subscribe("publicTrade.BTC").await.unwrap();
    let _book = option
        .subscribe_book(Topic::orderbook(25, "BTC-26DEC26-60000-C"))
        .await
        .unwrap();
    let refused = option
        .subscribe("orderbook.50.BTC-26DEC26-60000-C")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::SubscriptionRefused { .. }),
        "{refused}"
    );
    assert!(trades.next_message().await.is_some());
    let wrong = option.subscribe(Topic::Wallet).await.unwrap_err();
    assert!(
        wrong.to_string().contains("cannot be subscribed"),
        "{wrong}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_survives_a_server_clock_ahead_and_max_active_time_reauthenticates() {
    let options = BybitSimOptions::default()
        .with_clock_skew_ms(5_000)
        .with_max_active_range(Duration::from_millis(100), Duration::from_secs(600));
    let sim = BybitSim::start_with(options).await.unwrap();
    // The default expiry window (10 s) is wider than the skew (5 s).
    let config = BybitConfig::new(Endpoint::Private)
        .credentials(credentials())
        .max_active_time(Duration::from_millis(400));
    let private = connect(&sim, config);
    let mut wallet = private.subscribe(Topic::Wallet).await.unwrap();
    let restored = loop {
        match tokio::time::timeout(WAIT, wallet.next()).await.unwrap() {
            Some(SubscriptionEvent::Restored) => break true,
            Some(_) => {}
            None => break false,
        }
    };
    assert!(restored);
    let c = sim.counters();
    assert!(
        c.max_active_disconnects >= 1 && c.auths >= 2 && c.auth_failures == 0,
        "{c:?}"
    );

    // One second of expiry is not enough against this clock: refused, the client stops.
    let tight = connect(
        &sim,
        BybitConfig::new(Endpoint::Private)
            .credentials(credentials())
            .auth_expiry(Duration::from_secs(1)),
    );
    let reason = tokio::time::timeout(WAIT, tight.inner().stopped())
        .await
        .unwrap();
    assert!(format!("{reason:?}").contains("auth"), "{reason:?}");

    // Without credentials a private endpoint cannot work: the client stops, saying why.
    let (anonymous, _) = BybitClient::connect_with(
        ClientConfig::builder(sim.url("/v5/private"))
            .build()
            .unwrap(),
        nova_bybit::BybitAdapter::new(BybitConfig::new(Endpoint::Private)),
    );
    let reason = tokio::time::timeout(WAIT, anonymous.inner().stopped())
        .await
        .unwrap();
    assert!(format!("{reason:?}").contains("credentials"), "{reason:?}");
}
