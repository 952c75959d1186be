//! A recorded Deribit session replayed against the real client: authentication, a book and a
//! ticker subscription with data, heartbeats answered, then the server drops the connection
//! and the client reconnects, authenticates again and restores both subscriptions.
//!
//! The fixture (`tests/fixtures/subscribe_drop_restore.jsonl`) was recorded through
//! `nova_testkit::replay::Relay` in front of the Deribit simulator. To record it again (after a
//! change to what the client sends, say): `NOVA_RECORD=1 cargo test -p nova-deribit --test
//! replay`, then review and commit the file. A user turns a production incident into a test the
//! same way, with the relay in front of `wss://www.deribit.com/ws/api/v2`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use futures_util::StreamExt;
use nova_core::{SubscriptionEvent, SubscriptionStream};
use nova_deribit::{
    Channel, Credentials, DeribitAdapter, DeribitClient, DeribitConfig, DeribitEvent, Interval,
    Notification, book_position,
};
use nova_testkit::deribit::{DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET};
use nova_testkit::replay::{
    Direction, Matcher, RecordedFrame, Recording, Redactions, Relay, RelayOptions, ReplayOptions,
    ReplayServer,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/subscribe_drop_restore.jsonl"
);

/// What the application saw.
#[derive(Debug, Default)]
struct Seen {
    /// `(change_id, prev_change_id)` of every book message, in order.
    book: Vec<(u64, Option<u64>)>,
    /// Mark prices of the tickers, in order.
    marks: Vec<f64>,
    /// Instruments of the tickers.
    instruments: Vec<String>,
    book_restored: u32,
    ticker_restored: u32,
}

fn connect(url: String) -> DeribitClient {
    let config =
        DeribitConfig::default().credentials(Credentials::new(TEST_CLIENT_ID, TEST_CLIENT_SECRET));
    let client_config = DeribitClient::config_builder(url, &config)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .unwrap();
    let (client, messages) =
        DeribitClient::connect_with(client_config, DeribitAdapter::new(config));
    tokio::spawn(async move {
        let mut messages = messages;
        while messages.recv().await.is_some() {}
    });
    client
}

async fn next(stream: &mut SubscriptionStream) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an event in time")
        .expect("the stream is open")
}

fn see_book(seen: &mut Seen, event: &SubscriptionEvent) {
    match event {
        SubscriptionEvent::Message(m) => seen.book.push(book_position(m).expect("a book message")),
        SubscriptionEvent::Restored => seen.book_restored += 1,
        _ => {}
    }
}

fn see_ticker(seen: &mut Seen, event: &SubscriptionEvent) {
    match event {
        SubscriptionEvent::Message(m) => match Notification::parse(m).unwrap().event() {
            Ok(DeribitEvent::Ticker(t)) => {
                seen.marks.push(t.mark_price.unwrap());
                seen.instruments.push(t.instrument_name.clone());
            }
            other => panic!("not a ticker: {other:?}"),
        },
        SubscriptionEvent::Restored => seen.ticker_restored += 1,
        _ => {}
    }
}

/// The application: subscribe, read, (the drop happens), read the restore and after it.
/// `sim` is there when recording: the test drops the connection itself then.
async fn session(url: String, sim: Option<&DeribitSim>) -> Seen {
    let deribit = connect(url);
    let mut seen = Seen::default();
    let mut book = deribit
        .subscribe(Channel::book("BTC-PERPETUAL", Interval::Ms100))
        .await
        .unwrap();
    while seen.book.len() < 3 {
        see_book(&mut seen, &next(&mut book).await);
    }
    let mut ticker = deribit
        .subscribe(Channel::ticker("BTC-PERPETUAL", Interval::Ms100))
        .await
        .unwrap();
    while seen.marks.len() < 2 {
        see_ticker(&mut seen, &next(&mut ticker).await);
    }
    if let Some(sim) = sim {
        sim.drop_all().await;
    }
    while seen.book_restored == 0 {
        see_book(&mut seen, &next(&mut book).await);
    }
    let restored_at = seen.book.len();
    while seen.book.len() < restored_at + 2 {
        see_book(&mut seen, &next(&mut book).await);
    }
    while seen.ticker_restored == 0 {
        see_ticker(&mut seen, &next(&mut ticker).await);
    }
    let marks = seen.marks.len();
    while seen.marks.len() < marks + 1 {
        see_ticker(&mut seen, &next(&mut ticker).await);
    }
    deribit.close().await.unwrap();
    seen
}

async fn record() {
    let options = DeribitSimOptions::default()
        .with_tick(Duration::from_millis(20))
        .with_heartbeat_unit(Duration::from_millis(5));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let redactions = Redactions::new()
        .fields(["client_secret", "access_token", "refresh_token"])
        .string(TEST_CLIENT_SECRET);
    let relay = Relay::start(
        &sim.url(),
        RelayOptions::default()
            .redactions(redactions)
            .note("nova-deribit tests/replay.rs: NOVA_RECORD=1 records it again"),
    )
    .await
    .unwrap();
    session(relay.url(), Some(&sim)).await;
    let recording = relay.finish(WAIT).await;
    recording.save(FIXTURE).unwrap();
    sim.shutdown().await;
}

/// The book messages of the fixture, in order, as `book_position` reads them.
fn recorded_book(recording: &Recording) -> Vec<(u64, Option<u64>)> {
    recording
        .connections()
        .iter()
        .flat_map(|c| c.frames.iter())
        .filter_map(|(_, f)| match (&f.dir, &f.frame) {
            (Direction::ServerToClient, RecordedFrame::Text(t)) => {
                let v: Value = serde_json::from_str(t).ok()?;
                let channel = v.pointer("/params/channel")?.as_str()?;
                channel.starts_with("book.").then(|| {
                    let data = &v["params"]["data"];
                    let id = data["change_id"].as_u64().unwrap();
                    (id, data["prev_change_id"].as_u64())
                })
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_recorded_drop_and_restore_replays() {
    if std::env::var_os("NOVA_RECORD").is_some() {
        record().await;
    }
    let recording = Recording::load(FIXTURE).unwrap();
    assert_eq!(recording.connections().len(), 2, "a drop and a reconnect");
    let expected_book = recorded_book(&recording);

    // Request ids are correlated, the signature grant's nonce and timestamp ignored; answers
    // to heartbeats may cross other requests.
    let options = ReplayOptions::default()
        .matcher(Matcher::volatile())
        .lookahead(4);
    let server = ReplayServer::load(FIXTURE, options).await.unwrap();
    let seen = session(server.url(), None).await;
    let report = server.finish(WAIT).await;
    report.assert_ok();

    // What the application received is what was recorded, typed.
    assert_eq!(seen.book_restored, 1);
    assert_eq!(seen.ticker_restored, 1);
    assert!(seen.instruments.iter().all(|i| i == "BTC-PERPETUAL"));
    assert!(seen.marks.iter().all(|m| *m > 0.0), "{:?}", seen.marks);
    assert_eq!(seen.book[..], expected_book[..seen.book.len()]);
    // A snapshot opens each connection's book, and the changes chain without a break.
    assert_eq!(seen.book[0].1, None, "{seen:?}");
    let restore = seen
        .book
        .iter()
        .rposition(|(_, prev)| prev.is_none())
        .unwrap();
    assert!(
        restore >= 3,
        "the fresh snapshot after the reconnect: {seen:?}"
    );
    for window in seen.book[..restore]
        .windows(2)
        .chain(seen.book[restore..].windows(2))
    {
        assert_eq!(window[1].1, Some(window[0].0), "{seen:?}");
    }
}

/// A client that no longer does what was recorded (it subscribes to the ticker first) fails
/// the replay with the line and the difference, not with a hang or a panic in the server.
#[tokio::test]
async fn a_changed_client_is_reported_at_the_recorded_line() {
    let recording = Recording::load(FIXTURE).unwrap();
    let subscribe_line = recording.connections()[0]
        .frames
        .iter()
        .find(|(_, f)| matches!(&f.frame, RecordedFrame::Text(t) if t.contains("public/subscribe")))
        .map(|(line, _)| *line)
        .unwrap();
    // Strict order: with a lookahead the ticker request would be taken as an early one.
    let options = ReplayOptions::default().matcher(Matcher::volatile());
    let server = ReplayServer::start(recording, options).await.unwrap();
    let deribit = connect(server.url());
    let changed = deribit.subscribe(Channel::ticker("BTC-PERPETUAL", Interval::Ms100));
    let _ = tokio::time::timeout(Duration::from_secs(2), changed).await;
    deribit.client().close(1000, "done").await.ok();
    let report = server.finish(Duration::from_millis(500)).await;
    assert!(!report.is_ok());
    let Some(nova_testkit::replay::Issue::Mismatch {
        conn: 0,
        line,
        detail,
        ..
    }) = report.issues.first()
    else {
        panic!("{report}")
    };
    assert_eq!(*line, subscribe_line, "{report}");
    assert!(detail.contains("/params/channels/0"), "{report}");
    assert!(detail.contains("book.BTC-PERPETUAL.100ms"), "{report}");
}
