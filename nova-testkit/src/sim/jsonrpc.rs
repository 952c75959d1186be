//! [`JsonRpcServer`]: a JSON-RPC 2.0 server with subscriptions, like Deribit's.

use std::sync::Arc;
use std::time::Duration;

use nova_core::jsonrpc::{
    ErrorObject, INVALID_PARAMS, INVALID_REQUEST, Id, Notification, PARSE_ERROR, Response, VERSION,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Registry, SimOptions, publish_text, strings};
use crate::server::{Frame, Responder, TestServer};

/// A JSON-RPC 2.0 server on `127.0.0.1`: answers requests, keeps subscriptions, publishes
/// notifications. Its envelopes are nova-core's ([`nova_core::jsonrpc`]).
///
/// Requests are `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}`; each is answered with
/// `{"jsonrpc":"2.0","id":ID,"result":R}` or `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":S}}`.
/// Methods are recognised by the part after the last `/` (`public/subscribe` and `subscribe`
/// alike):
///
/// | method | answer |
/// |---|---|
/// | `subscribe` | subscribes the connection to `params.channels`; result: the channels |
/// | `unsubscribe` | result: the channels that were subscribed |
/// | `unsubscribe_all` | result: `"ok"` |
/// | `auth` | checks `params.client_id` / `params.client_secret` against the credentials; result: an access token, or error 13004 `invalid_credentials` |
/// | `test`, `hello` | result: `{"version": "nova-testkit"}` |
/// | `set_heartbeat` | result: `"ok"` |
/// | anything else | result: `params` (an echo) |
///
/// A `private/...` method before a successful `auth` fails with error 13009 `unauthorized`
/// when the server has credentials. Malformed JSON gets error -32700, a message that is not a
/// JSON-RPC 2.0 request -32600 (so does an `id` that is not an unsigned integer, a string or
/// `null`, answered with a `null` id), bad parameters -32602; a request without an `id`, or
/// with a `null` one (a notification), gets no answer. [`JsonRpcServer::publish`] sends
/// `{"jsonrpc":"2.0","method":"subscription","params":{"channel":C,"data":D}}` to subscribers.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use nova_testkit::JsonRpcServer;
/// use serde_json::json;
/// use tokio_tungstenite::tungstenite::Message;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = JsonRpcServer::start().await?;
/// let tcp = tokio::net::TcpStream::connect(server.server().addr()).await?;
/// let (mut ws, _) = tokio_tungstenite::client_async(server.url(), tcp).await?;
/// let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["trades"]}}"#;
/// ws.send(Message::text(subscribe)).await?;
/// let ack: serde_json::Value = serde_json::from_str(ws.next().await.expect("an answer")?.to_text()?)?;
/// assert_eq!(ack, json!({"jsonrpc": "2.0", "id": 1, "result": ["trades"]}));
///
/// assert_eq!(server.publish("trades", json!({"price": 1})).await, 1);
/// let note: serde_json::Value = serde_json::from_str(ws.next().await.expect("a notification")?.to_text()?)?;
/// assert_eq!(note["params"]["channel"], "trades");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JsonRpcServer {
    server: TestServer,
    registry: Arc<Registry>,
}

impl JsonRpcServer {
    /// Starts a server that accepts any credentials.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(SimOptions::default()).await
    }

    /// Starts a server with these options.
    pub async fn start_with(options: SimOptions) -> std::io::Result<Self> {
        let registry = Arc::new(Registry::new(options.credentials));
        let shared = Arc::clone(&registry);
        let responder: Responder =
            Arc::new(move |conn, frame: &Frame| respond(&shared, conn, frame));
        let server = TestServer::start_with(options.server.with_responder(responder)).await?;
        Ok(Self { server, registry })
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The test server underneath: connections, recorded frames, fault injection.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// Sends a notification with `data` on `channel` to every connection subscribed to it;
    /// returns how many connections it was sent to.
    pub async fn publish(&self, channel: &str, data: Value) -> usize {
        let note = Notification::new("subscription", json!({"channel": channel, "data": data}));
        publish_text(&self.server, &self.registry, channel, note.to_json()).await
    }

    /// The connections subscribed to `channel`, by [`ServerConnection::id`](crate::ServerConnection::id).
    pub fn subscribers(&self, channel: &str) -> Vec<usize> {
        self.registry.subscribers(channel)
    }

    /// Whether the connection authenticated successfully.
    pub fn is_authenticated(&self, connection: usize) -> bool {
        self.registry.is_authenticated(connection)
    }

    /// Every request received (as JSON), with its connection id, in arrival order.
    pub fn requests(&self) -> Vec<(usize, Value)> {
        self.registry.requests()
    }

    /// Waits up to `timeout` for a request with this `method` and returns the first one.
    pub async fn wait_for_request(&self, method: &str, timeout: Duration) -> Option<Value> {
        self.registry.wait_for("method", method, timeout).await
    }

    /// Stops the server (see [`TestServer::shutdown`]).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A JSON-RPC error: code and message.
type RpcError = (i64, &'static str);

fn respond(registry: &Registry, conn: usize, frame: &Frame) -> Vec<Frame> {
    let Ok(request) = serde_json::from_slice::<Value>(frame.as_bytes()) else {
        return vec![answer(Id::Null, Err((PARSE_ERROR, "Parse error")))];
    };
    registry.record(conn, &request);
    let invalid = |id| vec![answer(id, Err((INVALID_REQUEST, "Invalid Request")))];
    let id = match request.get("id").map(Id::deserialize).transpose() {
        Ok(id) => id.unwrap_or(Id::Null),
        Err(_) => return invalid(Id::Null),
    };
    let method = request.get("method").and_then(Value::as_str);
    let (true, Some(method)) = (request.get("jsonrpc") == Some(&json!(VERSION)), method) else {
        return invalid(id);
    };
    if id.is_null() {
        return Vec::new();
    }
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    vec![answer(id, call(registry, conn, method, params))]
}

fn call(registry: &Registry, conn: usize, method: &str, params: Value) -> Result<Value, RpcError> {
    if method.starts_with("private/") && !registry.may_use_private(conn) {
        return Err((13009, "unauthorized"));
    }
    let channels = || {
        strings(params.get("channels"))
            .ok_or((INVALID_PARAMS, "Invalid params: expected `channels`"))
    };
    match method.rsplit('/').next().unwrap_or(method) {
        "subscribe" => {
            let channels = channels()?;
            registry.subscribe(conn, &channels);
            Ok(json!(channels))
        }
        "unsubscribe" => Ok(json!(registry.unsubscribe(conn, &channels()?))),
        "unsubscribe_all" => {
            registry.unsubscribe_all(conn);
            Ok(json!("ok"))
        }
        "auth" => {
            let field = |name| params.get(name).and_then(Value::as_str);
            if registry.authenticate(conn, field("client_id"), field("client_secret")) {
                Ok(json!({
                    "access_token": format!("testkit-token-{conn}"),
                    "expires_in": 900,
                    "refresh_token": format!("testkit-refresh-{conn}"),
                    "scope": "connection",
                    "token_type": "bearer",
                }))
            } else {
                Err((13004, "invalid_credentials"))
            }
        }
        "test" | "hello" => Ok(json!({"version": "nova-testkit"})),
        "set_heartbeat" => Ok(json!("ok")),
        _ => Ok(params),
    }
}

fn answer(id: Id, outcome: Result<Value, RpcError>) -> Frame {
    let response: Response = match outcome {
        Ok(result) => Response::result(id, result),
        Err((code, message)) => Response::error(id, ErrorObject::new(code, message)),
    };
    // An `i64` code, a string and JSON values always serialize.
    Frame::Text(response.to_json().unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ask(registry: &Registry, conn: usize, text: &str) -> Value {
        let frames = respond(registry, conn, &Frame::from(text));
        assert_eq!(frames.len(), 1, "{frames:?}");
        serde_json::from_slice(frames[0].as_bytes()).unwrap()
    }

    #[test]
    fn subscriptions_are_kept_per_connection() {
        let registry = Registry::new(None);
        let sub = r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["a","b"]}}"#;
        assert_eq!(ask(&registry, 3, sub)["result"], json!(["a", "b"]));
        assert_eq!(registry.subscribers("a"), vec![3]);
        let unsub = r#"{"jsonrpc":"2.0","id":2,"method":"public/unsubscribe","params":{"channels":["a","x"]}}"#;
        assert_eq!(ask(&registry, 3, unsub)["result"], json!(["a"]));
        assert!(registry.subscribers("a").is_empty());
        assert_eq!(registry.subscribers("b"), vec![3]);
    }

    #[test]
    fn errors_follow_the_spec() {
        let registry = Registry::new(None);
        assert_eq!(ask(&registry, 0, "{nope")["error"]["code"], -32700);
        assert_eq!(
            ask(&registry, 0, r#"{"id":1,"method":"x"}"#)["error"]["code"],
            -32600
        );
        let bad = r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{}}"#;
        assert_eq!(ask(&registry, 0, bad)["error"]["code"], -32602);
        let notification = r#"{"jsonrpc":"2.0","method":"public/test"}"#;
        assert!(respond(&registry, 0, &Frame::from(notification)).is_empty());
    }

    #[test]
    fn credentials_are_checked_and_guard_private_methods() {
        let registry = Registry::new(Some(("key".to_owned(), "secret".to_owned())));
        let private = r#"{"jsonrpc":"2.0","id":1,"method":"private/get_positions","params":{}}"#;
        assert_eq!(ask(&registry, 0, private)["error"]["code"], 13009);
        let wrong = r#"{"jsonrpc":"2.0","id":2,"method":"public/auth","params":{"client_id":"key","client_secret":"nope"}}"#;
        assert_eq!(
            ask(&registry, 0, wrong)["error"]["message"],
            "invalid_credentials"
        );
        let right = r#"{"jsonrpc":"2.0","id":3,"method":"public/auth","params":{"client_id":"key","client_secret":"secret"}}"#;
        assert_eq!(ask(&registry, 0, right)["result"]["token_type"], "bearer");
        assert!(registry.is_authenticated(0));
        assert_eq!(ask(&registry, 0, private)["result"], json!({}));
    }

    #[test]
    fn ids_are_echoed_or_refused() {
        let registry = Registry::new(None);
        let text = |id: &str| {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"public/echo","params":[]}}"#)
        };
        assert_eq!(
            ask(&registry, 0, &text("18446744073709551615"))["id"],
            json!(u64::MAX)
        );
        let refused = ask(&registry, 0, &text("-1"));
        assert_eq!(refused["error"]["code"], -32600);
        assert_eq!(refused["id"], Value::Null);
        assert!(respond(&registry, 0, &Frame::from(text("null").as_str())).is_empty());
    }

    #[test]
    fn unknown_methods_echo_their_params() {
        let registry = Registry::new(None);
        let echo = r#"{"jsonrpc":"2.0","id":"x","method":"public/echo","params":{"a":1}}"#;
        assert_eq!(
            ask(&registry, 0, echo),
            json!({"jsonrpc": "2.0", "id": "x", "result": {"a": 1}})
        );
        assert_eq!(
            registry.find("method", "public/echo").unwrap()["params"]["a"],
            1
        );
    }
}
