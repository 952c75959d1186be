//! Channel names: parsing `ticker.BTC-PERPETUAL.100ms` and friends into what they select.

use super::market::{Event, Instrument, instrument};

/// The intervals Deribit offers on market channels.
const INTERVALS: [&str; 3] = ["raw", "100ms", "agg2"];
/// The price indexes the simulator publishes.
pub(super) const INDEXES: [&str; 2] = ["btc_usd", "eth_usd"];
const KINDS: [&str; 6] = [
    "future",
    "option",
    "spot",
    "future_combo",
    "option_combo",
    "any",
];
const CURRENCIES: [&str; 4] = ["BTC", "ETH", "USDC", "any"];

/// Which instruments a channel selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Selector {
    /// One instrument.
    Instrument(&'static str),
    /// Every instrument of a kind and currency (`any` matches all).
    Kind { kind: String, currency: String },
}

impl Selector {
    fn matches(&self, i: &Instrument) -> bool {
        match self {
            Self::Instrument(name) => *name == i.name,
            Self::Kind { kind, currency } => {
                (kind == "any" || kind == i.kind) && (currency == "any" || currency == i.currency)
            }
        }
    }
}

/// What a channel subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Spec {
    /// `ticker.{instrument}.{interval}`
    Ticker(&'static str),
    /// `book.{instrument}.{interval}`; `raw` books carry no `type` field.
    Book { instrument: &'static str, raw: bool },
    /// `trades.{instrument}.{interval}` or `trades.{kind}.{currency}.{interval}`
    Trades(Selector),
    /// `deribit_price_index.{index}`
    Index(&'static str),
    /// `user.orders.{instrument | kind.currency}.{interval}`; `raw` sends single orders,
    /// other intervals arrays.
    UserOrders { selector: Selector, raw: bool },
    /// `user.trades.{instrument | kind.currency}.{interval}`
    UserTrades(Selector),
}

impl Spec {
    /// Parses a channel name; `None` for a channel the simulator does not know.
    pub(super) fn parse(channel: &str) -> Option<Self> {
        let parts: Vec<&str> = channel.split('.').collect();
        let interval_ok = |i: &str| INTERVALS.contains(&i);
        let selector = |parts: &[&str]| -> Option<Selector> {
            match parts {
                [name] => instrument(name).map(|i| Selector::Instrument(i.name)),
                [kind, currency] if KINDS.contains(kind) && CURRENCIES.contains(currency) => {
                    Some(Selector::Kind {
                        kind: (*kind).to_owned(),
                        currency: (*currency).to_owned(),
                    })
                }
                _ => None,
            }
        };
        match parts.as_slice() {
            ["ticker", name, interval] if interval_ok(interval) => {
                instrument(name).map(|i| Self::Ticker(i.name))
            }
            ["book", name, interval] if interval_ok(interval) => {
                instrument(name).map(|i| Self::Book {
                    instrument: i.name,
                    raw: *interval == "raw",
                })
            }
            ["trades", rest @ .., interval] if interval_ok(interval) => {
                selector(rest).map(Self::Trades)
            }
            ["deribit_price_index", index] => {
                INDEXES.iter().find(|i| *i == index).map(|i| Self::Index(i))
            }
            ["user", "orders", rest @ .., interval] if interval_ok(interval) => {
                selector(rest).map(|selector| Self::UserOrders {
                    selector,
                    raw: *interval == "raw",
                })
            }
            ["user", "trades", rest @ .., interval] if interval_ok(interval) => {
                selector(rest).map(Self::UserTrades)
            }
            _ => None,
        }
    }

    /// Whether only `private/subscribe` (after auth) may subscribe to it.
    pub(super) fn is_private(&self) -> bool {
        matches!(self, Self::UserOrders { .. } | Self::UserTrades(_))
    }

    /// Whether the event belongs on this channel, for a connection authenticated as `account`.
    pub(super) fn matches(&self, event: &Event, account: Option<&str>) -> bool {
        match (self, event) {
            (Self::Ticker(name), Event::Ticker { instrument, .. }) => name == instrument,
            (
                Self::Book {
                    instrument: name, ..
                },
                Event::Book { instrument, .. },
            ) => name == instrument,
            (Self::Trades(selector), Event::Trades { instrument, .. }) => {
                super::market::instrument(instrument).is_some_and(|i| selector.matches(i))
            }
            (Self::Index(name), Event::Index { name: index, .. }) => name == index,
            (
                Self::UserOrders { selector, .. },
                Event::Order {
                    account: owner,
                    instrument,
                    ..
                },
            )
            | (
                Self::UserTrades(selector),
                Event::UserTrades {
                    account: owner,
                    instrument,
                    ..
                },
            ) => {
                account == Some(owner.as_str())
                    && super::market::instrument(instrument).is_some_and(|i| selector.matches(i))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert_eq!(
            Spec::parse("ticker.BTC-PERPETUAL.100ms"),
            Some(Spec::Ticker("BTC-PERPETUAL"))
        );
        assert_eq!(
            Spec::parse("book.ETH-PERPETUAL.raw"),
            Some(Spec::Book {
                instrument: "ETH-PERPETUAL",
                raw: true
            })
        );
        assert!(matches!(
            Spec::parse("trades.future.BTC.100ms"),
            Some(Spec::Trades(Selector::Kind { .. }))
        ));
        assert_eq!(
            Spec::parse("deribit_price_index.btc_usd"),
            Some(Spec::Index("btc_usd"))
        );
        assert!(Spec::parse("user.orders.any.any.raw").is_some_and(|s| s.is_private()));
        assert!(Spec::parse("user.trades.BTC-PERPETUAL.100ms").is_some());
        assert_eq!(Spec::parse("ticker.NOPE.100ms"), None);
        assert_eq!(Spec::parse("ticker.BTC-PERPETUAL.1s"), None);
        assert_eq!(Spec::parse("nonsense"), None);
    }
}
