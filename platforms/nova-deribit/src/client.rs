//! [`DeribitClient`]: a nova [`Client`] driven by the [`DeribitAdapter`], with typed requests.
//!
//! Each request is a JSON-RPC call whose rate-limit cost follows its method
//! ([`operation_of`]); read-only calls are marked idempotent, so a call cut off by a reconnect is
//! sent again once the connection is back. Orders are not: a cut-off order fails with
//! `Disconnected` and the caller decides (it may have been executed).

use std::time::Duration;

use nova_core::{Client, ClientConfig, ClientConfigBuilder, Message, Request, SubscriptionStream};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::adapter::{DeribitAdapter, DeribitConfig};
use crate::error::DeribitError;
use crate::message::response_of;
use crate::rate_limit::operation_of;
use crate::subscription::Channel;
use crate::types::{Instrument, Kind, Order, OrderResult, Position, Ticker};

/// Deribit's production WebSocket endpoint.
pub const PRODUCTION_URL: &str = "wss://www.deribit.com/ws/api/v2";
/// Deribit's testnet WebSocket endpoint.
pub const TESTNET_URL: &str = "wss://test.deribit.com/ws/api/v2";

/// The type of an order.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum OrderType {
    /// A limit order at this price.
    Limit(f64),
    /// A market order.
    Market,
}

/// The parameters of `private/buy` and `private/sell`.
///
/// ```
/// use nova_deribit::OrderRequest;
///
/// let order = OrderRequest::limit("BTC-PERPETUAL", 10.0, 60_000.0).label("grid-1").post_only();
/// let params = order.params();
/// assert_eq!(params["type"], "limit");
/// assert_eq!(params["price"], 60_000.0);
/// assert_eq!(params["post_only"], true);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub struct OrderRequest {
    /// The instrument.
    pub instrument_name: String,
    /// Amount (USD for inverse futures, coin for options).
    pub amount: f64,
    /// Limit or market.
    pub order_type: OrderType,
    /// A label of the user's (up to 64 characters).
    pub label: Option<String>,
    /// Only add liquidity.
    pub post_only: bool,
    /// Only reduce a position.
    pub reduce_only: bool,
}

impl OrderRequest {
    /// A limit order.
    pub fn limit(instrument: impl Into<String>, amount: f64, price: f64) -> Self {
        Self {
            instrument_name: instrument.into(),
            amount,
            order_type: OrderType::Limit(price),
            label: None,
            post_only: false,
            reduce_only: false,
        }
    }

    /// A market order.
    pub fn market(instrument: impl Into<String>, amount: f64) -> Self {
        Self {
            order_type: OrderType::Market,
            ..Self::limit(instrument, amount, 0.0)
        }
    }

    /// Sets [`label`](Self::label).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets [`post_only`](Self::post_only).
    pub fn post_only(mut self) -> Self {
        self.post_only = true;
        self
    }

    /// Sets [`reduce_only`](Self::reduce_only).
    pub fn reduce_only(mut self) -> Self {
        self.reduce_only = true;
        self
    }

    /// The request's params.
    #[must_use]
    pub fn params(&self) -> Value {
        let mut p = json!({"instrument_name": self.instrument_name, "amount": self.amount});
        match self.order_type {
            OrderType::Limit(price) => {
                p["type"] = json!("limit");
                p["price"] = json!(price);
            }
            OrderType::Market => p["type"] = json!("market"),
        }
        if let Some(label) = &self.label {
            p["label"] = json!(label);
        }
        if self.post_only {
            p["post_only"] = json!(true);
        }
        if self.reduce_only {
            p["reduce_only"] = json!(true);
        }
        p
    }
}

/// A Deribit connection: the nova [`Client`] underneath, and typed calls.
///
/// ```no_run
/// use futures_util::StreamExt;
/// use nova_deribit::{Channel, Credentials, DeribitClient, DeribitConfig, Interval};
///
/// # async fn run() -> Result<(), nova_deribit::DeribitError> {
/// let config = DeribitConfig::default().credentials(Credentials::new("id", "secret"));
/// let (deribit, _messages) = DeribitClient::connect(nova_deribit::TESTNET_URL, config)?;
/// let ticker = deribit.ticker("BTC-PERPETUAL").await?;
/// println!("best ask {:?}", ticker.best_ask_price);
/// let mut book = deribit.subscribe(Channel::book("BTC-PERPETUAL", Interval::Ms100)).await?;
/// while let Some(event) = book.next().await {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DeribitClient {
    client: Client,
    authenticated: bool,
}

impl DeribitClient {
    /// A client configuration for Deribit at `url`: the adapter's credit limits as the rate
    /// limit. Adjust it further and pass it to [`connect_with`](Self::connect_with).
    pub fn config_builder(url: impl Into<String>, config: &DeribitConfig) -> ClientConfigBuilder {
        ClientConfig::builder(url)
            .name("deribit")
            .rate_limit(config.limits.rate_limit())
            .auth_check_interval(Duration::from_millis(250))
    }

    /// Connects to `url` (see [`PRODUCTION_URL`], [`TESTNET_URL`]) with `config`; returns the
    /// client and the stream of messages no subscription or request claimed.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn connect(
        url: impl Into<String>,
        config: DeribitConfig,
    ) -> Result<(Self, nova_core::Messages), DeribitError> {
        let client_config = Self::config_builder(url, &config)
            .build()
            .map_err(DeribitError::Config)?;
        Ok(Self::connect_with(
            client_config,
            DeribitAdapter::new(config),
        ))
    }

    /// Connects with a ready client configuration and adapter.
    #[must_use]
    pub fn connect_with(
        config: ClientConfig,
        adapter: DeribitAdapter,
    ) -> (Self, nova_core::Messages) {
        let authenticated = adapter.config().credentials.is_some();
        let (client, messages) = Client::connect(config, adapter);
        (
            Self {
                client,
                authenticated,
            },
            messages,
        )
    }

    /// Wraps a client already driven by a [`DeribitAdapter`] (assumed to have credentials).
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            authenticated: true,
        }
    }

    /// The nova client underneath (state, events, close, raw sends).
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Calls `method` with `params` and returns the raw response message. A `private/` method
    /// on a client without credentials fails at once, without a round trip.
    ///
    /// # Errors
    /// [`DeribitError::NotAuthenticated`]; otherwise as [`Client::request`].
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Message, DeribitError> {
        if !self.authenticated && method.starts_with("private/") {
            return Err(DeribitError::NotAuthenticated(method.to_owned()));
        }
        let operation = operation_of(method);
        let mut request = Request::json_rpc(method, params).operation(operation);
        if method.starts_with("public/get")
            || method == "public/ticker"
            || method == "private/get_positions"
        {
            request = request.idempotent();
        }
        Ok(self.client.request(request).await?)
    }

    /// Calls `method` with `params` and decodes the result as `T`.
    ///
    /// # Errors
    /// [`DeribitError::Rpc`] when Deribit answers with an error; otherwise as
    /// [`call_raw`](Self::call_raw) and [`DeribitError::Decode`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, DeribitError> {
        response_of(&self.call_raw(method, params).await?)
    }

    /// `public/get_instruments`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn get_instruments(
        &self,
        currency: &str,
        kind: Option<Kind>,
    ) -> Result<Vec<Instrument>, DeribitError> {
        let mut params = json!({"currency": currency});
        if let Some(kind) = kind {
            params["kind"] = json!(kind.as_str());
        }
        self.call("public/get_instruments", params).await
    }

    /// `public/ticker`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn ticker(&self, instrument: &str) -> Result<Ticker, DeribitError> {
        self.call("public/ticker", json!({"instrument_name": instrument}))
            .await
    }

    /// `private/buy`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn buy(&self, order: &OrderRequest) -> Result<OrderResult, DeribitError> {
        self.call("private/buy", order.params()).await
    }

    /// `private/sell`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn sell(&self, order: &OrderRequest) -> Result<OrderResult, DeribitError> {
        self.call("private/sell", order.params()).await
    }

    /// `private/cancel`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn cancel(&self, order_id: &str) -> Result<Order, DeribitError> {
        self.call("private/cancel", json!({"order_id": order_id}))
            .await
    }

    /// `private/get_positions`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn get_positions(
        &self,
        currency: &str,
        kind: Option<Kind>,
    ) -> Result<Vec<Position>, DeribitError> {
        let mut params = json!({"currency": currency});
        if let Some(kind) = kind {
            params["kind"] = json!(kind.as_str());
        }
        self.call("private/get_positions", params).await
    }

    /// Subscribes to a channel (restored after every reconnect; books gap-checked).
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub async fn subscribe(
        &self,
        channel: impl Into<Channel>,
    ) -> Result<SubscriptionStream, DeribitError> {
        let channel: Channel = channel.into();
        Ok(self
            .client
            .subscribe(String::from(channel), json!({}))
            .await?)
    }

    /// Closes the connection for good.
    ///
    /// # Errors
    /// As [`Client::close`].
    pub async fn close(&self) -> Result<(), DeribitError> {
        Ok(self.client.close(1000, "bye").await?)
    }
}
