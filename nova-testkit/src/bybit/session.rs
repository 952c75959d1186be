//! One connection's session: what it subscribed, whether it authenticated, its order-entry
//! budget; the answer to each request and the pushes each market event makes.
//!
//! [`handle_text`] never does I/O: it returns the texts the connection task writes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use serde_json::{Value, json};

use super::auth::{self, AuthError};
use super::endpoint::{self, Endpoint};
use super::market::{BookState, Event, Level, Update};
use super::orders;
use super::topic::Spec;
use super::{Shared, bump, lock};

/// Most args characters on one public connection (the docs).
const ARGS_CHARS_LIMIT: usize = 21_000;
/// Most topics on one option connection (the docs).
const OPTION_TOPICS_LIMIT: usize = 2000;
/// The longest `reqId` accepted (the docs).
const REQ_ID_MAX: usize = 36;
/// How many `reqId`s a session remembers for the uniqueness check.
const REQ_IDS_KEPT: usize = 10_000;
/// The default recv window of order entry, in ms (the docs).
const DEFAULT_RECV_WINDOW: u64 = 5000;

/// One connection's state.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: u64,
    pub(super) endpoint: Endpoint,
    pub(super) conn_id: String,
    pub(super) api_key: Option<String>,
    pub(super) topics: BTreeMap<String, Spec>,
    /// Per book topic: the last `u` sent and the book generation it belongs to.
    book_marks: HashMap<String, (u64, u64)>,
    /// Ticker topics that got their first (snapshot) push.
    tickers_started: HashSet<String>,
    req_ids: HashSet<String>,
    req_order: VecDeque<String>,
    tokens: f64,
    refilled: Instant,
    /// Set when a ping arrived (the connection task resets its idle timer).
    pub(super) pinged: bool,
    next_push: u64,
}

impl Session {
    pub(super) fn new(shared: &Shared, id: u64, endpoint: Endpoint) -> Self {
        Self {
            id,
            endpoint,
            conn_id: format!(
                "sim{:08x}-{id}",
                shared.options.seed ^ id.wrapping_mul(0x9E37)
            ),
            api_key: None,
            topics: BTreeMap::new(),
            book_marks: HashMap::new(),
            tickers_started: HashSet::new(),
            req_ids: HashSet::new(),
            req_order: VecDeque::new(),
            tokens: f64::from(shared.options.order_limit.0),
            refilled: Instant::now(),
            pinged: false,
            next_push: 0,
        }
    }

    fn take_token(&mut self, shared: &Shared) -> bool {
        let (burst, per_second) = shared.options.order_limit;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn remember_req_id(&mut self, id: &str) -> bool {
        if !self.req_ids.insert(id.to_owned()) {
            return false;
        }
        self.req_order.push_back(id.to_owned());
        while self.req_order.len() > REQ_IDS_KEPT {
            if let Some(old) = self.req_order.pop_front() {
                self.req_ids.remove(&old);
            }
        }
        true
    }
}

/// The answer to one text frame.
pub(super) fn handle_text(shared: &Shared, session: &mut Session, text: &str) -> Vec<String> {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return vec![error_reply(session, "", None, "error:request invalid")];
    };
    let op = request.get("op").and_then(Value::as_str).unwrap_or("");
    let args: &[Value] = request
        .get("args")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if session.endpoint == Endpoint::Trade {
        return vec![trade_op(shared, session, &request, op, args)];
    }
    let req_id = request.get("req_id").and_then(Value::as_str);
    match op {
        "ping" => {
            bump(&shared.counters.pings);
            session.pinged = true;
            shared.with_connection(session.id, |c| c.log("ping"));
            vec![
                endpoint::pong(session.endpoint, req_id, &session.conn_id, shared.now_ms())
                    .to_string(),
            ]
        }
        "auth" => vec![auth_op(shared, session, req_id, args)],
        "subscribe" => subscribe(shared, session, req_id, args),
        "unsubscribe" => vec![unsubscribe(shared, session, req_id, args)],
        other => vec![error_reply(session, other, req_id, "error:unknown op")],
    }
}

fn error_reply(session: &Session, op: &str, req_id: Option<&str>, reason: &str) -> String {
    let mut v = json!({"success": false, "ret_msg": reason, "conn_id": session.conn_id, "op": op});
    if let Some(id) = req_id {
        v["req_id"] = json!(id);
    }
    v.to_string()
}

fn auth_op(shared: &Shared, session: &mut Session, req_id: Option<&str>, args: &[Value]) -> String {
    if session.endpoint != Endpoint::Private {
        return error_reply(session, "auth", req_id, "error:auth is for private streams");
    }
    let result = verify(shared, args);
    let (success, ret_msg) = match &result {
        Ok(key) => {
            session.api_key = Some(key.clone());
            (true, "")
        }
        Err(_) => (false, "Params Error"),
    };
    log_auth(shared, session, &result);
    let mut v =
        json!({"success": success, "ret_msg": ret_msg, "op": "auth", "conn_id": session.conn_id});
    if let Some(id) = req_id {
        v["req_id"] = json!(id);
    }
    v.to_string()
}

fn verify(shared: &Shared, args: &[Value]) -> Result<String, AuthError> {
    auth::verify(args, shared.now_ms(), |key| {
        lock(&shared.accounts).get(key).map(|a| a.secret.clone())
    })
}

fn log_auth(shared: &Shared, session: &Session, result: &Result<String, AuthError>) {
    match result {
        Ok(key) => {
            bump(&shared.counters.auths);
            shared.with_connection(session.id, |c| {
                c.api_key = Some(key.clone());
                c.log("auth");
            });
        }
        Err(_) => {
            bump(&shared.counters.auth_failures);
            shared.with_connection(session.id, |c| c.log("auth-failed"));
        }
    }
}

/// Checks a subscribe request as a whole; returns the topics' specs.
fn check_subscribe(
    session: &Session,
    topics: &[String],
    shared: &Shared,
) -> Result<Vec<Spec>, String> {
    if topics.is_empty() {
        return Err("error:args is empty".to_owned());
    }
    if session.endpoint == Endpoint::Spot && topics.len() > shared.options.spot_args_limit {
        return Err(format!(
            "error:args size >{},count:{}",
            shared.options.spot_args_limit,
            topics.len()
        ));
    }
    if session.endpoint == Endpoint::Private && session.api_key.is_none() {
        return Err("error:private topics need auth first".to_owned());
    }
    let mut specs = Vec::with_capacity(topics.len());
    for topic in topics {
        let spec = Spec::parse(session.endpoint, topic)
            .ok_or_else(|| format!("error:handler not found,topic:{topic}"))?;
        if session.topics.contains_key(topic) {
            return Err(format!("error:already subscribed,topic:{topic}"));
        }
        specs.push(spec);
    }
    let forms: Vec<_> = specs.iter().filter_map(Spec::private_form).collect();
    for (kind, categorised) in &forms {
        if forms.iter().any(|(k, c)| k == kind && c != categorised) {
            return Err(format!(
                "error:{} and its category forms cannot be in one request",
                kind.name()
            ));
        }
    }
    if session.endpoint.is_public() {
        let chars: usize = session.topics.keys().chain(topics).map(String::len).sum();
        if chars > ARGS_CHARS_LIMIT {
            return Err(format!(
                "error:args length {chars} exceeds {ARGS_CHARS_LIMIT}"
            ));
        }
    }
    if session.endpoint == Endpoint::Option
        && session.topics.len() + topics.len() > OPTION_TOPICS_LIMIT
    {
        return Err(format!("error:more than {OPTION_TOPICS_LIMIT} topics"));
    }
    Ok(specs)
}

fn topic_list(args: &[Value]) -> Vec<String> {
    args.iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

fn subscribe(
    shared: &Shared,
    session: &mut Session,
    req_id: Option<&str>,
    args: &[Value],
) -> Vec<String> {
    let topics = topic_list(args);
    let checked = check_subscribe(session, &topics, shared);
    let specs = match checked {
        Ok(specs) => specs,
        Err(reason) => {
            bump(&shared.counters.subscribe_failures);
            shared.with_connection(session.id, |c| {
                c.log(format!("subscribe-failed {}", topics.join(",")))
            });
            let result = Err((reason, topics));
            return vec![
                endpoint::ack(
                    session.endpoint,
                    "subscribe",
                    req_id,
                    &session.conn_id,
                    &result,
                )
                .to_string(),
            ];
        }
    };
    let mut out = vec![
        endpoint::ack(
            session.endpoint,
            "subscribe",
            req_id,
            &session.conn_id,
            &Ok(topics.clone()),
        )
        .to_string(),
    ];
    for (topic, spec) in topics.iter().zip(specs) {
        shared.count_subscribe(topic);
        shared.with_connection(session.id, |c| {
            c.topics.insert(topic.clone());
            c.log(format!("subscribe {topic}"));
        });
        if let (Spec::Book { symbol, depth }, Some(category)) = (&spec, session.endpoint.category())
        {
            // The snapshot under the market lock: every update after it is still to come.
            if let Some(book) = lock(&shared.market).book(category, symbol) {
                out.push(book_snapshot(shared, topic, &book, *depth));
                session
                    .book_marks
                    .insert(topic.clone(), (book.u, book.generation));
            }
        }
        session.topics.insert(topic.clone(), spec);
    }
    out
}

fn unsubscribe(
    shared: &Shared,
    session: &mut Session,
    req_id: Option<&str>,
    args: &[Value],
) -> String {
    let topics = topic_list(args);
    let missing: Vec<String> = topics
        .iter()
        .filter(|t| !session.topics.contains_key(*t))
        .cloned()
        .collect();
    let result = if topics.is_empty() || !missing.is_empty() {
        Err((
            format!("error:not subscribed,topic:{}", missing.join(",")),
            topics,
        ))
    } else {
        for topic in &topics {
            session.topics.remove(topic);
            session.book_marks.remove(topic);
            session.tickers_started.remove(topic);
            bump(&shared.counters.unsubscribes);
            shared.with_connection(session.id, |c| {
                c.topics.remove(topic);
                c.log(format!("unsubscribe {topic}"));
            });
        }
        Ok(topics)
    };
    endpoint::ack(
        session.endpoint,
        "unsubscribe",
        req_id,
        &session.conn_id,
        &result,
    )
    .to_string()
}

#[allow(clippy::too_many_arguments)] // one per field of the push
fn book_message(
    topic: &str,
    kind: &str,
    ts: u64,
    symbol: &str,
    bids: &[Level],
    asks: &[Level],
    u: u64,
    seq: u64,
) -> String {
    json!({"topic": topic, "type": kind, "ts": ts,
        "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": seq}, "cts": ts.saturating_sub(2)})
    .to_string()
}

fn book_snapshot(shared: &Shared, topic: &str, book: &BookState, depth: u32) -> String {
    bump(&shared.counters.book_snapshots);
    let depth = usize::try_from(depth).unwrap_or(usize::MAX);
    let bids = &book.bids[..book.bids.len().min(depth)];
    let asks = &book.asks[..book.asks.len().min(depth)];
    book_message(
        topic,
        "snapshot",
        shared.now_ms(),
        book.symbol,
        bids,
        asks,
        book.u,
        book.seq,
    )
}

/// An order-entry request on `/v5/trade`.
fn trade_op(
    shared: &Shared,
    session: &mut Session,
    request: &Value,
    op: &str,
    args: &[Value],
) -> String {
    let conn_id = session.conn_id.clone();
    let simple = |code: i64, msg: &str, op: &str| {
        json!({"retCode": code, "retMsg": msg, "op": op, "connId": conn_id}).to_string()
    };
    match op {
        "ping" => {
            bump(&shared.counters.pings);
            session.pinged = true;
            shared.with_connection(session.id, |c| c.log("ping"));
            return endpoint::pong(Endpoint::Trade, None, &session.conn_id, shared.now_ms())
                .to_string();
        }
        "auth" => {
            if session.api_key.is_some() {
                return simple(20001, "Repeat auth", "auth");
            }
            let result = verify(shared, args);
            log_auth(shared, session, &result);
            return match result {
                Ok(key) => {
                    session.api_key = Some(key);
                    simple(0, "OK", "auth")
                }
                Err(AuthError::Sign) => simple(10004, "Invalid sign", "auth"),
                Err(AuthError::Params) => simple(10001, "Params Error", "auth"),
            };
        }
        _ => {}
    }
    let req_id = request
        .get("reqId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let now = shared.now_ms();
    let answer = |code: i64, msg: &str, data: Value, remaining: u32| {
        json!({"reqId": req_id, "retCode": code, "retMsg": msg, "op": op, "data": data,
            "retExtInfo": {}, "header": {"X-Bapi-Limit": shared.options.order_limit.0.to_string(),
            "X-Bapi-Limit-Status": remaining.to_string(),
            "X-Bapi-Limit-Reset-Timestamp": (now + 1000).to_string(),
            "Traceid": format!("{:032x}", now ^ 0x5eed), "Timenow": now.to_string()},
            "connId": conn_id})
        .to_string()
    };
    let Some(api_key) = session.api_key.clone() else {
        return answer(10005, "Permission denied: not authenticated", json!({}), 0);
    };
    if !matches!(op, "order.create" | "order.amend" | "order.cancel") {
        return answer(10404, "op not found", json!({}), 0);
    }
    if req_id.is_empty() || req_id.len() > REQ_ID_MAX {
        return answer(10001, "params error: reqId", json!({}), 0);
    }
    if session.req_ids.contains(&req_id) {
        return answer(20006, "reqId is duplicate", json!({}), 0);
    }
    let header = request.get("header");
    let field = |name: &str| -> Option<u64> {
        match header.and_then(|h| h.get(name)) {
            Some(Value::String(s)) => s.parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        }
    };
    let Some(timestamp) = field("X-BAPI-TIMESTAMP") else {
        return answer(10001, "params error: X-BAPI-TIMESTAMP", json!({}), 0);
    };
    let window = field("X-BAPI-RECV-WINDOW").unwrap_or(DEFAULT_RECV_WINDOW);
    if !(now.saturating_sub(window) <= timestamp && timestamp < now + 1000) {
        return answer(
            10002,
            "invalid request, please check your server timestamp or recv_window param",
            json!({}),
            0,
        );
    }
    let [arg] = args else {
        return answer(
            10001,
            "params error: args must hold one order",
            json!({}),
            0,
        );
    };
    if !session.take_token(shared) {
        bump(&shared.counters.rate_limited);
        shared.with_connection(session.id, |c| c.log(format!("{op} rate-limited")));
        return answer(
            20003,
            "Too frequent requests under the same session",
            json!({}),
            0,
        );
    }
    session.remember_req_id(&req_id);
    // Whole tokens left, for the header.
    let remaining = format!("{:.0}", session.tokens.floor())
        .parse()
        .unwrap_or(0);
    shared.with_connection(session.id, |c| c.log(op.to_owned()));
    match orders::execute(shared, &api_key, op, arg) {
        Ok(data) => {
            bump(&shared.counters.orders);
            answer(0, "OK", data, remaining)
        }
        Err((code, msg)) => answer(code, &msg, json!({}), remaining),
    }
}

/// The pushes `event` makes on this connection's topics.
pub(super) fn pushes(shared: &Shared, session: &mut Session, event: &Event) -> Vec<String> {
    match event {
        Event::Tick(updates) => {
            let Some(category) = session.endpoint.category() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            let topics: Vec<(String, Spec)> = session
                .topics
                .iter()
                .map(|(t, s)| (t.clone(), s.clone()))
                .collect();
            for (topic, spec) in topics {
                for update in updates.iter().filter(|u| u.category == category) {
                    if let Some(text) = push(shared, session, &topic, &spec, update) {
                        out.push(text);
                    }
                }
            }
            out
        }
        Event::BooksRestarted(books) => {
            let Some(category) = session.endpoint.category() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (topic, spec) in &session.topics {
                let Spec::Book { symbol, depth } = spec else {
                    continue;
                };
                let Some(book) = books
                    .iter()
                    .find(|b| b.category == category && b.symbol == symbol)
                else {
                    continue;
                };
                let mark = session.book_marks.get(topic).copied().unwrap_or((0, 0));
                if mark.1 >= book.generation {
                    continue; // its snapshot is from after the restart already
                }
                out.push(book_snapshot(shared, topic, book, *depth));
                session
                    .book_marks
                    .insert(topic.clone(), (book.u, book.generation));
            }
            out
        }
        Event::Private {
            api_key,
            kind,
            category,
            data,
        } => {
            if session.endpoint != Endpoint::Private
                || session.api_key.as_deref() != Some(api_key.as_str())
            {
                return Vec::new();
            }
            let mut out = Vec::new();
            for (topic, spec) in &session.topics {
                let Spec::Private {
                    kind: k,
                    category: c,
                } = spec
                else {
                    continue;
                };
                if k != kind || c.as_ref().is_some_and(|c| c != category) {
                    continue;
                }
                session.next_push += 1;
                let id = format!(
                    "{:x}-{:04x}-c59f-420b-{:012x}",
                    session.id,
                    session.next_push,
                    shared.now_ms()
                );
                out.push(json!({"id": id, "topic": topic, "creationTime": shared.now_ms(), "data": data}).to_string());
            }
            out
        }
    }
}

fn push(
    shared: &Shared,
    session: &mut Session,
    topic: &str,
    spec: &Spec,
    update: &Update,
) -> Option<String> {
    let ts = update.ts;
    match spec {
        Spec::Ticker { symbol } if symbol == update.symbol => {
            let kind = if matches!(update.category, "linear" | "inverse")
                && !session.tickers_started.insert(topic.to_owned())
            {
                "delta"
            } else {
                session.tickers_started.insert(topic.to_owned());
                "snapshot"
            };
            Some(json!({"topic": topic, "type": kind, "cs": update.cs, "ts": ts, "data": update.ticker}).to_string())
        }
        Spec::Trade { symbols } if symbols.iter().any(|s| s == update.symbol) => Some(
            json!({"topic": topic, "type": "snapshot", "ts": ts, "data": update.trades})
                .to_string(),
        ),
        Spec::Book { symbol, depth } if symbol == update.symbol => {
            let delta = update.book.as_ref()?;
            let (mark, generation) = session.book_marks.get(topic).copied().unwrap_or((0, 0));
            if delta.u <= mark {
                return None;
            }
            session
                .book_marks
                .insert(topic.to_owned(), (delta.u, generation));
            if *depth == 1 {
                bump(&shared.counters.book_snapshots);
                let bids: Vec<Level> = update.top.0.iter().cloned().collect();
                let asks: Vec<Level> = update.top.1.iter().cloned().collect();
                return Some(book_message(
                    topic, "snapshot", ts, symbol, &bids, &asks, delta.u, delta.seq,
                ));
            }
            Some(book_message(
                topic,
                "delta",
                ts,
                symbol,
                &delta.bids,
                &delta.asks,
                delta.u,
                delta.seq,
            ))
        }
        Spec::Kline {
            symbol,
            interval,
            ms,
        } if symbol == update.symbol => {
            let start = ts / ms * ms;
            Some(json!({"topic": topic, "data": [{"start": start, "end": start + ms - 1, "interval": interval,
                "open": update.last, "close": update.last, "high": update.last, "low": update.last,
                "volume": "1.000", "turnover": update.last, "confirm": false, "timestamp": ts}],
                "ts": ts, "type": "snapshot"}).to_string())
        }
        Spec::Liquidation { symbol } if symbol == update.symbol => {
            let data = update.liquidation.as_ref()?;
            Some(json!({"topic": topic, "type": "snapshot", "ts": ts, "data": data}).to_string())
        }
        _ => None,
    }
}
