//! [`OrderBook`]: a local order book built from `orderbook.*` pushes, never silently wrong.
//!
//! Bybit's rules (V5 docs, "Orderbook"): the first push after subscribing is a `snapshot`; then
//! `delta`s. A new snapshot replaces the book. In a delta, a level of size `"0"` is deleted, an
//! unknown price is inserted, a known one updated. `u` is the update id; a push with `u == 1`
//! is a snapshot after a service restart and replaces the book too. `seq` is the cross
//! sequence, kept for comparing depths. Bybit documents no "previous `u`"; the book expects
//! each delta's `u` to be the last plus one ([`BookContinuity::Consecutive`], the default) or
//! only larger ([`BookContinuity::Increasing`]).
//!
//! The book is pure (no I/O, no clock) and never panics on bad input: every problem is a
//! [`BookError`], after which the book refuses deltas until the next snapshot.
//!
//! ```
//! use nova_bybit::{BookMessage, OrderBook};
//!
//! let mut book = OrderBook::default();
//! let snapshot = r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,
//!     "data":{"s":"BTCUSDT","b":[["100.5","2"],["100.0","1"]],"a":[["101.0","3"]],"u":7,"seq":70}}"#;
//! book.apply(&BookMessage::from_json(snapshot)?)?;
//! let delta = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":2,
//!     "data":{"s":"BTCUSDT","b":[["100.5","0"]],"a":[["100.8","1"]],"u":8,"seq":75}}"#;
//! book.apply(&BookMessage::from_json(delta)?)?;
//! assert_eq!(book.best_bid().map(|l| l.price.as_str()), Some("100.0"));
//! assert_eq!(book.best_ask().map(|l| l.price.as_str()), Some("100.8"));
//! assert_eq!((book.update_id(), book.seq()), (Some(8), 75));
//! assert!(book.check_crossed().is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use nova_core::Message;
use serde::Deserialize;

/// How a delta's `u` must follow the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BookContinuity {
    /// The last `u` plus one (what Bybit sends per subscription).
    #[default]
    Consecutive,
    /// Larger than the last `u` (gaps cannot be detected).
    Increasing,
}

/// What went wrong with a book push.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// The push is not a book push (bad JSON, a field missing).
    #[error("not an order book push: {0}")]
    Malformed(String),
    /// A delta came before any snapshot (or after a break, before the next snapshot).
    #[error("a delta (u {u}) without a snapshot to apply it to")]
    NoSnapshot {
        /// The delta's `u`.
        u: u64,
    },
    /// A delta's `u` does not follow the last one.
    #[error("u break: expected {expected}, got {got}")]
    Break {
        /// The `u` expected.
        expected: u64,
        /// The `u` received.
        got: u64,
    },
    /// A level's price or size is not a non-negative number.
    #[error("bad level [{price:?}, {size:?}]")]
    BadLevel {
        /// The price as sent.
        price: String,
        /// The size as sent.
        size: String,
    },
    /// The delta is for another symbol.
    #[error("a push for {got} applied to the book of {expected}")]
    WrongSymbol {
        /// The book's symbol.
        expected: String,
        /// The push's symbol.
        got: String,
    },
    /// The best bid is at or above the best ask.
    #[error("crossed book: best bid {bid} >= best ask {ask}")]
    Crossed {
        /// The best bid's price.
        bid: String,
        /// The best ask's price.
        ask: String,
    },
}

/// A price level: price and size exactly as Bybit sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Level {
    /// The price.
    pub price: String,
    /// The size.
    pub size: String,
}

impl Level {
    /// The price as a number.
    #[must_use]
    pub fn price_f64(&self) -> f64 {
        self.price.parse().unwrap_or(f64::NAN)
    }

    /// The size as a number.
    #[must_use]
    pub fn size_f64(&self) -> f64 {
        self.size.parse().unwrap_or(f64::NAN)
    }
}

/// A price as a sort key: parsed once, ordered totally.
#[derive(Clone, Copy, Debug)]
struct Price(f64);

impl PartialEq for Price {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Price {}
impl PartialOrd for Price {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Price {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// An `orderbook.*` push, parsed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct BookMessage {
    /// The topic.
    pub topic: String,
    /// `snapshot` or `delta`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The server's timestamp (ms).
    #[serde(default)]
    pub ts: u64,
    /// The matching engine's timestamp (ms).
    #[serde(default)]
    pub cts: Option<u64>,
    /// The book data.
    pub data: BookData,
}

/// The `data` of an `orderbook.*` push.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct BookData {
    /// The symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Bid levels `[price, size]`.
    #[serde(rename = "b", default)]
    pub bids: Vec<[String; 2]>,
    /// Ask levels `[price, size]`.
    #[serde(rename = "a", default)]
    pub asks: Vec<[String; 2]>,
    /// The update id.
    pub u: u64,
    /// The cross sequence.
    #[serde(default)]
    pub seq: u64,
}

impl BookMessage {
    /// Parses a book push from its JSON text.
    ///
    /// # Errors
    /// [`BookError::Malformed`] when it is not one.
    pub fn from_json(text: &str) -> Result<Self, BookError> {
        serde_json::from_str(text).map_err(|e| BookError::Malformed(e.to_string()))
    }

    /// Parses a book push from a message.
    ///
    /// # Errors
    /// [`BookError::Malformed`] when it is not one.
    pub fn parse(message: &Message) -> Result<Self, BookError> {
        serde_json::from_slice(message.as_bytes()).map_err(|e| BookError::Malformed(e.to_string()))
    }

    /// Whether this push replaces the book (a `snapshot`, or `u == 1` after a restart).
    #[must_use]
    pub fn is_snapshot(&self) -> bool {
        self.kind == "snapshot" || self.data.u == 1
    }
}

/// What [`OrderBook::apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// The book was replaced by a snapshot.
    Snapshot,
    /// A delta was applied.
    Delta,
    /// The delta was at or before the book's `u`: ignored (a duplicate).
    Stale,
}

/// A local order book. See the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct OrderBook {
    symbol: String,
    bids: BTreeMap<Price, Level>,
    asks: BTreeMap<Price, Level>,
    u: Option<u64>,
    seq: u64,
    ts: u64,
    continuity: BookContinuity,
}

fn parse_level(level: &[String; 2]) -> Result<(Price, Option<Level>), BookError> {
    let [price, size] = level;
    let bad = || BookError::BadLevel {
        price: price.clone(),
        size: size.clone(),
    };
    let p: f64 = price.parse().map_err(|_| bad())?;
    let s: f64 = size.parse().map_err(|_| bad())?;
    if !p.is_finite() || !s.is_finite() || p < 0.0 || s < 0.0 {
        return Err(bad());
    }
    let level = (s > 0.0).then(|| Level {
        price: price.clone(),
        size: size.clone(),
    });
    Ok((Price(p), level))
}

impl OrderBook {
    /// An empty book with `continuity`.
    #[must_use]
    pub fn with_continuity(continuity: BookContinuity) -> Self {
        Self {
            continuity,
            ..Self::default()
        }
    }

    /// Applies a push. A snapshot replaces the book; a delta must follow the book's `u`.
    ///
    /// # Errors
    /// A delta without a snapshot, a `u` break, a bad level, another symbol. After an error the
    /// book is empty and waits for a snapshot.
    pub fn apply(&mut self, message: &BookMessage) -> Result<Applied, BookError> {
        let result = self.try_apply(message);
        if result.is_err() {
            self.invalidate();
        }
        result
    }

    fn try_apply(&mut self, message: &BookMessage) -> Result<Applied, BookError> {
        let data = &message.data;
        if message.is_snapshot() {
            let mut bids = BTreeMap::new();
            let mut asks = BTreeMap::new();
            for (side, levels) in [(&mut bids, &data.bids), (&mut asks, &data.asks)] {
                for level in levels {
                    if let (price, Some(level)) = parse_level(level)? {
                        side.insert(price, level);
                    }
                }
            }
            self.symbol.clone_from(&data.symbol);
            self.bids = bids;
            self.asks = asks;
            self.u = Some(data.u);
            self.seq = data.seq;
            self.ts = message.ts;
            return Ok(Applied::Snapshot);
        }
        let Some(last) = self.u else {
            return Err(BookError::NoSnapshot { u: data.u });
        };
        if data.symbol != self.symbol {
            return Err(BookError::WrongSymbol {
                expected: self.symbol.clone(),
                got: data.symbol.clone(),
            });
        }
        if data.u <= last {
            return Ok(Applied::Stale);
        }
        if self.continuity == BookContinuity::Consecutive && data.u != last + 1 {
            return Err(BookError::Break {
                expected: last + 1,
                got: data.u,
            });
        }
        // Check every level before changing anything: a bad delta leaves no half-applied book.
        let bids = data
            .bids
            .iter()
            .map(parse_level)
            .collect::<Result<Vec<_>, _>>()?;
        let asks = data
            .asks
            .iter()
            .map(parse_level)
            .collect::<Result<Vec<_>, _>>()?;
        for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
            for (price, level) in levels {
                match level {
                    Some(level) => side.insert(price, level),
                    None => side.remove(&price),
                };
            }
        }
        self.u = Some(data.u);
        self.seq = data.seq;
        self.ts = message.ts;
        Ok(Applied::Delta)
    }

    /// Empties the book: it waits for a snapshot.
    pub fn invalidate(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.u = None;
    }

    /// Whether the book holds a snapshot (and every delta since).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.u.is_some()
    }

    /// The symbol.
    #[must_use]
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The last `u` applied; `None` while waiting for a snapshot.
    #[must_use]
    pub fn update_id(&self) -> Option<u64> {
        self.u
    }

    /// The last `seq` applied.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The timestamp of the last push applied (ms).
    #[must_use]
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// The best (highest) bid.
    #[must_use]
    pub fn best_bid(&self) -> Option<&Level> {
        self.bids.values().next_back()
    }

    /// The best (lowest) ask.
    #[must_use]
    pub fn best_ask(&self) -> Option<&Level> {
        self.asks.values().next()
    }

    /// Bids, best first.
    pub fn bids(&self) -> impl Iterator<Item = &Level> {
        self.bids.values().rev()
    }

    /// Asks, best first.
    pub fn asks(&self) -> impl Iterator<Item = &Level> {
        self.asks.values()
    }

    /// Levels per side: `(bids, asks)`.
    #[must_use]
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// `Ok` unless the best bid is at or above the best ask.
    ///
    /// # Errors
    /// [`BookError::Crossed`].
    pub fn check_crossed(&self) -> Result<(), BookError> {
        match (self.bids.iter().next_back(), self.asks.iter().next()) {
            (Some((bid, b)), Some((ask, a))) if bid >= ask => Err(BookError::Crossed {
                bid: b.price.clone(),
                ask: a.price.clone(),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for OrderBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side =
            |l: Option<&Level>| l.map_or("-".to_owned(), |l| format!("{}@{}", l.size, l.price));
        write!(
            f,
            "{} u={:?} bid {} / ask {}",
            self.symbol,
            self.u,
            side(self.best_bid()),
            side(self.best_ask())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: &str, u: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> BookMessage {
        let levels = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(p, s)| [(*p).to_owned(), (*s).to_owned()])
                .collect()
        };
        BookMessage {
            topic: "orderbook.50.X".into(),
            kind: kind.into(),
            ts: u,
            cts: None,
            data: BookData {
                symbol: "X".into(),
                bids: levels(bids),
                asks: levels(asks),
                u,
                seq: u * 10,
            },
        }
    }

    #[test]
    fn snapshot_then_deltas() {
        let mut b = OrderBook::default();
        assert_eq!(
            b.apply(&push(
                "snapshot",
                5,
                &[("10", "1"), ("9", "2")],
                &[("11", "1")]
            )),
            Ok(Applied::Snapshot)
        );
        assert_eq!(
            b.apply(&push(
                "delta",
                6,
                &[("10", "0"), ("9.5", "3")],
                &[("12", "4")]
            )),
            Ok(Applied::Delta)
        );
        assert_eq!(b.best_bid().map(|l| l.price.as_str()), Some("9.5"));
        assert_eq!(b.depth(), (2, 2));
        assert_eq!(
            b.bids().map(|l| l.price.as_str()).collect::<Vec<_>>(),
            ["9.5", "9"]
        );
        assert_eq!(b.seq(), 60);
        assert_eq!(b.apply(&push("delta", 6, &[], &[])), Ok(Applied::Stale));
    }

    #[test]
    fn a_break_invalidates_until_the_next_snapshot() {
        let mut b = OrderBook::default();
        b.apply(&push("snapshot", 5, &[("10", "1")], &[("11", "1")]))
            .unwrap_or(Applied::Stale);
        assert_eq!(
            b.apply(&push("delta", 7, &[], &[])),
            Err(BookError::Break {
                expected: 6,
                got: 7
            })
        );
        assert!(!b.is_valid());
        assert_eq!(
            b.apply(&push("delta", 8, &[], &[])),
            Err(BookError::NoSnapshot { u: 8 })
        );
        assert_eq!(
            b.apply(&push("snapshot", 20, &[("10", "1")], &[])),
            Ok(Applied::Snapshot)
        );
        assert!(b.is_valid());
    }

    #[test]
    fn increasing_continuity_accepts_jumps() {
        let mut b = OrderBook::with_continuity(BookContinuity::Increasing);
        b.apply(&push("snapshot", 5, &[], &[]))
            .unwrap_or(Applied::Stale);
        assert_eq!(b.apply(&push("delta", 9, &[], &[])), Ok(Applied::Delta));
    }

    #[test]
    fn u_one_is_a_restart() {
        let mut b = OrderBook::default();
        b.apply(&push("snapshot", 500, &[("10", "1")], &[]))
            .unwrap_or(Applied::Stale);
        assert_eq!(
            b.apply(&push("delta", 1, &[("8", "1")], &[])),
            Ok(Applied::Snapshot)
        );
        assert_eq!(b.depth(), (1, 0));
        assert_eq!(b.apply(&push("delta", 2, &[], &[])), Ok(Applied::Delta));
    }

    #[test]
    fn crossed_and_bad_input() {
        let mut b = OrderBook::default();
        b.apply(&push("snapshot", 1, &[("10", "1")], &[("11", "1")]))
            .unwrap_or(Applied::Stale);
        b.apply(&push("delta", 2, &[("11.5", "1")], &[]))
            .unwrap_or(Applied::Stale);
        assert!(matches!(b.check_crossed(), Err(BookError::Crossed { .. })));
        for bad in [("x", "1"), ("1", "-2"), ("NaN", "1"), ("1", "inf")] {
            let mut b = OrderBook::default();
            b.apply(&push("snapshot", 1, &[("10", "1")], &[]))
                .unwrap_or(Applied::Stale);
            assert!(matches!(
                b.apply(&push("delta", 2, &[bad], &[])),
                Err(BookError::BadLevel { .. })
            ));
            assert!(!b.is_valid());
        }
        assert!(BookMessage::from_json("{").is_err());
        assert!(
            BookMessage::from_json(r#"{"topic":"t","type":"delta","data":{"s":"X","u":"no"}}"#)
                .is_err()
        );
        let mut other = push("delta", 2, &[], &[]);
        other.data.symbol = "Y".into();
        let mut b = OrderBook::default();
        b.apply(&push("snapshot", 1, &[], &[]))
            .unwrap_or(Applied::Stale);
        assert!(matches!(
            b.apply(&other),
            Err(BookError::WrongSymbol { .. })
        ));
    }
}
