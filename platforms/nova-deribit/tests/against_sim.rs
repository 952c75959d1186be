//! The Deribit adapter against the Deribit simulator: the must-show list.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use nova_core::{Request, SubscriptionEvent, SubscriptionStream};
use nova_deribit::{
    Channel, Credentials, Credits, DeribitAdapter, DeribitClient, DeribitConfig, DeribitError,
    DeribitEvent, DeribitLimits, ErrorCode, Grant, Interval, Notification, OrderRequest,
    book_position,
};
use nova_testkit::deribit::{
    CreditLimits, DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET,
};
use serde_json::json;
use tokio::time::{Instant, timeout};

const WAIT: Duration = Duration::from_secs(10);

fn creds() -> Credentials {
    Credentials::new(TEST_CLIENT_ID, TEST_CLIENT_SECRET)
}

/// Connects with fast reconnects (tests force drops).
fn connect(sim: &DeribitSim, config: DeribitConfig) -> DeribitClient {
    let client_config = DeribitClient::config_builder(sim.url(), &config)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .request_timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let (client, messages) =
        DeribitClient::connect_with(client_config, DeribitAdapter::new(config));
    // Unclaimed messages (answers to public/test and public/hello) are not needed here.
    tokio::spawn(async move {
        let mut messages = messages;
        while messages.recv().await.is_some() {}
    });
    client
}

#[tokio::test]
async fn both_grants_authenticate_and_private_methods_need_them() {
    let sim = DeribitSim::start().await.unwrap();
    for grant in [Grant::ClientCredentials, Grant::ClientSignature] {
        let before = sim.counters().auths;
        let deribit = connect(
            &sim,
            DeribitConfig::default().credentials(creds()).grant(grant),
        );
        let positions = deribit.get_positions("BTC", None).await.unwrap();
        assert!(positions.is_empty());
        assert_eq!(sim.counters().auths, before + 1, "{grant:?}");
        deribit.close().await.unwrap();
    }
    // Wrong secret: the client stops with the platform's reason.
    let wrong = connect(
        &sim,
        DeribitConfig::default()
            .credentials(Credentials::new(TEST_CLIENT_ID, "nope"))
            .grant(Grant::ClientSignature),
    );
    let stop = timeout(WAIT, wrong.client().stopped()).await.unwrap();
    assert!(format!("{stop:?}").contains("13009"), "{stop:?}");
    // Without credentials, private methods refuse to run (nothing is sent)...
    let anonymous = connect(&sim, DeribitConfig::default());
    let err = anonymous.get_positions("BTC", None).await.unwrap_err();
    assert!(matches!(err, DeribitError::NotAuthenticated(_)), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
    // ...and Deribit refuses them with 13009 when they are sent anyway.
    let raw = anonymous
        .client()
        .request(Request::json_rpc("private/get_positions", json!({})))
        .await
        .unwrap();
    assert_eq!(nova_deribit::error_code(&raw), Some(13009));
    assert!(anonymous.ticker("BTC-PERPETUAL").await.is_ok());
}

#[tokio::test]
async fn the_token_is_refreshed_before_expiry_without_a_disconnect() {
    let options = DeribitSimOptions::default().with_token_lifetime(Duration::from_secs(2));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let deribit = connect(
        &sim,
        DeribitConfig::default()
            .credentials(creds())
            .refresh_after(0.5),
    );
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_secs(7) {
        deribit.get_positions("BTC", None).await.unwrap();
        calls += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counters = sim.counters();
    assert!(counters.refreshes >= 4, "{counters:?}");
    assert_eq!(counters.auths, 1, "{counters:?}");
    assert_eq!(counters.connections, 1, "{counters:?}");
    assert_eq!(counters.unauthorized, 0, "{counters:?}");
    assert!(calls > 30);
}

#[tokio::test]
async fn a_refused_refresh_falls_back_to_a_full_grant_on_the_same_connection() {
    let options = DeribitSimOptions::default().with_token_lifetime(Duration::from_secs(2));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let deribit = connect(
        &sim,
        DeribitConfig::default()
            .credentials(creds())
            .refresh_after(0.5),
    );
    deribit.get_positions("BTC", None).await.unwrap();
    sim.revoke_refresh_tokens();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        deribit.get_positions("BTC", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counters = sim.counters();
    // The first refresh was refused; the adapter authenticated afresh and refreshed since.
    assert!(counters.auth_failures >= 1, "{counters:?}");
    assert!(counters.auths >= 2, "{counters:?}");
    assert_eq!(counters.connections, 1, "{counters:?}");
    assert_eq!(counters.unauthorized, 0, "{counters:?}");
}

#[tokio::test]
async fn heartbeats_are_held_over_a_long_run() {
    // A "10 s" heartbeat in 0.5 s: 24 test requests in 12 s, each to be answered within 0.5 s.
    let unit = Duration::from_millis(50);
    let options = DeribitSimOptions::default().with_heartbeat_unit(unit);
    let sim = DeribitSim::start_with(options).await.unwrap();
    let deribit = connect(
        &sim,
        DeribitConfig::default()
            .credentials(creds())
            .heartbeat(Some(10))
            .heartbeat_unit(unit),
    );
    deribit.ticker("BTC-PERPETUAL").await.unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let counters = sim.counters();
    assert!(counters.test_requests >= 20, "{counters:?}");
    assert_eq!(counters.heartbeat_drops, 0, "{counters:?}");
    assert_eq!(counters.connections, 1, "{counters:?}");
    deribit.ticker("BTC-PERPETUAL").await.unwrap();
}

/// What a consumer of a book stream saw.
#[derive(Debug, Default)]
struct BookCheck {
    last: Option<u64>,
    snapshots: u64,
    changes: u64,
    gaps: u64,
    gaps_closed: u64,
    /// The value a `GapClosed` announced, until its snapshot comes.
    closing: Option<u64>,
    restored: u64,
    /// After a restore or a gap, the next book message must be a fresh snapshot.
    expect_snapshot: bool,
    breaks: Vec<String>,
}

impl BookCheck {
    fn see(&mut self, event: &SubscriptionEvent) {
        match event {
            SubscriptionEvent::Message(m) => match book_position(m) {
                Some((id, None)) => {
                    self.snapshots += 1;
                    self.expect_snapshot = false;
                    if let Some(value) = self.closing.take() {
                        if value != id {
                            self.breaks
                                .push(format!("gap closed at {value}, snapshot at {id}"));
                        }
                    }
                    self.last = Some(id);
                }
                Some((id, Some(prev))) => {
                    self.changes += 1;
                    if self.expect_snapshot {
                        self.breaks
                            .push(format!("change {id} before the fresh snapshot"));
                    }
                    if self.last != Some(prev) {
                        self.breaks
                            .push(format!("prev_change_id {prev} after {:?}", self.last));
                    }
                    self.last = Some(id);
                }
                None => self.breaks.push(format!("not a book message: {m:?}")),
            },
            SubscriptionEvent::Gap { gap, action } => {
                // A lost change is closed by subscribing again; a reconnect by the restore's own
                // snapshot.
                let expected = if gap.after_reconnect {
                    "snapshot"
                } else {
                    "resubscribe"
                };
                assert_eq!(*action, expected);
                self.gaps += 1;
                self.expect_snapshot = true;
            }
            // Announced just before the snapshot that closes the gap.
            SubscriptionEvent::GapClosed { value } => {
                self.gaps_closed += 1;
                self.closing = Some(*value);
            }
            SubscriptionEvent::Restored => {
                self.restored += 1;
                self.expect_snapshot = true;
            }
            _ => {}
        }
    }
}

async fn drain(
    stream: &mut SubscriptionStream,
    for_: Duration,
    mut f: impl FnMut(SubscriptionEvent),
) {
    let end = Instant::now() + for_;
    while let Ok(Some(event)) = tokio::time::timeout_at(end, stream.next()).await {
        f(event);
    }
}

#[tokio::test]
async fn three_subscriptions_survive_five_forced_drops_with_book_continuity() {
    let options = DeribitSimOptions::default().with_tick(Duration::from_millis(20));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let deribit = connect(&sim, DeribitConfig::default().credentials(creds()));
    let mut book = deribit
        .subscribe(Channel::book("BTC-PERPETUAL", Interval::Ms100))
        .await
        .unwrap();
    let mut ticker = deribit
        .subscribe(Channel::ticker("BTC-PERPETUAL", Interval::Ms100))
        .await
        .unwrap();
    let mut orders = deribit
        .subscribe(Channel::user_orders("BTC-PERPETUAL", Interval::Raw))
        .await
        .unwrap();

    let mut check = BookCheck::default();
    let mut tickers = 0u64;
    let mut ticker_restored = 0u64;
    for round in 0..5 {
        drain(&mut book, Duration::from_millis(300), |e| check.see(&e)).await;
        if round == 2 {
            // A lost book change on the wire, too: the gap must be noticed and closed.
            sim.skip_book_change();
            drain(&mut book, Duration::from_millis(300), |e| check.see(&e)).await;
        }
        sim.drop_all().await;
        // Wait for the restore, then keep reading.
        assert!(
            sim.wait_for(WAIT, |c| c.connections == round + 2).await,
            "{:?}",
            sim.counters()
        );
        drain(&mut ticker, Duration::from_millis(100), |e| match e {
            SubscriptionEvent::Message(_) => tickers += 1,
            SubscriptionEvent::Restored => ticker_restored += 1,
            _ => {}
        })
        .await;
    }
    drain(&mut book, Duration::from_millis(500), |e| check.see(&e)).await;
    drain(&mut ticker, Duration::from_millis(300), |e| match e {
        SubscriptionEvent::Message(_) => tickers += 1,
        SubscriptionEvent::Restored => ticker_restored += 1,
        _ => {}
    })
    .await;

    assert!(check.breaks.is_empty(), "{check:?}");
    assert_eq!(check.restored, 5, "{check:?}");
    assert!(
        check.snapshots >= 7,
        "a snapshot per connection and per gap: {check:?}"
    );
    assert!(check.gaps >= 1, "{check:?}");
    assert_eq!(check.gaps, check.gaps_closed, "every gap closed: {check:?}");
    assert!(check.changes > 50, "{check:?}");
    assert_eq!(ticker_restored, 5);
    assert!(tickers > 20, "{tickers}");

    // The private channel came back too: an order made now is seen on it.
    let placed = deribit
        .buy(&OrderRequest::market("BTC-PERPETUAL", 10.0))
        .await
        .unwrap();
    let mut seen = None;
    drain(&mut orders, Duration::from_secs(1), |e| {
        if let SubscriptionEvent::Message(m) = e {
            if let Ok(DeribitEvent::Orders(list)) = Notification::parse(&m).unwrap().event() {
                seen = Some(list[0].order_id.clone());
            }
        }
    })
    .await;
    assert_eq!(seen, Some(placed.order.order_id));

    let counters = sim.counters();
    assert_eq!(counters.connections, 6, "{counters:?}");
    assert_eq!(counters.auths, 6, "{counters:?}");
    let last = sim.open_connections().pop().unwrap();
    assert_eq!(last.subscriptions.len(), 3, "{last:?}");
}

#[tokio::test]
async fn a_burst_of_500_requests_with_the_limiter_never_gets_10028() {
    // Deribit's bucket (500 per request, 50,000) with a faster refill, to keep the test short.
    let sim_credits = CreditLimits {
        cost: 500,
        max: 50_000,
        refill_per_sec: 50_000,
    };
    let options = DeribitSimOptions::default().with_credits(Some(sim_credits));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let limits = DeribitLimits::new(
        Credits::new(500, 50_000, 50_000),
        DeribitLimits::default().matching_engine,
    );
    let deribit = connect(
        &sim,
        DeribitConfig::default().credentials(creds()).limits(limits),
    );
    deribit.ticker("BTC-PERPETUAL").await.unwrap();
    let started = Instant::now();
    let calls = (0..500).map(|_| deribit.ticker("BTC-PERPETUAL"));
    let results = futures_util::future::join_all(calls).await;
    let failed: Vec<&DeribitError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    // 500 requests at 45,000 credits per second after a 45,000 burst: paced, not instant.
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Orders: the matching-engine bucket (burst 50, 20/s) with the client's margin.
    let order = OrderRequest::market("BTC-PERPETUAL", 10.0);
    let orders = (0..70).map(|_| deribit.buy(&order));
    let results = futures_util::future::join_all(orders).await;
    assert!(results.iter().all(Result::is_ok));
    let counters = sim.counters();
    assert_eq!(counters.rate_limited, 0, "{counters:?}");
    assert_eq!(counters.connections, 1, "{counters:?}");
}

#[tokio::test]
async fn without_the_limiter_the_same_burst_is_refused() {
    let sim = DeribitSim::start().await.unwrap();
    let config = DeribitConfig::default();
    let client_config = nova_core::ClientConfig::builder(sim.url())
        .request_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let (deribit, _messages) =
        DeribitClient::connect_with(client_config, DeribitAdapter::new(config));
    let client = deribit.client().clone();
    let calls = (0..500).map(|_| {
        let client = client.clone();
        async move {
            let request = Request::json_rpc("public/get_time", json!({}));
            let _ = client.request(request).await;
        }
    });
    let burst = tokio::spawn(futures_util::future::join_all(calls));
    assert!(
        sim.wait_for(WAIT, |c| c.rate_limited >= 1).await,
        "{:?}",
        sim.counters()
    );
    burst.abort();
}

#[tokio::test]
async fn typed_requests() {
    let sim = DeribitSim::start().await.unwrap();
    let deribit = connect(&sim, DeribitConfig::default().credentials(creds()));
    let instruments = deribit
        .get_instruments("BTC", Some(nova_deribit::Kind::Future))
        .await
        .unwrap();
    assert!(
        instruments
            .iter()
            .any(|i| i.instrument_name == "BTC-PERPETUAL")
    );
    let ticker = deribit.ticker("ETH-PERPETUAL").await.unwrap();
    assert!(ticker.best_bid_price < ticker.best_ask_price);
    let missing = deribit.ticker("NOPE").await.unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::NotFound));

    let bought = deribit
        .buy(&OrderRequest::market("BTC-PERPETUAL", 100.0).label("t"))
        .await
        .unwrap();
    assert_eq!(bought.order.order_state, "filled");
    assert_eq!(bought.trades.len(), 1);
    let resting = deribit
        .sell(&OrderRequest::limit("BTC-PERPETUAL", 10.0, 1_000_000.0))
        .await
        .unwrap();
    assert_eq!(resting.order.order_state, "open");
    let cancelled = deribit.cancel(&resting.order.order_id).await.unwrap();
    assert_eq!(cancelled.order_state, "cancelled");
    let again = deribit.cancel(&resting.order.order_id).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::OrderNotFound));
    let positions = deribit.get_positions("BTC", None).await.unwrap();
    assert_eq!(positions.len(), 1);
    assert!((positions[0].size - 100.0).abs() < 1e-9);
    let time: u64 = deribit.call("public/get_time", json!({})).await.unwrap();
    assert!(time > 1_700_000_000_000);

    // Notifications typed by channel, with the raw JSON at hand.
    let mut index = deribit
        .subscribe(Channel::price_index("btc_usd"))
        .await
        .unwrap();
    let mut kinds = BTreeMap::new();
    while kinds.is_empty() {
        if let Some(SubscriptionEvent::Message(m)) = index.next().await {
            let n = Notification::parse(&m).unwrap();
            assert!(
                n.raw
                    .as_text()
                    .unwrap()
                    .contains("deribit_price_index.btc_usd")
            );
            if let DeribitEvent::PriceIndex(p) = n.event().unwrap() {
                kinds.insert(p.index_name, p.price);
            }
        }
    }
    assert!(kinds["btc_usd"] > 0.0);
    // Unsubscribing (or dropping the stream) ends it on the server too.
    assert!(
        sim.open_connections()[0]
            .subscriptions
            .contains("deribit_price_index.btc_usd")
    );
    index.unsubscribe().await.unwrap();
    assert!(
        nova_testkit::wait_until(|| sim.open_connections()[0].subscriptions.is_empty(), WAIT).await
    );
    // An unknown channel is refused: Deribit leaves it out of the ack.
    let refused = deribit.subscribe(Channel::new("ticker.NOPE.100ms")).await;
    assert!(refused.is_err());
}
