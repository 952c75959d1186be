//! What a local consumer of a shared subscription receives: [`FeedStream`], a stream of
//! [`FeedEvent`]s, the same on every node whichever node owns the channel.
//!
//! Each consumer keeps its own position in the channel's sequence of feed entries — the owner's
//! fencing token and the entry's number under it — and from it:
//!
//! - **drops duplicates** (an entry number already delivered under the same token) and **stale
//!   entries** (a token below the one delivered: an old owner's late write, which the backend's
//!   fencing already refuses);
//! - **detects gaps**: a new token means a new owner, whose upstream subscription started afresh
//!   ([`GapReason::OwnerChanged`]); a number that skips means entries were lost on the way
//!   ([`GapReason::Lost`]: trimmed while this node was away, or a backend that restarted empty);
//!   the owner's own upstream gaps come through as [`GapReason::Upstream`];
//! - **closes them** the platform's way: a snapshot entry (a Deribit book's `snapshot`) closes a
//!   gap ([`FeedEvent::GapClosed`]); sequenced changes before it are useless and dropped; on a
//!   channel without snapshots (a ticker, trades) the gap cannot be closed and says so
//!   ([`FeedEvent::GapNotClosed`]) before delivery goes on.
//!
//! Each consumer's queue is bounded ([`DEFAULT_QUEUE`] events unless configured): when it is
//! full the oldest event is dropped and the consumer then gets [`FeedEvent::Lagged`] with the
//! count, as nova-core's `DropOldest` policy does. Nothing is dropped silently.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::Stream;
use nova_core::Message;
use tokio::sync::Notify;

use crate::backend::{EntryKind, EntrySequence, FeedEntry};

/// The default capacity of a consumer's queue.
pub const DEFAULT_QUEUE: usize = 4096;

/// One message delivered to a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The channel.
    pub channel: Arc<str>,
    /// The node that received it upstream.
    pub owner: Arc<str>,
    /// The owner's fencing token.
    pub token: u64,
    /// The message as the platform sent it.
    pub message: Message,
    /// Its sequence position, when the platform gives the channel one.
    pub sequence: Option<EntrySequence>,
}

/// Why delivery is not continuous.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GapReason {
    /// The channel changed owner (the old one died or let go); the new owner subscribed afresh.
    OwnerChanged {
        /// The previous owner, when this consumer knew it.
        from: Option<String>,
        /// The new owner.
        to: String,
    },
    /// The owner's upstream subscription had a gap; `action` is how it is being closed.
    Upstream {
        /// `resubscribe`, `backfill`, `report`, `resnapshot`.
        action: String,
    },
    /// Entries were lost between the owner and this node.
    Lost {
        /// How many.
        entries: u64,
    },
    /// This consumer joined after the channel's last snapshot was gone; a fresh one is asked for.
    Joined,
}

/// What a [`FeedStream`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedEvent {
    /// A message of the channel.
    Message(Delivery),
    /// This many events were dropped because the consumer's queue was full.
    Lagged(u64),
    /// Delivery is broken here.
    Gap(GapReason),
    /// The gap is closed: a snapshot at `value` starts continuous delivery again.
    GapClosed {
        /// The snapshot's sequence value.
        value: u64,
    },
    /// The gap cannot be closed (no snapshot on this channel): messages in it are lost.
    GapNotClosed {
        /// Why.
        reason: String,
    },
    /// The owner's upstream subscription was restored after a reconnect.
    UpstreamRestored,
    /// The owner's upstream subscription failed; it is retried.
    UpstreamFailed {
        /// Why.
        reason: String,
    },
}

/// What a consumer waits for before delivery is continuous again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awaiting {
    /// A snapshot (owner change, lost entries, joined late).
    Snapshot,
    /// The owner's upstream recovery.
    Upstream,
}

/// One consumer's position and gap state.
#[derive(Debug, Default)]
pub(crate) struct Position {
    token: Option<u64>,
    owner: Option<String>,
    n: u64,
    awaiting: Option<Awaiting>,
}

/// What accepting an entry produced.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    pub(crate) events: Vec<FeedEvent>,
    /// A fresh snapshot is needed from the owner.
    pub(crate) resnapshot: bool,
}

impl Position {
    /// A position waiting for a snapshot (a consumer that joined too late to catch up).
    pub(crate) fn joining() -> Self {
        Self {
            awaiting: Some(Awaiting::Snapshot),
            ..Self::default()
        }
    }

    /// Takes an entry: what to deliver, in order.
    pub(crate) fn accept(&mut self, channel: &Arc<str>, entry: &FeedEntry) -> Accepted {
        let mut out = Accepted::default();
        if let Some(token) = self.token {
            if entry.token < token || (entry.token == token && entry.n <= self.n) {
                return out;
            }
            if entry.token > token {
                out.events.push(FeedEvent::Gap(GapReason::OwnerChanged {
                    from: self.owner.clone(),
                    to: entry.owner.clone(),
                }));
                self.awaiting = Some(Awaiting::Snapshot);
            } else if entry.n > self.n + 1 && self.awaiting.is_none() {
                out.events.push(FeedEvent::Gap(GapReason::Lost {
                    entries: entry.n - self.n - 1,
                }));
                self.awaiting = Some(Awaiting::Snapshot);
            }
        }
        self.token = Some(entry.token);
        self.n = entry.n;
        if self.owner.as_deref() != Some(entry.owner.as_str()) {
            self.owner = Some(entry.owner.clone());
        }
        match &entry.kind {
            EntryKind::Claimed => {}
            EntryKind::Data { binary, sequence } => {
                let delivery = || {
                    FeedEvent::Message(Delivery {
                        channel: channel.clone(),
                        owner: Arc::from(entry.owner.as_str()),
                        token: entry.token,
                        message: message_of(*binary, &entry.payload),
                        sequence: *sequence,
                    })
                };
                match (self.awaiting, sequence) {
                    (None, _) => out.events.push(delivery()),
                    (Some(_), Some(s)) if s.snapshot => {
                        self.awaiting = None;
                        out.events.push(FeedEvent::GapClosed { value: s.value });
                        out.events.push(delivery());
                    }
                    // A change that cannot be applied without the snapshot it follows.
                    (Some(Awaiting::Snapshot), Some(_)) => {
                        out.resnapshot = self.token.is_some();
                    }
                    (Some(Awaiting::Upstream), Some(_)) => {}
                    (Some(_), None) => {
                        self.awaiting = None;
                        out.events.push(FeedEvent::GapNotClosed {
                            reason: "the channel has no snapshots: messages in the gap are lost"
                                .to_owned(),
                        });
                        out.events.push(delivery());
                    }
                }
            }
            EntryKind::Gap { action } => {
                if self.awaiting.is_none() {
                    self.awaiting = Some(Awaiting::Upstream);
                    out.events.push(FeedEvent::Gap(GapReason::Upstream {
                        action: action.clone(),
                    }));
                }
            }
            EntryKind::GapClosed { value } => {
                if self.awaiting == Some(Awaiting::Upstream) {
                    self.awaiting = None;
                    out.events.push(FeedEvent::GapClosed { value: *value });
                }
            }
            EntryKind::GapNotClosed { reason } => {
                if self.awaiting == Some(Awaiting::Upstream) {
                    self.awaiting = None;
                    out.events.push(FeedEvent::GapNotClosed {
                        reason: reason.clone(),
                    });
                }
            }
            EntryKind::Restored => out.events.push(FeedEvent::UpstreamRestored),
            EntryKind::Failed { reason } => out.events.push(FeedEvent::UpstreamFailed {
                reason: reason.clone(),
            }),
        }
        out
    }
}

fn message_of(binary: bool, payload: &bytes::Bytes) -> Message {
    if binary {
        return Message::binary(payload.clone());
    }
    match std::str::from_utf8(payload) {
        Ok(text) => Message::text(text),
        // Written by an owner from a text message: valid UTF-8 unless the store was tampered
        // with; hand the bytes over rather than lose them.
        Err(_) => Message::binary(payload.clone()),
    }
}

/// A bounded queue that drops its oldest event when full and counts what it dropped.
#[derive(Debug)]
pub(crate) struct EventQueue {
    state: Mutex<QueueState>,
    notify: Notify,
    capacity: usize,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<FeedEvent>,
    lost: u64,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, event: FeedEvent) {
        let mut s = self.lock();
        if s.events.len() >= self.capacity {
            s.events.pop_front();
            s.lost += 1;
        }
        s.events.push_back(event);
        drop(s);
        self.notify.notify_one();
    }

    /// No more events: the receiver gets what is queued, then `None`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn try_pop(&self) -> Option<Option<FeedEvent>> {
        let mut s = self.lock();
        if s.lost > 0 {
            let lost = std::mem::take(&mut s.lost);
            return Some(Some(FeedEvent::Lagged(lost)));
        }
        if let Some(e) = s.events.pop_front() {
            return Some(Some(e));
        }
        if self.is_closed() {
            return Some(None);
        }
        None
    }

    async fn pop(&self) -> Option<FeedEvent> {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.notify.notified().await;
        }
    }
}

type Next = Pin<Box<dyn std::future::Future<Output = (Option<FeedEvent>, Arc<EventQueue>)> + Send>>;

/// A local consumer's stream of one shared channel. Dropping it ends the consumer; when a
/// node's last consumer of a channel goes, the node stops wanting it, and when no node wants it
/// the owner unsubscribes upstream.
pub struct FeedStream {
    channel: Arc<str>,
    queue: Arc<EventQueue>,
    next: Option<Next>,
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for FeedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedStream")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl FeedStream {
    pub(crate) fn new(
        channel: Arc<str>,
        queue: Arc<EventQueue>,
        on_drop: Box<dyn FnOnce() + Send>,
    ) -> Self {
        Self {
            channel,
            queue,
            next: None,
            on_drop: Some(on_drop),
        }
    }

    /// The channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next event, or `None` once the node has left the cluster.
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        futures_util::StreamExt::next(self).await
    }

    /// The next message, skipping the other events; `None` once the node has left.
    pub async fn next_message(&mut self) -> Option<Delivery> {
        loop {
            if let FeedEvent::Message(d) = self.recv().await? {
                return Some(d);
            }
        }
    }
}

impl Stream for FeedStream {
    type Item = FeedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FeedEvent>> {
        if self.next.is_none() {
            if let Some(item) = self.queue.try_pop() {
                return Poll::Ready(item);
            }
            let queue = self.queue.clone();
            self.next = Some(Box::pin(async move { (queue.pop().await, queue) }));
        }
        let Some(next) = self.next.as_mut() else {
            return Poll::Pending;
        };
        match next.as_mut().poll(cx) {
            Poll::Ready((item, _)) => {
                self.next = None;
                Poll::Ready(item)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for FeedStream {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(owner: &str, token: u64, n: u64, kind: EntryKind) -> FeedEntry {
        FeedEntry::new(owner, token, n, kind, bytes::Bytes::from_static(b"{}"))
    }

    fn data(owner: &str, token: u64, n: u64, seq: Option<(u64, bool)>) -> FeedEntry {
        let sequence = seq.map(|(value, snapshot)| EntrySequence { value, snapshot });
        entry(
            owner,
            token,
            n,
            EntryKind::Data {
                binary: false,
                sequence,
            },
        )
    }

    fn kinds(a: &Accepted) -> Vec<&'static str> {
        a.events
            .iter()
            .map(|e| match e {
                FeedEvent::Message(_) => "msg",
                FeedEvent::Gap(_) => "gap",
                FeedEvent::GapClosed { .. } => "closed",
                FeedEvent::GapNotClosed { .. } => "notclosed",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn duplicates_and_stale_entries_are_dropped() {
        let ch: Arc<str> = Arc::from("c");
        let mut p = Position::default();
        assert_eq!(kinds(&p.accept(&ch, &data("a", 5, 1, None))), ["msg"]);
        assert!(p.accept(&ch, &data("a", 5, 1, None)).events.is_empty());
        assert!(p.accept(&ch, &data("old", 4, 9, None)).events.is_empty());
        assert_eq!(kinds(&p.accept(&ch, &data("a", 5, 2, None))), ["msg"]);
    }

    #[test]
    fn an_owner_change_is_a_gap_closed_by_the_new_snapshot() {
        let ch: Arc<str> = Arc::from("book");
        let mut p = Position::default();
        p.accept(&ch, &entry("a", 5, 1, EntryKind::Claimed));
        p.accept(&ch, &data("a", 5, 2, Some((10, true))));
        p.accept(&ch, &data("a", 5, 3, Some((11, false))));
        let claimed = p.accept(&ch, &entry("b", 9, 1, EntryKind::Claimed));
        assert_eq!(kinds(&claimed), ["gap"]);
        assert_eq!(
            claimed.events[0],
            FeedEvent::Gap(GapReason::OwnerChanged {
                from: Some("a".into()),
                to: "b".into()
            })
        );
        assert_eq!(
            kinds(&p.accept(&ch, &data("b", 9, 2, Some((20, true))))),
            ["closed", "msg"]
        );
        assert_eq!(
            kinds(&p.accept(&ch, &data("b", 9, 3, Some((21, false))))),
            ["msg"]
        );
    }

    #[test]
    fn lost_entries_on_a_book_wait_for_a_snapshot_and_ask_for_one() {
        let ch: Arc<str> = Arc::from("book");
        let mut p = Position::default();
        p.accept(&ch, &data("a", 5, 1, Some((10, true))));
        let skipped = p.accept(&ch, &data("a", 5, 4, Some((13, false))));
        assert_eq!(kinds(&skipped), ["gap"]);
        assert!(skipped.resnapshot);
        assert!(
            p.accept(&ch, &data("a", 5, 5, Some((14, false))))
                .events
                .is_empty()
        );
        assert_eq!(
            kinds(&p.accept(&ch, &data("a", 5, 6, Some((30, true))))),
            ["closed", "msg"]
        );
    }

    #[test]
    fn without_snapshots_a_gap_is_reported_not_closed() {
        let ch: Arc<str> = Arc::from("ticker");
        let mut p = Position::default();
        p.accept(&ch, &data("a", 5, 1, None));
        p.accept(&ch, &entry("b", 6, 1, EntryKind::Claimed));
        assert_eq!(
            kinds(&p.accept(&ch, &data("b", 6, 2, None))),
            ["notclosed", "msg"]
        );
    }

    #[test]
    fn upstream_gaps_pass_through() {
        let ch: Arc<str> = Arc::from("book");
        let mut p = Position::default();
        p.accept(&ch, &data("a", 5, 1, Some((10, true))));
        let gap = EntryKind::Gap {
            action: "resubscribe".into(),
        };
        assert_eq!(kinds(&p.accept(&ch, &entry("a", 5, 2, gap))), ["gap"]);
        assert_eq!(
            kinds(&p.accept(&ch, &entry("a", 5, 3, EntryKind::GapClosed { value: 40 }))),
            ["closed"]
        );
        assert_eq!(
            kinds(&p.accept(&ch, &data("a", 5, 4, Some((40, true))))),
            ["msg"]
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_and_says_how_many() {
        let q = Arc::new(EventQueue::new(2));
        for i in 0..5 {
            q.push(FeedEvent::GapClosed { value: i });
        }
        let mut s = FeedStream::new(Arc::from("c"), q.clone(), Box::new(|| {}));
        assert_eq!(s.recv().await, Some(FeedEvent::Lagged(3)));
        assert_eq!(s.recv().await, Some(FeedEvent::GapClosed { value: 3 }));
        assert_eq!(s.recv().await, Some(FeedEvent::GapClosed { value: 4 }));
        q.close();
        assert_eq!(s.recv().await, None);
    }
}
