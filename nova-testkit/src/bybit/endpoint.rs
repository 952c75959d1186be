//! The simulator's endpoints and the shapes each one answers in.
//!
//! Bybit's endpoints differ in small ways that clients must all recognise: the pong of spot
//! says `"op":"ping"` with `"ret_msg":"pong"`, linear and inverse add an empty `req_id`, option
//! answers `{"args":[ts],"op":"pong"}`, private `{"req_id":..,"op":"pong","args":[ts],"conn_id":..}`
//! and trade `{"retCode":0,"retMsg":"OK","op":"pong","data":[ts],"connId":..}`. Subscribe acks
//! differ the same way (see the module docs of [`crate::bybit`]).

use serde_json::{Value, json};

/// One of the simulator's WebSocket endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// `/v5/public/spot`
    Spot,
    /// `/v5/public/linear`
    Linear,
    /// `/v5/public/inverse`
    Inverse,
    /// `/v5/public/option`
    Option,
    /// `/v5/private`
    Private,
    /// `/v5/trade`
    Trade,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 6] = [
        Endpoint::Spot,
        Endpoint::Linear,
        Endpoint::Inverse,
        Endpoint::Option,
        Endpoint::Private,
        Endpoint::Trade,
    ];

    /// The URL path.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Spot => "/v5/public/spot",
            Endpoint::Linear => "/v5/public/linear",
            Endpoint::Inverse => "/v5/public/inverse",
            Endpoint::Option => "/v5/public/option",
            Endpoint::Private => "/v5/private",
            Endpoint::Trade => "/v5/trade",
        }
    }

    /// The endpoint of a URL path (the query ignored).
    #[must_use]
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let path = path.split('?').next().unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The market category of a public endpoint (`spot`, `linear`, `inverse`, `option`).
    #[must_use]
    pub fn category(self) -> Option<&'static str> {
        match self {
            Endpoint::Spot => Some("spot"),
            Endpoint::Linear => Some("linear"),
            Endpoint::Inverse => Some("inverse"),
            Endpoint::Option => Some("option"),
            Endpoint::Private | Endpoint::Trade => None,
        }
    }

    /// Whether this is a public (market data) endpoint.
    #[must_use]
    pub fn is_public(self) -> bool {
        self.category().is_some()
    }
}

/// The answer to `{"op":"ping"}` on `endpoint`.
pub(super) fn pong(endpoint: Endpoint, req_id: Option<&str>, conn_id: &str, now_ms: u64) -> Value {
    let ts = now_ms.to_string();
    match endpoint {
        Endpoint::Spot => {
            let mut v =
                json!({"success": true, "ret_msg": "pong", "conn_id": conn_id, "op": "ping"});
            if let Some(id) = req_id {
                v["req_id"] = json!(id);
            }
            v
        }
        Endpoint::Linear | Endpoint::Inverse => {
            json!({"success": true, "ret_msg": "pong", "conn_id": conn_id, "req_id": req_id.unwrap_or(""), "op": "ping"})
        }
        Endpoint::Option => json!({"args": [ts], "op": "pong"}),
        Endpoint::Private => {
            json!({"req_id": req_id.unwrap_or(""), "op": "pong", "args": [ts], "conn_id": conn_id})
        }
        Endpoint::Trade => {
            json!({"retCode": 0, "retMsg": "OK", "op": "pong", "data": [ts], "connId": conn_id})
        }
    }
}

/// The answer to a subscribe or unsubscribe (`op`) on a public or private endpoint.
pub(super) fn ack(
    endpoint: Endpoint,
    op: &str,
    req_id: Option<&str>,
    conn_id: &str,
    result: &Result<Vec<String>, (String, Vec<String>)>,
) -> Value {
    if endpoint == Endpoint::Option {
        let (success, ok, failed) = match result {
            Ok(topics) => (true, topics.clone(), Vec::new()),
            Err((_, topics)) => (false, Vec::new(), topics.clone()),
        };
        return json!({"success": success, "conn_id": conn_id,
            "data": {"failTopics": failed, "successTopics": ok}, "type": "COMMAND_RESP"});
    }
    let (success, ret_msg) = match result {
        Ok(_) if endpoint == Endpoint::Spot => (true, op.to_owned()),
        Ok(_) => (true, String::new()),
        Err((reason, _)) => (false, reason.clone()),
    };
    let mut v = json!({"success": success, "ret_msg": ret_msg, "conn_id": conn_id, "op": op});
    match (endpoint, req_id) {
        (_, Some(id)) => v["req_id"] = json!(id),
        (Endpoint::Linear | Endpoint::Inverse, None) => v["req_id"] = json!(""),
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_path(e.path()), Some(e));
        }
        assert_eq!(
            Endpoint::from_path("/v5/private?max_active_time=1m"),
            Some(Endpoint::Private)
        );
        assert_eq!(Endpoint::from_path("/v5/public/spread"), None);
    }

    #[test]
    fn pongs_differ_per_endpoint() {
        assert_eq!(pong(Endpoint::Spot, None, "c", 1)["ret_msg"], "pong");
        assert_eq!(pong(Endpoint::Linear, None, "c", 1)["req_id"], "");
        assert_eq!(pong(Endpoint::Option, None, "c", 1)["op"], "pong");
        assert_eq!(pong(Endpoint::Private, Some("7"), "c", 1)["req_id"], "7");
        assert_eq!(pong(Endpoint::Trade, None, "c", 1)["retCode"], 0);
    }
}
