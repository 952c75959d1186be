//! [`Shards`]: N shards of one bot in one process, each its own client (its own session and
//! resume), sharing one [`IdentifyLimiter`] so that Identify is paced by `max_concurrency`
//! (one per bucket `shard_id % max_concurrency` per 5 s) across all of them.

use std::sync::Arc;

use nova_core::{Client, ClientConfig, ClientConfigBuilder, ConfigError, Messages};

use crate::adapter::{Discord, DiscordConfig};
use crate::command::ShardId;
use crate::limiter::IdentifyLimiter;

/// One running shard.
#[derive(Debug)]
#[non_exhaustive]
pub struct Shard {
    /// `[id, total]`.
    pub id: ShardId,
    /// Its client handle.
    pub client: Client,
    /// Its inbound messages: every dispatch as received (see [`Dispatch`](crate::Dispatch)).
    pub messages: Messages,
}

/// N clients, one per shard (see the module docs).
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
}

impl Shards {
    /// Starts shards `0..total` from `base` (its `shard` and `limiter` are set per shard);
    /// `customize` adjusts each client's configuration (backoff, name, ...).
    ///
    /// # Errors
    /// When `total` is 0, or a client configuration is invalid.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn connect(
        base: &DiscordConfig,
        total: u32,
        limiter: Arc<IdentifyLimiter>,
        customize: impl Fn(ClientConfigBuilder) -> ClientConfigBuilder,
    ) -> Result<Self, ConfigError> {
        let mut shards = Vec::with_capacity(total as usize);
        for id in 0..total {
            let shard = ShardId::new(id, total).map_err(|e| ConfigError::Invalid {
                field: "shards",
                reason: e.to_string(),
            })?;
            let config = base.clone().with_shard(shard).with_limiter(limiter.clone());
            let builder =
                ClientConfig::builder(config.connect_url()).name(format!("discord-shard-{id}"));
            let client_config = customize(builder).build()?;
            let (client, messages) = Client::connect(client_config, Discord::new(config));
            shards.push(Shard {
                id: shard,
                client,
                messages,
            });
        }
        Ok(Self { shards })
    }

    /// The shards, in id order.
    #[must_use]
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shards, owned (to read each one's messages in its own task).
    #[must_use]
    pub fn into_shards(self) -> Vec<Shard> {
        self.shards
    }

    /// Closes every shard (code 1000: the sessions end).
    ///
    /// # Errors
    /// The first error of a close.
    pub async fn close(&self) -> Result<(), nova_core::Error> {
        for shard in &self.shards {
            shard.client.close(1000, "shutting down").await?;
        }
        Ok(())
    }
}
