//! Discord Gateway v10 for nova: the adapter ([`Discord`], [`Shards`]) and the protocol pieces it
//! is built from.
//!
//! Each module is one concept, sans-IO where it can be (it takes `Instant`s and returns
//! decisions; the runtime owns sockets and timers):
//!
//! | piece | what it does |
//! |---|---|
//! | [`OpCode`], [`RawPayload`], [`GatewayEvent`] | the envelope `{op, d, s, t}`, parsed once; unknown ops kept |
//! | [`Event`] | typed READY, RESUMED, GUILD_CREATE/DELETE, MESSAGE_CREATE/DELETE, INTERACTION_CREATE, TYPING_START; other dispatches kept raw |
//! | [`Identify`], [`Resume`], [`heartbeat`], [`Intents`], [`ShardId`] | what the client sends, token as a [`nova_core::Secret`], 4096-byte limit checked |
//! | [`close_action`], [`CloseCode`] | the close-code table: fatal (4004, 4010–4014), re-identify (4007, 4009), resume (the rest) |
//! | [`GatewaySession`], [`NextConnect`] | `session_id`, `resume_gateway_url`, last `s`, and resume / identify / stop after any disconnect |
//! | [`Heartbeat`] | first beat after `interval × jitter`, then every interval; a missing ACK at the next beat is a zombie |
//! | [`SendLimiter`] | 120 payloads per connection per 60 s, every write counted, the application's sends held back to leave a reserve for heartbeats and Identify/Resume |
//! | [`IdentifyLimiter`] | one 5 s bucket per `shard_id % max_concurrency`, shared by the shards of a process; the daily `session_start_limit` |
//! | [`ZlibStreamInflater`] | `compress=zlib-stream`: one context per connection, messages end at `00 00 ff ff`, bounded, typed errors |
//! | [`Discovery`] | `GET /gateway/bot` with reqwest + rustls (ring), token in a sensitive header |
//! | [`Discord`], [`DiscordConfig`], [`Dispatch`] | the adapter: nova-core's handler traits over the pieces above |
//! | [`Shards`] | N shards in one process, one client each, sharing one [`IdentifyLimiter`] |
//! | [`telemetry`] | the `nova_discord_*` metrics: `session_start_limit.remaining`, heartbeat ACK latency, verdicts, connections given up |
//!
//! Wire facts: `shared/PROTOCOLS.md` section 3. Tested against
//! `nova_testkit::discord::DiscordSim`.

mod adapter;
mod close;
mod command;
mod discovery;
mod error;
mod event;
mod heartbeat;
mod inflate;
mod limiter;
mod opcode;
mod payload;
mod send_limit;
mod session;
mod shards;
pub mod telemetry;

pub use adapter::{DEFAULT_HELLO_TIMEOUT, Discord, DiscordConfig, Dispatch};
pub use close::{CloseAction, CloseCode, RESUME_CLOSE_CODE, close_action};
pub use command::{
    ConnectionProperties, Identify, Intents, MAX_CLIENT_PAYLOAD, Resume, ShardId, heartbeat,
};
pub use discovery::{DEFAULT_API_URL, Discovery, GatewayBot, SessionStartLimit};
pub use error::{CommandError, DecodeError, DiscoveryError, InflateError};
pub use event::{
    Channel, Event, Guild, GuildCreate, Id, Interaction, InteractionData, Member, Message,
    MessageDelete, PartialApplication, Ready, TypingStart, UnavailableGuild, User,
};
pub use heartbeat::{Heartbeat, HeartbeatAction};
pub use inflate::{DEFAULT_MAX_MESSAGE, ZLIB_SUFFIX, ZlibStreamInflater};
pub use limiter::{Acquire, IDENTIFY_WINDOW, IdentifyLimiter, SessionStartReport};
pub use opcode::OpCode;
pub use payload::{GatewayEvent, RawPayload};
pub use send_limit::{SEND_LIMIT, SEND_WINDOW, SendLimiter, WINDOW_MARGIN_DIVISOR};
pub use session::{ConnectParams, Disconnect, GatewaySession, NextConnect, Session};
pub use shards::{Shard, Shards};
