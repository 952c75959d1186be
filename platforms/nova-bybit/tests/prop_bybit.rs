//! Property tests of everything that reads what Bybit sends: the envelope ([`peek`],
//! [`peek_book`], [`Ack`]), pushes and their typed data ([`Push`], [`BybitEvent`], topics read
//! off the wire), trade answers ([`TradeResponse`]), the order book ([`OrderBook`], against a
//! model), and the adapter's callbacks run through `nova_core::testing::TestContext`
//! (classification, the auth verdict, subscribe acks, sequencing, rate-limit recognition).
//!
//! Inputs: arbitrary bytes, arbitrary JSON with Bybit's field names, and valid Bybit messages
//! mutated (fields dropped, types swapped, numbers at the limits, huge strings; see
//! `nova_testkit::hostile`); for the book, sequences of snapshots and deltas with good and bad
//! levels, `u` values at the limits and other symbols. Property: no panic, a typed error, the
//! adapter's state unchanged by a message that is not a book push or an answer it awaits, and
//! the book equal to the model after every push.
//!
//! Cases per property: 2,000 by default; `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use nova_bybit::{
    Ack, Applied, BookContinuity, BookMessage, BybitAdapter, BybitConfig, Credentials, Endpoint,
    OrderBook, Peek, Push, peek, peek_book, trade::TradeResponse,
};
use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, Message, MessageHandler, RateLimitHandler, RequestId,
    Subscription, SubscriptionHandler,
};
use nova_testkit::hostile::strategy::{config, messages};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The field names Bybit's parsers look at.
const KEYS: &[&str] = &[
    "topic",
    "type",
    "ts",
    "cs",
    "data",
    "op",
    "req_id",
    "reqId",
    "success",
    "ret_msg",
    "retCode",
    "retMsg",
    "conn_id",
    "connId",
    "args",
    "successTopics",
    "failTopics",
    "s",
    "b",
    "a",
    "u",
    "seq",
    "cts",
    "symbol",
    "price",
    "size",
    "side",
    "orderId",
    "orderLinkId",
    "header",
    "X-Bapi-Limit-Status",
    "creationTime",
    "snapshot",
    "delta",
    "auth",
    "pong",
    "ping",
    "COMMAND_RESP",
    "subscribe",
];

/// Valid messages of every kind Bybit sends.
const VALID: &[&str] = &[
    r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],"a":[["16611.00","0.029"]],"u":18521288,"seq":7961638724},"cts":1672304484976}"#,
    r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30245.40","0"]],"a":[["30248.70","0"]],"u":18521289,"seq":7961638725},"cts":1687940967464}"#,
    r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","tickDirection":"PlusTick","price24hPcnt":"0.017103","lastPrice":"17216.00","markPrice":"17217.33","indexPrice":"17227.36","openInterest":"68744.761","bid1Price":"17215.50","bid1Size":"84.489","ask1Price":"17216.00","ask1Size":"83.020"},"cs":24987956059,"ts":1673272861686}"#,
    r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}"#,
    r#"{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}"#,
    r#"{"topic":"order","id":"5923240c6880ab-c59f-420b-9adb-3639adc9dd90","creationTime":1672364262474,"data":[{"symbol":"ETH-30DEC22-1400-C","orderId":"5cf98598-39a7-459e-97bf-76ca765ee020","side":"Sell","orderType":"Market","price":"72.5","qty":"1","orderStatus":"Filled","category":"option"}]}"#,
    r#"{"topic":"wallet","id":"5923242c464be9-25ca-483d-a743-c60101fc656f","creationTime":1672364262482,"data":[{"accountType":"UNIFIED","totalEquity":"3.31216591","coin":[{"coin":"BTC","equity":"0.03","walletBalance":"0.03"}]}]}"#,
    r#"{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}"#,
    r#"{"req_id":"100001","op":"pong","args":["1672916271846"],"conn_id":"2324d924aa7sus"}"#,
    r#"{"success":true,"ret_msg":"","op":"auth","conn_id":"cejreaspqfh3sjdnldmg-p","req_id":"1"}"#,
    r#"{"retCode":0,"retMsg":"OK","op":"auth","connId":"cejreassvfrsfvb9v1a0-2m"}"#,
    r#"{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f","req_id":"2","op":"subscribe"}"#,
    r#"{"success":false,"ret_msg":"error:handler not found,topic:orderbook.x","conn_id":"c","req_id":"3","op":"subscribe"}"#,
    r#"{"success":true,"conn_id":"c","data":{"failTopics":[],"successTopics":["orderbook.100.BTC-6JAN23-18000-C"]},"type":"COMMAND_RESP"}"#,
    r#"{"reqId":"4","retCode":0,"retMsg":"OK","op":"order.create","data":{"orderId":"1321003749386327552","orderLinkId":"spot-test-postonly"},"header":{"X-Bapi-Limit":"20","X-Bapi-Limit-Status":"19","X-Bapi-Limit-Reset-Timestamp":"1711001595207","Traceid":"x","Timenow":"1711001595207"},"connId":"cnd"}"#,
    r#"{"reqId":"5","retCode":10429,"retMsg":"System has frequency protection","op":"order.create","data":{},"header":{},"connId":"c"}"#,
];

/// A hostile message (`nova_testkit::hostile::strategy::messages`) from the valid ones above.
fn hostile() -> impl Strategy<Value = Message> {
    messages(VALID, KEYS)
}

fn adapter(endpoint: Endpoint) -> BybitAdapter {
    BybitAdapter::new(BybitConfig::new(endpoint).credentials(Credentials::new("key", "secret")))
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Every decoder answers hostile input with a value or a typed error, never a panic.
    #[test]
    fn decoders_never_panic(message in hostile()) {
        let _ = peek(&message);
        let _ = peek_book(&message);
        if let Err(e) = Ack::parse(&message) {
            prop_assert!(!e.to_string().is_empty());
        }
        match Push::parse(&message) {
            Ok(push) => {
                let _ = push.typed_topic();
                if let Err(e) = push.event() {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        match BookMessage::parse(&message) {
            Ok(book) => {
                let mut ours = OrderBook::default();
                if let Err(e) = ours.apply(&book) {
                    prop_assert!(!e.to_string().is_empty());
                    prop_assert!(!ours.is_valid());
                }
                let _ = ours.check_crossed();
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        if let Ok(answer) = message.json::<TradeResponse>() {
            let _ = answer.code();
            let _ = answer.limit_status();
            if let Err(e) = answer.check() {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    /// The adapter's callbacks take hostile input without panicking; a message that is neither
    /// a book push nor the awaited answer changes nothing in the adapter.
    #[test]
    fn adapter_callbacks_never_panic(message in hostile(), which in 0..3usize) {
        let (endpoint, topic) = [
            (Endpoint::Linear, "orderbook.50.BTCUSDT"),
            (Endpoint::Option, "orderbook.25.BTC-6JAN23-18000-C"),
            (Endpoint::Private, "order"),
        ][which];
        let mut adapter = adapter(endpoint);
        let mut t = TestContext::new();
        let auth = t.run(|ctx| adapter.generate_auth_data(&AuthRequest::new(RequestId::Num(1), false), ctx));
        prop_assert!(auth.is_ok());
        let book = Subscription::new("7", topic);
        let request = t.run(|ctx| adapter.subscribe(&book, &Value::Null, RequestId::Num(7), ctx));
        prop_assert!(request.is_ok());
        let _ = t.take_sent();
        let before = format!("{adapter:?}");
        // A book push moves the adapter's shadow book; an option ack (no id) is matched to the
        // oldest request in flight. Nothing else may change the adapter.
        let may_change = BookMessage::parse(&message).is_ok() || peek(&message) == Peek::CommandResp;

        let _ = adapter.message_type(&message);
        if !may_change {
            prop_assert_eq!(&format!("{adapter:?}"), &before, "message_type changed the adapter");
        }
        let _ = adapter.sequence(&book, &message);
        let _ = adapter.is_rate_limit_response(&message);
        if let Err(e) = t.run(|ctx| adapter.handle_subscription_response(&book, &message, ctx)) {
            prop_assert!(!e.to_string().is_empty());
        }
        let before = format!("{adapter:?}");
        match t.run(|ctx| adapter.handle_auth_response(&message, ctx)) {
            AuthOutcome::NotAuthResponse => {
                prop_assert_eq!(&format!("{adapter:?}"), &before, "a message that is not the auth answer changed the adapter");
            }
            AuthOutcome::Rejected(reason) => prop_assert!(!reason.is_empty()),
            _ => {}
        }
    }
}

/// One book push of a generated sequence.
#[derive(Clone, Debug)]
struct Step {
    snapshot: bool,
    symbol: &'static str,
    /// `u` relative to the book's last one (0: the same, 1: the next...), or absolute.
    u: UStep,
    bids: Vec<(usize, usize)>,
    asks: Vec<(usize, usize)>,
}

#[derive(Clone, Copy, Debug)]
enum UStep {
    Next(u64),
    Absolute(u64),
}

/// Prices in increasing order (a level's order key is its index here).
const PRICES: &[&str] = &["0", "99.5", "100", "100.5", "101", "101.5", "102", "1e3"];
/// Sizes: good ones, zero (delete), and bad ones.
const SIZES: &[&str] = &[
    "1", "2.5", "0", "0.000", "-1", "NaN", "inf", "x", "", "1e400",
];

fn step() -> impl Strategy<Value = Step> {
    let levels = || proptest::collection::vec((0..PRICES.len(), 0..SIZES.len()), 0..5);
    (
        proptest::bool::weighted(0.2),
        prop_oneof![9 => Just("BTCUSDT"), 1 => Just("ETHUSDT")],
        prop_oneof![
            8 => Just(UStep::Next(1)),
            1 => (0u64..4).prop_map(UStep::Next),
            1 => prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()].prop_map(UStep::Absolute),
        ],
        levels(),
        levels(),
    )
        .prop_map(|(snapshot, symbol, u, bids, asks)| Step { snapshot, symbol, u, bids, asks })
}

/// One side of the model book: price index → price text.
type Side = BTreeMap<usize, String>;

/// What the book should hold: symbol, last `u`, bids, asks (`None`: waiting for a snapshot).
#[derive(Debug, Default)]
struct Model {
    state: Option<(String, u64, Side, Side)>,
}

fn parse_size(size: &str) -> Option<f64> {
    size.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

impl Model {
    fn last_u(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.1)
    }

    /// Applies a push as Bybit's rules say; `Err` when the book must refuse it.
    fn apply(
        &mut self,
        snapshot: bool,
        symbol: &str,
        u: u64,
        bids: &[(usize, usize)],
        asks: &[(usize, usize)],
    ) -> Result<Applied, ()> {
        let good =
            |levels: &[(usize, usize)]| levels.iter().all(|&(_, s)| parse_size(SIZES[s]).is_some());
        let result = self.try_apply(
            snapshot || u == 1,
            symbol,
            u,
            bids,
            asks,
            good(bids) && good(asks),
        );
        if result.is_err() {
            self.state = None;
        }
        result
    }

    fn try_apply(
        &mut self,
        snapshot: bool,
        symbol: &str,
        u: u64,
        bids: &[(usize, usize)],
        asks: &[(usize, usize)],
        good: bool,
    ) -> Result<Applied, ()> {
        // A delta's zero size deletes the level; a snapshot's is skipped.
        let apply = |side: &mut Side, levels: &[(usize, usize)], delta: bool| {
            for &(p, s) in levels {
                if parse_size(SIZES[s]).is_some_and(|s| s > 0.0) {
                    side.insert(p, PRICES[p].to_owned());
                } else if delta {
                    side.remove(&p);
                }
            }
        };
        if snapshot {
            if !good {
                return Err(());
            }
            let (mut b, mut a) = (BTreeMap::new(), BTreeMap::new());
            apply(&mut b, bids, false);
            apply(&mut a, asks, false);
            self.state = Some((symbol.to_owned(), u, b, a));
            return Ok(Applied::Snapshot);
        }
        let Some((sym, last, b, a)) = self.state.as_mut() else {
            return Err(());
        };
        if sym != symbol {
            return Err(());
        }
        if u <= *last {
            return Ok(Applied::Stale);
        }
        if u != *last + 1 || !good {
            return Err(());
        }
        apply(b, bids, true);
        apply(a, asks, true);
        *last = u;
        Ok(Applied::Delta)
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// The order book follows the model through any sequence of pushes: snapshots replace it,
    /// deltas follow `u` by one, stale ones are ignored, and every error (a break, a bad level,
    /// another symbol, a delta without a snapshot) empties it until the next snapshot.
    #[test]
    fn the_book_follows_the_model(steps in proptest::collection::vec(step(), 1..24)) {
        let mut book = OrderBook::with_continuity(BookContinuity::Consecutive);
        let mut model = Model::default();
        for step in &steps {
            let u = match step.u {
                UStep::Next(d) => model.last_u().saturating_add(d),
                UStep::Absolute(u) => u,
            };
            let levels = |l: &[(usize, usize)]| l.iter().map(|&(p, s)| json!([PRICES[p], SIZES[s]])).collect::<Vec<_>>();
            let push = json!({
                "topic": format!("orderbook.50.{}", step.symbol),
                "type": if step.snapshot { "snapshot" } else { "delta" },
                "ts": 1,
                "data": {"s": step.symbol, "b": levels(&step.bids), "a": levels(&step.asks), "u": u, "seq": 7},
            });
            let parsed = BookMessage::from_json(&push.to_string()).unwrap();
            let got = book.apply(&parsed);
            let want = model.apply(step.snapshot, step.symbol, u, &step.bids, &step.asks);
            prop_assert_eq!(got.as_ref().ok(), want.as_ref().ok(), "{:?} -> {:?}", step, got);
            match &model.state {
                None => prop_assert!(!book.is_valid()),
                Some((_, last, bids, asks)) => {
                    prop_assert_eq!(book.update_id(), Some(*last));
                    prop_assert_eq!(book.depth(), (bids.len(), asks.len()));
                    let best_bid = bids.values().next_back().map(String::as_str);
                    let best_ask = asks.values().next().map(String::as_str);
                    prop_assert_eq!(book.best_bid().map(|l| l.price.as_str()), best_bid);
                    prop_assert_eq!(book.best_ask().map(|l| l.price.as_str()), best_ask);
                }
            }
        }
    }
}
