//! The platforms of the soak: each a simulator of the test kit, a shipped adapter, and the
//! sequenced channels a client subscribes to (Deribit's books numbered by `change_id` after
//! `prev_change_id`; Bybit's `orderbook.50` numbered by `u`, a delta the last plus one).

use std::net::SocketAddr;
use std::time::Duration;

use nova_bybit::{BybitAdapter, BybitClient, BybitConfig, Endpoint};
use nova_core::{Client, ClientConfig, ClientConfigBuilder, Message, SubscriptionStream};
use nova_deribit::{Channel, Credentials, DeribitAdapter, DeribitClient, DeribitConfig, Interval};
use nova_testkit::bybit::{BybitSim, BybitSimOptions, Endpoint as SimEndpoint};
use nova_testkit::deribit::{DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET};

use crate::BoxError;
use crate::checker::Position;

/// A platform the soak runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Platform {
    /// Deribit: JSON-RPC, authenticated, books by `change_id`.
    Deribit,
    /// Bybit (linear public endpoint): books by `u`.
    Bybit,
}

impl Platform {
    /// Every platform.
    pub(crate) const ALL: [Platform; 2] = [Platform::Deribit, Platform::Bybit];

    /// Its name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Deribit => "deribit",
            Self::Bybit => "bybit",
        }
    }

    /// Parses a name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s.trim())
    }

    /// The URL path of its WebSocket endpoint.
    fn path(self) -> &'static str {
        match self {
            Self::Deribit => "/ws/api/v2",
            Self::Bybit => SimEndpoint::Linear.path(),
        }
    }

    /// The channels each client subscribes to.
    pub(crate) fn channels(self) -> [&'static str; 2] {
        match self {
            Self::Deribit => ["book.BTC-PERPETUAL.100ms", "book.ETH-PERPETUAL.100ms"],
            Self::Bybit => ["orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT"],
        }
    }

    /// The sequence position of a book message of this platform.
    pub(crate) fn position(self, message: &Message) -> Option<Position> {
        match self {
            Self::Deribit => {
                nova_deribit::book_position(message).map(|(value, prev)| Position { value, prev })
            }
            Self::Bybit => nova_bybit::peek_book(message).map(|(u, snapshot)| Position {
                value: u,
                // nova-bybit takes `u == 1` for a snapshot too (Bybit's service restart).
                prev: if snapshot || u == 1 {
                    None
                } else {
                    Some(u - 1)
                },
            }),
        }
    }
}

/// A running simulator of a platform.
#[derive(Debug)]
pub(crate) enum Sim {
    /// Deribit's.
    Deribit(DeribitSim),
    /// Bybit's.
    Bybit(BybitSim),
}

impl Sim {
    /// Starts one, its market moving every `tick`.
    pub(crate) async fn start(platform: Platform, tick: Duration) -> std::io::Result<Self> {
        Ok(match platform {
            Platform::Deribit => Self::Deribit(
                DeribitSim::start_with(DeribitSimOptions::default().with_tick(tick)).await?,
            ),
            Platform::Bybit => {
                Self::Bybit(BybitSim::start_with(BybitSimOptions::default().with_tick(tick)).await?)
            }
        })
    }

    /// Its address.
    pub(crate) fn addr(&self) -> SocketAddr {
        match self {
            Self::Deribit(s) => s.addr(),
            Self::Bybit(s) => s.addr(),
        }
    }

    /// Closes every connection with a close frame.
    pub(crate) async fn close_all(&self, code: u16) {
        match self {
            Self::Deribit(s) => s.close_all(code, "soak").await,
            Self::Bybit(s) => s.close_all(code, "soak").await,
        }
    }

    /// Loses the next update of every book: subscribers see a hole in the sequence.
    pub(crate) fn skip_update(&self) {
        match self {
            Self::Deribit(s) => s.skip_book_change(),
            Self::Bybit(s) => s.skip_book_update(),
        }
    }

    /// Silent or not: no reads, no writes, sockets open.
    pub(crate) fn set_silent(&self, silent: bool) {
        match self {
            Self::Deribit(s) => s.set_silent(silent),
            Self::Bybit(s) => s.set_silent(silent),
        }
    }

    /// Notifications and pushes sent so far (Bybit's simulator does not count them: 0).
    pub(crate) fn notifications(&self) -> u64 {
        match self {
            Self::Deribit(s) => s.counters().notifications,
            Self::Bybit(_) => 0,
        }
    }

    /// Stops it: every connection closed, the port released.
    pub(crate) async fn shutdown(self) {
        match self {
            Self::Deribit(s) => s.shutdown().await,
            Self::Bybit(s) => s.shutdown().await,
        }
    }
}

/// A platform client: the adapter's client type, kept so its handle lives.
#[derive(Debug)]
pub(crate) enum PlatformClient {
    /// Deribit's.
    Deribit(DeribitClient),
    /// Bybit's.
    Bybit(BybitClient),
}

impl PlatformClient {
    /// Connects through `relay` with the soak's settings (`tune` applied to the builder).
    pub(crate) fn connect(
        platform: Platform,
        relay: SocketAddr,
        name: &str,
        tune: impl FnOnce(ClientConfigBuilder) -> ClientConfigBuilder,
    ) -> Result<(Self, ClientConfig), BoxError> {
        let url = format!("ws://{relay}{}", platform.path());
        let (client, messages, client_config) = match platform {
            Platform::Deribit => {
                let config = DeribitConfig::default()
                    .credentials(Credentials::new(TEST_CLIENT_ID, TEST_CLIENT_SECRET));
                let client_config =
                    tune(DeribitClient::config_builder(url, &config).name(name)).build()?;
                let (c, m) =
                    DeribitClient::connect_with(client_config.clone(), DeribitAdapter::new(config));
                (Self::Deribit(c), m, client_config)
            }
            Platform::Bybit => {
                let config = BybitConfig::new(Endpoint::Linear);
                let client_config =
                    tune(BybitClient::config_builder(&url, &config).name(name)).build()?;
                let (c, m) =
                    BybitClient::connect_with(client_config.clone(), BybitAdapter::new(config));
                (Self::Bybit(c), m, client_config)
            }
        };
        // Messages nobody subscribed to (answers, heartbeats): read so that they never hold
        // the connection up under `OverflowPolicy::Wait`.
        tokio::spawn(async move {
            let mut messages = messages;
            while messages.recv().await.is_some() {}
        });
        Ok((client, client_config))
    }

    /// The runtime's handle.
    pub(crate) fn client(&self) -> &Client {
        match self {
            Self::Deribit(c) => c.client(),
            Self::Bybit(c) => c.inner(),
        }
    }

    /// Subscribes to `channel`.
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<SubscriptionStream, BoxError> {
        Ok(match self {
            Self::Deribit(c) => {
                let channel = match channel.split('.').collect::<Vec<_>>().as_slice() {
                    ["book", instrument, _] => Channel::book(instrument, Interval::Ms100),
                    _ => return Err(format!("not a book channel: {channel}").into()),
                };
                c.subscribe(channel).await?
            }
            Self::Bybit(c) => c.subscribe(channel).await?,
        })
    }
}
