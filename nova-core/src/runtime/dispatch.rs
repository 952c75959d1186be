//! The way in: every frame read goes through `handle_frame`, then a data message through
//! validation, the pending authentication verdict, and classification, and is routed: a response
//! to whoever waits for its request id, subscription data to its stream, a heartbeat to the
//! heartbeat handler, anything else to `handle_message`. Also the runtime's timers (request
//! deadlines, resends, restore retries). Output goes to the outbox; nothing here does I/O.

use tokio::time::Instant;

use super::driver::{Driver, Link, Phase, SessionEnd};
use super::gaps::Routed;
use super::observe::millis;
use super::outbound::Wire;
use super::requests::{Awaiting, SubscribePurpose, Timer};
use crate::error::{Error, HandlerError};
use crate::handler::{
    AuthOutcome, ErrorSource, FrameAction, Handler, MessageType, RateLimitAction, RequestId,
};
use crate::message::{Frame, Message};
use crate::telemetry::EventKind;
use crate::types::ConnectionStatus;

impl<H: Handler> Driver<H> {
    /// A frame was read: `handle_frame`, then the message logic.
    pub(super) fn on_frame(&mut self, frame: Frame) -> Option<SessionEnd> {
        let action = {
            let mut ctx = ctx!(self);
            self.handler.handle_frame(&frame, &mut ctx)
        };
        match action {
            FrameAction::Continue => frame.into_message().and_then(|m| self.on_message(m)),
            FrameAction::Replace(message) => self.on_message(message),
            FrameAction::Consumed => None,
        }
    }

    fn on_message(&mut self, message: Message) -> Option<SessionEnd> {
        let kind = self.handler.message_type(&message);
        self.obs.telemetry.message_received(&kind, message.len());
        if let Some(auth_id) = self.auth.pending_id() {
            let answers_auth = matches!(&kind, MessageType::Response { id } if id == auth_id);
            if answers_auth || !matches!(kind, MessageType::Invalid(_)) {
                if let Some(end) = self.judge_auth(&message, answers_auth) {
                    return end;
                }
            }
        }
        match kind {
            MessageType::Invalid(e) => self.on_error(&Error::Handler(e), ErrorSource::Validation),
            MessageType::Response { id } => {
                self.on_response(id, message);
                None
            }
            MessageType::Subscription {
                route,
                data,
                sequence,
            } => match self.subs.route(route) {
                Some(sub) => {
                    let routed = Routed {
                        message,
                        data,
                        sequence,
                    };
                    self.on_subscription_message(sub, routed);
                    None
                }
                None => self.handle_message(message),
            },
            MessageType::Heartbeat => {
                self.liveness.on_platform_beat(Instant::now());
                let result = {
                    let mut ctx = ctx!(self);
                    self.handler.handle_heartbeat(&message, &mut ctx)
                };
                result
                    .err()
                    .and_then(|e| self.on_error(&Error::Handler(e), ErrorSource::Heartbeat))
            }
            _ => self.handle_message(message),
        }
    }

    /// Offers a message to the pending authentication. `Some(end)`: the message was the verdict
    /// (`Some(None)`: the session goes on) and goes no further.
    fn judge_auth(&mut self, message: &Message, answers_auth: bool) -> Option<Option<SessionEnd>> {
        let outcome = {
            let mut ctx = ctx!(self);
            self.handler.handle_auth_response(message, &mut ctx)
        };
        let outcome = match outcome {
            AuthOutcome::NotAuthResponse if answers_auth => AuthOutcome::Rejected(
                "the answer to the authentication request was not judged \
                 (AuthHandler::handle_auth_response returned NotAuthResponse)"
                    .to_owned(),
            ),
            outcome => outcome,
        };
        match outcome {
            AuthOutcome::Authenticated => {
                self.on_authenticated();
                Some(None)
            }
            AuthOutcome::Rejected(reason) => {
                self.obs.event(EventKind::AuthFailed);
                self.auth.failed();
                Some(self.on_error(&Error::AuthRejected(reason), ErrorSource::Auth))
            }
            AuthOutcome::Retrying { id } => {
                let deadline = Instant::now() + self.config.request_timeout;
                self.auth.retrying(id, deadline);
                Some(None)
            }
            AuthOutcome::NotAuthResponse => None,
        }
    }

    /// The platform accepted the credentials: at connect, restoring begins.
    fn on_authenticated(&mut self) {
        let refresh = self.auth.accepted();
        self.obs.event(EventKind::AuthCompleted { refresh });
        self.obs.state.status = ConnectionStatus::Authenticated;
        self.obs.publish();
        tracing::info!("authenticated");
        if matches!(self.link, Link::Up(Phase::Authenticating)) {
            self.begin_restore();
        }
    }

    fn handle_message(&mut self, message: Message) -> Option<SessionEnd> {
        let result = {
            let mut ctx = ctx!(self);
            self.handler.handle_message(message, &mut ctx)
        };
        result
            .err()
            .and_then(|e| self.on_error(&Error::Handler(e), ErrorSource::Handler))
    }

    fn on_response(&mut self, id: RequestId, message: Message) {
        let Some(pending) = self.requests.answered(&id) else {
            tracing::debug!(%id, "response to no pending request (late or unknown); dropped");
            return;
        };
        if matches!(
            pending.awaiting,
            Awaiting::Caller(_) | Awaiting::Backfill { .. }
        ) && self.handler.is_rate_limit_response(&message)
        {
            match self.handler.handle_rate_limited(&message) {
                RateLimitAction::Retry { after } => {
                    tracing::info!(%id, after_ms = millis(after), "rate limited by the platform; resending later");
                    self.requests.resend_at(id, pending, Instant::now() + after);
                }
                RateLimitAction::Fail(reason) => {
                    if let Awaiting::Caller(reply) = pending.awaiting {
                        let error =
                            HandlerError::new(format!("rate limited by the platform: {reason}"));
                        let _ = reply.send(Err(Error::Handler(error)));
                    }
                }
            }
            return;
        }
        match pending.awaiting {
            Awaiting::Caller(reply) => {
                let _ = reply.send(Ok(message));
            }
            Awaiting::Subscribe { sub, purpose } => {
                self.on_subscribe_ack(sub, purpose, Ok(&message));
            }
            Awaiting::Unsubscribe => {}
            Awaiting::Backfill { sub } => self.on_backfill_response(sub, Ok(&message)),
        }
    }

    /// A request's deadline passed (`at` tells which deadline, for timers of answered requests).
    pub(super) fn expire(&mut self, id: &RequestId, at: Instant) {
        let Some(pending) = self.requests.expired(id, at) else {
            return;
        };
        let timeout = pending.timeout;
        match pending.awaiting {
            Awaiting::Caller(reply) => {
                let _ = reply.send(Err(Error::Timeout(timeout)));
            }
            Awaiting::Subscribe { sub, purpose } => {
                self.on_subscribe_ack(
                    sub,
                    purpose,
                    Err(format!("no acknowledgement within {timeout:?}")),
                );
            }
            Awaiting::Unsubscribe => {}
            Awaiting::Backfill { sub } => {
                self.on_backfill_response(sub, Err(format!("no answer within {timeout:?}")));
            }
        }
    }

    /// Runs the timers that are due.
    pub(super) fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some((at, timer)) = self.requests.pop_due(now) {
            match timer {
                Timer::Deadline(id) => self.expire(&id, at),
                Timer::Resend(id) => {
                    if let Some(p) = self.requests.get(&id) {
                        let wire = Wire {
                            message: p.message.clone(),
                            operation: p.operation,
                            request: Some(id),
                        };
                        self.outbound.push_front(wire);
                    }
                }
                Timer::RestoreRetry(sub) => {
                    if matches!(self.link, Link::Up(_)) && self.subs.contains(sub) {
                        self.send_subscribe(sub, SubscribePurpose::Restore);
                    }
                }
            }
        }
    }
}
