//! Topic names and what each selects.
//!
//! Public: `tickers.{symbol}`, `publicTrade.{symbol}` (options: `publicTrade.{baseCoin}`),
//! `orderbook.{depth}.{symbol}` (depths 1/50/200/1000; options 25/100),
//! `kline.{interval}.{symbol}` (`1 3 5 15 30 60 120 240 360 720 D W M`; not options),
//! `allLiquidation.{symbol}` (linear and inverse). Private: `order`, `execution`, `position`,
//! `wallet`, and `order|execution|position.{category}`.

use super::endpoint::Endpoint;
use super::market::symbols;

/// A private topic's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrivateKind {
    Order,
    Execution,
    Position,
    Wallet,
}

impl PrivateKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            PrivateKind::Order => "order",
            PrivateKind::Execution => "execution",
            PrivateKind::Position => "position",
            PrivateKind::Wallet => "wallet",
        }
    }
}

/// What a topic selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Spec {
    Ticker {
        symbol: String,
    },
    Trade {
        symbols: Vec<String>,
    },
    Book {
        symbol: String,
        depth: u32,
    },
    Kline {
        symbol: String,
        interval: String,
        ms: u64,
    },
    Liquidation {
        symbol: String,
    },
    Private {
        kind: PrivateKind,
        category: Option<String>,
    },
}

impl Spec {
    /// The spec of `topic` on `endpoint`, if it names something there.
    pub(super) fn parse(endpoint: Endpoint, topic: &str) -> Option<Spec> {
        match endpoint.category() {
            Some(category) => public(category, topic),
            None if endpoint == Endpoint::Private => private(topic),
            None => None,
        }
    }

    /// Whether this is a categorised private topic (`order.linear`), or an all-in-one one.
    pub(super) fn private_form(&self) -> Option<(PrivateKind, bool)> {
        match self {
            Spec::Private { kind, category } => Some((*kind, category.is_some())),
            _ => None,
        }
    }
}

fn known(category: &str, symbol: &str) -> bool {
    symbols(category).iter().any(|s| s.symbol == symbol)
}

fn public(category: &str, topic: &str) -> Option<Spec> {
    let mut parts = topic.splitn(3, '.');
    let head = parts.next()?;
    let second = parts.next()?;
    let third = parts.next();
    match (head, third) {
        ("tickers", None) if known(category, second) => Some(Spec::Ticker {
            symbol: second.to_owned(),
        }),
        ("publicTrade", None) => {
            let matching: Vec<String> = symbols(category)
                .iter()
                .filter(|s| {
                    if category == "option" {
                        s.base == second
                    } else {
                        s.symbol == second
                    }
                })
                .map(|s| s.symbol.to_owned())
                .collect();
            (!matching.is_empty()).then_some(Spec::Trade { symbols: matching })
        }
        ("orderbook", Some(symbol)) if known(category, symbol) => {
            let depth: u32 = second.parse().ok()?;
            let allowed: &[u32] = if category == "option" {
                &[25, 100]
            } else {
                &[1, 50, 200, 1000]
            };
            allowed.contains(&depth).then(|| Spec::Book {
                symbol: symbol.to_owned(),
                depth,
            })
        }
        ("kline", Some(symbol)) if category != "option" && known(category, symbol) => {
            let ms = interval_ms(second)?;
            Some(Spec::Kline {
                symbol: symbol.to_owned(),
                interval: second.to_owned(),
                ms,
            })
        }
        ("allLiquidation", None)
            if matches!(category, "linear" | "inverse") && known(category, second) =>
        {
            Some(Spec::Liquidation {
                symbol: second.to_owned(),
            })
        }
        _ => None,
    }
}

fn interval_ms(interval: &str) -> Option<u64> {
    const MINUTE: u64 = 60_000;
    Some(match interval {
        "D" => 1440 * MINUTE,
        "W" => 7 * 1440 * MINUTE,
        "M" => 30 * 1440 * MINUTE,
        n => {
            let minutes: u64 = n.parse().ok()?;
            if ![1, 3, 5, 15, 30, 60, 120, 240, 360, 720].contains(&minutes) {
                return None;
            }
            minutes * MINUTE
        }
    })
}

fn private(topic: &str) -> Option<Spec> {
    let (head, category) = match topic.split_once('.') {
        Some((head, category)) => (head, Some(category)),
        None => (topic, None),
    };
    let kind = match head {
        "order" => PrivateKind::Order,
        "execution" => PrivateKind::Execution,
        "position" => PrivateKind::Position,
        "wallet" => PrivateKind::Wallet,
        _ => return None,
    };
    let allowed: &[&str] = match kind {
        PrivateKind::Order | PrivateKind::Execution => &["spot", "linear", "inverse", "option"],
        PrivateKind::Position => &["linear", "inverse", "option"],
        PrivateKind::Wallet => &[],
    };
    match category {
        None => Some(Spec::Private {
            kind,
            category: None,
        }),
        Some(c) if allowed.contains(&c) => Some(Spec::Private {
            kind,
            category: Some(c.to_owned()),
        }),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_topics() {
        let linear = Endpoint::Linear;
        assert!(matches!(
            Spec::parse(linear, "tickers.BTCUSDT"),
            Some(Spec::Ticker { .. })
        ));
        assert!(matches!(
            Spec::parse(linear, "orderbook.50.BTCUSDT"),
            Some(Spec::Book { depth: 50, .. })
        ));
        assert_eq!(Spec::parse(linear, "orderbook.25.BTCUSDT"), None);
        assert!(matches!(
            Spec::parse(linear, "kline.5.BTCUSDT"),
            Some(Spec::Kline { ms: 300_000, .. })
        ));
        assert_eq!(Spec::parse(linear, "kline.7.BTCUSDT"), None);
        assert!(Spec::parse(linear, "allLiquidation.BTCUSDT").is_some());
        assert_eq!(Spec::parse(Endpoint::Spot, "allLiquidation.BTCUSDT"), None);
        assert!(Spec::parse(Endpoint::Option, "publicTrade.BTC").is_some());
        assert_eq!(Spec::parse(linear, "tickers.NOPE"), None);
        assert_eq!(Spec::parse(linear, "order"), None);
    }

    #[test]
    fn private_topics() {
        let p = Endpoint::Private;
        assert!(Spec::parse(p, "order").is_some());
        assert!(Spec::parse(p, "order.linear").is_some());
        assert!(Spec::parse(p, "wallet").is_some());
        assert_eq!(Spec::parse(p, "wallet.linear"), None);
        assert_eq!(Spec::parse(p, "position.spot"), None);
        assert_eq!(Spec::parse(p, "tickers.BTCUSDT"), None);
    }
}
