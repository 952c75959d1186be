//! Order entry over WebSocket (`/v5/trade`): requests, their answers and what is safe to send
//! again.
//!
//! ```text
//! → {"reqId":"12","header":{"X-BAPI-TIMESTAMP":"1711001595207","X-BAPI-RECV-WINDOW":"5000"},
//!    "op":"order.create","args":[{"category":"linear","symbol":"ETHUSDT","side":"Buy",...}]}
//! ← {"reqId":"12","retCode":0,"retMsg":"OK","op":"order.create","data":{"orderId":"…","orderLinkId":""},
//!    "retExtInfo":{},"header":{"X-Bapi-Limit":"10","X-Bapi-Limit-Status":"9",…},"connId":"…"}
//! ```
//!
//! `reqId` is the runtime's request id, so the answer finds its caller through
//! `Client::request`. The ack means Bybit accepted the request, not that the order is live:
//! the `order` topic of `/v5/private` confirms it.
//!
//! # Idempotency: `orderLinkId`
//!
//! A create cut off by a disconnect may or may not have reached Bybit, so it is **not** sent
//! again on its own (the call fails with `Disconnected`): a blind replay could place the order
//! twice. Give every create an `orderLinkId` ([`OrderCreate::order_link_id`]): it is the
//! idempotency key. Bybit refuses a second order with the same `orderLinkId` (`110072`), so
//! after a `Disconnected` the application can send the very same create again — at most one
//! order results — or look the order up by its `orderLinkId` on the `order` stream. Amends and
//! cancels are replayed after a reconnect (they name an existing order; doing one twice is
//! harmless, the second answers `110001` at worst), unless their recv window has passed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::auth::now_ms;
use crate::error::{BybitError, RetCode};

/// `Buy` or `Sell`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// `Limit` or `Market`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OrderType {
    /// A limit order (needs a price).
    Limit,
    /// A market order.
    Market,
}

/// An `order.create`.
///
/// ```
/// use nova_bybit::{OrderCreate, OrderType, Side};
///
/// let order = OrderCreate::new("linear", "ETHUSDT", Side::Buy, OrderType::Limit, "0.2")
///     .price("2800")
///     .time_in_force("PostOnly")
///     .order_link_id("bot-001-42");
/// let arg = order.to_arg();
/// assert_eq!(arg["orderLinkId"], "bot-001-42");
/// assert_eq!(arg["price"], "2800");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct OrderCreate {
    arg: Map<String, Value>,
}

impl OrderCreate {
    /// A create of `qty` (a decimal string) on `category`/`symbol`.
    pub fn new(category: &str, symbol: &str, side: Side, order_type: OrderType, qty: &str) -> Self {
        let mut arg = Map::new();
        arg.insert("category".into(), json!(category));
        arg.insert("symbol".into(), json!(symbol));
        arg.insert("side".into(), json!(side));
        arg.insert("orderType".into(), json!(order_type));
        arg.insert("qty".into(), json!(qty));
        Self { arg }
    }

    /// The limit price.
    pub fn price(self, price: &str) -> Self {
        self.field("price", price)
    }

    /// `GTC`, `IOC`, `FOK`, `PostOnly`.
    pub fn time_in_force(self, tif: &str) -> Self {
        self.field("timeInForce", tif)
    }

    /// The client's order id: the idempotency key (see the [module docs](self)).
    pub fn order_link_id(self, id: &str) -> Self {
        self.field("orderLinkId", id)
    }

    /// Any other field of Bybit's create (`reduceOnly`, `triggerPrice`, ...).
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.arg.insert(name.to_owned(), value.into());
        self
    }

    /// The `args[0]` object.
    #[must_use]
    pub fn to_arg(&self) -> Value {
        Value::Object(self.arg.clone())
    }
}

/// Names an existing order: by Bybit's `orderId` or the client's `orderLinkId`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderRef {
    /// Bybit's order id.
    OrderId(String),
    /// The client's order id.
    OrderLinkId(String),
}

impl OrderRef {
    fn insert(&self, arg: &mut Map<String, Value>) {
        match self {
            OrderRef::OrderId(id) => arg.insert("orderId".into(), json!(id)),
            OrderRef::OrderLinkId(id) => arg.insert("orderLinkId".into(), json!(id)),
        };
    }
}

/// An `order.amend`.
///
/// ```
/// use nova_bybit::{OrderAmend, OrderRef};
///
/// let amend = OrderAmend::new("linear", "ETHUSDT", OrderRef::OrderLinkId("bot-1".into())).price("2810");
/// assert_eq!(amend.to_arg()["price"], "2810");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct OrderAmend {
    arg: Map<String, Value>,
}

impl OrderAmend {
    /// An amend of the order `order` on `category`/`symbol`.
    pub fn new(category: &str, symbol: &str, order: OrderRef) -> Self {
        let mut arg = Map::new();
        arg.insert("category".into(), json!(category));
        arg.insert("symbol".into(), json!(symbol));
        order.insert(&mut arg);
        Self { arg }
    }

    /// The new price.
    pub fn price(mut self, price: &str) -> Self {
        self.arg.insert("price".into(), json!(price));
        self
    }

    /// The new quantity.
    pub fn qty(mut self, qty: &str) -> Self {
        self.arg.insert("qty".into(), json!(qty));
        self
    }

    /// The `args[0]` object.
    #[must_use]
    pub fn to_arg(&self) -> Value {
        Value::Object(self.arg.clone())
    }
}

/// An `order.cancel`.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct OrderCancel {
    arg: Map<String, Value>,
}

impl OrderCancel {
    /// A cancel of the order `order` on `category`/`symbol`.
    pub fn new(category: &str, symbol: &str, order: OrderRef) -> Self {
        let mut arg = Map::new();
        arg.insert("category".into(), json!(category));
        arg.insert("symbol".into(), json!(symbol));
        order.insert(&mut arg);
        Self { arg }
    }

    /// The `args[0]` object.
    #[must_use]
    pub fn to_arg(&self) -> Value {
        Value::Object(self.arg.clone())
    }
}

/// The `/v5/trade` request `op` with `arg`, for request `req_id`, stamped now.
#[must_use]
pub fn trade_request(
    req_id: &str,
    op: &str,
    arg: &Value,
    recv_window_ms: u64,
    referer: Option<&str>,
) -> Value {
    let mut header = json!({
        "X-BAPI-TIMESTAMP": now_ms().to_string(),
        "X-BAPI-RECV-WINDOW": recv_window_ms.to_string(),
    });
    if let Some(referer) = referer {
        header["Referer"] = json!(referer);
    }
    json!({"reqId": req_id, "header": header, "op": op, "args": [arg]})
}

/// The answer to a `/v5/trade` request.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TradeResponse {
    /// The request's id.
    #[serde(default)]
    pub req_id: String,
    /// `0` on success.
    pub ret_code: i64,
    /// `OK` or the reason.
    #[serde(default)]
    pub ret_msg: String,
    /// The op answered.
    #[serde(default)]
    pub op: String,
    /// The result.
    #[serde(default)]
    pub data: Value,
    /// Rate-limit headers and trace id.
    #[serde(default)]
    pub header: Value,
    /// The connection's id.
    #[serde(default)]
    pub conn_id: String,
}

impl TradeResponse {
    /// The `retCode`, typed.
    #[must_use]
    pub fn code(&self) -> RetCode {
        RetCode::from_code(self.ret_code)
    }

    /// `X-Bapi-Limit-Status`: requests left in the current window, if the answer says.
    #[must_use]
    pub fn limit_status(&self) -> Option<u32> {
        self.header
            .get("X-Bapi-Limit-Status")?
            .as_str()?
            .parse()
            .ok()
    }

    /// `Ok(self)` when `retCode` is 0.
    ///
    /// # Errors
    /// [`BybitError::Rejected`] with the code and message.
    pub fn check(self) -> Result<Self, BybitError> {
        if self.ret_code == 0 {
            Ok(self)
        } else {
            let code = self.code();
            Err(BybitError::Rejected {
                op: self.op,
                code,
                message: self.ret_msg,
            })
        }
    }
}

/// The acknowledgement of an order op.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OrderAck {
    /// Bybit's order id.
    #[serde(default)]
    pub order_id: String,
    /// The client's order id.
    #[serde(default)]
    pub order_link_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_answer_decodes() {
        let text = r#"{"reqId":"test-005","retCode":0,"retMsg":"OK","op":"order.create","data":{"orderId":"a4c1718e-fe53-4659-a118-1f6ecce04ad9","orderLinkId":""},"retExtInfo":{},"header":{"X-Bapi-Limit":"10","X-Bapi-Limit-Status":"9","X-Bapi-Limit-Reset-Timestamp":"1711001595208","Traceid":"38b7977b430f9bd228f4b19724794dfd","Timenow":"1711001595209"},"connId":"cnt5leec0hvan15eukcg-2v"}"#;
        let r: TradeResponse = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.limit_status(), Some(9));
        let r = r.check().unwrap_or_else(|e| panic!("{e}"));
        let ack: OrderAck = serde_json::from_value(r.data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ack.order_id, "a4c1718e-fe53-4659-a118-1f6ecce04ad9");
        let refused: TradeResponse = serde_json::from_str(
            r#"{"reqId":"1","retCode":20003,"retMsg":"Too frequent","op":"order.create"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            refused.check(),
            Err(BybitError::Rejected {
                code: RetCode::SessionRateLimit,
                ..
            })
        ));
    }

    #[test]
    fn requests_carry_the_documented_header() {
        let r = trade_request(
            "7",
            "order.cancel",
            &json!({"orderId": "x"}),
            8000,
            Some("bot-001"),
        );
        assert_eq!(r["reqId"], "7");
        assert_eq!(r["header"]["X-BAPI-RECV-WINDOW"], "8000");
        assert_eq!(r["header"]["Referer"], "bot-001");
        assert!(
            r["header"]["X-BAPI-TIMESTAMP"]
                .as_str()
                .is_some_and(|t| t.parse::<u64>().is_ok())
        );
        assert_eq!(r["args"][0]["orderId"], "x");
    }
}
