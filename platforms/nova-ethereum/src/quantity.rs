//! Hex quantities and block identifiers, the way Ethereum JSON-RPC writes numbers.
//!
//! A *quantity* is a `0x`-prefixed, big-endian hex number without leading zeros (`"0x0"`,
//! `"0x1a"`). Parsing never panics: anything else — a missing prefix, a non-hex digit, an empty
//! string, a value too large for the target type — is a [`QuantityError`]. For leniency toward
//! nodes that deviate, leading zeros are accepted, and so are plain JSON numbers where a quantity
//! is expected.
//!
//! Values that can exceed 64 bits (wei amounts, difficulty) are kept as their hex text in the
//! typed results; [`parse_quantity_u128`] reads those that fit 128 bits.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A string that is not a valid hex quantity for the wanted type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid hex quantity {text:?}: {reason}")]
pub struct QuantityError {
    /// The text (cut to 80 characters).
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl QuantityError {
    fn new(text: &str, reason: &'static str) -> Self {
        Self {
            text: text.chars().take(80).collect(),
            reason,
        }
    }
}

fn digits(text: &str) -> Result<&str, QuantityError> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| QuantityError::new(text, "missing 0x prefix"))?;
    if hex.is_empty() {
        return Err(QuantityError::new(text, "no digits"));
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(QuantityError::new(text, "not a hex digit"));
    }
    Ok(hex.trim_start_matches('0'))
}

/// Parses a hex quantity into a `u64`.
///
/// ```
/// use nova_ethereum::parse_quantity;
///
/// assert_eq!(parse_quantity("0x1a"), Ok(26));
/// assert_eq!(parse_quantity("0x0"), Ok(0));
/// assert!(parse_quantity("26").is_err());
/// assert!(parse_quantity("0x1_0000_0000_0000_0000").is_err());
/// assert!(parse_quantity("0x10000000000000000").is_err()); // 2^64
/// ```
///
/// # Errors
/// When `text` is not a `0x`-prefixed hex number that fits 64 bits.
pub fn parse_quantity(text: &str) -> Result<u64, QuantityError> {
    let hex = digits(text)?;
    if hex.is_empty() {
        return Ok(0);
    }
    if hex.len() > 16 {
        return Err(QuantityError::new(text, "larger than 64 bits"));
    }
    u64::from_str_radix(hex, 16).map_err(|_| QuantityError::new(text, "not a hex number"))
}

/// Parses a hex quantity into a `u128` (wei amounts, total difficulty).
///
/// # Errors
/// When `text` is not a `0x`-prefixed hex number that fits 128 bits.
pub fn parse_quantity_u128(text: &str) -> Result<u128, QuantityError> {
    let hex = digits(text)?;
    if hex.is_empty() {
        return Ok(0);
    }
    if hex.len() > 32 {
        return Err(QuantityError::new(text, "larger than 128 bits"));
    }
    u128::from_str_radix(hex, 16).map_err(|_| QuantityError::new(text, "not a hex number"))
}

/// Writes `value` as a hex quantity (`0x1a`).
#[must_use]
pub fn to_quantity(value: u64) -> String {
    format!("{value:#x}")
}

/// A `u64` read from and written as a hex quantity.
///
/// ```
/// use nova_ethereum::Quantity;
///
/// let q: Quantity = serde_json::from_str(r#""0x10""#).unwrap();
/// assert_eq!(q.0, 16);
/// assert_eq!(serde_json::to_string(&q).unwrap(), r#""0x10""#);
/// assert!(serde_json::from_str::<Quantity>(r#""0xzz""#).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(pub u64);

impl From<u64> for Quantity {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl From<Quantity> for u64 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex quantity such as \"0x1a\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                parse_quantity(v).map(Quantity).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                u64::try_from(v)
                    .map(Quantity)
                    .map_err(|_| E::custom("negative quantity"))
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Serde helpers for `u64` fields written as hex quantities (`#[serde(with = "...")]`).
pub(crate) mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Quantity;

    pub(crate) fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        Quantity(*value).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        Quantity::deserialize(deserializer).map(|q| q.0)
    }
}

/// Serde helpers for `Option<u64>` fields written as hex quantities (absent or `null` is `None`).
pub(crate) mod hex_u64_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Quantity;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.map(Quantity).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        Option::<Quantity>::deserialize(deserializer).map(|q| q.map(|q| q.0))
    }
}

/// A block, by number or by tag, as the block parameter of `eth_getBlockByNumber`, `eth_call`,
/// `eth_getLogs` (`fromBlock`/`toBlock`).
///
/// ```
/// use nova_ethereum::BlockId;
///
/// assert_eq!(serde_json::to_string(&BlockId::Number(255)).unwrap(), r#""0xff""#);
/// assert_eq!(serde_json::to_string(&BlockId::Latest).unwrap(), r#""latest""#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockId {
    /// A block number.
    Number(u64),
    /// The most recent block.
    Latest,
    /// The genesis block.
    Earliest,
    /// The pending block (being built).
    Pending,
    /// The most recent block the consensus layer considers safe.
    Safe,
    /// The most recent finalized block.
    Finalized,
}

impl BlockId {
    /// The JSON-RPC text: a hex quantity or a tag.
    #[must_use]
    pub fn as_param(&self) -> String {
        match self {
            Self::Number(n) => to_quantity(*n),
            Self::Latest => "latest".to_owned(),
            Self::Earliest => "earliest".to_owned(),
            Self::Pending => "pending".to_owned(),
            Self::Safe => "safe".to_owned(),
            Self::Finalized => "finalized".to_owned(),
        }
    }
}

impl From<u64> for BlockId {
    fn from(value: u64) -> Self {
        Self::Number(value)
    }
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_param())
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "latest" => Self::Latest,
            "earliest" => Self::Earliest,
            "pending" => Self::Pending,
            "safe" => Self::Safe,
            "finalized" => Self::Finalized,
            other => Self::Number(parse_quantity(other).map_err(de::Error::custom)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_without_panicking() {
        assert_eq!(parse_quantity("0x0"), Ok(0));
        assert_eq!(parse_quantity("0x00ff"), Ok(255));
        assert_eq!(parse_quantity("0XFF"), Ok(255));
        assert_eq!(parse_quantity("0xffffffffffffffff"), Ok(u64::MAX));
        for bad in [
            "", "0x", "ff", "0x-1", "0x+1", "0x 1", "0xg", "0x1.5", "0x😀", "x12",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_quantity("0x1ffffffffffffffff").is_err());
        assert_eq!(parse_quantity("0x00000000000000000001"), Ok(1));
        assert_eq!(
            parse_quantity_u128("0x2c2ad68fd9d36c5c0"),
            Ok(0x2c2ad68fd9d36c5c0)
        );
        assert!(parse_quantity_u128(&format!("0x1{}", "0".repeat(32))).is_err());
    }

    #[test]
    fn quantity_accepts_numbers_and_rejects_negatives() {
        assert_eq!(
            serde_json::from_str::<Quantity>("7").ok(),
            Some(Quantity(7))
        );
        assert!(serde_json::from_str::<Quantity>("-7").is_err());
        assert!(serde_json::from_str::<Quantity>("1.5").is_err());
        assert!(serde_json::from_str::<Quantity>("null").is_err());
    }

    #[test]
    fn block_ids_round_trip() {
        for id in [
            BlockId::Number(0),
            BlockId::Number(1 << 40),
            BlockId::Latest,
            BlockId::Earliest,
            BlockId::Pending,
            BlockId::Safe,
            BlockId::Finalized,
        ] {
            let text = serde_json::to_string(&id).ok();
            let back: Option<BlockId> = text.and_then(|t| serde_json::from_str(&t).ok());
            assert_eq!(back, Some(id));
        }
    }
}
