//! Subscribing to the Gen Golden Generic API's topics, and [`GenGoldenGenericAdapter`]'s subscription
//! callbacks.
//!
//! A subscription is a `subscribe` request with the topics as `args`; the response says
//! whether it succeeded. Data then arrives on each topic ([`Incoming::Event`]), which the
//! runtime routes to the subscription's stream. The runtime restores every subscription after
//! a reconnect and checks each acknowledgement with `handle_subscription_response`.

use nova_core::{
    Context, Gap, GapAction, HandlerError, Message, RequestId, Sequence, Subscription,
    SubscriptionHandler,
};
use serde_json::Value;

use crate::adapter::GenGoldenGenericAdapter;
use crate::message::{Incoming, parse};
use crate::types::OpRequest;

/// The operation that subscribes.
pub const SUBSCRIBE_OP: &str = "subscribe";

/// The operation that unsubscribes.
pub const UNSUBSCRIBE_OP: &str = "unsubscribe";

/// The request that subscribes to `topics`.
#[must_use]
pub fn subscribe_request(id: &RequestId, topics: &[&str]) -> OpRequest {
    OpRequest::new(id, SUBSCRIBE_OP, topic_args(topics))
}

/// The request that unsubscribes from `topics`.
#[must_use]
pub fn unsubscribe_request(id: &RequestId, topics: &[&str]) -> OpRequest {
    OpRequest::new(id, UNSUBSCRIBE_OP, topic_args(topics))
}

fn topic_args(topics: &[&str]) -> Vec<Value> {
    topics.iter().map(|topic| Value::from(*topic)).collect()
}

impl SubscriptionHandler for GenGoldenGenericAdapter {
    /// The message that subscribes to `subscription.channel`, with the request id `id` its
    /// acknowledgement repeats; sent when the application subscribes and again after every
    /// reconnect. `options` are not used by this platform; read them here if a subscription
    /// takes parameters (a depth, an interval).
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        _options: &Value,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let request = subscribe_request(&id, &[subscription.channel.as_str()]);
        Ok(request.to_message())
    }

    /// The message that ends a subscription (sent when its stream is dropped).
    fn unsubscribe(
        &mut self,
        subscription: &Subscription,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let request = unsubscribe_request(&id, &[subscription.channel.as_str()]);
        Ok(Some(request.to_message()))
    }

    /// Judges the acknowledgement of a subscribe request: `success: false` fails the
    /// subscription with the platform's `ret_msg`. `Ok(None)` routes data by topic; return
    /// `Ok(Some(key))` when the platform names the subscription by an id of its own instead.
    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let Incoming::Response(response) = parse(response)? else {
            return Err(HandlerError::new("not a response to the subscribe request"));
        };
        response.check().map_err(|error| {
            let channel = &subscription.channel;
            HandlerError::with_source(format!("subscribing to {channel} failed"), error)
        })?;
        Ok(None)
    }

    /// The sequence position of a subscription message, when the topic has one: none here.
    /// Return one for topics whose data is numbered (e.g. `Sequence::next(update_id)`, or
    /// `Sequence::snapshot(update_id)` for a snapshot) and the runtime detects gaps and calls
    /// `on_gap`.
    fn sequence(&self, _subscription: &Subscription, _message: &Message) -> Option<Sequence> {
        None
    }

    /// Decides what to do about a gap in a topic's sequence: subscribe again for a fresh
    /// snapshot, except right after a reconnect (the restore subscribed again already).
    fn on_gap(
        &mut self,
        _subscription: &Subscription,
        gap: &Gap,
        _ctx: &mut Context<'_>,
    ) -> GapAction {
        if gap.got.is_none() {
            GapAction::Ignore
        } else {
            GapAction::Resubscribe
        }
    }

    /// Turns the response to a backfill request into the subscription messages it holds:
    /// none, as `on_gap` asks for no backfill.
    fn handle_backfill_response(
        &mut self,
        _subscription: &Subscription,
        _response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Vec<Message>, HandlerError> {
        Ok(Vec::new())
    }
}
