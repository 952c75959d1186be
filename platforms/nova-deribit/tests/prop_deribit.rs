//! Property tests of everything that reads what Deribit sends: the envelope classification
//! ([`peek`]), the full decoding ([`Incoming`], [`Notification`] and its typed events,
//! [`MarketData`], [`book_position`], [`error_code`], [`response_of`]) and the adapter's callbacks
//! run through `nova_core::testing::TestContext` (classification, the auth verdict, the
//! subscribe ack, heartbeats, sequencing, rate-limit recognition).
//!
//! Inputs: arbitrary bytes (sent as binary messages, so not even UTF-8), arbitrary JSON with
//! Deribit's field names, and valid Deribit messages mutated (fields dropped, types swapped,
//! numbers at the limits, huge strings; see `nova_testkit::hostile`). Property: no panic, a typed
//! error, and the adapter's state unchanged by a message that is not the answer it waits for.
//!
//! Cases per property: 2,000 by default; `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, HeartbeatHandler, Message, MessageHandler, MessageType,
    RateLimitHandler, RequestId, Subscription, SubscriptionHandler,
};
use nova_deribit::{
    ChannelKind, Credentials, DeribitAdapter, DeribitConfig, Incoming, MarketData, Notification,
    book_position, error_code, peek, response_of,
};
use nova_testkit::hostile::strategy::{config, messages};
use proptest::prelude::*;
use serde_json::Value;

/// The field names Deribit's parsers look at.
const KEYS: &[&str] = &[
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "code",
    "message",
    "data",
    "channel",
    "type",
    "subscription",
    "heartbeat",
    "test_request",
    "change_id",
    "prev_change_id",
    "snapshot",
    "change",
    "bids",
    "asks",
    "instrument_name",
    "timestamp",
    "access_token",
    "refresh_token",
    "expires_in",
    "scope",
    "token_type",
    "price",
    "amount",
    "direction",
    "trade_seq",
    "trade_id",
    "index_name",
    "order_id",
    "best_bid_price",
    "stats",
];

/// Valid messages of every kind Deribit sends.
const VALID: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":7,"result":"ok","usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#,
    r#"{"jsonrpc":"2.0","id":"s-1","result":["ticker.BTC-PERPETUAL.100ms"]}"#,
    r#"{"jsonrpc":"2.0","id":8163,"error":{"code":11050,"message":"bad_request","data":{"reason":"x"}}}"#,
    r#"{"jsonrpc":"2.0","id":42,"error":{"code":10028,"message":"too_many_requests"}}"#,
    r#"{"jsonrpc":"2.0","id":1,"result":{"access_token":"a","refresh_token":"r","expires_in":900,"scope":"connection","token_type":"bearer"}}"#,
    r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"timestamp":1623060194301,"stats":{"volume_usd":284061480,"volume":7871.02,"price_change":0.7229,"low":35213.5,"high":36824.5},"state":"open","mark_price":36446.51,"last_price":36457.5,"instrument_name":"BTC-PERPETUAL","index_price":36441.64,"current_funding":0,"best_bid_price":36442.5,"best_bid_amount":5000,"best_ask_price":36443,"best_ask_amount":100}}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"snapshot","timestamp":1554373962454,"instrument_name":"BTC-PERPETUAL","change_id":297217,"bids":[["new",5042.34,30],["new",5041.94,20]],"asks":[["new",5042.64,40]]}}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","timestamp":1554373911330,"prev_change_id":297217,"instrument_name":"BTC-PERPETUAL","change_id":297218,"bids":[["delete",5041.94,0]],"asks":[["change",5042.64,10]]}}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw","data":[{"trade_seq":30289442,"trade_id":"48079269","timestamp":1590484512188,"tick_direction":2,"price":8950,"mark_price":8948.9,"instrument_name":"BTC-PERPETUAL","index_price":8955.88,"direction":"sell","amount":10}]}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.btc_usd","data":{"timestamp":1535098298227,"price":6521.17,"index_name":"btc_usd"}}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user.orders.BTC-PERPETUAL.raw","data":{"time_in_force":"good_til_cancelled","price":10502.52,"order_type":"limit","order_state":"open","order_id":"5","last_update_timestamp":1581507423789,"label":"","instrument_name":"BTC-PERPETUAL","filled_amount":0,"direction":"buy","creation_timestamp":1581507423789,"average_price":0,"amount":200}}}"#,
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user.trades.BTC-PERPETUAL.raw","data":[{"trade_id":"1","order_id":"5","instrument_name":"BTC-PERPETUAL","direction":"buy","price":1.5,"amount":10,"fee":0.1,"fee_currency":"BTC","timestamp":1}]}}"#,
];

/// A hostile message (`nova_testkit::hostile::strategy::messages`) from the valid ones above.
fn hostile() -> impl Strategy<Value = Message> {
    messages(VALID, KEYS)
}

fn every_channel_kind() -> [ChannelKind; 8] {
    [
        ChannelKind::Ticker,
        ChannelKind::Book,
        ChannelKind::Trades,
        ChannelKind::PriceIndex,
        ChannelKind::UserOrders,
        ChannelKind::UserTrades,
        ChannelKind::Other,
        ChannelKind::of("book.BTC-PERPETUAL.raw"),
    ]
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Every decoder answers hostile input with a value or a typed error, never a panic.
    #[test]
    fn decoders_never_panic(message in hostile()) {
        let _ = peek(&message);
        let _ = book_position(&message);
        let _ = error_code(&message);
        for kind in every_channel_kind() {
            if let Some(data) = MarketData::parse(kind, message.as_bytes()) {
                let _ = data.sequence();
            }
        }
        match Incoming::parse(&message) {
            Ok(Incoming::Notification(n)) => {
                if let Err(e) = n.event() {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(Incoming::Response(r)) => {
                if let Err(e) = r.into_result::<Vec<String>>() {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        if let Err(e) = Notification::parse(&message) {
            prop_assert!(!e.to_string().is_empty());
        }
        let _ = response_of::<Value>(&message);
    }

    /// The adapter's callbacks take hostile input without panicking; classifying a message, or
    /// looking at a message that is not the awaited answer, changes nothing in the adapter.
    #[test]
    fn adapter_callbacks_never_panic(message in hostile()) {
        let config = DeribitConfig::default().credentials(Credentials::new("id", "secret"));
        let mut adapter = DeribitAdapter::new(config);
        let mut t = TestContext::new();
        // A connection with its auth request pending (id 1).
        let auth = t.run(|ctx| adapter.generate_auth_data(&AuthRequest::new(RequestId::Num(1), false), ctx));
        prop_assert!(matches!(auth, Ok(Some(_))));
        let _ = t.take_sent();
        let before = format!("{adapter:?}");

        if let MessageType::Invalid(e) = adapter.message_type(&message) {
            prop_assert!(!e.to_string().is_empty());
        }
        prop_assert_eq!(&format!("{adapter:?}"), &before, "message_type changed the adapter");

        let book = Subscription::new("s1", "book.BTC-PERPETUAL.100ms");
        let _ = adapter.sequence(&book, &message);
        let _ = adapter.is_rate_limit_response(&message);

        let ack = t.run(|ctx| adapter.handle_subscription_response(&book, &message, ctx));
        if let Err(e) = ack {
            prop_assert!(!e.to_string().is_empty());
        }
        prop_assert_eq!(&format!("{adapter:?}"), &before, "a subscribe ack changed the adapter");

        let beat = t.run(|ctx| adapter.handle_heartbeat(&message, ctx));
        prop_assert!(beat.is_ok());
        prop_assert!(t.take_sent().len() <= 1);

        let outcome = t.run(|ctx| adapter.handle_auth_response(&message, ctx));
        match outcome {
            AuthOutcome::NotAuthResponse => {
                prop_assert_eq!(&format!("{adapter:?}"), &before, "a message that is not the auth answer changed the adapter");
            }
            AuthOutcome::Authenticated => prop_assert_eq!(adapter.authentications(), 1),
            AuthOutcome::Rejected(reason) => {
                prop_assert!(!reason.is_empty());
                prop_assert_eq!(adapter.authentications(), 0);
                prop_assert!(adapter.token_expires_at().is_none());
            }
            other => prop_assert!(false, "a full grant is never retried: {other:?}"),
        }
    }

    /// A refresh in flight, answered with hostile input: authenticated, refused (then the full
    /// grant is sent again), or not the answer; never a panic.
    #[test]
    fn refresh_answers_never_panic(message in hostile()) {
        let config = DeribitConfig::default().credentials(Credentials::new("id", "secret"));
        let mut adapter = DeribitAdapter::new(config);
        let mut t = TestContext::new();
        let _ = t.run(|ctx| adapter.generate_auth_data(&AuthRequest::new(RequestId::Num(1), false), ctx));
        let granted = Message::text(
            r#"{"jsonrpc":"2.0","id":1,"result":{"access_token":"a","refresh_token":"r","expires_in":900,"scope":"connection","token_type":"bearer"}}"#,
        );
        let first = t.run(|ctx| adapter.handle_auth_response(&granted, ctx));
        prop_assert!(matches!(first, AuthOutcome::Authenticated));
        let _ = t.run(|ctx| adapter.generate_auth_data(&AuthRequest::new(RequestId::Num(2), true), ctx));
        let _ = t.take_sent();
        // The hostile answer carries the refresh's id when it has an id at all.
        let text = message.as_text().map(|t| t.replacen("\"id\":7", "\"id\":2", 1).replacen("\"id\":1,", "\"id\":2,", 1));
        let message = text.map_or(message, Message::text);
        let before = format!("{adapter:?}");
        match t.run(|ctx| adapter.handle_auth_response(&message, ctx)) {
            AuthOutcome::NotAuthResponse => prop_assert_eq!(&format!("{adapter:?}"), &before),
            AuthOutcome::Authenticated => prop_assert_eq!(adapter.refreshes(), 1),
            AuthOutcome::Retrying { .. } => prop_assert_eq!(t.take_sent().len(), 1),
            AuthOutcome::Rejected(reason) => prop_assert!(!reason.is_empty()),
            other => prop_assert!(false, "an outcome this test does not know: {other:?}"),
        }
    }
}

/// One member of a book update's data object, as JSON text.
fn book_members() -> impl Strategy<Value = Vec<(String, String)>> {
    let kind = prop_oneof![
        Just(None),
        Just(Some("\"snapshot\"")),
        Just(Some("\"change\"")),
        Just(Some("\"other\"")),
    ];
    let prev = prop_oneof![
        Just(None),
        Just(Some("null".to_owned())),
        any::<u64>().prop_map(|n| Some(n.to_string())),
    ];
    (kind, any::<u64>(), prev, any::<u64>(), any::<bool>())
        .prop_map(|(kind, change, prev, timestamp, spaced)| {
            let mut members = vec![
                ("timestamp".to_owned(), timestamp.to_string()),
                ("instrument_name".to_owned(), "\"BTC-PERPETUAL\"".to_owned()),
                ("change_id".to_owned(), change.to_string()),
                (
                    "bids".to_owned(),
                    r#"[["new",5041.94,0.1],["delete",5040.0,0.0]]"#.to_owned(),
                ),
                ("asks".to_owned(), "[]".to_owned()),
            ];
            if let Some(kind) = kind {
                members.push(("type".to_owned(), kind.to_owned()));
            }
            if let Some(prev) = prev {
                members.push(("prev_change_id".to_owned(), prev));
            }
            if spaced {
                for (_, value) in &mut members {
                    *value = format!(" {value} ");
                }
            }
            members
        })
        .prop_shuffle()
}

proptest! {
    #![proptest_config(config(2_000))]

    /// `book_position` (a hand scan of Deribit's own layout, else a read that stops early)
    /// agrees with the full parse of the update, whatever the order of the members.
    #[test]
    fn book_position_agrees_with_the_full_parse(members in book_members(), deribit_layout in any::<bool>()) {
        let data = members
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect::<Vec<_>>()
            .join(",");
        let channel = "book.BTC-PERPETUAL.100ms";
        let text = if deribit_layout {
            format!(r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{{{data}}}}}}}"#)
        } else {
            format!(r#"{{"params":{{"data":{{{data}}},"channel":"{channel}"}},"method":"subscription"}}"#)
        };
        let message = Message::text(text);
        let expected = match MarketData::parse(ChannelKind::Book, message.as_bytes()) {
            Some(MarketData::Book(book)) => Some((
                book.change_id,
                if book.is_snapshot() { None } else { book.prev_change_id },
            )),
            _ => None,
        };
        prop_assert_eq!(book_position(&message), expected, "{}", message.as_text().unwrap());
    }
}
