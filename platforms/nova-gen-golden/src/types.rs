//! The Gen Golden API's wire types: the parameters of its subscription notifications and
//! server heartbeats, and the credentials the client authenticates with.
//!
//! Every message is a JSON-RPC 2.0 object, read and written with nova-core's envelope types
//! ([`nova_core::jsonrpc`]): a request ([`jsonrpc::Request`]) carries an `id` that its
//! response ([`jsonrpc::Response`], with an [`jsonrpc::ErrorObject`] on failure) repeats (the
//! nova runtime numbers requests and matches the responses); a notification (data on a
//! subscribed channel) and a heartbeat carry a `method` and no `id`. Add a type here for each
//! payload you want to read typed: [`NotificationParams::data`] and a response's `result` are
//! left as JSON values.

use nova_core::jsonrpc;
use nova_core::{Secret, Settings};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Data on a subscribed channel:
/// `{"jsonrpc": "2.0", "method": "subscription", "params": {"channel": ..., "data": ...}}`.
pub type Notification = jsonrpc::Notification<NotificationParams>;

/// The parameters of a [`Notification`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationParams {
    /// The channel the data belongs to.
    pub channel: String,
    /// The data.
    pub data: Value,
}

/// A heartbeat from the server:
/// `{"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}`.
pub type Heartbeat = jsonrpc::Notification<HeartbeatParams>;

/// The parameters of a [`Heartbeat`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatParams {
    /// `"heartbeat"` (nothing to do) or `"test_request"` (answer with `public/test`).
    #[serde(rename = "type")]
    pub kind: String,
}

impl HeartbeatParams {
    /// Whether the server asks for an answer (`test_request`); unanswered, it closes the
    /// connection.
    #[must_use]
    pub fn is_test_request(&self) -> bool {
        self.kind == "test_request"
    }
}

/// API credentials. `Debug` never shows them.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The API key (client id).
    pub api_key: Secret,
    /// The API secret.
    pub api_secret: Secret,
}

impl Credentials {
    /// The environment variable holding the API key.
    pub const API_KEY_VAR: &'static str = "GEN_GOLDEN_API_KEY";
    /// The environment variable holding the API secret.
    pub const API_SECRET_VAR: &'static str = "GEN_GOLDEN_API_SECRET";

    /// Credentials from a key and a secret.
    #[must_use]
    pub fn new(api_key: impl Into<Secret>, api_secret: impl Into<Secret>) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
        }
    }

    /// Credentials from `GEN_GOLDEN_API_KEY` and `GEN_GOLDEN_API_SECRET`, when both are set.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let api_key = std::env::var(Self::API_KEY_VAR).ok()?;
        let api_secret = std::env::var(Self::API_SECRET_VAR).ok()?;
        Some(Self::new(api_key, api_secret))
    }

    /// Credentials from the `[platforms.gen-golden]` section of nova's settings, which falls back
    /// to the same environment variables.
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let platform = settings.platforms.get("gen-golden")?;
        Some(Self {
            api_key: platform.api_key.clone()?,
            api_secret: platform.api_secret.clone()?,
        })
    }
}
