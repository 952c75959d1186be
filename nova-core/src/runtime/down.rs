//! The connection task while no connection is open: deciding what follows a failed connect or a
//! lost connection (the handler's policy, Retry-After, permanent errors), counting attempts
//! against `max_reconnect_attempts`, and the wait before the next attempt, during which commands
//! are still served and request deadlines still expire.

use std::time::Duration;

use tokio::time::Instant;

use super::commands::Control;
use super::driver::{Driver, sleep_until_opt};
use super::events::LifecycleEvent;
use super::observe::millis;
use super::requests::Timer;
use crate::error::Error;
use crate::handler::{Context, ErrorSource, Handler, ReconnectDecision};
use crate::telemetry::EventKind;
use crate::types::{ConnectionStatus, DisconnectReason, StopReason};

/// What follows a connection or a connect attempt that ended: reconnect after the delay (with
/// the error that ended the last one), or stop.
pub(crate) type Next = Result<(Duration, String), StopReason>;

impl<H: Handler> Driver<H> {
    /// Decides what follows a failed connect.
    pub(super) fn after_connect_failure(&mut self, error: Error) -> Next {
        let attempt = self.obs.state.reconnection_attempts;
        self.obs.state.status = ConnectionStatus::Disconnected;
        self.obs.publish();
        self.obs.emit(LifecycleEvent::ConnectFailed {
            kind: error.kind(),
            error: error.to_string(),
            attempt,
        });
        self.obs.event(EventKind::ConnectionFailed {
            error_type: error.kind(),
        });
        self.down_since.get_or_insert_with(Instant::now);
        self.log(&error, ErrorSource::Connect);
        let permanent = match &error {
            Error::Transport(t) => t.is_permanent(),
            Error::Endpoint(e) => e.is_fatal(),
            _ => false,
        };
        if permanent {
            return Err(StopReason::Fatal(error.to_string()));
        }
        let decision = {
            let ctx = Context::new(&self.obs.state, &self.config, &mut self.out);
            self.handler.should_reconnect(&error, attempt, &ctx)
        };
        let after = match decision {
            ReconnectDecision::Stop { reason } => return Err(StopReason::Policy(reason)),
            ReconnectDecision::Reconnect { after } => after,
        };
        let mut delay = after.unwrap_or_else(|| self.config.backoff().delay(attempt));
        if let Some(retry_after) = error.retry_after() {
            delay = delay.max(retry_after.min(self.config.max_retry_after));
        }
        Ok((delay, error.to_string()))
    }

    /// Decides what follows the end of a connection.
    pub(super) fn after_disconnect(&mut self, reason: DisconnectReason) -> Next {
        let decision = {
            let ctx = Context::new(&self.obs.state, &self.config, &mut self.out);
            self.handler.handle_disconnect(&reason, &ctx)
        };
        match decision {
            ReconnectDecision::Reconnect { after } => {
                let attempt = self.obs.state.reconnection_attempts;
                let delay = after.unwrap_or_else(|| self.config.backoff().delay(attempt));
                Ok((delay, reason.to_string()))
            }
            ReconnectDecision::Stop { reason } => Err(StopReason::Policy(reason)),
        }
    }

    /// Counts the attempt and sleeps, serving commands meanwhile. `Some(stop)` ends the client.
    pub(super) async fn wait_before_reconnect(
        &mut self,
        delay: Duration,
        last_error: String,
    ) -> Option<StopReason> {
        let attempts = self.obs.state.reconnection_attempts;
        if self
            .config
            .max_reconnect_attempts
            .is_some_and(|max| attempts >= max)
        {
            return Some(StopReason::MaxAttemptsReached {
                attempts,
                last_error,
            });
        }
        self.obs.state.reconnection_attempts = attempts.saturating_add(1);
        self.obs.publish();
        let attempt = self.obs.state.reconnection_attempts;
        self.obs
            .emit(LifecycleEvent::ReconnectScheduled { attempt, delay });
        self.obs
            .event(EventKind::ReconnectionStarted { attempt, delay });
        tracing::info!(
            attempt,
            delay_ms = millis(delay),
            "reconnecting after delay"
        );
        if delay.is_zero() {
            // At once: a timer, even one already due, waits for the timer wheel's next tick
            // (about a millisecond, often two).
            return None;
        }
        let wake = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => return None,
                () = sleep_until_opt(self.requests.next_timer()) => self.on_timers_while_down(),
                command = self.control_rx.recv() => {
                    if let Some(stop) = self.on_control_while_down(command) {
                        return Some(stop);
                    }
                }
            }
        }
    }

    /// A command while no connection is open. `Some(stop)` ends the client.
    pub(super) fn on_control_while_down(
        &mut self,
        command: Option<Box<Control>>,
    ) -> Option<StopReason> {
        match command.map(|c| *c) {
            None => Some(StopReason::HandlesDropped),
            Some(Control::Close { code, done, .. }) => {
                self.close_waiters.push(done);
                Some(StopReason::Closed { code })
            }
            Some(Control::Subscribe(command)) => {
                self.add_subscription(command);
                self.obs.publish();
                None
            }
            Some(Control::Unsubscribe { id, done }) => {
                self.remove_subscription(id);
                if let Some(done) = done {
                    let _ = done.send(());
                }
                None
            }
        }
    }

    /// Expires request deadlines while disconnected (the callers have their own timeout too).
    fn on_timers_while_down(&mut self) {
        let now = Instant::now();
        while let Some((at, timer)) = self.requests.pop_due(now) {
            if let Timer::Deadline(id) = timer {
                self.expire(&id, at);
            }
        }
    }
}
