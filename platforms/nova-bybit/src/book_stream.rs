//! [`BookStream`]: an `orderbook.*` subscription that maintains its [`OrderBook`].
//!
//! It applies every push of the subscription stream to a local book and passes on what
//! happened as [`BookEvent`]s. The runtime's gap mechanism does the recovery: a `u` break or a
//! crossed book (see [`crate::subscription`]) makes it subscribe again, and the stream yields
//! [`BookEvent::Gap`], then [`BookEvent::GapClosed`] with the fresh snapshot. While a gap is
//! open, or after a reconnect until the restored subscription's snapshot,
//! [`BookStream::book`] is `None`: the book is never shown when it may be wrong. Should the
//! local book itself break (lost messages under a `DropOldest` inbound policy, a bad level),
//! the stream subscribes again on its own for a snapshot and says so
//! ([`BookEvent::Resubscribed`]).

use futures_util::StreamExt;
use nova_core::{Client, Delivery, Gap, Message, SubscriptionEvent, SubscriptionStream};

use crate::book::{Applied, BookContinuity, BookError, BookMessage, OrderBook};

/// What a [`BookStream`] saw.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BookEvent {
    /// A snapshot replaced the book (`u`).
    Snapshot {
        /// The snapshot's `u`.
        u: u64,
        /// The push as received.
        raw: Message,
    },
    /// A delta was applied (`u`).
    Delta {
        /// The delta's `u`.
        u: u64,
        /// The push as received.
        raw: Message,
    },
    /// The runtime found a break (or a crossed book) and is subscribing again.
    Gap(Gap),
    /// The break is closed by a snapshot at `u`.
    GapClosed {
        /// The `u` delivery resumed at.
        u: u64,
    },
    /// The subscription was restored after a reconnect; a snapshot follows.
    Restored,
    /// The local book broke (why) and the stream subscribed again for a snapshot.
    Resubscribed(BookError),
    /// Something else happened on the subscription (restore failures, lag).
    Other(SubscriptionEvent),
}

/// An `orderbook.*` subscription with its maintained book: it applies every push to an
/// [`OrderBook`] and shows the book only while it is known to be right.
#[derive(Debug)]
pub struct BookStream {
    client: Client,
    topic: String,
    /// `None` only while subscribing again.
    stream: Option<SubscriptionStream>,
    book: OrderBook,
}

impl BookStream {
    pub(crate) fn new(
        client: Client,
        topic: String,
        stream: SubscriptionStream,
        continuity: BookContinuity,
    ) -> Self {
        Self {
            client,
            topic,
            stream: Some(stream),
            book: OrderBook::with_continuity(continuity),
        }
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The book, when it is known to be right (a snapshot and every delta since).
    #[must_use]
    pub fn book(&self) -> Option<&OrderBook> {
        self.book.is_valid().then_some(&self.book)
    }

    /// The next event; `None` when the client stopped. A resubscription that fails ends the
    /// stream too.
    pub async fn next(&mut self) -> Option<BookEvent> {
        let event = self.stream.as_mut()?.next().await?;
        Some(match event {
            SubscriptionEvent::Message(delivery) => match self.apply(&delivery) {
                Ok((Applied::Snapshot, u)) => BookEvent::Snapshot {
                    u,
                    raw: delivery.into_message(),
                },
                Ok((_, u)) => BookEvent::Delta {
                    u,
                    raw: delivery.into_message(),
                },
                Err(error) => return self.resubscribe(error).await,
            },
            SubscriptionEvent::Gap { gap, .. } => {
                self.book.invalidate();
                BookEvent::Gap(gap)
            }
            SubscriptionEvent::GapClosed { value } => BookEvent::GapClosed { u: value },
            SubscriptionEvent::Restored => {
                self.book.invalidate();
                BookEvent::Restored
            }
            SubscriptionEvent::Lagged(n) => {
                return self
                    .resubscribe(BookError::Malformed(format!("{n} pushes lost")))
                    .await;
            }
            other => BookEvent::Other(other),
        })
    }

    /// Applies a push to the local book: the adapter's parse when it made one (it does for
    /// every book push), else a parse here.
    fn apply(&mut self, delivery: &Delivery) -> Result<(Applied, u64), BookError> {
        let parsed;
        let book = match delivery.get::<BookMessage>() {
            Some(book) => book,
            None => {
                parsed = BookMessage::parse(delivery.message())?;
                &parsed
            }
        };
        let applied = self.book.apply(book)?;
        Ok((applied, book.data.u))
    }

    async fn resubscribe(&mut self, error: BookError) -> Option<BookEvent> {
        tracing::warn!(topic = %self.topic, %error, "bybit local book broke: subscribing again");
        self.book.invalidate();
        // Unsubscribed first: Bybit refuses a topic subscribed twice on one connection.
        if let Some(old) = self.stream.take() {
            let _ = old.unsubscribe().await;
        }
        let fresh = self
            .client
            .subscribe(self.topic.clone(), serde_json::Value::Null)
            .await;
        self.stream = Some(fresh.ok()?);
        Some(BookEvent::Resubscribed(error))
    }

    /// The subscription stream underneath (`None` after a failed resubscription).
    #[must_use]
    pub fn into_inner(self) -> Option<SubscriptionStream> {
        self.stream
    }
}
