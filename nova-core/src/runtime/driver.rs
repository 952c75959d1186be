//! The connection task: one per client, owning the socket, the handler and the state machine.
//!
//! ```text
//!            ┌──────────── handle_disconnect / should_reconnect: delay ◄─────────────────┐
//!            ▼                                                                          │
//! init ─► Connecting ─► transport ─► handle_connect ─► auth ─► restore subscriptions ─► Ready
//!            │ fail: should_reconnect                        (acks verified)    (sends flow)
//!            └──────► backoff (+ Retry-After) ─► Connecting ...   max attempts ─► Stopped
//! ```
//!
//! While disconnected the task still serves `close`, `subscribe` and `unsubscribe`, and notices
//! when every handle is gone, so a client never outlives its application. Sends are taken from
//! the data channel only in the Ready phase; the channel itself is the bounded buffer for sends
//! while disconnected. Callbacks never do I/O: what they and the runtime's own logic decide to
//! send or deliver is queued in the [`Outbox`] and carried out by [`Driver::apply_outbox`].

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::{FutureExt, SinkExt, StreamExt};
use rustc_hash::FxHashMap;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite;
use tracing::Instrument;

use super::events::LifecycleEvent;
use super::inbound::{InboundSender, QueueSender};
use super::subscriptions::{SubscriptionEvent, SubscriptionRegistry};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::handler::{
    AuthOutcome, Context, DisconnectAction, ErrorAction, ErrorContext, ErrorSource, FrameAction,
    Gap, GapAction, Handler, MessageType, Operation, Outbox, RateLimitAction, RateLimitDecision,
    ReconnectDecision, RequestId, Sequence, SequenceCheck,
};
use crate::message::{CloseFrame, Frame, Message};
use crate::rate_limit::RateLimiter;
use crate::request::Request;
use crate::telemetry::{EventKind, Telemetry};
use crate::transport::{Connected, Transport, WsStream};
use crate::types::{
    ConnectInfo, ConnectionState, ConnectionStatus, DisconnectReason, StopReason, Subscription,
    SubscriptionStatus,
};

/// Most messages taken from the send channel before one flush.
const WRITE_BATCH: usize = 64;

/// Most frames handled per wake-up before the outbox is applied (frames already read, taken
/// without waiting).
const READ_BATCH: usize = 64;

/// What the application hands to the connection task through the data channel.
pub(crate) enum Outgoing {
    /// A message to send.
    Message(Message, Operation),
    /// A request: its message is built with an id when it is taken from the channel.
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Message, Error>>,
        deadline: Instant,
    },
}

/// Commands from the handle that must not queue behind data.
pub(crate) enum Control {
    /// Close with a handshake and stop.
    Close {
        code: u16,
        reason: String,
        done: oneshot::Sender<()>,
    },
    /// Subscribe; `reply` answers once the ack is verified. Boxed: the largest command, it would
    /// otherwise size every slot of the control queue (allocated up front for every client).
    Subscribe(Box<SubscribeCommand>),
    /// Unsubscribe; `done` answers once the unsubscribe was sent (or nothing was needed).
    Unsubscribe {
        id: u64,
        done: Option<oneshot::Sender<()>>,
    },
}

/// What [`Control::Subscribe`] carries.
pub(crate) struct SubscribeCommand {
    pub(crate) id: u64,
    pub(crate) channel: String,
    pub(crate) options: serde_json::Value,
    pub(crate) events: QueueSender<SubscriptionEvent>,
    pub(crate) reply: oneshot::Sender<Result<(), Error>>,
}

/// Pluggable services of the runtime (a cluster backend replaces them).
pub(crate) struct Services {
    pub(crate) registry: Box<dyn SubscriptionRegistry>,
    pub(crate) limiter: Option<Box<dyn RateLimiter>>,
    /// Until when sends are held back by the limiter; read by the handle to answer
    /// `RateLimited` when the queue is full.
    pub(crate) rate_limited_until: Arc<Mutex<Option<Instant>>>,
}

/// How a connected session ended.
enum SessionEnd {
    /// The connection is gone; the handler decides what follows.
    Disconnected(DisconnectReason),
    /// The client stops.
    Stop(StopReason),
}

/// Where an open connection is in its setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the verdict on the credentials.
    Authenticating,
    /// Waiting for the acks of restored subscriptions.
    Restoring,
    /// Normal traffic: the application's sends flow.
    Ready,
}

/// A message on its way out, possibly a request awaiting its response.
struct Wire {
    message: Message,
    operation: Operation,
    request: Option<RequestId>,
}

/// Who waits for the response to a request id.
enum Awaiting {
    Caller(oneshot::Sender<Result<Message, Error>>),
    Subscribe { sub: u64, purpose: SubscribePurpose },
    Unsubscribe,
    Backfill { sub: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubscribePurpose {
    /// The application's subscribe call waits for this ack.
    First,
    /// Restoring after a reconnect.
    Restore,
    /// Subscribing again to close a gap.
    Resubscribe,
}

struct Pending {
    awaiting: Awaiting,
    /// The timeout the deadline was computed from (reported in `Error::Timeout`).
    timeout: Duration,
    message: Message,
    operation: Operation,
    deadline: Instant,
    idempotent: bool,
    written: bool,
}

/// Timers of the runtime, in one ordered set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A request's deadline.
    Deadline(RequestId),
    /// Resend a request the platform rate-limited.
    Resend(RequestId),
    /// Try again to restore a subscription.
    RestoreRetry(u64),
}

/// How a subscription is recovering from a gap.
enum Recovery {
    None,
    /// Waiting for a snapshot after subscribing again.
    Snapshot,
    /// Waiting for backfill responses; live messages are held back meanwhile.
    Backfill {
        outstanding: usize,
        fetched: Vec<Message>,
        held: VecDeque<Message>,
        failed: Option<String>,
    },
}

struct SubEntry {
    sub: Subscription,
    options: serde_json::Value,
    events: QueueSender<SubscriptionEvent>,
    route: Option<String>,
    last: Option<u64>,
    waiter: Option<oneshot::Sender<Result<(), Error>>>,
    restore_attempts: u32,
    restoring: bool,
    recovery: Recovery,
    /// Accept the next message whatever its sequence (after a gap that could not be closed).
    accept_next: bool,
    /// When the last subscribe request went out.
    subscribe_sent: Option<Instant>,
}

enum SeqVerdict {
    Accept,
    Duplicate,
    Gap,
}

fn check_sequence(last: Option<u64>, seq: Sequence) -> SeqVerdict {
    let Some(last) = last else {
        return SeqVerdict::Accept;
    };
    match seq.check {
        SequenceCheck::Snapshot => SeqVerdict::Accept,
        SequenceCheck::Follows(previous) if previous == last => SeqVerdict::Accept,
        SequenceCheck::Next if seq.value == last.saturating_add(1) => SeqVerdict::Accept,
        SequenceCheck::Monotonic if seq.value > last => SeqVerdict::Accept,
        SequenceCheck::Monotonic => SeqVerdict::Duplicate,
        _ if seq.value <= last => SeqVerdict::Duplicate,
        _ => SeqVerdict::Gap,
    }
}

pub(crate) struct Driver<H> {
    config: ClientConfig,
    handler: H,
    data_rx: mpsc::Receiver<Outgoing>,
    control_rx: mpsc::Receiver<Control>,
    state_tx: watch::Sender<ConnectionState>,
    state: ConnectionState,
    events: broadcast::Sender<LifecycleEvent>,
    inbound: InboundSender,
    inbound_open: bool,
    /// Messages taken from the data channel but not yet written; first out on the next write.
    carry: VecDeque<Wire>,
    out: Outbox,
    /// Deliveries to subscription streams queued by the message logic.
    sub_out: Vec<(u64, SubscriptionEvent)>,
    connections: u64,
    close_waiters: Vec<oneshot::Sender<()>>,
    services: Services,
    pending: FxHashMap<RequestId, Pending>,
    timers: BTreeSet<(Instant, Timer)>,
    subs: FxHashMap<u64, SubEntry>,
    routes: FxHashMap<String, u64>,
    /// Requests to send again after a reconnect (idempotent ones cut off by a disconnect).
    replay: Vec<RequestId>,
    connected: bool,
    phase: Phase,
    /// The credentials' verdict is awaited (at connect or for a refresh).
    auth_pending: Option<Instant>,
    /// This connection authenticated (so refreshes are checked).
    auth_used: bool,
    rate_wait: Option<Instant>,
    telemetry: Telemetry,
    /// Subscription statuses changed and are not yet published (published once per
    /// `apply_outbox`, not once per ack: a restore of N subscriptions would clone the map N times).
    state_dirty: bool,
    /// When the last connection was lost (or the first connect failed), for the reconnection
    /// duration.
    down_since: Option<Instant>,
}

impl<H: Handler> Driver<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: ClientConfig,
        handler: H,
        data_rx: mpsc::Receiver<Outgoing>,
        control_rx: mpsc::Receiver<Control>,
        state_tx: watch::Sender<ConnectionState>,
        events: broadcast::Sender<LifecycleEvent>,
        inbound: InboundSender,
        services: Services,
        telemetry: Telemetry,
    ) -> Self {
        Self {
            config,
            handler,
            data_rx,
            control_rx,
            state_tx,
            state: ConnectionState::default(),
            events,
            inbound,
            inbound_open: true,
            carry: VecDeque::new(),
            out: Outbox::default(),
            sub_out: Vec::new(),
            connections: 0,
            close_waiters: Vec::new(),
            services,
            pending: FxHashMap::default(),
            timers: BTreeSet::new(),
            subs: FxHashMap::default(),
            routes: FxHashMap::default(),
            replay: Vec::new(),
            connected: false,
            phase: Phase::Ready,
            auth_pending: None,
            auth_used: false,
            rate_wait: None,
            telemetry,
            state_dirty: false,
            down_since: None,
        }
    }

    pub(crate) async fn run(mut self) {
        let span = tracing::info_span!("nova.client", client_id = %self.config.name);
        async move {
            let reason = self.run_until_stopped().await;
            self.finish(reason);
        }
        .instrument(span)
        .await;
    }

    async fn run_until_stopped(&mut self) -> StopReason {
        if let Err(e) = self.handler.init(&self.config) {
            return StopReason::Fatal(format!("init failed: {e}"));
        }
        let transport = match Transport::new(self.config.transport.clone()) {
            Ok(t) => t,
            Err(e) => return StopReason::Fatal(e.to_string()),
        };
        let url = self.config.url.clone();
        loop {
            self.state.status = ConnectionStatus::Connecting;
            self.publish();
            let attempt = self.state.reconnection_attempts;
            self.emit(LifecycleEvent::Connecting { attempt });
            self.telemetry
                .event(EventKind::ConnectionStarted { attempt });
            tracing::debug!(attempt, url = %url, "connecting");
            let started = Instant::now();
            let result = {
                let connect = transport.connect(&url);
                tokio::pin!(connect);
                loop {
                    tokio::select! {
                        r = &mut connect => break r,
                        command = self.control_rx.recv() => {
                            if let Some(stop) = self.on_control_while_down(command) {
                                return stop;
                            }
                        }
                    }
                }
            };
            let next = match result {
                Ok(connected) => match self.session(connected, started.elapsed()).await {
                    SessionEnd::Stop(reason) => return reason,
                    SessionEnd::Disconnected(reason) => self.after_disconnect(reason),
                },
                Err(e) => self.after_connect_failure(Error::Transport(e)),
            };
            let (delay, last_error) = match next {
                Ok(next) => next,
                Err(stop) => return stop,
            };
            if let Some(stop) = self.wait_before_reconnect(delay, last_error).await {
                return stop;
            }
        }
    }

    /// Decides what follows a failed connect: `Ok((delay, error))` or `Err(stop)`.
    fn after_connect_failure(&mut self, error: Error) -> Result<(Duration, String), StopReason> {
        let attempt = self.state.reconnection_attempts;
        self.state.status = ConnectionStatus::Disconnected;
        self.publish();
        self.emit(LifecycleEvent::ConnectFailed {
            kind: error.kind(),
            error: error.to_string(),
            attempt,
        });
        self.telemetry.event(EventKind::ConnectionFailed {
            error_type: error.kind(),
        });
        self.down_since.get_or_insert_with(Instant::now);
        self.log(&error, ErrorSource::Connect);
        if let Error::Transport(t) = &error {
            if t.is_permanent() {
                return Err(StopReason::Fatal(error.to_string()));
            }
        }
        let decision = {
            let ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.should_reconnect(&error, attempt, &ctx)
        };
        let after = match decision {
            ReconnectDecision::Stop => {
                return Err(StopReason::Policy(format!("no reconnect after: {error}")));
            }
            ReconnectDecision::Reconnect { after } => after,
        };
        let mut delay = after.unwrap_or_else(|| self.config.backoff().delay(attempt));
        if let Some(retry_after) = error.retry_after() {
            delay = delay.max(retry_after.min(self.config.max_retry_after));
        }
        Ok((delay, error.to_string()))
    }

    /// Decides what follows the end of a connection: `Ok((delay, reason))` or `Err(stop)`.
    fn after_disconnect(
        &mut self,
        reason: DisconnectReason,
    ) -> Result<(Duration, String), StopReason> {
        let action = {
            let ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_disconnect(&reason, &ctx)
        };
        match action {
            DisconnectAction::Reconnect { after } => Ok((after, reason.to_string())),
            DisconnectAction::Stop { reason } => Err(StopReason::Policy(reason)),
        }
    }

    /// Counts the attempt and sleeps, serving commands meanwhile. `Some(stop)` ends the client.
    async fn wait_before_reconnect(
        &mut self,
        delay: Duration,
        last_error: String,
    ) -> Option<StopReason> {
        let attempts = self.state.reconnection_attempts;
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
        self.state.reconnection_attempts = attempts.saturating_add(1);
        self.publish();
        let attempt = self.state.reconnection_attempts;
        self.emit(LifecycleEvent::ReconnectScheduled { attempt, delay });
        self.telemetry
            .event(EventKind::ReconnectionStarted { attempt, delay });
        tracing::info!(
            attempt,
            delay_ms = millis(delay),
            "reconnecting after delay"
        );
        let wake = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => return None,
                () = sleep_until_first(&self.timers) => self.on_timers_while_down(),
                command = self.control_rx.recv() => {
                    if let Some(stop) = self.on_control_while_down(command) {
                        return Some(stop);
                    }
                }
            }
        }
    }

    /// A command while no connection is open. `Some(stop)` ends the client.
    fn on_control_while_down(&mut self, command: Option<Control>) -> Option<StopReason> {
        match command {
            None => Some(StopReason::HandlesDropped),
            Some(Control::Close { code, done, .. }) => {
                self.close_waiters.push(done);
                Some(StopReason::Closed { code })
            }
            Some(Control::Subscribe(command)) => {
                let SubscribeCommand {
                    id,
                    channel,
                    options,
                    events,
                    reply,
                } = *command;
                self.add_subscription(id, channel, options, events, reply);
                self.publish();
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
        while let Some((at, timer)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Timer::Deadline(id) = timer {
                self.expire(&id, at);
            }
        }
    }

    /// Runs one open connection until it ends.
    async fn session(&mut self, connected: Connected, connect_duration: Duration) -> SessionEnd {
        let Connected {
            stream: mut ws,
            peer_addr,
            protocol,
            ..
        } = connected;
        let connection_index = self.connections;
        self.connections += 1;
        let up_since = Instant::now();
        self.connected = true;
        self.state.status = ConnectionStatus::Connected;
        self.state.last_connected_at = Some(SystemTime::now());
        self.publish();
        self.emit(LifecycleEvent::Connected {
            duration: connect_duration,
            connection_index,
        });
        self.telemetry.event(EventKind::ConnectionCompleted {
            duration: connect_duration,
        });
        if let Some(down) = self.down_since.take() {
            let attempt = self.state.reconnection_attempts;
            self.telemetry.event(EventKind::ReconnectionCompleted {
                attempt,
                duration: down.elapsed(),
            });
        }
        tracing::info!(
            connection_index,
            connect_ms = millis(connect_duration),
            "connected"
        );

        let info = ConnectInfo {
            url: self.config.url.clone(),
            peer_addr,
            protocol,
            duration: connect_duration,
            connection_index,
        };
        let end = self.run_session(&mut ws, &info).await;
        self.connected = false;
        self.on_connection_lost();
        let end = match end {
            SessionEnd::Disconnected(reason) => {
                let uptime = up_since.elapsed();
                if uptime >= self.config.stable_after {
                    self.state.reconnection_attempts = 0;
                }
                self.state.status = ConnectionStatus::Disconnected;
                self.state.disconnect_reason = Some(reason.clone());
                self.publish();
                tracing::warn!(
                    reason = reason.as_str(),
                    uptime_ms = millis(uptime),
                    "disconnected: {reason}"
                );
                self.emit(LifecycleEvent::Disconnected {
                    reason: reason.clone(),
                    uptime,
                });
                self.telemetry.event(EventKind::Disconnected {
                    reason: reason.as_str(),
                });
                self.down_since = Some(Instant::now());
                SessionEnd::Disconnected(reason)
            }
            stop => stop,
        };
        drop(ws);
        end
    }

    /// What a lost connection means for requests, subscriptions and recoveries.
    fn on_connection_lost(&mut self) {
        self.rate_wait = None;
        self.set_rate_limited_until(None);
        self.auth_pending = None;
        let ids: Vec<RequestId> = self.pending.keys().cloned().collect();
        for id in ids {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            match p.awaiting {
                Awaiting::Caller(reply) if p.written && !p.idempotent => {
                    let _ = reply.send(Err(Error::Disconnected));
                }
                Awaiting::Caller(reply) => {
                    if p.written {
                        self.replay.push(id.clone());
                    }
                    let awaiting = Awaiting::Caller(reply);
                    self.pending.insert(
                        id,
                        Pending {
                            awaiting,
                            written: false,
                            ..p
                        },
                    );
                }
                // Subscriptions are restored on the next connection; their acks are void.
                Awaiting::Subscribe { .. } | Awaiting::Unsubscribe | Awaiting::Backfill { .. } => {}
            }
        }
        self.replay.sort();
        // Requests still in the carry were never written: they go out again as they are.
        self.routes.clear();
        for entry in self.subs.values_mut() {
            entry.route = None;
            entry.restoring = false;
            // A backfill cut short: its range is fetched again from `last` after the restore.
            if matches!(entry.recovery, Recovery::Backfill { .. }) {
                entry.recovery = Recovery::None;
            }
            if entry.sub.status == SubscriptionStatus::Active {
                entry.sub.status = SubscriptionStatus::Pending;
            }
        }
        for (channel, status) in self.state.subscription_status.iter_mut() {
            let _ = channel;
            if *status == SubscriptionStatus::Active {
                *status = SubscriptionStatus::Pending;
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    async fn run_session(&mut self, ws: &mut WsStream, info: &ConnectInfo) -> SessionEnd {
        self.auth_used = false;
        let connect_result = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_connect(info, &mut ctx)
        };
        if let Err(e) = connect_result {
            if let Some(end) = self.on_error(Error::Handler(e), ErrorSource::Handler) {
                return end;
            }
        }
        // Authenticate before anything else goes out.
        let auth = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.generate_auth_data(&mut ctx)
        };
        match auth {
            Ok(Some(message)) => {
                self.out
                    .frames
                    .push((Frame::from_message(message), Operation::Auth));
                self.auth_pending = Some(Instant::now() + self.config.request_timeout);
                self.auth_used = true;
                self.phase = Phase::Authenticating;
            }
            Ok(None) => self.begin_restore(),
            Err(e) => {
                return SessionEnd::Stop(StopReason::Fatal(format!(
                    "cannot build authentication: {e}"
                )));
            }
        }
        if let Some(end) = self.apply_outbox(ws).await {
            return end;
        }
        if self.phase == Phase::Ready {
            if let Some(end) = self.write_pending_sends(ws).await {
                return end;
            }
        }

        let platform_interval = self.handler.configure(self.config.heartbeat_interval);
        let mut platform_heartbeat = platform_interval.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        let mut last_platform_beat = Instant::now();
        let mut auth_check = tokio::time::interval_at(
            Instant::now() + self.config.auth_check_interval,
            self.config.auth_check_interval,
        );
        auth_check.set_missed_tick_behavior(MissedTickBehavior::Delay);

        let ping_every = self.config.heartbeat_interval;
        let mut last_rx = Instant::now();
        let mut awaiting_pong: Option<Instant> = None;
        let ping_timer =
            tokio::time::sleep_until(ping_every.map_or_else(far_future, |d| last_rx + d));
        tokio::pin!(ping_timer);
        let mut peer_close: Option<Option<CloseFrame>> = None;
        let mut data_open = true;

        loop {
            let sending =
                self.phase == Phase::Ready && self.rate_wait.is_none() && peer_close.is_none();
            tokio::select! {
                biased;
                control = self.control_rx.recv() => {
                    let (code, reason, dropped) = match control {
                        Some(Control::Close { code, reason, done }) => {
                            self.close_waiters.push(done);
                            (code, reason, false)
                        }
                        Some(Control::Subscribe(command)) => {
                            let SubscribeCommand { id, channel, options, events, reply } = *command;
                            self.add_subscription(id, channel, options, events, reply);
                            // While authenticating, the restore that follows sends it.
                            if self.phase != Phase::Authenticating {
                                self.send_subscribe(id, SubscribePurpose::First);
                            }
                            if let Some(end) = self.apply_outbox(ws).await {
                                return end;
                            }
                            continue;
                        }
                        Some(Control::Unsubscribe { id, done }) => {
                            self.unsubscribe_now(id);
                            let end = self.apply_outbox(ws).await;
                            if let Some(done) = done {
                                let _ = done.send(());
                            }
                            if let Some(end) = end {
                                return end;
                            }
                            continue;
                        }
                        None => (1000, "client dropped".to_owned(), true),
                    };
                    let stop = if dropped { StopReason::HandlesDropped } else { StopReason::Closed { code } };
                    self.close_gracefully(ws, code, reason).await;
                    return SessionEnd::Stop(stop);
                }
                frame = ws.next() => match frame {
                    Some(Ok(m)) => {
                        last_rx = Instant::now();
                        // Frames already read are handled in one go (up to READ_BATCH): one
                        // pass through this select and one apply_outbox per batch, not per frame.
                        let mut next = Some(m);
                        let mut taken = 0;
                        let mut read_error = None;
                        while let Some(m) = next.take() {
                            taken += 1;
                            if let Some(frame) = Frame::from_ws(m) {
                                if let (Frame::Pong(_), Some(sent)) = (&frame, awaiting_pong) {
                                    let rtt = last_rx - sent;
                                    self.telemetry.event(EventKind::HeartbeatRoundTrip { rtt });
                                }
                                if let Frame::Close(c) = &frame {
                                    peer_close = Some(c.clone());
                                }
                                if let Some(end) = self.on_frame(frame, &mut last_platform_beat) {
                                    return end;
                                }
                            }
                            if taken < READ_BATCH && peer_close.is_none() && self.out.reconnect.is_none() {
                                match ws.next().now_or_never() {
                                    Some(Some(Ok(m))) => next = Some(m),
                                    Some(Some(Err(e))) => read_error = Some(e),
                                    Some(None) | None => {}
                                }
                            }
                        }
                        if let Some(end) = self.apply_outbox(ws).await {
                            return end;
                        }
                        if let Some(e) = read_error {
                            return self.on_io_error(ws, e, ErrorSource::Read, peer_close).await;
                        }
                        if self.phase == Phase::Ready && peer_close.is_none() && (!self.carry.is_empty() || !self.replay.is_empty()) && self.rate_wait.is_none() {
                            if let Some(end) = self.write_pending_sends(ws).await {
                                return end;
                            }
                        }
                    }
                    Some(Err(e)) => return self.on_io_error(ws, e, ErrorSource::Read, peer_close).await,
                    None => return SessionEnd::Disconnected(closed_reason(peer_close, "connection closed")),
                },
                () = &mut ping_timer, if ping_every.is_some() => {
                    let Some(every) = ping_every else { continue };
                    let now = Instant::now();
                    if let Some(sent) = awaiting_pong {
                        if last_rx >= sent {
                            awaiting_pong = None;
                        } else if now >= sent + self.config.pong_timeout {
                            tracing::warn!(idle_ms = millis(now.duration_since(last_rx)), "no answer to ping before the deadline");
                            return SessionEnd::Disconnected(DisconnectReason::HeartbeatTimeout);
                        } else {
                            ping_timer.as_mut().reset(sent + self.config.pong_timeout);
                            continue;
                        }
                    }
                    if now >= last_rx + every {
                        tracing::trace!("idle: sending ping");
                        if let Err(e) = ws.send(tungstenite::Message::Ping(bytes::Bytes::new())).await {
                            return self.on_io_error(ws, e, ErrorSource::Write, peer_close).await;
                        }
                        awaiting_pong = Some(now);
                        ping_timer.as_mut().reset(now + self.config.pong_timeout);
                    } else {
                        ping_timer.as_mut().reset(last_rx + every);
                    }
                }
                () = tick(&mut platform_heartbeat), if platform_heartbeat.is_some() => {
                    if let Some(every) = platform_interval {
                        let silent = last_platform_beat.elapsed();
                        if silent > every * 2 + self.config.pong_timeout {
                            tracing::warn!(silent_ms = millis(silent), "platform heartbeats stopped");
                            return SessionEnd::Disconnected(DisconnectReason::HeartbeatTimeout);
                        }
                    }
                    if let Some(beat) = self.handler.generate_heartbeat() {
                        self.out.frames.push((Frame::from_message(beat), Operation::Heartbeat));
                        if let Some(end) = self.apply_outbox(ws).await {
                            return end;
                        }
                    }
                }
                _ = auth_check.tick(), if self.auth_used && self.auth_pending.is_none() => {
                    let refresh = {
                        let ctx = Context::new(&self.state, &self.config, &mut self.out);
                        self.handler.needs_reauthentication(&ctx)
                    };
                    if refresh {
                        let auth = {
                            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
                            self.handler.generate_auth_data(&mut ctx)
                        };
                        match auth {
                            Ok(Some(message)) => {
                                tracing::info!("refreshing credentials");
                                self.out.frames.push((Frame::from_message(message), Operation::Auth));
                                self.auth_pending = Some(Instant::now() + self.config.request_timeout);
                                if let Some(end) = self.apply_outbox(ws).await {
                                    return end;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                if let Some(end) = self.on_error(Error::Handler(e), ErrorSource::Auth) {
                                    return end;
                                }
                            }
                        }
                    }
                }
                () = sleep_until_opt(self.auth_pending), if self.auth_pending.is_some() => {
                    self.auth_pending = None;
                    self.telemetry.event(EventKind::AuthFailed);
                    let error = Error::Timeout(self.config.request_timeout);
                    if let Some(end) = self.on_error(error, ErrorSource::Auth) {
                        return end;
                    }
                }
                () = sleep_until_opt(self.rate_wait), if self.rate_wait.is_some() => {
                    self.rate_wait = None;
                    self.set_rate_limited_until(None);
                    if self.phase == Phase::Ready && peer_close.is_none() {
                        if let Some(end) = self.write_pending_sends(ws).await {
                            return end;
                        }
                    }
                }
                () = sleep_until_first(&self.timers) => {
                    self.on_timers();
                    if let Some(end) = self.apply_outbox(ws).await {
                        return end;
                    }
                    if self.phase == Phase::Ready && self.rate_wait.is_none() && peer_close.is_none() && (!self.carry.is_empty() || !self.replay.is_empty()) {
                        if let Some(end) = self.write_pending_sends(ws).await {
                            return end;
                        }
                    }
                }
                outgoing = self.data_rx.recv(), if data_open && sending => match outgoing {
                    Some(outgoing) => {
                        self.take_outgoing(outgoing);
                        // Under a rate limit take one at a time, so that what waits stays in the bounded
                        // channel (and a full channel answers `RateLimited`).
                        let batch = if self.services.limiter.is_some() { 1 } else { WRITE_BATCH };
                        while self.carry.len() < batch {
                            match self.data_rx.try_recv() {
                                Ok(o) => self.take_outgoing(o),
                                                                Err(_) => break,
                            }
                        }
                        let depth = self.data_rx.len() + self.carry.len();
                        self.telemetry.send_queue_depth(depth);
                        if let Some(end) = self.write_pending_sends(ws).await {
                            return end;
                        }
                    }
                    None => data_open = false,
                },
            }
        }
    }

    /// Moves an item of the data channel into the carry, giving a request its id.
    fn take_outgoing(&mut self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Message(message, operation) => {
                self.carry.push_back(Wire {
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
                self.out.last_request_id += 1;
                let id = RequestId::Num(self.out.last_request_id);
                let message = (request.build)(&id);
                let operation = request.operation;
                self.pending.insert(
                    id.clone(),
                    Pending {
                        awaiting: Awaiting::Caller(reply),
                        timeout: request.timeout.unwrap_or(self.config.request_timeout),
                        message: message.clone(),
                        operation,
                        deadline,
                        idempotent: request.idempotent,
                        written: false,
                    },
                );
                self.timers.insert((deadline, Timer::Deadline(id.clone())));
                self.carry.push_back(Wire {
                    message,
                    operation,
                    request: Some(id),
                });
            }
        }
    }

    /// Writes requests to replay, then the carry, in order, as far as the rate limit allows;
    /// then flushes.
    async fn write_pending_sends(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        if !self.replay.is_empty() {
            let replay = std::mem::take(&mut self.replay);
            for id in replay.into_iter().rev() {
                if let Some(p) = self.pending.get(&id) {
                    let wire = Wire {
                        message: p.message.clone(),
                        operation: p.operation,
                        request: Some(id),
                    };
                    self.carry.push_front(wire);
                }
            }
        }
        let mut wrote = false;
        while let Some(front) = self.carry.front() {
            let operation = front.operation;
            if let Some(wait) = self.rate_check(operation) {
                let until = Instant::now() + wait;
                self.telemetry.event(EventKind::RateLimitWait { wait });
                self.rate_wait = Some(until);
                self.set_rate_limited_until(Some(until));
                break;
            }
            let Some(wire) = self.carry.pop_front() else {
                break;
            };
            let encoded = match self.handler.encode_message(wire.message.clone()) {
                Ok(m) => m,
                Err(e) => {
                    if let Some(id) = &wire.request {
                        if let Some(Pending {
                            awaiting: Awaiting::Caller(reply),
                            ..
                        }) = self.pending.remove(id)
                        {
                            let _ =
                                reply.send(Err(Error::Handler(crate::error::HandlerError::new(
                                    format!("cannot encode the request: {e}"),
                                ))));
                        }
                    }
                    if let Some(end) = self.on_error(Error::Handler(e), ErrorSource::Write) {
                        return Some(end);
                    }
                    continue;
                }
            };
            let size = encoded.len();
            if let Err(e) = ws.feed(encoded.into_ws()).await {
                // Not written: it goes first on the next connection.
                self.carry.push_front(wire);
                return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
            }
            wrote = true;
            self.telemetry.message_sent(operation, size);
            self.handler.update_rate_limit(operation);
            if let Some(id) = &wire.request {
                if let Some(p) = self.pending.get_mut(id) {
                    p.written = true;
                }
            }
        }
        if wrote {
            if let Err(e) = ws.flush().await {
                return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
            }
        }
        None
    }

    /// `Some(wait)` when `operation` must wait for the limiter or the handler's own limits.
    fn rate_check(&mut self, operation: Operation) -> Option<Duration> {
        let now = Instant::now();
        if let RateLimitDecision::Wait(d) = self.handler.check_rate_limit(operation) {
            return Some(d.max(Duration::from_millis(1)));
        }
        let cost = self
            .config
            .rate_limit
            .as_ref()
            .map_or(1, |r| r.cost_of(operation));
        let limiter = self.services.limiter.as_mut()?;
        limiter.try_acquire(cost, now).err()
    }

    fn set_rate_limited_until(&self, until: Option<Instant>) {
        if let Ok(mut slot) = self.services.rate_limited_until.lock() {
            *slot = until;
        }
    }

    /// A frame was read: `handle_frame`, then the message logic. Output goes to the outbox.
    fn on_frame(&mut self, frame: Frame, last_platform_beat: &mut Instant) -> Option<SessionEnd> {
        let action = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_frame(&frame, &mut ctx)
        };
        if action == FrameAction::Continue {
            if let Some(message) = frame.into_message() {
                return self.on_message(message, last_platform_beat);
            }
        }
        None
    }

    fn on_message(
        &mut self,
        message: Message,
        last_platform_beat: &mut Instant,
    ) -> Option<SessionEnd> {
        if let Err(e) = self.handler.validate_message(&message) {
            return self.on_error(Error::Handler(e), ErrorSource::Validation);
        }
        if self.auth_pending.is_some() {
            let outcome = {
                let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
                self.handler.handle_auth_response(&message, &mut ctx)
            };
            match outcome {
                AuthOutcome::Authenticated => {
                    let refresh = self.phase != Phase::Authenticating;
                    self.telemetry.event(EventKind::AuthCompleted { refresh });
                    self.auth_pending = None;
                    self.state.status = ConnectionStatus::Authenticated;
                    self.publish();
                    tracing::info!("authenticated");
                    if self.phase == Phase::Authenticating {
                        self.begin_restore();
                    }
                    return None;
                }
                AuthOutcome::Rejected(reason) => {
                    self.telemetry.event(EventKind::AuthFailed);
                    self.auth_pending = None;
                    return self.on_error(Error::AuthRejected(reason), ErrorSource::Auth);
                }
                AuthOutcome::NotAuthResponse => {}
            }
        }
        let kind = self.handler.message_type(&message);
        self.telemetry.message_received(&kind, message.len());
        match kind {
            MessageType::Response { id } => {
                self.on_response(id, message);
                None
            }
            MessageType::Subscription { channel } => match self.routes.get(&channel) {
                Some(&sub) => {
                    self.on_subscription_message(sub, message);
                    None
                }
                None => self.handle_message(message),
            },
            MessageType::Heartbeat => {
                *last_platform_beat = Instant::now();
                let result = {
                    let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
                    self.handler.handle_heartbeat(&message, &mut ctx)
                };
                result
                    .err()
                    .and_then(|e| self.on_error(Error::Handler(e), ErrorSource::Heartbeat))
            }
            MessageType::Unknown => self.handle_message(message),
        }
    }

    fn handle_message(&mut self, message: Message) -> Option<SessionEnd> {
        let result = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_message(message, &mut ctx)
        };
        result
            .err()
            .and_then(|e| self.on_error(Error::Handler(e), ErrorSource::Handler))
    }

    fn on_response(&mut self, id: RequestId, message: Message) {
        let Some(pending) = self.pending.remove(&id) else {
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
                    self.timers
                        .insert((Instant::now() + after, Timer::Resend(id.clone())));
                    self.pending.insert(
                        id,
                        Pending {
                            written: false,
                            ..pending
                        },
                    );
                    return;
                }
                RateLimitAction::Fail(reason) => {
                    if let Awaiting::Caller(reply) = pending.awaiting {
                        let error = crate::error::HandlerError::new(format!(
                            "rate limited by the platform: {reason}"
                        ));
                        let _ = reply.send(Err(Error::Handler(error)));
                    }
                    return;
                }
            }
        }
        // Answered: its deadline goes too (otherwise every request's timer stays in the set until
        // the deadline passes: ~request_timeout × request rate entries).
        self.timers
            .remove(&(pending.deadline, Timer::Deadline(id.clone())));
        match pending.awaiting {
            Awaiting::Caller(reply) => {
                let _ = reply.send(Ok(message));
            }
            Awaiting::Subscribe { sub, purpose } => {
                self.on_subscribe_ack(sub, purpose, Ok(&message))
            }
            Awaiting::Unsubscribe => {}
            Awaiting::Backfill { sub } => self.on_backfill_response(sub, Ok(&message)),
        }
    }

    /// A request's deadline passed (`at` tells which deadline, for lazily removed timers).
    fn expire(&mut self, id: &RequestId, at: Instant) {
        if self.pending.get(id).is_none_or(|p| p.deadline != at) {
            return;
        }
        let Some(pending) = self.pending.remove(id) else {
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
                self.on_backfill_response(sub, Err(format!("no answer within {timeout:?}")))
            }
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some((at, timer)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Deadline(id) => self.expire(&id, at),
                Timer::Resend(id) => {
                    if let Some(p) = self.pending.get(&id) {
                        let wire = Wire {
                            message: p.message.clone(),
                            operation: p.operation,
                            request: Some(id),
                        };
                        self.carry.push_front(wire);
                    }
                }
                Timer::RestoreRetry(sub) => {
                    if self.connected && self.subs.contains_key(&sub) {
                        self.send_subscribe(sub, SubscribePurpose::Restore);
                    }
                }
            }
        }
    }

    fn add_subscription(
        &mut self,
        id: u64,
        channel: String,
        options: serde_json::Value,
        events: QueueSender<SubscriptionEvent>,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        let sub = Subscription::new(format!("sub-{id}"), channel.clone());
        self.services.registry.insert(sub.clone(), options.clone());
        self.state
            .subscription_status
            .insert(channel, SubscriptionStatus::Pending);
        self.state_dirty = true;
        let entry = SubEntry {
            sub,
            options,
            events,
            route: None,
            last: None,
            waiter: Some(reply),
            restore_attempts: 0,
            restoring: false,
            recovery: Recovery::None,
            accept_next: false,
            subscribe_sent: None,
        };
        self.subs.insert(id, entry);
    }

    fn remove_subscription(&mut self, id: u64) -> Option<SubEntry> {
        let entry = self.subs.remove(&id)?;
        if let Some(route) = &entry.route {
            self.routes.remove(route);
        }
        self.services.registry.remove(&entry.sub.id);
        if !self
            .subs
            .values()
            .any(|e| e.sub.channel == entry.sub.channel)
        {
            self.state.subscription_status.remove(&entry.sub.channel);
        }
        self.publish();
        self.maybe_ready();
        Some(entry)
    }

    /// Removes a subscription and, when connected, queues the platform's unsubscribe.
    fn unsubscribe_now(&mut self, id: u64) {
        let Some(entry) = self.remove_subscription(id) else {
            return;
        };
        tracing::debug!(channel = %entry.sub.channel, "unsubscribing");
        if !self.connected {
            return;
        }
        let built = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            let request_id = ctx.next_request_id();
            self.handler
                .unsubscribe(&entry.sub, request_id.clone(), &mut ctx)
                .map(|m| m.map(|m| (request_id, m)))
        };
        match built {
            Ok(Some((request_id, message))) => self.send_runtime_request(
                request_id,
                message,
                Awaiting::Unsubscribe,
                Operation::Subscribe,
            ),
            Ok(None) => {}
            Err(e) => {
                let _ = self.on_error(Error::Handler(e), ErrorSource::Subscription);
            }
        }
    }

    /// After authentication: restore every subscription; Ready once their acks are in.
    fn begin_restore(&mut self) {
        let ids: Vec<u64> = self.subs.keys().copied().collect();
        for id in &ids {
            let purpose = match self.subs.get(id) {
                Some(e) if e.waiter.is_some() => SubscribePurpose::First,
                _ => SubscribePurpose::Restore,
            };
            if let Some(e) = self.subs.get_mut(id) {
                e.restoring = true;
            }
            self.send_subscribe(*id, purpose);
        }
        self.phase = Phase::Restoring;
        self.maybe_ready();
    }

    fn maybe_ready(&mut self) {
        if self.phase == Phase::Restoring && !self.subs.values().any(|e| e.restoring) {
            self.phase = Phase::Ready;
        }
    }

    /// Queues a request the runtime itself makes (subscribe, unsubscribe, backfill).
    fn send_runtime_request(
        &mut self,
        id: RequestId,
        message: Message,
        awaiting: Awaiting,
        operation: Operation,
    ) {
        let deadline = Instant::now() + self.config.request_timeout;
        self.timers.insert((deadline, Timer::Deadline(id.clone())));
        self.out
            .frames
            .push((Frame::from_message(message.clone()), operation));
        let pending = Pending {
            awaiting,
            timeout: self.config.request_timeout,
            message,
            operation,
            deadline,
            idempotent: false,
            written: true,
        };
        self.pending.insert(id, pending);
    }

    fn send_subscribe(&mut self, sub: u64, purpose: SubscribePurpose) {
        let Some(entry) = self.subs.get(&sub) else {
            return;
        };
        let (subscription, options) = (entry.sub.clone(), entry.options.clone());
        let built = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            let id = ctx.next_request_id();
            self.handler
                .subscribe(&subscription, &options, id.clone(), &mut ctx)
                .map(|m| (id, m))
        };
        match built {
            Ok((id, message)) => {
                tracing::debug!(channel = %subscription.channel, ?purpose, "subscribing");
                self.telemetry.event(EventKind::SubscriptionStarted {
                    channel: subscription.channel.clone(),
                });
                if let Some(entry) = self.subs.get_mut(&sub) {
                    entry.subscribe_sent = Some(Instant::now());
                }
                self.send_runtime_request(
                    id,
                    message,
                    Awaiting::Subscribe { sub, purpose },
                    Operation::Subscribe,
                );
            }
            Err(e) => self.on_subscribe_ack(sub, purpose, Err(e.to_string())),
        }
    }

    fn on_subscribe_ack(
        &mut self,
        sub: u64,
        purpose: SubscribePurpose,
        response: Result<&Message, String>,
    ) {
        let Some(entry) = self.subs.get(&sub) else {
            return;
        };
        let subscription = entry.sub.clone();
        let verdict = match response {
            Ok(message) => {
                let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
                self.handler
                    .handle_subscription_response(&subscription, message, &mut ctx)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let channel = subscription.channel.clone();
        match verdict {
            Ok(route) => {
                let route = route.unwrap_or_else(|| channel.clone());
                let Some(entry) = self.subs.get_mut(&sub) else {
                    return;
                };
                if let Some(old) = entry.route.replace(route.clone()) {
                    self.routes.remove(&old);
                }
                entry.sub.status = SubscriptionStatus::Active;
                entry.sub.error = None;
                entry.restore_attempts = 0;
                entry.restoring = false;
                let waiter = entry.waiter.take();
                let last = entry.last;
                let duration = entry
                    .subscribe_sent
                    .take()
                    .map(|t| t.elapsed())
                    .unwrap_or_default();
                self.telemetry.event(EventKind::SubscriptionCompleted {
                    channel: channel.clone(),
                    duration,
                });
                if purpose == SubscribePurpose::Restore {
                    self.telemetry.event(EventKind::SubscriptionRestored {
                        channel: channel.clone(),
                    });
                }
                self.routes.insert(route, sub);
                self.services.registry.set_status(
                    &subscription.id,
                    SubscriptionStatus::Active,
                    None,
                );
                self.state
                    .subscription_status
                    .insert(channel, SubscriptionStatus::Active);
                self.state_dirty = true;
                if let Some(waiter) = waiter {
                    // The caller may look at the state as soon as it is answered.
                    self.publish();
                    let _ = waiter.send(Ok(()));
                } else if purpose == SubscribePurpose::Restore {
                    self.sub_out.push((sub, SubscriptionEvent::Restored));
                    // Data may have been missed while down, even before anything was delivered
                    // (`last: None`): the handler decides whether it can fetch it.
                    let gap = Gap {
                        last,
                        got: None,
                        claimed_previous: None,
                        after_reconnect: true,
                    };
                    self.run_gap_action(sub, gap);
                }
            }
            Err(reason) => {
                self.services.registry.set_status(
                    &subscription.id,
                    SubscriptionStatus::Error,
                    Some(reason.clone()),
                );
                self.state
                    .subscription_status
                    .insert(channel.clone(), SubscriptionStatus::Error);
                self.state_dirty = true;
                let error = Error::SubscriptionRefused {
                    channel,
                    reason: reason.clone(),
                };
                let _ = self.on_error_logged(&error, ErrorSource::Subscription);
                let Some(entry) = self.subs.get_mut(&sub) else {
                    return;
                };
                entry.sub.status = SubscriptionStatus::Error;
                entry.sub.error = Some(reason.clone());
                entry.restoring = false;
                if let Some(waiter) = entry.waiter.take() {
                    // The application's subscribe call fails; the subscription is not kept.
                    self.remove_subscription(sub);
                    let _ = waiter.send(Err(error));
                } else {
                    let retry_in = self.config.backoff().delay(entry.restore_attempts);
                    entry.restore_attempts = entry.restore_attempts.saturating_add(1);
                    self.timers
                        .insert((Instant::now() + retry_in, Timer::RestoreRetry(sub)));
                    self.telemetry.event(EventKind::SubscriptionRestoreFailed {
                        channel: subscription.channel.clone(),
                    });
                    self.sub_out.push((
                        sub,
                        SubscriptionEvent::RestoreFailed {
                            error: reason,
                            retry_in,
                        },
                    ));
                }
            }
        }
        self.maybe_ready();
    }

    /// A message routed to a subscription: sequence check, gap recovery, delivery.
    fn on_subscription_message(&mut self, sub: u64, message: Message) {
        let Some(entry) = self.subs.get_mut(&sub) else {
            return;
        };
        if entry.events.is_closed() {
            self.unsubscribe_now(sub);
            return;
        }
        if let Recovery::Backfill { held, failed, .. } = &mut entry.recovery {
            if held.len() < self.config.inbound_buffer {
                held.push_back(message);
                return;
            }
            *failed = Some("too many live messages held back during the backfill".to_owned());
            held.push_back(message);
            self.finish_backfill(sub);
            return;
        }
        let Some(seq) = self.handler.sequence(&entry.sub, &message) else {
            self.sub_out
                .push((sub, SubscriptionEvent::Message(message)));
            return;
        };
        let verdict = if std::mem::take(&mut entry.accept_next) {
            SeqVerdict::Accept
        } else {
            check_sequence(entry.last, seq)
        };
        match verdict {
            SeqVerdict::Accept => {
                if matches!(entry.recovery, Recovery::Snapshot) {
                    if seq.check != SequenceCheck::Snapshot && entry.last.is_some() {
                        // Still the old stream, before the fresh snapshot: skip it.
                        entry.last = Some(seq.value);
                        return;
                    }
                    entry.recovery = Recovery::None;
                    let channel = entry.sub.channel.clone();
                    self.telemetry.event(EventKind::GapRecovered { channel });
                    self.sub_out
                        .push((sub, SubscriptionEvent::GapClosed { value: seq.value }));
                }
                entry.last = Some(seq.value);
                self.sub_out
                    .push((sub, SubscriptionEvent::Message(message)));
            }
            SeqVerdict::Duplicate => {
                tracing::trace!(value = seq.value, "duplicate subscription message dropped");
            }
            SeqVerdict::Gap => {
                if matches!(entry.recovery, Recovery::Snapshot) {
                    return; // waiting for the snapshot
                }
                let claimed_previous = match seq.check {
                    SequenceCheck::Follows(p) => Some(p),
                    _ => None,
                };
                let gap = Gap {
                    last: entry.last,
                    got: Some(seq.value),
                    claimed_previous,
                    after_reconnect: false,
                };
                tracing::warn!(channel = %entry.sub.channel, last = ?entry.last, got = seq.value, "sequence gap");
                match self.run_gap_action(sub, gap) {
                    GapOutcome::Hold => {
                        if let Some(SubEntry {
                            recovery: Recovery::Backfill { held, .. },
                            ..
                        }) = self.subs.get_mut(&sub)
                        {
                            held.push_back(message);
                        }
                    }
                    GapOutcome::Drop => {}
                    GapOutcome::Accept => {
                        if let Some(entry) = self.subs.get_mut(&sub) {
                            entry.last = Some(seq.value);
                        }
                        self.sub_out
                            .push((sub, SubscriptionEvent::Message(message)));
                    }
                }
            }
        }
    }

    /// Asks the handler about a gap and starts the recovery.
    fn run_gap_action(&mut self, sub: u64, gap: Gap) -> GapOutcome {
        let Some(entry) = self.subs.get(&sub) else {
            return GapOutcome::Drop;
        };
        let subscription = entry.sub.clone();
        let action = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.on_gap(&subscription, &gap, &mut ctx)
        };
        let label = match &action {
            GapAction::Resubscribe => "resubscribe",
            GapAction::Backfill(_) => "backfill",
            GapAction::Report => "report",
            GapAction::Ignore => return GapOutcome::Accept,
        };
        self.emit(LifecycleEvent::Gap {
            channel: subscription.channel.clone(),
            action: label,
        });
        self.telemetry.event(EventKind::GapDetected {
            channel: subscription.channel.clone(),
            action: label,
        });
        self.sub_out
            .push((sub, SubscriptionEvent::Gap { gap, action: label }));
        match action {
            GapAction::Resubscribe => {
                if let Some(entry) = self.subs.get_mut(&sub) {
                    entry.recovery = Recovery::Snapshot;
                }
                let unsubscribe = {
                    let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
                    let id = ctx.next_request_id();
                    self.handler
                        .unsubscribe(&subscription, id.clone(), &mut ctx)
                        .map(|m| m.map(|m| (id, m)))
                };
                if let Ok(Some((id, message))) = unsubscribe {
                    self.send_runtime_request(
                        id,
                        message,
                        Awaiting::Unsubscribe,
                        Operation::Subscribe,
                    );
                }
                self.send_subscribe(sub, SubscribePurpose::Resubscribe);
                GapOutcome::Drop
            }
            GapAction::Backfill(requests) if !requests.is_empty() => {
                let outstanding = requests.len();
                for (id, message) in requests {
                    self.send_runtime_request(
                        id,
                        message,
                        Awaiting::Backfill { sub },
                        Operation::Query,
                    );
                }
                if let Some(entry) = self.subs.get_mut(&sub) {
                    entry.recovery = Recovery::Backfill {
                        outstanding,
                        fetched: Vec::new(),
                        held: VecDeque::new(),
                        failed: None,
                    };
                }
                GapOutcome::Hold
            }
            GapAction::Backfill(_) | GapAction::Report => {
                let reason = "the handler cannot recover this gap".to_owned();
                self.sub_out
                    .push((sub, SubscriptionEvent::GapNotClosed { reason }));
                GapOutcome::Accept
            }
            GapAction::Ignore => GapOutcome::Accept,
        }
    }

    fn on_backfill_response(&mut self, sub: u64, response: Result<&Message, String>) {
        let Some(entry) = self.subs.get(&sub) else {
            return;
        };
        let subscription = entry.sub.clone();
        let result = match response {
            Ok(message) => self
                .handler
                .handle_backfill_response(&subscription, message)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let Some(SubEntry {
            recovery:
                Recovery::Backfill {
                    outstanding,
                    fetched,
                    failed,
                    ..
                },
            ..
        }) = self.subs.get_mut(&sub)
        else {
            return;
        };
        *outstanding = outstanding.saturating_sub(1);
        match result {
            Ok(messages) => fetched.extend(messages),
            Err(e) => *failed = Some(e),
        }
        if *outstanding == 0 {
            self.finish_backfill(sub);
        }
    }

    /// Delivers what the backfill fetched, in sequence order without duplicates, then the live
    /// messages held back meanwhile.
    fn finish_backfill(&mut self, sub: u64) {
        let Some(entry) = self.subs.get_mut(&sub) else {
            return;
        };
        let Recovery::Backfill {
            fetched,
            held,
            failed,
            ..
        } = std::mem::replace(&mut entry.recovery, Recovery::None)
        else {
            return;
        };
        let mut fetched: Vec<(u64, Message)> = fetched
            .into_iter()
            .filter_map(|m| self.handler.sequence(&entry.sub, &m).map(|s| (s.value, m)))
            .collect();
        fetched.sort_by_key(|(v, _)| *v);
        let mut delivered = 0usize;
        for (value, message) in fetched {
            if entry.last.is_some_and(|last| value <= last) {
                continue;
            }
            entry.last = Some(value);
            delivered += 1;
            self.sub_out
                .push((sub, SubscriptionEvent::Message(message)));
        }
        // Closed when nothing failed and the first live message now follows on.
        let first_follows = held.front().is_none_or(|m| {
            self.handler
                .sequence(&entry.sub, m)
                .is_none_or(|s| !matches!(check_sequence(entry.last, s), SeqVerdict::Gap))
        });
        let channel = entry.sub.channel.clone();
        match failed {
            None if first_follows => {
                tracing::info!(%channel, delivered, "gap closed by backfill");
                let value = entry.last.unwrap_or_default();
                self.telemetry.event(EventKind::GapRecovered {
                    channel: channel.clone(),
                });
                self.emit(LifecycleEvent::GapClosed { channel });
                self.sub_out
                    .push((sub, SubscriptionEvent::GapClosed { value }));
            }
            failed => {
                let reason =
                    failed.unwrap_or_else(|| "the backfill did not reach the live data".to_owned());
                tracing::warn!(%channel, %reason, "gap not closed");
                entry.accept_next = true;
                self.sub_out
                    .push((sub, SubscriptionEvent::GapNotClosed { reason }));
            }
        }
        for message in held {
            self.on_subscription_message(sub, message);
        }
    }

    /// Performs what callbacks and the runtime queued: frames out (with their rate-limit cost,
    /// without waiting), messages to the application and to subscription streams, reconnects.
    async fn apply_outbox(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        if self.state_dirty {
            self.publish();
        }
        if !self.out.frames.is_empty() {
            let mut frames = std::mem::take(&mut self.out.frames);
            let now = Instant::now();
            for (frame, operation) in frames.drain(..) {
                if let Some(limiter) = self.services.limiter.as_mut() {
                    let cost = self
                        .config
                        .rate_limit
                        .as_ref()
                        .map_or(1, |r| r.cost_of(operation));
                    limiter.force_acquire(cost, now);
                }
                match &frame {
                    Frame::Text(t) => self.telemetry.message_sent(operation, t.len()),
                    Frame::Binary(b) => self.telemetry.message_sent(operation, b.len()),
                    _ => {}
                }
                if let Err(e) = ws.feed(frame.into_ws()).await {
                    return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
                }
            }
            self.out.frames = frames;
            if let Err(e) = ws.flush().await {
                return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
            }
        }
        if !self.out.deliveries.is_empty() {
            let mut deliveries = std::mem::take(&mut self.out.deliveries);
            for message in deliveries.drain(..) {
                if self.inbound_open && !self.inbound.deliver(message).await {
                    self.inbound_open = false;
                    tracing::debug!(
                        "the application dropped its message receiver; messages are discarded"
                    );
                }
            }
            self.out.deliveries = deliveries;
        }
        if !self.sub_out.is_empty() {
            let mut out = std::mem::take(&mut self.sub_out);
            let mut closed = Vec::new();
            for (sub, event) in out.drain(..) {
                if let Some(entry) = self.subs.get(&sub) {
                    if !entry.events.deliver(event).await {
                        closed.push(sub);
                    }
                }
            }
            self.sub_out = out;
            for sub in closed {
                self.unsubscribe_now(sub);
            }
            if !self.out.frames.is_empty() {
                return Box::pin(self.apply_outbox(ws)).await;
            }
        }
        self.out
            .reconnect
            .take()
            .map(|why| SessionEnd::Disconnected(DisconnectReason::Requested(why)))
    }

    /// A read or write failed: the connection is unusable whatever the handler says, so only a
    /// `Stop` changes the outcome. The peer is told why with the close code RFC 6455 gives.
    async fn on_io_error(
        &mut self,
        ws: &mut WsStream,
        e: tungstenite::Error,
        source: ErrorSource,
        peer_close: Option<Option<CloseFrame>>,
    ) -> SessionEnd {
        let (error, reason, close_code) = classify(e, &self.config, peer_close);
        if let Some(code) = close_code {
            let frame = tungstenite::protocol::CloseFrame {
                code: code.into(),
                reason: "".into(),
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
        }
        match self.on_error(error, source) {
            Some(SessionEnd::Stop(stop)) => SessionEnd::Stop(stop),
            _ => SessionEnd::Disconnected(reason),
        }
    }

    /// Logs an error, asks the handler, and returns how the session ends, if it does.
    fn on_error(&mut self, error: Error, source: ErrorSource) -> Option<SessionEnd> {
        self.on_error_logged(&error, source)
    }

    fn on_error_logged(&mut self, error: &Error, source: ErrorSource) -> Option<SessionEnd> {
        self.log(error, source);
        self.emit(LifecycleEvent::Error {
            kind: error.kind(),
            source: source.as_str(),
            message: error.to_string(),
        });
        self.telemetry.event(EventKind::ErrorOccurred {
            error_type: error.kind(),
            source: source.as_str(),
        });
        let context = self.error_context(source);
        let action = {
            let ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_error(error, &context, &ctx)
        };
        match action {
            ErrorAction::Continue | ErrorAction::Retry { .. } => None,
            ErrorAction::Reconnect => Some(SessionEnd::Disconnected(DisconnectReason::Requested(
                format!("error handler: {}", error.kind()),
            ))),
            ErrorAction::Stop { reason } => Some(SessionEnd::Stop(StopReason::Policy(reason))),
        }
    }

    fn log(&mut self, error: &Error, source: ErrorSource) {
        let context = self.error_context(source);
        self.handler.log_error(error, &context);
    }

    fn error_context(&self, source: ErrorSource) -> ErrorContext {
        ErrorContext {
            source,
            client: self.config.name.clone(),
            attempt: self.state.reconnection_attempts,
        }
    }

    /// Writes what the application already handed over, sends a close frame and waits (bounded)
    /// for the server's.
    async fn close_gracefully(&mut self, ws: &mut WsStream, code: u16, reason: String) {
        if self.phase == Phase::Ready {
            while let Ok(o) = self.data_rx.try_recv() {
                self.take_outgoing(o);
            }
            // The rate limit no longer applies: the application asked to finish.
            self.services.limiter = None;
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

    fn finish(mut self, reason: StopReason) {
        self.control_rx.close();
        let unsent = self.carry.len() + drain_count(&mut self.data_rx);
        if unsent > 0 {
            tracing::warn!(unsent, "client stopped with messages never sent");
        }
        for (_, pending) in self.pending.drain() {
            if let Awaiting::Caller(reply) = pending.awaiting {
                let _ = reply.send(Err(Error::Stopped(reason.clone())));
            }
        }
        for (_, entry) in self.subs.drain() {
            if let Some(waiter) = entry.waiter {
                let _ = waiter.send(Err(Error::Stopped(reason.clone())));
            }
        }
        self.state.status = match reason {
            StopReason::Closed { .. } | StopReason::HandlesDropped => {
                ConnectionStatus::Disconnected
            }
            _ => ConnectionStatus::Error,
        };
        self.state.stopped = Some(reason.clone());
        self.publish();
        tracing::info!("stopped: {reason}");
        self.emit(LifecycleEvent::Stopped { reason });
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    fn publish(&mut self) {
        self.state_dirty = false;
        self.state_tx.send_replace(self.state.clone());
    }

    fn emit(&self, event: LifecycleEvent) {
        let _ = self.events.send(event);
    }
}

/// What happens to the message that revealed a gap.
enum GapOutcome {
    /// Held back until the backfill is done.
    Hold,
    /// Dropped (a snapshot will replace it).
    Drop,
    /// Delivered as it is.
    Accept,
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_first(timers: &BTreeSet<(Instant, Timer)>) {
    match timers.first() {
        Some((at, _)) => tokio::time::sleep_until(*at).await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn drain_count(rx: &mut mpsc::Receiver<Outgoing>) -> usize {
    rx.close();
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

fn closed_reason(peer_close: Option<Option<CloseFrame>>, fallback: &str) -> DisconnectReason {
    match peer_close {
        Some(Some(c)) => DisconnectReason::ClosedByPeer {
            code: Some(c.code),
            reason: c.reason,
        },
        Some(None) => DisconnectReason::ClosedByPeer {
            code: None,
            reason: String::new(),
        },
        None => DisconnectReason::ConnectionLost(fallback.to_owned()),
    }
}

/// Maps a WebSocket error to nova's error, the reason the connection ended, and the close code
/// to send the peer when the fault is theirs (1007 invalid data, 1009 too big, 1002 protocol).
fn classify(
    e: tungstenite::Error,
    config: &ClientConfig,
    peer_close: Option<Option<CloseFrame>>,
) -> (Error, DisconnectReason, Option<u16>) {
    use tungstenite::Error as E;
    use tungstenite::error::CapacityError;
    match e {
        E::ConnectionClosed | E::AlreadyClosed => {
            let reason = closed_reason(peer_close, "connection closed");
            (Error::ConnectionLost(reason.to_string()), reason, None)
        }
        E::Io(io) => {
            let reason = match peer_close {
                Some(_) => closed_reason(peer_close, ""),
                None => DisconnectReason::ConnectionLost(io.to_string()),
            };
            (Error::ConnectionLost(io.to_string()), reason, None)
        }
        E::Utf8(_) => {
            let why = "invalid UTF-8 in a text message".to_owned();
            (
                Error::Protocol(why.clone()),
                DisconnectReason::ProtocolError(why),
                Some(1007),
            )
        }
        E::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            let why = format!("message of {size} bytes over the limit of {max_size}");
            let error = Error::MessageTooLarge {
                size,
                limit: max_size,
            };
            (error, DisconnectReason::ProtocolError(why), Some(1009))
        }
        E::Capacity(c) => {
            let limit = config.transport.max_frame_size.unwrap_or_default();
            let why = c.to_string();
            (
                Error::MessageTooLarge { size: 0, limit },
                DisconnectReason::ProtocolError(why),
                Some(1009),
            )
        }
        E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            let why = "connection reset without a closing handshake".to_owned();
            let reason = match peer_close {
                Some(_) => closed_reason(peer_close, ""),
                None => DisconnectReason::ConnectionLost(why.clone()),
            };
            (Error::ConnectionLost(why), reason, None)
        }
        E::Protocol(p) => {
            let why = p.to_string();
            (
                Error::Protocol(why.clone()),
                DisconnectReason::ProtocolError(why),
                Some(1002),
            )
        }
        other => {
            let why = other.to_string();
            (
                Error::ConnectionLost(why.clone()),
                DisconnectReason::ConnectionLost(why),
                None,
            )
        }
    }
}

/// Whole milliseconds, for log fields.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
