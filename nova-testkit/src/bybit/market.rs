//! The simulated market: symbols per category, prices that walk, order books with `u` and
//! `seq`, trades, tickers and liquidations.
//!
//! One task ([`run`]) advances every symbol each tick and broadcasts one [`Event::Tick`] with
//! an [`Update`] per symbol; the connection tasks render what their topics select. A book's
//! `u` is per symbol and grows by one per update, shared by every connection: a subscriber gets
//! a snapshot at the current `u` and then every delta after it. `seq` (the cross sequence)
//! grows by a few per update. Books hold 20 levels a side around the price, so every depth of
//! 25 and more is the whole book.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::topic::PrivateKind;
use super::{Shared, bump, lock};

/// Levels a side.
const LEVELS: i64 = 20;

/// A listed symbol.
#[derive(Debug)]
pub(super) struct SymbolInfo {
    pub(super) category: &'static str,
    pub(super) symbol: &'static str,
    pub(super) base: &'static str,
    /// The tick size is `tick_mantissa / 10^decimals`.
    tick_mantissa: i64,
    decimals: u32,
    /// The starting price, in ticks.
    start_ticks: i64,
}

const SPOT: [SymbolInfo; 2] = [
    SymbolInfo {
        category: "spot",
        symbol: "BTCUSDT",
        base: "BTC",
        tick_mantissa: 1,
        decimals: 2,
        start_ticks: 6_000_000,
    },
    SymbolInfo {
        category: "spot",
        symbol: "ETHUSDT",
        base: "ETH",
        tick_mantissa: 1,
        decimals: 2,
        start_ticks: 300_000,
    },
];
const LINEAR: [SymbolInfo; 2] = [
    SymbolInfo {
        category: "linear",
        symbol: "BTCUSDT",
        base: "BTC",
        tick_mantissa: 1,
        decimals: 1,
        start_ticks: 600_000,
    },
    SymbolInfo {
        category: "linear",
        symbol: "ETHUSDT",
        base: "ETH",
        tick_mantissa: 1,
        decimals: 2,
        start_ticks: 300_000,
    },
];
const INVERSE: [SymbolInfo; 1] = [SymbolInfo {
    category: "inverse",
    symbol: "BTCUSD",
    base: "BTC",
    tick_mantissa: 5,
    decimals: 1,
    start_ticks: 120_000,
}];
const OPTION: [SymbolInfo; 1] = [SymbolInfo {
    category: "option",
    symbol: "BTC-26DEC26-60000-C",
    base: "BTC",
    tick_mantissa: 5,
    decimals: 0,
    start_ticks: 300,
}];

/// The symbols of `category`.
pub(super) fn symbols(category: &str) -> &'static [SymbolInfo] {
    match category {
        "spot" => &SPOT,
        "linear" => &LINEAR,
        "inverse" => &INVERSE,
        "option" => &OPTION,
        _ => &[],
    }
}

fn all_symbols() -> impl Iterator<Item = &'static SymbolInfo> {
    SPOT.iter().chain(&LINEAR).chain(&INVERSE).chain(&OPTION)
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `value / 10^decimals`, written with exactly `decimals` decimals.
pub(super) fn fixed(value: i64, decimals: u32) -> String {
    if decimals == 0 {
        return value.to_string();
    }
    let scale = 10i64.pow(decimals);
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        v / scale,
        v % scale,
        width = decimals as usize
    )
}

/// A price level as Bybit writes it: `["price", "size"]`.
pub(super) type Level = [String; 2];

/// One side's levels: price in ticks → size in thousandths.
type Side = BTreeMap<i64, u64>;

/// A symbol's book.
#[derive(Clone, Debug, Default)]
pub(super) struct Book {
    bids: Side,
    asks: Side,
    pub(super) u: u64,
    pub(super) seq: u64,
}

/// A book's state at one `u`, every level, best first.
#[derive(Clone, Debug)]
pub(super) struct BookState {
    pub(super) category: &'static str,
    pub(super) symbol: &'static str,
    pub(super) bids: Vec<Level>,
    pub(super) asks: Vec<Level>,
    pub(super) u: u64,
    pub(super) seq: u64,
    /// Bumped by every restart (`u == 1`).
    pub(super) generation: u64,
}

/// The changes of one book update.
#[derive(Clone, Debug)]
pub(super) struct Delta {
    pub(super) bids: Vec<Level>,
    pub(super) asks: Vec<Level>,
    pub(super) u: u64,
    pub(super) seq: u64,
}

/// What one tick did to one symbol.
#[derive(Debug)]
pub(super) struct Update {
    pub(super) category: &'static str,
    pub(super) symbol: &'static str,
    pub(super) ts: u64,
    /// The ticker's `data`.
    pub(super) ticker: Value,
    /// The ticker's cross sequence.
    pub(super) cs: u64,
    /// The book delta; `None` when it was lost on purpose.
    pub(super) book: Option<Delta>,
    /// The whole book after this update (for depth-1 snapshots).
    pub(super) top: (Option<Level>, Option<Level>),
    /// The trades' `data`.
    pub(super) trades: Value,
    /// The last price.
    pub(super) last: String,
    /// A liquidation's `data`, some ticks.
    pub(super) liquidation: Option<Value>,
}

/// What goes from the market (and the accounts) to the connections.
#[derive(Debug)]
pub(super) enum Event {
    /// One tick of every symbol.
    Tick(Vec<Update>),
    /// The books restarted at `u == 1`: these are their states.
    BooksRestarted(Vec<BookState>),
    /// An account push.
    Private {
        api_key: String,
        kind: PrivateKind,
        category: String,
        data: Value,
    },
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// An integer in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Debug)]
struct Instrument {
    info: &'static SymbolInfo,
    mid: i64,
    open: i64,
    high: i64,
    low: i64,
    book: Book,
    trade_seq: u64,
    volume: u64,
    last_ts: u64,
}

impl Instrument {
    fn price(&self, ticks: i64) -> String {
        fixed(ticks * self.info.tick_mantissa, self.info.decimals)
    }

    fn level(&self, ticks: i64, size: u64) -> Level {
        [
            self.price(ticks),
            fixed(i64::try_from(size).unwrap_or(i64::MAX), 3),
        ]
    }

    fn state(&self, generation: u64) -> BookState {
        BookState {
            category: self.info.category,
            symbol: self.info.symbol,
            bids: self
                .book
                .bids
                .iter()
                .rev()
                .map(|(p, s)| self.level(*p, *s))
                .collect(),
            asks: self
                .book
                .asks
                .iter()
                .map(|(p, s)| self.level(*p, *s))
                .collect(),
            u: self.book.u,
            seq: self.book.seq,
            generation,
        }
    }
}

/// Every symbol's state.
#[derive(Debug)]
pub(super) struct Market {
    instruments: Vec<Instrument>,
    rng: Rng,
    ticks: u64,
    generation: u64,
}

impl Market {
    pub(super) fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let instruments = all_symbols()
            .map(|info| {
                let mut i = Instrument {
                    info,
                    mid: info.start_ticks,
                    open: info.start_ticks,
                    high: info.start_ticks,
                    low: info.start_ticks,
                    book: Book::default(),
                    trade_seq: 1_000_000,
                    volume: 0,
                    last_ts: 0,
                };
                i.book.u = 1;
                i.book.seq = 7_000_000_000;
                let (bids, asks) = levels(&mut rng, i.mid, &Side::new(), &Side::new());
                i.book.bids = bids;
                i.book.asks = asks;
                i
            })
            .collect();
        Self {
            instruments,
            rng,
            ticks: 0,
            generation: 0,
        }
    }

    /// The book of `(category, symbol)` now.
    pub(super) fn book(&self, category: &str, symbol: &str) -> Option<BookState> {
        self.instruments
            .iter()
            .find(|i| i.info.category == category && i.info.symbol == symbol)
            .map(|i| i.state(self.generation))
    }

    /// The last price of `(category, symbol)`.
    pub(super) fn last_price(&self, category: &str, symbol: &str) -> Option<String> {
        self.instruments
            .iter()
            .find(|i| i.info.category == category && i.info.symbol == symbol)
            .map(|i| i.price(i.mid))
    }

    /// Restarts every book at `u == 1`; returns their states.
    pub(super) fn restart_books(&mut self) -> Vec<BookState> {
        self.generation += 1;
        for i in &mut self.instruments {
            i.book.u = 1;
        }
        let generation = self.generation;
        self.instruments
            .iter()
            .map(|i| i.state(generation))
            .collect()
    }

    /// Moves every symbol one step.
    fn step(&mut self, now: u64, skip_book: bool, crossed: bool) -> Vec<Update> {
        self.ticks += 1;
        let liquidate = self.ticks % 10 == 0;
        let mut out = Vec::with_capacity(self.instruments.len());
        for i in &mut self.instruments {
            let rng = &mut self.rng;
            let before = i.mid;
            let step = i64::try_from(rng.below(5)).unwrap_or(2) - 2;
            i.mid = (i.mid + step).max(LEVELS + 2);
            i.high = i.high.max(i.mid);
            i.low = i.low.min(i.mid);
            let (bids, asks) = levels(rng, i.mid, &i.book.bids, &i.book.asks);
            let mut delta_bids: Vec<Level> = diff(&i.book.bids, &bids)
                .into_iter()
                .rev()
                .map(|(p, s)| i.level(p, s))
                .collect();
            let delta_asks: Vec<Level> = diff(&i.book.asks, &asks)
                .into_iter()
                .map(|(p, s)| i.level(p, s))
                .collect();
            i.book.bids = bids;
            i.book.asks = asks;
            i.book.u += 1;
            i.book.seq += 1 + rng.below(4);
            if crossed {
                let best_ask = i.book.asks.keys().next().copied().unwrap_or(i.mid + 1);
                delta_bids.insert(0, i.level(best_ask + 1, 1_000));
            }
            let ts = now.max(i.last_ts + 1);
            i.last_ts = ts;
            let size = 1 + rng.below(2_000);
            i.volume += size;
            i.trade_seq += 1;
            let side = if step >= 0 { "Buy" } else { "Sell" };
            let last = i.price(i.mid);
            let trades = json!([{
                "T": ts, "s": i.info.symbol, "S": side,
                "v": fixed(i64::try_from(size).unwrap_or(1), 3), "p": last,
                "L": if i.mid >= before { "PlusTick" } else { "MinusTick" },
                "i": format!("{:08x}-{:04x}-5b31-9112-{:012x}", i.trade_seq, rng.below(0xffff), rng.below(1 << 48)),
                "BT": false, "seq": i.trade_seq,
            }]);
            let best_bid = i.book.bids.iter().next_back().map(|(p, s)| i.level(*p, *s));
            let best_ask = i.book.asks.iter().next().map(|(p, s)| i.level(*p, *s));
            let ticker = ticker_data(i, &last, best_bid.as_ref(), best_ask.as_ref());
            let liquidation = (liquidate && matches!(i.info.category, "linear" | "inverse")).then(
                || json!([{"T": ts, "s": i.info.symbol, "S": side, "v": "0.012", "p": last}]),
            );
            let book = (!skip_book).then_some(Delta {
                bids: delta_bids,
                asks: delta_asks,
                u: i.book.u,
                seq: i.book.seq,
            });
            out.push(Update {
                category: i.info.category,
                symbol: i.info.symbol,
                ts,
                ticker,
                cs: i.book.seq,
                book,
                top: (best_bid, best_ask),
                trades,
                last,
                liquidation,
            });
        }
        out
    }
}

fn ticker_data(i: &Instrument, last: &str, bid: Option<&Level>, ask: Option<&Level>) -> Value {
    let (bid_p, bid_s) = bid.map_or((String::new(), String::new()), |l| {
        (l[0].clone(), l[1].clone())
    });
    let (ask_p, ask_s) = ask.map_or((String::new(), String::new()), |l| {
        (l[0].clone(), l[1].clone())
    });
    let pct = if i.open == 0 {
        0
    } else {
        (i.mid - i.open) * 1_000_000 / i.open
    };
    let volume = fixed(i64::try_from(i.volume).unwrap_or(i64::MAX), 3);
    match i.info.category {
        "spot" => json!({
            "symbol": i.info.symbol, "lastPrice": last, "highPrice24h": i.price(i.high),
            "lowPrice24h": i.price(i.low), "prevPrice24h": i.price(i.open), "volume24h": volume,
            "turnover24h": "0", "price24hPcnt": fixed(pct, 6), "usdIndexPrice": last,
        }),
        "option" => json!({
            "symbol": i.info.symbol, "bidPrice": bid_p, "bidSize": bid_s, "askPrice": ask_p,
            "askSize": ask_s, "lastPrice": last, "markPrice": last, "indexPrice": "60000",
            "volume24h": volume,
        }),
        _ => json!({
            "symbol": i.info.symbol, "tickDirection": "PlusTick", "price24hPcnt": fixed(pct, 6),
            "lastPrice": last, "prevPrice24h": i.price(i.open), "highPrice24h": i.price(i.high),
            "lowPrice24h": i.price(i.low), "markPrice": last, "indexPrice": last,
            "volume24h": volume, "bid1Price": bid_p, "bid1Size": bid_s, "ask1Price": ask_p,
            "ask1Size": ask_s, "fundingRate": "0.0001",
        }),
    }
}

/// New levels around `mid`: most sizes kept, some changed.
fn levels(rng: &mut Rng, mid: i64, old_bids: &Side, old_asks: &Side) -> (Side, Side) {
    let mut side = |old: &Side, prices: &mut dyn Iterator<Item = i64>| -> Side {
        prices
            .map(|p| {
                let size = match old.get(&p) {
                    Some(s) if rng.below(10) < 7 => *s,
                    _ => 1 + rng.below(5_000),
                };
                (p, size)
            })
            .collect()
    };
    let bids = side(old_bids, &mut (mid - LEVELS..mid));
    let asks = side(old_asks, &mut (mid + 1..=mid + LEVELS));
    (bids, asks)
}

/// The changes from `old` to `new`: removed levels with size 0, new or changed sizes.
fn diff(old: &Side, new: &Side) -> Vec<(i64, u64)> {
    let mut out: BTreeMap<i64, u64> = BTreeMap::new();
    for p in old.keys() {
        if !new.contains_key(p) {
            out.insert(*p, 0);
        }
    }
    for (p, s) in new {
        if old.get(p) != Some(s) {
            out.insert(*p, *s);
        }
    }
    out.into_iter().collect()
}

/// The market task: a step every tick, broadcast.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.options.tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let skip = shared.skip_book_update.swap(false, Ordering::Relaxed);
        let crossed = shared.crossed_book.swap(false, Ordering::Relaxed);
        if skip {
            bump(&shared.counters.skipped_book_updates);
        }
        if crossed {
            bump(&shared.counters.crossed_books);
        }
        // Published under the lock: a connection that takes a snapshot under the same lock
        // sees every update after it.
        let market = &mut *lock(&shared.market);
        let updates = market.step(now_ms(), skip, crossed);
        shared.publish(Event::Tick(updates));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fixed_point() {
        assert_eq!(fixed(600_000, 1), "60000.0");
        assert_eq!(fixed(5, 3), "0.005");
        assert_eq!(fixed(300, 0), "300");
    }

    #[test]
    fn books_stay_uncrossed_and_u_grows_by_one() {
        let mut m = Market::new(3);
        let before = m.book("linear", "BTCUSDT").unwrap().u;
        for _ in 0..50 {
            m.step(now_ms(), false, false);
        }
        let b = m.book("linear", "BTCUSDT").unwrap();
        assert_eq!(b.u, before + 50);
        let bid: f64 = b.bids[0][0].parse().unwrap();
        let ask: f64 = b.asks[0][0].parse().unwrap();
        assert!(bid < ask);
        assert_eq!(b.bids.len(), 20);
    }
}
