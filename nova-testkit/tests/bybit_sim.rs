//! The Bybit simulator, driven by a bare tokio-tungstenite client.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::explicit_counter_loop,
    missing_docs
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use nova_testkit::bybit::{
    BybitSim, BybitSimOptions, Endpoint, TEST_API_KEY, TEST_API_SECRET, signature,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

struct Client {
    ws: WebSocketStream<TcpStream>,
}

impl Client {
    async fn connect(sim: &BybitSim, path: &str) -> Self {
        let tcp = TcpStream::connect(sim.addr()).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(sim.url(path), tcp)
            .await
            .unwrap();
        Self { ws }
    }

    async fn send(&mut self, value: &Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message; `None` when the connection ended or nothing came in `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match timeout(wait, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                _ => return None,
            }
        }
    }

    async fn next(&mut self) -> Value {
        self.next_within(WAIT).await.expect("a message")
    }

    /// The next message that is not a topic push.
    async fn reply(&mut self) -> Value {
        loop {
            let v = self.next().await;
            if v.get("topic").is_none() {
                return v;
            }
        }
    }

    /// The next push of `topic`.
    async fn push(&mut self, topic: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["topic"] == topic {
                return v;
            }
        }
    }

    async fn auth(&mut self, expires: u64) -> Value {
        let sig = signature(TEST_API_SECRET, expires);
        self.send(&json!({"req_id": "a1", "op": "auth", "args": [TEST_API_KEY, expires, sig]}))
            .await;
        self.reply().await
    }
}

#[tokio::test]
async fn acks_and_pongs_in_each_endpoints_shape() {
    let sim = BybitSim::start().await.unwrap();
    let sub = json!({"req_id": "7", "op": "subscribe", "args": ["tickers.BTCUSDT"]});

    let mut spot = Client::connect(&sim, "/v5/public/spot").await;
    spot.send(&sub).await;
    let ack = spot.reply().await;
    assert_eq!(
        (
            ack["success"].clone(),
            ack["ret_msg"].clone(),
            ack["req_id"].clone(),
            ack["op"].clone()
        ),
        (
            json!(true),
            json!("subscribe"),
            json!("7"),
            json!("subscribe")
        ),
        "{ack}"
    );
    spot.send(&json!({"op": "ping"})).await;
    let pong = spot.reply().await;
    assert_eq!(
        (pong["ret_msg"].clone(), pong["op"].clone()),
        (json!("pong"), json!("ping")),
        "{pong}"
    );

    let mut linear = Client::connect(&sim, "/v5/public/linear").await;
    linear.send(&sub).await;
    let ack = linear.reply().await;
    assert_eq!(
        (ack["ret_msg"].clone(), ack["req_id"].clone()),
        (json!(""), json!("7")),
        "{ack}"
    );
    linear.send(&json!({"op": "ping"})).await;
    let pong = linear.reply().await;
    assert_eq!(
        (pong["ret_msg"].clone(), pong["req_id"].clone()),
        (json!("pong"), json!("")),
        "{pong}"
    );

    let mut option = Client::connect(&sim, "/v5/public/option").await;
    option.send(&json!({"req_id": "9", "op": "subscribe", "args": ["orderbook.25.BTC-26DEC26-60000-C", "nope.X"]})).await;
    let ack = option.reply().await;
    assert_eq!(ack["type"], "COMMAND_RESP", "{ack}");
    assert_eq!(ack["success"], false);
    assert_eq!(ack["data"]["failTopics"].as_array().unwrap().len(), 2);
    assert!(ack.get("req_id").is_none());
    option
        .send(&json!({"op": "subscribe", "args": ["publicTrade.BTC"]}))
        .await;
    let ack = option.reply().await;
    assert_eq!(
        ack["data"]["successTopics"],
        json!(["publicTrade.BTC"]),
        "{ack}"
    );
    option.send(&json!({"op": "ping"})).await;
    let pong = option.reply().await;
    assert_eq!(pong["op"], "pong", "{pong}");
    assert!(pong["args"][0].is_string());

    let mut private = Client::connect(&sim, "/v5/private").await;
    private
        .send(&json!({"op": "subscribe", "args": ["order"]}))
        .await;
    let refused = private.reply().await;
    assert_eq!(
        refused["success"], false,
        "private topics need auth first: {refused}"
    );
    let auth = private.auth(now_ms() + 10_000).await;
    assert_eq!(
        (
            auth["success"].clone(),
            auth["op"].clone(),
            auth["req_id"].clone()
        ),
        (json!(true), json!("auth"), json!("a1")),
        "{auth}"
    );
    private
        .send(&json!({"op": "subscribe", "args": ["order", "wallet"]}))
        .await;
    let ack = private.reply().await;
    assert_eq!(
        (ack["success"].clone(), ack["op"].clone()),
        (json!(true), json!("subscribe")),
        "{ack}"
    );
    private.send(&json!({"req_id": "p", "op": "ping"})).await;
    let pong = private.reply().await;
    assert_eq!(
        (pong["op"].clone(), pong["req_id"].clone()),
        (json!("pong"), json!("p")),
        "{pong}"
    );

    let mut trade = Client::connect(&sim, "/v5/trade").await;
    trade.send(&json!({"op": "ping"})).await;
    let pong = trade.reply().await;
    assert_eq!(
        (pong["retCode"].clone(), pong["op"].clone()),
        (json!(0), json!("pong")),
        "{pong}"
    );

    let c = sim.counters();
    assert_eq!(c.pings, 5, "{c:?}");
    assert_eq!(c.auths, 1);
    assert_eq!(sim.subscribes_for("tickers.BTCUSDT"), 2);
    assert_eq!(sim.subscribes_for("order"), 1);
}

#[tokio::test]
async fn subscribe_limits_and_bad_topics() {
    let sim = BybitSim::start().await.unwrap();
    let mut spot = Client::connect(&sim, "/v5/public/spot").await;
    let eleven: Vec<String> = (1..=11)
        .map(|i| {
            format!(
                "kline.{}.BTCUSDT",
                [
                    "1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D"
                ][i - 1]
            )
        })
        .collect();
    spot.send(&json!({"req_id": "big", "op": "subscribe", "args": eleven}))
        .await;
    let ack = spot.reply().await;
    assert_eq!(ack["success"], false, "{ack}");
    assert!(
        ack["ret_msg"].as_str().unwrap().contains("args size"),
        "{ack}"
    );
    spot.send(&json!({"req_id": "ten", "op": "subscribe", "args": eleven[..10]}))
        .await;
    assert_eq!(spot.reply().await["success"], true);
    spot.send(&json!({"req_id": "again", "op": "subscribe", "args": [eleven[0]]}))
        .await;
    let again = spot.reply().await;
    assert_eq!(again["success"], false, "already subscribed: {again}");

    let mut linear = Client::connect(&sim, "/v5/public/linear").await;
    linear
        .send(&json!({"req_id": "x", "op": "subscribe", "args": ["tickers.BTCUSDT", "dcp.future"]}))
        .await;
    let ack = linear.reply().await;
    assert_eq!(
        ack["ret_msg"], "error:handler not found,topic:dcp.future",
        "{ack}"
    );
    linear
        .send(&json!({"req_id": "u", "op": "unsubscribe", "args": ["tickers.BTCUSDT"]}))
        .await;
    assert_eq!(linear.reply().await["success"], false, "not subscribed");

    let mut private = Client::connect(&sim, "/v5/private").await;
    private.auth(now_ms() + 10_000).await;
    private
        .send(&json!({"op": "subscribe", "args": ["order", "order.linear"]}))
        .await;
    assert_eq!(
        private.reply().await["success"],
        false,
        "all-in-one with categorised"
    );
    assert_eq!(sim.counters().subscribe_failures, 4);
}

#[tokio::test]
async fn books_snapshot_then_deltas_with_u_and_faults() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(20)))
        .await
        .unwrap();
    let mut c = Client::connect(&sim, "/v5/public/linear").await;
    c.send(&json!({"req_id": "1", "op": "subscribe", "args": ["orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT"]})).await;
    assert_eq!(c.reply().await["success"], true);
    let snap = c.push("orderbook.50.BTCUSDT").await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["s"], "BTCUSDT");
    assert_eq!(snap["data"]["b"].as_array().unwrap().len(), 20);
    let mut u = snap["data"]["u"].as_u64().unwrap();
    let mut seq = snap["data"]["seq"].as_u64().unwrap();
    for _ in 0..5 {
        let d = c.push("orderbook.50.BTCUSDT").await;
        assert_eq!(d["type"], "delta");
        assert_eq!(d["data"]["u"].as_u64().unwrap(), u + 1, "{d}");
        assert!(d["data"]["seq"].as_u64().unwrap() > seq);
        u += 1;
        seq = d["data"]["seq"].as_u64().unwrap();
    }
    let top = c.push("orderbook.1.BTCUSDT").await;
    assert_eq!(top["type"], "snapshot", "level 1 is snapshot-only");
    assert_eq!(top["data"]["b"].as_array().unwrap().len(), 1);

    // A lost update: u jumps by two.
    let mut last = c.push("orderbook.50.BTCUSDT").await["data"]["u"]
        .as_u64()
        .unwrap();
    sim.skip_book_update();
    loop {
        let next = c.push("orderbook.50.BTCUSDT").await["data"]["u"]
            .as_u64()
            .unwrap();
        if next != last + 1 {
            assert_eq!(next, last + 2);
            break;
        }
        last = next;
    }
    assert_eq!(sim.counters().skipped_book_updates, 1);

    // A crossed update: applied to a local book built from a fresh snapshot, a bid ends up
    // above the best ask. Until then, the book built from the deltas is never crossed.
    c.send(&json!({"req_id": "2", "op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]}))
        .await;
    c.send(&json!({"req_id": "3", "op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}))
        .await;
    let snap = loop {
        let d = c.push("orderbook.50.BTCUSDT").await;
        if d["type"] == "snapshot" {
            break d;
        }
    };
    let mut book = LocalBook::default();
    book.apply(&snap["data"]);
    for _ in 0..5 {
        book.apply(&c.push("orderbook.50.BTCUSDT").await["data"]);
        assert!(!book.crossed());
    }
    sim.send_crossed_book();
    let mut deltas = 0;
    while !book.crossed() {
        book.apply(&c.push("orderbook.50.BTCUSDT").await["data"]);
        deltas += 1;
        assert!(deltas < 100, "never crossed");
    }
    assert_eq!(sim.counters().crossed_books, 1);

    // A restart: a snapshot with u == 1, then deltas from 2.
    sim.restart_books();
    let restarted = loop {
        let d = c.push("orderbook.50.BTCUSDT").await;
        if d["type"] == "snapshot" {
            break d;
        }
    };
    assert_eq!(restarted["data"]["u"], 1, "{restarted}");
    let after = c.push("orderbook.50.BTCUSDT").await;
    assert_eq!(
        (after["type"].clone(), after["data"]["u"].clone()),
        (json!("delta"), json!(2))
    );
}

#[tokio::test]
async fn tickers_trades_klines_and_liquidations() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(10)))
        .await
        .unwrap();
    let mut c = Client::connect(&sim, "/v5/public/linear").await;
    let topics = [
        "tickers.BTCUSDT",
        "publicTrade.BTCUSDT",
        "kline.5.BTCUSDT",
        "allLiquidation.BTCUSDT",
    ];
    c.send(&json!({"req_id": "1", "op": "subscribe", "args": topics}))
        .await;
    assert_eq!(c.reply().await["success"], true);
    let first = c.push("tickers.BTCUSDT").await;
    assert_eq!(first["type"], "snapshot");
    let second = c.push("tickers.BTCUSDT").await;
    assert_eq!(second["type"], "delta");
    assert!(second["ts"].as_u64() > first["ts"].as_u64());
    assert!(second["cs"].as_u64() > first["cs"].as_u64());
    assert!(second["data"]["lastPrice"].is_string());
    let trade = c.push("publicTrade.BTCUSDT").await;
    assert_eq!(trade["data"][0]["s"], "BTCUSDT");
    let kline = c.push("kline.5.BTCUSDT").await;
    assert_eq!(kline["data"][0]["interval"], "5");
    let liq = c.push("allLiquidation.BTCUSDT").await;
    assert_eq!(liq["data"][0]["s"], "BTCUSDT");

    let mut spot = Client::connect(&sim, "/v5/public/spot").await;
    spot.send(&json!({"op": "subscribe", "args": ["tickers.ETHUSDT"]}))
        .await;
    spot.reply().await;
    for _ in 0..2 {
        assert_eq!(
            spot.push("tickers.ETHUSDT").await["type"],
            "snapshot",
            "spot tickers are snapshots"
        );
    }
}

#[tokio::test]
async fn auth_checks_signature_and_expiry_against_the_servers_clock() {
    // The server's clock is 5 s ahead: an expiry 1 s out is already past for it.
    let sim = BybitSim::start_with(BybitSimOptions::default().with_clock_skew_ms(5_000))
        .await
        .unwrap();
    let mut c = Client::connect(&sim, "/v5/private").await;
    let late = c.auth(now_ms() + 1_000).await;
    assert_eq!(
        (late["success"].clone(), late["ret_msg"].clone()),
        (json!(false), json!("Params Error")),
        "{late}"
    );
    c.send(&json!({"op": "auth", "args": [TEST_API_KEY, (now_ms() + 60_000).to_string(), "00"]}))
        .await;
    assert_eq!(c.reply().await["success"], false, "bad signature");
    let expires = now_ms() + 60_000;
    let sig = signature(TEST_API_SECRET, expires);
    c.send(&json!({"op": "auth", "args": [TEST_API_KEY, expires.to_string(), sig]}))
        .await;
    assert_eq!(
        c.reply().await["success"],
        true,
        "a string expires is accepted"
    );
    let counters = sim.counters();
    assert_eq!((counters.auths, counters.auth_failures), (1, 2));
    let ops = &sim.connections()[0].ops;
    assert_eq!(ops, &["auth-failed", "auth-failed", "auth"]);
}

#[derive(Default)]
struct LocalBook {
    bids: std::collections::BTreeMap<i64, String>,
    asks: std::collections::BTreeMap<i64, String>,
}

impl LocalBook {
    fn apply(&mut self, data: &Value) {
        for (side, key) in [(&mut self.bids, "b"), (&mut self.asks, "a")] {
            for level in data[key].as_array().unwrap() {
                let price =
                    (level[0].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
                let size = level[1].as_str().unwrap();
                if size.parse::<f64>().unwrap() == 0.0 {
                    side.remove(&price);
                } else {
                    side.insert(price, size.to_owned());
                }
            }
        }
    }

    fn crossed(&self) -> bool {
        match (self.bids.keys().next_back(), self.asks.keys().next()) {
            (Some(bid), Some(ask)) => bid >= ask,
            _ => false,
        }
    }
}

fn order(req_id: &str, op: &str, arg: Value) -> Value {
    json!({"reqId": req_id, "header": {"X-BAPI-TIMESTAMP": now_ms().to_string(), "X-BAPI-RECV-WINDOW": "8000"},
        "op": op, "args": [arg]})
}

#[tokio::test]
async fn order_entry_with_private_pushes() {
    let sim = BybitSim::start().await.unwrap();
    let mut private = Client::connect(&sim, "/v5/private").await;
    private.auth(now_ms() + 10_000).await;
    private.send(&json!({"op": "subscribe", "args": ["order", "execution.linear", "position", "wallet"]})).await;
    assert_eq!(private.reply().await["success"], true);

    let mut trade = Client::connect(&sim, "/v5/trade").await;
    trade.send(&order("r0", "order.create", json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.1"}))).await;
    assert_eq!(trade.reply().await["retCode"], 10005, "not authenticated");
    let expires = now_ms() + 10_000;
    trade.send(&json!({"op": "auth", "args": [TEST_API_KEY, expires, signature(TEST_API_SECRET, expires)]})).await;
    let auth = trade.reply().await;
    assert_eq!(
        (auth["retCode"].clone(), auth["op"].clone()),
        (json!(0), json!("auth")),
        "{auth}"
    );
    trade.send(&json!({"op": "auth", "args": [TEST_API_KEY, expires, signature(TEST_API_SECRET, expires)]})).await;
    assert_eq!(trade.reply().await["retCode"], 20001, "repeat auth");

    let limit = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.2", "price": "2800", "timeInForce": "PostOnly", "orderLinkId": "link-1"});
    trade
        .send(&order("r1", "order.create", limit.clone()))
        .await;
    let created = trade.reply().await;
    assert_eq!(
        (
            created["reqId"].clone(),
            created["retCode"].clone(),
            created["op"].clone()
        ),
        (json!("r1"), json!(0), json!("order.create")),
        "{created}"
    );
    assert_eq!(created["data"]["orderLinkId"], "link-1");
    assert!(created["header"]["X-Bapi-Limit-Status"].is_string());
    assert!(created["connId"].is_string());
    let pushed = private.push("order").await;
    assert_eq!(pushed["data"][0]["orderStatus"], "New", "{pushed}");

    trade
        .send(&order(
            "r1",
            "order.cancel",
            json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "link-1"}),
        ))
        .await;
    assert_eq!(trade.reply().await["retCode"], 20006, "reqId reused");
    trade.send(&order("r2", "order.create", limit)).await;
    assert_eq!(trade.reply().await["retCode"], 110072, "orderLinkId reused");
    trade.send(&order("r3", "order.amend", json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "link-1", "price": "2810"}))).await;
    assert_eq!(trade.reply().await["retCode"], 0);
    assert_eq!(private.push("order").await["data"][0]["price"], "2810");
    trade
        .send(&order(
            "r4",
            "order.cancel",
            json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "link-1"}),
        ))
        .await;
    assert_eq!(trade.reply().await["retCode"], 0);
    assert_eq!(
        private.push("order").await["data"][0]["orderStatus"],
        "Cancelled"
    );
    trade
        .send(&order(
            "r5",
            "order.cancel",
            json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "link-1"}),
        ))
        .await;
    assert_eq!(trade.reply().await["retCode"], 110001, "no longer open");

    trade.send(&order("r6", "order.create", json!({"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "qty": "0.1"}))).await;
    assert_eq!(trade.reply().await["retCode"], 0);
    assert_eq!(
        private.push("order").await["data"][0]["orderStatus"],
        "Filled"
    );
    assert_eq!(
        private.push("execution.linear").await["data"][0]["execQty"],
        "0.1"
    );
    assert_eq!(private.push("position").await["data"][0]["side"], "Sell");
    assert!(private.push("wallet").await["data"][0]["coin"].is_array());

    let mut stale = order("r7", "order.cancel", json!({}));
    stale["header"]["X-BAPI-TIMESTAMP"] = json!((now_ms() - 60_000).to_string());
    trade.send(&stale).await;
    assert_eq!(
        trade.reply().await["retCode"],
        10002,
        "outside the recv window"
    );
    assert_eq!(sim.counters().orders, 4);
}

#[tokio::test]
async fn order_entry_rate_limit_answers_20003() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_order_limit(3, 0.001))
        .await
        .unwrap();
    let mut trade = Client::connect(&sim, "/v5/trade").await;
    let expires = now_ms() + 10_000;
    trade.send(&json!({"op": "auth", "args": [TEST_API_KEY, expires, signature(TEST_API_SECRET, expires)]})).await;
    trade.reply().await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let arg = json!({"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "100"});
        trade
            .send(&order(&format!("q{i}"), "order.create", arg))
            .await;
        codes.push(trade.reply().await["retCode"].as_i64().unwrap());
    }
    assert_eq!(codes, [0, 0, 0, 20003, 20003]);
    assert_eq!(sim.counters().rate_limited, 2);
}

#[tokio::test]
async fn idle_connections_are_closed_and_pings_keep_them() {
    let options = BybitSimOptions::default().with_idle_timeout(Duration::from_millis(300));
    let sim = BybitSim::start_with(options).await.unwrap();
    let mut idle = Client::connect(&sim, "/v5/public/linear").await;
    let mut pinging = Client::connect(&sim, "/v5/public/linear").await;
    for _ in 0..8 {
        pinging.send(&json!({"op": "ping"})).await;
        pinging.reply().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle.next_within(WAIT).await.is_none(), "closed");
    assert_eq!(sim.counters().idle_disconnects, 1);
    assert_eq!(sim.open_connections().len(), 1);
}

#[tokio::test]
async fn max_active_time_closes_and_bad_values_are_refused() {
    let options = BybitSimOptions::default()
        .with_max_active_range(Duration::from_millis(100), Duration::from_secs(600));
    let sim = BybitSim::start_with(options).await.unwrap();
    let mut c = Client::connect(&sim, "/v5/private?max_active_time=200ms").await;
    assert!(c.next_within(WAIT).await.is_none());
    assert_eq!(sim.counters().max_active_disconnects, 1);
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    let refused =
        tokio_tungstenite::client_async(sim.url("/v5/private?max_active_time=20m"), tcp).await;
    assert!(refused.is_err());
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    assert!(
        tokio_tungstenite::client_async(sim.url("/v5/public/spread"), tcp)
            .await
            .is_err()
    );
    assert_eq!(sim.counters().handshakes_refused, 2);
}

#[tokio::test]
async fn faults_reset_close_refuse_and_silence() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(10)))
        .await
        .unwrap();
    let mut a = Client::connect(&sim, "/v5/public/linear").await;
    sim.drop_all().await;
    match timeout(WAIT, a.ws.next()).await.unwrap() {
        Some(Err(e)) => assert!(e.to_string().to_lowercase().contains("reset"), "{e}"),
        other => panic!("expected a reset, got {other:?}"),
    }

    let mut b = Client::connect(&sim, "/v5/public/linear").await;
    sim.close_all(4000, "bye").await;
    match timeout(WAIT, b.ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected a close frame, got {other:?}"),
    }

    sim.refuse_handshakes(1);
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    assert!(
        tokio_tungstenite::client_async(sim.url(Endpoint::Linear.path()), tcp)
            .await
            .is_err()
    );
    let mut c = Client::connect(&sim, "/v5/public/linear").await;
    c.send(&json!({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
        .await;
    c.reply().await;
    c.push("tickers.BTCUSDT").await;
    sim.set_silent(true);
    // Drain what was in flight, then nothing.
    while c.next_within(Duration::from_millis(200)).await.is_some() {}
    c.send(&json!({"op": "ping"})).await;
    assert!(c.next_within(Duration::from_millis(300)).await.is_none());
    sim.set_silent(false);
    assert!(c.next_within(WAIT).await.is_some(), "pushes resume");
    assert_eq!(sim.counters().connections, 3);
}
