//! The connection task: one per client, owning the socket, the handler and the state machine.
//!
//! ```text
//!            ┌──────────── handle_disconnect / should_reconnect: delay ◄───────────┐
//!            ▼                                                                    │
//! init ─► Connecting ─► transport connect ─► Connected: handle_connect ─► traffic ─┘
//!            │ fail: should_reconnect            (frames, sends, pings, heartbeats)
//!            └──────► backoff (+ Retry-After) ─► Connecting ...   max attempts ─► Stopped
//! ```
//!
//! While disconnected the task still serves `close` and notices when every handle is gone, so a
//! client never outlives its application. Sends are taken from the data channel only while a
//! connection is open; the channel itself is the bounded buffer for sends while disconnected.

use std::collections::VecDeque;
use std::time::SystemTime;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite;
use tracing::Instrument;

use super::events::LifecycleEvent;
use super::inbound::InboundSender;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::handler::{
    Context, DisconnectAction, ErrorAction, ErrorContext, ErrorSource, FrameAction, Handler,
    MessageType, Outbox, ReconnectDecision,
};
use crate::message::{CloseFrame, Frame, Message};
use crate::transport::{Connected, Transport, WsStream};
use crate::types::{ConnectInfo, ConnectionState, ConnectionStatus, DisconnectReason, StopReason};

/// Most messages taken from the send channel before one flush.
const WRITE_BATCH: usize = 64;

/// Commands from the handle that must not queue behind data.
pub(crate) enum Control {
    /// Close with a handshake and stop.
    Close {
        code: u16,
        reason: String,
        done: oneshot::Sender<()>,
    },
}

/// How a connected session ended.
enum SessionEnd {
    /// The connection is gone; the handler decides what follows.
    Disconnected(DisconnectReason),
    /// The client stops.
    Stop(StopReason),
}

pub(crate) struct Driver<H> {
    config: ClientConfig,
    handler: H,
    data_rx: mpsc::Receiver<Message>,
    control_rx: mpsc::Receiver<Control>,
    state_tx: watch::Sender<ConnectionState>,
    state: ConnectionState,
    events: broadcast::Sender<LifecycleEvent>,
    inbound: InboundSender,
    inbound_open: bool,
    /// Messages taken from the data channel but not yet written; first out on the next write.
    carry: VecDeque<Message>,
    out: Outbox,
    connections: u64,
    close_waiters: Vec<oneshot::Sender<()>>,
}

impl<H: Handler> Driver<H> {
    pub(crate) fn new(
        config: ClientConfig,
        handler: H,
        data_rx: mpsc::Receiver<Message>,
        control_rx: mpsc::Receiver<Control>,
        state_tx: watch::Sender<ConnectionState>,
        events: broadcast::Sender<LifecycleEvent>,
        inbound: InboundSender,
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
            connections: 0,
            close_waiters: Vec::new(),
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
            tracing::debug!(attempt, url = %url, "connecting");
            let started = Instant::now();
            let result = tokio::select! {
                r = transport.connect(&url) => r,
                stop = wait_control_while_down(&mut self.control_rx, &mut self.close_waiters) => return stop,
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
    fn after_connect_failure(
        &mut self,
        error: Error,
    ) -> Result<(std::time::Duration, String), StopReason> {
        let attempt = self.state.reconnection_attempts;
        self.state.status = ConnectionStatus::Disconnected;
        self.publish();
        self.emit(LifecycleEvent::ConnectFailed {
            kind: error.kind(),
            error: error.to_string(),
            attempt,
        });
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
    ) -> Result<(std::time::Duration, String), StopReason> {
        let action = {
            let ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_disconnect(&reason, &ctx)
        };
        match action {
            DisconnectAction::Reconnect { after } => Ok((after, reason.to_string())),
            DisconnectAction::Stop { reason } => Err(StopReason::Policy(reason)),
        }
    }

    /// Counts the attempt and sleeps, serving `close` meanwhile. `Some(stop)` ends the client.
    async fn wait_before_reconnect(
        &mut self,
        delay: std::time::Duration,
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
        tracing::info!(
            attempt,
            delay_ms = millis(delay),
            "reconnecting after delay"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => None,
            stop = wait_control_while_down(&mut self.control_rx, &mut self.close_waiters) => Some(stop),
        }
    }

    /// Runs one open connection until it ends.
    async fn session(
        &mut self,
        connected: Connected,
        connect_duration: std::time::Duration,
    ) -> SessionEnd {
        let Connected {
            stream: mut ws,
            peer_addr,
            protocol,
            ..
        } = connected;
        let connection_index = self.connections;
        self.connections += 1;
        let up_since = Instant::now();
        self.state.status = ConnectionStatus::Connected;
        self.state.last_connected_at = Some(SystemTime::now());
        self.publish();
        self.emit(LifecycleEvent::Connected {
            duration: connect_duration,
            connection_index,
        });
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
                SessionEnd::Disconnected(reason)
            }
            stop => stop,
        };
        drop(ws);
        end
    }

    async fn run_session(&mut self, ws: &mut WsStream, info: &ConnectInfo) -> SessionEnd {
        let connect_result = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_connect(info, &mut ctx)
        };
        if let Err(e) = connect_result {
            if let Some(end) = self.on_error(Error::Handler(e), ErrorSource::Handler) {
                return end;
            }
        }
        if let Some(end) = self.apply_outbox(ws).await {
            return end;
        }
        let platform_interval = self.handler.configure(self.config.heartbeat_interval);
        let mut platform_heartbeat = platform_interval.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });

        // Whatever was taken but not written on the last connection goes first.
        if !self.carry.is_empty() {
            if let Some(end) = self.write_carry(ws).await {
                return end;
            }
        }

        let ping_every = self.config.heartbeat_interval;
        let mut last_rx = Instant::now();
        let mut awaiting_pong: Option<Instant> = None;
        let far = Instant::now() + std::time::Duration::from_secs(86_400 * 365);
        let ping_timer = tokio::time::sleep_until(ping_every.map_or(far, |d| last_rx + d));
        tokio::pin!(ping_timer);
        let mut peer_close: Option<Option<CloseFrame>> = None;
        let mut data_open = true;

        loop {
            tokio::select! {
                biased;
                control = self.control_rx.recv() => {
                    let (code, reason) = match control {
                        Some(Control::Close { code, reason, done }) => {
                            self.close_waiters.push(done);
                            (code, reason)
                        }
                        None => (1000, "client dropped".to_owned()),
                    };
                    let stop = if reason == "client dropped" && self.close_waiters.is_empty() {
                        StopReason::HandlesDropped
                    } else {
                        StopReason::Closed { code }
                    };
                    self.close_gracefully(ws, code, reason).await;
                    return SessionEnd::Stop(stop);
                }
                frame = ws.next() => match frame {
                    Some(Ok(m)) => {
                        last_rx = Instant::now();
                        let Some(frame) = Frame::from_ws(m) else { continue };
                        if let Frame::Close(c) = &frame {
                            peer_close = Some(c.clone());
                        }
                        if let Some(end) = self.on_frame(frame, ws).await {
                            return end;
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
                            tracing::warn!(
                                idle_ms = millis(now.duration_since(last_rx)),
                                "no answer to ping before the deadline"
                            );
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
                    if let Some(beat) = self.handler.generate_heartbeat() {
                        if let Err(e) = ws.send(beat.into_ws()).await {
                            return self.on_io_error(ws, e, ErrorSource::Write, peer_close).await;
                        }
                    }
                }
                message = self.data_rx.recv(), if data_open && peer_close.is_none() => match message {
                    Some(message) => {
                        self.carry.push_back(message);
                        while self.carry.len() < WRITE_BATCH {
                            match self.data_rx.try_recv() {
                                Ok(m) => self.carry.push_back(m),
                                Err(_) => break,
                            }
                        }
                        if let Some(end) = self.write_carry(ws).await {
                            return end;
                        }
                    }
                    None => data_open = false,
                },
            }
        }
    }

    /// Writes every carried message, removing each once tungstenite has taken it, then flushes.
    async fn write_carry(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        while let Some(message) = self.carry.front().cloned() {
            let encoded = match self.handler.encode_message(message) {
                Ok(m) => m,
                Err(e) => {
                    self.carry.pop_front();
                    if let Some(end) = self.on_error(Error::Handler(e), ErrorSource::Write) {
                        return Some(end);
                    }
                    continue;
                }
            };
            if let Err(e) = ws.feed(encoded.into_ws()).await {
                return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
            }
            self.carry.pop_front();
        }
        if let Err(e) = ws.flush().await {
            return Some(self.on_io_error(ws, e, ErrorSource::Write, None).await);
        }
        None
    }

    async fn on_frame(&mut self, frame: Frame, ws: &mut WsStream) -> Option<SessionEnd> {
        let action = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_frame(&frame, &mut ctx)
        };
        if action == FrameAction::Continue {
            if let Some(message) = frame.into_message() {
                if let Some(end) = self.on_message(message) {
                    return Some(end);
                }
            }
        }
        self.apply_outbox(ws).await
    }

    fn on_message(&mut self, message: Message) -> Option<SessionEnd> {
        if let Err(e) = self.handler.validate_message(&message) {
            return self.on_error(Error::Handler(e), ErrorSource::Validation);
        }
        let kind = self.handler.message_type(&message);
        let result = {
            let mut ctx = Context::new(&self.state, &self.config, &mut self.out);
            match kind {
                MessageType::Heartbeat => self.handler.handle_heartbeat(&message, &mut ctx),
                _ => self.handler.handle_message(message, &mut ctx),
            }
        };
        match result {
            Ok(()) => None,
            Err(e) => self.on_error(Error::Handler(e), ErrorSource::Handler),
        }
    }

    /// Performs what callbacks queued: frames out, messages to the application, reconnects.
    async fn apply_outbox(&mut self, ws: &mut WsStream) -> Option<SessionEnd> {
        if self.out.is_empty() {
            return None;
        }
        if !self.out.frames.is_empty() {
            let mut frames = std::mem::take(&mut self.out.frames);
            for frame in frames.drain(..) {
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
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ws.close(Some(frame)))
                .await;
        }
        match self.on_error(error, source) {
            Some(SessionEnd::Stop(stop)) => SessionEnd::Stop(stop),
            _ => SessionEnd::Disconnected(reason),
        }
    }

    /// Logs an error, asks the handler, and returns how the session ends, if it does.
    fn on_error(&mut self, error: Error, source: ErrorSource) -> Option<SessionEnd> {
        self.log(&error, source);
        self.emit(LifecycleEvent::Error {
            kind: error.kind(),
            source: source.as_str(),
            message: error.to_string(),
        });
        let context = self.error_context(source);
        let action = {
            let ctx = Context::new(&self.state, &self.config, &mut self.out);
            self.handler.handle_error(&error, &context, &ctx)
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
        while let Ok(m) = self.data_rx.try_recv() {
            self.carry.push_back(m);
        }
        if !self.carry.is_empty() && self.write_carry(ws).await.is_some() {
            return;
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

    fn publish(&self) {
        self.state_tx.send_replace(self.state.clone());
    }

    fn emit(&self, event: LifecycleEvent) {
        let _ = self.events.send(event);
    }
}

/// Serves control commands while no connection is open; returns when the client must stop.
async fn wait_control_while_down(
    control: &mut mpsc::Receiver<Control>,
    close_waiters: &mut Vec<oneshot::Sender<()>>,
) -> StopReason {
    match control.recv().await {
        Some(Control::Close { code, done, .. }) => {
            close_waiters.push(done);
            StopReason::Closed { code }
        }
        None => StopReason::HandlesDropped,
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

fn drain_count(rx: &mut mpsc::Receiver<Message>) -> usize {
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
