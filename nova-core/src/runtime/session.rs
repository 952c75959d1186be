//! One open connection in its steady state: a flat event loop that waits for whichever comes
//! first (a command, a frame, the ping timer, the platform heartbeat, a credentials check, the
//! auth deadline, the end of a rate-limit wait, a runtime timer, an application send) and hands
//! it to one method each. Also the I/O the components ask for: writing the outbox, delivering to
//! the application, writing the application's sends through the rate gate, and closing.
//!
//! Priority (the `select!` is biased, in this order): commands, reads (the connection's, then a
//! draining one's and a handover's next connection: handover.rs), timers, then the
//! application's sends, so that a flood of sends never delays a close or the reading of acks.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use super::commands::{Control, Outgoing};
use super::driver::{Driver, Link, Phase, SessionEnd};
use super::errors::{classify, closed_reason};
use super::handover::HandoverStep;
use super::liveness::{Liveness, PingStep};
use super::observe::millis;
use super::outbound::Wire;
use super::requests::{Awaiting, Pending, SubscribePurpose};
use crate::error::{Error, HandlerError};
use crate::handler::{ErrorSource, Handler, Operation};
use crate::message::{CloseFrame, Frame};
use crate::telemetry::EventKind;
use crate::transport::WsStream;
use crate::types::{DisconnectReason, StopReason};

/// Most frames handled per wake-up before the outbox is applied (frames already read, taken
/// without waiting).
const READ_BATCH: usize = 64;

/// Capacity of the buffer of one subscription's events kept between bursts (a burst's worth).
const RUN_KEEP: usize = READ_BATCH;

type Read = Option<Result<tungstenite::Message, tungstenite::Error>>;

impl<H: Handler> Driver<H> {
    /// Serves an open connection until it ends.
    pub(super) async fn serve(&mut self, ws: &mut WsStream) -> SessionEnd {
        let platform_every = self.handler.configure(self.config.heartbeat_interval);
        let now = Instant::now();
        self.liveness = Liveness::new(
            self.config.heartbeat_interval,
            self.config.pong_timeout,
            platform_every,
            now,
        );
        let mut ticks = Ticks::new(
            now,
            self.liveness.platform_every(),
            self.config.auth_check_interval,
        );
        // One timer for every deadline of the connection, reset only when the earliest one
        // changes (not once per frame).
        let wake = tokio::time::sleep_until(now);
        tokio::pin!(wake);
        let mut wake_at: Option<Instant> = None;
        loop {
            let next = self.next_wake(&ticks);
            if next != wake_at {
                if let Some(at) = next {
                    wake.as_mut().reset(at);
                }
                wake_at = next;
            }
            let handover_active = self.handover.is_active();
            let step = tokio::select! {
                biased;
                control = self.control_rx.recv() => Box::pin(self.on_control(ws, control)).await,
                read = ws.next() => self.on_read(ws, read).await,
                step = self.handover.next(), if handover_active => {
                    Box::pin(self.on_handover_step(ws, step)).await
                }
                () = &mut wake, if wake_at.is_some() => {
                    // Fired: set again on the next pass, whatever the deadlines are then.
                    wake_at = None;
                    Box::pin(self.on_wake(ws, &mut ticks)).await
                }
                outgoing = self.data_rx.recv(), if self.data_open && self.sends_flow() => {
                    self.on_outgoing(ws, outgoing).await
                }
            };
            if let Some(end) = step {
                return end;
            }
        }
    }

    /// The earliest deadline of the connection: the ping timer, the handler's heartbeat, the
    /// periodic ticks, the awaited auth verdict, the end of a rate-limit hold, request timers,
    /// a handover's drain, the greeting.
    fn next_wake(&self, ticks: &Ticks) -> Option<Instant> {
        let ping = self.liveness.pings().then(|| self.liveness.ping_at());
        let beat = self.handler.next_heartbeat().map(Instant::from_std);
        let auth_check = self.auth.checks_refresh().then_some(ticks.auth_check);
        let stale_check = self.subs.watched().then_some(ticks.stale_check);
        [
            stale_check,
            ping,
            beat,
            ticks.platform,
            auth_check,
            self.auth.deadline(),
            self.outbound.held_until(),
            self.requests.next_timer(),
            self.handover.drain_until(),
            self.greeting_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The timer fired: everything due is handled, in this order, until one ends the
    /// connection.
    async fn on_wake(&mut self, ws: &mut WsStream, ticks: &mut Ticks) -> Option<SessionEnd> {
        let now = Instant::now();
        if self.liveness.pings() && self.liveness.ping_at() <= now {
            if let Some(end) = self.on_ping_timer(ws).await {
                return Some(end);
            }
        }
        if self
            .handler
            .next_heartbeat()
            .is_some_and(|at| Instant::from_std(at) <= now)
        {
            if let Some(end) = self.on_heartbeat_due(ws).await {
                return Some(end);
            }
        }
        if ticks.platform_due(now) {
            if let Some(end) = self.on_platform_tick(ws).await {
                return Some(end);
            }
        }
        if self.auth.checks_refresh() && ticks.auth_check_due(now) {
            if let Some(end) = self.refresh_credentials(ws).await {
                return Some(end);
            }
        }
        if self.auth.deadline().is_some_and(|at| at <= now) {
            if let Some(end) = self.on_auth_timeout() {
                return Some(end);
            }
        }
        if self.outbound.held_until().is_some_and(|at| at <= now) {
            self.outbound.release();
            if let Some(end) = self.flush_sends(ws).await {
                return Some(end);
            }
        }
        if self.requests.next_timer().is_some_and(|at| at <= now) {
            self.on_timers();
            if let Some(end) = self.apply_outbox(ws).await {
                return Some(end);
            }
            if let Some(end) = self.flush_sends(ws).await {
                return Some(end);
            }
        }
        if self.subs.watched() && ticks.stale_check_due(now) {
            self.check_stale(now);
            if let Some(end) = self.apply_outbox(ws).await {
                return Some(end);
            }
        }
        if self.handover.drain_until().is_some_and(|at| at <= now) {
            self.end_drain("handover_drain passed").await;
        }
        if self.greeting_until.is_some_and(|at| at <= now) {
            tracing::warn!("no greeting from the server before greeting_timeout");
            return Some(SessionEnd::Disconnected(DisconnectReason::GreetingTimeout));
        }
        None
    }

    /// What happened on a handover's connections.
    async fn on_handover_step(
        &mut self,
        ws: &mut WsStream,
        step: HandoverStep,
    ) -> Option<SessionEnd> {
        match step {
            HandoverStep::Drained(read) => self.on_drained(ws, read).await,
            HandoverStep::Opened(opened, asked) => self.on_handover_opened(ws, opened, asked).await,
        }
    }

    /// Whether the application's sends may be written now.
    fn sends_flow(&self) -> bool {
        let ready = matches!(self.link, Link::Up(Phase::Ready));
        self.outbound.may_send(ready, self.peer_close.is_some())
    }

    /// Writes what waits (carry, replays) when sends may flow.
    pub(super) async fn flush_sends(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        if self.sends_flow() && (!self.outbound.is_empty() || self.requests.has_replay()) {
            self.write_pending_sends(ws).await
        } else {
            None
        }
    }

    async fn on_control(
        &mut self,
        ws: &mut WsStream,
        control: Option<Box<Control>>,
    ) -> Option<SessionEnd> {
        match control.map(|c| *c) {
            Some(Control::Close { code, reason, done }) => {
                self.close_waiters.push(done);
                self.close_gracefully(ws, code, reason).await;
                Some(SessionEnd::Stop(StopReason::Closed { code }))
            }
            Some(Control::Subscribe(command)) => {
                let id = self.add_subscription(command);
                // While authenticating, the restore that follows sends it.
                if !matches!(self.link, Link::Up(Phase::Authenticating)) {
                    self.send_subscribe(id, SubscribePurpose::First);
                }
                self.apply_outbox(ws).await
            }
            Some(Control::Unsubscribe { id, done }) => {
                self.unsubscribe_now(id);
                let end = self.apply_outbox(ws).await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
                end
            }
            None => {
                self.close_gracefully(ws, 1000, "client dropped".to_owned())
                    .await;
                Some(SessionEnd::Stop(StopReason::HandlesDropped))
            }
        }
    }

    /// Frames were read: the first, then those already buffered (up to [`READ_BATCH`]) in one
    /// go: one pass through the `select!` and one outbox per batch, not per frame.
    async fn on_read(&mut self, ws: &mut WsStream, read: Read) -> Option<SessionEnd> {
        let first = match read {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                let peer_close = self.peer_close.clone();
                return Some(self.on_io_error(ws, e, ErrorSource::Read, peer_close).await);
            }
            None => {
                let reason = closed_reason(self.peer_close.take(), "connection closed");
                return Some(SessionEnd::Disconnected(reason));
            }
        };
        let now = Instant::now();
        self.read_at = now;
        let mut next = Some(first);
        let mut taken = 0;
        let mut read_error = None;
        while let Some(m) = next.take() {
            taken += 1;
            let is_pong = matches!(m, tungstenite::Message::Pong(_));
            if let Some(rtt) = self.liveness.on_read(now, is_pong) {
                self.obs.event(EventKind::HeartbeatRoundTrip { rtt });
            }
            if let Some(frame) = Frame::from_ws(m) {
                if let Frame::Close(c) = &frame {
                    self.peer_close = Some(c.clone());
                }
                if let Some(end) = self.on_frame(frame) {
                    return Some(end);
                }
            }
            if taken < READ_BATCH && self.peer_close.is_none() && self.out.reconnect.is_none() {
                match ws.next().now_or_never() {
                    Some(Some(Ok(m))) => next = Some(m),
                    Some(Some(Err(e))) => read_error = Some(e),
                    Some(None) | None => {}
                }
            }
        }
        if let Some(end) = self.apply_outbox(ws).await {
            return Some(end);
        }
        if let Some(e) = read_error {
            let peer_close = self.peer_close.clone();
            return Some(self.on_io_error(ws, e, ErrorSource::Read, peer_close).await);
        }
        self.flush_sends(ws).await
    }

    async fn on_ping_timer(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        let now = Instant::now();
        match self.liveness.on_ping_timer(now) {
            PingStep::Wait => None,
            PingStep::SendPing => {
                tracing::trace!("idle: sending ping");
                let ping = tungstenite::Message::Ping(bytes::Bytes::new());
                if let Err(e) = ws.send(ping).await {
                    let peer_close = self.peer_close.clone();
                    return Some(
                        self.on_io_error(ws, e, ErrorSource::Write, peer_close)
                            .await,
                    );
                }
                None
            }
            PingStep::Dead => {
                let idle_ms = millis(self.liveness.idle(now));
                tracing::warn!(idle_ms, "no answer to ping before the deadline");
                Some(SessionEnd::Disconnected(DisconnectReason::HeartbeatTimeout))
            }
        }
    }

    async fn on_platform_tick(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        if let Some(silent) = self.liveness.platform_silence(Instant::now()) {
            tracing::warn!(silent_ms = millis(silent), "platform heartbeats stopped");
            return Some(SessionEnd::Disconnected(DisconnectReason::HeartbeatTimeout));
        }
        let beat = {
            let mut ctx = ctx!(self);
            self.handler.generate_heartbeat(&mut ctx)?
        };
        self.out
            .frames
            .push((Frame::from_message(beat), Operation::Heartbeat));
        self.apply_outbox(ws).await
    }

    /// The handler's heartbeat schedule says now: it queues the beat, or gives the connection up.
    async fn on_heartbeat_due(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        let now = Instant::now().into_std();
        let result = {
            let mut ctx = ctx!(self);
            self.handler.heartbeat_due(now, &mut ctx)
        };
        if let Err(e) = result {
            if let Some(end) = self.on_error(&Error::Handler(e), ErrorSource::Heartbeat) {
                return Some(end);
            }
        }
        self.apply_outbox(ws).await
    }

    /// Checks whether the credentials need a refresh, and sends it on this connection.
    async fn refresh_credentials(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        let refresh = {
            let ctx = ctx!(self);
            self.handler.needs_reauthentication(&ctx)
        };
        if !refresh {
            return None;
        }
        match self.send_credentials(true) {
            Ok(true) => {
                tracing::info!("refreshing credentials");
                self.apply_outbox(ws).await
            }
            Ok(false) => None,
            Err(e) => self.on_error(&Error::Handler(e), ErrorSource::Auth),
        }
    }

    fn on_auth_timeout(&mut self) -> Option<SessionEnd> {
        self.auth.failed();
        self.obs.event(EventKind::AuthFailed);
        let error = Error::Timeout(self.config.request_timeout);
        self.on_error(&error, ErrorSource::Auth)
    }

    async fn on_outgoing(
        &mut self,
        ws: &mut WsStream,
        outgoing: Option<Box<Outgoing>>,
    ) -> Option<SessionEnd> {
        let Some(outgoing) = outgoing else {
            self.data_open = false;
            return None;
        };
        self.take_outgoing(*outgoing);
        let batch = self.outbound.batch();
        while self.outbound.len() < batch {
            match self.data_rx.try_recv() {
                Ok(o) => self.take_outgoing(*o),
                Err(_) => break,
            }
        }
        let depth = self.data_rx.len() + self.outbound.len();
        self.obs.telemetry.send_queue_depth(depth);
        self.write_pending_sends(ws).await
    }

    /// Moves an item of the data channel into the carry, giving a request its id.
    pub(super) fn take_outgoing(&mut self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Message(message, operation) => {
                self.outbound.push_back(Wire {
                    message,
                    operation,
                    request: None,
                });
            }
            Outgoing::Request {
                request,
                reply,
                deadline,
            } => {
                if reply.is_closed() {
                    return; // the caller gave up already
                }
                let id = self.out.next_request_id();
                let message = (request.build)(&id);
                let operation = request.operation;
                let pending = Pending {
                    awaiting: Awaiting::Caller(reply),
                    timeout: request.timeout.unwrap_or(self.config.request_timeout),
                    message: message.clone(),
                    operation,
                    deadline,
                    idempotent: request.idempotent,
                    written: false,
                };
                self.requests.track(id.clone(), pending);
                self.outbound.push_back(Wire {
                    message,
                    operation,
                    request: Some(id),
                });
            }
        }
    }

    /// Writes requests to replay, then the carry, in order, as far as the rate limit allows;
    /// then flushes.
    pub(super) async fn write_pending_sends(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        for (id, message, operation) in self.requests.take_replay().into_iter().rev() {
            self.outbound.push_front(Wire {
                message,
                operation,
                request: Some(id),
            });
        }
        let mut wrote = false;
        while let Some(operation) = self.outbound.front_operation() {
            let now = Instant::now();
            if let Some(wait) = self
                .outbound
                .check(&mut self.handler, &self.config, operation, now)
            {
                self.obs.event(EventKind::RateLimitWait { wait });
                self.outbound.hold_until(now + wait);
                break;
            }
            let Some(wire) = self.outbound.pop_front() else {
                break;
            };
            let encoded = match self.handler.encode_message(wire.message.clone()) {
                Ok(m) => m,
                Err(e) => {
                    if let Some(id) = &wire.request {
                        let why = HandlerError::new(format!("cannot encode the request: {e}"));
                        self.requests.fail_caller(id, Error::Handler(why));
                    }
                    if let Some(end) = self.on_error(&Error::Handler(e), ErrorSource::Write) {
                        return Some(end);
                    }
                    continue;
                }
            };
            let size = encoded.len();
            if let Err(e) = ws.feed(encoded.into_ws()).await {
                // Not written: it goes first on the next connection.
                self.outbound.push_front(wire);
                return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
            }
            wrote = true;
            self.obs.telemetry.message_sent(operation, size);
            self.handler.update_rate_limit(operation);
            if let Some(id) = &wire.request {
                self.requests.mark_written(id);
            }
        }
        if wrote {
            if let Err(e) = ws.flush().await {
                return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
            }
        }
        None
    }

    /// Performs what callbacks and the runtime queued: frames out (with their rate-limit cost,
    /// without waiting), messages to the application and to subscription streams (a closed
    /// stream unsubscribes, which may queue more frames: written in the next round), reconnects.
    pub(super) async fn apply_outbox(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        loop {
            self.obs.publish_if_dirty();
            if std::mem::take(&mut self.out.begin_auth) {
                if let Some(end) = self.on_begin_authentication() {
                    return Some(end);
                }
            }
            if !self.out.frames.is_empty() {
                let mut frames = std::mem::take(&mut self.out.frames);
                let now = Instant::now();
                for (frame, operation) in frames.drain(..) {
                    self.outbound.force(&self.config, operation, now);
                    match &frame {
                        Frame::Text(t) => self.obs.telemetry.message_sent(operation, t.len()),
                        Frame::Binary(b) => self.obs.telemetry.message_sent(operation, b.len()),
                        _ => {}
                    }
                    if let Err(e) = ws.feed(frame.into_ws()).await {
                        return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
                    }
                    self.handler.update_rate_limit(operation);
                }
                self.out.frames = frames;
                if let Err(e) = ws.flush().await {
                    return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
                }
            }
            if !self.out.deliveries.is_empty() {
                let mut deliveries = std::mem::take(&mut self.out.deliveries);
                if self.inbound_open && !self.inbound.deliver_all(&mut deliveries).await {
                    self.inbound_open = false;
                    tracing::debug!(
                        "the application dropped its message receiver; messages are discarded"
                    );
                }
                deliveries.clear();
                self.out.deliveries = deliveries;
            }
            if !self.out.subscription_events.is_empty() {
                self.deliver_subscription_events().await;
            }
            if self.out.frames.is_empty() && !self.out.begin_auth {
                break;
            }
        }
        if let Some(reason) = self.out.handover.take() {
            self.start_handover(reason);
        }
        if let Some(reason) = self.out.stop.take() {
            tracing::info!(%reason, "the handler asked to stop");
            self.close_gracefully(ws, 1000, String::new()).await;
            return Some(SessionEnd::Stop(StopReason::Policy(reason)));
        }
        let why = self.out.reconnect.take()?;
        if let Some(code) = self.out.reconnect_close.take() {
            // Boxed: rare, and its timer would otherwise size every state of the task.
            Box::pin(close_with(ws, code)).await;
        }
        Some(SessionEnd::Disconnected(DisconnectReason::Requested(why)))
    }

    /// Hands the queued subscription events to their streams: each run of events for one
    /// subscription as one batch (one lock and at most one wake of its consumer per read
    /// burst). A closed stream unsubscribes.
    async fn deliver_subscription_events(&mut self) {
        let mut events = std::mem::take(&mut self.out.subscription_events);
        let mut run = std::mem::take(&mut self.event_run);
        let mut closed = Vec::new();
        let mut drain = events.drain(..).peekable();
        while let Some((sub, event)) = drain.next() {
            run.push(event);
            while let Some((_, event)) = drain.next_if(|(next, _)| *next == sub) {
                run.push(event);
            }
            match self.subs.get(sub) {
                Some(entry) => {
                    if !entry.events.deliver_all(&mut run).await {
                        closed.push(sub);
                    }
                }
                None => run.clear(),
            }
        }
        drop(drain);
        self.out.subscription_events = events;
        // A burst's worth is kept for the next one; more is given back.
        if run.capacity() <= RUN_KEEP {
            self.event_run = run;
        }
        for sub in closed {
            self.unsubscribe_now(sub);
        }
    }

    /// A read or write failed: the connection is unusable whatever the handler says, so only a
    /// `Stop` changes the outcome. The peer is told why with the close code RFC 6455 gives.
    pub(super) async fn on_io_error(
        &mut self,
        ws: &mut WsStream,
        e: tungstenite::Error,
        source: ErrorSource,
        peer_close: Option<Option<CloseFrame>>,
    ) -> SessionEnd {
        // Boxed: rare, and its close handshake would otherwise size every state of the task.
        Box::pin(self.fail_connection(ws, e, source, peer_close)).await
    }

    async fn fail_connection(
        &mut self,
        ws: &mut WsStream,
        e: tungstenite::Error,
        source: ErrorSource,
        peer_close: Option<Option<CloseFrame>>,
    ) -> SessionEnd {
        let classified = classify(e, &self.config, peer_close);
        if let Some(code) = classified.close_code {
            close_with(ws, code).await;
        }
        match self.on_error(&classified.error, source) {
            Some(SessionEnd::Stop(stop)) => SessionEnd::Stop(stop),
            _ => SessionEnd::Disconnected(classified.reason),
        }
    }

    /// Writes what the application already handed over, sends a close frame and waits (bounded)
    /// for the server's.
    async fn close_gracefully(&mut self, ws: &mut WsStream, code: u16, reason: String) {
        // Boxed: once per client, and it would otherwise size every state of the task.
        Box::pin(self.close_and_drain(ws, code, reason)).await;
    }

    async fn close_and_drain(&mut self, ws: &mut WsStream, code: u16, reason: String) {
        if matches!(self.link, Link::Up(Phase::Ready)) {
            while let Ok(o) = self.data_rx.try_recv() {
                self.take_outgoing(*o);
            }
            // The rate limit no longer applies: the application asked to finish.
            self.outbound.drop_limiter();
            if self.write_pending_sends(ws).await.is_some() {
                return;
            }
        }
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        if tokio::time::timeout(self.config.close_timeout, drain)
            .await
            .is_err()
        {
            tracing::debug!("no close frame from the server before close_timeout");
        }
    }
}

/// Sends a close frame with `code`, waiting at most a second: the close is a courtesy, the
/// connection is given up either way.
pub(super) async fn close_with(ws: &mut WsStream, code: u16) {
    let frame = tungstenite::protocol::CloseFrame {
        code: code.into(),
        reason: "".into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}

/// The periodic ticks of an open connection: the platform's heartbeat (when the handler has
/// one) and the check whether credentials need a refresh. A missed tick fires once, late, and
/// the next is a period after it.
pub(super) struct Ticks {
    platform: Option<Instant>,
    platform_every: Option<Duration>,
    auth_check: Instant,
    auth_check_every: Duration,
    stale_check: Instant,
}

/// How often subscriptions' silence is checked, when any has a bound.
const STALE_CHECK_EVERY: Duration = Duration::from_millis(250);

impl Ticks {
    fn new(now: Instant, platform_every: Option<Duration>, auth_check_every: Duration) -> Self {
        Self {
            platform: platform_every.map(|every| now + every),
            platform_every,
            auth_check: now + auth_check_every,
            auth_check_every,
            stale_check: now + STALE_CHECK_EVERY,
        }
    }

    /// Whether the platform heartbeat is due at `now`; if so, the next is scheduled.
    fn platform_due(&mut self, now: Instant) -> bool {
        match (self.platform, self.platform_every) {
            (Some(at), Some(every)) if at <= now => {
                self.platform = Some(now + every);
                true
            }
            _ => false,
        }
    }

    /// Whether the subscriptions' silence is to be checked at `now`; if so, the next is
    /// scheduled.
    fn stale_check_due(&mut self, now: Instant) -> bool {
        if self.stale_check <= now {
            self.stale_check = now + STALE_CHECK_EVERY;
            true
        } else {
            false
        }
    }

    /// Whether the credentials check is due at `now`; if so, the next is scheduled.
    fn auth_check_due(&mut self, now: Instant) -> bool {
        if self.auth_check <= now {
            self.auth_check = now + self.auth_check_every;
            true
        } else {
            false
        }
    }
}
