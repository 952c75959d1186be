//! [`BybitAdapter`]: nova's behaviours for one Bybit V5 connection.
//!
//! The adapter is sans-IO: each callback gets a message and the connection's [`Context`],
//! updates the adapter's state and queues what to send; the runtime does the I/O, numbers
//! requests, routes answers, restores subscriptions after a reconnect and authenticates again
//! first. One adapter serves one [`Endpoint`], since the endpoints answer in different shapes.
//!
//! On every connect: forget the previous connection's topics and pending acks; on `/v5/private`
//! and `/v5/trade`, authenticate (`op: auth` with a fresh `expires` and signature) before
//! anything else, so private subscriptions and orders are restored only after auth. Every
//! [`BybitConfig::ping_interval`] (20 s, Bybit's advice) `{"op":"ping"}` goes out; every pong
//! shape counts as the platform's heartbeat, and a server that stops answering is reconnected
//! by the runtime. Order-entry refusals that mean "too many requests" (`10006`, `10403`,
//! `10429`, `20003`) are sent again after [`BybitConfig::rate_limited_retry`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use nova_core::{
    AuthHandler, AuthOutcome, AuthRequest, ClientConfig, ConnectInfo, ConnectionHandler, Context,
    ErrorHandler, HandlerError, HeartbeatHandler, Message, RateLimitAction, RateLimitHandler,
    RequestId,
};
use serde_json::{Value, json};

use crate::auth::{Credentials, expires_in};
use crate::book::{BookContinuity, OrderBook};
use crate::endpoint::Endpoint;
use crate::error::RetCode;
use crate::message::{PING_OP, Peek, peek};
use crate::rate_limit::BybitLimits;

/// Bybit's advice: a ping every 20 seconds.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// The most option acks waited for at once (older ones are forgotten).
const UNLABELLED_KEPT: usize = 4096;

/// How the adapter talks to Bybit.
///
/// ```
/// use std::time::Duration;
/// use nova_bybit::{BybitConfig, Credentials, Endpoint};
///
/// let config = BybitConfig::new(Endpoint::Private)
///     .credentials(Credentials::new("key", "secret"))
///     .max_active_time(Duration::from_secs(120));
/// assert_eq!(config.url_with_options("wss://stream.bybit.com/v5/private"),
///     "wss://stream.bybit.com/v5/private?max_active_time=120s");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BybitConfig {
    /// The endpoint connected to.
    pub endpoint: Endpoint,
    /// API credentials (needed by `/v5/private` and `/v5/trade`).
    pub credentials: Option<Credentials>,
    /// How far ahead of now `expires` is set (default 10 s; see [`crate::auth`]).
    pub auth_expiry: Duration,
    /// How often `{"op":"ping"}` goes out (default 20 s).
    pub ping_interval: Duration,
    /// `max_active_time` for private and trade URLs (Bybit accepts 30 s to 600 s): the server
    /// closes the connection after it and the client reconnects. Default `None`.
    pub max_active_time: Option<Duration>,
    /// `X-BAPI-RECV-WINDOW` of order requests (default 5 s).
    pub recv_window: Duration,
    /// `Referer` header of order requests (a broker id), if any.
    pub referer: Option<String>,
    /// The order-entry limits.
    pub limits: BybitLimits,
    /// How long to wait before sending a rate-limited request again (default 1 s).
    pub rate_limited_retry: Duration,
    /// Keep a shadow book per book subscription and resubscribe when it is crossed (default
    /// `true`).
    pub check_crossed_books: bool,
    /// How a book delta's `u` must follow the last (default: consecutive).
    pub book_continuity: BookContinuity,
}

impl BybitConfig {
    /// The defaults for `endpoint`.
    #[must_use]
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            credentials: None,
            auth_expiry: Duration::from_secs(10),
            ping_interval: PING_INTERVAL,
            max_active_time: None,
            recv_window: Duration::from_secs(5),
            referer: None,
            limits: BybitLimits::default(),
            rate_limited_retry: Duration::from_secs(1),
            check_crossed_books: true,
            book_continuity: BookContinuity::Consecutive,
        }
    }

    /// Sets [`credentials`](Self::credentials).
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets [`auth_expiry`](Self::auth_expiry).
    #[must_use]
    pub fn auth_expiry(mut self, window: Duration) -> Self {
        self.auth_expiry = window;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    #[must_use]
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every;
        self
    }

    /// Sets [`max_active_time`](Self::max_active_time).
    #[must_use]
    pub fn max_active_time(mut self, time: Duration) -> Self {
        self.max_active_time = Some(time);
        self
    }

    /// Sets [`recv_window`](Self::recv_window).
    #[must_use]
    pub fn recv_window(mut self, window: Duration) -> Self {
        self.recv_window = window;
        self
    }

    /// Sets [`limits`](Self::limits).
    #[must_use]
    pub fn limits(mut self, limits: BybitLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`check_crossed_books`](Self::check_crossed_books).
    #[must_use]
    pub fn check_crossed_books(mut self, check: bool) -> Self {
        self.check_crossed_books = check;
        self
    }

    /// Sets [`book_continuity`](Self::book_continuity).
    #[must_use]
    pub fn book_continuity(mut self, continuity: BookContinuity) -> Self {
        self.book_continuity = continuity;
        self
    }

    /// `url` with `max_active_time` added when set and the endpoint takes it (whole seconds as
    /// `Ns`, shorter times as `Nms`).
    #[must_use]
    pub fn url_with_options(&self, url: &str) -> String {
        match self.max_active_time {
            Some(time) if self.endpoint.takes_max_active_time() => {
                let value = if time.subsec_millis() == 0 {
                    format!("{}s", time.as_secs())
                } else {
                    format!("{}ms", time.as_millis())
                };
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}max_active_time={value}")
            }
            _ => url.to_owned(),
        }
    }
}

/// Bybit's protocol behaviours for one connection, for [`nova_core::Client::connect`] (or use
/// [`BybitClient`](crate::BybitClient), which does).
///
/// ```no_run
/// use nova_bybit::{BybitAdapter, BybitConfig, Endpoint};
/// use nova_core::{Client, ClientConfig};
///
/// # fn run() -> Result<(), nova_core::ConfigError> {
/// let bybit = BybitConfig::new(Endpoint::Linear);
/// let config = ClientConfig::builder(Endpoint::Linear.mainnet_url()).build()?;
/// let (client, messages) = Client::connect(config, BybitAdapter::new(bybit));
/// # let _ = (client, messages); Ok(()) }
/// ```
#[derive(Debug)]
pub struct BybitAdapter {
    pub(crate) config: BybitConfig,
    /// The auth request awaiting its answer (its id, and whether it is a refresh).
    auth_pending: Option<AuthRequest>,
    authentications: u64,
    /// Topics subscribed (or being subscribed) on this connection.
    pub(crate) topics: HashSet<String>,
    /// Characters of args of those topics.
    pub(crate) args_chars: usize,
    /// Subscribe/unsubscribe requests of an option connection awaiting their ack, oldest first.
    unlabelled: Mutex<VecDeque<RequestId>>,
    /// Shadow books for the crossed-book check, per topic.
    pub(crate) shadows: Mutex<HashMap<String, OrderBook>>,
}

impl BybitAdapter {
    /// An adapter with this configuration.
    #[must_use]
    pub fn new(config: BybitConfig) -> Self {
        Self {
            config,
            auth_pending: None,
            authentications: 0,
            topics: HashSet::new(),
            args_chars: 0,
            unlabelled: Mutex::new(VecDeque::new()),
            shadows: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &BybitConfig {
        &self.config
    }

    /// The endpoint.
    #[must_use]
    pub fn endpoint(&self) -> Endpoint {
        self.config.endpoint
    }

    /// Successful authentications so far (one per connection to a private or trade endpoint;
    /// refreshes on an authenticated connection are not counted).
    #[must_use]
    pub fn authentications(&self) -> u64 {
        self.authentications
    }

    /// Remembers a subscribe/unsubscribe whose ack will come without `req_id` (option).
    pub(crate) fn expect_ack(&self, id: &RequestId) {
        if self.config.endpoint != Endpoint::Option {
            return;
        }
        if let Ok(mut queue) = self.unlabelled.lock() {
            if queue.len() >= UNLABELLED_KEPT {
                queue.pop_front();
            }
            queue.push_back(id.clone());
        }
    }

    /// The request an ack without `req_id` answers: the oldest in flight.
    pub(crate) fn next_unlabelled_ack(&self) -> Option<RequestId> {
        self.unlabelled.lock().ok()?.pop_front()
    }
}

impl ConnectionHandler for BybitAdapter {
    /// Refuses a URL that points at another endpoint than the configured one.
    fn init(&mut self, config: &ClientConfig) -> Result<(), HandlerError> {
        match Endpoint::from_url(config.url()) {
            Some(endpoint) if endpoint != self.config.endpoint => Err(HandlerError::new(format!(
                "the URL is {endpoint}, the adapter is configured for {}",
                self.config.endpoint
            ))),
            _ => Ok(()),
        }
    }

    /// A new connection has no topics, acks or books of the last one.
    fn handle_connect(
        &mut self,
        _info: &ConnectInfo,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        self.auth_pending = None;
        self.topics.clear();
        self.args_chars = 0;
        if let Ok(mut queue) = self.unlabelled.lock() {
            queue.clear();
        }
        if let Ok(mut shadows) = self.shadows.lock() {
            shadows.clear();
        }
        Ok(())
    }
}

impl ErrorHandler for BybitAdapter {}

impl AuthHandler for BybitAdapter {
    /// `op: auth` on private and trade endpoints (nothing on public ones), with `expires`
    /// [`BybitConfig::auth_expiry`] from now, carrying the runtime's request id (`req_id`, or
    /// `reqId` on `/v5/trade`). A refresh ([`AuthRequest::refresh`]) is built the same way;
    /// the runtime never asks for one, since a Bybit auth lasts as long as its connection
    /// (`needs_reauthentication` keeps its default, `false`).
    fn generate_auth_data(
        &mut self,
        auth: &AuthRequest,
        _ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let endpoint = self.config.endpoint;
        if !endpoint.needs_auth() {
            return Ok(None);
        }
        let Some(credentials) = &self.config.credentials else {
            return Err(HandlerError::new(format!(
                "{endpoint} needs credentials (BYBIT_API_KEY / BYBIT_API_SECRET)"
            )));
        };
        let args = credentials.auth_args(expires_in(self.config.auth_expiry));
        let id_field = if endpoint == Endpoint::Trade {
            "reqId"
        } else {
            "req_id"
        };
        let message = json!({id_field: auth.id.to_string(), "op": "auth", "args": args});
        self.auth_pending = Some(auth.clone());
        Ok(Some(Message::text(message.to_string())))
    }

    /// Judges the `op: auth` answer: `success` (private) or `retCode` 0 or 20001 "repeat auth"
    /// (trade). The answer that repeats the auth request's id (private) is always judged, as
    /// is any answer to that id; the trade endpoint's answer has no id and is recognised by
    /// `op: auth`. Everything else is not the answer.
    fn handle_auth_response(&mut self, response: &Message, _ctx: &mut Context<'_>) -> AuthOutcome {
        let Some(pending) = &self.auth_pending else {
            return AuthOutcome::NotAuthResponse;
        };
        let answers = match peek(response) {
            Peek::Auth(None) => true,
            Peek::Auth(Some(id)) | Peek::Response(id) => id == pending.id,
            _ => false,
        };
        if !answers {
            return AuthOutcome::NotAuthResponse;
        }
        let refresh = pending.refresh;
        self.auth_pending = None;
        let Ok(v) = response.json::<Value>() else {
            return AuthOutcome::Rejected("an unreadable auth answer".to_owned());
        };
        let accepted = match v.get("retCode").and_then(Value::as_i64) {
            Some(code) => matches!(RetCode::from_code(code), RetCode::Ok | RetCode::RepeatAuth),
            None => v.get("success").and_then(Value::as_bool) == Some(true),
        };
        if accepted {
            if !refresh {
                self.authentications += 1;
            }
            tracing::debug!(endpoint = %self.config.endpoint, refresh, "bybit authenticated");
            AuthOutcome::Authenticated
        } else {
            let reason = v
                .get("ret_msg")
                .or_else(|| v.get("retMsg"))
                .and_then(Value::as_str)
                .unwrap_or("refused");
            AuthOutcome::Rejected(format!("bybit auth refused: {reason}"))
        }
    }
}

impl HeartbeatHandler for BybitAdapter {
    /// `{"op":"ping"}` every [`BybitConfig::ping_interval`], on every endpoint.
    fn configure(&mut self, _interval: Option<Duration>) -> Option<Duration> {
        Some(self.config.ping_interval)
    }

    /// Every pong shape is the platform's heartbeat; nothing to answer.
    fn handle_heartbeat(
        &mut self,
        _message: &Message,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    /// `{"op":"ping"}` (the runtime sends it as `Operation::Heartbeat`).
    fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
        Some(Message::text(format!(r#"{{"op":"{PING_OP}"}}"#)))
    }
}

impl RateLimitHandler for BybitAdapter {
    /// A trade answer whose `retCode` means "too many requests".
    fn is_rate_limit_response(&self, response: &Message) -> bool {
        #[derive(serde::Deserialize)]
        struct Code {
            #[serde(rename = "retCode")]
            ret_code: Option<i64>,
        }
        serde_json::from_slice::<Code>(response.as_bytes())
            .ok()
            .and_then(|c| c.ret_code)
            .is_some_and(|c| RetCode::from_code(c).is_rate_limit())
    }

    /// Sends it again after [`BybitConfig::rate_limited_retry`].
    fn handle_rate_limited(&mut self, _response: &Message) -> RateLimitAction {
        RateLimitAction::Retry {
            after: self.config.rate_limited_retry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nova_core::testing::TestContext;
    use nova_core::{MessageHandler, MessageType, Sequence, Subscription, SubscriptionHandler};

    fn with_credentials(endpoint: Endpoint) -> BybitAdapter {
        BybitAdapter::new(
            BybitConfig::new(endpoint).credentials(Credentials::new("my-key", "test_secret")),
        )
    }

    /// Runs `generate_auth_data` for request `id` and returns the message as JSON.
    fn auth_message(a: &mut BybitAdapter, id: u64, refresh: bool) -> Value {
        let mut ctx = TestContext::new();
        let request = AuthRequest::new(RequestId::Num(id), refresh);
        let message = ctx
            .run(|ctx| a.generate_auth_data(&request, ctx))
            .expect("credentials are set")
            .expect("an auth message");
        assert!(
            ctx.sent_texts().is_empty(),
            "the message is returned, not queued"
        );
        assert_eq!(
            ctx.last_request_id(),
            None,
            "the id is the runtime's, not drawn"
        );
        message.json().expect("JSON")
    }

    fn judge(a: &mut BybitAdapter, answer: &str) -> AuthOutcome {
        TestContext::new().run(|ctx| a.handle_auth_response(&Message::text(answer), ctx))
    }

    #[test]
    fn the_auth_message_carries_the_runtimes_id_and_a_signature() {
        let mut a = with_credentials(Endpoint::Private);
        let before = crate::auth::now_ms();
        let v = auth_message(&mut a, 7, false);
        assert_eq!(v["req_id"], "7");
        assert_eq!(v["op"], "auth");
        assert_eq!(v["args"][0], "my-key");
        let expires = v["args"][1].as_u64().expect("expires is a number");
        assert!(expires >= before + 10_000, "expires is auth_expiry ahead");
        assert_eq!(
            v["args"][2],
            crate::auth::signature("test_secret", expires),
            "signed with the secret"
        );
        assert!(!v.to_string().contains("test_secret"));

        let mut trade = with_credentials(Endpoint::Trade);
        let v = auth_message(&mut trade, 8, false);
        assert_eq!(v["reqId"], "8", "the trade endpoint's field is reqId");
        assert!(v.get("req_id").is_none());
    }

    #[test]
    fn public_endpoints_send_no_auth_and_private_ones_need_credentials() {
        let request = AuthRequest::new(RequestId::Num(1), false);
        let mut public = BybitAdapter::new(BybitConfig::new(Endpoint::Linear));
        let mut ctx = TestContext::new();
        let none = ctx.run(|ctx| public.generate_auth_data(&request, ctx));
        assert!(matches!(none, Ok(None)));
        let mut private = BybitAdapter::new(BybitConfig::new(Endpoint::Private));
        let refused = ctx.run(|ctx| private.generate_auth_data(&request, ctx));
        assert!(refused.is_err(), "no credentials, no private connection");
    }

    #[test]
    fn the_answer_to_the_auth_id_is_judged() {
        let mut a = with_credentials(Endpoint::Private);
        let ok = r#"{"req_id":"7","success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#;
        assert_eq!(
            judge(&mut a, ok),
            AuthOutcome::NotAuthResponse,
            "nothing asked yet"
        );
        auth_message(&mut a, 7, false);
        // The runtime sees the echoed id as the response to the auth request.
        assert_eq!(
            a.message_type(&Message::text(ok)),
            MessageType::Response {
                id: RequestId::Num(7)
            }
        );
        let ticker = r#"{"topic":"tickers.X","type":"snapshot","ts":1,"data":{}}"#;
        assert_eq!(judge(&mut a, ticker), AuthOutcome::NotAuthResponse);
        let other_id = r#"{"req_id":"3","success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#;
        assert_eq!(judge(&mut a, other_id), AuthOutcome::NotAuthResponse);
        assert_eq!(judge(&mut a, ok), AuthOutcome::Authenticated);
        assert_eq!(a.authentications(), 1);
        assert_eq!(
            judge(&mut a, ok),
            AuthOutcome::NotAuthResponse,
            "judged once"
        );

        auth_message(&mut a, 9, false);
        let refused =
            r#"{"req_id":"9","success":false,"ret_msg":"Params Error","op":"auth","conn_id":"c"}"#;
        assert_eq!(
            judge(&mut a, refused),
            AuthOutcome::Rejected("bybit auth refused: Params Error".to_owned())
        );
        auth_message(&mut a, 10, false);
        let error = r#"{"req_id":"10","success":false,"ret_msg":"error:request invalid","op":""}"#;
        assert!(
            matches!(judge(&mut a, error), AuthOutcome::Rejected(_)),
            "any answer to the auth id is judged"
        );

        auth_message(&mut a, 11, true);
        let refreshed = r#"{"req_id":"11","success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#;
        assert_eq!(judge(&mut a, refreshed), AuthOutcome::Authenticated);
        assert_eq!(
            a.authentications(),
            1,
            "a refresh is not a new authentication"
        );
    }

    #[test]
    fn the_trade_auth_answer_has_no_id_and_is_judged_by_op() {
        let mut a = with_credentials(Endpoint::Trade);
        auth_message(&mut a, 1, false);
        let ok = r#"{"retCode":0,"retMsg":"OK","op":"auth","connId":"c"}"#;
        assert_eq!(a.message_type(&Message::text(ok)), MessageType::Unknown);
        let order = r#"{"reqId":"2","retCode":0,"retMsg":"OK","op":"order.create","data":{}}"#;
        assert_eq!(judge(&mut a, order), AuthOutcome::NotAuthResponse);
        assert_eq!(judge(&mut a, ok), AuthOutcome::Authenticated);

        auth_message(&mut a, 3, false);
        let repeat = r#"{"retCode":20001,"retMsg":"Repeat auth","op":"auth","connId":"c"}"#;
        assert_eq!(judge(&mut a, repeat), AuthOutcome::Authenticated);
        auth_message(&mut a, 4, false);
        let bad = r#"{"retCode":10004,"retMsg":"Invalid sign","op":"auth","connId":"c"}"#;
        assert_eq!(
            judge(&mut a, bad),
            AuthOutcome::Rejected("bybit auth refused: Invalid sign".to_owned())
        );
    }

    #[test]
    fn the_heartbeat_is_a_ping_returned_not_queued() {
        let mut a = BybitAdapter::new(BybitConfig::new(Endpoint::Spot));
        assert_eq!(a.configure(None), Some(PING_INTERVAL));
        let mut ctx = TestContext::new();
        let ping = ctx
            .run(|ctx| a.generate_heartbeat(ctx))
            .expect("a ping every interval");
        assert_eq!(ping.json::<Value>().ok(), Some(json!({"op": "ping"})));
        let pong = Message::text(r#"{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}"#);
        ctx.run(|ctx| a.handle_heartbeat(&pong, ctx))
            .expect("a pong is fine");
        assert!(
            ctx.take_sent().is_empty(),
            "nothing queued: the runtime sends the ping as a heartbeat"
        );
    }

    #[test]
    fn every_pong_shape_is_a_heartbeat() {
        let mut a = BybitAdapter::new(BybitConfig::new(Endpoint::Linear));
        for pong in [
            r#"{"success":true,"ret_msg":"pong","conn_id":"0970e817","op":"ping"}"#,
            r#"{"success":true,"ret_msg":"pong","conn_id":"465772b1","req_id":"","op":"ping"}"#,
            r#"{"args":["1672916271846"],"op":"pong"}"#,
            r#"{"req_id":"test","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}"#,
            r#"{"retCode":0,"retMsg":"OK","op":"pong","data":["1711002002529"],"connId":"cnt5leec0hvan15eukcg-2v"}"#,
        ] {
            assert_eq!(
                a.message_type(&Message::text(pong)),
                MessageType::Heartbeat,
                "{pong}"
            );
        }
    }

    #[test]
    fn acks_match_by_req_id_and_option_acks_by_order() {
        let mut a = BybitAdapter::new(BybitConfig::new(Endpoint::Linear));
        let ack = Message::text(
            r#"{"success":true,"ret_msg":"","conn_id":"c","req_id":"12","op":"subscribe"}"#,
        );
        assert_eq!(
            a.message_type(&ack),
            MessageType::Response {
                id: RequestId::Num(12)
            }
        );
        let mut o = BybitAdapter::new(BybitConfig::new(Endpoint::Option));
        o.expect_ack(&RequestId::Num(3));
        o.expect_ack(&RequestId::Num(4));
        let resp = Message::text(
            r#"{"success":true,"conn_id":"c","data":{"failTopics":[],"successTopics":["x"]},"type":"COMMAND_RESP"}"#,
        );
        assert_eq!(
            o.message_type(&resp),
            MessageType::Response {
                id: RequestId::Num(3)
            }
        );
        assert_eq!(
            o.message_type(&resp),
            MessageType::Response {
                id: RequestId::Num(4)
            }
        );
        assert_eq!(o.message_type(&resp), MessageType::Unknown);
    }

    #[test]
    fn books_are_sequenced_and_a_crossed_book_breaks_the_sequence() {
        let mut a = BybitAdapter::new(BybitConfig::new(Endpoint::Linear));
        let book = |kind: &str, u: u64, bid: &str| {
            Message::text(format!(
                r#"{{"topic":"orderbook.50.X","type":"{kind}","ts":1,"data":{{"s":"X","b":[["{bid}","1"]],"a":[["11","1"]],"u":{u},"seq":1}}}}"#
            ))
        };
        // One look: the push is parsed into a BookMessage (handed over) and sequenced.
        let mut position = |message: &Message| match a.message_type(message) {
            MessageType::Subscription {
                route: "orderbook.50.X",
                data: Some(data),
                sequence,
                ..
            } => {
                assert!(data.get::<crate::BookMessage>().is_some());
                sequence
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            position(&book("snapshot", 5, "10")),
            Some(Sequence::snapshot(5))
        );
        assert_eq!(position(&book("delta", 6, "10")), Some(Sequence::next(6)));
        assert_eq!(
            position(&book("delta", 1, "10")),
            Some(Sequence::snapshot(1)),
            "u == 1 restarts"
        );
        assert_eq!(
            position(&book("delta", 2, "12")),
            Some(Sequence::follows(2, 2)),
            "crossed"
        );
        // The sequence callback serves messages the runtime got otherwise.
        let sub = Subscription::new("1", "orderbook.50.X");
        assert_eq!(
            a.sequence(&sub, &book("delta", 7, "10")),
            Some(Sequence::next(7))
        );
        let tickers = Subscription::new("2", "tickers.X");
        assert_eq!(a.sequence(&tickers, &book("delta", 3, "10")), None);
    }

    #[test]
    fn without_the_crossed_book_check_a_book_is_parsed_when_the_consumer_asks() {
        let mut a =
            BybitAdapter::new(BybitConfig::new(Endpoint::Linear).check_crossed_books(false));
        let push = Message::text(
            r#"{"topic":"orderbook.50.X","type":"delta","ts":1,"data":{"s":"X","b":[["12","1"]],"a":[["11","1"]],"u":6,"seq":1}}"#,
        );
        let MessageType::Subscription {
            route: "orderbook.50.X",
            data: Some(data),
            sequence,
            ..
        } = a.message_type(&push)
        else {
            panic!("not book data");
        };
        // Sequenced as before (no crossed-book break: the check is off), the parse deferred.
        assert_eq!(sequence, Some(Sequence::next(6)));
        assert!(data.is_deferred());
        let delivery = nova_core::Delivery::new(push.clone(), Some(data));
        let book = delivery
            .get::<crate::BookMessage>()
            .expect("parsed when asked");
        assert_eq!(book.data.u, 6);
        // Not a book push after all: routed, with nothing to parse and no position.
        let odd = Message::text(r#"{"topic":"orderbook.50.X","type":"delta","data":[]}"#);
        assert!(matches!(
            a.message_type(&odd),
            MessageType::Subscription {
                data: None,
                sequence: None,
                ..
            }
        ));
    }

    #[test]
    fn trade_rate_limit_answers_are_recognised() {
        let a = BybitAdapter::new(BybitConfig::new(Endpoint::Trade));
        for (code, limited) in [
            (20003, true),
            (10006, true),
            (10429, true),
            (10403, true),
            (110_001, false),
            (0, false),
        ] {
            let m = Message::text(format!(
                r#"{{"reqId":"1","retCode":{code},"retMsg":"x","op":"order.create"}}"#
            ));
            assert_eq!(a.is_rate_limit_response(&m), limited, "{code}");
        }
    }
}
