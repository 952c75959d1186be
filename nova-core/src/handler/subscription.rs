//! `SubscriptionHandler`: building subscribe and unsubscribe requests, judging their acks.

use super::Context;
use crate::error::HandlerError;
use crate::message::Message;
use crate::types::Subscription;

/// Channel subscriptions (the seed's `SubscriptionHandler`): the adapter builds the messages,
/// the runtime keeps the registry and restores every subscription after a reconnect.
pub trait SubscriptionHandler {
    /// The message that subscribes to `subscription.channel`, with adapter-specific options.
    ///
    /// # Errors
    /// The default: this handler does not support subscriptions.
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        options: &serde_json::Value,
        ctx: &Context<'_>,
    ) -> Result<Message, HandlerError> {
        let _ = (options, ctx);
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
        ctx: &Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let _ = (subscription, ctx);
        Ok(None)
    }

    /// Judges the server's answer to a subscribe request.
    ///
    /// # Errors
    /// When the server refused the subscription.
    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let _ = (subscription, response, ctx);
        Ok(())
    }
}
