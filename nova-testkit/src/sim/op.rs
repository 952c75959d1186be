//! [`OpServer`]: a JSON server whose requests carry an `op` field and whose data messages
//! carry a `topic`, like Bybit's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{Registry, SimOptions, publish_text, strings};
use crate::server::{Frame, Responder, TestServer};

/// A JSON `op`/`topic` server on `127.0.0.1`.
///
/// Requests are `{"req_id":R,"op":OP,"args":[...]}`; each is answered with
/// `{"success":B,"ret_msg":S,"conn_id":C,"req_id":R,"op":OP}` (`req_id` repeated when given):
///
/// | op | answer |
/// |---|---|
/// | `subscribe` | subscribes the connection to the topics in `args`; success |
/// | `unsubscribe` | ends those subscriptions; success |
/// | `auth` | `args` = `[api_key, expires, signature]`: `signature` must be `hex(HMAC-SHA256(api_secret, "GET/realtime" + expires))` and `expires` (ms, a number or a string) in the future, as Bybit checks it; the secret itself is never accepted |
/// | `ping` | success, `ret_msg` `"pong"` |
/// | anything else | `success: false`, `ret_msg` `"unknown op: OP"` |
///
/// A message that is not JSON or has no `op` is answered with `success: false` and
/// `ret_msg` starting with `"invalid request"`. [`OpServer::publish`] sends
/// `{"topic":T,"type":"snapshot","ts":MS,"data":D}` to subscribers.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use nova_testkit::OpServer;
/// use serde_json::json;
/// use tokio_tungstenite::tungstenite::Message;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = OpServer::start().await?;
/// let tcp = tokio::net::TcpStream::connect(server.server().addr()).await?;
/// let (mut ws, _) = tokio_tungstenite::client_async(server.url(), tcp).await?;
/// ws.send(Message::text(r#"{"req_id":"1","op":"subscribe","args":["trades"]}"#)).await?;
/// let ack: serde_json::Value = serde_json::from_str(ws.next().await.expect("an answer")?.to_text()?)?;
/// assert_eq!(ack["success"], true);
/// assert_eq!(ack["req_id"], "1");
///
/// assert_eq!(server.publish("trades", json!({"price": 1})).await, 1);
/// let data: serde_json::Value = serde_json::from_str(ws.next().await.expect("data")?.to_text()?)?;
/// assert_eq!(data["topic"], "trades");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct OpServer {
    server: TestServer,
    registry: Arc<Registry>,
}

impl OpServer {
    /// Starts a server that accepts any credentials.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(SimOptions::default()).await
    }

    /// Starts a server with these options.
    pub async fn start_with(options: SimOptions) -> std::io::Result<Self> {
        let registry = Arc::new(Registry::new(options.credentials));
        let shared = Arc::clone(&registry);
        let responder: Responder =
            Arc::new(move |conn, frame: &Frame| vec![respond(&shared, conn, frame)]);
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

    /// Sends a data message with `data` on `topic` to every connection subscribed to it;
    /// returns how many connections it was sent to.
    pub async fn publish(&self, topic: &str, data: Value) -> usize {
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let ts = u64::try_from(ts.as_millis()).unwrap_or(u64::MAX);
        let message = json!({"topic": topic, "type": "snapshot", "ts": ts, "data": data});
        publish_text(&self.server, &self.registry, topic, message.to_string()).await
    }

    /// The connections subscribed to `topic`, by [`ServerConnection::id`](crate::ServerConnection::id).
    pub fn subscribers(&self, topic: &str) -> Vec<usize> {
        self.registry.subscribers(topic)
    }

    /// Whether the connection authenticated successfully.
    pub fn is_authenticated(&self, connection: usize) -> bool {
        self.registry.is_authenticated(connection)
    }

    /// Every request received (as JSON), with its connection id, in arrival order.
    pub fn requests(&self) -> Vec<(usize, Value)> {
        self.registry.requests()
    }

    /// Waits up to `timeout` for a request with this `op` and returns the first one.
    pub async fn wait_for_request(&self, op: &str, timeout: Duration) -> Option<Value> {
        self.registry.wait_for("op", op, timeout).await
    }

    /// Stops the server (see [`TestServer::shutdown`]).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn respond(registry: &Registry, conn: usize, frame: &Frame) -> Frame {
    let request = match serde_json::from_slice::<Value>(frame.as_bytes()) {
        Ok(request) => request,
        Err(e) => return reply(conn, &Value::Null, "", Err(format!("invalid request: {e}"))),
    };
    registry.record(conn, &request);
    let req_id = request.get("req_id").cloned().unwrap_or(Value::Null);
    let Some(op) = request.get("op").and_then(Value::as_str) else {
        return reply(
            conn,
            &req_id,
            "",
            Err("invalid request: no `op`".to_owned()),
        );
    };
    let args = request.get("args");
    let outcome = match op {
        "subscribe" | "unsubscribe" => match strings(args) {
            Some(topics) if op == "subscribe" => {
                registry.subscribe(conn, &topics);
                Ok(String::new())
            }
            Some(topics) => {
                registry.unsubscribe(conn, &topics);
                Ok(String::new())
            }
            None => Err("invalid request: `args` must be a list of topics".to_owned()),
        },
        "auth" => {
            let arg = |i| args.and_then(|a| a.get(i));
            let key = arg(0).and_then(Value::as_str);
            let expires = arg(1).and_then(|e| match e {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            });
            let signature = arg(2).and_then(Value::as_str);
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let signed = |secret: &str| match (expires, signature) {
                (Some(expires), Some(signature)) => {
                    expires > now && crate::bybit::signature(secret, expires) == signature
                }
                _ => false,
            };
            if registry.authenticate_with(conn, key, signed) {
                Ok(String::new())
            } else {
                Err("invalid credentials".to_owned())
            }
        }
        "ping" => Ok("pong".to_owned()),
        other => Err(format!("unknown op: {other}")),
    };
    reply(conn, &req_id, op, outcome)
}

fn reply(conn: usize, req_id: &Value, op: &str, outcome: Result<String, String>) -> Frame {
    let (success, ret_msg) = match outcome {
        Ok(msg) => (true, msg),
        Err(msg) => (false, msg),
    };
    let mut body =
        json!({"success": success, "ret_msg": ret_msg, "conn_id": conn.to_string(), "op": op});
    if !req_id.is_null() {
        body["req_id"] = req_id.clone();
    }
    Frame::Text(body.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ask(registry: &Registry, text: &str) -> Value {
        serde_json::from_slice(respond(registry, 1, &Frame::from(text)).as_bytes()).unwrap()
    }

    #[test]
    fn subscribe_ping_and_unknown_ops() {
        let registry = Registry::new(None);
        let ack = ask(
            &registry,
            r#"{"req_id":"a","op":"subscribe","args":["t1","t2"]}"#,
        );
        assert_eq!(
            ack,
            json!({"success": true, "ret_msg": "", "conn_id": "1", "op": "subscribe", "req_id": "a"})
        );
        assert_eq!(registry.subscribers("t2"), vec![1]);
        ask(&registry, r#"{"op":"unsubscribe","args":["t2"]}"#);
        assert!(registry.subscribers("t2").is_empty());
        assert_eq!(ask(&registry, r#"{"op":"ping"}"#)["ret_msg"], "pong");
        let unknown = ask(&registry, r#"{"op":"frobnicate"}"#);
        assert_eq!(
            (unknown["success"].clone(), unknown["ret_msg"].clone()),
            (json!(false), json!("unknown op: frobnicate"))
        );
        assert_eq!(ask(&registry, "[1,2")["success"], false);
        assert_eq!(
            ask(&registry, r#"{"op":"subscribe","args":"t"}"#)["success"],
            false
        );
    }

    #[test]
    fn auth_checks_a_signature_never_the_secret() {
        let registry = Registry::new(Some(("key".to_owned(), "secret".to_owned())));
        assert_eq!(
            ask(&registry, r#"{"op":"auth","args":["key","secret"]}"#)["success"],
            false,
            "the secret itself is refused"
        );
        let expires = 4_102_444_800_000_u64; // 2100
        let bad = json!({"op": "auth", "args": ["key", expires, crate::bybit::signature("nope", expires)]});
        assert_eq!(ask(&registry, &bad.to_string())["success"], false);
        assert!(!registry.is_authenticated(1));
        let past =
            json!({"op": "auth", "args": ["key", 1000, crate::bybit::signature("secret", 1000)]});
        assert_eq!(
            ask(&registry, &past.to_string())["success"],
            false,
            "expired"
        );
        let good = json!({"op": "auth", "args": ["key", expires.to_string(), crate::bybit::signature("secret", expires)]});
        assert_eq!(ask(&registry, &good.to_string())["success"], true);
        assert!(registry.is_authenticated(1));
    }
}
