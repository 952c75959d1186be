//! The Gen Golden Generic API's wire types: requests named by an `op`, their responses, and data
//! messages on a `topic`; and the credentials the client authenticates with.
//!
//! A request is `{"req_id": "7", "op": "subscribe", "args": ["trades.BTC-USD"]}`. Its response
//! repeats `op` and `req_id` and says whether it succeeded:
//! `{"success": true, "ret_msg": "", "op": "subscribe", "req_id": "7"}`. Data arrives as
//! `{"topic": "trades.BTC-USD", "type": "snapshot", "ts": 1700000000000, "data": {...}}`. Add a
//! type here for each payload you want to read typed: [`Event::data`] is left as a JSON value.

use std::fmt;

use nova_core::{Message, RequestId, Secret, Settings};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A request: an operation with its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpRequest {
    /// The id the response repeats.
    pub req_id: String,
    /// The operation, e.g. `subscribe`.
    pub op: String,
    /// The arguments; left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Value>,
}

impl OpRequest {
    /// A request with the id `id` for `op` with `args`.
    #[must_use]
    pub fn new(id: &RequestId, op: impl Into<String>, args: Vec<Value>) -> Self {
        Self {
            req_id: id.to_string(),
            op: op.into(),
            args,
        }
    }

    /// The request as a text message.
    #[must_use]
    pub fn to_message(&self) -> Message {
        let mut body = json!({"req_id": self.req_id, "op": self.op});
        if !self.args.is_empty() {
            body["args"] = Value::from(self.args.clone());
        }
        Message::text(body.to_string())
    }
}

/// The request id a `req_id` stands for: the runtime numbers requests, so a number is read as
/// one.
#[must_use]
pub fn request_id(req_id: &str) -> RequestId {
    match req_id.parse() {
        Ok(n) => RequestId::Num(n),
        Err(_) => RequestId::Str(req_id.to_owned()),
    }
}

/// The response to a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpResponse {
    /// Whether the operation succeeded.
    pub success: bool,
    /// The platform's message: why it failed, or `"pong"` for a ping.
    #[serde(default)]
    pub ret_msg: String,
    /// The operation answered.
    #[serde(default)]
    pub op: String,
    /// The id of the request answered, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    /// The server's id for the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_id: Option<String>,
}

impl OpResponse {
    /// Whether this answers the request with the id `id`.
    #[must_use]
    pub fn answers(&self, id: &RequestId) -> bool {
        self.req_id.as_deref().map(request_id).as_ref() == Some(id)
    }

    /// `Ok` when the operation succeeded, else the platform's error.
    ///
    /// # Errors
    /// The platform's error, when `success` is false.
    pub fn check(&self) -> Result<(), OpError> {
        if self.success {
            Ok(())
        } else {
            Err(OpError {
                op: self.op.clone(),
                message: self.ret_msg.clone(),
            })
        }
    }
}

/// An operation the platform refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    /// The operation.
    pub op: String,
    /// The platform's reason (`ret_msg`).
    pub message: String,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed: {}", self.op, self.message)
    }
}

impl std::error::Error for OpError {}

/// Data on a subscribed topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The topic the data belongs to.
    pub topic: String,
    /// `"snapshot"` (the whole state) or `"delta"` (a change), when the platform says.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The server's timestamp, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// The data.
    pub data: Value,
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
    pub const API_KEY_VAR: &'static str = "GEN_GOLDEN_GENERIC_API_KEY";
    /// The environment variable holding the API secret.
    pub const API_SECRET_VAR: &'static str = "GEN_GOLDEN_GENERIC_API_SECRET";

    /// Credentials from a key and a secret.
    #[must_use]
    pub fn new(api_key: impl Into<Secret>, api_secret: impl Into<Secret>) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
        }
    }

    /// Credentials from `GEN_GOLDEN_GENERIC_API_KEY` and `GEN_GOLDEN_GENERIC_API_SECRET`, when both are set.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let api_key = std::env::var(Self::API_KEY_VAR).ok()?;
        let api_secret = std::env::var(Self::API_SECRET_VAR).ok()?;
        Some(Self::new(api_key, api_secret))
    }

    /// Credentials from the `[platforms.gen-golden-generic]` section of nova's settings, which falls back
    /// to the same environment variables.
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let platform = settings.platforms.get("gen-golden-generic")?;
        Some(Self {
            api_key: platform.api_key.clone()?,
            api_secret: platform.api_secret.clone()?,
        })
    }
}
