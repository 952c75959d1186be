//! The bounded queue between the connection task and one consumer (`Messages`, or one
//! subscription stream), moved in batches.
//!
//! The connection task handles the frames of one read burst (up to 64) before it delivers
//! anything; it then hands all of one queue's items over under one lock and wakes the consumer
//! once. The consumer takes up to [`RECV_BATCH`] items under one lock (the whole queue, by
//! swapping buffers, when that is all there is) and yields them from its own buffer without
//! touching shared memory again. On two cores this replaces the per-message atomic operations
//! of a channel (a permit, a slot's ready bit, the tail, the waker: each a cache line that
//! moves between the cores) with two lock acquisitions per burst, one on each side.
//!
//! The bound is in items, not in batches: at most `capacity` items wait in the queue, plus at
//! most [`RECV_BATCH`] already taken by the consumer and not yet yielded. When the queue is
//! full:
//! - [`OverflowPolicy::Wait`](crate::OverflowPolicy::Wait): the connection task waits until a
//!   quarter of the queue is free (one wake per batch taken, not per item), so it stops reading
//!   the socket and TCP flow control slows the server down. Nothing is lost.
//! - [`OverflowPolicy::DropOldest`](crate::OverflowPolicy::DropOldest): the oldest waiting items
//!   are dropped and counted; the consumer is told how many (in band, before the next item it
//!   takes from the queue).
//!
//! Nothing is coalesced by time: a batch is exactly what one read burst produced, handed over as
//! soon as the burst has been handled, so a lone message waits for nothing.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Items the consumer takes from the queue at once: one lock, and at most one wake of a
/// waiting connection task, per batch instead of per item.
pub(crate) const RECV_BATCH: usize = 64;

/// A consumer's buffer larger than this many items is given back when the queue goes quiet;
/// smaller ones are kept for the next burst (no allocation per burst).
const KEEP_IDLE: usize = RECV_BATCH;

/// What happens when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The producer waits for room.
    Wait,
    /// The oldest waiting items are dropped and counted.
    DropOldest,
}

struct State<T> {
    items: VecDeque<T>,
    /// Items dropped under `DropOldest` since the consumer last took from the queue.
    lost: u64,
    /// The consumer, when it waits for items.
    rx_waker: Option<Waker>,
    /// The producer, when it waits for room.
    tx_waker: Option<Waker>,
    /// The producer is gone: the consumer ends once the queue is empty.
    tx_dropped: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    full: Full,
    /// The consumer is gone: deliveries are refused.
    rx_dropped: AtomicBool,
}

impl<T> Shared<T> {
    /// The state, even if a thread panicked while holding the lock (the queue's own code never
    /// panics there, and its state is consistent between statements).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Room the producer waits for: a quarter of the queue.
    fn resume_at(&self) -> usize {
        (self.capacity / 4).max(1)
    }
}

/// A bounded batch queue of `capacity` items (at least one).
pub(crate) fn batch_queue<T>(full: Full, capacity: usize) -> (BatchSender<T>, BatchReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            lost: 0,
            rx_waker: None,
            tx_waker: None,
            tx_dropped: false,
        }),
        capacity: capacity.max(1),
        full,
        rx_dropped: AtomicBool::new(false),
    });
    (
        BatchSender {
            shared: Arc::clone(&shared),
        },
        BatchReceiver {
            shared,
            local: VecDeque::new(),
        },
    )
}

/// The connection task's end.
pub(crate) struct BatchSender<T> {
    shared: Arc<Shared<T>>,
}

/// What [`BatchSender::try_push`] could do.
enum Pushed {
    /// Everything was queued.
    All,
    /// The queue is full; what remains in the batch waits for room.
    Full,
    /// The consumer is gone.
    Closed,
}

impl<T> BatchSender<T> {
    /// Whether the consumer is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.rx_dropped.load(Ordering::Relaxed)
    }

    /// Moves every item of `batch` into the queue, in order, and wakes the consumer once.
    /// Waits for room when the queue is full under `Wait`. `batch` is empty afterwards.
    /// Returns `false` once the consumer is gone (the items are dropped).
    pub(crate) async fn send_all(&self, batch: &mut Vec<T>) -> bool {
        match self.try_push(batch) {
            Pushed::All => true,
            Pushed::Closed => false,
            // Boxed: waiting is rare, and its future would otherwise size the connection task's
            // future (and so every idle connection) for good.
            Pushed::Full => Box::pin(self.wait_and_push(batch)).await,
        }
    }

    /// Queues what fits without waiting (everything under `DropOldest`), and wakes the
    /// consumer if it waits.
    fn try_push(&self, batch: &mut Vec<T>) -> Pushed {
        if batch.is_empty() {
            return Pushed::All;
        }
        let shared = &*self.shared;
        let mut state = shared.lock();
        if shared.rx_dropped.load(Ordering::Relaxed) {
            drop(state);
            batch.clear();
            return Pushed::Closed;
        }
        match shared.full {
            Full::DropOldest => {
                state.items.extend(batch.drain(..));
                let over = state.items.len().saturating_sub(shared.capacity);
                if over > 0 {
                    state.items.drain(..over);
                    state.lost += over as u64;
                }
            }
            Full::Wait => {
                let room = shared.capacity.saturating_sub(state.items.len());
                if room >= batch.len() {
                    state.items.extend(batch.drain(..));
                } else if room > 0 {
                    state.items.extend(batch.drain(..room));
                }
            }
        }
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        if batch.is_empty() {
            Pushed::All
        } else {
            Pushed::Full
        }
    }

    /// Under `Wait` with a full queue: waits for a quarter of the queue to be free (the
    /// consumer wakes the producer once per batch it takes), then queues more, until the
    /// batch is in.
    async fn wait_and_push(&self, batch: &mut Vec<T>) -> bool {
        loop {
            let shared = &*self.shared;
            poll_fn(|cx: &mut Context<'_>| {
                let mut state = shared.lock();
                let room = shared.capacity.saturating_sub(state.items.len());
                if shared.rx_dropped.load(Ordering::Relaxed) || room >= shared.resume_at() {
                    return Poll::Ready(());
                }
                register(&mut state.tx_waker, cx.waker());
                Poll::Pending
            })
            .await;
            match self.try_push(batch) {
                Pushed::All => return true,
                Pushed::Closed => return false,
                Pushed::Full => {}
            }
        }
    }
}

impl<T> Drop for BatchSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.tx_dropped = true;
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What the consumer gets.
pub(crate) enum Taken<T> {
    /// The next item.
    Item(T),
    /// This many items were dropped (`DropOldest`) before the items that follow.
    Lost(u64),
}

/// The consumer's end.
pub(crate) struct BatchReceiver<T> {
    shared: Arc<Shared<T>>,
    /// Items taken from the queue and not yet yielded, oldest first.
    local: VecDeque<T>,
}

impl<T> BatchReceiver<T> {
    /// The next item (or loss report); `None` once the producer is gone and everything has
    /// been yielded.
    pub(crate) fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Option<Taken<T>>> {
        if let Some(item) = self.local.pop_front() {
            return Poll::Ready(Some(Taken::Item(item)));
        }
        let shared = &*self.shared;
        let mut state = shared.lock();
        if state.lost > 0 {
            let lost = std::mem::take(&mut state.lost);
            return Poll::Ready(Some(Taken::Lost(lost)));
        }
        if state.items.is_empty() {
            if state.tx_dropped {
                return Poll::Ready(None);
            }
            register(&mut state.rx_waker, cx.waker());
            drop(state);
            // Nothing queued: a quiet queue holds no large buffer.
            if self.local.capacity() > KEEP_IDLE {
                self.local = VecDeque::new();
            }
            return Poll::Pending;
        }
        if state.items.len() <= RECV_BATCH {
            // All of it: swap buffers (the producer gets this side's empty one back).
            std::mem::swap(&mut self.local, &mut state.items);
            if state.items.capacity() > KEEP_IDLE {
                state.items = VecDeque::new();
            }
        } else {
            self.local.extend(state.items.drain(..RECV_BATCH));
        }
        let producer = match &state.tx_waker {
            Some(_) if shared.capacity - state.items.len() >= shared.resume_at() => {
                state.tx_waker.take()
            }
            _ => None,
        };
        drop(state);
        if let Some(waker) = producer {
            waker.wake();
        }
        Poll::Ready(self.local.pop_front().map(Taken::Item))
    }
}

impl<T> Drop for BatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.rx_dropped.store(true, Ordering::Relaxed);
        let mut state = self.shared.lock();
        let items = std::mem::take(&mut state.items);
        let waker = state.tx_waker.take();
        drop(state);
        drop(items);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Stores `waker` in `slot` unless the one there already wakes the same task.
fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(current) if current.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::task::Poll;

    use super::*;

    fn take_all<T>(rx: &mut BatchReceiver<T>) -> Vec<Result<T, u64>> {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(taken)) = rx.poll_take(&mut cx) {
            out.push(match taken {
                Taken::Item(item) => Ok(item),
                Taken::Lost(n) => Err(n),
            });
        }
        out
    }

    #[tokio::test]
    async fn batches_keep_order_and_the_bound_is_in_items() {
        let (tx, mut rx) = batch_queue(Full::Wait, 8);
        let mut batch: Vec<u32> = (0..5).collect();
        assert!(tx.send_all(&mut batch).await);
        assert!(batch.is_empty());
        let mut batch: Vec<u32> = (5..8).collect();
        assert!(tx.send_all(&mut batch).await);
        // Full: the ninth item waits until a quarter of the queue is free.
        let mut batch = vec![8, 9];
        let send = tokio::spawn(async move {
            let ok = tx.send_all(&mut batch).await;
            (ok, tx)
        });
        tokio::task::yield_now().await;
        assert!(!send.is_finished());
        let got = take_all(&mut rx);
        assert_eq!(got, (0..8).map(Ok).collect::<Vec<_>>());
        let (ok, tx) = send.await.unwrap();
        assert!(ok);
        drop(tx);
        assert_eq!(take_all(&mut rx), vec![Ok(8), Ok(9)]);
    }

    #[tokio::test]
    async fn drop_oldest_reports_the_loss_before_the_next_item() {
        let (tx, mut rx) = batch_queue(Full::DropOldest, 4);
        let mut batch: Vec<u32> = (0..10).collect();
        assert!(tx.send_all(&mut batch).await);
        drop(tx);
        assert_eq!(take_all(&mut rx), vec![Err(6), Ok(6), Ok(7), Ok(8), Ok(9)]);
    }

    #[tokio::test]
    async fn a_dropped_consumer_refuses_and_releases_a_waiting_producer() {
        let (tx, rx) = batch_queue(Full::Wait, 2);
        let mut batch = vec![1, 2, 3];
        let send = tokio::spawn(async move { tx.send_all(&mut batch).await });
        tokio::task::yield_now().await;
        drop(rx);
        assert!(!send.await.unwrap());
    }
}
