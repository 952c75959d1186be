//! The test adapter shared by the integration tests: a JSON-RPC 2.0 protocol described the way
//! a platform adapter describes one (the runtime does the work).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ClientConfig, ClientConfigBuilder, ConnectionHandler,
    Context, ErrorHandler, Gap, GapAction, HandlerError, HeartbeatHandler, Message, MessageHandler,
    MessageType, RateLimitAction, RateLimitHandler, RequestId, Sequence, Subscription,
    SubscriptionHandler,
};
use serde_json::{Value, json};

pub const MS: fn(u64) -> Duration = Duration::from_millis;

/// How the test adapter recovers gaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recover {
    Resubscribe,
    Backfill,
    Report,
}

/// A JSON-RPC 2.0 protocol, as a platform adapter describes one.
pub struct Rpc {
    pub credentials: Option<(String, String)>,
    pub auth_id: Option<RequestId>,
    /// Pretend tokens live this long (the test server says 900 s).
    pub token_lifetime: Duration,
    pub token_expires: Option<Instant>,
    pub recover: Recover,
    pub platform_heartbeat: Option<Duration>,
    pub answer_test_requests: bool,
    /// Whether `handle_auth_response` judges anything (false: an adapter that forgot it).
    pub judges_auth: bool,
    /// How long silence is normal on channels other than `orders.*` (never stale).
    pub stale_after: Option<Duration>,
}

impl Rpc {
    pub fn new() -> Self {
        Self {
            credentials: None,
            auth_id: None,
            token_lifetime: Duration::from_secs(900),
            token_expires: None,
            recover: Recover::Resubscribe,
            platform_heartbeat: None,
            answer_test_requests: true,
            judges_auth: true,
            stale_after: None,
        }
    }

    fn json(message: &Message) -> Option<Value> {
        message.json().ok()
    }
}

pub fn rpc(id: &RequestId, method: &str, params: Value) -> Message {
    let id = match id {
        RequestId::Num(n) => json!(n),
        RequestId::Str(s) => json!(s),
    };
    Message::text(
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
    )
}

impl ConnectionHandler for Rpc {}
impl ErrorHandler for Rpc {}

impl MessageHandler for Rpc {
    fn message_type<'m>(&mut self, message: &'m Message) -> MessageType<'m> {
        /// The envelope, parsed once, the channel borrowed from the message.
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            id: Option<u64>,
            #[serde(borrow)]
            method: Option<&'a str>,
            #[serde(borrow)]
            params: Option<Params<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct Params<'a> {
            #[serde(borrow)]
            channel: Option<&'a str>,
        }
        let Some(Ok(envelope)) = message.as_text().map(serde_json::from_str::<Envelope<'m>>) else {
            return MessageType::Unknown;
        };
        if let Some(id) = envelope.id {
            return MessageType::Response {
                id: RequestId::Num(id),
            };
        }
        match envelope.method {
            Some("subscription") => match envelope.params.and_then(|p| p.channel) {
                Some(channel) => MessageType::subscription(channel),
                None => MessageType::Unknown,
            },
            Some("heartbeat") => MessageType::Heartbeat,
            _ => MessageType::Unknown,
        }
    }
}

impl SubscriptionHandler for Rpc {
    fn subscribe(
        &mut self,
        sub: &Subscription,
        _: &Value,
        id: RequestId,
        _: &mut Context<'_>,
    ) -> Result<Message, HandlerError> {
        Ok(rpc(
            &id,
            "public/subscribe",
            json!({"channels": [sub.channel]}),
        ))
    }

    fn unsubscribe(
        &mut self,
        sub: &Subscription,
        id: RequestId,
        _: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        Ok(Some(rpc(
            &id,
            "public/unsubscribe",
            json!({"channels": [sub.channel]}),
        )))
    }

    fn handle_subscription_response(
        &mut self,
        _: &Subscription,
        response: &Message,
        _: &mut Context<'_>,
    ) -> Result<Option<String>, HandlerError> {
        let v = Self::json(response).ok_or_else(|| HandlerError::new("not JSON"))?;
        match v.get("error") {
            Some(e) => Err(HandlerError::new(e.to_string())),
            None => Ok(None),
        }
    }

    fn stale_after(&self, sub: &Subscription) -> Option<Duration> {
        if sub.channel.starts_with("orders") {
            None
        } else {
            self.stale_after
        }
    }

    fn sequence(&self, _: &Subscription, message: &Message) -> Option<Sequence> {
        let v = Self::json(message)?;
        let data = v.pointer("/params/data")?;
        let seq = data.get("seq")?.as_u64()?;
        if data.get("snapshot").and_then(Value::as_bool) == Some(true) {
            return Some(Sequence::snapshot(seq));
        }
        Some(Sequence::next(seq))
    }

    fn on_gap(&mut self, sub: &Subscription, gap: &Gap, ctx: &mut Context<'_>) -> GapAction {
        let (Some(last), Some(got)) = (gap.last, gap.got) else {
            return GapAction::Ignore;
        };
        match self.recover {
            Recover::Resubscribe => GapAction::Resubscribe,
            Recover::Report => GapAction::Report,
            Recover::Backfill => {
                // The test server echoes params: ask for the missing range and rebuild it.
                let id = ctx.next_request_id();
                let params = json!({"channel": sub.channel, "from": last + 1, "to": got - 1});
                GapAction::Backfill(vec![(id.clone(), rpc(&id, "public/get_missed", params))])
            }
        }
    }

    fn handle_backfill_response(
        &mut self,
        sub: &Subscription,
        response: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<Vec<Message>, HandlerError> {
        let v = Self::json(response).ok_or_else(|| HandlerError::new("not JSON"))?;
        let from = v
            .pointer("/result/from")
            .and_then(Value::as_u64)
            .ok_or_else(|| HandlerError::new("no range"))?;
        let to = v
            .pointer("/result/to")
            .and_then(Value::as_u64)
            .ok_or_else(|| HandlerError::new("no range"))?;
        Ok((from..=to)
            .map(|seq| {
                let body = json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": sub.channel, "data": {"seq": seq, "backfilled": true}}});
                Message::text(body.to_string())
            })
            .collect())
    }
}

impl AuthHandler for Rpc {
    fn generate_auth_data(
        &mut self,
        auth: &AuthRequest,
        _: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let Some((id, secret)) = &self.credentials else {
            return Ok(None);
        };
        let request_id = auth.id.clone();
        let message = rpc(
            &request_id,
            "public/auth",
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        );
        self.auth_id = Some(request_id);
        Ok(Some(message))
    }

    fn handle_auth_response(&mut self, response: &Message, _: &mut Context<'_>) -> AuthOutcome {
        if !self.judges_auth {
            return AuthOutcome::NotAuthResponse;
        }
        let Some(v) = Self::json(response) else {
            return AuthOutcome::NotAuthResponse;
        };
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            return AuthOutcome::NotAuthResponse;
        };
        if self.auth_id != Some(RequestId::Num(id)) {
            return AuthOutcome::NotAuthResponse;
        }
        self.auth_id = None;
        match v.get("error") {
            Some(e) => AuthOutcome::Rejected(e["message"].as_str().unwrap_or("refused").to_owned()),
            None => {
                self.token_expires = Some(Instant::now() + self.token_lifetime);
                AuthOutcome::Authenticated
            }
        }
    }

    fn needs_reauthentication(&self, _: &Context<'_>) -> bool {
        // Refresh when less than half the lifetime is left.
        self.token_expires
            .is_some_and(|t| t.saturating_duration_since(Instant::now()) < self.token_lifetime / 2)
    }
}

impl HeartbeatHandler for Rpc {
    fn configure(&mut self, _: Option<Duration>) -> Option<Duration> {
        self.platform_heartbeat
    }

    fn handle_heartbeat(
        &mut self,
        message: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let v = Self::json(message).ok_or_else(|| HandlerError::new("not JSON"))?;
        if self.answer_test_requests
            && v.pointer("/params/type").and_then(Value::as_str) == Some("test_request")
        {
            let id = ctx.next_request_id();
            ctx.send(rpc(&id, "public/test", json!({})));
        }
        Ok(())
    }

    fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
        Some(Message::text(r#"{"jsonrpc":"2.0","method":"public/ping"}"#))
    }
}

impl RateLimitHandler for Rpc {
    fn is_rate_limit_response(&self, response: &Message) -> bool {
        Self::json(response).and_then(|v| v.pointer("/error/code").and_then(Value::as_i64))
            == Some(10028)
    }

    fn handle_rate_limited(&mut self, _: &Message) -> RateLimitAction {
        RateLimitAction::Retry { after: MS(100) }
    }
}

pub fn config(url: String) -> ClientConfigBuilder {
    ClientConfig::builder(url)
        .backoff(MS(20), MS(200))
        .jitter(0.0)
        .request_timeout(Duration::from_secs(5))
}
