//! Scenario 1: a flood of Deribit `book` notifications, received by a bare tokio-tungstenite +
//! serde loop and by nova three ways (subscription stream, handler callback, `Messages`).
//!
//! Each run starts a fresh [`JsonRpcServer`] on the server thread;
//! the client connects (and, where it subscribes, waits for the ack), then the server writes the
//! notifications as pre-encoded raw frames as fast as TCP takes them. The clock runs from the
//! start of the flood to the last notification parsed by the consumer. Variants are interleaved
//! run by run (bare, stream, handler, messages, bare, ...) so that background load hits them
//! alike; the median of the runs is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nova_core::{Client, ClientConfig, DefaultHandler, Delivery, Handler, SubscriptionEvent};
use nova_testkit::{JsonRpcServer, TestServer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::BoxError;
use crate::adapter::{BenchAdapter, response_id, rpc};
use crate::limits::median;
use crate::payload::{CHANNEL, Tally, generic_notification, notification};
use crate::server::{ServerThread, next_connection, next_connection_of};

/// The variants, in the order they run and are printed.
const VARIANTS: [Variant; 9] = [
    Variant::Bare,
    Variant::BareDeribit,
    Variant::BareGeneric,
    Variant::Generated,
    Variant::GeneratedGeneric,
    Variant::DeribitTyped,
    Variant::Messages,
    Variant::Handler,
    Variant::Stream,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// The bare loop, parsing the benchmark's borrowing struct.
    Bare,
    /// The bare loop, parsing into nova-deribit's `BookUpdate` (the same struct the typed
    /// stream hands over).
    BareDeribit,
    /// The bare loop on the `generic` kind's envelope (the same book change, data on a
    /// `topic`), parsing the same borrowing book struct.
    BareGeneric,
    /// The stream through the adapter nova-gen writes (`--platform jsonrpc`, the golden crate
    /// `platforms/nova-gen-golden`); the consumer parses as the bare loop does.
    Generated,
    /// The stream through the adapter nova-gen writes for `--platform generic` (the golden
    /// crate `platforms/nova-gen-golden-generic`), against a server of that kind; the consumer
    /// parses as [`BareGeneric`](Self::BareGeneric) does.
    GeneratedGeneric,
    /// nova-deribit's typed stream: the adapter parses once, the consumer reads the value.
    DeribitTyped,
    /// `Messages` with every default.
    Messages,
    /// A handler callback counting every message (no second task).
    Handler,
    /// The stream through the benchmark's own adapter (a fixed-prefix classification no
    /// shipped adapter uses): a reference row only.
    Stream,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare tokio-tungstenite + serde",
            Variant::BareDeribit => "bare + serde into nova-deribit types",
            Variant::BareGeneric => "bare + serde, generic envelope",
            Variant::Generated => "nova stream, nova-gen jsonrpc adapter",
            Variant::GeneratedGeneric => "nova stream, nova-gen generic adapter",
            Variant::DeribitTyped => "nova stream, nova-deribit typed",
            Variant::Messages => "nova Messages (DefaultHandler)",
            Variant::Handler => "nova handler callback",
            Variant::Stream => "(ref) nova stream, bench adapter",
        }
    }

    /// The bare variant this one is compared with.
    fn baseline(self) -> Variant {
        match self {
            Variant::DeribitTyped => Variant::BareDeribit,
            Variant::GeneratedGeneric => Variant::BareGeneric,
            _ => Variant::Bare,
        }
    }
}

/// Median messages per second of each variant, in [`VARIANTS`] order.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    /// `(label, median msg/s, every run's msg/s)`.
    pub(crate) rows: Vec<(&'static str, f64, Vec<f64>)>,
}

impl Report {
    /// Median msg/s of the row labelled `label`.
    pub(crate) fn rate(&self, label: &str) -> f64 {
        self.rows
            .iter()
            .find(|(l, _, _)| *l == label)
            .map_or(0.0, |(_, r, _)| *r)
    }

    /// The bare loop's median msg/s.
    pub(crate) fn bare(&self) -> f64 {
        self.rate(Variant::Bare.label())
    }

    /// The lowest median msg/s of the subscription streams through shipped adapters, each
    /// over its own bare baseline.
    pub(crate) fn shipped_stream_ratio(&self) -> f64 {
        [
            Variant::Generated,
            Variant::GeneratedGeneric,
            Variant::DeribitTyped,
        ]
        .into_iter()
        .map(|v| self.rate(v.label()) / self.rate(v.baseline().label()).max(1.0))
        .fold(f64::INFINITY, f64::min)
    }

    /// `Messages`' median msg/s over the bare loop's.
    pub(crate) fn messages_ratio(&self) -> f64 {
        self.rate(Variant::Messages.label()) / self.bare().max(1.0)
    }
}

/// Runs every variant `runs` times with `messages` notifications each, and prints the table.
pub(crate) async fn run(
    servers: Arc<ServerThread>,
    messages: u64,
    runs: usize,
    only: Option<&str>,
) -> Result<Report, BoxError> {
    let size = notification(CHANNEL, 0).len();
    println!(
        "== throughput: {messages} notifications of {size} bytes on {CHANNEL}, typed serde parse, {runs} run(s), median =="
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut reference: Option<Tally> = None;
    for _ in 0..runs {
        for (i, variant) in VARIANTS.into_iter().enumerate() {
            if only.is_some_and(|o| !variant.label().contains(o)) {
                continue;
            }
            let cpu_before = servers.client_cpu_ticks();
            let (elapsed, tally) = one(&servers, variant, messages).await?;
            let ticks = servers.client_cpu_ticks().saturating_sub(cpu_before);
            // Ticks are 10 ms: CPU ns per message.
            cpu[i].push(ticks as f64 * 1e7 / messages as f64);
            if tally.bad > 0 || tally.count != messages {
                return Err(format!("{}: parsed {tally:?}", variant.label()).into());
            }
            match reference {
                None => reference = Some(tally),
                Some(r) if r != tally => {
                    return Err(format!("{}: tally {tally:?} != {r:?}", variant.label()).into());
                }
                Some(_) => {}
            }
            rates[i].push(messages as f64 / elapsed.as_secs_f64());
        }
    }
    let cpu: Vec<f64> = cpu.iter().map(|c| median(c)).collect();
    let rows: Vec<_> = VARIANTS
        .into_iter()
        .zip(rates)
        .map(|(v, r)| (v.label(), median(&r), r))
        .collect();
    let report = Report { rows };
    for (i, (label, rate, all)) in report.rows.iter().enumerate() {
        if all.is_empty() {
            continue;
        }
        let variant = VARIANTS[i];
        let base = VARIANTS
            .iter()
            .position(|v| *v == variant.baseline())
            .unwrap_or(0);
        let (base_rate, base_cpu) = (report.rows[base].1, cpu[base]);
        let is_bare = matches!(
            variant,
            Variant::Bare | Variant::BareDeribit | Variant::BareGeneric
        );
        let cpu_ratio = if is_bare || base_cpu == 0.0 {
            String::new()
        } else {
            format!(" (x{:.2})", cpu[i] / base_cpu)
        };
        let runs: Vec<String> = all.iter().map(|r| format!("{:.0}", r / 1e3)).collect();
        let ratio = if is_bare || base_rate == 0.0 {
            String::new()
        } else {
            format!("ratio {:.2}", rate / base_rate)
        };
        println!(
            "  {label:<34} {:>10.0} msg/s  {ratio:<10}  client CPU {:>5.0} ns/msg{cpu_ratio:<8}  runs (k msg/s): {}",
            rate,
            cpu[i],
            runs.join(" ")
        );
    }
    Ok(report)
}

async fn one(
    servers: &ServerThread,
    variant: Variant,
    messages: u64,
) -> Result<(Duration, Tally), BoxError> {
    match variant {
        Variant::Bare => bare(servers, messages, Tally::add).await,
        Variant::BareDeribit => bare(servers, messages, Tally::add_deribit).await,
        Variant::BareGeneric => bare_generic(servers, messages).await,
        Variant::Generated => {
            let adapter = nova_gen_golden::GenGoldenAdapter::new(None);
            nova_stream(servers, messages, adapter).await
        }
        Variant::GeneratedGeneric => generic_stream(servers, messages).await,
        Variant::DeribitTyped => deribit_typed(servers, messages).await,
        Variant::Stream => nova_stream(servers, messages, BenchAdapter::new()).await,
        Variant::Handler => nova_handler(servers, messages).await,
        Variant::Messages => nova_messages(servers, messages).await,
    }
}

fn nova_config(url: String) -> Result<ClientConfig, BoxError> {
    Ok(ClientConfig::builder(url).name("bench").build()?)
}

/// Where a row's notifications come from: the server, its URL, and how each one is written.
struct Source<'s> {
    server: &'s TestServer,
    url: String,
    encode: fn(&str, u64) -> String,
}

impl<'s> Source<'s> {
    /// The JSON-RPC simulator, flooding Deribit-shaped notifications.
    fn json_rpc(server: &'s JsonRpcServer) -> Self {
        Self {
            server: server.server(),
            url: server.url(),
            encode: notification,
        }
    }

    /// The `generic` kind's server, flooding the same book in the generic envelope.
    fn generic(server: &'s TestServer) -> Self {
        Self {
            server,
            url: server.url(),
            encode: generic_notification,
        }
    }
}

/// The bare loop against the JSON-RPC server: `public/subscribe`, then parse with `parse`.
async fn bare(
    servers: &ServerThread,
    messages: u64,
    parse: fn(&mut Tally, &[u8]),
) -> Result<(Duration, Tally), BoxError> {
    let server = servers.json_rpc().await?;
    let source = Source::json_rpc(&server);
    let subscribe = rpc(
        1,
        "public/subscribe",
        &format!(r#"{{"channels":["{CHANNEL}"]}}"#),
    );
    let is_ack = |text: &str| response_id(text.as_bytes()) == Some(1);
    bare_row(servers, messages, &source, &subscribe, is_ack, parse).await
}

/// The bare loop against the `generic` kind's server: `{"op":"subscribe"}`, then parse each
/// message into the same book struct.
async fn bare_generic(
    servers: &ServerThread,
    messages: u64,
) -> Result<(Duration, Tally), BoxError> {
    let server = servers.generic().await?;
    let source = Source::generic(&server);
    let subscribe = format!(r#"{{"req_id":"1","op":"subscribe","args":["{CHANNEL}"]}}"#);
    let is_ack = |text: &str| text.contains(r#""req_id":"1""#);
    bare_row(
        servers,
        messages,
        &source,
        &subscribe,
        is_ack,
        Tally::add_generic,
    )
    .await
}

/// A bare tokio-tungstenite client: connect, subscribe, wait for the ack, then read the flood
/// and parse each message with `parse`.
async fn bare_row(
    servers: &ServerThread,
    messages: u64,
    source: &Source<'_>,
    subscribe: &str,
    is_ack: impl Fn(&str) -> bool,
    parse: fn(&mut Tally, &[u8]),
) -> Result<(Duration, Tally), BoxError> {
    let tcp = TcpStream::connect(source.server.addr()).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(source.url.as_str(), tcp).await?;
    ws.send(WsMessage::text(subscribe)).await?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) if is_ack(t.as_str()) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed before the ack".into()),
        }
    }
    let conn = next_connection_of(source.server).await?;
    let start = Instant::now();
    let pump = servers.flood(conn, CHANNEL, source.encode, messages);
    let mut tally = Tally::default();
    while tally.count + tally.bad < messages {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => parse(&mut tally, t.as_bytes()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed during the flood".into()),
        }
    }
    let elapsed = start.elapsed();
    pump.await?;
    let _ = ws.close(None).await;
    Ok((elapsed, tally))
}

/// The stream through the crate nova-gen generates for `--platform generic`, against the
/// generic server; the consumer parses each message as [`bare_generic`] does.
async fn generic_stream(
    servers: &ServerThread,
    messages: u64,
) -> Result<(Duration, Tally), BoxError> {
    let server = servers.generic().await?;
    let source = Source::generic(&server);
    let adapter = nova_gen_golden_generic::GenGoldenGenericAdapter::new(None);
    stream_row(servers, messages, &source, adapter, |tally, m| {
        tally.add_generic(m.as_bytes());
    })
    .await
}

/// nova through `Client::subscribe`'s stream, with `adapter`; the consumer parses each
/// message as the bare loop does.
async fn nova_stream<H: Handler>(
    servers: &ServerThread,
    messages: u64,
    adapter: H,
) -> Result<(Duration, Tally), BoxError> {
    let server = servers.json_rpc().await?;
    let source = Source::json_rpc(&server);
    stream_row(servers, messages, &source, adapter, |tally, m| {
        tally.add(m.as_bytes());
    })
    .await
}

/// nova-deribit's typed stream: the adapter classifies each notification and reads the book's
/// position; the consumer asks for the typed `BookUpdate`, parsed then, once.
async fn deribit_typed(
    servers: &ServerThread,
    messages: u64,
) -> Result<(Duration, Tally), BoxError> {
    use nova_deribit::{DeribitAdapter, DeribitConfig, MarketData, SUBSCRIPTION_METHOD};
    let server = servers.json_rpc().await?;
    let source = Source::json_rpc(&server);
    let adapter = DeribitAdapter::new(DeribitConfig::default().heartbeat(None));
    stream_row(
        servers,
        messages,
        &source,
        adapter,
        |tally, m| match m.get::<MarketData>() {
            Some(MarketData::Book(book)) => tally.add_book(SUBSCRIPTION_METHOD, CHANNEL, book),
            _ => tally.bad += 1,
        },
    )
    .await
}

/// A nova client with `adapter`: subscribe, then read the flood from the subscription's
/// stream, each delivery counted by `count`.
async fn stream_row<H: Handler>(
    servers: &ServerThread,
    messages: u64,
    source: &Source<'_>,
    adapter: H,
    mut count: impl FnMut(&mut Tally, &Delivery),
) -> Result<(Duration, Tally), BoxError> {
    let (client, _messages) = Client::connect(nova_config(source.url.clone())?, adapter);
    client.wait_connected(Duration::from_secs(10)).await?;
    let mut stream = client.subscribe(CHANNEL, serde_json::Value::Null).await?;
    let conn = next_connection_of(source.server).await?;
    let start = Instant::now();
    let pump = servers.flood(conn, CHANNEL, source.encode, messages);
    let mut tally = Tally::default();
    while tally.count + tally.bad < messages {
        match stream.next().await {
            Some(SubscriptionEvent::Message(m)) => count(&mut tally, &m),
            Some(_) => {}
            None => return Err("stream ended during the flood".into()),
        }
    }
    let elapsed = start.elapsed();
    pump.await?;
    drop(stream);
    client.close(1000, "done").await?;
    Ok((elapsed, tally))
}

/// nova with `handle_message` parsing and counting (no subscription: every notification is
/// unrouted and reaches the handler).
pub(crate) async fn nova_handler(
    servers: &ServerThread,
    messages: u64,
) -> Result<(Duration, Tally), BoxError> {
    let server = servers.json_rpc().await?;
    let (adapter, done) = BenchAdapter::counting(messages);
    let (client, _messages) = Client::connect(nova_config(server.url())?, adapter);
    client.wait_connected(Duration::from_secs(10)).await?;
    let conn = next_connection(&server).await?;
    let start = Instant::now();
    let pump = servers.flood(conn, CHANNEL, notification, messages);
    let tally = done.await?;
    let elapsed = start.elapsed();
    pump.await?;
    client.close(1000, "done").await?;
    Ok((elapsed, tally))
}

/// nova with every default: each message goes to the `Messages` queue.
async fn nova_messages(
    servers: &ServerThread,
    messages: u64,
) -> Result<(Duration, Tally), BoxError> {
    let server = servers.json_rpc().await?;
    let (client, mut inbound) = Client::connect(nova_config(server.url())?, DefaultHandler);
    client.wait_connected(Duration::from_secs(10)).await?;
    let conn = next_connection(&server).await?;
    let start = Instant::now();
    let pump = servers.flood(conn, CHANNEL, notification, messages);
    let mut tally = Tally::default();
    while tally.count + tally.bad < messages {
        match inbound.next().await {
            Some(Ok(m)) => tally.add(m.as_bytes()),
            Some(Err(lagged)) => return Err(lagged.into()),
            None => return Err("messages ended during the flood".into()),
        }
    }
    let elapsed = start.elapsed();
    pump.await?;
    client.close(1000, "done").await?;
    Ok((elapsed, tally))
}
