//! The bounded inbound queue between the connection task and the application, with its
//! overflow policy.
//!
//! - [`OverflowPolicy::Wait`]: a bounded `mpsc` channel. When it is full the connection task
//!   waits, stops reading the socket, and TCP flow control slows the server down. Nothing is lost.
//! - [`OverflowPolicy::DropOldest`]: a bounded ring (tokio's `broadcast` with one receiver). When
//!   it is full the oldest message is overwritten; the receiver then yields [`Lagged`] with the
//!   number lost before the next message, so the application always knows.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::config::OverflowPolicy;
use crate::message::Message;

/// Messages were dropped by the [`DropOldest`](OverflowPolicy::DropOldest) policy because the
/// application read too slowly; the count is how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} inbound messages dropped: the consumer is too slow (overflow policy drop_oldest)")]
pub struct Lagged(pub u64);

/// The connection task's end of a bounded queue to the application.
pub(crate) enum QueueSender<T> {
    Wait(mpsc::Sender<T>),
    DropOldest(broadcast::Sender<T>),
}

impl<T: Clone + Send + 'static> QueueSender<T> {
    /// Hands an item to the application. Waits for room under `Wait`. Returns `false` once the
    /// application has dropped its receiver.
    pub(crate) async fn deliver(&self, item: T) -> bool {
        match self {
            // `try_send` first: when there is room (the common case) it takes a permit without
            // building and polling a waiting `send` future.
            Self::Wait(tx) => match tx.try_send(item) {
                Ok(()) => true,
                // Boxed: the wait is rare, and its futures would otherwise size the connection
                // task's future (and so every idle connection) for good.
                Err(mpsc::error::TrySendError::Full(item)) => {
                    Box::pin(wait_and_send(tx, item)).await
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
            Self::DropOldest(tx) => tx.send(item).is_ok(),
        }
    }

    /// Whether the application dropped its receiver.
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Self::Wait(tx) => tx.is_closed(),
            Self::DropOldest(tx) => tx.receiver_count() == 0,
        }
    }
}

/// The queue is full: wait until a quarter of it is free rather than for one slot, so that a
/// consumer slower than the socket wakes the connection task once per batch instead of once per
/// message it takes; then send. `false` once the application dropped its receiver.
async fn wait_and_send<T>(tx: &mpsc::Sender<T>, item: T) -> bool {
    let batch = (tx.max_capacity() / 4).max(1);
    match tx.reserve_many(batch).await {
        Ok(permits) => drop(permits),
        Err(_) => return false,
    }
    tx.send(item).await.is_ok()
}

/// The inbound queue of data messages.
pub(crate) type InboundSender = QueueSender<Message>;

/// The application's end of a bounded queue, whatever its policy.
pub(crate) struct QueueReceiver<T> {
    inner: Inner<T>,
    dropped: Arc<AtomicU64>,
    drop_counter: Option<metrics::Counter>,
}

/// Items taken from the channel at once by the receiver: one waker registration, one
/// cooperative-budget check and one release of queue slots per batch instead of per item.
const RECV_BATCH: usize = 64;

enum Inner<T> {
    /// The channel, and items already taken from it, in reverse order (popped from the end).
    Wait(mpsc::Receiver<T>, Vec<T>),
    DropOldest(BroadcastStream<T>),
}

pub(crate) fn queue<T: Clone + Send + 'static>(
    policy: OverflowPolicy,
    capacity: usize,
) -> (QueueSender<T>, QueueReceiver<T>) {
    let dropped = Arc::new(AtomicU64::new(0));
    match policy {
        OverflowPolicy::Wait => {
            let (tx, rx) = mpsc::channel(capacity);
            let inner = Inner::Wait(rx, Vec::new());
            (
                QueueSender::Wait(tx),
                QueueReceiver {
                    inner,
                    dropped,
                    drop_counter: None,
                },
            )
        }
        OverflowPolicy::DropOldest => {
            let (tx, rx) = broadcast::channel(capacity);
            let inner = Inner::DropOldest(BroadcastStream::new(rx));
            (
                QueueSender::DropOldest(tx),
                QueueReceiver {
                    inner,
                    dropped,
                    drop_counter: None,
                },
            )
        }
    }
}

impl<T> QueueReceiver<T> {
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl<T: Clone + Send + Unpin + 'static> Stream for QueueReceiver<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::Wait(rx, batch) => {
                if let Some(item) = batch.pop() {
                    return Poll::Ready(Some(Ok(item)));
                }
                match rx.poll_recv_many(cx, batch, RECV_BATCH) {
                    Poll::Ready(0) => Poll::Ready(None),
                    Poll::Ready(_) => {
                        batch.reverse();
                        Poll::Ready(batch.pop().map(Ok))
                    }
                    Poll::Pending => {
                        // Nothing queued: give the batch's memory back (a quiet queue holds none).
                        *batch = Vec::new();
                        Poll::Pending
                    }
                }
            }
            Inner::DropOldest(rx) => match Pin::new(rx).poll_next(cx) {
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    this.dropped.fetch_add(n, Ordering::Relaxed);
                    if let Some(counter) = &this.drop_counter {
                        counter.increment(n);
                    }
                    tracing::warn!(dropped = n, "queue overflow: oldest items dropped");
                    Poll::Ready(Some(Err(Lagged(n))))
                }
                Poll::Ready(Some(Ok(m))) => Poll::Ready(Some(Ok(m))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The application's end of the inbound queue: every message the handler delivers, in order.
///
/// It is a [`Stream`] of `Result<Message, Lagged>`; `Err(Lagged(n))` appears only under the
/// `DropOldest` policy, right before the first message after a loss. The stream ends when the
/// client has stopped and every queued message has been read.
pub struct Messages {
    inner: QueueReceiver<Message>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

pub(crate) fn channel(policy: OverflowPolicy, capacity: usize) -> (InboundSender, Messages) {
    let (tx, rx) = queue(policy, capacity);
    (tx, Messages { inner: rx })
}

impl Messages {
    pub(crate) fn with_drop_counter(mut self, counter: metrics::Counter) -> Self {
        self.inner.drop_counter = Some(counter);
        self
    }

    /// The next message, `Err(Lagged)` after a loss under `DropOldest`, or `None` once the client
    /// has stopped and the queue is empty.
    pub async fn recv(&mut self) -> Option<Result<Message, Lagged>> {
        futures_util::StreamExt::next(self).await
    }

    /// Total messages dropped by the overflow policy so far (as seen by this receiver).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

impl Stream for Messages {
    type Item = Result<Message, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
