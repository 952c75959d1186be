//! [`BybitClient`]: one connection to one Bybit endpoint, with typed subscriptions and order
//! entry.
//!
//! The client is a thin layer over [`nova_core::Client`], which owns the connection: it
//! reconnects with backoff, authenticates on every connect (private and trade), restores every
//! subscription (verifying each ack), correlates order answers by `reqId`, paces orders through
//! the cost-weighted limit and notices a dead peer. Use one client per endpoint: e.g. one on
//! `/v5/public/linear` for market data, one on `/v5/private` for account data, one on
//! `/v5/trade` for orders.

use std::sync::Arc;
use std::time::Duration;

use nova_core::{
    Client, ClientConfig, ClientConfigBuilder, Error, Messages, Operation, Request,
    SubscriptionStream,
};
use serde_json::Value;

use crate::adapter::{BybitAdapter, BybitConfig};
use crate::book_stream::BookStream;
use crate::endpoint::Endpoint;
use crate::error::BybitError;
use crate::subscription::Topic;
use crate::trade::{OrderAck, OrderAmend, OrderCancel, OrderCreate, TradeResponse, trade_request};

/// A connection to one Bybit endpoint. Clones share the connection.
///
/// ```
/// use nova_bybit::{BybitClient, BybitConfig, Endpoint, Push, Topic};
/// use nova_testkit::bybit::BybitSim;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sim = BybitSim::start().await?;
/// let (bybit, _messages) = BybitClient::connect(&sim.endpoint_url(nova_testkit::bybit::Endpoint::Linear),
///     BybitConfig::new(Endpoint::Linear))?;
/// let mut tickers = bybit.subscribe(Topic::tickers("BTCUSDT")).await?;
/// if let Some(message) = tickers.next_message().await {
///     let push = Push::parse(&message)?;
///     assert_eq!(push.topic, "tickers.BTCUSDT");
/// }
/// bybit.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BybitClient {
    inner: Client,
    config: Arc<BybitConfig>,
}

impl BybitClient {
    /// The platform's name: its section in nova's settings and the client's name in logs.
    pub const NAME: &'static str = "bybit";

    /// A configuration builder for `url` with `config`'s options: `max_active_time` in the URL,
    /// the order-entry rate limit on `/v5/trade`, the client named `bybit`.
    pub fn config_builder(url: &str, config: &BybitConfig) -> ClientConfigBuilder {
        let builder = ClientConfig::builder(config.url_with_options(url)).name(Self::NAME);
        if config.endpoint == Endpoint::Trade {
            builder.rate_limit(config.limits.rate_limit())
        } else {
            builder
        }
    }

    /// Connects to `url` in the background with `config`.
    ///
    /// # Errors
    /// When the URL makes an invalid configuration.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn connect(url: &str, config: BybitConfig) -> Result<(Self, Messages), Error> {
        let client_config = Self::config_builder(url, &config).build()?;
        Ok(Self::connect_with(client_config, BybitAdapter::new(config)))
    }

    /// Connects with a configuration and an adapter of one's own making.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn connect_with(client_config: ClientConfig, adapter: BybitAdapter) -> (Self, Messages) {
        let config = Arc::new(adapter.config().clone());
        let (inner, messages) = Client::connect(client_config, adapter);
        (Self { inner, config }, messages)
    }

    /// The endpoint.
    #[must_use]
    pub fn endpoint(&self) -> Endpoint {
        self.config.endpoint
    }

    /// Waits until the connection is open.
    ///
    /// # Errors
    /// [`Error::Timeout`] after `timeout`; [`Error::Stopped`] when the client stopped first.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.wait_connected(timeout).await
    }

    /// Subscribes to `topic` and waits for its ack. The stream yields the topic's pushes (read
    /// them with [`Push::parse`](crate::Push::parse)), survives reconnects, and reports book
    /// gaps and their closing; dropping it unsubscribes.
    ///
    /// # Errors
    /// [`Error::SubscriptionRefused`] when Bybit (or the adapter's limits) refuse it.
    pub async fn subscribe(&self, topic: impl Into<Topic>) -> Result<SubscriptionStream, Error> {
        self.inner
            .subscribe(topic.into().to_string(), Value::Null)
            .await
    }

    /// Subscribes to an `orderbook.*` topic and maintains its [`OrderBook`](crate::OrderBook).
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe); [`Error::SubscriptionRefused`] for a topic that is no
    /// book.
    pub async fn subscribe_book(&self, topic: impl Into<Topic>) -> Result<BookStream, Error> {
        let topic = topic.into();
        if !topic.is_book() {
            return Err(Error::SubscriptionRefused {
                channel: topic.to_string(),
                reason: "not an orderbook topic".to_owned(),
            });
        }
        let stream = self.subscribe(topic.clone()).await?;
        Ok(BookStream::new(
            self.inner.clone(),
            topic.to_string(),
            stream,
            self.config.book_continuity,
        ))
    }

    /// Sends `op` with `arg` on `/v5/trade` and returns Bybit's answer, refusals included as
    /// [`BybitError::Rejected`]. `idempotent` requests are sent again after a reconnect when
    /// the connection broke before their answer.
    ///
    /// # Errors
    /// [`BybitError::WrongEndpoint`] on another endpoint; [`BybitError::Rejected`];
    /// [`BybitError::Nova`] for `Timeout`, `Disconnected`, `RateLimited`, `Stopped`.
    pub async fn trade(
        &self,
        op: &str,
        arg: Value,
        idempotent: bool,
    ) -> Result<TradeResponse, BybitError> {
        if self.config.endpoint != Endpoint::Trade {
            return Err(BybitError::WrongEndpoint(format!(
                "{op} goes to /v5/trade, not {}",
                self.config.endpoint
            )));
        }
        let window = u64::try_from(self.config.recv_window.as_millis()).unwrap_or(u64::MAX);
        let referer = self.config.referer.clone();
        let op_name = op.to_owned();
        let mut request = Request::new(move |id| {
            let body = trade_request(&id.to_string(), &op_name, &arg, window, referer.as_deref());
            nova_core::Message::text(body.to_string())
        })
        .operation(Operation::Order);
        if idempotent {
            request = request.idempotent();
        }
        let answer = self.inner.request(request).await?;
        let response: TradeResponse = answer
            .json()
            .map_err(|e| BybitError::Decode(e.to_string()))?;
        response.check()
    }

    /// `order.create`. Not sent again after a disconnect (see [`crate::trade`]: the
    /// `orderLinkId` is the idempotency key).
    ///
    /// # Errors
    /// As [`trade`](Self::trade).
    pub async fn create_order(&self, order: &OrderCreate) -> Result<OrderAck, BybitError> {
        let response = self.trade("order.create", order.to_arg(), false).await?;
        serde_json::from_value(response.data).map_err(|e| BybitError::Decode(e.to_string()))
    }

    /// `order.amend` (sent again after a reconnect).
    ///
    /// # Errors
    /// As [`trade`](Self::trade).
    pub async fn amend_order(&self, amend: &OrderAmend) -> Result<OrderAck, BybitError> {
        let response = self.trade("order.amend", amend.to_arg(), true).await?;
        serde_json::from_value(response.data).map_err(|e| BybitError::Decode(e.to_string()))
    }

    /// `order.cancel` (sent again after a reconnect).
    ///
    /// # Errors
    /// As [`trade`](Self::trade).
    pub async fn cancel_order(&self, cancel: &OrderCancel) -> Result<OrderAck, BybitError> {
        let response = self.trade("order.cancel", cancel.to_arg(), true).await?;
        serde_json::from_value(response.data).map_err(|e| BybitError::Decode(e.to_string()))
    }

    /// Closes the connection (code 1000) and stops the client.
    ///
    /// # Errors
    /// [`Error::Stopped`] when the client had stopped already.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.close(1000, "closed by the application").await
    }

    /// The nova client underneath: state, lifecycle events, raw sends.
    #[must_use]
    pub fn inner(&self) -> &Client {
        &self.inner
    }
}
