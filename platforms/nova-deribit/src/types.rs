//! Serde types for Deribit's results and notification data.
//!
//! Results keep the fields they do not model in `extra`, so nothing Deribit sends is lost. The
//! market data of the hot path ([`Ticker`], [`BookUpdate`], [`Trade`], [`PriceIndex`]) does not:
//! serde's `flatten` buffers a whole object (every book level included) before deserializing it,
//! which cost more than the rest of the parse; the raw message is kept beside the typed value
//! instead ([`nova_core::Delivery`]). Numbers are `f64` as Deribit sends them. Field names and meanings follow Deribit API v2's
//! docs (`public/ticker`, `book.*`, `trades.*`, `user.orders.*`, `user.trades.*`,
//! `deribit_price_index.*`, `public/get_instruments`, `private/get_positions`, `public/auth`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The result of `public/auth`.
///
/// `Debug` leaves the tokens out: they are credentials.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct AuthResult {
    /// The access token (connection-scoped unless a `session:` scope was asked for).
    pub access_token: String,
    /// Lifetime of the access token, in seconds.
    pub expires_in: u64,
    /// The token for the `refresh_token` grant.
    pub refresh_token: String,
    /// The granted scope, e.g. `"connection mainaccount"`.
    #[serde(default)]
    pub scope: String,
    /// Always `"bearer"`.
    #[serde(default)]
    pub token_type: String,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for AuthResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResult")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

/// Buy or sell.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Direction {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
    /// A flat position (`private/get_positions`).
    Zero,
}

/// Kinds of instrument.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// Futures and perpetuals.
    Future,
    /// Options.
    Option,
    /// Spot pairs.
    Spot,
    /// Future combos.
    FutureCombo,
    /// Option combos.
    OptionCombo,
}

impl Kind {
    /// The name on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Future => "future",
            Kind::Option => "option",
            Kind::Spot => "spot",
            Kind::FutureCombo => "future_combo",
            Kind::OptionCombo => "option_combo",
        }
    }
}

/// An instrument from `public/get_instruments`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Instrument {
    /// E.g. `BTC-PERPETUAL`.
    pub instrument_name: String,
    /// `future`, `option`, ...
    pub kind: String,
    /// E.g. `BTC`.
    #[serde(default)]
    pub base_currency: String,
    /// E.g. `USD`.
    #[serde(default)]
    pub quote_currency: String,
    /// Minimal price change.
    #[serde(default)]
    pub tick_size: f64,
    /// Contract size (USD for inverse futures).
    #[serde(default)]
    pub contract_size: f64,
    /// Minimal order amount.
    #[serde(default)]
    pub min_trade_amount: f64,
    /// Whether it can be traded.
    #[serde(default)]
    pub is_active: bool,
    /// Expiry, ms since the epoch.
    #[serde(default)]
    pub expiration_timestamp: u64,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// 24-hour statistics of a ticker.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TickerStats {
    /// Volume in base currency.
    #[serde(default)]
    pub volume: Option<f64>,
    /// Volume in USD.
    #[serde(default)]
    pub volume_usd: Option<f64>,
    /// Price change, percent.
    #[serde(default)]
    pub price_change: Option<f64>,
    /// Lowest price.
    #[serde(default)]
    pub low: Option<f64>,
    /// Highest price.
    #[serde(default)]
    pub high: Option<f64>,
}

/// A ticker: `public/ticker`'s result and `ticker.{instrument}.{interval}`'s data.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Ticker {
    /// The instrument.
    pub instrument_name: String,
    /// When, ms since the epoch.
    pub timestamp: u64,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: String,
    /// Best bid price (`None` for an empty side).
    #[serde(default)]
    pub best_bid_price: Option<f64>,
    /// Amount at the best bid.
    #[serde(default)]
    pub best_bid_amount: Option<f64>,
    /// Best ask price.
    #[serde(default)]
    pub best_ask_price: Option<f64>,
    /// Amount at the best ask.
    #[serde(default)]
    pub best_ask_amount: Option<f64>,
    /// Last trade price.
    #[serde(default)]
    pub last_price: Option<f64>,
    /// Mark price.
    #[serde(default)]
    pub mark_price: Option<f64>,
    /// Index price.
    #[serde(default)]
    pub index_price: Option<f64>,
    /// Open interest.
    #[serde(default)]
    pub open_interest: Option<f64>,
    /// Current funding (perpetuals).
    #[serde(default)]
    pub current_funding: Option<f64>,
    /// 8-hour funding (perpetuals).
    #[serde(default)]
    pub funding_8h: Option<f64>,
    /// 24-hour statistics.
    #[serde(default)]
    pub stats: TickerStats,
}

/// What happened to a price level.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LevelAction {
    /// A new level.
    New,
    /// A level's amount changed.
    Change,
    /// A level went away (amount 0).
    Delete,
}

/// One `[action, price, amount]` entry of a book notification.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
pub struct BookLevel(pub LevelAction, pub f64, pub f64);

impl BookLevel {
    /// What happened.
    #[must_use]
    pub fn action(&self) -> LevelAction {
        self.0
    }
    /// The price level.
    #[must_use]
    pub fn price(&self) -> f64 {
        self.1
    }
    /// The new amount.
    #[must_use]
    pub fn amount(&self) -> f64 {
        self.2
    }
}

/// `book.{instrument}.{interval}` data: the first is a snapshot, the others changes.
///
/// Continuity: every change's `prev_change_id` equals the previous notification's `change_id`.
///
/// ```
/// use nova_deribit::BookUpdate;
///
/// let change: BookUpdate = serde_json::from_str(r#"{"type":"change","timestamp":1554373911330,
///     "prev_change_id":297217,"instrument_name":"BTC-PERPETUAL","change_id":297218,
///     "bids":[["delete",5041.94,0],["delete",5042.34,0]],"asks":[]}"#).unwrap();
/// assert!(!change.is_snapshot());
/// assert_eq!(change.prev_change_id, Some(297217));
/// assert_eq!(change.bids[0].price(), 5041.94);
/// ```
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct BookUpdate {
    /// `snapshot` or `change`; absent on `raw` channels (then a missing `prev_change_id`
    /// marks the snapshot).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The instrument.
    pub instrument_name: String,
    /// When, ms since the epoch.
    pub timestamp: u64,
    /// This notification's id.
    pub change_id: u64,
    /// The previous notification's id (absent on the snapshot).
    #[serde(default)]
    pub prev_change_id: Option<u64>,
    /// Bid levels.
    #[serde(default)]
    pub bids: Vec<BookLevel>,
    /// Ask levels.
    #[serde(default)]
    pub asks: Vec<BookLevel>,
}

impl BookUpdate {
    /// Whether this is the snapshot that starts a book.
    #[must_use]
    pub fn is_snapshot(&self) -> bool {
        match self.kind.as_deref() {
            Some(kind) => kind == "snapshot",
            None => self.prev_change_id.is_none(),
        }
    }
}

/// A public trade (`trades.*` data is an array of these).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Trade {
    /// Trade sequence number, per instrument.
    pub trade_seq: u64,
    /// Trade id.
    pub trade_id: String,
    /// When, ms since the epoch.
    pub timestamp: u64,
    /// The instrument.
    pub instrument_name: String,
    /// Price.
    pub price: f64,
    /// Amount.
    pub amount: f64,
    /// The taker's direction.
    pub direction: Direction,
}

/// An order (`user.orders.*` data, `private/buy`'s `order`, `private/cancel`'s result).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Order {
    /// The order id.
    pub order_id: String,
    /// The instrument.
    pub instrument_name: String,
    /// Buy or sell.
    pub direction: Direction,
    /// `open`, `filled`, `rejected`, `cancelled`, `untriggered`.
    pub order_state: String,
    /// `limit`, `market`, ...
    pub order_type: String,
    /// Amount ordered.
    pub amount: f64,
    /// Amount filled.
    #[serde(default)]
    pub filled_amount: f64,
    /// Limit price (Deribit sends `"market_price"` for some market orders).
    #[serde(default)]
    pub price: Value,
    /// Average fill price.
    #[serde(default)]
    pub average_price: f64,
    /// The user's label.
    #[serde(default)]
    pub label: String,
    /// Created, ms since the epoch.
    #[serde(default)]
    pub creation_timestamp: u64,
    /// Last changed, ms since the epoch.
    #[serde(default)]
    pub last_update_timestamp: u64,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One of the user's trades (`user.trades.*` data is an array of these).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct UserTrade {
    /// Trade id.
    pub trade_id: String,
    /// The order it filled.
    pub order_id: String,
    /// The instrument.
    pub instrument_name: String,
    /// Buy or sell.
    pub direction: Direction,
    /// Price.
    pub price: f64,
    /// Amount.
    pub amount: f64,
    /// Fee.
    #[serde(default)]
    pub fee: f64,
    /// Fee currency.
    #[serde(default)]
    pub fee_currency: String,
    /// When, ms since the epoch.
    pub timestamp: u64,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `private/buy` and `private/sell` results: the order and its immediate fills.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct OrderResult {
    /// The order.
    pub order: Order,
    /// Trades it made at once.
    #[serde(default)]
    pub trades: Vec<UserTrade>,
}

/// `deribit_price_index.{index}` data.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct PriceIndex {
    /// E.g. `btc_usd`.
    pub index_name: String,
    /// The index price.
    pub price: f64,
    /// When, ms since the epoch.
    pub timestamp: u64,
}

/// A position from `private/get_positions`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Position {
    /// The instrument.
    pub instrument_name: String,
    /// `future`, `option`, ...
    #[serde(default)]
    pub kind: String,
    /// Size (negative when short), in USD for futures, coin for options.
    pub size: f64,
    /// `buy`, `sell` or `zero`.
    pub direction: Direction,
    /// Average entry price.
    #[serde(default)]
    pub average_price: f64,
    /// Mark price.
    #[serde(default)]
    pub mark_price: f64,
    /// Unrealised profit and loss.
    #[serde(default)]
    pub floating_profit_loss: f64,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn docs_examples_parse() {
        let ticker: Ticker = serde_json::from_str(
            r#"{"timestamp":1623060194301,"stats":{"volume_usd":284061480,"volume":7871.02139035,
            "price_change":0.7229,"low":35213.5,"high":36824.5},"state":"open","settlement_price":36169.49,
            "open_interest":502097590,"min_price":35898.37,"max_price":36991.72,"mark_price":36446.51,
            "last_price":36457.5,"interest_value":1.7362511643080387,"instrument_name":"BTC-PERPETUAL",
            "index_price":36441.64,"funding_8h":0.0000211,"estimated_delivery_price":36441.64,
            "current_funding":0,"best_bid_price":36442.5,"best_bid_amount":5000,"best_ask_price":36443,
            "best_ask_amount":100}"#,
        )
        .unwrap();
        assert_eq!(ticker.best_ask_price, Some(36443.0));
        assert_eq!(ticker.stats.high, Some(36824.5));

        let snapshot: BookUpdate = serde_json::from_str(
            r#"{"type":"snapshot","timestamp":1554373962454,"instrument_name":"BTC-PERPETUAL",
            "change_id":297217,"bids":[["new",5042.34,30],["new",5041.94,20]],
            "asks":[["new",5042.64,40],["new",5043.3,40]]}"#,
        )
        .unwrap();
        assert!(snapshot.is_snapshot());
        assert_eq!(snapshot.asks[1], BookLevel(LevelAction::New, 5043.3, 40.0));

        let trades: Vec<Trade> = serde_json::from_str(
            r#"[{"trade_seq":30289442,"trade_id":"48079269","timestamp":1590484512188,"tick_direction":2,
            "price":8950,"mark_price":8948.9,"instrument_name":"BTC-PERPETUAL","index_price":8955.88,
            "direction":"sell","amount":10}]"#,
        )
        .unwrap();
        assert_eq!(trades[0].direction, Direction::Sell);

        let order: Order = serde_json::from_str(
            r#"{"time_in_force":"good_til_cancelled","replaced":false,"reduce_only":false,"price":10502.52,
            "post_only":false,"original_order_type":"market","order_type":"limit","order_state":"open",
            "order_id":"5","max_show":200,"last_update_timestamp":1581507423789,"label":"",
            "is_rebalance":false,"is_liquidation":false,"instrument_name":"BTC-PERPETUAL","filled_amount":0,
            "direction":"buy","creation_timestamp":1581507423789,"average_price":0,"api":false,"amount":200}"#,
        )
        .unwrap();
        assert_eq!(order.order_state, "open");

        let index: PriceIndex = serde_json::from_str(
            r#"{"timestamp":1535098298227,"price":6521.17,"index_name":"btc_usd"}"#,
        )
        .unwrap();
        assert_eq!(index.price, 6521.17);
    }

    #[test]
    fn auth_result_hides_tokens() {
        let auth: AuthResult = serde_json::from_str(
            r#"{"access_token":"tok-secret","expires_in":900,"refresh_token":"ref-secret","scope":"connection","token_type":"bearer"}"#,
        )
        .unwrap();
        let debug = format!("{auth:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn raw_book_snapshot_is_recognised_without_type() {
        let raw: BookUpdate = serde_json::from_str(
            r#"{"timestamp":1,"instrument_name":"X","change_id":5,"bids":[],"asks":[]}"#,
        )
        .unwrap();
        assert!(raw.is_snapshot());
    }
}
