//! deribit_stream: Deribit notifications, one JSON line each on stdout.
//!
//! Connects to Deribit (the testnet by default) through nova's Deribit adapter, subscribes to
//! every `--channel` given (default `ticker.BTC-PERPETUAL.100ms`) and prints each notification
//! as `{"channel": ..., "data": ...}`. With `DERIBIT_CLIENT_ID` and `DERIBIT_CLIENT_SECRET` set,
//! it authenticates (`client_signature`), which private channels (`user.orders.…`) and `raw`
//! intervals need. Reconnects, restores, book gaps and how they were closed go to stderr.
//! `--count N` stops after N notifications.
//!
//! ```text
//! cargo run -p nova-examples --example deribit_stream -- --count 5
//! cargo run -p nova-examples --example deribit_stream -- \
//!     --channel book.BTC-PERPETUAL.100ms --channel deribit_price_index.btc_usd
//! DERIBIT_CLIENT_ID=… DERIBIT_CLIENT_SECRET=… cargo run -p nova-examples --example deribit_stream -- \
//!     --channel user.orders.any.any.raw
//! ```

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use nova::SubscriptionEvent;
use nova_deribit::{
    Channel, Credentials, DeribitAdapter, DeribitClient, DeribitConfig, Notification, TESTNET_URL,
};

const USAGE: &str = "usage: deribit_stream [--url wss://test.deribit.com/ws/api/v2] [--channel NAME]... [--count N]";

struct Args {
    url: String,
    channels: Vec<String>,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: TESTNET_URL.to_owned(),
        channels: Vec::new(),
        count: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => args.url = it.next().ok_or("--url needs a value")?,
            "--channel" => args
                .channels
                .push(it.next().ok_or("--channel needs a value")?),
            "--count" => {
                let n = it.next().ok_or("--count needs a value")?;
                args.count = Some(n.parse().map_err(|_| format!("bad --count {n:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.channels.is_empty() {
        args.channels.push("ticker.BTC-PERPETUAL.100ms".to_owned());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    nova_examples::init_logging("nova_core=warn,nova_deribit=info");
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
    nova_examples::exit_code("deribit_stream", run(args).await)
}

/// One subscription's events, tagged with its channel.
enum Item {
    Line(String),
    Note(String),
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = DeribitConfig::default().client_name("nova-deribit_stream", "0.1.0");
    match Credentials::from_env() {
        Some(credentials) => {
            eprintln!("authenticating as {}", credentials.client_id);
            config = config.credentials(credentials);
        }
        None => eprintln!("no DERIBIT_CLIENT_ID / DERIBIT_CLIENT_SECRET: public channels only"),
    }
    let client_config = DeribitClient::config_builder(&args.url, &config)
        .name("deribit_stream")
        .backoff(Duration::from_millis(250), Duration::from_secs(5))
        .build()?;
    let (deribit, unclaimed) =
        DeribitClient::connect_with(client_config, DeribitAdapter::new(config));
    // Everything here arrives through the subscriptions; nothing else is read.
    drop(unclaimed);
    eprintln!("connecting to {}", args.url);

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(1024);
    for name in &args.channels {
        let mut stream = deribit.subscribe(Channel::new(name.clone())).await?;
        eprintln!("subscribed to {name}");
        let tx = tx.clone();
        let name = name.clone();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                let item = match event {
                    SubscriptionEvent::Message(m) => match Notification::parse(&m) {
                        Ok(n) => Item::Line(
                            serde_json::json!({"channel": n.channel, "data": n.data}).to_string(),
                        ),
                        Err(e) => Item::Note(format!("{name}: undecodable notification: {e}")),
                    },
                    SubscriptionEvent::Restored => Item::Note(format!("{name}: restored")),
                    SubscriptionEvent::Gap { gap, action } => Item::Note(format!(
                        "{name}: gap after {:?} (got {:?}); {action}",
                        gap.last, gap.got
                    )),
                    SubscriptionEvent::GapClosed { value } => {
                        Item::Note(format!("{name}: gap closed at {value}"))
                    }
                    other => Item::Note(format!("{name}: {other:?}")),
                };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let mut printed = 0u64;
    while let Some(item) = rx.recv().await {
        match item {
            Item::Line(line) => {
                println!("{line}");
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            Item::Note(note) => eprintln!("{note}"),
        }
    }
    eprintln!("{printed} notifications");
    deribit.close().await?;
    Ok(())
}
