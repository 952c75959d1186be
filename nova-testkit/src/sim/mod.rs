//! Platform simulators: [`TestServer`]s that speak a platform's kind of protocol.
//!
//! - [`JsonRpcServer`]: JSON-RPC 2.0 with ids and subscription notifications, the shape of
//!   Deribit (and, for requests, of an Ethereum node).
//! - [`OpServer`]: JSON requests with an `op` field and data messages with a `topic`, the
//!   shape of Bybit.
//!
//! Both are built on [`TestServer`]'s [`Responder`](crate::Responder): every request a client
//! sends is parsed, recorded and answered at once on its connection. Each connection's
//! subscriptions and authentication are kept in a registry, so a test can [publish] data to
//! the connections subscribed to a channel and wait for a request by name. Everything else a
//! test server does (fault injection, recorded frames, handshake headers) stays reachable
//! through `server()`.
//!
//! [publish]: JsonRpcServer::publish

mod jsonrpc;
mod op;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::server::{ServerOptions, TestServer, wait_until};

pub use jsonrpc::JsonRpcServer;
pub use op::OpServer;

/// How a simulator behaves: the credentials it accepts, and the options of the
/// [`TestServer`] underneath (TLS, size limits; its responder is replaced by the simulator's).
///
/// ```
/// use nova_testkit::SimOptions;
///
/// let options = SimOptions::default().with_credentials("key", "secret");
/// assert_eq!(options.credentials, Some(("key".to_owned(), "secret".to_owned())));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SimOptions {
    /// The API key and secret an authentication request must carry. `None`: any
    /// authentication request succeeds.
    pub credentials: Option<(String, String)>,
    /// Options of the underlying [`TestServer`].
    pub server: ServerOptions,
}

impl SimOptions {
    /// Sets [`credentials`](Self::credentials).
    pub fn with_credentials(
        mut self,
        api_key: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some((api_key.into(), secret.into()));
        self
    }

    /// Sets [`server`](Self::server).
    pub fn with_server(mut self, server: ServerOptions) -> Self {
        self.server = server;
        self
    }
}

/// What a simulator knows about its connections, shared between the responder (which runs on
/// the connection tasks) and the test.
#[derive(Debug, Default)]
struct Registry {
    credentials: Option<(String, String)>,
    /// Channels subscribed, by connection id.
    channels: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    /// Connections that authenticated.
    authenticated: Mutex<BTreeSet<usize>>,
    /// Every request received as JSON, with its connection id, in arrival order.
    requests: Mutex<Vec<(usize, Value)>>,
}

/// Locks a mutex, ignoring poisoning: the data is plain records, valid after any panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    fn new(credentials: Option<(String, String)>) -> Self {
        Self {
            credentials,
            ..Self::default()
        }
    }

    fn record(&self, connection: usize, request: &Value) {
        lock(&self.requests).push((connection, request.clone()));
    }

    fn subscribe(&self, connection: usize, channels: &[String]) {
        lock(&self.channels)
            .entry(connection)
            .or_default()
            .extend(channels.iter().cloned());
    }

    /// Removes the subscriptions and returns the channels that were subscribed.
    fn unsubscribe(&self, connection: usize, channels: &[String]) -> Vec<String> {
        let mut all = lock(&self.channels);
        let Some(mine) = all.get_mut(&connection) else {
            return Vec::new();
        };
        channels
            .iter()
            .filter(|c| mine.remove(c.as_str()))
            .cloned()
            .collect()
    }

    fn unsubscribe_all(&self, connection: usize) {
        lock(&self.channels).remove(&connection);
    }

    fn subscribers(&self, channel: &str) -> Vec<usize> {
        let all = lock(&self.channels);
        all.iter()
            .filter(|(_, chans)| chans.contains(channel))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Checks credentials; on success the connection counts as authenticated.
    fn authenticate(&self, connection: usize, api_key: Option<&str>, secret: Option<&str>) -> bool {
        self.authenticate_with(connection, api_key, |sec| secret == Some(sec))
    }

    /// Checks `api_key`, and the secret through `check` (which gets the expected secret: a
    /// server verifying a signature computes it from there); on success the connection counts
    /// as authenticated.
    fn authenticate_with(
        &self,
        connection: usize,
        api_key: Option<&str>,
        check: impl FnOnce(&str) -> bool,
    ) -> bool {
        let ok = match &self.credentials {
            None => true,
            Some((key, sec)) => api_key == Some(key.as_str()) && check(sec),
        };
        if ok {
            lock(&self.authenticated).insert(connection);
        }
        ok
    }

    fn is_authenticated(&self, connection: usize) -> bool {
        lock(&self.authenticated).contains(&connection)
    }

    /// Whether `connection` may use private operations: always, when no credentials are set.
    fn may_use_private(&self, connection: usize) -> bool {
        self.credentials.is_none() || self.is_authenticated(connection)
    }

    fn requests(&self) -> Vec<(usize, Value)> {
        lock(&self.requests).clone()
    }

    fn find(&self, field: &str, name: &str) -> Option<Value> {
        let requests = lock(&self.requests);
        requests
            .iter()
            .map(|(_, r)| r)
            .find(|r| r.get(field).and_then(Value::as_str) == Some(name))
            .cloned()
    }

    async fn wait_for(&self, field: &str, name: &str, timeout: Duration) -> Option<Value> {
        wait_until(|| self.find(field, name).is_some(), timeout).await;
        self.find(field, name)
    }
}

/// Sends `text` to every open connection subscribed to `channel`; returns how many.
async fn publish_text(
    server: &TestServer,
    registry: &Registry,
    channel: &str,
    text: String,
) -> usize {
    let subscribers = registry.subscribers(channel);
    let mut sent = 0;
    for connection in server.connections() {
        if subscribers.contains(&connection.id()) && !connection.is_closed() {
            connection.send_text(text.clone()).await;
            sent += 1;
        }
    }
    sent
}

/// The strings of a JSON array (`None` when `value` is not an array of strings).
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}
