//! The bounded inbound queue between the connection task and the application, with its
//! overflow policy.
//!
//! - [`OverflowPolicy::Wait`]: when the queue is full the connection task waits, stops reading
//!   the socket, and TCP flow control slows the server down. Nothing is lost.
//! - [`OverflowPolicy::DropOldest`]: when it is full the oldest messages are dropped; the
//!   receiver then yields [`Lagged`] with the number lost before the next message, so the
//!   application always knows.
//!
//! The queue itself (queue.rs) moves messages in batches, one per read burst, bounded in
//! messages.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;

use super::queue::{BatchReceiver, BatchSender, Full, Taken, batch_queue};
use crate::config::OverflowPolicy;
use crate::message::Message;

/// Messages were dropped by the [`DropOldest`](OverflowPolicy::DropOldest) policy because the
/// application read too slowly; the count is how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} inbound messages dropped: the consumer is too slow (overflow policy drop_oldest)")]
pub struct Lagged(pub u64);

/// The connection task's end of a bounded queue to the application (queue.rs: items move in
/// batches, one per read burst).
pub(crate) struct QueueSender<T> {
    inner: BatchSender<T>,
}

impl<T> QueueSender<T> {
    /// Hands every item of `batch` to the application, in order, and empties `batch`. Waits
    /// for room under `Wait`. Returns `false` once the application has dropped its receiver.
    pub(crate) async fn deliver_all(&self, batch: &mut Vec<T>) -> bool {
        self.inner.send_all(batch).await
    }

    /// Whether the application dropped its receiver.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// The inbound queue of data messages.
pub(crate) type InboundSender = QueueSender<Message>;

/// The application's end of a bounded queue, whatever its policy.
pub(crate) struct QueueReceiver<T> {
    inner: BatchReceiver<T>,
    dropped: Arc<AtomicU64>,
    drop_counter: Option<metrics::Counter>,
}

pub(crate) fn queue<T>(
    policy: OverflowPolicy,
    capacity: usize,
) -> (QueueSender<T>, QueueReceiver<T>) {
    let full = match policy {
        OverflowPolicy::Wait => Full::Wait,
        OverflowPolicy::DropOldest => Full::DropOldest,
    };
    let (tx, rx) = batch_queue(full, capacity);
    (
        QueueSender { inner: tx },
        QueueReceiver {
            inner: rx,
            dropped: Arc::new(AtomicU64::new(0)),
            drop_counter: None,
        },
    )
}

impl<T> QueueReceiver<T> {
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl<T: Unpin> Stream for QueueReceiver<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.poll_take(cx) {
            Poll::Ready(Some(Taken::Item(item))) => Poll::Ready(Some(Ok(item))),
            Poll::Ready(Some(Taken::Lost(n))) => {
                this.dropped.fetch_add(n, Ordering::Relaxed);
                if let Some(counter) = &this.drop_counter {
                    counter.increment(n);
                }
                tracing::warn!(dropped = n, "queue overflow: oldest items dropped");
                Poll::Ready(Some(Err(Lagged(n))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
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
