//! The dispatcher: the one task that owns time in the simulator.
//!
//! Every [`check_interval`](super::SlackSimOptions::check_interval), and at once when woken (a
//! push, a connection becoming ready, a disconnect on demand), one step runs under the state
//! lock, in this order:
//!
//! 1. **Tick**: with [`envelope_interval`](super::SlackSimOptions::envelope_interval) set, push
//!    the generated envelopes that are due (kinds cycling through
//!    [`tick_kinds`](super::SlackSimOptions::tick_kinds)).
//! 2. **Deadlines**: in-flight envelopes past their ack deadline are queued again with
//!    `retry_attempt + 1`, or given up (see the ledger).
//! 3. **Refresh cycle**: a connection older than
//!    [`refresh_after`](super::SlackSimOptions::refresh_after) gets
//!    `{"type":"disconnect","reason":"refresh_requested"}` (optionally a `warning` some time
//!    before), stops getting new envelopes while another connection is ready, and is closed
//!    (code 1000) [`overlap`](super::SlackSimOptions::overlap) later. Acks on it still count
//!    until it closes.
//! 4. **Delivery**: queued envelopes go round-robin to the ready connections that are not
//!    draining; only when there is none, to draining ones that are not yet closing. A full
//!    connection queue is skipped; what cannot be placed waits for the next step.
//! 5. **Trim** the records kept.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use super::connection::Command;
use super::envelope::{disconnect_text, envelope_text, generated};
use super::{Shared, State, bump, lock};

/// Runs the dispatcher until the simulator shuts down.
pub(super) async fn run(shared: Arc<Shared>) {
    let options = &shared.options;
    let mut shutdown = shared.shutdown.subscribe();
    let mut next_tick = options.envelope_interval.map(|i| Instant::now() + i);
    loop {
        let mut wake_at = Instant::now() + options.check_interval;
        if let Some(tick) = next_tick {
            wake_at = wake_at.min(tick);
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
        let now = Instant::now();
        if let (Some(tick), Some(interval)) = (next_tick.as_mut(), options.envelope_interval) {
            // At most a bounded catch-up after a stall, so a paused runtime cannot flood.
            let mut due = 0;
            while *tick <= now && due < 100 {
                *tick += interval.max(Duration::from_millis(1));
                due += 1;
            }
            if *tick <= now {
                *tick = now + interval;
            }
            for _ in 0..due {
                push_generated(&shared);
            }
        }
        step(&shared, now.into_std());
    }
}

fn push_generated(shared: &Shared) {
    let mut state = lock(&shared.state);
    let n = state.generated;
    state.generated += 1;
    let spec = generated(&shared.options.tick_kinds, n);
    let pushed = state.push(spec, shared.options.max_unfinished);
    drop(state);
    if pushed.is_some() {
        bump(&shared.counters.envelopes_pushed);
    } else {
        bump(&shared.counters.pushes_refused);
    }
}

/// One step of the dispatcher at `now` (see the module docs).
pub(super) fn step(shared: &Shared, now: std::time::Instant) {
    let options = &shared.options;
    let counters = &shared.counters;
    let mut guard = lock(&shared.state);
    let state: &mut State = &mut guard;

    let State { ledger, ids, .. } = state;
    let (_requeued, given_up) =
        ledger.expire(now, options.max_redeliveries, options.retry_ids, || {
            ids.uuid()
        });
    counters
        .given_up
        .fetch_add(given_up, std::sync::atomic::Ordering::Relaxed);

    // Refresh cycle and closes after the overlap.
    for (&id, conn) in &mut state.conns {
        let Some(commands) = conn.commands.as_ref().filter(|_| conn.info.ready) else {
            continue;
        };
        let age = now.saturating_duration_since(conn.opened);
        if let Some(refresh_after) = options.refresh_after {
            if let Some(lead) = options.warning_before_refresh {
                if !conn.warned && age + lead >= refresh_after {
                    if commands
                        .try_send(Command::Text(disconnect_text(id, "warning")))
                        .is_ok()
                    {
                        bump(&counters.warnings_sent);
                    }
                    conn.warned = true;
                }
            }
            if !conn.refresh_sent && age >= refresh_after {
                let text = disconnect_text(id, "refresh_requested");
                if commands.try_send(Command::Text(text)).is_ok() {
                    bump(&counters.refreshes_requested);
                }
                conn.refresh_sent = true;
                conn.info.draining = true;
                conn.close_at = Some(now + options.overlap);
            }
        }
        if let Some(close_at) = conn.close_at {
            if close_at <= now && !conn.close_requested {
                let close = Command::Close(1000, "connection refreshed".to_owned());
                if commands.try_send(close).is_ok() {
                    conn.close_requested = true;
                }
            }
        }
    }

    // Delivery.
    let fresh: Vec<u64> = state
        .conns
        .iter()
        .filter(|(_, c)| c.commands.is_some() && c.info.ready && !c.info.draining)
        .map(|(&id, _)| id)
        .collect();
    let targets = if fresh.is_empty() {
        state
            .conns
            .iter()
            .filter(|(_, c)| c.commands.is_some() && c.info.ready && !c.close_requested)
            .map(|(&id, _)| id)
            .collect()
    } else {
        fresh
    };
    if !targets.is_empty() {
        let deadline = now + options.ack_deadline;
        'queue: while let Some(next) = state.ledger.next_queued() {
            let text = envelope_text(next.envelope_id, next.spec, next.retry_attempt);
            let (key, retry) = (next.key, next.retry_attempt > 0);
            for _ in 0..targets.len() {
                let index = usize::try_from(state.round_robin % targets.len() as u64).unwrap_or(0);
                state.round_robin = state.round_robin.wrapping_add(1);
                let Some(&id) = targets.get(index) else {
                    continue;
                };
                let Some(conn) = state.conns.get_mut(&id) else {
                    continue;
                };
                let Some(commands) = conn.commands.as_ref() else {
                    continue;
                };
                match commands.try_send(Command::Text(text.clone())) {
                    Ok(()) => {
                        conn.info.envelopes_sent += 1;
                        state.ledger.sent(key, id, deadline);
                        bump(&counters.envelopes_sent);
                        if retry {
                            bump(&counters.redeliveries);
                        }
                        continue 'queue;
                    }
                    Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {}
                }
            }
            // Every connection is full: try again on the next step.
            break;
        }
    }

    state.ledger.trim(options.records_kept);
}
