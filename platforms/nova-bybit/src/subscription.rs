//! Topics, and [`BybitAdapter`]'s subscription callbacks.
//!
//! A subscription is `{"req_id":"7","op":"subscribe","args":["orderbook.50.BTCUSDT"]}`; its ack
//! repeats `req_id` and says `success` (option endpoints answer a `COMMAND_RESP` without
//! `req_id`, listing `successTopics`: see [`crate::message`]). One subscription is one request
//! with one topic, so spot's limit of 10 args per request always holds; the adapter refuses a
//! subscription that would take a public connection past 21,000 characters of args, or an
//! option connection past 2000 topics.
//!
//! Order books are sequenced for the runtime's gap mechanism: a `snapshot` (or a push with
//! `u == 1`, Bybit's service restart) is a [`Sequence::snapshot`], a `delta` must be the last
//! `u` plus one ([`Sequence::next`]). A break calls `on_gap`, which subscribes again for a fresh
//! snapshot; the consumer sees `Gap` then `GapClosed`. With
//! [`BybitConfig::check_crossed_books`](crate::BybitConfig::check_crossed_books) the adapter
//! also keeps a shadow book per book subscription and reports a crossed book as a break, so it
//! is resubscribed the same way.

use std::fmt;

use nova_core::{
    Context, Data, Gap, GapAction, HandlerError, Message, MessageType, RequestId, Sequence,
    Subscription, SubscriptionHandler,
};
use serde_json::{Value, json};

use crate::adapter::BybitAdapter;
use crate::book::{BookError, BookMessage};
use crate::endpoint::Endpoint;
use crate::message::{Ack, peek_book};

/// The operation that subscribes.
pub const SUBSCRIBE_OP: &str = "subscribe";
/// The operation that unsubscribes.
pub const UNSUBSCRIBE_OP: &str = "unsubscribe";
/// Most characters of args on one public connection (Bybit's docs).
pub const ARGS_CHARS_LIMIT: usize = 21_000;
/// Most topics on one option connection (Bybit's docs).
pub const OPTION_TOPICS_LIMIT: usize = 2000;

/// A Bybit topic, typed. [`Topic::parse`] reads any name; names it does not know are kept as
/// [`Topic::Other`].
///
/// ```
/// use nova_bybit::Topic;
///
/// let book = Topic::orderbook(50, "BTCUSDT");
/// assert_eq!(book.to_string(), "orderbook.50.BTCUSDT");
/// assert_eq!(Topic::parse("orderbook.50.BTCUSDT"), book);
/// assert_eq!(Topic::parse("order.linear"), Topic::Order { category: Some("linear".into()) });
/// assert!(Topic::parse("wallet").is_private());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Topic {
    /// `tickers.{symbol}`
    Tickers {
        /// The symbol.
        symbol: String,
    },
    /// `publicTrade.{symbol}` (options: `publicTrade.{baseCoin}`)
    PublicTrade {
        /// The symbol or base coin.
        symbol: String,
    },
    /// `orderbook.{depth}.{symbol}`
    OrderBook {
        /// Levels per side (1, 50, 200, 1000; options 25, 100).
        depth: u32,
        /// The symbol.
        symbol: String,
    },
    /// `kline.{interval}.{symbol}`
    Kline {
        /// `1 3 5 15 30 60 120 240 360 720 D W M`.
        interval: String,
        /// The symbol.
        symbol: String,
    },
    /// `allLiquidation.{symbol}`
    AllLiquidation {
        /// The symbol.
        symbol: String,
    },
    /// `order` or `order.{category}`
    Order {
        /// `spot`, `linear`, `inverse`, `option`; `None`: all-in-one.
        category: Option<String>,
    },
    /// `execution` or `execution.{category}`
    Execution {
        /// The category; `None`: all-in-one.
        category: Option<String>,
    },
    /// `position` or `position.{category}`
    Position {
        /// The category; `None`: all-in-one.
        category: Option<String>,
    },
    /// `wallet`
    Wallet,
    /// Any other topic, by name.
    Other(String),
}

impl Topic {
    /// `tickers.{symbol}`.
    #[must_use]
    pub fn tickers(symbol: impl Into<String>) -> Self {
        Topic::Tickers {
            symbol: symbol.into(),
        }
    }

    /// `publicTrade.{symbol}`.
    #[must_use]
    pub fn public_trade(symbol: impl Into<String>) -> Self {
        Topic::PublicTrade {
            symbol: symbol.into(),
        }
    }

    /// `orderbook.{depth}.{symbol}`.
    #[must_use]
    pub fn orderbook(depth: u32, symbol: impl Into<String>) -> Self {
        Topic::OrderBook {
            depth,
            symbol: symbol.into(),
        }
    }

    /// `kline.{interval}.{symbol}`.
    #[must_use]
    pub fn kline(interval: impl Into<String>, symbol: impl Into<String>) -> Self {
        Topic::Kline {
            interval: interval.into(),
            symbol: symbol.into(),
        }
    }

    /// `allLiquidation.{symbol}`.
    #[must_use]
    pub fn all_liquidation(symbol: impl Into<String>) -> Self {
        Topic::AllLiquidation {
            symbol: symbol.into(),
        }
    }

    /// Reads a topic name.
    #[must_use]
    pub fn parse(name: &str) -> Topic {
        let other = || Topic::Other(name.to_owned());
        let mut parts = name.splitn(3, '.');
        let (Some(head), second, third) = (parts.next(), parts.next(), parts.next()) else {
            return other();
        };
        let category = |c: Option<&str>| c.map(str::to_owned);
        match (head, second, third) {
            ("tickers", Some(s), None) => Topic::tickers(s),
            ("publicTrade", Some(s), None) => Topic::public_trade(s),
            ("orderbook", Some(d), Some(s)) => match d.parse() {
                Ok(depth) => Topic::orderbook(depth, s),
                Err(_) => other(),
            },
            ("kline", Some(i), Some(s)) => Topic::kline(i, s),
            ("allLiquidation", Some(s), None) => Topic::all_liquidation(s),
            ("order", c, None) => Topic::Order {
                category: category(c),
            },
            ("execution", c, None) => Topic::Execution {
                category: category(c),
            },
            ("position", c, None) => Topic::Position {
                category: category(c),
            },
            ("wallet", None, None) => Topic::Wallet,
            _ => other(),
        }
    }

    /// Whether this is an account topic (`/v5/private`).
    #[must_use]
    pub fn is_private(&self) -> bool {
        matches!(
            self,
            Topic::Order { .. } | Topic::Execution { .. } | Topic::Position { .. } | Topic::Wallet
        )
    }

    /// Whether this is an order book topic.
    #[must_use]
    pub fn is_book(&self) -> bool {
        matches!(self, Topic::OrderBook { .. })
    }

    /// Whether the topic can be subscribed on `endpoint` (unknown topics are left to the
    /// server to judge).
    #[must_use]
    pub fn fits(&self, endpoint: Endpoint) -> bool {
        match self {
            Topic::Other(_) => endpoint != Endpoint::Trade,
            t if t.is_private() => endpoint == Endpoint::Private,
            _ => endpoint.category().is_some(),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, head: &str, c: &Option<String>| match c {
            Some(c) => write!(f, "{head}.{c}"),
            None => f.write_str(head),
        };
        match self {
            Topic::Tickers { symbol } => write!(f, "tickers.{symbol}"),
            Topic::PublicTrade { symbol } => write!(f, "publicTrade.{symbol}"),
            Topic::OrderBook { depth, symbol } => write!(f, "orderbook.{depth}.{symbol}"),
            Topic::Kline { interval, symbol } => write!(f, "kline.{interval}.{symbol}"),
            Topic::AllLiquidation { symbol } => write!(f, "allLiquidation.{symbol}"),
            Topic::Order { category } => with(f, "order", category),
            Topic::Execution { category } => with(f, "execution", category),
            Topic::Position { category } => with(f, "position", category),
            Topic::Wallet => f.write_str("wallet"),
            Topic::Other(name) => f.write_str(name),
        }
    }
}

impl From<&str> for Topic {
    fn from(name: &str) -> Self {
        Topic::parse(name)
    }
}

impl From<String> for Topic {
    fn from(name: String) -> Self {
        Topic::parse(&name)
    }
}

/// `{"req_id":"<id>","op":"<op>","args":[topics]}`.
#[must_use]
pub fn op_request(id: &RequestId, op: &str, args: &[&str]) -> Message {
    Message::text(json!({"req_id": id.to_string(), "op": op, "args": args}).to_string())
}

impl SubscriptionHandler for BybitAdapter {
    /// `subscribe` with this topic alone (so no request exceeds spot's 10 args), after checking
    /// it fits the endpoint and the connection's limits.
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        _options: &Value,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let name = subscription.channel.as_str();
        let topic = Topic::parse(name);
        let endpoint = self.endpoint();
        if !topic.fits(endpoint) {
            return Err(HandlerError::new(format!(
                "{name} cannot be subscribed on {endpoint}"
            )));
        }
        if endpoint.category().is_some() {
            let chars = self.args_chars + name.len();
            if chars > ARGS_CHARS_LIMIT {
                return Err(HandlerError::new(format!(
                    "{name}: the connection's args would reach {chars} characters (Bybit's limit: {ARGS_CHARS_LIMIT})"
                )));
            }
            if endpoint == Endpoint::Option && self.topics.len() >= OPTION_TOPICS_LIMIT {
                return Err(HandlerError::new(format!(
                    "{name}: an option connection takes at most {OPTION_TOPICS_LIMIT} topics"
                )));
            }
        }
        if self.topics.insert(name.to_owned()) {
            self.args_chars += name.len();
        }
        self.expect_ack(&id);
        if topic.is_book() {
            self.reset_shadow(name);
        }
        Ok(op_request(&id, SUBSCRIBE_OP, &[name]))
    }

    /// `unsubscribe` with this topic.
    fn unsubscribe(
        &mut self,
        subscription: &Subscription,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let name = subscription.channel.as_str();
        if self.topics.remove(name) {
            self.args_chars = self.args_chars.saturating_sub(name.len());
        }
        self.expect_ack(&id);
        Ok(Some(op_request(&id, UNSUBSCRIBE_OP, &[name])))
    }

    /// An ack is good when it says `success` (and, on option endpoints, lists the topic among
    /// `successTopics`); it was matched to this subscription by `req_id` (or, on option
    /// endpoints, by order) before this is called.
    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let ack = Ack::parse(response)
            .map_err(|e| HandlerError::new(format!("bad subscribe ack: {e}")))?;
        let topic = &subscription.channel;
        let listed = ack
            .success_topics
            .as_ref()
            .is_none_or(|t| t.iter().any(|t| t == topic));
        if ack.success && listed {
            Ok(None)
        } else {
            self.topics.remove(topic.as_str());
            let reason = if ack.ret_msg.is_empty() {
                "refused"
            } else {
                ack.ret_msg.as_str()
            };
            Err(HandlerError::new(format!(
                "subscribing to {topic} failed: {reason}"
            )))
        }
    }

    /// Books only (pushes are sequenced by `message_type` already; this serves messages the
    /// runtime got otherwise): a snapshot (or `u == 1`) starts afresh, a delta must be the last
    /// `u` + 1.
    fn sequence(&self, subscription: &Subscription, message: &Message) -> Option<Sequence> {
        if !subscription.channel.starts_with("orderbook.") {
            return None;
        }
        let (u, snapshot) = peek_book(message)?;
        Some(self.book_sequence(u, snapshot))
    }

    /// A break or a crossed book subscribes again for a fresh snapshot. Right after a reconnect
    /// nothing is needed: the restore subscribed again and Bybit sends a snapshot first.
    fn on_gap(
        &mut self,
        subscription: &Subscription,
        gap: &Gap,
        _ctx: &mut Context<'_>,
    ) -> GapAction {
        if gap.got.is_none() {
            // After a reconnect the restore subscribed again and Bybit sends a snapshot first:
            // the consumer is told, and the gap closes at that snapshot.
            return if gap.last.is_some() {
                GapAction::AwaitSnapshot
            } else {
                GapAction::Ignore
            };
        }
        let crossed = gap.claimed_previous.is_some() && gap.claimed_previous == gap.got;
        tracing::info!(topic = %subscription.channel, last = ?gap.last, got = ?gap.got, crossed,
            "bybit book break: subscribing again for a snapshot");
        GapAction::Resubscribe
    }
}

/// The deferred parse of a book push (see `book_push`).
fn book_message(message: &Message) -> Option<Data> {
    BookMessage::parse(message).ok().map(Data::new)
}

impl BybitAdapter {
    /// An `orderbook.*` push, looked at once: parsed into a [`BookMessage`] (handed to the
    /// stream), its sequence position, and, when enabled, the crossed-book check on the shadow
    /// book (a crossed book breaks the sequence on purpose: the runtime then resubscribes).
    /// Without the check only the position is read here, and the `BookMessage` is parsed on the
    /// consumer's side ([`Data::deferred`]).
    pub(crate) fn book_push<'m>(&mut self, topic: &'m str, message: &Message) -> MessageType<'m> {
        if !self.config.check_crossed_books {
            // Nothing here needs the levels: the position is read alone, and the push is parsed
            // once, on the consumer's task, when it asks for the `BookMessage`.
            return match peek_book(message) {
                Some((u, snapshot)) => MessageType::data(topic, Data::deferred(book_message))
                    .with_sequence(self.book_sequence(u, snapshot)),
                None => MessageType::subscription(topic),
            };
        }
        let Ok(parsed) = BookMessage::parse(message) else {
            return MessageType::subscription(topic);
        };
        let u = parsed.data.u;
        let mut position = self.book_sequence(u, parsed.kind == "snapshot");
        if self.config.check_crossed_books {
            if let Some(crossed) = self.shadow_apply(topic, &parsed) {
                tracing::warn!(topic, u, %crossed, "bybit book crossed: resubscribing");
                position = Sequence::follows(u, u);
            }
        }
        MessageType::data(topic, Data::new(parsed)).with_sequence(position)
    }

    /// A book push's position: a snapshot (or `u == 1`) starts afresh, a delta follows on.
    fn book_sequence(&self, u: u64, snapshot: bool) -> Sequence {
        if snapshot || u == 1 {
            Sequence::snapshot(u)
        } else if self.config.book_continuity == crate::BookContinuity::Increasing {
            Sequence::monotonic(u)
        } else {
            Sequence::next(u)
        }
    }

    /// Applies a book push to the shadow book of `topic`; returns why the book is crossed
    /// after it, if it is.
    fn shadow_apply(&self, topic: &str, parsed: &BookMessage) -> Option<BookError> {
        let mut shadows = self.shadows.lock().ok()?;
        let book = shadows.entry(topic.to_owned()).or_default();
        match book.apply(parsed) {
            Ok(_) => book.check_crossed().err(),
            // Breaks are the runtime's to see; the shadow waits for the next snapshot.
            Err(_) => None,
        }
    }

    fn reset_shadow(&self, topic: &str) {
        if let Ok(mut shadows) = self.shadows.lock() {
            shadows.remove(topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use nova_core::testing::TestContext;
    use nova_core::{MessageHandler, MessageType};

    use super::*;
    use crate::BybitConfig;

    fn adapter(endpoint: Endpoint) -> BybitAdapter {
        BybitAdapter::new(BybitConfig::new(endpoint))
    }

    fn subscribe(a: &mut BybitAdapter, topic: &str, id: u64) -> Result<Value, HandlerError> {
        let sub = Subscription::new(id.to_string(), topic);
        let mut ctx = TestContext::new();
        let message = ctx.run(|ctx| a.subscribe(&sub, &Value::Null, RequestId::Num(id), ctx))?;
        assert!(
            ctx.sent_texts().is_empty(),
            "the request is returned, not queued"
        );
        Ok(message.json()?)
    }

    fn judge(a: &mut BybitAdapter, topic: &str, ack: &str) -> Result<Option<String>, HandlerError> {
        let sub = Subscription::new("1", topic);
        TestContext::new().run(|ctx| a.handle_subscription_response(&sub, &Message::text(ack), ctx))
    }

    #[test]
    fn subscribe_carries_the_runtimes_id_as_req_id_and_one_topic() {
        let mut a = adapter(Endpoint::Spot);
        let v = subscribe(&mut a, "orderbook.50.BTCUSDT", 7).expect("a public topic");
        assert_eq!(
            v,
            json!({"req_id": "7", "op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
        );
        assert!(a.topics.contains("orderbook.50.BTCUSDT"));

        let sub = Subscription::new("1", "orderbook.50.BTCUSDT");
        let mut ctx = TestContext::new();
        let message = ctx
            .run(|ctx| a.unsubscribe(&sub, RequestId::Num(8), ctx))
            .expect("built")
            .expect("an unsubscribe request");
        assert_eq!(
            message.json::<Value>().ok(),
            Some(json!({"req_id": "8", "op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]}))
        );
        assert!(a.topics.is_empty());
        assert_eq!(a.args_chars, 0);
    }

    #[test]
    fn topics_must_fit_the_endpoint_and_its_limits() {
        let mut public = adapter(Endpoint::Linear);
        assert!(subscribe(&mut public, "order", 1).is_err(), "private topic");
        let mut private = adapter(Endpoint::Private);
        assert!(
            subscribe(&mut private, "tickers.BTCUSDT", 2).is_err(),
            "public topic"
        );
        assert!(subscribe(&mut private, "order.linear", 3).is_ok());
        let mut trade = adapter(Endpoint::Trade);
        assert!(
            subscribe(&mut trade, "something", 4).is_err(),
            "nothing on trade"
        );

        let mut full = adapter(Endpoint::Linear);
        let long = format!("tickers.{}", "X".repeat(ARGS_CHARS_LIMIT));
        let refused = subscribe(&mut full, &long, 5).expect_err("past 21,000 characters");
        assert!(refused.to_string().contains("21000"), "{refused}");
        assert!(full.topics.is_empty());
    }

    #[test]
    fn acks_are_checked_for_success_and_option_topics() {
        let mut a = adapter(Endpoint::Linear);
        let ok = r#"{"success":true,"ret_msg":"","conn_id":"c","req_id":"1","op":"subscribe"}"#;
        assert!(matches!(judge(&mut a, "tickers.X", ok), Ok(None)));
        subscribe(&mut a, "tickers.X", 2).expect("subscribed");
        let refused = r#"{"success":false,"ret_msg":"error:handler not found,topic:tickers.X","conn_id":"c","req_id":"2","op":"subscribe"}"#;
        let error = judge(&mut a, "tickers.X", refused).expect_err("refused");
        assert!(error.to_string().contains("handler not found"), "{error}");
        assert!(
            !a.topics.contains("tickers.X"),
            "a refused topic is forgotten"
        );

        let mut o = adapter(Endpoint::Option);
        subscribe(&mut o, "tickers.BTC-1JAN30-1-C", 3).expect("subscribed");
        let resp = r#"{"success":true,"conn_id":"c","data":{"failTopics":[],"successTopics":["tickers.BTC-1JAN30-1-C"]},"type":"COMMAND_RESP"}"#;
        assert_eq!(
            o.message_type(&Message::text(resp)),
            MessageType::Response {
                id: RequestId::Num(3)
            },
            "an option ack is matched to the oldest request in flight"
        );
        assert!(matches!(
            judge(&mut o, "tickers.BTC-1JAN30-1-C", resp),
            Ok(None)
        ));
        assert!(
            judge(&mut o, "tickers.ETH-1JAN30-1-C", resp).is_err(),
            "a topic missing from successTopics failed"
        );
    }
}
