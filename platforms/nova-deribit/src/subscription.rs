//! Typed channel names.
//!
//! Deribit's channels are dotted names: `ticker.{instrument}.{interval}`,
//! `book.{instrument}.{interval}`, `trades.{instrument}.{interval}`,
//! `trades.{kind}.{currency}.{interval}`, `deribit_price_index.{index}`, and the private
//! `user.orders.…` and `user.trades.…`. [`Channel`] builds them; [`ChannelKind`] tells a name's
//! kind. Private channels need `private/subscribe` after authentication; `raw` intervals need
//! authentication too.

use std::fmt;

use crate::types::Kind;

/// How often a channel sends: every change (`raw`, needs auth), every 100 ms, or aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Interval {
    /// Every change; only for authenticated connections.
    Raw,
    /// Every 100 ms.
    Ms100,
    /// Aggregated (`agg2`).
    Agg2,
}

impl Interval {
    /// The name on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Raw => "raw",
            Interval::Ms100 => "100ms",
            Interval::Agg2 => "agg2",
        }
    }
}

/// The kind of a channel, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelKind {
    /// `ticker.*`
    Ticker,
    /// `book.*`
    Book,
    /// `trades.*`
    Trades,
    /// `deribit_price_index.*`
    PriceIndex,
    /// `user.orders.*`
    UserOrders,
    /// `user.trades.*`
    UserTrades,
    /// Anything else.
    Other,
}

impl ChannelKind {
    /// The kind of the channel called `name`.
    ///
    /// ```
    /// use nova_deribit::ChannelKind;
    ///
    /// assert_eq!(ChannelKind::of("book.BTC-PERPETUAL.100ms"), ChannelKind::Book);
    /// assert_eq!(ChannelKind::of("user.orders.any.any.raw"), ChannelKind::UserOrders);
    /// assert_eq!(ChannelKind::of("announcements"), ChannelKind::Other);
    /// ```
    #[must_use]
    pub fn of(name: &str) -> Self {
        let (head, rest) = name.split_once('.').unwrap_or((name, ""));
        match head {
            "ticker" => Self::Ticker,
            "book" => Self::Book,
            "trades" => Self::Trades,
            "deribit_price_index" => Self::PriceIndex,
            "user" if rest.starts_with("orders.") => Self::UserOrders,
            "user" if rest.starts_with("trades.") => Self::UserTrades,
            _ => Self::Other,
        }
    }

    /// Whether channels of this kind need `private/subscribe`.
    #[must_use]
    pub fn is_private(self) -> bool {
        matches!(self, Self::UserOrders | Self::UserTrades)
    }
}

/// A channel name.
///
/// ```
/// use nova_deribit::{Channel, Interval, Kind};
///
/// assert_eq!(Channel::ticker("BTC-PERPETUAL", Interval::Ms100).as_str(), "ticker.BTC-PERPETUAL.100ms");
/// assert_eq!(Channel::book("BTC-PERPETUAL", Interval::Ms100).as_str(), "book.BTC-PERPETUAL.100ms");
/// assert_eq!(Channel::trades("BTC-PERPETUAL", Interval::Raw).as_str(), "trades.BTC-PERPETUAL.raw");
/// assert_eq!(Channel::trades_by_kind(Some(Kind::Future), Some("BTC"), Interval::Ms100).as_str(), "trades.future.BTC.100ms");
/// assert_eq!(Channel::price_index("btc_usd").as_str(), "deribit_price_index.btc_usd");
/// assert_eq!(Channel::user_orders_by_kind(None, None, Interval::Raw).as_str(), "user.orders.any.any.raw");
/// assert!(Channel::user_trades("BTC-PERPETUAL", Interval::Ms100).is_private());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(String);

fn kind_name(kind: Option<Kind>) -> &'static str {
    kind.map_or("any", Kind::as_str)
}

impl Channel {
    /// Any channel, by name.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// `ticker.{instrument}.{interval}`
    #[must_use]
    pub fn ticker(instrument: &str, interval: Interval) -> Self {
        Self(format!("ticker.{instrument}.{}", interval.as_str()))
    }

    /// `book.{instrument}.{interval}`: a snapshot, then changes chained by `change_id`.
    #[must_use]
    pub fn book(instrument: &str, interval: Interval) -> Self {
        Self(format!("book.{instrument}.{}", interval.as_str()))
    }

    /// `trades.{instrument}.{interval}`
    #[must_use]
    pub fn trades(instrument: &str, interval: Interval) -> Self {
        Self(format!("trades.{instrument}.{}", interval.as_str()))
    }

    /// `trades.{kind}.{currency}.{interval}` (`None`: `any`).
    #[must_use]
    pub fn trades_by_kind(kind: Option<Kind>, currency: Option<&str>, interval: Interval) -> Self {
        Self(format!(
            "trades.{}.{}.{}",
            kind_name(kind),
            currency.unwrap_or("any"),
            interval.as_str()
        ))
    }

    /// `deribit_price_index.{index}`, e.g. `btc_usd`.
    #[must_use]
    pub fn price_index(index: &str) -> Self {
        Self(format!("deribit_price_index.{index}"))
    }

    /// `user.orders.{instrument}.{interval}` (private).
    #[must_use]
    pub fn user_orders(instrument: &str, interval: Interval) -> Self {
        Self(format!("user.orders.{instrument}.{}", interval.as_str()))
    }

    /// `user.orders.{kind}.{currency}.{interval}` (private; `None`: `any`).
    #[must_use]
    pub fn user_orders_by_kind(
        kind: Option<Kind>,
        currency: Option<&str>,
        interval: Interval,
    ) -> Self {
        Self(format!(
            "user.orders.{}.{}.{}",
            kind_name(kind),
            currency.unwrap_or("any"),
            interval.as_str()
        ))
    }

    /// `user.trades.{instrument}.{interval}` (private).
    #[must_use]
    pub fn user_trades(instrument: &str, interval: Interval) -> Self {
        Self(format!("user.trades.{instrument}.{}", interval.as_str()))
    }

    /// `user.trades.{kind}.{currency}.{interval}` (private; `None`: `any`).
    #[must_use]
    pub fn user_trades_by_kind(
        kind: Option<Kind>,
        currency: Option<&str>,
        interval: Interval,
    ) -> Self {
        Self(format!(
            "user.trades.{}.{}.{}",
            kind_name(kind),
            currency.unwrap_or("any"),
            interval.as_str()
        ))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind of channel.
    #[must_use]
    pub fn kind(&self) -> ChannelKind {
        ChannelKind::of(&self.0)
    }

    /// Whether it needs `private/subscribe` (after authentication).
    #[must_use]
    pub fn is_private(&self) -> bool {
        self.kind().is_private()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Channel> for String {
    fn from(c: Channel) -> Self {
        c.0
    }
}

impl From<&str> for Channel {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl AsRef<str> for Channel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
