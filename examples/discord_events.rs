//! discord_events: every Discord Gateway dispatch (op 0), one JSON line each on stdout, exactly
//! as received (`op`, `s`, `t`, `d`); logs go to stderr.
//!
//! Discovers the gateway with `GET /gateway/bot` (or connects to `--gateway-url`), runs
//! `--shards` shards through nova-discord's adapter (resume after drops, zombie detection,
//! identify pacing), and exits 0 after `--count` dispatches or on SIGTERM / Ctrl-C after
//! flushing stdout. The token comes from `DISCORD_TOKEN`.
//!
//! ```text
//! DISCORD_TOKEN=... cargo run -p nova-examples --example discord_events -- --count 10
//! DISCORD_TOKEN=nova-test-token cargo run -p nova-examples --example discord_events -- \
//!     --api-url http://127.0.0.1:PORT/api/v10 --compress --shards 2
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nova::Secret;
use nova_discord::{
    DEFAULT_API_URL, DiscordConfig, Discovery, IdentifyLimiter, Intents, SessionStartLimit, Shards,
};

const USAGE: &str = "usage: discord_events [--api-url URL | --gateway-url ws://HOST:PORT/] \
                     [--intents N] [--shards N] [--compress] [--count N]";

struct Args {
    api_url: String,
    gateway_url: Option<String>,
    intents: u64,
    shards: Option<u32>,
    compress: bool,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        api_url: DEFAULT_API_URL.to_owned(),
        gateway_url: None,
        intents: (Intents::GUILDS | Intents::GUILD_MESSAGES).bits(),
        shards: None,
        compress: false,
        count: None,
    };
    let mut it = std::env::args().skip(1);
    let num = |flag: &str, v: Option<String>| -> Result<u64, String> {
        let v = v.ok_or(format!("{flag} needs a value"))?;
        v.parse().map_err(|_| format!("bad {flag} {v:?}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--api-url" => args.api_url = it.next().ok_or("--api-url needs a value")?,
            "--gateway-url" => {
                args.gateway_url = Some(it.next().ok_or("--gateway-url needs a value")?)
            }
            "--intents" => args.intents = num("--intents", it.next())?,
            "--shards" => {
                let n = num("--shards", it.next())?;
                args.shards = Some(u32::try_from(n).map_err(|_| "--shards too large")?);
            }
            "--compress" => args.compress = true,
            "--count" => args.count = Some(num("--count", it.next())?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    nova_examples::init_logging("nova_core=warn,nova_discord=info");
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
    nova_examples::exit_code("discord_events", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let token =
        Secret::new(std::env::var("DISCORD_TOKEN").map_err(|_| "DISCORD_TOKEN is not set")?);
    let (gateway_url, shards, limit) = match &args.gateway_url {
        Some(url) => {
            let limit = SessionStartLimit {
                total: 1000,
                remaining: 1000,
                reset_after: 86_400_000,
                max_concurrency: 1,
            };
            (url.clone(), args.shards.unwrap_or(1), limit)
        }
        None => {
            let gateway = Discovery::new(&args.api_url)?.gateway_bot(&token).await?;
            eprintln!(
                "gateway {} ({} shards recommended, {} identifies left)",
                gateway.url, gateway.shards, gateway.session_start_limit.remaining
            );
            (
                gateway.url,
                args.shards.unwrap_or(gateway.shards),
                gateway.session_start_limit,
            )
        }
    };
    let limiter = Arc::new(IdentifyLimiter::new(&limit, Instant::now()));
    let base = DiscordConfig::new(token, gateway_url, Intents::from_bits(args.intents))
        .with_compress(args.compress);
    let shards = Shards::connect(&base, shards.max(1), limiter, |b| {
        b.backoff(Duration::from_millis(250), Duration::from_secs(10))
    })?;
    // Every shard's dispatches into one bounded queue, printed by this task.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
    let mut clients = Vec::new();
    for shard in shards.into_shards() {
        let tx = tx.clone();
        let mut messages = shard.messages;
        clients.push(shard.client);
        tokio::spawn(async move {
            while let Some(Ok(m)) = messages.recv().await {
                if let Some(text) = m.as_text() {
                    if tx.send(text.to_owned()).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { break };
                writeln!(stdout, "{line}")?;
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            _ = sigterm.recv() => { eprintln!("SIGTERM"); break; }
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted"); break; }
        }
    }
    stdout.flush()?;
    drop(stdout);
    for client in clients {
        let _ = client.close(1000, "done").await;
    }
    eprintln!("{printed} dispatches");
    Ok(())
}
