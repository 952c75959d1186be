//! Subscriptions as the application sees them — a stream per subscription — and the registry
//! of active subscriptions, behind a trait so a cluster backend can share it between processes.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use super::commands::Control;
use super::inbound::QueueReceiver;
use crate::error::Error;
use crate::handler::{Data, Gap};
use crate::message::Message;
use crate::types::{Subscription, SubscriptionStatus};

/// A message of a subscription, with the value the adapter parsed from it, if it parsed one
/// (see [`MessageType::Subscription`](crate::MessageType::Subscription)): typed data without a
/// second parse, and the raw message beside it.
///
/// A value the adapter [deferred](Data::deferred) is parsed from the message the first time it
/// is asked for ([`get`](Self::get), [`data`](Self::data), [`take`](Self::take),
/// [`into_parts`](Self::into_parts)), once, on the task that asks.
///
/// Derefs to the [`Message`].
#[derive(Clone, Debug)]
pub struct Delivery {
    message: Message,
    /// What the adapter handed over (a value, or how to parse it).
    data: Option<Data>,
    /// A deferred value, once parsed.
    parsed: OnceLock<Option<Data>>,
}

impl Delivery {
    /// A message with what was parsed from it (or how to parse it: [`Data::deferred`]).
    #[must_use]
    pub fn new(message: Message, data: Option<Data>) -> Self {
        Self {
            message,
            data,
            parsed: OnceLock::new(),
        }
    }

    /// The message as received.
    #[must_use]
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message as received, the parsed value dropped.
    #[must_use]
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The message and what the adapter parsed from it (a deferred value parsed now).
    #[must_use]
    pub fn into_parts(mut self) -> (Message, Option<Data>) {
        let data = self.owned_data();
        (self.message, data)
    }

    /// The parsed value as a `T`, taken out (cloned only when the value is shared with a clone
    /// of this delivery); `None` when the adapter parsed nothing, or something else.
    #[must_use]
    pub fn take<T: std::any::Any + Send + Sync + Clone>(&mut self) -> Option<T> {
        let data = self.owned_data()?;
        match data.downcast::<T>() {
            Ok(shared) => Some(std::sync::Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone())),
            Err(data) => {
                self.data = Some(data);
                None
            }
        }
    }

    /// What the adapter parsed, if anything (a deferred value parsed now, once).
    #[must_use]
    pub fn data(&self) -> Option<&Data> {
        match &self.data {
            Some(data) if data.is_deferred() => self
                .parsed
                .get_or_init(|| data.clone().resolve(&self.message))
                .as_ref(),
            data => data.as_ref(),
        }
    }

    /// The parsed value, if the adapter parsed one of type `T` (a deferred value parsed now,
    /// once).
    #[must_use]
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.data()?.get()
    }

    /// The value, parsed if it was deferred, moved out of this delivery.
    fn owned_data(&mut self) -> Option<Data> {
        let data = self.data.take()?;
        if !data.is_deferred() {
            return Some(data);
        }
        match self.parsed.take() {
            Some(parsed) => parsed,
            None => data.resolve(&self.message),
        }
    }
}

impl std::ops::Deref for Delivery {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.message
    }
}

/// Deliveries are equal when their messages are (the parsed values come from them).
impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for Delivery {}

/// What a subscription stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// A message of the channel (with the adapter's parsed value, if any).
    Message(Delivery),
    /// This many messages were dropped by the `DropOldest` overflow policy.
    Lagged(u64),
    /// The subscription was restored (and its ack verified) after a reconnect.
    Restored,
    /// Restoring after a reconnect failed; it is retried after `retry_in`.
    RestoreFailed {
        /// What went wrong.
        error: String,
        /// When the next attempt happens.
        retry_in: Duration,
    },
    /// A gap in the channel's sequence was detected; `action` says how it is being closed
    /// (`"resubscribe"`, `"backfill"`, `"snapshot"`, `"report"`).
    Gap {
        /// The gap.
        gap: Gap,
        /// The recovery under way.
        action: &'static str,
    },
    /// The gap was closed: delivery is continuous again from `value`.
    GapClosed {
        /// The sequence value delivery resumed at.
        value: u64,
    },
    /// The channel was silent for longer than its adapter says is normal
    /// ([`SubscriptionHandler::stale_after`](crate::SubscriptionHandler::stale_after)); it is
    /// being subscribed again (the connection and other channels are left alone). For a
    /// sequenced channel the fresh snapshot is reported as [`GapClosed`](Self::GapClosed).
    Stale {
        /// How long it had been silent.
        silent: Duration,
    },
    /// The gap could not be closed: data between `last` and the next message is missing.
    GapNotClosed {
        /// Why.
        reason: String,
    },
}

/// A subscription's messages, as a [`Stream`] of [`SubscriptionEvent`]s.
///
/// The stream stays the same across reconnects: the runtime restores the subscription and keeps
/// feeding it. Dropping the stream unsubscribes; so does [`unsubscribe`](Self::unsubscribe),
/// which also waits until it is done. The stream ends when the client stops.
pub struct SubscriptionStream {
    pub(crate) id: u64,
    pub(crate) channel: String,
    pub(crate) rx: QueueReceiver<SubscriptionEvent>,
    pub(crate) control: mpsc::Sender<Box<Control>>,
    pub(crate) unsubscribed: bool,
}

impl std::fmt::Debug for SubscriptionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionStream")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl SubscriptionStream {
    /// nova's id of this subscription (stable across reconnects).
    #[must_use]
    pub fn id(&self) -> String {
        format!("sub-{}", self.id)
    }

    /// The channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next event, or `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<SubscriptionEvent> {
        futures_util::StreamExt::next(self).await
    }

    /// The next data message, skipping the other events; `None` once the client has stopped.
    pub async fn next_message(&mut self) -> Option<Message> {
        self.next_delivery().await.map(Delivery::into_message)
    }

    /// The next data message with its parsed value, skipping the other events; `None` once the
    /// client has stopped.
    pub async fn next_delivery(&mut self) -> Option<Delivery> {
        loop {
            if let SubscriptionEvent::Message(m) = self.recv().await? {
                return Some(m);
            }
        }
    }

    /// Ends the subscription (sending the platform's unsubscribe) and waits until it is done.
    ///
    /// # Errors
    /// [`Error::Stopped`] when the client has stopped (the subscription is gone anyway).
    pub async fn unsubscribe(mut self) -> Result<(), Error> {
        self.unsubscribed = true;
        let (done, wait) = oneshot::channel();
        let command = Control::Unsubscribe {
            id: self.id,
            done: Some(done),
        };
        if self.control.send(Box::new(command)).await.is_err() {
            return Err(Error::Disconnected);
        }
        wait.await.map_err(|_| Error::Disconnected)
    }
}

impl Stream for SubscriptionStream {
    type Item = SubscriptionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx).map(|item| {
            item.map(|r| match r {
                Ok(event) => event,
                Err(lagged) => SubscriptionEvent::Lagged(lagged.0),
            })
        })
    }
}

impl Drop for SubscriptionStream {
    fn drop(&mut self) {
        if !self.unsubscribed {
            // Best effort; when the control queue is full the runtime notices the closed stream
            // at its next message and unsubscribes then.
            let _ = self.control.try_send(Box::new(Control::Unsubscribe {
                id: self.id,
                done: None,
            }));
        }
    }
}

/// The registry of a client's subscriptions: what must be restored after a reconnect.
///
/// The runtime updates it on every change; [`InMemoryRegistry`] is the default. A cluster
/// backend implements it to share subscriptions between processes.
pub trait SubscriptionRegistry: Send + 'static {
    /// Records a new subscription with the options it was made with.
    fn insert(&mut self, subscription: Subscription, options: serde_json::Value);
    /// Updates a subscription's status.
    fn set_status(&mut self, id: &str, status: SubscriptionStatus, error: Option<String>);
    /// Forgets a subscription.
    fn remove(&mut self, id: &str);
    /// Every subscription, with its options.
    fn list(&self) -> Vec<(Subscription, serde_json::Value)>;
}

/// The in-process registry.
#[derive(Debug, Default)]
pub struct InMemoryRegistry {
    entries: BTreeMap<String, (Subscription, serde_json::Value)>,
}

impl SubscriptionRegistry for InMemoryRegistry {
    fn insert(&mut self, subscription: Subscription, options: serde_json::Value) {
        self.entries
            .insert(subscription.id.clone(), (subscription, options));
    }

    fn set_status(&mut self, id: &str, status: SubscriptionStatus, error: Option<String>) {
        if let Some((s, _)) = self.entries.get_mut(id) {
            s.status = status;
            s.error = error;
        }
    }

    fn remove(&mut self, id: &str) {
        self.entries.remove(id);
    }

    fn list(&self) -> Vec<(Subscription, serde_json::Value)> {
        self.entries.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static PARSES: AtomicUsize = AtomicUsize::new(0);

    /// The message's length, counting each parse.
    fn length(message: &Message) -> Option<Data> {
        PARSES.fetch_add(1, Ordering::SeqCst);
        (!message.as_bytes().is_empty()).then(|| Data::new(message.as_bytes().len()))
    }

    #[test]
    fn a_deferred_value_is_parsed_once_on_first_access() {
        let before = PARSES.load(Ordering::SeqCst);
        let mut delivery = Delivery::new(Message::text("four"), Some(Data::deferred(length)));
        assert_eq!(
            PARSES.load(Ordering::SeqCst),
            before,
            "nothing parsed before asked"
        );
        assert_eq!(delivery.get::<usize>(), Some(&4));
        assert_eq!(delivery.get::<usize>(), Some(&4));
        assert!(delivery.get::<String>().is_none());
        assert_eq!(delivery.take::<usize>(), Some(4));
        assert_eq!(PARSES.load(Ordering::SeqCst), before + 1, "parsed once");

        // Taken without a look first; into_parts parses too; no value: None, once.
        let mut taken = Delivery::new(Message::text("ab"), Some(Data::deferred(length)));
        assert_eq!(taken.take::<usize>(), Some(2));
        let (_, data) =
            Delivery::new(Message::text("abc"), Some(Data::deferred(length))).into_parts();
        assert_eq!(data.and_then(|d| d.get::<usize>().copied()), Some(3));
        let empty = Delivery::new(Message::text(""), Some(Data::deferred(length)));
        assert!(empty.data().is_none());
        assert!(empty.get::<usize>().is_none());
        assert_eq!(PARSES.load(Ordering::SeqCst), before + 4);
        // A value parsed eagerly is handed over as it is.
        let eager = Delivery::new(Message::text("x"), Some(Data::new(7usize)));
        assert_eq!(eager.get::<usize>(), Some(&7));
        assert!(!eager.data().is_some_and(Data::is_deferred));
    }
}
