//! `SubscriptionHandler`: building subscribe and unsubscribe requests, judging their acks, and
//! the sequence numbers that let the runtime notice and close gaps.
//!
//! # Gap recovery
//!
//! A subscription whose messages carry a sequence (a counter, a change id, a block number) tells
//! the runtime so through [`SubscriptionHandler::sequence`]. The runtime remembers the last value
//! delivered — across reconnects too — and checks each new one:
//!
//! - [`SequenceCheck::Snapshot`]: a fresh starting point (a book snapshot); accepted, resets.
//! - [`SequenceCheck::Follows`]: must follow exactly the given previous value (Deribit's
//!   `prev_change_id`).
//! - [`SequenceCheck::Next`]: must be the last value plus one (a counter, block numbers).
//! - [`SequenceCheck::Monotonic`]: must grow, gaps not detectable (log positions).
//!
//! A value at or below the last one is a duplicate (after a backfill or a resubscribe) and is
//! dropped. A break calls [`SubscriptionHandler::on_gap`], whose [`GapAction`] the runtime carries
//! out: subscribe again for a fresh snapshot, fetch what was missed by request (backfill, with
//! live messages held back meanwhile so order is kept), or report the gap to the consumer.

use std::time::Duration;

use super::Context;
use crate::error::HandlerError;
use crate::handler::RequestId;
use crate::message::Message;
use crate::types::Subscription;

/// How a sequence value relates to the last one delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SequenceCheck {
    /// A fresh starting point: accepted whatever came before.
    Snapshot,
    /// Must follow exactly this previous value.
    Follows(u64),
    /// Must be the last value plus one.
    Next,
    /// Must be greater than the last value.
    Monotonic,
}

/// The sequence position of one subscription message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sequence {
    /// This message's value.
    pub value: u64,
    /// How it must relate to the last one.
    pub check: SequenceCheck,
}

impl Sequence {
    /// A snapshot at `value`.
    #[must_use]
    pub fn snapshot(value: u64) -> Self {
        Self {
            value,
            check: SequenceCheck::Snapshot,
        }
    }

    /// `value`, which must follow `previous` exactly.
    #[must_use]
    pub fn follows(value: u64, previous: u64) -> Self {
        Self {
            value,
            check: SequenceCheck::Follows(previous),
        }
    }

    /// `value`, which must be the last plus one.
    #[must_use]
    pub fn next(value: u64) -> Self {
        Self {
            value,
            check: SequenceCheck::Next,
        }
    }

    /// `value`, which must be greater than the last.
    #[must_use]
    pub fn monotonic(value: u64) -> Self {
        Self {
            value,
            check: SequenceCheck::Monotonic,
        }
    }
}

/// A break in a subscription's sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// The last value delivered, if any.
    pub last: Option<u64>,
    /// The value that revealed the gap; `None` right after a reconnect, before any message.
    pub got: Option<u64>,
    /// The previous value the message claimed (for [`SequenceCheck::Follows`]).
    pub claimed_previous: Option<u64>,
    /// Whether the subscription was just restored after a reconnect (data may have been missed
    /// while disconnected).
    pub after_reconnect: bool,
}

impl Gap {
    /// A break seen in the live stream: `got` arrived after `last` (claiming `claimed_previous`
    /// as its predecessor, for [`SequenceCheck::Follows`]). For tests of `on_gap`.
    #[must_use]
    pub fn in_stream(last: Option<u64>, got: u64, claimed_previous: Option<u64>) -> Self {
        Self {
            last,
            got: Some(got),
            claimed_previous,
            after_reconnect: false,
        }
    }

    /// Data possibly missed while disconnected, after `last` (the check after every restore).
    #[must_use]
    pub fn after_reconnect(last: Option<u64>) -> Self {
        Self {
            last,
            got: None,
            claimed_previous: None,
            after_reconnect: true,
        }
    }
}

/// What the runtime does about a gap.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GapAction {
    /// Unsubscribe (when the handler builds an unsubscribe message) and subscribe again; the
    /// gap is closed by the next [`SequenceCheck::Snapshot`].
    Resubscribe,
    /// Send these requests (ids from [`Context::next_request_id`]); each response goes to
    /// [`SubscriptionHandler::handle_backfill_response`], and the messages it returns are
    /// delivered in sequence order before the live messages held back meanwhile.
    Backfill(Vec<(RequestId, Message)>),
    /// The gap cannot be closed: tell the consumer and carry on.
    Report,
    /// A snapshot is on its way already (after a reconnect, the restore subscribed again):
    /// tell the consumer, skip the old stream's messages, and close the gap at the next
    /// [`SequenceCheck::Snapshot`]. Nothing is sent.
    AwaitSnapshot,
    /// Nothing to do (no data can have been missed).
    Ignore,
}

/// Channel subscriptions (the seed's `SubscriptionHandler`): the adapter builds the messages,
/// the runtime keeps the registry, verifies acks, restores every subscription after a
/// reconnect and recovers gaps.
pub trait SubscriptionHandler {
    /// The message that subscribes to `subscription.channel`, carrying the request `id` so that
    /// the ack (a [`MessageType::Response`](crate::MessageType::Response) with that id) can be
    /// recognised.
    ///
    /// # Errors
    /// The default: this handler does not support subscriptions.
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        options: &serde_json::Value,
        id: RequestId,
        ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let _ = (options, id, ctx);
        Err(HandlerError::new(format!(
            "this client has no SubscriptionHandler: cannot subscribe to {}",
            subscription.channel
        )))
    }

    /// The message that ends a subscription, or `None` when nothing needs to be sent.
    ///
    /// # Errors
    /// When the unsubscribe request cannot be built.
    fn unsubscribe(
        &mut self,
        subscription: &Subscription,
        id: RequestId,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let _ = (subscription, id, ctx);
        Ok(None)
    }

    /// Judges the server's answer to a subscribe request. `Ok(Some(key))` routes messages whose
    /// [`MessageType::Subscription`](crate::MessageType::Subscription) channel is `key` to this
    /// subscription (a server-assigned subscription id, new on every connection); `Ok(None)`
    /// routes by the channel name.
    ///
    /// # Errors
    /// When the server refused the subscription.
    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let _ = (subscription, response, ctx);
        Ok(None)
    }

    /// How long silence is normal for `subscription` (a ticker: seconds; a private order
    /// channel: `None`, never stale). Past it with no message, the runtime resubscribes that
    /// channel alone (unsubscribe, subscribe, ack verified) and reports it
    /// ([`SubscriptionEvent::Stale`](crate::SubscriptionEvent::Stale), a lifecycle event and
    /// `nova_subscriptions_stale_total`); the connection and the other channels are left alone.
    /// Asked once per subscription, when it is added. The default: never stale.
    fn stale_after(&self, subscription: &Subscription) -> Option<Duration> {
        let _ = subscription;
        None
    }

    /// The sequence position of a message of `subscription`, if its channel has one.
    fn sequence(&self, subscription: &Subscription, message: &Message) -> Option<Sequence> {
        let _ = (subscription, message);
        None
    }

    /// Decides what to do about a gap. The default subscribes again for a fresh snapshot, and
    /// does nothing right after a reconnect (the restore already subscribed again).
    fn on_gap(
        &mut self,
        subscription: &Subscription,
        gap: &Gap,
        ctx: &mut Context<'_>,
    ) -> GapAction {
        let _ = (subscription, ctx);
        if gap.got.is_none() {
            GapAction::Ignore
        } else {
            GapAction::Resubscribe
        }
    }

    /// Turns the response to a backfill request into the subscription messages it contains.
    ///
    /// # Errors
    /// When the response is an error; the gap is then reported as not closed.
    fn handle_backfill_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<Message>, HandlerError> {
        let _ = (subscription, response, ctx);
        Ok(Vec::new())
    }
}
