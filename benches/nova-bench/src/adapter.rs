//! A small JSON-RPC 2.0 adapter of the Deribit kind, written for the benchmark (it does not
//! depend on the platform crates): `public/subscribe` / `public/unsubscribe` with one channel,
//! acks judged by the absence of `error`, responses correlated by `id`, notifications routed by
//! `params.channel`.
//!
//! `message_type` is what every nova message pays before delivery, so it is written the way a
//! platform adapter should be: a notification in Deribit's field order is recognised by its
//! fixed prefix and the channel read up to the next quote, without parsing the rest; anything
//! else goes through a borrowing `serde` peek that skips the payload.

use std::time::Duration;

use nova_core::{
    AuthHandler, ConnectionHandler, Context, DisconnectReason, ErrorHandler, HandlerError,
    HeartbeatHandler, Message, MessageHandler, MessageType, RateLimitHandler, ReconnectDecision,
    RequestId, Subscription, SubscriptionHandler,
};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::payload::Tally;

/// What starts every notification Deribit sends, up to the channel's first character.
const NOTIFICATION_PREFIX: &[u8] =
    br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":""#;

/// The benchmark's adapter. With a [`Sink`], `handle_message` parses and counts every message
/// itself (the handler-callback variant); without one it delivers to `Messages`.
#[derive(Debug, Default)]
pub(crate) struct BenchAdapter {
    sink: Option<Sink>,
    /// Reconnect at once after a drop (`handle_disconnect`), as the bare loop does, instead of
    /// after the configured backoff.
    reconnect_at_once: bool,
}

/// Counts messages in the handler until `target`, then reports the tally once.
#[derive(Debug)]
pub(crate) struct Sink {
    tally: Tally,
    target: u64,
    done: Option<oneshot::Sender<Tally>>,
}

impl BenchAdapter {
    /// An adapter that delivers every unrouted message to the application.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An adapter that parses and counts unrouted messages in `handle_message`, and sends the
    /// tally once `target` messages have been counted.
    pub(crate) fn counting(target: u64) -> (Self, oneshot::Receiver<Tally>) {
        let (tx, rx) = oneshot::channel();
        let sink = Sink {
            tally: Tally::default(),
            target,
            done: Some(tx),
        };
        (
            Self {
                sink: Some(sink),
                ..Self::default()
            },
            rx,
        )
    }

    /// An adapter whose `handle_disconnect` reconnects at once (`ReconnectDecision::after(0)`).
    pub(crate) fn reconnecting_at_once() -> Self {
        Self {
            reconnect_at_once: true,
            ..Self::default()
        }
    }
}

/// The fields that classify a message; everything else is skipped without being built.
#[derive(Deserialize)]
struct Peek<'a> {
    id: Option<u64>,
    #[serde(borrow)]
    params: Option<PeekParams<'a>>,
}

#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
}

/// Classifies a JSON-RPC message: a notification by its channel, a response by its id.
pub(crate) fn classify(bytes: &[u8]) -> MessageType<'_> {
    if let Some(rest) = bytes.strip_prefix(NOTIFICATION_PREFIX) {
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest) {
            if rest[end] == b'"' {
                if let Ok(channel) = std::str::from_utf8(&rest[..end]) {
                    return MessageType::subscription(channel);
                }
            }
        }
    }
    match serde_json::from_slice::<Peek<'_>>(bytes) {
        Ok(Peek { id: Some(id), .. }) => MessageType::Response {
            id: RequestId::Num(id),
        },
        Ok(Peek {
            params: Some(PeekParams {
                channel: Some(channel),
            }),
            ..
        }) => MessageType::subscription(channel),
        _ => MessageType::Unknown,
    }
}

/// The id of a JSON-RPC response, if `bytes` is one (the bare client's correlation).
pub(crate) fn response_id(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Peek<'_>>(bytes).ok()?.id
}

/// A JSON-RPC 2.0 request text.
pub(crate) fn rpc(id: u64, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

fn request_number(id: &RequestId) -> Result<u64, HandlerError> {
    match id {
        RequestId::Num(n) => Ok(*n),
        RequestId::Str(s) => Err(HandlerError::new(format!("unexpected string id {s}"))),
    }
}

impl MessageHandler for BenchAdapter {
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        classify(message.as_bytes())
    }

    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let Some(sink) = self.sink.as_mut() else {
            ctx.deliver(message);
            return Ok(());
        };
        sink.tally.add(message.as_bytes());
        if sink.tally.count + sink.tally.bad >= sink.target {
            if let Some(done) = sink.done.take() {
                let _ = done.send(sink.tally);
            }
        }
        Ok(())
    }
}

impl SubscriptionHandler for BenchAdapter {
    fn subscribe(
        &mut self,
        subscription: &Subscription,
        _options: &serde_json::Value,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        let channels = serde_json::json!({ "channels": [subscription.channel] });
        Ok(Message::text(rpc(
            request_number(&id)?,
            "public/subscribe",
            &channels.to_string(),
        )))
    }

    fn unsubscribe(
        &mut self,
        subscription: &Subscription,
        id: RequestId,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let channels = serde_json::json!({ "channels": [subscription.channel] });
        Ok(Some(Message::text(rpc(
            request_number(&id)?,
            "public/unsubscribe",
            &channels.to_string(),
        ))))
    }

    fn handle_subscription_response(
        &mut self,
        subscription: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let v: serde_json::Value = response.json()?;
        match v.get("error") {
            None => Ok(None),
            Some(e) => Err(HandlerError::new(format!(
                "subscribe to {} refused: {e}",
                subscription.channel
            ))),
        }
    }
}

impl ConnectionHandler for BenchAdapter {
    fn handle_disconnect(
        &mut self,
        _reason: &DisconnectReason,
        _ctx: &Context<'_>,
    ) -> ReconnectDecision {
        if self.reconnect_at_once {
            ReconnectDecision::after(Duration::ZERO)
        } else {
            ReconnectDecision::backoff()
        }
    }
}
impl AuthHandler for BenchAdapter {}
impl ErrorHandler for BenchAdapter {}
impl HeartbeatHandler for BenchAdapter {}
impl RateLimitHandler for BenchAdapter {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{CHANNEL, notification};

    #[test]
    fn classifies_notifications_and_responses() {
        let note = notification(CHANNEL, 3);
        assert!(matches!(
            classify(note.as_bytes()),
            MessageType::Subscription { route, .. } if route == CHANNEL
        ));
        let reordered = r#"{"params":{"data":1,"channel":"a.b"},"method":"subscription"}"#;
        assert!(matches!(
            classify(reordered.as_bytes()),
            MessageType::Subscription { route: "a.b", .. }
        ));
        let response = r#"{"id":7,"jsonrpc":"2.0","result":{"n":1}}"#;
        assert!(matches!(
            classify(response.as_bytes()),
            MessageType::Response {
                id: RequestId::Num(7)
            }
        ));
        assert_eq!(response_id(response.as_bytes()), Some(7));
        assert!(matches!(classify(b"[1,2]"), MessageType::Unknown));
    }
}
