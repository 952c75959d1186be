//! Accounts and order entry: `order.create`, `order.amend`, `order.cancel`, and the private
//! pushes (`order`, `execution`, `position`, `wallet`) they cause.
//!
//! A limit order rests (`New`) until amended or cancelled; a market order fills at once at the
//! symbol's last price and moves the position and the wallet. `orderLinkId` is unique per
//! account while the order is open or filled (Bybit's `110072` "OrderLinkedID is duplicate"),
//! which makes it the idempotency key of a create. Errors follow Bybit's codes: `10001` params
//! error, `110001` order does not exist (or is no longer open).

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::market::{fixed, now_ms};
use super::topic::PrivateKind;
use super::{Shared, lock};

/// An order op's failure: Bybit's `retCode` and `retMsg`.
pub(super) type OpError = (i64, String);

fn params(reason: &str) -> OpError {
    (10001, format!("params error: {reason}"))
}

#[derive(Debug, Clone)]
struct Order {
    order_id: String,
    link_id: String,
    category: String,
    symbol: String,
    side: String,
    order_type: String,
    price: String,
    qty: String,
    tif: String,
    status: &'static str,
    avg_price: String,
    cum_qty: String,
    created: u64,
    updated: u64,
}

impl Order {
    fn to_json(&self) -> Value {
        let leaves = if self.status == "New" {
            self.qty.as_str()
        } else {
            "0"
        };
        json!({
            "category": self.category, "symbol": self.symbol, "orderId": self.order_id,
            "orderLinkId": self.link_id, "side": self.side, "orderType": self.order_type,
            "price": self.price, "qty": self.qty, "timeInForce": self.tif,
            "orderStatus": self.status, "avgPrice": self.avg_price, "cumExecQty": self.cum_qty,
            "leavesQty": leaves, "createdTime": self.created.to_string(),
            "updatedTime": self.updated.to_string(),
        })
    }
}

/// One account: its secret, orders, positions and wallet.
#[derive(Debug)]
pub(super) struct Account {
    pub(super) secret: String,
    orders: BTreeMap<String, Order>,
    link_ids: HashSet<String>,
    next_id: u64,
    /// Position size in thousandths, signed, per (category, symbol).
    positions: BTreeMap<(String, String), i64>,
    /// USDT balance in cents.
    balance: i64,
}

impl Account {
    pub(super) fn new(secret: String) -> Self {
        Self {
            secret,
            orders: BTreeMap::new(),
            link_ids: HashSet::new(),
            next_id: 1,
            positions: BTreeMap::new(),
            balance: 10_000_000,
        }
    }
}

/// A decimal string as thousandths (`"0.2"` → 200); `None` when malformed or not positive.
fn thousandths(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().ok()?
    };
    let v = whole.checked_mul(1000)?.checked_add(frac)?;
    (v > 0).then_some(v)
}

/// Whether a price is a positive number.
fn positive(price: &str) -> bool {
    price.parse::<f64>().is_ok_and(|p| p > 0.0)
}

fn str_field<'a>(arg: &'a Value, name: &str) -> Option<&'a str> {
    arg.get(name).and_then(Value::as_str)
}

/// Carries out one order op for `api_key`; returns the answer's `data`.
pub(super) fn execute(
    shared: &Shared,
    api_key: &str,
    op: &str,
    arg: &Value,
) -> Result<Value, OpError> {
    let now = now_ms();
    let mut pushes: Vec<(PrivateKind, String, Value)> = Vec::new();
    let data = {
        let mut accounts = lock(&shared.accounts);
        let account = accounts
            .get_mut(api_key)
            .ok_or_else(|| (10003, "API key is invalid".to_owned()))?;
        match op {
            "order.create" => create(shared, account, arg, now, &mut pushes)?,
            "order.amend" => amend(account, arg, now, &mut pushes)?,
            "order.cancel" => cancel(account, arg, now, &mut pushes)?,
            _ => return Err((10404, format!("op {op} not found"))),
        }
    };
    for (kind, category, data) in pushes {
        shared.publish(super::market::Event::Private {
            api_key: api_key.to_owned(),
            kind,
            category,
            data,
        });
    }
    Ok(data)
}

fn create(
    shared: &Shared,
    account: &mut Account,
    arg: &Value,
    now: u64,
    pushes: &mut Vec<(PrivateKind, String, Value)>,
) -> Result<Value, OpError> {
    let category = str_field(arg, "category").ok_or_else(|| params("category"))?;
    let symbol = str_field(arg, "symbol").ok_or_else(|| params("symbol"))?;
    let side = str_field(arg, "side")
        .filter(|s| matches!(*s, "Buy" | "Sell"))
        .ok_or_else(|| params("side"))?;
    let order_type = str_field(arg, "orderType")
        .filter(|s| matches!(*s, "Limit" | "Market"))
        .ok_or_else(|| params("orderType"))?;
    let qty = str_field(arg, "qty").ok_or_else(|| params("qty"))?;
    let qty_k = thousandths(qty).ok_or_else(|| params("qty"))?;
    let last = lock(&shared.market)
        .last_price(category, symbol)
        .ok_or_else(|| {
            (
                10001,
                format!("params error: symbol invalid {category}/{symbol}"),
            )
        })?;
    let price = match order_type {
        "Limit" => str_field(arg, "price")
            .ok_or_else(|| params("price"))?
            .to_owned(),
        _ => "0".to_owned(),
    };
    if order_type == "Limit" && !positive(&price) {
        return Err(params("price"));
    }
    let link_id = str_field(arg, "orderLinkId").unwrap_or("").to_owned();
    if !link_id.is_empty() && account.link_ids.contains(&link_id) {
        return Err((110_072, "OrderLinkedID is duplicate".to_owned()));
    }
    let order_id = format!(
        "{:08x}-{:04x}-4659-a118-{:012x}",
        account.next_id,
        now % 0xffff,
        now
    );
    account.next_id += 1;
    if !link_id.is_empty() {
        account.link_ids.insert(link_id.clone());
    }
    let mut order = Order {
        order_id: order_id.clone(),
        link_id: link_id.clone(),
        category: category.to_owned(),
        symbol: symbol.to_owned(),
        side: side.to_owned(),
        order_type: order_type.to_owned(),
        price,
        qty: qty.to_owned(),
        tif: str_field(arg, "timeInForce").unwrap_or("GTC").to_owned(),
        status: "New",
        avg_price: String::new(),
        cum_qty: "0".to_owned(),
        created: now,
        updated: now,
    };
    if order_type == "Market" {
        order.status = "Filled";
        order.avg_price = last.clone();
        order.cum_qty = qty.to_owned();
        let signed = if side == "Buy" { qty_k } else { -qty_k };
        let size = account
            .positions
            .entry((category.to_owned(), symbol.to_owned()))
            .or_default();
        *size += signed;
        let size = *size;
        account.balance -= qty_k / 10;
        pushes.push((
            PrivateKind::Order,
            category.to_owned(),
            json!([order.to_json()]),
        ));
        pushes.push((
            PrivateKind::Execution,
            category.to_owned(),
            json!([{
                "category": category, "symbol": symbol, "execId": format!("{order_id}-e"),
                "orderId": order_id, "orderLinkId": link_id, "side": side, "execPrice": last,
                "execQty": qty, "execType": "Trade", "execTime": now.to_string(), "isMaker": false,
            }]),
        ));
        if category != "spot" {
            pushes.push((
                PrivateKind::Position,
                category.to_owned(),
                json!([{
                    "category": category, "symbol": symbol,
                    "side": if size > 0 { "Buy" } else if size < 0 { "Sell" } else { "" },
                    "size": fixed(size.abs(), 3), "avgPrice": last, "updatedTime": now.to_string(),
                }]),
            ));
        }
        pushes.push((
            PrivateKind::Wallet,
            category.to_owned(),
            json!([{
                "accountType": "UNIFIED", "totalEquity": fixed(account.balance, 2),
                "coin": [{"coin": "USDT", "walletBalance": fixed(account.balance, 2), "equity": fixed(account.balance, 2)}],
            }]),
        ));
    } else {
        pushes.push((
            PrivateKind::Order,
            category.to_owned(),
            json!([order.to_json()]),
        ));
    }
    account.orders.insert(order_id.clone(), order);
    Ok(json!({"orderId": order_id, "orderLinkId": link_id}))
}

/// The open order `arg` names by `orderId` or `orderLinkId`.
fn find<'a>(account: &'a mut Account, arg: &Value) -> Result<&'a mut Order, OpError> {
    let not_found = || (110_001, "order not exists or too late to cancel".to_owned());
    let by_id = str_field(arg, "orderId").filter(|s| !s.is_empty());
    let by_link = str_field(arg, "orderLinkId").filter(|s| !s.is_empty());
    if by_id.is_none() && by_link.is_none() {
        return Err(params("orderId or orderLinkId"));
    }
    account
        .orders
        .values_mut()
        .find(|o| by_id.is_none_or(|id| o.order_id == id) && by_link.is_none_or(|l| o.link_id == l))
        .filter(|o| o.status == "New")
        .ok_or_else(not_found)
}

fn amend(
    account: &mut Account,
    arg: &Value,
    now: u64,
    pushes: &mut Vec<(PrivateKind, String, Value)>,
) -> Result<Value, OpError> {
    let order = find(account, arg)?;
    if let Some(qty) = str_field(arg, "qty") {
        thousandths(qty).ok_or_else(|| params("qty"))?;
        order.qty = qty.to_owned();
    }
    if let Some(price) = str_field(arg, "price") {
        if !positive(price) {
            return Err(params("price"));
        }
        order.price = price.to_owned();
    }
    order.updated = now;
    pushes.push((
        PrivateKind::Order,
        order.category.clone(),
        json!([order.to_json()]),
    ));
    Ok(json!({"orderId": order.order_id, "orderLinkId": order.link_id}))
}

fn cancel(
    account: &mut Account,
    arg: &Value,
    now: u64,
    pushes: &mut Vec<(PrivateKind, String, Value)>,
) -> Result<Value, OpError> {
    let order = find(account, arg)?;
    order.status = "Cancelled";
    order.updated = now;
    pushes.push((
        PrivateKind::Order,
        order.category.clone(),
        json!([order.to_json()]),
    ));
    Ok(json!({"orderId": order.order_id, "orderLinkId": order.link_id}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_quantities() {
        assert_eq!(thousandths("0.2"), Some(200));
        assert_eq!(thousandths("12"), Some(12_000));
        assert_eq!(thousandths(".5"), Some(500));
        assert_eq!(thousandths("0"), None);
        assert_eq!(thousandths("1.2345"), None);
        assert_eq!(thousandths("x"), None);
        assert_eq!(thousandths(""), None);
    }
}
