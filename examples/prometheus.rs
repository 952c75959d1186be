//! Prometheus metrics for nova clients, in one line of setup.
//!
//! Installs `metrics-exporter-prometheus` serving `/metrics` on `--listen` (default
//! `127.0.0.1:9464`), then runs a client against the built-in JSON-RPC simulator: it subscribes
//! to two channels, receives a stream of notifications, and goes through a forced reconnect
//! every few seconds, so every panel of `examples/grafana/nova-dashboard.json` has data.
//!
//! ```text
//! cargo run -p nova-examples --example prometheus -- --seconds 60
//! curl -s 127.0.0.1:9464/metrics | grep nova_
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use nova_examples::prometheus::{Options, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    nova_examples::init_logging("info");
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                options.listen = args
                    .next()
                    .ok_or("--listen needs an address")?
                    .parse::<SocketAddr>()?
            }
            "--seconds" => {
                options.run_for =
                    Duration::from_secs(args.next().ok_or("--seconds needs a number")?.parse()?);
            }
            "--help" | "-h" => {
                println!("usage: prometheus [--listen ADDR] [--seconds N]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    nova_examples::prometheus::install(options.listen)?;
    println!("serving metrics on http://{}/metrics", options.listen);
    let summary = run(&options).await?;
    println!("{summary}");
    Ok(())
}
