//! The client handle: the application's side of a connection task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use tokio::time::Instant;

use super::commands::{Control, Outgoing, Services, SubscribeCommand};
use super::driver::Driver;
use super::events::LifecycleEvent;
use super::inbound::{self, Messages};
use super::subscriptions::{InMemoryRegistry, SubscriptionRegistry, SubscriptionStream};
use crate::config::{ClientConfig, OverflowPolicy};
use crate::error::Error;
use crate::handler::{Handler, Operation};
use crate::message::Message;
use crate::rate_limit::{RateLimiter, TokenBucket};
use crate::request::Request;
use crate::types::{ConnectionState, StopReason};

/// Capacity of the lifecycle event ring; slower event readers see `Lagged` and skip ahead.
/// Lifecycle events are rare (a few per connect); tokio allocates the whole ring up front, and
/// at 256 slots it was the largest allocation of an idle client after the read buffer (20 KiB);
/// 16 slots take 1.3 KiB.
const EVENT_CAPACITY: usize = 16;

/// A cloneable handle to one client connection.
///
/// [`Client::connect`] spawns one tokio task that owns the socket and the handler; every clone
/// of the handle talks to that task. When the last handle is dropped the task closes the
/// connection and ends.
///
/// # Delivery of sends
///
/// A message accepted by [`send`](Self::send) is written exactly once, on one connection, in the
/// order of acceptance. While the client is disconnected, accepted messages wait in a bounded
/// buffer (`send_buffer`) and are written after the next connect, once the handler's connect
/// work is done; when that buffer is full, `send` fails with [`Error::SendBufferFull`] and the
/// message is not taken. When a connection breaks, messages not yet written are carried over to
/// the next connection. A message already written to a socket that then breaks abruptly may or
/// may not have reached the peer — WebSocket has no acknowledgements — and is not sent again
/// (no duplicates); a peer that closes with a close handshake receives everything written before.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    name: String,
    send_buffer: usize,
    request_timeout: Duration,
    overflow: OverflowPolicy,
    inbound_buffer: usize,
    next_subscription: std::sync::atomic::AtomicU64,
    rate_limited_until: Arc<Mutex<Option<Instant>>>,
    /// One token's refill time, when a rate limit is configured.
    rate_token_time: Option<Duration>,
    data: mpsc::Sender<Box<Outgoing>>,
    control: mpsc::Sender<Box<Control>>,
    state: watch::Receiver<ConnectionState>,
    events: broadcast::Sender<LifecycleEvent>,
    first_events: Mutex<Option<broadcast::Receiver<LifecycleEvent>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.name)
            .field("status", &self.inner.state.borrow().status)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Spawns the connection task for `handler` and returns the handle and the inbound messages.
    ///
    /// Connecting happens in the background; follow it with [`state`](Self::state) or
    /// [`events`](Self::events), or wait with [`wait_connected`](Self::wait_connected).
    ///
    /// # Panics
    /// When called outside a tokio runtime (like `tokio::spawn`).
    pub fn connect<H: Handler>(config: ClientConfig, handler: H) -> (Client, Messages) {
        Self::connect_with(config, handler, Box::new(InMemoryRegistry::default()), None)
    }

    /// Like [`connect`](Self::connect), with the subscription registry and the rate limiter
    /// supplied (a cluster backend shares them between processes). `limiter: None` uses a
    /// token bucket built from the configuration's [`RateLimit`](crate::RateLimit), if any.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn connect_with<H: Handler>(
        config: ClientConfig,
        handler: H,
        registry: Box<dyn SubscriptionRegistry>,
        limiter: Option<Box<dyn RateLimiter>>,
    ) -> (Client, Messages) {
        let (data_tx, data_rx) = mpsc::channel(config.send_buffer());
        let (control_tx, control_rx) = mpsc::channel(64);
        let (state_tx, state_rx) = watch::channel(ConnectionState::default());
        let (events_tx, first_events) = broadcast::channel(EVENT_CAPACITY);
        let (inbound_tx, messages) = inbound::channel(config.overflow(), config.inbound_buffer());
        let limiter = limiter.or_else(|| {
            config.rate_limit().map(|limit| {
                Box::new(TokenBucket::new(limit.clone(), Instant::now())) as Box<dyn RateLimiter>
            })
        });
        let rate_limited_until = Arc::new(Mutex::new(None));
        let client = Client {
            inner: Arc::new(Shared {
                name: config.name().to_owned(),
                send_buffer: config.send_buffer(),
                request_timeout: config.request_timeout(),
                overflow: config.overflow(),
                inbound_buffer: config.inbound_buffer(),
                next_subscription: std::sync::atomic::AtomicU64::new(1),
                rate_limited_until: rate_limited_until.clone(),
                rate_token_time: config
                    .rate_limit()
                    .filter(|l| l.refill_per_second() > 0.0)
                    .map(|l| Duration::from_secs_f64(1.0 / l.refill_per_second())),
                data: data_tx,
                control: control_tx,
                state: state_rx,
                events: events_tx.clone(),
                first_events: Mutex::new(Some(first_events)),
            }),
        };
        let services = Services {
            registry,
            limiter,
            rate_limited_until,
        };
        let telemetry =
            crate::telemetry::Telemetry::new(config.name(), crate::telemetry::enabled());
        let messages = messages.with_drop_counter(telemetry.dropped_counter());
        let driver = Driver::new(
            config, handler, data_rx, control_rx, state_tx, events_tx, inbound_tx, services,
            telemetry,
        );
        tokio::spawn(driver.run());
        (client, messages)
    }

    /// The client's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sends a message: written now when connected, buffered while disconnected.
    ///
    /// When connected and the buffer is momentarily full, this waits for room — unless a rate
    /// limit is configured, whose queue is the buffer: then a full buffer is an error.
    ///
    /// # Errors
    /// [`Error::SendBufferFull`] when disconnected with a full buffer;
    /// [`Error::RateLimited`] (with `retry_after`) when connected with a full buffer under a rate
    /// limit; [`Error::Stopped`] once the client has stopped.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.enqueue(Outgoing::Message(message.into(), Operation::Other))
            .await
    }

    /// Sends a message counted as `operation` by the rate limiter (an order, a query, ...).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_as(
        &self,
        message: impl Into<Message>,
        operation: Operation,
    ) -> Result<(), Error> {
        self.enqueue(Outgoing::Message(message.into(), operation))
            .await
    }

    /// Sends a message without waiting.
    ///
    /// # Errors
    /// [`Error::SendBufferFull`] whenever the buffer is full; [`Error::Stopped`] once stopped.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Error> {
        let outgoing = Outgoing::Message(message.into(), Operation::Other);
        self.inner
            .data
            .try_send(Box::new(outgoing))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => self.full_error(),
                mpsc::error::TrySendError::Closed(_) => self.stopped_error(),
            })
    }

    /// Sends a request and waits for its response (see [`Request`] for the delivery contract).
    ///
    /// # Errors
    /// [`Error::Timeout`] without an answer in time; [`Error::Disconnected`] when the connection
    /// broke after the request was written (unless it is idempotent); otherwise as
    /// [`send`](Self::send).
    pub async fn request(&self, request: Request) -> Result<Message, Error> {
        let timeout = request.timeout.unwrap_or(self.inner.request_timeout);
        let deadline = Instant::now() + timeout;
        let (reply, response) = oneshot::channel();
        self.enqueue(Outgoing::Request {
            request,
            reply,
            deadline,
        })
        .await?;
        match tokio::time::timeout_at(deadline, response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.stopped_error()),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Subscribes to `channel` with adapter-specific `options`, and returns once the server's
    /// acknowledgement is verified. The stream survives reconnects (the subscription is restored
    /// after each); dropping it unsubscribes. While disconnected, this waits for the connection.
    ///
    /// # Errors
    /// [`Error::SubscriptionRefused`] when the server refuses or does not acknowledge in time;
    /// [`Error::Stopped`] once stopped.
    pub async fn subscribe(
        &self,
        channel: impl Into<String>,
        options: serde_json::Value,
    ) -> Result<SubscriptionStream, Error> {
        let channel = channel.into();
        let id = self
            .inner
            .next_subscription
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (events, rx) = inbound::queue(self.inner.overflow, self.inner.inbound_buffer);
        let (reply, ack) = oneshot::channel();
        let command = Control::Subscribe(SubscribeCommand {
            id,
            channel: channel.clone(),
            options,
            events,
            reply,
        });
        self.inner
            .control
            .send(Box::new(command))
            .await
            .map_err(|_| self.stopped_error())?;
        match ack.await {
            Ok(Ok(())) => Ok(SubscriptionStream {
                id,
                channel,
                rx,
                control: self.inner.control.clone(),
                unsubscribed: false,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.stopped_error()),
        }
    }

    /// Each item is boxed: the channel's first block (32 slots) is allocated with the client,
    /// and a slot the size of a pointer keeps that small for every idle connection.
    async fn enqueue(&self, outgoing: Outgoing) -> Result<(), Error> {
        match self.inner.data.try_send(Box::new(outgoing)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(outgoing)) => {
                let open = self.inner.state.borrow().status.is_open();
                // Under a rate limit a full queue is the limit's doing: answer `RateLimited`.
                if open && self.inner.rate_token_time.is_none() {
                    self.inner
                        .data
                        .send(outgoing)
                        .await
                        .map_err(|_| self.stopped_error())
                } else {
                    Err(self.full_error())
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.stopped_error()),
        }
    }

    /// How long the rate limiter holds sends back, if it does.
    fn rate_limited_for(&self) -> Option<Duration> {
        let until = (*self.inner.rate_limited_until.lock().ok()?)?;
        until.checked_duration_since(Instant::now())
    }

    fn full_error(&self) -> Error {
        let open = self.inner.state.borrow().status.is_open();
        match (self.rate_limited_for(), self.inner.rate_token_time) {
            (Some(retry_after), _) => Error::RateLimited { retry_after },
            (None, Some(token)) if open => Error::RateLimited { retry_after: token },
            _ => Error::SendBufferFull {
                capacity: self.inner.send_buffer,
            },
        }
    }

    /// Sends a text message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), Error> {
        self.send(Message::text(text.into())).await
    }

    /// Sends a binary message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_binary(&self, bytes: impl Into<bytes::Bytes>) -> Result<(), Error> {
        self.send(Message::binary(bytes)).await
    }

    /// Serializes `value` as JSON and sends it as a text message.
    ///
    /// # Errors
    /// [`Error::Handler`] when `value` cannot be serialized; otherwise as [`send`](Self::send).
    pub async fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let message = Message::json_of(value).map_err(crate::error::HandlerError::from)?;
        self.send(message).await
    }

    /// Closes the connection with a close handshake (`code`, `reason`) and stops the client.
    /// Messages already accepted are written first when connected. Returns once stopped.
    ///
    /// # Errors
    /// [`Error::Stopped`] when the client had already stopped.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        if self.inner.state.borrow().stopped.is_some() {
            return Err(self.stopped_error());
        }
        let (done_tx, done_rx) = oneshot::channel();
        let cmd = Control::Close {
            code,
            reason: reason.to_owned(),
            done: done_tx,
        };
        self.inner
            .control
            .send(Box::new(cmd))
            .await
            .map_err(|_| self.stopped_error())?;
        let _ = done_rx.await;
        Ok(())
    }

    /// A `watch` of the connection state.
    #[must_use]
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    /// The connection state now.
    #[must_use]
    pub fn current_state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// A stream of lifecycle events. The first call gets every event since `connect` (up to the
    /// last 16); later calls get events from now on. A reader that falls more than 16 events
    /// behind skips ahead (`RecvError::Lagged`).
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<LifecycleEvent> {
        let first = self
            .inner
            .first_events
            .lock()
            .ok()
            .and_then(|mut f| f.take());
        first.unwrap_or_else(|| self.inner.events.subscribe())
    }

    /// Waits until the connection is open (connected or authenticated).
    ///
    /// # Errors
    /// [`Error::Stopped`] when the client stops first; [`Error::Timeout`] after `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        let mut state = self.state();
        let wait = state.wait_for(|s| s.status.is_open() || s.stopped.is_some());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) if s.stopped.is_none() => Ok(()),
            Ok(_) => Err(self.stopped_error()),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Waits until the client has stopped, and returns why.
    pub async fn stopped(&self) -> StopReason {
        let mut state = self.state();
        let result = state
            .wait_for(|s| s.stopped.is_some())
            .await
            .map(|s| s.stopped.clone());
        match result {
            Ok(Some(reason)) => reason,
            _ => self
                .current_state()
                .stopped
                .unwrap_or(StopReason::HandlesDropped),
        }
    }

    fn stopped_error(&self) -> Error {
        let reason = self.inner.state.borrow().stopped.clone();
        Error::Stopped(reason.unwrap_or(StopReason::HandlesDropped))
    }
}
