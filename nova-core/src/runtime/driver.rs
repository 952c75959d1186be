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
//! This file holds the task's state and the order of events on a connection, top to bottom:
//! [`Driver::run_until_stopped`] (connect, serve, decide, wait, again) and [`Driver::session`]
//! (connected → handle_connect → auth → restore → flush → serve → teardown). Each concern it
//! routes lives beside it, a component owning its state:
//!
//! | file | owns |
//! |---|---|
//! | `commands.rs` | what the handles send the task |
//! | `down.rs` | the task while no connection is open: decisions, attempts, the wait |
//! | `session.rs` | the steady state of an open connection: the event loop and the I/O |
//! | `dispatch.rs` | the way in: frames, validation, auth verdicts, routing, timers |
//! | `liveness.rs` | ping/pong and platform heartbeat silence (sans-IO) |
//! | `auth.rs` | authentication on a connection (sans-IO state machine) |
//! | `requests.rs` | requests in flight, deadlines, resends, replays (sans-IO) |
//! | `outbound.rs` | the carry and the rate gate (sans-IO) |
//! | `subs.rs` | the subscription table, acks, restore |
//! | `gaps.rs` | sequence checks and gap recovery |
//! | `errors.rs` | classification of socket errors and the error policy |
//! | `observe.rs` | the published state, lifecycle events, telemetry |
//! | `handover.rs` | make-before-break: the next connection opened beside the current one |
//! | `stale.rs` | the per-subscription staleness watchdog |
//!
//! Callbacks never do I/O: what they and the components decide to send or deliver is queued in
//! the [`Outbox`] and carried out by `apply_outbox` (session.rs).

use std::time::{Duration, SystemTime};

use futures_util::future::Either;
use rustc_hash::FxHashSet;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::auth::AuthState;
use super::commands::{Control, Outgoing, Services};
use super::down::Next;
use super::events::LifecycleEvent;
use super::handover::{Handover, open};
use super::inbound::InboundSender;
use super::liveness::Liveness;
use super::observe::{Observer, millis};
use super::outbound::Outbound;
use super::requests::Requests;
use super::subs::SubTable;
use super::subscriptions::{SubscriptionEvent, SubscriptionRegistry};
use crate::config::ClientConfig;
use crate::endpoint::{ConnectPurpose, EndpointRequest};
use crate::error::{Error, HandlerError};
use crate::handler::{AuthRequest, ErrorSource, Handler, Operation, Outbox};
use crate::message::{CloseFrame, Frame};
use crate::telemetry::{EventKind, Telemetry};
use crate::transport::{Connected, Transport, WsStream};
use crate::types::{ConnectInfo, ConnectionState, ConnectionStatus, DisconnectReason, StopReason};

/// How a connected session ended.
pub(crate) enum SessionEnd {
    /// The connection is gone; the handler decides what follows.
    Disconnected(DisconnectReason),
    /// The client stops.
    Stop(StopReason),
}

/// Whether a connection is open, and where it is in its setup.
#[derive(Debug)]
pub(crate) enum Link {
    /// No connection (connecting, or waiting to reconnect).
    Down,
    /// A connection is open.
    Up(Phase),
}

/// Where an open connection is in its setup.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Waiting for the verdict on the credentials.
    Authenticating,
    /// Waiting for the acks of these restored subscriptions.
    Restoring { outstanding: FxHashSet<u64> },
    /// Normal traffic: the application's sends flow.
    Ready,
}

pub(crate) struct Driver<H> {
    pub(super) config: ClientConfig,
    pub(super) handler: H,
    pub(super) data_rx: mpsc::Receiver<Box<Outgoing>>,
    pub(super) control_rx: mpsc::Receiver<Box<Control>>,
    pub(super) obs: Observer,
    pub(super) inbound: InboundSender,
    pub(super) inbound_open: bool,
    /// What callbacks and components queued, carried out by `apply_outbox`.
    pub(super) out: Outbox,
    /// One subscription's events of a burst, handed to its stream at once (kept for reuse).
    pub(super) event_run: Vec<SubscriptionEvent>,
    pub(super) close_waiters: Vec<oneshot::Sender<()>>,
    pub(super) registry: Box<dyn SubscriptionRegistry>,
    pub(super) requests: Requests,
    pub(super) subs: SubTable,
    pub(super) outbound: Outbound,
    pub(super) link: Link,
    pub(super) auth: AuthState,
    pub(super) liveness: Liveness,
    /// The peer's close frame, once it came (`Some(None)`: a close without a frame).
    pub(super) peer_close: Option<Option<CloseFrame>>,
    /// Whether a handle may still send data (every handle dropped: the channel is closed).
    pub(super) data_open: bool,
    connections: u64,
    /// When the last connection was lost (or the first connect failed), for the reconnection
    /// duration.
    pub(super) down_since: Option<Instant>,
    /// The transport, once built (a handover opens its next connection with it).
    pub(super) transport: Option<Transport>,
    /// When the frames being handled were read (a subscription's last message time).
    pub(super) read_at: Instant,
    /// A make-before-break handover under way.
    pub(super) handover: Handover,
    /// Until when the open connection waits for the server's greeting (handlers that
    /// authenticate only after one).
    pub(super) greeting_until: Option<Instant>,
}

impl<H: Handler> Driver<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: ClientConfig,
        handler: H,
        data_rx: mpsc::Receiver<Box<Outgoing>>,
        control_rx: mpsc::Receiver<Box<Control>>,
        state_tx: watch::Sender<ConnectionState>,
        events: broadcast::Sender<LifecycleEvent>,
        inbound: InboundSender,
        services: Services,
        telemetry: Telemetry,
    ) -> Self {
        let Services {
            registry,
            limiter,
            rate_limited_until,
        } = services;
        let liveness = Liveness::new(None, config.pong_timeout, None, Instant::now());
        Self {
            config,
            handler,
            data_rx,
            control_rx,
            obs: Observer::new(state_tx, events, telemetry),
            inbound,
            inbound_open: true,
            out: Outbox::default(),
            event_run: Vec::new(),
            close_waiters: Vec::new(),
            registry,
            requests: Requests::default(),
            subs: SubTable::default(),
            outbound: Outbound::new(limiter, rate_limited_until),
            link: Link::Down,
            auth: AuthState::Unused,
            liveness,
            peer_close: None,
            data_open: true,
            connections: 0,
            down_since: None,
            transport: None,
            handover: Handover::default(),
            read_at: Instant::now(),
            greeting_until: None,
        }
    }

    /// The task: the driver is moved into one future, once (an `async fn` taking `self` that
    /// moved it into an inner block would hold it twice).
    pub(crate) fn run(mut self) -> impl std::future::Future<Output = ()> + Send {
        let span = tracing::info_span!("nova.client", client_id = %self.config.name);
        async move {
            let reason = self.run_until_stopped().await;
            self.finish(&reason);
            // `finish` closed the control channel. A command whose sender took its slot just
            // before that is pushed after it: tokio drops what is left in a channel when its
            // receiver is dropped, but not a value pushed after that drain, which would then
            // live (and its caller wait) as long as any handle. Receiving until `None` waits
            // for those, and answers each: the client has stopped.
            while let Some(command) = self.control_rx.recv().await {
                answer_stopped(*command, &reason);
            }
            // The same for the data channel (closed by `finish` too): a late request is told
            // the client stopped instead of waiting for its deadline.
            while let Some(outgoing) = self.data_rx.recv().await {
                if let Outgoing::Request { reply, .. } = *outgoing {
                    let _ = reply.send(Err(Error::Stopped(reason.clone())));
                }
            }
        }
        .instrument(span)
    }

    /// Connect, serve, decide what follows, wait, again; until the client stops.
    async fn run_until_stopped(&mut self) -> StopReason {
        if let Err(e) = self.handler.init(&self.config) {
            return StopReason::Fatal(format!("init failed: {e}"));
        }
        let transport = match Transport::new(self.config.transport.clone()) {
            Ok(t) => t,
            Err(e) => return StopReason::Fatal(e.to_string()),
        };
        self.transport = Some(transport.clone());
        loop {
            let fixed = {
                let ctx = ctx!(self);
                self.handler.connect_url(&ctx)
            };
            let fixed = fixed.or_else(|| {
                self.config
                    .endpoint
                    .is_none()
                    .then(|| self.config.url.clone())
            });
            self.obs.state.status = ConnectionStatus::Connecting;
            self.obs.publish();
            let attempt = self.obs.state.reconnection_attempts;
            self.obs.emit(LifecycleEvent::Connecting { attempt });
            self.obs.event(EventKind::ConnectionStarted { attempt });
            let purpose = if self.connections == 0 {
                ConnectPurpose::First
            } else {
                ConnectPurpose::Reconnect
            };
            let request = EndpointRequest::new(attempt, purpose);
            let started = Instant::now();
            let result = {
                // Boxed (as the other rare, large futures): the task's future is as large as its
                // largest state, and an idle connection keeps all of it (issue 13, memory).
                let mut connect = open(
                    transport.clone(),
                    fixed,
                    self.config.endpoint.clone(),
                    request,
                );
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
            // One future awaited in place, built before the await: a `match` whose arm awaited
            // would keep the whole connect result (socket included) alive beside the session.
            let step = match result {
                Ok((connected, url)) => {
                    let Connected {
                        stream,
                        peer_addr,
                        protocol,
                        ..
                    } = connected;
                    let info =
                        self.connect_info(url, peer_addr, protocol, started.elapsed(), purpose);
                    Either::Left(self.session(stream, info))
                }
                Err(e) => Either::Right(std::future::ready(self.after_connect_failure(e))),
            };
            let (delay, last_error) = match step.await {
                Ok(next) => next,
                Err(stop) => return stop,
            };
            if let Some(stop) = Box::pin(self.wait_before_reconnect(delay, last_error)).await {
                return stop;
            }
        }
    }

    /// One open connection, from its first frame to its teardown.
    ///
    /// The socket stays in its argument's slot (an `async fn`'s arguments keep their slot in its
    /// future for its whole life: a socket moved out of one would be held twice). Ends with
    /// what follows: a reconnect after a delay, or the stop.
    async fn session(&mut self, mut ws: WsStream, info: ConnectInfo) -> Next {
        let ws = &mut ws;
        let up_since = Instant::now();
        self.on_connected(&info);
        let end = self.run_session(ws, &info).await;
        // A handover's connections go with the session.
        self.handover.clear();
        self.on_connection_lost();
        match end {
            SessionEnd::Disconnected(reason) => {
                self.on_disconnected(&reason, up_since.elapsed());
                self.after_disconnect(reason)
            }
            SessionEnd::Stop(stop) => Err(stop),
        }
    }

    /// What the handler learns about the connection just opened (counted here).
    pub(super) fn connect_info(
        &mut self,
        url: String,
        peer_addr: Option<std::net::SocketAddr>,
        protocol: Option<String>,
        duration: Duration,
        purpose: ConnectPurpose,
    ) -> ConnectInfo {
        let info = ConnectInfo {
            url,
            peer_addr,
            protocol,
            duration,
            connection_index: self.connections,
            purpose,
        };
        self.connections += 1;
        info
    }

    /// A connection, from its first frame to its end: the opening sequence, then the steady
    /// state.
    async fn run_session(&mut self, ws: &mut WsStream, info: &ConnectInfo) -> SessionEnd {
        if let Some(end) = self.open_session(ws, info).await {
            return end;
        }
        self.serve(ws).await
    }

    /// The order of events on a connection (a handover's next connection too): handle_connect,
    /// then authentication (restore starts when the credentials are accepted, or at once without
    /// any), then what was queued is written (and, once ready, what was buffered while down).
    pub(super) async fn open_session(
        &mut self,
        ws: &mut WsStream,
        info: &ConnectInfo,
    ) -> Option<SessionEnd> {
        // 1. handle_connect: frames it queues go first.
        let connect_result = {
            let mut ctx = ctx!(self);
            self.handler.handle_connect(info, &mut ctx)
        };
        if let Err(e) = connect_result {
            if let Some(end) = self.on_error(&Error::Handler(e), ErrorSource::Handler) {
                return Some(end);
            }
        }
        // 2. Authenticate before anything else goes out (or wait, in the authenticating phase,
        // until a callback begins it after the server's greeting); 3. restore once accepted.
        if self.handler.authenticates_on_connect() {
            if let Some(end) = self.start_authentication() {
                return Some(end);
            }
        } else {
            self.link = Link::Up(Phase::Authenticating);
            self.greeting_until = Some(Instant::now() + self.config.greeting_timeout);
        }
        // 4. Write what was queued; once ready, what was buffered while down follows.
        if let Some(end) = self.apply_outbox(ws).await {
            return Some(end);
        }
        self.flush_sends(ws).await
    }

    /// Sends the first credentials of this connection: the verdict is awaited, or, when the
    /// handler has none, restoring begins. `Some(end)` when they cannot be built.
    pub(super) fn start_authentication(&mut self) -> Option<SessionEnd> {
        self.greeting_until = None;
        match self.send_credentials(false) {
            Ok(true) => {
                self.link = Link::Up(Phase::Authenticating);
                None
            }
            Ok(false) => {
                self.begin_restore();
                None
            }
            Err(e) => Some(SessionEnd::Stop(StopReason::Fatal(format!(
                "cannot build authentication: {e}"
            )))),
        }
    }

    /// A callback asked to begin authentication: started when this connection is waiting for
    /// it (authenticating phase, nothing sent yet); otherwise ignored.
    pub(super) fn on_begin_authentication(&mut self) -> Option<SessionEnd> {
        let waiting =
            matches!(self.link, Link::Up(Phase::Authenticating)) && self.auth == AuthState::Unused;
        if !waiting {
            tracing::debug!("begin_authentication ignored: authentication under way or done");
            return None;
        }
        self.start_authentication()
    }

    /// Asks the handler for credentials and queues them; `Ok(false)` when it has none to send.
    pub(super) fn send_credentials(&mut self, refresh: bool) -> Result<bool, HandlerError> {
        let request = AuthRequest::new(self.out.next_request_id(), refresh);
        let auth = {
            let mut ctx = ctx!(self);
            self.handler.generate_auth_data(&request, &mut ctx)?
        };
        let Some(message) = auth else {
            return Ok(false);
        };
        self.out
            .frames
            .push((Frame::from_message(message), Operation::Auth));
        let deadline = Instant::now() + self.config.request_timeout;
        self.auth.sent(request.id, deadline, refresh);
        Ok(true)
    }

    /// A connection is open: fresh per-connection state, and everyone told.
    pub(super) fn on_connected(&mut self, info: &ConnectInfo) {
        self.link = Link::Up(Phase::Authenticating);
        self.auth = AuthState::Unused;
        self.peer_close = None;
        self.greeting_until = None;
        // What was asked of a connection that is gone no longer applies.
        self.out.handover = None;
        self.data_open = true;
        self.obs.state.status = ConnectionStatus::Connected;
        self.obs.state.last_connected_at = Some(SystemTime::now());
        self.obs.publish();
        self.obs.emit(LifecycleEvent::Connected {
            duration: info.duration,
            connection_index: info.connection_index,
        });
        self.obs.event(EventKind::ConnectionCompleted {
            duration: info.duration,
        });
        if let Some(down) = self.down_since.take() {
            let attempt = self.obs.state.reconnection_attempts;
            self.obs.event(EventKind::ReconnectionCompleted {
                attempt,
                duration: down.elapsed(),
            });
        }
        tracing::info!(
            connection_index = info.connection_index,
            connect_ms = millis(info.duration),
            "connected"
        );
    }

    /// What a lost connection means for the link, requests, subscriptions and recoveries.
    fn on_connection_lost(&mut self) {
        self.link = Link::Down;
        self.greeting_until = None;
        // Requests still in the carry were never written: they go out again as they are.
        self.requests.on_connection_lost();
        self.reset_connection_state();
    }

    /// A handover's next connection takes over: per-connection state starts over as after a
    /// lost connection, but requests in flight stay pending (their answers may still come on
    /// the draining connection).
    pub(super) fn on_switch(&mut self) {
        self.reset_connection_state();
        self.liveness = Liveness::new(
            self.config.heartbeat_interval,
            self.config.pong_timeout,
            self.liveness.platform_every(),
            Instant::now(),
        );
    }

    /// Authentication, the rate gate's hold and subscription routes belong to one connection.
    fn reset_connection_state(&mut self) {
        self.auth = AuthState::Unused;
        self.outbound.release();
        self.subs.on_connection_lost();
        for status in self.obs.state.subscription_status.values_mut() {
            if *status == crate::types::SubscriptionStatus::Active {
                *status = crate::types::SubscriptionStatus::Pending;
            }
        }
    }

    fn on_disconnected(&mut self, reason: &DisconnectReason, uptime: Duration) {
        if uptime >= self.config.stable_after {
            self.obs.state.reconnection_attempts = 0;
        }
        self.obs.state.status = ConnectionStatus::Disconnected;
        self.obs.state.disconnect_reason = Some(reason.clone());
        self.obs.publish();
        tracing::warn!(
            reason = reason.as_str(),
            uptime_ms = millis(uptime),
            "disconnected: {reason}"
        );
        self.obs.emit(LifecycleEvent::Disconnected {
            reason: reason.clone(),
            uptime,
        });
        self.obs.event(EventKind::Disconnected {
            reason: reason.as_str(),
        });
        self.down_since = Some(Instant::now());
    }

    fn finish(&mut self, reason: &StopReason) {
        self.control_rx.close();
        let unsent = self.outbound.len() + drain_count(&mut self.data_rx);
        if unsent > 0 {
            tracing::warn!(unsent, "client stopped with messages never sent");
        }
        self.requests.fail_all(|| Error::Stopped(reason.clone()));
        self.subs.fail_all(|| Error::Stopped(reason.clone()));
        self.obs.state.status = match reason {
            StopReason::Closed { .. } | StopReason::HandlesDropped => {
                ConnectionStatus::Disconnected
            }
            _ => ConnectionStatus::Error,
        };
        self.obs.state.stopped = Some(reason.clone());
        self.obs.publish();
        tracing::info!("stopped: {reason}");
        self.obs.emit(LifecycleEvent::Stopped {
            reason: reason.clone(),
        });
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// Answers a command that reached the driver after it stopped.
fn answer_stopped(command: Control, reason: &StopReason) {
    match command {
        Control::Close { done, .. } => {
            let _ = done.send(());
        }
        Control::Subscribe(command) => {
            let _ = command.reply.send(Err(Error::Stopped(reason.clone())));
        }
        Control::Unsubscribe { done, .. } => {
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
}

/// Sleeps until `at`; never, for `None`.
pub(super) async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn drain_count(rx: &mut mpsc::Receiver<Box<Outgoing>>) -> usize {
    rx.close();
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}
