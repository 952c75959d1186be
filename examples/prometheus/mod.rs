//! The Prometheus example's body, shared with its test: install the exporter, drive a client
//! against the simulator.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use nova::{
    Client, ClientConfig, Context, HandlerError, Message, MessageType, RequestId, Subscription,
};
use nova_testkit::JsonRpcServer;
use serde_json::{Value, json};

/// What the run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where `/metrics` is served.
    pub listen: SocketAddr,
    /// How long the client runs.
    pub run_for: Duration,
    /// Time between forced reconnects.
    pub drop_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            run_for: Duration::from_secs(10),
            drop_every: Duration::from_secs(3),
        }
    }
}

/// Installs the Prometheus recorder with an HTTP listener; the one line a user needs.
///
/// # Errors
/// When a recorder is already installed or the address cannot be bound.
pub fn install(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()?;
    Ok(())
}

/// A JSON-RPC 2.0 protocol: responses by id, notifications by `params.channel`.
struct JsonRpc;

impl nova::ConnectionHandler for JsonRpc {}
impl nova::ErrorHandler for JsonRpc {}
impl nova::AuthHandler for JsonRpc {}
impl nova::HeartbeatHandler for JsonRpc {}
impl nova::RateLimitHandler for JsonRpc {}

impl nova::MessageHandler for JsonRpc {
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        /// The envelope, the channel borrowed from the message.
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            id: Option<u64>,
            #[serde(borrow)]
            params: Option<Params<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct Params<'a> {
            channel: Option<&'a str>,
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope<'m>>(message.as_bytes()) else {
            return MessageType::Unknown;
        };
        if let Some(id) = envelope.id {
            return MessageType::Response {
                id: RequestId::Num(id),
            };
        }
        match envelope.params.and_then(|p| p.channel) {
            Some(channel) => MessageType::subscription(channel),
            None => MessageType::Unknown,
        }
    }
}

impl nova::SubscriptionHandler for JsonRpc {
    fn subscribe(
        &mut self,
        sub: &Subscription,
        _: &Value,
        id: RequestId,
        _: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let id = match id {
            RequestId::Num(n) => json!(n),
            RequestId::Str(s) => json!(s),
        };
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "public/subscribe", "params": {"channels": [sub.channel]}});
        Ok(Message::text(body.to_string()))
    }
}

/// Runs a client against the simulator for `options.run_for`; returns a one-line summary.
///
/// # Errors
/// When the simulator cannot start or the client fails.
pub async fn run(options: &Options) -> Result<String, Box<dyn std::error::Error>> {
    let sim = JsonRpcServer::start().await?;
    let config = ClientConfig::builder(sim.url())
        .name("prometheus-example")
        .backoff(Duration::from_millis(100), Duration::from_secs(2))
        .heartbeat_interval(Some(Duration::from_millis(100)))
        .pong_timeout(Duration::from_secs(2))
        .build()?;
    let (client, _messages) = Client::connect(config, JsonRpc);
    let mut ticker = client
        .subscribe("ticker.BTC-PERPETUAL.100ms", json!({}))
        .await?;
    let mut book = client
        .subscribe("book.BTC-PERPETUAL.100ms", json!({}))
        .await?;
    let started = Instant::now();
    let mut next_drop = started + options.drop_every;
    let mut received = 0u64;
    let mut n = 0u64;
    while started.elapsed() < options.run_for {
        sim.publish(
            "ticker.BTC-PERPETUAL.100ms",
            json!({"n": n, "last_price": 97000.5}),
        )
        .await;
        sim.publish(
            "book.BTC-PERPETUAL.100ms",
            json!({"change_id": n, "bids": [["new", 96999.0, 10]]}),
        )
        .await;
        n += 1;
        for stream in [&mut ticker, &mut book] {
            if tokio::time::timeout(Duration::from_millis(200), stream.next_message())
                .await
                .is_ok()
            {
                received += 1;
            }
        }
        if Instant::now() >= next_drop {
            next_drop += options.drop_every;
            if let Some(conn) = sim.server().connections().last() {
                conn.close(1012, "service restart").await;
            }
        }
        // Quiet spells longer than the heartbeat interval: idle pings measure the round trip.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    client.close(1000, "done").await?;
    let reconnects = sim.server().connections_accepted().saturating_sub(1);
    Ok(format!(
        "received {received} notifications, {reconnects} reconnects"
    ))
}
