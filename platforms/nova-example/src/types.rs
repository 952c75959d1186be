//! The Example API's wire types: JSON-RPC 2.0 requests, responses, errors, subscription
//! notifications and server heartbeats; and the credentials the client authenticates with.
//!
//! Every message is a JSON object with `"jsonrpc": "2.0"`. A request carries an `id` that its
//! response repeats (the nova runtime numbers requests and matches the responses); a
//! notification (data on a subscribed channel) and a heartbeat carry a `method` and no `id`.
//! Add a type here for each payload you want to read typed: [`NotificationParams::data`] and
//! [`RpcResponse::result`] are left as JSON values.

use std::fmt;

use nova_core::{Message, RequestId, Secret, Settings};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The protocol version every message carries.
pub const JSONRPC_VERSION: &str = "2.0";

/// The JSON form of a request id: a number, or a string.
#[must_use]
pub fn id_value(id: &RequestId) -> Value {
    match id {
        RequestId::Num(n) => Value::from(*n),
        RequestId::Str(s) => Value::from(s.as_str()),
    }
}

/// A JSON-RPC 2.0 request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The id the response repeats.
    pub id: Value,
    /// The method, e.g. `public/subscribe`.
    pub method: String,
    /// The parameters, by name; left out when null.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

impl RpcRequest {
    /// A request with the id `id` for `method` with `params` (`Value::Null` for none).
    #[must_use]
    pub fn new(id: &RequestId, method: impl Into<String>, params: Value) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id: id_value(id),
            method: method.into(),
            params,
        }
    }

    /// The request as a text message.
    #[must_use]
    pub fn to_message(&self) -> Message {
        let mut body = json!({"jsonrpc": self.jsonrpc, "id": self.id, "method": self.method});
        if !self.params.is_null() {
            body["params"] = self.params.clone();
        }
        Message::text(body.to_string())
    }
}

/// A JSON-RPC 2.0 response: `result` on success, `error` on failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcResponse {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The id of the request answered; `None` when the request could not be read at all.
    #[serde(default)]
    pub id: Option<Value>,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl RpcResponse {
    /// Whether this answers the request with the id `id`.
    #[must_use]
    pub fn answers(&self, id: &RequestId) -> bool {
        self.id.as_ref() == Some(&id_value(id))
    }

    /// The result, or the error the platform answered with.
    ///
    /// # Errors
    /// The platform's error.
    pub fn into_result(self) -> Result<Value, RpcError> {
        match (self.result, self.error) {
            (_, Some(error)) => Err(error),
            (result, None) => Ok(result.unwrap_or(Value::Null)),
        }
    }
}

/// A JSON-RPC 2.0 error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code: negative codes are JSON-RPC's own, others the platform's.
    pub code: i64,
    /// What went wrong.
    pub message: String,
    /// More detail, when the platform gives any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

/// Data on a subscribed channel:
/// `{"jsonrpc": "2.0", "method": "subscription", "params": {"channel": ..., "data": ...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// `"subscription"`.
    pub method: String,
    /// The channel and its data.
    pub params: NotificationParams,
}

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// `"heartbeat"`.
    pub method: String,
    /// What kind of heartbeat.
    pub params: HeartbeatParams,
}

impl Heartbeat {
    /// Whether the server asks for an answer (`test_request`); unanswered, it closes the
    /// connection.
    #[must_use]
    pub fn is_test_request(&self) -> bool {
        self.params.kind == "test_request"
    }
}

/// The parameters of a [`Heartbeat`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatParams {
    /// `"heartbeat"` (nothing to do) or `"test_request"` (answer with `public/test`).
    #[serde(rename = "type")]
    pub kind: String,
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
    pub const API_KEY_VAR: &'static str = "EXAMPLE_API_KEY";
    /// The environment variable holding the API secret.
    pub const API_SECRET_VAR: &'static str = "EXAMPLE_API_SECRET";

    /// Credentials from a key and a secret.
    #[must_use]
    pub fn new(api_key: impl Into<Secret>, api_secret: impl Into<Secret>) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
        }
    }

    /// Credentials from `EXAMPLE_API_KEY` and `EXAMPLE_API_SECRET`, when both are set.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let api_key = std::env::var(Self::API_KEY_VAR).ok()?;
        let api_secret = std::env::var(Self::API_SECRET_VAR).ok()?;
        Some(Self::new(api_key, api_secret))
    }

    /// Credentials from the `[platforms.example]` section of nova's settings, which falls back
    /// to the same environment variables.
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let platform = settings.platforms.get("example")?;
        Some(Self {
            api_key: platform.api_key.clone()?,
            api_secret: platform.api_secret.clone()?,
        })
    }
}
