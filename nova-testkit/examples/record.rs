//! Records a live session to a fixture file: starts a recording relay in front of a WebSocket
//! server and prints the URL to point your client at; press Enter (or close stdin) to stop.
//!
//! ```text
//! cargo run -p nova-testkit --example record -- wss://www.deribit.com/ws/api/v2 incident.jsonl \
//!     --field client_secret --field access_token --field refresh_token --secret-env API_SECRET
//! ```
//!
//! `--field NAME` redacts the value of every JSON member `NAME`; `--secret-env VAR` redacts
//! every occurrence of the value of environment variable `VAR`; `--also URL` relays a second
//! upstream the server may send the client to; `--note TEXT` goes into the header. The file is
//! written as frames arrive. Replay it with `nova_testkit::replay::ReplayServer::load`.

use std::time::Duration;

use nova_testkit::replay::{Redactions, Relay, RelayOptions};

const USAGE: &str = "usage: record UPSTREAM_URL FILE [--field NAME]... [--secret-env VAR]... \
                     [--also URL]... [--note TEXT]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(upstream), Some(file)) = (args.next(), args.next()) else {
        return Err(USAGE.into());
    };
    let mut redactions = Redactions::new();
    let mut options = RelayOptions::default().file(&file);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--field" => redactions = redactions.field(value),
            "--secret-env" => redactions = redactions.string(std::env::var(&value)?),
            "--also" => options = options.also(value),
            "--note" => options = options.note(value),
            _ => return Err(USAGE.into()),
        }
    }
    let relay = Relay::start(&upstream, options.redactions(redactions)).await?;
    println!("recording to {file}; point the client at {}", relay.url());
    for i in 0.. {
        let Some(url) = relay.also_url(i) else { break };
        println!("  (the relay of --also #{i} listens at {url})");
    }
    println!("press Enter to stop");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await?;
    let recording = relay.finish(Duration::from_secs(2)).await;
    println!(
        "{} records in {} connections written to {file}",
        recording.records.len(),
        recording.connections().len()
    );
    Ok(())
}
