//! slack_bot: a Slack Socket Mode bot. It acknowledges every envelope, answers slash commands
//! with a short text, and prints every envelope it handles on stdout as one JSON line, exactly as
//! received; logs go to stderr.
//!
//! Each connection's URL comes from `apps.connections.open` (a fresh ticket every time); Slack's
//! refreshes are make-before-break handovers, and a redelivered envelope is acknowledged without
//! being handled (or printed) again. Exits 0 after `--count` envelopes, or on SIGTERM / Ctrl-C
//! after flushing stdout; exits 1 when Slack disables the link or refuses the token. The app-level
//! token (`xapp-…`) comes from `SLACK_APP_TOKEN`.
//!
//! ```text
//! SLACK_APP_TOKEN=xapp-... cargo run -p nova-examples --example slack_bot -- --count 10
//! SLACK_APP_TOKEN=xapp-1-A0SIM-1-nova-test cargo run -p nova-examples --example slack_bot -- \
//!     --api-url http://127.0.0.1:PORT/api
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use nova::{HandlerError, Secret};
use nova_slack::{
    Ack, DEFAULT_API_URL, Envelope, EnvelopeType, SlackApp, SlackOptions, SocketModeApi,
};

const USAGE: &str = "usage: slack_bot [--api-url http://HOST:PORT/api] [--count N]";

struct Args {
    api_url: String,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        api_url: DEFAULT_API_URL.to_owned(),
        count: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--api-url" => args.api_url = it.next().ok_or("--api-url needs a value")?,
            "--count" => {
                let v = it.next().ok_or("--count needs a value")?;
                args.count = Some(v.parse().map_err(|_| format!("bad --count {v:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Answers slash commands; everything else is acknowledged plainly.
struct Bot;

impl SlackApp for Bot {
    fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
        if envelope.kind == EnvelopeType::SlashCommands && envelope.accepts_response_payload {
            #[derive(serde::Deserialize)]
            struct Command {
                #[serde(default)]
                command: String,
            }
            let command: Command = envelope
                .payload_as()
                .map_err(|e| HandlerError::new(e.to_string()))?;
            let reply = format!("nova got {} :wave:", command.command);
            return Ok(envelope.ack().with_text(&reply));
        }
        Ok(envelope.ack())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    nova_examples::init_logging("nova_core=warn,nova_slack=info");
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
    nova_examples::exit_code("slack_bot", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let token =
        Secret::new(std::env::var("SLACK_APP_TOKEN").map_err(|_| "SLACK_APP_TOKEN is not set")?);
    let api = SocketModeApi::builder(token)
        .api_url(args.api_url)
        .build()?;
    let config = nova_slack::config(api)
        .name("slack_bot")
        .backoff(Duration::from_millis(250), Duration::from_secs(30))
        .build()?;
    let (client, mut messages) = nova_slack::connect(config, Bot, SlackOptions::default());
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut ended = false;
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(Ok(m)) => {
                    if let Some(text) = m.as_text() {
                        writeln!(stdout, "{text}")?;
                        printed += 1;
                        if args.count.is_some_and(|n| printed >= n) {
                            break;
                        }
                    }
                }
                Some(Err(lagged)) => eprintln!("{lagged}"),
                None => { ended = true; break; }
            },
            _ = sigterm.recv() => { eprintln!("SIGTERM"); break; }
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted"); break; }
        }
    }
    stdout.flush()?;
    drop(stdout);
    eprintln!("{printed} envelopes");
    if ended {
        return Err(format!("client stopped: {}", client.stopped().await).into());
    }
    client.close(1000, "done").await?;
    Ok(())
}
