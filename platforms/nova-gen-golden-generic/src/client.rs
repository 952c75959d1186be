//! [`GenGoldenGenericClient`]: a nova client that speaks the Gen Golden Generic API.
//!
//! The client is a thin layer over [`nova_core::Client`], which owns the connection: it
//! reconnects with backoff, authenticates on every connect, restores subscriptions (verifying
//! each acknowledgement), matches responses to requests by id and notices a dead peer.
//! Subscriptions are streams of their topic's data; requests return their response.
//! Messages that are neither arrive on the [`Messages`] returned by
//! [`connect`](GenGoldenGenericClient::connect).

use std::time::Duration;

use nova_core::{
    Client, ClientConfig, ClientConfigBuilder, Error, HandlerError, Messages, Request, Settings,
    SubscriptionStream,
};
use serde_json::Value;

use crate::adapter::GenGoldenGenericAdapter;
use crate::message::{Incoming, parse};
use crate::types::{Credentials, OpRequest, OpResponse};

/// A connection to the Gen Golden Generic API. Clones share the connection.
#[derive(Clone, Debug)]
pub struct GenGoldenGenericClient {
    inner: Client,
}

impl GenGoldenGenericClient {
    /// The platform's name: its section in nova's settings (`[platforms.gen-golden-generic]`) and the
    /// client's name in logs.
    pub const NAME: &'static str = "gen-golden-generic";

    /// The production endpoint.
    pub const ENDPOINT: &'static str = "wss://gen-golden-generic.example.com/ws";

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
        Self::connect_with(config, GenGoldenGenericAdapter::new(credentials))
    }

    /// Connects with an adapter of one's own making.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn connect_with(
        config: ClientConfig,
        adapter: GenGoldenGenericAdapter,
    ) -> (Self, Messages) {
        let (inner, messages) = Client::connect(config, adapter);
        (Self { inner }, messages)
    }

    /// Connects as nova's settings say: the endpoint of `[platforms.gen-golden-generic]` (or
    /// [`ENDPOINT`](Self::ENDPOINT)), the reconnect settings, and the credentials of the
    /// section or of `GEN_GOLDEN_GENERIC_API_KEY` / `GEN_GOLDEN_GENERIC_API_SECRET`.
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

    /// Subscribes to `topic` and waits for the server's acknowledgement. The stream yields the
    /// topic's data (read it with [`parse`]) and survives reconnects; dropping it unsubscribes.
    ///
    /// # Errors
    /// [`Error::SubscriptionRefused`] when the server refuses; [`Error::Stopped`] once stopped.
    pub async fn subscribe(&self, topic: &str) -> Result<SubscriptionStream, Error> {
        self.inner.subscribe(topic, Value::Null).await
    }

    /// Sends a request for the operation `op` with `args` and returns the platform's response.
    ///
    /// # Errors
    /// A refused operation (`success: false`) as [`Error::Handler`]; [`Error::Timeout`]
    /// without an answer in time; otherwise as [`nova_core::Client::request`].
    pub async fn request(&self, op: &str, args: Vec<Value>) -> Result<OpResponse, Error> {
        let op = op.to_owned();
        let request = Request::new(move |id| OpRequest::new(id, op, args).to_message());
        let response = self.inner.request(request).await?;
        let Incoming::Response(response) = parse(&response)? else {
            return Err(HandlerError::new("no response to the request").into());
        };
        response
            .check()
            .map_err(|error| HandlerError::with_source(error.to_string(), error))?;
        Ok(response)
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
