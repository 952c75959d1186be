//! Typed pushes, with the raw JSON kept.
//!
//! [`Push::parse`] reads any topic push into its envelope (`topic`, `type`, `ts`, `cs`) and
//! keeps the message as received ([`Push::raw`]); [`Push::event`] decodes the data into a
//! [`BybitEvent`] for the topics this crate knows. Numbers stay strings as Bybit sends them
//! (decimal prices and sizes are not floats); fields a `delta` leaves out are `None`. Fields
//! not listed here are in the raw JSON.

use nova_core::{HandlerError, Message};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::book::BookMessage;
use crate::subscription::Topic;

/// A topic push: the envelope, and the message as received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Push {
    /// The topic.
    pub topic: String,
    /// `snapshot` or `delta` (private pushes have none).
    pub kind: Option<String>,
    /// The server's timestamp (`ts`, or `creationTime` of private pushes), ms.
    pub ts: Option<u64>,
    /// The cross sequence of tickers.
    pub cs: Option<u64>,
    raw: Message,
}

#[derive(Deserialize)]
struct PushEnvelope {
    topic: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(default, rename = "creationTime")]
    creation_time: Option<u64>,
    #[serde(default)]
    cs: Option<u64>,
}

#[derive(Deserialize)]
struct DataOf<T> {
    data: T,
}

impl Push {
    /// Reads a push.
    ///
    /// # Errors
    /// When the message is not JSON or has no `topic`.
    pub fn parse(message: &Message) -> Result<Self, HandlerError> {
        let e: PushEnvelope = message.json()?;
        Ok(Self {
            topic: e.topic,
            kind: e.kind,
            ts: e.ts.or(e.creation_time),
            cs: e.cs,
            raw: message.clone(),
        })
    }

    /// The message exactly as received.
    #[must_use]
    pub fn raw(&self) -> &Message {
        &self.raw
    }

    /// The raw JSON text.
    #[must_use]
    pub fn raw_text(&self) -> &str {
        self.raw.as_text().unwrap_or("")
    }

    /// The topic, typed.
    #[must_use]
    pub fn typed_topic(&self) -> Topic {
        Topic::parse(&self.topic)
    }

    fn data<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        Ok(self.raw.json::<DataOf<T>>()?.data)
    }

    /// Decodes the data for the topic.
    ///
    /// # Errors
    /// When the data does not have the topic's shape.
    pub fn event(&self) -> Result<BybitEvent, HandlerError> {
        Ok(match self.typed_topic() {
            Topic::Tickers { .. } => BybitEvent::Ticker(Box::new(self.data()?)),
            Topic::PublicTrade { .. } => BybitEvent::Trades(self.data()?),
            Topic::OrderBook { .. } => BybitEvent::Book(
                BookMessage::parse(&self.raw).map_err(|e| HandlerError::new(e.to_string()))?,
            ),
            Topic::Kline { .. } => BybitEvent::Klines(self.data()?),
            Topic::AllLiquidation { .. } => BybitEvent::Liquidations(self.data()?),
            Topic::Order { .. } => BybitEvent::Orders(self.data()?),
            Topic::Execution { .. } => BybitEvent::Executions(self.data()?),
            Topic::Position { .. } => BybitEvent::Positions(self.data()?),
            Topic::Wallet => BybitEvent::Wallet(self.data()?),
            Topic::Other(_) => BybitEvent::Other(self.data()?),
        })
    }
}

/// A push's data, typed by topic.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BybitEvent {
    /// `tickers.*`
    Ticker(Box<Ticker>),
    /// `publicTrade.*`
    Trades(Vec<PublicTrade>),
    /// `orderbook.*` (apply it to an [`OrderBook`](crate::OrderBook))
    Book(BookMessage),
    /// `kline.*`
    Klines(Vec<Kline>),
    /// `allLiquidation.*`
    Liquidations(Vec<Liquidation>),
    /// `order*`
    Orders(Vec<OrderUpdate>),
    /// `execution*`
    Executions(Vec<Execution>),
    /// `position*`
    Positions(Vec<PositionUpdate>),
    /// `wallet`
    Wallet(Vec<WalletUpdate>),
    /// Any other topic's `data`.
    Other(Value),
}

/// `tickers.*` data (all categories; a linear `delta` carries only what changed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Ticker {
    /// The symbol.
    pub symbol: String,
    /// Last traded price.
    pub last_price: Option<String>,
    /// Best bid (linear/inverse).
    pub bid1_price: Option<String>,
    /// Best bid size (linear/inverse).
    pub bid1_size: Option<String>,
    /// Best ask (linear/inverse).
    pub ask1_price: Option<String>,
    /// Best ask size (linear/inverse).
    pub ask1_size: Option<String>,
    /// Best bid (option).
    pub bid_price: Option<String>,
    /// Best ask (option).
    pub ask_price: Option<String>,
    /// Mark price.
    pub mark_price: Option<String>,
    /// Index price.
    pub index_price: Option<String>,
    /// 24 h high.
    pub high_price24h: Option<String>,
    /// 24 h low.
    pub low_price24h: Option<String>,
    /// Price 24 h ago.
    pub prev_price24h: Option<String>,
    /// 24 h change, a fraction.
    pub price24h_pcnt: Option<String>,
    /// 24 h volume.
    pub volume24h: Option<String>,
    /// 24 h turnover.
    pub turnover24h: Option<String>,
    /// Funding rate (perpetuals).
    pub funding_rate: Option<String>,
}

/// One `publicTrade.*` trade.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PublicTrade {
    /// Trade time (ms).
    #[serde(rename = "T")]
    pub time: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Taker side, `Buy` or `Sell`.
    #[serde(rename = "S")]
    pub side: String,
    /// Size.
    #[serde(rename = "v")]
    pub size: String,
    /// Price.
    #[serde(rename = "p")]
    pub price: String,
    /// Trade id.
    #[serde(rename = "i")]
    pub id: String,
    /// Block trade.
    #[serde(rename = "BT", default)]
    pub block_trade: bool,
    /// Cross sequence.
    #[serde(default)]
    pub seq: Option<u64>,
}

/// One `kline.*` candle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Kline {
    /// Start (ms).
    pub start: u64,
    /// End (ms).
    pub end: u64,
    /// Interval.
    pub interval: String,
    /// Open.
    pub open: String,
    /// Close.
    pub close: String,
    /// High.
    pub high: String,
    /// Low.
    pub low: String,
    /// Volume.
    pub volume: String,
    /// Turnover.
    pub turnover: String,
    /// Whether the candle is closed.
    pub confirm: bool,
    /// Time of this push (ms).
    pub timestamp: u64,
}

/// One `allLiquidation.*` liquidation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Liquidation {
    /// Time (ms).
    #[serde(rename = "T")]
    pub time: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Side of the liquidated position's order.
    #[serde(rename = "S")]
    pub side: String,
    /// Size.
    #[serde(rename = "v")]
    pub size: String,
    /// Price.
    #[serde(rename = "p")]
    pub price: String,
}

/// One order of an `order` push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct OrderUpdate {
    /// Category.
    pub category: String,
    /// Symbol.
    pub symbol: String,
    /// Bybit's order id.
    pub order_id: String,
    /// The client's id (the idempotency key of a create).
    pub order_link_id: String,
    /// `Buy` / `Sell`.
    pub side: String,
    /// `Limit` / `Market`.
    pub order_type: String,
    /// Price.
    pub price: String,
    /// Quantity.
    pub qty: String,
    /// `New`, `PartiallyFilled`, `Filled`, `Cancelled`, ...
    pub order_status: String,
    /// Filled quantity.
    pub cum_exec_qty: String,
    /// Quantity still open.
    pub leaves_qty: String,
    /// Average fill price.
    pub avg_price: String,
    /// Time in force.
    pub time_in_force: String,
    /// Updated (ms, as a string).
    pub updated_time: String,
}

/// One fill of an `execution` push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Execution {
    /// Category.
    pub category: String,
    /// Symbol.
    pub symbol: String,
    /// Execution id.
    pub exec_id: String,
    /// Order id.
    pub order_id: String,
    /// The client's order id.
    pub order_link_id: String,
    /// Side.
    pub side: String,
    /// Fill price.
    pub exec_price: String,
    /// Fill size.
    pub exec_qty: String,
    /// `Trade`, `Funding`, ...
    pub exec_type: String,
    /// Time (ms, as a string).
    pub exec_time: String,
}

/// One position of a `position` push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct PositionUpdate {
    /// Category.
    pub category: String,
    /// Symbol.
    pub symbol: String,
    /// `Buy`, `Sell`, or empty when flat.
    pub side: String,
    /// Size.
    pub size: String,
    /// Entry price.
    pub avg_price: String,
}

/// One account of a `wallet` push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct WalletUpdate {
    /// `UNIFIED`, `CONTRACT`, ...
    pub account_type: String,
    /// Total equity.
    pub total_equity: String,
    /// Per coin.
    pub coin: Vec<WalletCoin>,
}

/// One coin of a [`WalletUpdate`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct WalletCoin {
    /// The coin.
    pub coin: String,
    /// Balance.
    pub wallet_balance: String,
    /// Equity.
    pub equity: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_examples_decode() {
        let ticker = Message::text(
            r#"{"topic":"tickers.BTCUSDT","ts":1673853746003,"type":"snapshot","cs":2588407389,"data":{"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99","lowPrice24h":"20575","prevPrice24h":"20704.93","volume24h":"6780.866843","turnover24h":"141946527.22907118","price24hPcnt":"0.0196","usdIndexPrice":"21120.2400136"}}"#,
        );
        let push = Push::parse(&ticker).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (push.cs, push.ts),
            (Some(2_588_407_389), Some(1_673_853_746_003))
        );
        assert_eq!(push.raw_text(), ticker.as_text().unwrap_or(""));
        let Ok(BybitEvent::Ticker(t)) = push.event() else {
            panic!("a ticker")
        };
        assert_eq!(t.last_price.as_deref(), Some("21109.77"));

        let trade = Message::text(
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}"#,
        );
        let Ok(BybitEvent::Trades(trades)) = Push::parse(&trade).and_then(|p| p.event()) else {
            panic!("trades")
        };
        assert_eq!(trades[0].price, "16578.50");

        let kline = Message::text(
            r#"{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}"#,
        );
        assert!(
            matches!(Push::parse(&kline).and_then(|p| p.event()), Ok(BybitEvent::Klines(k)) if k[0].interval == "5")
        );

        let order = Message::text(
            r#"{"id":"5923240c6880ab-c59f-420b-9adb-3639adc9dd90","topic":"order","creationTime":1672364262474,"data":[{"symbol":"ETH-30DEC22-1400-C","orderId":"5cf98598-39a7-459e-97bf-76ca765ee020","side":"Sell","orderType":"Market","orderStatus":"Filled","category":"option"}]}"#,
        );
        let push = Push::parse(&order).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(push.ts, Some(1_672_364_262_474));
        assert!(matches!(push.event(), Ok(BybitEvent::Orders(o)) if o[0].order_status == "Filled"));

        assert!(Push::parse(&Message::text("[]")).is_err());
        let bad = Push::parse(&Message::text(r#"{"topic":"tickers.X","data":7}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(bad.event().is_err());
    }
}
