//! Scenario 5: the cost of telemetry. The same nova client three ways, side by side:
//!
//! - **off**: `nova_core::telemetry::set_disabled(true)` before the client connects;
//! - **metrics**: telemetry on with a Prometheus recorder installed (every counter and histogram
//!   is really recorded; `tracing` events go nowhere, no subscriber being installed);
//! - **metrics + handler**: as above, plus an attached handler counting every event (the seed's
//!   `:telemetry.attach`), which makes every message build and dispatch an event.
//!
//! Measured with the handler-callback flood (per-message costs show most there: no second task)
//! and the request round trip. The recorder is process-wide and cannot be removed, so this
//! scenario runs last.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_exporter_prometheus::PrometheusBuilder;
use nova_core::telemetry::{self, TelemetryEvent};

use crate::BoxError;
use crate::limits::median;
use crate::rtt::Latency;
use crate::server::ServerThread;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    Metrics,
    MetricsAndHandler,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Off => "telemetry off",
            Mode::Metrics => "on: Prometheus recorder",
            Mode::MetricsAndHandler => "on: recorder + attached handler",
        }
    }
}

const MODES: [Mode; 3] = [Mode::Off, Mode::Metrics, Mode::MetricsAndHandler];

/// Throughput and p99 of each mode, in [`MODES`] order.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    /// `(label, msg/s, request p50 µs, request p99 µs)`.
    pub(crate) rows: Vec<(&'static str, f64, f64, f64)>,
}

/// Runs every mode `runs` times and prints the table.
pub(crate) async fn run(
    servers: Arc<ServerThread>,
    messages: u64,
    requests: u64,
    runs: usize,
) -> Result<Report, BoxError> {
    println!(
        "== telemetry on / off: handler-callback flood of {messages} and {requests} requests, {runs} run(s), median =="
    );
    let recorder = PrometheusBuilder::new().install_recorder();
    if let Err(e) = &recorder {
        println!("  (Prometheus recorder not installed: {e}; \"on\" rows record into whatever is)");
    }
    let events = Arc::new(AtomicU64::new(0));
    let mut rates = vec![Vec::new(); MODES.len()];
    let mut lats: Vec<Vec<Latency>> = vec![Vec::new(); MODES.len()];
    for _ in 0..runs {
        for (i, mode) in MODES.into_iter().enumerate() {
            telemetry::set_disabled(mode == Mode::Off);
            let attached = (mode == Mode::MetricsAndHandler).then(|| {
                let events = events.clone();
                telemetry::attach(move |_: &TelemetryEvent| {
                    events.fetch_add(1, Ordering::Relaxed);
                })
            });
            let result = async {
                let (elapsed, tally) = crate::throughput::nova_handler(&servers, messages).await?;
                if tally.count != messages {
                    return Err(format!("{}: parsed {tally:?}", mode.label()).into());
                }
                let latency = crate::rtt::nova_run(&servers, requests).await?;
                Ok::<_, BoxError>((elapsed, latency))
            }
            .await;
            if let Some(id) = attached {
                telemetry::detach(id);
            }
            telemetry::set_disabled(false);
            let (elapsed, latency) = result?;
            rates[i].push(messages as f64 / elapsed.as_secs_f64());
            lats[i].push(latency);
        }
    }
    let rows: Vec<_> = MODES
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let p50: Vec<f64> = lats[i].iter().map(|l| l.p50).collect();
            let p99: Vec<f64> = lats[i].iter().map(|l| l.p99).collect();
            (m.label(), median(&rates[i]), median(&p50), median(&p99))
        })
        .collect();
    let off = rows[0].1;
    println!(
        "  {:<34} {:>10} {:>10} {:>9} {:>9}",
        "mode", "msg/s", "vs off", "p50 µs", "p99 µs"
    );
    for (label, rate, p50, p99) in &rows {
        println!(
            "  {label:<34} {rate:>10.0} {:>10} {p50:>9.1} {p99:>9.1}",
            format!("ratio {:.2}", rate / off)
        );
    }
    if let Ok(handle) = &recorder {
        let series = handle
            .render()
            .lines()
            .filter(|l| l.starts_with("nova_"))
            .count();
        println!(
            "  (recorded: {series} nova_* sample lines in the Prometheus output; {} events seen by the handler)",
            events.load(Ordering::Relaxed)
        );
    }
    Ok(Report { rows })
}
