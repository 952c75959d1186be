//! eth_heads: every new block header of an Ethereum node, one JSON line each on stdout.
//!
//! Subscribes to `newHeads` over WebSocket through nova's Ethereum adapter. The stream survives
//! reconnects and node restarts: heads mined while the connection was down are fetched
//! (`eth_getBlockByNumber`) and printed in order before the live ones, none twice. When the
//! chain replaces heads already printed (a reorg), the reorg is told on stderr (depth, common
//! ancestor, the replaced and the new hashes) and the new chain's heads follow on stdout. What
//! happens to the connection (restored, gaps and how they were closed) goes to stderr.
//!
//! ```text
//! bash scripts/install-anvil.sh                  # a local dev node, from npm
//! .tools/bin/anvil --block-time 1 &              # ws://127.0.0.1:8545
//! cargo run -p nova-examples --example eth_heads                        # default URL
//! cargo run -p nova-examples --example eth_heads -- --url ws://127.0.0.1:8545 --count 5
//! ```

use std::process::ExitCode;
use std::time::Duration;

use nova::ClientConfig;
use nova_ethereum::{EthClient, EthEvent, EthItem, SubscriptionKind};

const USAGE: &str = "usage: eth_heads [--url ws://127.0.0.1:8545] [--count N]";

struct Args {
    url: String,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "ws://127.0.0.1:8545".to_owned(),
        count: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => args.url = it.next().ok_or("--url needs a value")?,
            "--count" => {
                let n = it.next().ok_or("--count needs a value")?;
                args.count = Some(n.parse().map_err(|_| format!("bad --count {n:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    nova_examples::init_logging("nova_core=warn");
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
    nova_examples::exit_code("eth_heads", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = ClientConfig::builder(&args.url)
        .name("eth_heads")
        .backoff(Duration::from_millis(250), Duration::from_secs(5))
        .build()?;
    let (eth, _messages) = EthClient::connect(config);
    eth.client().wait_connected(Duration::from_secs(10)).await?;
    eprintln!(
        "connected to {} (chain {}, block {})",
        args.url,
        eth.chain_id().await?,
        eth.block_number().await?
    );
    let mut heads = eth.subscribe(SubscriptionKind::NewHeads).await?;
    let mut printed = 0u64;
    while let Some(item) = heads.recv().await {
        match item {
            EthItem::Event(EthEvent::Reorg(reorg)) => {
                let hashes = |blocks: &[nova_ethereum::BlockRef]| {
                    blocks
                        .iter()
                        .map(|b| format!("{} {}", b.number, b.hash))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                eprintln!(
                    "reorg: depth {}, common ancestor {}; replaced [{}] by [{}]",
                    reorg.depth,
                    reorg
                        .common_ancestor
                        .as_ref()
                        .map_or("unknown".to_owned(), |a| format!("{} {}", a.number, a.hash)),
                    hashes(&reorg.old),
                    hashes(&reorg.new),
                );
            }
            EthItem::Event(head) => {
                println!("{}", serde_json::to_string(&head)?);
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            EthItem::Status(status) => eprintln!("subscription: {status:?}"),
            EthItem::Malformed { error, .. } => eprintln!("skipped a malformed head: {error}"),
            _ => {}
        }
    }
    eth.client().close(1000, "done").await?;
    Ok(())
}
