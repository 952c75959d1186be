//! Subscribing to the Gen Golden API's channels, and [`GenGoldenAdapter`]'s subscription
//! callbacks.
//!
//! A subscription is a `public/subscribe` request naming channels; the response's `result`
//! lists the channels subscribed. Data then arrives as notifications
//! ([`Incoming::Notification`]), which the runtime routes to the subscription's stream by
//! channel. The runtime restores every subscription after a reconnect and checks each
//! acknowledgement with `handle_subscription_response`. Channels of one's own account usually
//! need authentication and `private/subscribe`.

use nova_core::jsonrpc;
use nova_core::{
    Context, Gap, GapAction, HandlerError, Message, RequestId, Sequence, Subscription,
    SubscriptionHandler,
};
use serde_json::{Value, json};

use crate::adapter::GenGoldenAdapter;
use crate::message::{Incoming, parse};

/// The method that subscribes.
pub const SUBSCRIBE_METHOD: &str = "public/subscribe";

/// The method that unsubscribes.
pub const UNSUBSCRIBE_METHOD: &str = "public/unsubscribe";

/// The request that subscribes to `channels`.
#[must_use]
pub fn subscribe_request(id: &RequestId, channels: &[&str]) -> jsonrpc::Request {
    jsonrpc::Request::new(id, SUBSCRIBE_METHOD, json!({ "channels": channels }))
}

/// The request that unsubscribes from `channels`.
#[must_use]
pub fn unsubscribe_request(id: &RequestId, channels: &[&str]) -> jsonrpc::Request {
    jsonrpc::Request::new(id, UNSUBSCRIBE_METHOD, json!({ "channels": channels }))
}

impl SubscriptionHandler for GenGoldenAdapter {
    /// The message that subscribes to `subscription.channel`, with the request id `id` its
    /// acknowledgement repeats; sent when the application subscribes and again after every
    /// reconnect. `options` (a JSON object) are added to the request's `params`. Choose
    /// `private/subscribe` for private channels here.
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        options: &Value,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let mut request = subscribe_request(&id, &[subscription.channel.as_str()]);
        if let (Some(params), Some(extra)) = (request.params.as_object_mut(), options.as_object()) {
            params.extend(extra.clone());
        }
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

    /// Judges the acknowledgement of a subscribe request: the platform lists the channels it
    /// subscribed, so an error, or a list without the channel, fails the subscription.
    /// `Ok(None)` routes notifications by channel name; return `Ok(Some(key))` when the
    /// platform names the subscription by an id of its own instead.
    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let channel = subscription.channel.as_str();
        let Incoming::Response(response) = parse(response)? else {
            return Err(HandlerError::new("not a response to the subscribe request"));
        };
        let result = response.into_result().map_err(|error| {
            HandlerError::with_source(format!("subscribing to {channel} failed"), error)
        })?;
        let channels = result.as_array().map(Vec::as_slice).unwrap_or_default();
        if channels.iter().any(|c| c.as_str() == Some(channel)) {
            Ok(None)
        } else {
            Err(HandlerError::new(format!(
                "the server did not subscribe to {channel}"
            )))
        }
    }

    /// The sequence position of a subscription message, when the channel has one: none here.
    /// Return one for channels whose data is numbered (e.g. `Sequence::follows(change_id,
    /// prev_change_id)` for an order book) and the runtime detects gaps and calls `on_gap`.
    fn sequence(&self, _subscription: &Subscription, _message: &Message) -> Option<Sequence> {
        None
    }

    /// Decides what to do about a gap in a channel's sequence: subscribe again for a fresh
    /// snapshot, except right after a reconnect (the restore subscribed again already). Return
    /// `GapAction::Backfill` with requests here when the platform can send what was missed.
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
