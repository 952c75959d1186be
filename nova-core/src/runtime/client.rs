//! The client handle: the application's side of a connection task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::driver::{Control, Driver};
use super::events::LifecycleEvent;
use super::inbound::{self, Messages};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::handler::Handler;
use crate::message::Message;
use crate::types::{ConnectionState, StopReason};

/// Capacity of the lifecycle event ring; slower event readers see `Lagged` and skip ahead.
const EVENT_CAPACITY: usize = 256;

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
    data: mpsc::Sender<Message>,
    control: mpsc::Sender<Control>,
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
        let (data_tx, data_rx) = mpsc::channel(config.send_buffer());
        let (control_tx, control_rx) = mpsc::channel(8);
        let (state_tx, state_rx) = watch::channel(ConnectionState::default());
        let (events_tx, first_events) = broadcast::channel(EVENT_CAPACITY);
        let (inbound_tx, messages) = inbound::channel(config.overflow(), config.inbound_buffer());
        let client = Client {
            inner: Arc::new(Shared {
                name: config.name().to_owned(),
                send_buffer: config.send_buffer(),
                data: data_tx,
                control: control_tx,
                state: state_rx,
                events: events_tx.clone(),
                first_events: Mutex::new(Some(first_events)),
            }),
        };
        let driver = Driver::new(
            config, handler, data_rx, control_rx, state_tx, events_tx, inbound_tx,
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
    /// When connected and the buffer is momentarily full, this waits for room.
    ///
    /// # Errors
    /// [`Error::SendBufferFull`] when disconnected with a full buffer; [`Error::Stopped`] once the
    /// client has stopped.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        match self.inner.data.try_send(message.into()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(message)) => {
                if self.inner.state.borrow().status.is_open() {
                    self.inner
                        .data
                        .send(message)
                        .await
                        .map_err(|_| self.stopped_error())
                } else {
                    Err(Error::SendBufferFull {
                        capacity: self.inner.send_buffer,
                    })
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.stopped_error()),
        }
    }

    /// Sends a message without waiting.
    ///
    /// # Errors
    /// [`Error::SendBufferFull`] whenever the buffer is full; [`Error::Stopped`] once stopped.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.inner
            .data
            .try_send(message.into())
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::SendBufferFull {
                    capacity: self.inner.send_buffer,
                },
                mpsc::error::TrySendError::Closed(_) => self.stopped_error(),
            })
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
            .send(cmd)
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
    /// last 256); later calls get events from now on. A reader that falls more than 256 events
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
