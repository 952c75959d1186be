//! bybit_stream: Bybit V5 pushes, one JSON line each on stdout, exactly as received.
//!
//! Connects to a Bybit public endpoint (mainnet linear by default) through nova's Bybit
//! adapter and subscribes to every `--topic` (default `tickers.BTCUSDT`). With
//! `--private-url` or `--private-topic`, it also connects to the private endpoint (mainnet by
//! default), authenticating with `BYBIT_API_KEY` / `BYBIT_API_SECRET`, and subscribes to every
//! `--private-topic`. Every data message, public and private, goes to stdout as received;
//! connects, restores, book gaps and their closing go to stderr. It exits 0 after `--count N`
//! data messages, or on SIGTERM (or Ctrl-C) once stdout is flushed.
//!
//! ```text
//! cargo run -p nova-examples --example bybit_stream -- --count 5
//! cargo run -p nova-examples --example bybit_stream -- \
//!     --url wss://stream.bybit.com/v5/public/linear --topic orderbook.50.BTCUSDT --topic tickers.BTCUSDT
//! BYBIT_API_KEY=… BYBIT_API_SECRET=… cargo run -p nova-examples --example bybit_stream -- \
//!     --private-url wss://stream.bybit.com/v5/private --private-topic order
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use nova::SubscriptionEvent;
use nova_bybit::{BybitClient, BybitConfig, Credentials, Endpoint};

const USAGE: &str = "usage: bybit_stream [--url wss://stream.bybit.com/v5/public/linear] [--topic NAME]... \
[--private-url wss://stream.bybit.com/v5/private] [--private-topic NAME]... [--count N]";

struct Args {
    url: String,
    topics: Vec<String>,
    private_url: Option<String>,
    private_topics: Vec<String>,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: Endpoint::Linear.mainnet_url(),
        topics: Vec::new(),
        private_url: None,
        private_topics: Vec::new(),
        count: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--url" => args.url = value("--url")?,
            "--topic" => args.topics.push(value("--topic")?),
            "--private-url" => args.private_url = Some(value("--private-url")?),
            "--private-topic" => args.private_topics.push(value("--private-topic")?),
            "--count" => {
                let n = value("--count")?;
                args.count = Some(n.parse().map_err(|_| format!("bad --count {n:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.topics.is_empty() {
        args.topics.push("tickers.BTCUSDT".to_owned());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    nova_examples::init_logging("nova_core=warn,nova_bybit=info");
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    nova_examples::exit_code("bybit_stream", run(args).await)
}

/// What the subscription tasks hand to the writer.
enum Item {
    /// A data message, as received.
    Line(String),
    /// Something for stderr.
    Note(String),
}

fn connect(url: &str, config: BybitConfig) -> Result<BybitClient, Box<dyn std::error::Error>> {
    let client_config = BybitClient::config_builder(url, &config)
        .name("bybit_stream")
        .backoff(Duration::from_millis(250), Duration::from_secs(5))
        .build()?;
    let (client, unclaimed) =
        BybitClient::connect_with(client_config, nova_bybit::BybitAdapter::new(config));
    // Everything printed arrives through the subscriptions; nothing else is read.
    drop(unclaimed);
    Ok(client)
}

fn endpoint_of(url: &str) -> Result<Endpoint, String> {
    Endpoint::from_url(url).ok_or_else(|| format!("{url} is not a Bybit V5 endpoint URL"))
}

async fn subscribe_all(
    client: &BybitClient,
    topics: &[String],
    tx: &tokio::sync::mpsc::Sender<Item>,
) -> Result<(), Box<dyn std::error::Error>> {
    for topic in topics {
        let mut stream = client.subscribe(topic.as_str()).await?;
        eprintln!("subscribed to {topic}");
        let tx = tx.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                let item = match event {
                    SubscriptionEvent::Message(m) => match m.as_text() {
                        Some(text) => Item::Line(text.to_owned()),
                        None => {
                            Item::Note(format!("{topic}: a binary message ({} bytes)", m.len()))
                        }
                    },
                    SubscriptionEvent::Restored => Item::Note(format!("{topic}: restored")),
                    SubscriptionEvent::Gap { gap, action } => Item::Note(format!(
                        "{topic}: gap after u {:?} (got {:?}); {action}",
                        gap.last, gap.got
                    )),
                    SubscriptionEvent::GapClosed { value } => {
                        Item::Note(format!("{topic}: gap closed by a snapshot at u {value}"))
                    }
                    other => Item::Note(format!("{topic}: {other:?}")),
                };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = endpoint_of(&args.url)?;
    let mut clients = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(1024);

    eprintln!("connecting to {}", args.url);
    let public = connect(&args.url, BybitConfig::new(endpoint))?;
    subscribe_all(&public, &args.topics, &tx).await?;
    clients.push(public);

    if args.private_url.is_some() || !args.private_topics.is_empty() {
        let url = args
            .private_url
            .clone()
            .unwrap_or_else(|| Endpoint::Private.mainnet_url());
        let credentials = Credentials::from_env()
            .ok_or("the private stream needs BYBIT_API_KEY and BYBIT_API_SECRET")?;
        eprintln!("connecting to {url} (authenticating)");
        let config = BybitConfig::new(endpoint_of(&url)?).credentials(credentials);
        let private = connect(&url, config)?;
        subscribe_all(&private, &args.private_topics, &tx).await?;
        clients.push(private);
    }
    drop(tx);

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            _ = terminate.recv() => {
                eprintln!("SIGTERM");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted");
                break;
            }
        };
        match item {
            Some(Item::Line(line)) => {
                writeln!(out, "{line}")?;
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
                // Flush when nothing else is waiting: lines go out promptly, in batches under load.
                if rx.is_empty() {
                    out.flush()?;
                }
            }
            Some(Item::Note(note)) => eprintln!("{note}"),
            None => break,
        }
    }
    out.flush()?;
    drop(out);
    eprintln!("{printed} data messages");
    for client in clients {
        let _ = client.close().await;
    }
    Ok(())
}
