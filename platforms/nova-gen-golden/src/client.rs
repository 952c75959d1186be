//! [`GenGoldenClient`]: a nova client that speaks the Gen Golden API.
//!
//! The client is a thin layer over [`nova_core::Client`], which owns the connection: it
//! reconnects with backoff, authenticates on every connect, restores subscriptions (verifying
//! each acknowledgement), matches responses to requests by id and notices a dead peer.
//! Subscriptions are streams of their channel's notifications; requests return their result.
//! Messages that are neither arrive on the [`Messages`] returned by
//! [`connect`](GenGoldenClient::connect).

use std::time::Duration;

use nova_core::{
    Client, ClientConfig, ClientConfigBuilder, Error, HandlerError, Messages, Request, Settings,
    SubscriptionStream,
};
use serde_json::Value;

use crate::adapter::GenGoldenAdapter;
use crate::message::{Incoming, parse};
use crate::types::Credentials;

/// A connection to the Gen Golden API. Clones share the connection.
#[derive(Clone, Debug)]
pub struct GenGoldenClient {
    inner: Client,
}

impl GenGoldenClient {
    /// The platform's name: its section in nova's settings (`[platforms.gen-golden]`) and the
    /// client's name in logs.
    pub const NAME: &'static str = "gen-golden";

    /// The production endpoint.
    pub const ENDPOINT: &'static str = "wss://gen-golden.example.com/ws";

    /// A configuration builder for `url`, with the client named after the platform.
    pub fn config(url: impl Into<String>) -> ClientConfigBuilder {
        ClientConfig::builder(url).name(Self::NAME)
    }

    /// Connects in the background, authenticating with `credentials` when given; see
    /// [`wait_connected`](Self::wait_connected).
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn connect(config: ClientConfig, credentials: Option<Credentials>) -> (Self, Messages) {
        Self::connect_with(config, GenGoldenAdapter::new(credentials))
    }

    /// Connects with an adapter of one's own making.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn connect_with(config: ClientConfig, adapter: GenGoldenAdapter) -> (Self, Messages) {
        let (inner, messages) = Client::connect(config, adapter);
        (Self { inner }, messages)
    }

    /// Connects as nova's settings say: the endpoint of `[platforms.gen-golden]` (or
    /// [`ENDPOINT`](Self::ENDPOINT)), the reconnect settings, and the credentials of the
    /// section or of `GEN_GOLDEN_API_KEY` / `GEN_GOLDEN_API_SECRET`.
    ///
    /// # Errors
    /// When the settings make an invalid configuration.
    pub fn connect_with_settings(settings: &Settings) -> Result<(Self, Messages), Error> {
        let endpoint = settings
            .platforms
            .get(Self::NAME)
            .and_then(|platform| platform.endpoint.clone())
            .unwrap_or_else(|| Self::ENDPOINT.to_owned());
        let config = Self::config(endpoint).settings(settings).build()?;
        Ok(Self::connect(config, Credentials::from_settings(settings)))
    }

    /// Waits until the connection is open.
    ///
    /// # Errors
    /// [`Error::Timeout`] after `timeout`; [`Error::Stopped`] when the client stopped first.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.wait_connected(timeout).await
    }

    /// Subscribes to `channel` and waits for the server's acknowledgement. The stream yields the
    /// channel's notifications (read them with [`parse`]) and survives reconnects; dropping it
    /// unsubscribes.
    ///
    /// # Errors
    /// [`Error::SubscriptionRefused`] when the server refuses; [`Error::Stopped`] once stopped.
    pub async fn subscribe(&self, channel: &str) -> Result<SubscriptionStream, Error> {
        self.subscribe_with(channel, Value::Null).await
    }

    /// Like [`subscribe`](Self::subscribe), with `params` (a JSON object) added to the
    /// subscribe request's parameters.
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub async fn subscribe_with(
        &self,
        channel: &str,
        params: Value,
    ) -> Result<SubscriptionStream, Error> {
        self.inner.subscribe(channel, params).await
    }

    /// Calls `method` with `params` (`Value::Null` for none) and returns its result.
    ///
    /// # Errors
    /// The platform's error as [`Error::Handler`]; [`Error::Timeout`] without an answer in
    /// time; otherwise as [`nova_core::Client::request`].
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, Error> {
        let request = Request::json_rpc(method, params);
        let response = self.inner.request(request).await?;
        let Incoming::Response(response) = parse(&response)? else {
            return Err(HandlerError::new(format!("no response to {method}")).into());
        };
        response.into_result().map_err(|error| {
            HandlerError::with_source(format!("{method} failed: {error}"), error).into()
        })
    }

    /// Closes the connection (code 1000) and stops the client.
    ///
    /// # Errors
    /// [`Error::Stopped`] when the client had stopped already.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.close(1000, "closed by the application").await
    }

    /// The nova client underneath: connection state, lifecycle events, raw sends.
    #[must_use]
    pub fn inner(&self) -> &Client {
        &self.inner
    }
}
