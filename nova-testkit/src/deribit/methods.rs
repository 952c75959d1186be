//! The JSON-RPC methods: one connection's session and the answer to each request.
//!
//! [`handle_text`] parses a request, charges its credits, checks authorization for `private/*`
//! methods and dispatches by method name. It never does I/O: it returns a [`Reply`] that the
//! connection task writes, plus events it published for other connections.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nova_core::jsonrpc::{self, ErrorObject, INVALID_PARAMS};
use serde_json::{Map, Value, json};

use super::auth::{self, Rng};
use super::channel::Spec;
use super::credits::Credits;
use super::market::{self, Event, INSTRUMENTS, Order, instrument, now_ms, now_us};
use super::{Shared, bump, lock};

/// The version `public/hello` and `public/test` report.
const VERSION: &str = "1.2.26";
/// The largest heartbeat interval accepted, in (scaled) seconds: a week.
const MAX_HEARTBEAT_INTERVAL: f64 = 604_800.0;
/// How many access tokens of one connection stay valid at once (older ones are forgotten).
const TOKENS_KEPT: usize = 4;

/// A JSON-RPC error object (nova-core's): code, message, optional data.
pub(super) type RpcError = ErrorObject;

fn err(code: i64, message: &'static str) -> RpcError {
    ErrorObject::new(code, message)
}

fn invalid(reason: &str) -> RpcError {
    ErrorObject::new(INVALID_PARAMS, "Invalid params").with_data(json!({"reason": reason}))
}

/// Order methods, drawing on the matching-engine credits.
fn is_order_method(method: &str) -> bool {
    matches!(
        method,
        "private/buy"
            | "private/sell"
            | "private/edit"
            | "private/edit_by_label"
            | "private/cancel"
            | "private/cancel_all"
            | "private/cancel_all_by_currency"
            | "private/cancel_all_by_instrument"
            | "private/cancel_by_label"
            | "private/close_position"
    )
}

/// The authentication of a connection.
#[derive(Debug)]
pub(super) struct Auth {
    pub(super) client_id: String,
    tokens: VecDeque<(String, Instant)>,
    refresh: Option<String>,
    /// The simulator's refresh generation when `refresh` was issued.
    generation: u64,
}

/// One connection's state.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: u64,
    pub(super) auth: Option<Auth>,
    /// The heartbeat interval set by `public/set_heartbeat` (scaled); `None`: off.
    pub(super) heartbeat: Option<Duration>,
    /// Set when `public/set_heartbeat` or `disable_heartbeat` changed the heartbeat.
    pub(super) heartbeat_changed: bool,
    /// Set when a `public/test` arrived (the answer to a test request).
    pub(super) tested: bool,
    /// Channels subscribed, with what they select.
    pub(super) subscriptions: BTreeMap<String, Spec>,
    /// For each book channel: the `change_id` its subscriber has seen up to.
    pub(super) book_marks: HashMap<String, u64>,
    credits: Option<Credits>,
    engine_credits: Option<Credits>,
    rng: Rng,
}

impl Session {
    pub(super) fn new(shared: &Shared, id: u64, now: Instant) -> Self {
        Self {
            id,
            auth: None,
            heartbeat: None,
            heartbeat_changed: false,
            tested: false,
            subscriptions: BTreeMap::new(),
            book_marks: HashMap::new(),
            credits: shared.options.credits.map(|c| Credits::new(c, now)),
            engine_credits: shared
                .options
                .matching_engine_credits
                .map(|c| Credits::new(c, now)),
            rng: Rng::new(shared.options.seed ^ id.wrapping_mul(0x5851_F42D_4C95_7F2D)),
        }
    }

    /// The account this connection acts for, while its latest token lives.
    fn account(&self, now: Instant, token: Option<&str>) -> Option<&str> {
        let auth = self.auth.as_ref()?;
        let live = match token {
            Some(t) => auth.tokens.iter().any(|(x, exp)| x == t && *exp > now),
            None => auth.tokens.back().is_some_and(|(_, exp)| *exp > now),
        };
        live.then_some(auth.client_id.as_str())
    }

    /// The client id this connection authenticated as (alive or expired).
    pub(super) fn client_id(&self) -> Option<&str> {
        self.auth.as_ref().map(|a| a.client_id.as_str())
    }
}

/// What to write back for one request.
#[derive(Debug, Default)]
pub(super) struct Reply {
    /// The response, if any.
    pub(super) text: Option<String>,
    /// Notifications to send after the response (book snapshots after a subscribe ack).
    pub(super) after: Vec<String>,
    /// Close the connection after writing, with this code and reason.
    pub(super) close: Option<(u16, String)>,
}

/// A notification frame for `channel` with already-serialized `data`.
pub(super) fn notification(channel: &str, data: &str) -> String {
    let channel = Value::from(channel);
    format!(
        r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":{channel},"data":{data}}}}}"#
    )
}

fn envelope(shared: &Shared, id: &Value, us_in: u64, outcome: Result<Value, RpcError>) -> String {
    let us_out = now_us();
    let mut body = Map::new();
    body.insert("jsonrpc".into(), json!(jsonrpc::VERSION));
    if !id.is_null() {
        body.insert("id".into(), id.clone());
    }
    match outcome {
        Ok(result) => {
            body.insert("result".into(), result);
        }
        Err(error) => {
            body.insert("error".into(), json!(error));
        }
    }
    body.insert("testnet".into(), json!(shared.options.testnet));
    body.insert("usIn".into(), json!(us_in));
    body.insert("usOut".into(), json!(us_out));
    body.insert("usDiff".into(), json!(us_out.saturating_sub(us_in)));
    Value::Object(body).to_string()
}

/// Answers one text frame.
pub(super) fn handle_text(
    shared: &Shared,
    session: &mut Session,
    text: &str,
    now: Instant,
) -> Reply {
    let us_in = now_us();
    let mut reply = Reply::default();
    let request: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            reply.text = Some(envelope(
                shared,
                &Value::Null,
                us_in,
                Err(err(jsonrpc::PARSE_ERROR, "Parse error")),
            ));
            return reply;
        }
    };
    bump(&shared.counters.requests);
    shared.with_connection(session.id, |c| c.requests += 1);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str);
    let (Some(method), false) = (method, id.is_null() || !request.is_object()) else {
        reply.text = Some(envelope(
            shared,
            &id,
            us_in,
            Err(err(jsonrpc::INVALID_REQUEST, "Invalid Request")),
        ));
        return reply;
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            reply.text = Some(envelope(
                shared,
                &id,
                us_in,
                Err(invalid("params must be an object")),
            ));
            return reply;
        }
    };
    let bucket = if is_order_method(method) {
        session.engine_credits.as_mut()
    } else {
        session.credits.as_mut()
    };
    if let Some(bucket) = bucket {
        if !bucket.take(now) {
            bump(&shared.counters.rate_limited);
            reply.text = Some(envelope(
                shared,
                &id,
                us_in,
                Err(err(10028, "too_many_requests")),
            ));
            if shared.options.close_on_rate_limit {
                reply.close = Some((1000, "too_many_requests".to_owned()));
            }
            return reply;
        }
    }
    let outcome = call(shared, session, method, &params, now, &mut reply.after);
    reply.text = Some(envelope(shared, &id, us_in, outcome));
    reply
}

fn call(
    shared: &Shared,
    session: &mut Session,
    method: &str,
    params: &Value,
    now: Instant,
    after: &mut Vec<String>,
) -> Result<Value, RpcError> {
    let str_param = |name: &str| params.get(name).and_then(Value::as_str);
    let account = if method.starts_with("private/") {
        match session.account(now, str_param("access_token")) {
            Some(a) => Some(a.to_owned()),
            None => {
                bump(&shared.counters.unauthorized);
                return Err(err(13009, "unauthorized"));
            }
        }
    } else {
        None
    };
    match method {
        "public/hello" | "public/test" => {
            if method == "public/test" {
                session.tested = true;
                if str_param("expected_result") == Some("exception") {
                    return Err(err(11094, "internal_server_error"));
                }
            }
            Ok(json!({"version": VERSION}))
        }
        "public/get_time" => Ok(json!(now_ms())),
        "public/set_heartbeat" => {
            let interval = params
                .get("interval")
                .and_then(Value::as_f64)
                .ok_or_else(|| invalid("interval is required"))?;
            #[allow(clippy::cast_precision_loss)]
            let min = shared.options.min_heartbeat_interval as f64;
            if !interval.is_finite() || interval < min || interval > MAX_HEARTBEAT_INTERVAL {
                return Err(ErrorObject::new(11029, "invalid_arguments").with_data(json!({"reason": format!("interval must be between {min} and {MAX_HEARTBEAT_INTERVAL}")})));
            }
            let every = shared.options.heartbeat_unit.as_secs_f64() * interval;
            let every = Duration::try_from_secs_f64(every).map_err(|_| {
                ErrorObject::new(11029, "invalid_arguments")
                    .with_data(json!({"reason": "interval too large"}))
            })?;
            session.heartbeat = Some(every);
            session.heartbeat_changed = true;
            Ok(json!("ok"))
        }
        "public/disable_heartbeat" => {
            session.heartbeat = None;
            session.heartbeat_changed = true;
            Ok(json!("ok"))
        }
        "public/auth" => authenticate(shared, session, params, now),
        "public/subscribe" | "private/subscribe" => subscribe(
            shared,
            session,
            params,
            method == "private/subscribe",
            now,
            after,
        ),
        "public/unsubscribe" | "private/unsubscribe" => {
            let channels = channels(params)?;
            let removed: Vec<String> = channels
                .into_iter()
                .filter(|c| session.subscriptions.remove(c).is_some())
                .collect();
            for c in &removed {
                session.book_marks.remove(c);
            }
            sync_subscriptions(shared, session);
            Ok(json!(removed))
        }
        "public/unsubscribe_all" | "private/unsubscribe_all" => {
            session.subscriptions.clear();
            session.book_marks.clear();
            sync_subscriptions(shared, session);
            Ok(json!("ok"))
        }
        "public/get_instruments" => get_instruments(params),
        "public/ticker" => {
            let name = str_param("instrument_name")
                .ok_or_else(|| invalid("instrument_name is required"))?;
            lock(&shared.market)
                .ticker(name)
                .ok_or_else(|| err(13020, "not_found"))
        }
        "private/buy" | "private/sell" => {
            let account = account.unwrap_or_default();
            place(shared, &account, method == "private/buy", params)
        }
        "private/cancel" => {
            let account = account.unwrap_or_default();
            cancel(shared, &account, params)
        }
        "private/get_positions" => {
            let account = account.unwrap_or_default();
            get_positions(shared, &account, params)
        }
        _ => Err(err(-32601, "Method not found")),
    }
}

fn channels(params: &Value) -> Result<Vec<String>, RpcError> {
    params
        .get("channels")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|c| c.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| invalid("channels must be an array of strings"))
}

fn authenticate(
    shared: &Shared,
    session: &mut Session,
    params: &Value,
    now: Instant,
) -> Result<Value, RpcError> {
    let str_param = |name: &str| params.get(name).and_then(Value::as_str);
    let fail = |e: RpcError| {
        bump(&shared.counters.auth_failures);
        Err(e)
    };
    let known_secret = |id: &str| {
        shared
            .options
            .clients
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, s)| s.clone())
    };
    let client_id = match str_param("grant_type") {
        Some("client_credentials") => {
            let (Some(id), Some(secret)) = (str_param("client_id"), str_param("client_secret"))
            else {
                return fail(invalid("client_id and client_secret are required"));
            };
            match known_secret(id) {
                Some(s) if auth::same(&s, secret) => id.to_owned(),
                _ => return fail(err(13004, "invalid_credentials")),
            }
        }
        Some("client_signature") => {
            let (Some(id), Some(timestamp), Some(signature)) = (
                str_param("client_id"),
                params.get("timestamp").and_then(Value::as_u64),
                str_param("signature"),
            ) else {
                return fail(invalid("client_id, timestamp and signature are required"));
            };
            let nonce = str_param("nonce").unwrap_or("");
            let data = str_param("data").unwrap_or("");
            let Some(secret) = known_secret(id) else {
                return fail(err(13004, "invalid_credentials"));
            };
            let window =
                u64::try_from(shared.options.signature_window.as_millis()).unwrap_or(u64::MAX);
            let age = now_ms().abs_diff(timestamp);
            if age > window {
                return fail(
                    ErrorObject::new(13009, "unauthorized")
                        .with_data(json!({"reason": "timestamp out of the window"})),
                );
            }
            if !auth::same(&auth::signature(&secret, timestamp, nonce, data), signature) {
                return fail(
                    ErrorObject::new(13009, "unauthorized")
                        .with_data(json!({"reason": "bad signature"})),
                );
            }
            if !lock(&shared.nonces).use_once(id, nonce, now, shared.options.signature_window) {
                return fail(
                    ErrorObject::new(13009, "unauthorized")
                        .with_data(json!({"reason": "nonce already used"})),
                );
            }
            id.to_owned()
        }
        Some("refresh_token") => {
            let token = str_param("refresh_token");
            let valid = session.auth.as_ref().is_some_and(|a| {
                a.refresh.is_some()
                    && a.refresh.as_deref() == token
                    && a.generation == shared.refresh_generation.load(Ordering::Relaxed)
            });
            match (&session.auth, valid) {
                (Some(a), true) => a.client_id.clone(),
                _ => return fail(err(13009, "unauthorized")),
            }
        }
        _ => {
            return fail(invalid(
                "grant_type must be client_credentials, client_signature or refresh_token",
            ));
        }
    };
    if str_param("grant_type") == Some("refresh_token") {
        bump(&shared.counters.refreshes);
    } else {
        bump(&shared.counters.auths);
    }
    let lifetime = shared.token_lifetime();
    let issued = now_ms();
    let tag = format!("{}", session.id);
    let access = session.rng.token(issued, &format!("A{tag}"));
    let refresh = session.rng.token(issued, &format!("R{tag}"));
    let auth = session.auth.get_or_insert_with(|| Auth {
        client_id: client_id.clone(),
        tokens: VecDeque::new(),
        refresh: None,
        generation: 0,
    });
    if auth.client_id != client_id {
        auth.tokens.clear();
        auth.client_id.clone_from(&client_id);
    }
    auth.tokens.push_back((access.clone(), now + lifetime));
    while auth.tokens.len() > TOKENS_KEPT {
        auth.tokens.pop_front();
    }
    auth.refresh = Some(refresh.clone());
    auth.generation = shared.refresh_generation.load(Ordering::Relaxed);
    shared.with_connection(session.id, |c| c.client_id = Some(client_id));
    let mut result = json!({
        "access_token": access,
        "expires_in": lifetime.as_secs(),
        "refresh_token": refresh,
        "scope": "connection mainaccount",
        "enabled_features": [],
        "token_type": "bearer",
    });
    if let Some(state) = params.get("state") {
        result["state"] = state.clone();
    }
    Ok(result)
}

fn subscribe(
    shared: &Shared,
    session: &mut Session,
    params: &Value,
    private: bool,
    now: Instant,
    after: &mut Vec<String>,
) -> Result<Value, RpcError> {
    let requested = channels(params)?;
    let authorized = session
        .account(now, params.get("access_token").and_then(Value::as_str))
        .is_some();
    if private && !authorized {
        bump(&shared.counters.unauthorized);
        return Err(err(13009, "unauthorized"));
    }
    let mut subscribed = Vec::new();
    for channel in requested {
        let Some(spec) = Spec::parse(&channel) else {
            continue;
        };
        if spec.is_private() && !private {
            continue;
        }
        if channel.ends_with(".raw") && !authorized {
            continue;
        }
        if let Spec::Book { instrument, raw } = &spec {
            if let Some((change_id, data)) = lock(&shared.market).snapshot(instrument) {
                session.book_marks.insert(channel.clone(), change_id);
                let data = if *raw {
                    data
                } else {
                    with_type(&data, "snapshot")
                };
                after.push(notification(&channel, &data));
            }
        }
        session.subscriptions.insert(channel.clone(), spec);
        subscribed.push(channel);
    }
    sync_subscriptions(shared, session);
    shared.with_connection(session.id, |c| c.subscribe_count += subscribed.len() as u64);
    Ok(json!(subscribed))
}

/// `data` (a JSON object) with `"type": kind` first.
pub(super) fn with_type(data: &str, kind: &str) -> String {
    match data.strip_prefix('{') {
        Some(rest) if rest.starts_with('}') => format!(r#"{{"type":"{kind}"}}"#),
        Some(rest) => format!(r#"{{"type":"{kind}",{rest}"#),
        None => data.to_owned(),
    }
}

fn sync_subscriptions(shared: &Shared, session: &Session) {
    let channels = session.subscriptions.keys().cloned().collect();
    shared.with_connection(session.id, |c| c.subscriptions = channels);
}

fn get_instruments(params: &Value) -> Result<Value, RpcError> {
    let currency = params
        .get("currency")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("currency is required"))?;
    let kind = params.get("kind").and_then(Value::as_str);
    let list: Vec<Value> = INSTRUMENTS
        .iter()
        .filter(|i| currency == "any" || i.currency == currency)
        .filter(|i| kind.is_none_or(|k| k == i.kind))
        .map(|i| {
            let mut v = json!({
                "instrument_name": i.name, "kind": i.kind, "base_currency": i.currency,
                "quote_currency": "USD", "settlement_currency": i.currency,
                "counter_currency": "USD", "tick_size": i.tick_size,
                "contract_size": i.contract_size, "min_trade_amount": i.min_trade_amount,
                "is_active": true, "expiration_timestamp": i.expiration_timestamp,
                "creation_timestamp": 1_534_167_754_000u64,
                "settlement_period": if i.name.ends_with("PERPETUAL") { "perpetual" } else { "month" },
                "instrument_type": "reversed",
                "price_index": i.index, "maker_commission": 0.0, "taker_commission": 0.0005,
            });
            if i.kind == "option" {
                v["option_type"] = json!("call");
                v["strike"] = json!(60_000.0);
            }
            v
        })
        .collect();
    Ok(json!(list))
}

fn place(shared: &Shared, account: &str, buy: bool, params: &Value) -> Result<Value, RpcError> {
    let name = params
        .get("instrument_name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("instrument_name is required"))?;
    let inst = instrument(name).ok_or_else(|| invalid("unknown instrument_name"))?;
    let amount = params
        .get("amount")
        .and_then(Value::as_f64)
        .filter(|a| a.is_finite() && *a > 0.0)
        .ok_or_else(|| invalid("amount must be a positive number"))?;
    let order_type = params
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("limit");
    let limit = params.get("price").and_then(Value::as_f64);
    if order_type == "limit" && limit.is_none() {
        return Err(invalid("price is required for limit orders"));
    }
    if order_type != "limit" && order_type != "market" {
        return Err(invalid("type must be limit or market"));
    }
    let label = params.get("label").and_then(Value::as_str).unwrap_or("");
    let (bid, ask) = lock(&shared.market)
        .best(name)
        .ok_or_else(|| err(13020, "not_found"))?;
    let touch = if buy { ask } else { bid };
    let fills = match (order_type, limit) {
        ("market", _) => true,
        (_, Some(p)) => (buy && p >= ask) || (!buy && p <= bid),
        _ => false,
    };
    let now = now_ms();
    let mut accounts = lock(&shared.accounts);
    let acct = accounts.entry(account.to_owned()).or_default();
    acct.next_order_id += 1;
    let order_id = format!("{}-{}", inst.currency, 5_000_000 + acct.next_order_id);
    let direction = if buy { "buy" } else { "sell" };
    let order = json!({
        "time_in_force": "good_til_cancelled", "replaced": false, "reduce_only": false,
        "price": if order_type == "market" { touch } else { limit.unwrap_or(touch) },
        "post_only": false, "order_type": order_type,
        "order_state": if fills { "filled" } else { "open" },
        "order_id": order_id, "max_show": amount, "last_update_timestamp": now,
        "label": label, "is_liquidation": false, "instrument_name": inst.name,
        "filled_amount": if fills { amount } else { 0.0 }, "direction": direction,
        "creation_timestamp": now, "average_price": if fills { touch } else { 0.0 },
        "api": true, "amount": amount,
    });
    let mut trades = Vec::new();
    if fills {
        acct.fill(inst.name, if buy { amount } else { -amount }, touch);
        let trade_id = lock(&shared.market).trade_id();
        trades.push(json!({
            "trade_seq": trade_id, "trade_id": trade_id.to_string(), "timestamp": now,
            "tick_direction": 1, "state": "filled", "self_trade": false, "reduce_only": false,
            "price": touch, "post_only": false, "order_type": order_type, "order_id": order_id,
            "matching_id": Value::Null, "mark_price": touch, "liquidity": "T",
            "instrument_name": inst.name, "index_price": touch, "fee": amount * 0.0005 / touch.max(1.0),
            "fee_currency": inst.currency, "direction": direction, "amount": amount,
            "label": label,
        }));
    } else {
        acct.orders.insert(
            order_id.clone(),
            Order {
                json: order.clone(),
                instrument: inst.name,
            },
        );
    }
    drop(accounts);
    shared.publish(Event::Order {
        account: account.to_owned(),
        instrument: inst.name,
        data: order.to_string(),
    });
    if !trades.is_empty() {
        shared.publish(Event::UserTrades {
            account: account.to_owned(),
            instrument: inst.name,
            data: Value::from(trades.clone()).to_string(),
        });
    }
    Ok(json!({"order": order, "trades": trades}))
}

fn cancel(shared: &Shared, account: &str, params: &Value) -> Result<Value, RpcError> {
    let order_id = params
        .get("order_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("order_id is required"))?;
    let mut accounts = lock(&shared.accounts);
    let order = accounts
        .get_mut(account)
        .and_then(|a| a.orders.remove(order_id))
        .ok_or_else(|| err(10004, "order_not_found"))?;
    drop(accounts);
    let mut json = order.json;
    json["order_state"] = json!("cancelled");
    json["last_update_timestamp"] = json!(now_ms());
    shared.publish(Event::Order {
        account: account.to_owned(),
        instrument: order.instrument,
        data: json.to_string(),
    });
    Ok(json)
}

fn get_positions(shared: &Shared, account: &str, params: &Value) -> Result<Value, RpcError> {
    let currency = params
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or("any");
    let kind = params.get("kind").and_then(Value::as_str);
    let positions: Vec<(&'static str, market::Position)> = lock(&shared.accounts)
        .get(account)
        .map(|a| a.positions.iter().map(|(k, v)| (*k, *v)).collect())
        .unwrap_or_default();
    let market = lock(&shared.market);
    let list: Vec<Value> = positions
        .into_iter()
        .filter_map(|(name, p)| Some((instrument(name)?, p)))
        .filter(|(i, _)| currency == "any" || i.currency == currency)
        .filter(|(i, _)| kind.is_none_or(|k| k == i.kind))
        .map(|(i, p)| {
            let mark = market.best(i.name).map_or(p.average_price, |(b, a)| (a + b) / 2.0);
            let pnl = if p.average_price > 0.0 && mark > 0.0 {
                p.size * (1.0 / p.average_price - 1.0 / mark)
            } else {
                0.0
            };
            json!({
                "instrument_name": i.name, "kind": i.kind, "size": p.size,
                "direction": if p.size > 0.0 { "buy" } else if p.size < 0.0 { "sell" } else { "zero" },
                "average_price": p.average_price, "mark_price": mark, "index_price": mark,
                "floating_profit_loss": pnl, "total_profit_loss": pnl,
                "realized_profit_loss": 0.0, "size_currency": if mark > 0.0 { p.size / mark } else { 0.0 },
                "settlement_price": mark, "leverage": 50, "delta": if mark > 0.0 { p.size / mark } else { 0.0 },
                "estimated_liquidation_price": Value::Null, "initial_margin": 0.0,
                "maintenance_margin": 0.0, "open_orders_margin": 0.0,
            })
        })
        .collect();
    Ok(json!(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_type_prefixes() {
        assert_eq!(
            with_type(r#"{"a":1}"#, "change"),
            r#"{"type":"change","a":1}"#
        );
        assert_eq!(with_type("{}", "snapshot"), r#"{"type":"snapshot"}"#);
    }

    #[test]
    fn order_methods() {
        assert!(is_order_method("private/buy"));
        assert!(is_order_method("private/cancel"));
        assert!(!is_order_method("private/get_positions"));
    }

    #[test]
    fn notification_shape() {
        let n: Value =
            serde_json::from_str(&notification("ticker.X.raw", r#"{"a":1}"#)).unwrap_or_default();
        assert_eq!(n["method"], "subscription");
        assert_eq!(n["params"]["channel"], "ticker.X.raw");
        assert_eq!(n["params"]["data"]["a"], 1);
    }
}
