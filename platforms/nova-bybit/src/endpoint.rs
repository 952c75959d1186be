//! Bybit V5's WebSocket endpoints: one connection per endpoint.
//!
//! Market data is split by category (`/v5/public/spot`, `linear`, `inverse`, `option`); account
//! data comes from `/v5/private` and orders go through `/v5/trade`, both after `op: auth`.
//! Each endpoint answers in slightly different shapes (see [`crate::message`]), so the adapter
//! is told which one it talks to; [`Endpoint::from_url`] reads it from the URL path.

use std::fmt;

/// One of Bybit's WebSocket endpoints.
///
/// ```
/// use nova_bybit::Endpoint;
///
/// assert_eq!(Endpoint::Linear.mainnet_url(), "wss://stream.bybit.com/v5/public/linear");
/// assert_eq!(Endpoint::from_url("ws://127.0.0.1:9/v5/private?max_active_time=1m"), Some(Endpoint::Private));
/// assert!(Endpoint::Trade.needs_auth());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// Spot market data.
    Spot,
    /// USDT/USDC perpetuals and futures market data.
    Linear,
    /// Inverse contracts market data.
    Inverse,
    /// Options market data.
    Option,
    /// Account data (orders, executions, positions, wallet), after auth.
    Private,
    /// Order entry, after auth.
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

    /// The mainnet URL (`wss://stream.bybit.com/...`).
    #[must_use]
    pub fn mainnet_url(self) -> String {
        format!("wss://stream.bybit.com{}", self.path())
    }

    /// The testnet URL (`wss://stream-testnet.bybit.com/...`).
    #[must_use]
    pub fn testnet_url(self) -> String {
        format!("wss://stream-testnet.bybit.com{}", self.path())
    }

    /// The endpoint a URL points at, by its path (query ignored).
    #[must_use]
    pub fn from_url(url: &str) -> Option<Endpoint> {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The market category of a public endpoint.
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

    /// Whether the endpoint needs `op: auth` before anything else.
    #[must_use]
    pub fn needs_auth(self) -> bool {
        matches!(self, Endpoint::Private | Endpoint::Trade)
    }

    /// Whether the endpoint takes `max_active_time` in its URL.
    #[must_use]
    pub fn takes_max_active_time(self) -> bool {
        self.needs_auth()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_url(&e.mainnet_url()), Some(e));
            assert_eq!(Endpoint::from_url(&e.testnet_url()), Some(e));
        }
        assert_eq!(
            Endpoint::from_url("wss://stream.bybit.com/v5/public/spread"),
            None
        );
        assert_eq!(Endpoint::from_url("nonsense"), None);
    }
}
