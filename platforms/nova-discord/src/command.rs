//! What the client sends: Identify (op 2), Resume (op 6) and Heartbeat (op 1), as JSON text.
//!
//! The token is a [`Secret`]: it is exposed only while the payload text is written, and
//! `Debug` of every type here redacts it. Every payload is checked against the gateway's 4096
//! bytes per client payload (Discord closes with 4002 past it). [`Intents`] are the documented
//! bits, [`Intents::PRIVILEGED`] the three that need approval.

use std::ops::{BitOr, BitOrAssign};

use nova_core::Secret;
use serde::Serialize;

use crate::error::CommandError;

/// The largest payload a client may send.
pub const MAX_CLIENT_PAYLOAD: usize = 4096;

/// Gateway intents: which events a session receives.
///
/// ```
/// use nova_discord::Intents;
///
/// let intents = Intents::GUILDS | Intents::GUILD_MESSAGES;
/// assert_eq!(intents.bits(), 513);
/// assert!(!intents.is_privileged());
/// assert!((intents | Intents::MESSAGE_CONTENT).is_privileged());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Intents(u64);

impl Intents {
    /// Guild create/update/delete, roles, channels, threads.
    pub const GUILDS: Self = Self(1 << 0);
    /// Member add/update/remove (privileged).
    pub const GUILD_MEMBERS: Self = Self(1 << 1);
    /// Audit log, bans.
    pub const GUILD_MODERATION: Self = Self(1 << 2);
    /// Emojis and stickers.
    pub const GUILD_EXPRESSIONS: Self = Self(1 << 3);
    /// Integrations.
    pub const GUILD_INTEGRATIONS: Self = Self(1 << 4);
    /// Webhooks.
    pub const GUILD_WEBHOOKS: Self = Self(1 << 5);
    /// Invites.
    pub const GUILD_INVITES: Self = Self(1 << 6);
    /// Voice states.
    pub const GUILD_VOICE_STATES: Self = Self(1 << 7);
    /// Presences (privileged).
    pub const GUILD_PRESENCES: Self = Self(1 << 8);
    /// Messages in guilds.
    pub const GUILD_MESSAGES: Self = Self(1 << 9);
    /// Reactions in guilds.
    pub const GUILD_MESSAGE_REACTIONS: Self = Self(1 << 10);
    /// Typing in guilds.
    pub const GUILD_MESSAGE_TYPING: Self = Self(1 << 11);
    /// Direct messages.
    pub const DIRECT_MESSAGES: Self = Self(1 << 12);
    /// Reactions in DMs.
    pub const DIRECT_MESSAGE_REACTIONS: Self = Self(1 << 13);
    /// Typing in DMs.
    pub const DIRECT_MESSAGE_TYPING: Self = Self(1 << 14);
    /// Message content (privileged).
    pub const MESSAGE_CONTENT: Self = Self(1 << 15);
    /// Scheduled events.
    pub const GUILD_SCHEDULED_EVENTS: Self = Self(1 << 16);
    /// Auto moderation configuration.
    pub const AUTO_MODERATION_CONFIGURATION: Self = Self(1 << 20);
    /// Auto moderation execution.
    pub const AUTO_MODERATION_EXECUTION: Self = Self(1 << 21);
    /// Polls in guilds.
    pub const GUILD_MESSAGE_POLLS: Self = Self(1 << 24);
    /// Polls in DMs.
    pub const DIRECT_MESSAGE_POLLS: Self = Self(1 << 25);
    /// The privileged intents (need approval in the developer portal; else close 4014).
    pub const PRIVILEGED: Self = Self((1 << 1) | (1 << 8) | (1 << 15));

    /// Intents from raw bits (undefined bits are sent as given; Discord closes with 4013).
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The bits.
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether any privileged intent is set.
    #[must_use]
    pub const fn is_privileged(self) -> bool {
        self.0 & Self::PRIVILEGED.0 != 0
    }

    /// Whether every bit of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Intents {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Intents {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// A shard: `[id, total]` on the wire; `id < total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardId {
    id: u32,
    total: u32,
}

impl ShardId {
    /// The only shard of an unsharded bot.
    pub const ONE: Self = Self { id: 0, total: 1 };

    /// Shard `id` of `total`.
    ///
    /// # Errors
    /// [`CommandError::InvalidShard`] unless `id < total`.
    pub const fn new(id: u32, total: u32) -> Result<Self, CommandError> {
        if id < total {
            Ok(Self { id, total })
        } else {
            Err(CommandError::InvalidShard { id, total })
        }
    }

    /// The shard id.
    #[must_use]
    pub const fn id(self) -> u32 {
        self.id
    }

    /// The shard count.
    #[must_use]
    pub const fn total(self) -> u32 {
        self.total
    }

    /// The shard a guild's events go to: `(guild_id >> 22) % total`.
    #[must_use]
    pub fn for_guild(guild_id: u64, total: u32) -> u32 {
        u32::try_from((guild_id >> 22) % u64::from(total.max(1))).unwrap_or(0)
    }
}

/// Identify's `properties`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConnectionProperties {
    /// The operating system.
    pub os: String,
    /// The library name.
    pub browser: String,
    /// The library name.
    pub device: String,
}

impl Default for ConnectionProperties {
    fn default() -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            browser: "nova".to_owned(),
            device: "nova".to_owned(),
        }
    }
}

/// Identify (op 2): starts a session.
///
/// ```
/// use nova_core::Secret;
/// use nova_discord::{Identify, Intents, ShardId};
///
/// let identify = Identify::new(Secret::new("my_token"), Intents::GUILDS | Intents::GUILD_MESSAGES)
///     .with_shard(ShardId::new(0, 2)?);
/// let json: serde_json::Value = serde_json::from_str(&identify.to_json()?)?;
/// assert_eq!(json["op"], 2);
/// assert_eq!(json["d"]["token"], "my_token");
/// assert_eq!(json["d"]["intents"], 513);
/// assert_eq!(json["d"]["shard"], serde_json::json!([0, 2]));
/// assert!(!format!("{identify:?}").contains("my_token"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Identify {
    /// The bot token.
    pub token: Secret,
    /// The intents.
    pub intents: Intents,
    /// `properties`.
    pub properties: ConnectionProperties,
    /// The shard, when sharded.
    pub shard: Option<ShardId>,
    /// `large_threshold` (50–250).
    pub large_threshold: Option<u8>,
}

#[derive(Serialize)]
struct Envelope<D> {
    op: u8,
    d: D,
}

#[derive(Serialize)]
struct IdentifyData<'a> {
    token: &'a str,
    intents: u64,
    properties: &'a ConnectionProperties,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<[u32; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    large_threshold: Option<u8>,
}

impl Identify {
    /// Identify with `token` and `intents`, default properties, no shard.
    #[must_use]
    pub fn new(token: Secret, intents: Intents) -> Self {
        Self {
            token,
            intents,
            properties: ConnectionProperties::default(),
            shard: None,
            large_threshold: None,
        }
    }

    /// Sets [`shard`](Self::shard).
    #[must_use]
    pub fn with_shard(mut self, shard: ShardId) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Sets [`properties`](Self::properties).
    #[must_use]
    pub fn with_properties(mut self, properties: ConnectionProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Sets [`large_threshold`](Self::large_threshold) (clamped to 50–250).
    #[must_use]
    pub fn with_large_threshold(mut self, threshold: u8) -> Self {
        self.large_threshold = Some(threshold.clamp(50, 250));
        self
    }

    /// The payload text. It contains the token: send it, never log it.
    ///
    /// # Errors
    /// [`CommandError::TooLarge`] over 4096 bytes.
    pub fn to_json(&self) -> Result<String, CommandError> {
        let d = IdentifyData {
            token: self.token.expose(),
            intents: self.intents.bits(),
            properties: &self.properties,
            shard: self.shard.map(|s| [s.id, s.total]),
            large_threshold: self.large_threshold,
        };
        to_payload(&Envelope { op: 2, d })
    }
}

/// Resume (op 6): continues a session on a new connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Resume {
    /// The bot token.
    pub token: Secret,
    /// READY's `session_id`.
    pub session_id: String,
    /// The last sequence number received.
    pub seq: u64,
}

#[derive(Serialize)]
struct ResumeData<'a> {
    token: &'a str,
    session_id: &'a str,
    seq: u64,
}

impl Resume {
    /// Resume `session_id` after `seq`.
    #[must_use]
    pub fn new(token: Secret, session_id: impl Into<String>, seq: u64) -> Self {
        Self {
            token,
            session_id: session_id.into(),
            seq,
        }
    }

    /// The payload text. It contains the token: send it, never log it.
    ///
    /// # Errors
    /// [`CommandError::TooLarge`] over 4096 bytes (a session id that long is not Discord's).
    pub fn to_json(&self) -> Result<String, CommandError> {
        let d = ResumeData {
            token: self.token.expose(),
            session_id: &self.session_id,
            seq: self.seq,
        };
        to_payload(&Envelope { op: 6, d })
    }
}

/// Heartbeat (op 1) carrying the last sequence number received (`null` before any).
///
/// ```
/// assert_eq!(nova_discord::heartbeat(Some(251)), r#"{"op":1,"d":251}"#);
/// assert_eq!(nova_discord::heartbeat(None), r#"{"op":1,"d":null}"#);
/// ```
#[must_use]
pub fn heartbeat(seq: Option<u64>) -> String {
    match seq {
        Some(seq) => format!(r#"{{"op":1,"d":{seq}}}"#),
        None => r#"{"op":1,"d":null}"#.to_owned(),
    }
}

fn to_payload<T: Serialize>(value: &T) -> Result<String, CommandError> {
    let text = serde_json::to_string(value).map_err(CommandError::Json)?;
    if text.len() > MAX_CLIENT_PAYLOAD {
        return Err(CommandError::TooLarge {
            len: text.len(),
            max: MAX_CLIENT_PAYLOAD,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_matches_the_docs() {
        let resume = Resume::new(Secret::new("my_token"), "session_id_i_stored", 1337);
        assert_eq!(
            resume.to_json().ok().as_deref(),
            Some(
                r#"{"op":6,"d":{"token":"my_token","session_id":"session_id_i_stored","seq":1337}}"#
            )
        );
        assert!(!format!("{resume:?}").contains("my_token"));
    }

    #[test]
    fn identify_minimal_and_too_large() {
        let identify = Identify::new(Secret::new("t"), Intents::from_bits(513));
        let json = identify.to_json().unwrap_or_default();
        assert!(json.starts_with(r#"{"op":2,"d":{"token":"t","intents":513,"properties":{"os":"#));
        assert!(!json.contains("shard"));
        let huge = Identify::new(Secret::new("x".repeat(5000)), Intents::GUILDS);
        assert!(matches!(huge.to_json(), Err(CommandError::TooLarge { .. })));
    }

    #[test]
    fn shards() {
        assert!(ShardId::new(1, 1).is_err());
        assert!(ShardId::new(0, 0).is_err());
        assert_eq!(ShardId::new(2, 3).map(ShardId::id).ok(), Some(2));
        // (guild_id >> 22) % num_shards, the docs' formula.
        assert_eq!(
            u64::from(ShardId::for_guild(41_771_983_423_143_937, 4)),
            (41_771_983_423_143_937u64 >> 22) % 4
        );
    }
}
