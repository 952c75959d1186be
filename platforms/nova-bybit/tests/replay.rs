//! A recorded Bybit session replayed against the real clients: a public linear connection
//! (tickers and a 50-level order book) and a private one (signed `auth`, then `wallet`), both
//! dropped by the server at once; each reconnects, the private one signs in again, and every
//! topic is restored, the book from a fresh snapshot.
//!
//! The fixture (`tests/fixtures/public_private_drop_restore.jsonl`) was recorded through
//! `nova_testkit::replay::Relay` in front of the Bybit simulator; the API key is redacted. Two
//! connections at once are told apart on replay by their paths. Record it again with
//! `NOVA_RECORD=1 cargo test -p nova-bybit --test replay`, then review and commit the file.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use futures_util::StreamExt;
use nova_bybit::{
    BookEvent, BookStream, BybitAdapter, BybitClient, BybitConfig, BybitEvent, Credentials,
    Endpoint, Push, Topic,
};
use nova_core::{SubscriptionEvent, SubscriptionStream};
use nova_testkit::bybit::{
    BybitSim, BybitSimOptions, Endpoint as SimEndpoint, TEST_API_KEY, TEST_API_SECRET,
};
use nova_testkit::replay::{Matcher, Redactions, Relay, RelayOptions, ReplayOptions, ReplayServer};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/public_private_drop_restore.jsonl"
);

fn client(base: &str, path: &str, config: BybitConfig) -> BybitClient {
    let url = format!("{base}{path}");
    let client_config = BybitClient::config_builder(&url, &config)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap();
    BybitClient::connect_with(client_config, BybitAdapter::new(config)).0
}

async fn next_event(stream: &mut SubscriptionStream) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
}

async fn next_book(stream: &mut BookStream) -> BookEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
}

/// What the application saw.
#[derive(Debug, Default)]
struct Seen {
    /// `(symbol, last price)` of every ticker push.
    tickers: Vec<(String, String)>,
    /// `snapshot u` / `delta u` / `restored`, in order.
    book: Vec<String>,
    /// Best bid and ask after the last book event read.
    top: Option<(String, String)>,
    tickers_restored: u32,
    wallet_restored: u32,
}

async fn read_ticker(seen: &mut Seen, stream: &mut SubscriptionStream) {
    match next_event(stream).await {
        SubscriptionEvent::Message(m) => match Push::parse(&m).unwrap().event() {
            Ok(BybitEvent::Ticker(t)) => seen
                .tickers
                .push((t.symbol.clone(), t.last_price.clone().unwrap_or_default())),
            other => panic!("not a ticker: {other:?}"),
        },
        SubscriptionEvent::Restored => seen.tickers_restored += 1,
        _ => {}
    }
}

async fn read_book(seen: &mut Seen, stream: &mut BookStream) {
    let label = match next_book(stream).await {
        BookEvent::Snapshot { u, .. } => format!("snapshot {u}"),
        BookEvent::Delta { u, .. } => format!("delta {u}"),
        BookEvent::Restored => "restored".to_owned(),
        other => format!("{other:?}"),
    };
    seen.book.push(label);
    seen.top = stream.book().and_then(|b| {
        let bid = b.best_bid()?;
        let ask = b.best_ask()?;
        Some((bid.price.clone(), ask.price.clone()))
    });
}

/// The application. `sim` is there when recording: the test drops the connections itself.
async fn session(base: &str, sim: Option<&BybitSim>) -> Seen {
    let public = client(
        base,
        SimEndpoint::Linear.path(),
        BybitConfig::new(Endpoint::Linear),
    );
    let private = client(
        base,
        SimEndpoint::Private.path(),
        BybitConfig::new(Endpoint::Private)
            .credentials(Credentials::new(TEST_API_KEY, TEST_API_SECRET)),
    );
    let mut seen = Seen::default();
    let mut wallet = private.subscribe(Topic::Wallet).await.unwrap();
    let mut tickers = public.subscribe(Topic::tickers("BTCUSDT")).await.unwrap();
    while seen.tickers.len() < 2 {
        read_ticker(&mut seen, &mut tickers).await;
    }
    let mut book = public
        .subscribe_book(Topic::orderbook(50, "BTCUSDT"))
        .await
        .unwrap();
    while seen.book.len() < 3 {
        read_book(&mut seen, &mut book).await;
    }
    if let Some(sim) = sim {
        sim.drop_all().await;
    }
    while !seen.book.iter().any(|l| l == "restored") {
        read_book(&mut seen, &mut book).await;
    }
    // After a reconnect the book announces the gap, closes it, and a fresh snapshot follows.
    let restored = seen.book.len();
    while !seen.book[restored..]
        .iter()
        .any(|l| l.starts_with("snapshot"))
    {
        read_book(&mut seen, &mut book).await;
    }
    while seen.tickers_restored == 0 {
        read_ticker(&mut seen, &mut tickers).await;
    }
    while seen.wallet_restored == 0 {
        if next_event(&mut wallet).await == SubscriptionEvent::Restored {
            seen.wallet_restored += 1;
        }
    }
    public.close().await.unwrap();
    private.close().await.unwrap();
    seen
}

async fn record() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(20)))
        .await
        .unwrap();
    // The simulator's base URL: the relay forwards each client's path to it.
    let upstream = sim
        .endpoint_url(SimEndpoint::Linear)
        .replace(SimEndpoint::Linear.path(), "");
    let relay = Relay::start(
        &upstream,
        RelayOptions::default()
            .redactions(Redactions::new().string(TEST_API_KEY))
            .note("nova-bybit tests/replay.rs: NOVA_RECORD=1 records it again"),
    )
    .await
    .unwrap();
    session(&relay.url(), Some(&sim)).await;
    relay.finish(WAIT).await.save(FIXTURE).unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_drop_of_both_connections_replays() {
    if std::env::var_os("NOVA_RECORD").is_some() {
        record().await;
    }
    // `auth` carries an expiry time and its signature by position; request ids are correlated
    // (the acks carry them back); application pings are timer-driven.
    let matcher = Matcher::volatile()
        .correlate(["req_id"])
        .skip_client_json("op", json!("ping"))
        .normalize_json(|v| {
            if v["op"] == "auth" {
                v["args"][1] = json!(0);
                v["args"][2] = json!("");
            }
        });
    let options = ReplayOptions::default().matcher(matcher).lookahead(2);
    let server = ReplayServer::load(FIXTURE, options).await.unwrap();
    let seen = session(&server.url(), None).await;
    let report = server.finish(WAIT).await;
    report.assert_ok();
    assert_eq!(
        report.recorded, 4,
        "two connections, each dropped and reopened"
    );

    assert!(
        seen.tickers.iter().all(|(symbol, _)| symbol == "BTCUSDT"),
        "{seen:?}"
    );
    assert!(
        seen.tickers
            .iter()
            .all(|(_, last)| last.parse::<f64>().unwrap() > 0.0),
        "{seen:?}"
    );
    assert_eq!(seen.tickers_restored, 1);
    assert_eq!(seen.wallet_restored, 1);
    // The book: a snapshot first, and a fresh one right after the restore.
    assert!(seen.book[0].starts_with("snapshot"), "{seen:?}");
    let restored = seen.book.iter().position(|l| l == "restored").unwrap();
    let after: Vec<&str> = seen.book[restored + 1..]
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(after, ["Gap(Gap", "GapClosed", "snapshot"], "{seen:?}");
    let (bid, ask) = seen.top.clone().unwrap();
    assert!(
        bid.parse::<f64>().unwrap() < ask.parse::<f64>().unwrap(),
        "{seen:?}"
    );
}
