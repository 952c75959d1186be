//! Scenario 5: the cost of telemetry, nova with it on and off.
//!
//! nova's telemetry module (metrics + tracing + a handler API) has not landed yet, so there is
//! nothing to switch: this scenario prints a labelled placeholder and no number.

/// Prints the placeholder.
pub(crate) fn run() {
    println!("== telemetry on / off ==");
    println!(
        "  PLACEHOLDER: nova's telemetry module has not landed yet; no with/without figures are measured"
    );
}
