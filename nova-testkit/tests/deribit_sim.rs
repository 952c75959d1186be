//! The Deribit simulator, driven by a bare tokio-tungstenite client.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use nova_testkit::deribit::{
    CreditLimits, DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET,
};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

struct Client {
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
    /// Notifications read while waiting for a response.
    notes: Vec<Value>,
}

impl Client {
    async fn connect(sim: &DeribitSim) -> Self {
        let tcp = TcpStream::connect(sim.addr()).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(sim.url(), tcp)
            .await
            .unwrap();
        Self {
            ws,
            next_id: 1,
            notes: Vec::new(),
        }
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

    /// Sends a request and returns its response (notifications on the way are kept).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let msg = self.next().await;
            if msg["id"] == id {
                return msg;
            }
            self.notes.push(msg);
        }
    }

    async fn auth(&mut self) -> Value {
        self.call(
            "public/auth",
            json!({"grant_type": "client_credentials", "client_id": TEST_CLIENT_ID, "client_secret": TEST_CLIENT_SECRET}),
        )
        .await
    }

    /// The next notification on `channel` (kept or new).
    async fn note_on(&mut self, channel: &str) -> Value {
        if let Some(pos) = self
            .notes
            .iter()
            .position(|n| n["params"]["channel"] == channel)
        {
            return self.notes.remove(pos);
        }
        loop {
            let msg = self.next().await;
            if msg["params"]["channel"] == channel {
                return msg;
            }
            if self.notes.len() < 10_000 {
                self.notes.push(msg);
            }
        }
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn sign(secret: &str, timestamp: u64, nonce: &str, data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{nonce}\n{data}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn envelopes_follow_json_rpc_and_deribit() {
    let sim = DeribitSim::start().await.unwrap();
    let mut c = Client::connect(&sim).await;
    let hello = c
        .call(
            "public/hello",
            json!({"client_name": "t", "client_version": "1"}),
        )
        .await;
    assert_eq!(hello["jsonrpc"], "2.0");
    assert_eq!(hello["result"]["version"], "1.2.26");
    assert_eq!(hello["testnet"], true);
    assert!(hello["usIn"].as_u64().unwrap() <= hello["usOut"].as_u64().unwrap());
    assert!(hello["usDiff"].is_u64());
    assert!(c.call("public/get_time", json!({})).await["result"].is_u64());
    let exc = c
        .call("public/test", json!({"expected_result": "exception"}))
        .await;
    assert_eq!(exc["error"]["code"], 11094);
    let missing = c.call("public/nope", json!({})).await;
    assert_eq!(
        missing["error"],
        json!({"code": -32601, "message": "Method not found"})
    );
    // Requests without an id are rejected.
    c.send(&json!({"jsonrpc": "2.0", "method": "public/test"}))
        .await;
    assert_eq!(c.next().await["error"]["code"], -32600);
    c.ws.send(Message::text("{nope")).await.unwrap();
    assert_eq!(c.next().await["error"]["code"], -32700);
}

#[tokio::test]
async fn client_credentials_guard_private_methods() {
    let sim = DeribitSim::start().await.unwrap();
    let mut c = Client::connect(&sim).await;
    let refused = c
        .call("private/get_positions", json!({"currency": "BTC"}))
        .await;
    assert_eq!(
        refused["error"],
        json!({"code": 13009, "message": "unauthorized"})
    );
    let wrong = c
        .call(
            "public/auth",
            json!({"grant_type": "client_credentials", "client_id": TEST_CLIENT_ID, "client_secret": "nope"}),
        )
        .await;
    assert_eq!(wrong["error"]["code"], 13004);
    assert_eq!(wrong["error"]["message"], "invalid_credentials");
    let ok = c.auth().await;
    let result = &ok["result"];
    assert_eq!(result["token_type"], "bearer");
    assert_eq!(result["expires_in"], 900);
    assert!(result["access_token"].is_string() && result["refresh_token"].is_string());
    let positions = c
        .call("private/get_positions", json!({"currency": "BTC"}))
        .await;
    assert_eq!(positions["result"], json!([]));
    let counters = sim.counters();
    assert_eq!(
        (
            counters.auths,
            counters.auth_failures,
            counters.unauthorized
        ),
        (1, 1, 1)
    );
    assert_eq!(
        sim.open_connections()[0].client_id.as_deref(),
        Some(TEST_CLIENT_ID)
    );
}

#[tokio::test]
async fn client_signature_is_verified() {
    let sim = DeribitSim::start().await.unwrap();
    let mut c = Client::connect(&sim).await;
    let ts = now_ms();
    let auth = |ts: u64, nonce: &str, signature: String| {
        json!({"grant_type": "client_signature", "client_id": TEST_CLIENT_ID, "timestamp": ts,
               "nonce": nonce, "data": "", "signature": signature})
    };
    let bad = c
        .call("public/auth", auth(ts, "n1", sign("wrong", ts, "n1", "")))
        .await;
    assert_eq!(bad["error"]["code"], 13009);
    let stale_ts = ts - 61_000;
    let stale = c
        .call(
            "public/auth",
            auth(stale_ts, "n2", sign(TEST_CLIENT_SECRET, stale_ts, "n2", "")),
        )
        .await;
    assert_eq!(stale["error"]["code"], 13009);
    let good = c
        .call(
            "public/auth",
            auth(ts, "n3", sign(TEST_CLIENT_SECRET, ts, "n3", "")),
        )
        .await;
    assert_eq!(good["result"]["token_type"], "bearer", "{good}");
    // A nonce is single use.
    let replay = c
        .call(
            "public/auth",
            auth(ts, "n3", sign(TEST_CLIENT_SECRET, ts, "n3", "")),
        )
        .await;
    assert_eq!(replay["error"]["code"], 13009);
    // With data, and data omitted (treated as empty).
    let with_data = c
        .call(
            "public/auth",
            json!({"grant_type": "client_signature", "client_id": TEST_CLIENT_ID, "timestamp": ts,
                   "nonce": "n4", "data": "xyz", "signature": sign(TEST_CLIENT_SECRET, ts, "n4", "xyz")}),
        )
        .await;
    assert!(with_data["result"].is_object(), "{with_data}");
    let no_data = c
        .call(
            "public/auth",
            json!({"grant_type": "client_signature", "client_id": TEST_CLIENT_ID, "timestamp": ts,
                   "nonce": "n5", "signature": sign(TEST_CLIENT_SECRET, ts, "n5", "")}),
        )
        .await;
    assert!(no_data["result"].is_object(), "{no_data}");
    assert_eq!(sim.counters().auths, 3);
}

#[tokio::test]
async fn tokens_expire_and_refresh() {
    let options = DeribitSimOptions::default().with_token_lifetime(Duration::from_millis(1200));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let mut c = Client::connect(&sim).await;
    let first = c.auth().await["result"].clone();
    assert_eq!(first["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let expired = c.call("private/get_positions", json!({})).await;
    assert_eq!(expired["error"]["code"], 13009);
    let refreshed = c
        .call(
            "public/auth",
            json!({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}),
        )
        .await;
    let second = refreshed["result"].clone();
    assert_ne!(second["access_token"], first["access_token"]);
    assert!(c.call("private/get_positions", json!({})).await["result"].is_array());
    // With the token in params too.
    let with_token = c
        .call(
            "private/get_positions",
            json!({"access_token": second["access_token"]}),
        )
        .await;
    assert!(with_token["result"].is_array());
    // A refresh token is single use.
    let reused = c
        .call(
            "public/auth",
            json!({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(reused["error"]["code"], 13009);
    let counters = sim.counters();
    assert_eq!((counters.auths, counters.refreshes), (1, 1));
    // Revoked refresh tokens are refused.
    sim.revoke_refresh_tokens();
    let revoked = c
        .call(
            "public/auth",
            json!({"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_eq!(revoked["error"]["code"], 13009);
    // The lifetime can change on the fly.
    sim.set_token_lifetime(Duration::from_secs(5));
    assert_eq!(c.auth().await["result"]["expires_in"], 5);
}

#[tokio::test]
async fn heartbeats_keep_answering_clients_and_drop_silent_ones() {
    let options = DeribitSimOptions::default().with_heartbeat_unit(Duration::from_millis(50));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let mut good = Client::connect(&sim).await;
    let too_short = good
        .call("public/set_heartbeat", json!({"interval": 5}))
        .await;
    assert_eq!(too_short["error"]["code"], 11029);
    let too_long = good
        .call("public/set_heartbeat", json!({"interval": 1e300}))
        .await;
    assert_eq!(too_long["error"]["code"], 11029);
    assert_eq!(
        good.call("public/set_heartbeat", json!({"interval": 10}))
            .await["result"],
        "ok"
    );
    let mut bad = Client::connect(&sim).await;
    bad.call("public/set_heartbeat", json!({"interval": 10}))
        .await;
    // The good client answers five test requests with public/test.
    let mut answered = 0;
    while answered < 5 {
        let msg = good.next().await;
        if msg["method"] == "heartbeat" {
            assert_eq!(msg["params"]["type"], "test_request");
            good.send(&json!({"jsonrpc": "2.0", "id": 100 + answered, "method": "public/test", "params": {}}))
                .await;
            answered += 1;
        }
    }
    // The bad one got a test request, did not answer, and was closed.
    assert_eq!(bad.next().await["method"], "heartbeat");
    let mut closed = false;
    for _ in 0..5 {
        match timeout(WAIT, bad.ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.unwrap().code, 1000.into());
                closed = true;
                break;
            }
            Some(Ok(_)) => {}
            _ => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed);
    assert!(sim.wait_for(WAIT, |c| c.heartbeat_drops == 1).await);
    assert_eq!(sim.open_connections().len(), 1);
    assert!(sim.counters().test_requests >= 6);
    assert_eq!(
        good.call("public/disable_heartbeat", json!({})).await["result"],
        "ok"
    );
}

#[tokio::test]
async fn market_channels_stream_and_books_chain() {
    let sim =
        DeribitSim::start_with(DeribitSimOptions::default().with_tick(Duration::from_millis(20)))
            .await
            .unwrap();
    let mut c = Client::connect(&sim).await;
    let channels = [
        "ticker.BTC-PERPETUAL.100ms",
        "book.BTC-PERPETUAL.100ms",
        "trades.BTC-PERPETUAL.100ms",
        "trades.future.ETH.100ms",
        "deribit_price_index.btc_usd",
        "ticker.NOPE.100ms",
        "user.orders.any.any.raw",
        "book.ETH-PERPETUAL.raw",
    ];
    let ack = c
        .call("public/subscribe", json!({"channels": channels}))
        .await;
    // Unknown, private and (before auth) raw channels are left out.
    assert_eq!(ack["result"], json!(&channels[..5]));
    let snapshot = c.note_on("book.BTC-PERPETUAL.100ms").await["params"]["data"].clone();
    assert_eq!(snapshot["type"], "snapshot");
    assert!(snapshot.get("prev_change_id").is_none());
    assert_eq!(snapshot["bids"][0][0], "new");
    let mut last = snapshot["change_id"].as_u64().unwrap();
    for _ in 0..10 {
        let change = c.note_on("book.BTC-PERPETUAL.100ms").await["params"]["data"].clone();
        assert_eq!(change["type"], "change");
        assert_eq!(change["prev_change_id"].as_u64(), Some(last));
        last = change["change_id"].as_u64().unwrap();
    }
    let mut stamp = 0;
    for _ in 0..5 {
        let ticker = c.note_on("ticker.BTC-PERPETUAL.100ms").await["params"]["data"].clone();
        assert_eq!(ticker["instrument_name"], "BTC-PERPETUAL");
        let ts = ticker["timestamp"].as_u64().unwrap();
        assert!(ts > stamp);
        stamp = ts;
    }
    let trades = c.note_on("trades.future.ETH.100ms").await["params"]["data"].clone();
    assert_eq!(trades[0]["instrument_name"], "ETH-PERPETUAL");
    let index = c.note_on("deribit_price_index.btc_usd").await["params"]["data"].clone();
    assert_eq!(index["index_name"], "btc_usd");

    // The simulator loses a book change: the next change skips a change_id.
    sim.skip_book_change();
    let gap = loop {
        let change = c.note_on("book.BTC-PERPETUAL.100ms").await["params"]["data"].clone();
        if change["prev_change_id"].as_u64() != Some(last) {
            break change;
        }
        last = change["change_id"].as_u64().unwrap();
    };
    assert!(gap["prev_change_id"].as_u64().unwrap() > last);
    assert_eq!(sim.counters().skipped_book_changes, 4);

    let subs = &sim.open_connections()[0];
    assert_eq!(subs.subscriptions.len(), 5);
    assert_eq!(subs.subscribe_count, 5);
    let removed = c
        .call(
            "public/unsubscribe",
            json!({"channels": ["ticker.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms"]}),
        )
        .await;
    assert_eq!(removed["result"], json!(["ticker.BTC-PERPETUAL.100ms"]));
    assert_eq!(
        c.call("public/unsubscribe_all", json!({})).await["result"],
        "ok"
    );
    assert!(sim.open_connections()[0].subscriptions.is_empty());
}

#[tokio::test]
async fn requests_and_private_channels() {
    let sim = DeribitSim::start().await.unwrap();
    let mut c = Client::connect(&sim).await;
    let instruments = c
        .call(
            "public/get_instruments",
            json!({"currency": "BTC", "kind": "future"}),
        )
        .await;
    let names: Vec<&str> = instruments["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instrument_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["BTC-PERPETUAL", "BTC-25DEC26"]);
    let ticker = c
        .call("public/ticker", json!({"instrument_name": "ETH-PERPETUAL"}))
        .await;
    assert!(ticker["result"]["best_ask_price"].as_f64().unwrap() > 0.0);
    assert_eq!(
        c.call("public/ticker", json!({"instrument_name": "X"}))
            .await["error"]["code"],
        13020
    );
    // private/subscribe needs auth.
    let refused = c
        .call(
            "private/subscribe",
            json!({"channels": ["user.orders.any.any.raw"]}),
        )
        .await;
    assert_eq!(refused["error"]["code"], 13009);
    c.auth().await;
    let ack = c
        .call(
            "private/subscribe",
            json!({"channels": ["user.orders.any.any.raw", "user.trades.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.100ms"]}),
        )
        .await;
    assert_eq!(ack["result"].as_array().unwrap().len(), 3);

    let bought = c
        .call(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 100, "type": "market", "label": "t1"}),
        )
        .await;
    let order = &bought["result"]["order"];
    assert_eq!(order["order_state"], "filled");
    assert_eq!(order["direction"], "buy");
    assert_eq!(bought["result"]["trades"][0]["amount"], 100.0);
    let raw = c.note_on("user.orders.any.any.raw").await["params"]["data"].clone();
    assert_eq!(raw["order_id"], order["order_id"]);
    let agg = c.note_on("user.orders.BTC-PERPETUAL.100ms").await["params"]["data"].clone();
    assert_eq!(agg[0]["order_id"], order["order_id"]);
    let trades = c.note_on("user.trades.BTC-PERPETUAL.100ms").await["params"]["data"].clone();
    assert_eq!(trades[0]["order_id"], order["order_id"]);

    // A resting limit order, then its cancel.
    let resting = c
        .call(
            "private/sell",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 1_000_000.0}),
        )
        .await;
    assert_eq!(resting["result"]["order"]["order_state"], "open");
    let id = resting["result"]["order"]["order_id"].clone();
    let cancelled = c.call("private/cancel", json!({"order_id": id})).await;
    assert_eq!(cancelled["result"]["order_state"], "cancelled");
    assert_eq!(
        c.call("private/cancel", json!({"order_id": id})).await["error"]["code"],
        10004
    );
    let bad = c
        .call(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": -1}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602);

    let positions = c
        .call("private/get_positions", json!({"currency": "BTC"}))
        .await;
    let position = &positions["result"][0];
    assert_eq!(position["instrument_name"], "BTC-PERPETUAL");
    assert_eq!(position["size"], 100.0);
    assert_eq!(position["direction"], "buy");
}

#[tokio::test]
async fn credits_run_out_with_10028_and_a_closed_session() {
    // Deribit's bucket (500 per request, 50,000) with a refill too slow to matter here, so the
    // count does not depend on how fast this machine sends.
    let slow = CreditLimits {
        cost: 500,
        max: 50_000,
        refill_per_sec: 10,
    };
    let sim = DeribitSim::start_with(DeribitSimOptions::default().with_credits(Some(slow)))
        .await
        .unwrap();
    let mut c = Client::connect(&sim).await;
    // A burst of 101 requests: the bucket holds 100.
    for id in 0..101 {
        c.send(&json!({"jsonrpc": "2.0", "id": id, "method": "public/test", "params": {}}))
            .await;
    }
    let mut ok = 0;
    let mut limited = None;
    while let Some(msg) = c.next_within(Duration::from_secs(2)).await {
        if msg["error"]["code"] == 10028 {
            limited = Some(msg);
        } else if msg["result"].is_object() {
            ok += 1;
        }
    }
    assert_eq!(ok, 100);
    let limited = limited.expect("a 10028");
    assert_eq!(limited["error"]["message"], "too_many_requests");
    assert!(sim.wait_for(WAIT, |c| c.rate_limited == 1).await);
    assert!(sim.wait_for_open_connections(0, WAIT).await);

    // Order methods draw on the stricter matching-engine bucket, independently.
    let options = DeribitSimOptions::default()
        .with_matching_engine_credits(Some(CreditLimits {
            cost: 1_000,
            max: 3_000,
            refill_per_sec: 1,
        }))
        .with_close_on_rate_limit(false);
    let sim = DeribitSim::start_with(options).await.unwrap();
    let mut c = Client::connect(&sim).await;
    c.auth().await;
    let buy = json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "market"});
    for _ in 0..3 {
        assert!(c.call("private/buy", buy.clone()).await["result"].is_object());
    }
    assert_eq!(c.call("private/buy", buy).await["error"]["code"], 10028);
    assert!(c.call("public/test", json!({})).await["result"].is_object());
}

#[tokio::test]
async fn faults_on_demand() {
    let sim = DeribitSim::start().await.unwrap();
    // Abrupt drop: no close frame.
    let mut a = Client::connect(&sim).await;
    a.call("public/test", json!({})).await;
    sim.drop_all().await;
    match timeout(WAIT, a.ws.next()).await.unwrap() {
        None | Some(Err(_)) => {}
        other => panic!("expected an abrupt end, got {other:?}"),
    }
    // Close with a code.
    let mut b = Client::connect(&sim).await;
    b.call("public/test", json!({})).await;
    sim.close_all(4000, "maintenance").await;
    match timeout(WAIT, b.ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason.as_str(), "maintenance");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Silence, then answers again.
    let mut c = Client::connect(&sim).await;
    c.call("public/test", json!({})).await;
    sim.set_silent(true);
    c.send(&json!({"jsonrpc": "2.0", "id": 77, "method": "public/test"}))
        .await;
    assert!(c.next_within(Duration::from_millis(300)).await.is_none());
    sim.set_silent(false);
    assert_eq!(c.next().await["id"], 77);
    assert_eq!(sim.counters().connections, 3);
    assert_eq!(sim.connections().len(), 3);
    sim.shutdown().await;
}
