//! The simulated market: instruments, prices that walk, order books with `change_id`s,
//! trades, index prices, and the accounts' orders and positions.
//!
//! One task ([`run`]) advances every instrument each tick and broadcasts [`Event`]s; the
//! connection tasks pick out the events their subscriptions select. Book `change_id`s are
//! per instrument and shared by every connection, as on Deribit: a subscriber gets a snapshot
//! at the current `change_id` and then every change after it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::auth::Rng;
use super::{Shared, bump, lock};

/// A tradable instrument.
#[derive(Debug)]
pub(super) struct Instrument {
    pub(super) name: &'static str,
    pub(super) kind: &'static str,
    pub(super) currency: &'static str,
    pub(super) tick_size: f64,
    pub(super) contract_size: f64,
    pub(super) min_trade_amount: f64,
    /// The starting price, in ticks.
    start_ticks: i64,
    pub(super) expiration_timestamp: u64,
    pub(super) index: &'static str,
}

/// Far-future expiry Deribit uses for perpetuals.
const PERPETUAL_EXPIRY: u64 = 32_503_708_800_000;

/// The instruments the simulator lists.
pub(super) const INSTRUMENTS: [Instrument; 4] = [
    Instrument {
        name: "BTC-PERPETUAL",
        kind: "future",
        currency: "BTC",
        tick_size: 0.5,
        contract_size: 10.0,
        min_trade_amount: 10.0,
        start_ticks: 120_000,
        expiration_timestamp: PERPETUAL_EXPIRY,
        index: "btc_usd",
    },
    Instrument {
        name: "ETH-PERPETUAL",
        kind: "future",
        currency: "ETH",
        tick_size: 0.05,
        contract_size: 1.0,
        min_trade_amount: 1.0,
        start_ticks: 60_000,
        expiration_timestamp: PERPETUAL_EXPIRY,
        index: "eth_usd",
    },
    Instrument {
        name: "BTC-25DEC26",
        kind: "future",
        currency: "BTC",
        tick_size: 2.5,
        contract_size: 10.0,
        min_trade_amount: 10.0,
        start_ticks: 24_400,
        expiration_timestamp: 1_798_185_600_000,
        index: "btc_usd",
    },
    Instrument {
        name: "BTC-25DEC26-60000-C",
        kind: "option",
        currency: "BTC",
        tick_size: 0.0005,
        contract_size: 1.0,
        min_trade_amount: 0.1,
        start_ticks: 100,
        expiration_timestamp: 1_798_185_600_000,
        index: "btc_usd",
    },
];

/// The instrument called `name`.
pub(super) fn instrument(name: &str) -> Option<&'static Instrument> {
    INSTRUMENTS.iter().find(|i| i.name == name)
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch.
pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Something that happened, for the connections to forward to their subscribers. `data` is the
/// notification's `data`, already serialized.
#[derive(Debug)]
pub(super) enum Event {
    /// A ticker update.
    Ticker {
        instrument: &'static str,
        data: String,
    },
    /// A book change (without the `type` field; non-raw channels add `"type":"change"`).
    Book {
        instrument: &'static str,
        change_id: u64,
        data: String,
    },
    /// Public trades (`data` is an array).
    Trades {
        instrument: &'static str,
        data: String,
    },
    /// An index price.
    Index { name: &'static str, data: String },
    /// An order of `account` changed (`data` is one order object).
    Order {
        account: String,
        instrument: &'static str,
        data: String,
    },
    /// Trades of `account` (`data` is an array).
    UserTrades {
        account: String,
        instrument: &'static str,
        data: String,
    },
}

/// One instrument's live state.
#[derive(Debug)]
struct Live {
    mid: i64,
    bids: BTreeMap<i64, f64>,
    asks: BTreeMap<i64, f64>,
    change_id: u64,
    last_ticker_ms: u64,
    trade_seq: u64,
}

/// Levels kept on each side of a book.
const DEPTH: i64 = 10;

/// Every instrument's state.
#[derive(Debug)]
pub(super) struct Market {
    live: Vec<Live>,
    rng: Rng,
    next_trade_id: u64,
}

impl Market {
    pub(super) fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let live = INSTRUMENTS
            .iter()
            .map(|i| {
                let mut l = Live {
                    mid: i.start_ticks,
                    bids: BTreeMap::new(),
                    asks: BTreeMap::new(),
                    change_id: 297_000 + rng.below(1000),
                    last_ticker_ms: 0,
                    trade_seq: 30_000_000 + rng.below(1000),
                };
                for k in 1..=DEPTH {
                    l.bids.insert(i.start_ticks - k, amount(&mut rng, i));
                    l.asks.insert(i.start_ticks + k, amount(&mut rng, i));
                }
                l
            })
            .collect();
        Self {
            live,
            rng,
            next_trade_id: 48_000_000,
        }
    }

    fn index_of(name: &str) -> Option<usize> {
        INSTRUMENTS.iter().position(|i| i.name == name)
    }

    /// The best bid and ask of an instrument, as prices.
    pub(super) fn best(&self, name: &str) -> Option<(f64, f64)> {
        let idx = Self::index_of(name)?;
        let (i, l) = (&INSTRUMENTS[idx], &self.live[idx]);
        let bid = l.bids.keys().next_back().copied().unwrap_or(l.mid - 1);
        let ask = l.asks.keys().next().copied().unwrap_or(l.mid + 1);
        Some((price(i, bid), price(i, ask)))
    }

    /// The book snapshot: its `change_id` and its `data` (without `type`).
    pub(super) fn snapshot(&self, name: &str) -> Option<(u64, String)> {
        let idx = Self::index_of(name)?;
        let (i, l) = (&INSTRUMENTS[idx], &self.live[idx]);
        let side = |levels: &mut dyn Iterator<Item = (&i64, &f64)>| -> Vec<Value> {
            levels
                .map(|(t, a)| json!(["new", price(i, *t), a]))
                .collect()
        };
        let data = json!({
            "timestamp": now_ms(),
            "instrument_name": i.name,
            "change_id": l.change_id,
            "bids": side(&mut l.bids.iter().rev()),
            "asks": side(&mut l.asks.iter()),
        });
        Some((l.change_id, data.to_string()))
    }

    /// The ticker of an instrument, as `public/ticker` and `ticker.*` give it.
    pub(super) fn ticker(&mut self, name: &str) -> Option<Value> {
        let idx = Self::index_of(name)?;
        let (bid, ask) = self.best(name)?;
        let (i, l) = (&INSTRUMENTS[idx], &mut self.live[idx]);
        let ts = now_ms().max(l.last_ticker_ms + 1);
        l.last_ticker_ms = ts;
        let mid = price(i, l.mid);
        let bid_amount = l.bids.values().next_back().copied().unwrap_or(0.0);
        let ask_amount = l.asks.values().next().copied().unwrap_or(0.0);
        let mut t = json!({
            "timestamp": ts,
            "stats": {"volume_usd": 284_061_480, "volume": 7871.02, "price_change": 0.7229,
                      "low": mid * 0.97, "high": mid * 1.03},
            "state": "open",
            "settlement_price": mid,
            "open_interest": 502_097_590,
            "min_price": mid * 0.98,
            "max_price": mid * 1.02,
            "mark_price": mid,
            "last_price": mid,
            "instrument_name": i.name,
            "index_price": mid,
            "estimated_delivery_price": mid,
            "best_bid_price": bid,
            "best_bid_amount": bid_amount,
            "best_ask_price": ask,
            "best_ask_amount": ask_amount,
        });
        if i.expiration_timestamp == PERPETUAL_EXPIRY {
            t["funding_8h"] = json!(0.000_021_1);
            t["current_funding"] = json!(0);
            t["interest_value"] = json!(1.736);
        }
        Some(t)
    }

    /// The index price of `name`.
    fn index(&self, name: &str) -> f64 {
        INSTRUMENTS
            .iter()
            .zip(&self.live)
            .find(|(i, _)| i.index == name && i.kind == "future")
            .map_or(0.0, |(i, l)| price(i, l.mid))
    }

    /// A new public trade id.
    pub(super) fn trade_id(&mut self) -> u64 {
        self.next_trade_id += 1;
        self.next_trade_id
    }

    /// Moves every instrument one step; returns the events (the book change of an instrument
    /// is left out when `skip_book` is set, but its `change_id` is used up).
    fn step(&mut self, skip_book: bool) -> Vec<Event> {
        let mut events = Vec::with_capacity(INSTRUMENTS.len() * 3 + 2);
        let now = now_ms();
        for (idx, i) in INSTRUMENTS.iter().enumerate() {
            let rng = &mut self.rng;
            let l = &mut self.live[idx];
            // The mid walks by at most one tick.
            let step = i64::try_from(rng.below(3)).unwrap_or(1) - 1;
            l.mid = (l.mid + step).max(DEPTH + 2);
            let mut bids = BTreeMap::new();
            let mut asks = BTreeMap::new();
            for k in 1..=DEPTH {
                let b = l.mid - k;
                let a = l.mid + k;
                bids.insert(b, l.bids.get(&b).copied().unwrap_or_else(|| amount(rng, i)));
                asks.insert(a, l.asks.get(&a).copied().unwrap_or_else(|| amount(rng, i)));
            }
            // A couple of levels change size.
            for _ in 0..2 {
                let k =
                    i64::try_from(rng.below(u64::try_from(DEPTH).unwrap_or(1))).unwrap_or(0) + 1;
                if rng.below(2) == 0 {
                    bids.insert(l.mid - k, amount(rng, i));
                } else {
                    asks.insert(l.mid + k, amount(rng, i));
                }
            }
            let bid_changes = diff(i, &l.bids, &bids, true);
            let ask_changes = diff(i, &l.asks, &asks, false);
            l.bids = bids;
            l.asks = asks;
            let prev = l.change_id;
            l.change_id += 1;
            if !skip_book {
                let data = json!({
                    "timestamp": now,
                    "instrument_name": i.name,
                    "prev_change_id": prev,
                    "change_id": l.change_id,
                    "bids": bid_changes,
                    "asks": ask_changes,
                });
                events.push(Event::Book {
                    instrument: i.name,
                    change_id: l.change_id,
                    data: data.to_string(),
                });
            }
            // One trade per tick, at the touch.
            let sell = rng.below(2) == 0;
            let at = if sell { l.mid - 1 } else { l.mid + 1 };
            l.trade_seq += 1;
            let seq = l.trade_seq;
            let trade_price = price(i, at);
            let trade_amount = amount(rng, i);
            let id = self.trade_id();
            let trade = json!([{
                "trade_seq": seq, "trade_id": id.to_string(), "timestamp": now,
                "tick_direction": if sell { 2 } else { 0 }, "price": trade_price,
                "mark_price": trade_price, "instrument_name": i.name, "index_price": trade_price,
                "direction": if sell { "sell" } else { "buy" }, "amount": trade_amount,
            }]);
            events.push(Event::Trades {
                instrument: i.name,
                data: trade.to_string(),
            });
            if let Some(ticker) = self.ticker(i.name) {
                events.push(Event::Ticker {
                    instrument: i.name,
                    data: ticker.to_string(),
                });
            }
        }
        for name in super::channel::INDEXES {
            let data = json!({"timestamp": now, "price": self.index(name), "index_name": name});
            events.push(Event::Index {
                name,
                data: data.to_string(),
            });
        }
        events
    }
}

/// The changes from `old` to `new` as `[action, price, amount]`, best price first.
fn diff(
    i: &Instrument,
    old: &BTreeMap<i64, f64>,
    new: &BTreeMap<i64, f64>,
    bids: bool,
) -> Vec<Value> {
    let mut changes = Vec::new();
    let mut keys: Vec<i64> = old.keys().chain(new.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    if bids {
        keys.reverse();
    }
    for k in keys {
        match (old.get(&k), new.get(&k)) {
            (None, Some(a)) => changes.push(json!(["new", price(i, k), a])),
            (Some(_), None) => changes.push(json!(["delete", price(i, k), 0])),
            (Some(o), Some(a)) if (o - a).abs() > f64::EPSILON => {
                changes.push(json!(["change", price(i, k), a]));
            }
            _ => {}
        }
    }
    changes
}

#[allow(clippy::cast_precision_loss)]
fn price(i: &Instrument, ticks: i64) -> f64 {
    let p = ticks as f64 * i.tick_size;
    (p * 10_000.0).round() / 10_000.0
}

#[allow(clippy::cast_precision_loss)]
fn amount(rng: &mut Rng, i: &Instrument) -> f64 {
    (rng.below(50) + 1) as f64 * i.min_trade_amount
}

/// The market task: one step per tick, its events broadcast.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.options.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let skip = shared.skip_book_change.swap(false, Ordering::Relaxed);
        if skip {
            for _ in 0..INSTRUMENTS.len() {
                bump(&shared.counters.skipped_book_changes);
            }
        }
        let events = lock(&shared.market).step(skip);
        for event in events {
            shared.publish(event);
        }
    }
}

/// An order as the account keeps it.
#[derive(Debug, Clone)]
pub(super) struct Order {
    pub(super) json: Value,
    pub(super) instrument: &'static str,
}

/// A position: signed size (positive long) and average entry price.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Position {
    pub(super) size: f64,
    pub(super) average_price: f64,
}

/// One account's orders and positions.
#[derive(Debug, Default)]
pub(super) struct Account {
    pub(super) orders: HashMap<String, Order>,
    pub(super) positions: BTreeMap<&'static str, Position>,
    pub(super) next_order_id: u64,
}

impl Account {
    /// Adds a fill of signed `size` at `price` to the position in `instrument`.
    pub(super) fn fill(&mut self, instrument: &'static str, size: f64, price: f64) {
        let p = self.positions.entry(instrument).or_default();
        let new_size = p.size + size;
        if p.size == 0.0 || p.size.signum() == size.signum() {
            let total = p.size.abs() + size.abs();
            if total > 0.0 {
                p.average_price = (p.average_price * p.size.abs() + price * size.abs()) / total;
            }
        } else if new_size.signum() != p.size.signum() {
            p.average_price = price;
        }
        p.size = new_size;
        if p.size == 0.0 {
            p.average_price = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_changes_chain() {
        let mut m = Market::new(1);
        let (first, _) = m.snapshot("BTC-PERPETUAL").unwrap_or_default();
        let events = m.step(false);
        let change = events
            .iter()
            .find_map(|e| match e {
                Event::Book {
                    instrument: "BTC-PERPETUAL",
                    change_id,
                    data,
                } => Some((*change_id, data.clone())),
                _ => None,
            })
            .unwrap_or_default();
        assert_eq!(change.0, first + 1);
        let v: Value = serde_json::from_str(&change.1).unwrap_or_default();
        assert_eq!(v["prev_change_id"], first);
        // A skipped step uses a change_id without an event.
        assert!(!m.step(true).iter().any(|e| matches!(e, Event::Book { .. })));
        let (now, _) = m.snapshot("BTC-PERPETUAL").unwrap_or_default();
        assert_eq!(now, first + 2);
    }

    #[test]
    fn tickers_are_numbered_by_timestamp() {
        let mut m = Market::new(1);
        let a = m.ticker("ETH-PERPETUAL").unwrap_or_default();
        let b = m.ticker("ETH-PERPETUAL").unwrap_or_default();
        assert!(b["timestamp"].as_u64() > a["timestamp"].as_u64());
    }

    #[test]
    fn positions_average() {
        let mut a = Account::default();
        a.fill("BTC-PERPETUAL", 10.0, 100.0);
        a.fill("BTC-PERPETUAL", 10.0, 200.0);
        let p = a.positions["BTC-PERPETUAL"];
        assert!((p.size - 20.0).abs() < 1e-9 && (p.average_price - 150.0).abs() < 1e-9);
        a.fill("BTC-PERPETUAL", -20.0, 10.0);
        assert!(a.positions["BTC-PERPETUAL"].size.abs() < 1e-9);
    }
}
