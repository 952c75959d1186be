//! Typed dispatch events (op 0), with any other dispatch kept raw.
//!
//! [`Event::from_dispatch`] decodes `d` by the event name `t`: READY, RESUMED, GUILD_CREATE,
//! GUILD_DELETE, MESSAGE_CREATE, MESSAGE_DELETE, INTERACTION_CREATE and TYPING_START get types;
//! every other name becomes [`Event::Unknown`] holding `d` as unparsed JSON text
//! ([`RawValue`]), so nothing Discord sends is lost and nothing unknown costs a parse. The
//! types carry the fields an application commonly needs; unknown fields are ignored, optional
//! ones are `Option` or defaulted, so additions on Discord's side do not break decoding.
//! Snowflake ids arrive as strings and become [`Id`]. An interaction's `token` (it authorises
//! replies) is a [`Secret`].

use std::fmt;

use nova_core::Secret;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;

/// A snowflake id. Discord sends them as strings; numbers are accepted too.
///
/// ```
/// use nova_discord::Id;
///
/// let id: Id = serde_json::from_str(r#""175928847299117063""#)?;
/// assert_eq!(id.get(), 175928847299117063);
/// assert_eq!(id.timestamp_ms(), 1462015105796);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(u64);

impl Id {
    /// Wraps a number.
    #[must_use]
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Milliseconds since the Unix epoch at which the id was made.
    #[must_use]
    pub const fn timestamp_ms(self) -> u64 {
        (self.0 >> 22) + 1_420_070_400_000
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snowflake (a string of digits)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                v.parse().map(Id).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A user (the fields bots use most).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// The user's id.
    pub id: Id,
    /// The username.
    pub username: String,
    /// The display name, if set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Whether it is a bot.
    #[serde(default)]
    pub bot: bool,
}

/// A guild the session is in but whose data has not come yet (READY), or that went away
/// (GUILD_DELETE).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnavailableGuild {
    /// The guild's id.
    pub id: Id,
    /// `true` while unavailable; on GUILD_DELETE, absent when the bot was removed.
    #[serde(default)]
    pub unavailable: bool,
}

/// The application a session belongs to.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartialApplication {
    /// The application id.
    pub id: Id,
    /// Its flags.
    #[serde(default)]
    pub flags: u64,
}

/// READY: a new session.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ready {
    /// The API version.
    pub v: u8,
    /// The bot user.
    pub user: User,
    /// The guilds, unavailable until their GUILD_CREATE.
    pub guilds: Vec<UnavailableGuild>,
    /// The session to resume.
    pub session_id: String,
    /// Where to resume it.
    pub resume_gateway_url: String,
    /// `[shard_id, num_shards]` when sharded.
    #[serde(default)]
    pub shard: Option<[u32; 2]>,
    /// The application.
    pub application: PartialApplication,
}

/// A channel (the common fields).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Channel {
    /// The channel's id.
    pub id: Id,
    /// Its type (0 = text, 2 = voice, …).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A guild, as GUILD_CREATE sends it when available (the common fields).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Guild {
    /// The guild's id.
    pub id: Id,
    /// Its name.
    pub name: String,
    /// Its owner.
    #[serde(default)]
    pub owner_id: Option<Id>,
    /// Whether it is large.
    #[serde(default)]
    pub large: bool,
    /// Its member count.
    #[serde(default)]
    pub member_count: Option<u64>,
    /// When the bot joined (ISO 8601).
    #[serde(default)]
    pub joined_at: Option<String>,
    /// Its channels.
    #[serde(default)]
    pub channels: Vec<Channel>,
}

/// GUILD_CREATE: a guild became available, or the bot joined one; or, during an outage, the
/// guild is still unavailable.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
#[non_exhaustive]
pub enum GuildCreate {
    /// The guild's data.
    Available(Guild),
    /// Only its id: still unavailable.
    Unavailable(UnavailableGuild),
}

impl GuildCreate {
    /// The guild's id, either way.
    #[must_use]
    pub fn id(&self) -> Id {
        match self {
            Self::Available(guild) => guild.id,
            Self::Unavailable(guild) => guild.id,
        }
    }
}

/// MESSAGE_CREATE: a message (the common fields).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The message's id.
    pub id: Id,
    /// Its channel.
    pub channel_id: Id,
    /// Its guild, outside DMs.
    #[serde(default)]
    pub guild_id: Option<Id>,
    /// Its author.
    pub author: User,
    /// Its text; empty without the `MESSAGE_CONTENT` intent (except DMs and mentions).
    #[serde(default)]
    pub content: String,
    /// When it was sent (ISO 8601).
    pub timestamp: String,
    /// When it was last edited.
    #[serde(default)]
    pub edited_timestamp: Option<String>,
    /// Whether it is text-to-speech.
    #[serde(default)]
    pub tts: bool,
    /// Whether it mentions everyone.
    #[serde(default)]
    pub mention_everyone: bool,
    /// The users it mentions.
    #[serde(default)]
    pub mentions: Vec<User>,
    /// Whether it is pinned.
    #[serde(default)]
    pub pinned: bool,
    /// Its type (0 = default, 19 = reply, …).
    #[serde(rename = "type", default)]
    pub kind: u8,
}

/// MESSAGE_DELETE.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageDelete {
    /// The deleted message.
    pub id: Id,
    /// Its channel.
    pub channel_id: Id,
    /// Its guild.
    #[serde(default)]
    pub guild_id: Option<Id>,
}

/// TYPING_START.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypingStart {
    /// The channel.
    pub channel_id: Id,
    /// The guild.
    #[serde(default)]
    pub guild_id: Option<Id>,
    /// Who types.
    pub user_id: Id,
    /// When they started (Unix seconds).
    pub timestamp: u64,
}

/// A guild member as an interaction carries it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// The user.
    #[serde(default)]
    pub user: Option<User>,
    /// Their role ids.
    #[serde(default)]
    pub roles: Vec<Id>,
}

/// An application command's data in an interaction.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct InteractionData {
    /// The command's id.
    #[serde(default)]
    pub id: Option<Id>,
    /// The command's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The command's type.
    #[serde(rename = "type", default)]
    pub kind: Option<u8>,
}

/// INTERACTION_CREATE (the common fields).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Interaction {
    /// The interaction's id.
    pub id: Id,
    /// The application it is for.
    pub application_id: Id,
    /// Its type (1 = ping, 2 = application command, 3 = component, …).
    #[serde(rename = "type")]
    pub kind: u8,
    /// The command data.
    #[serde(default)]
    pub data: Option<InteractionData>,
    /// The guild, if in one.
    #[serde(default)]
    pub guild_id: Option<Id>,
    /// The channel.
    #[serde(default)]
    pub channel_id: Option<Id>,
    /// The member who invoked it (in guilds).
    #[serde(default)]
    pub member: Option<Member>,
    /// The user who invoked it (in DMs).
    #[serde(default)]
    pub user: Option<User>,
    /// The continuation token for replies: a credential, never printed.
    #[serde(deserialize_with = "secret")]
    pub token: Secret,
    /// Always 1.
    #[serde(default)]
    pub version: u8,
    /// The invoker's locale.
    #[serde(default)]
    pub locale: Option<String>,
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    String::deserialize(deserializer).map(Secret::new)
}

/// A dispatch's event, by its name `t`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// READY.
    Ready(Box<Ready>),
    /// RESUMED: the replay after a Resume is complete.
    Resumed,
    /// GUILD_CREATE.
    GuildCreate(Box<GuildCreate>),
    /// GUILD_DELETE.
    GuildDelete(UnavailableGuild),
    /// MESSAGE_CREATE.
    MessageCreate(Box<Message>),
    /// MESSAGE_DELETE.
    MessageDelete(MessageDelete),
    /// INTERACTION_CREATE.
    InteractionCreate(Box<Interaction>),
    /// TYPING_START.
    TypingStart(TypingStart),
    /// Any other dispatch, kept as received.
    Unknown {
        /// Its `t`.
        name: String,
        /// Its `d`, unparsed.
        data: Box<RawValue>,
    },
}

impl Event {
    /// Decodes the `d` of a dispatch named `name`.
    ///
    /// # Errors
    /// When a known event's `d` does not have its shape. Unknown names never fail.
    ///
    /// ```
    /// use nova_discord::Event;
    /// use serde_json::value::RawValue;
    ///
    /// let d = RawValue::from_string(r#"{"id":"1","guild_id":"2"}"#.into())?;
    /// let event = Event::from_dispatch("AUTO_MODERATION_RULE_CREATE", &d)?;
    /// assert!(matches!(event, Event::Unknown { ref name, .. } if name == "AUTO_MODERATION_RULE_CREATE"));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn from_dispatch(name: &str, data: &RawValue) -> Result<Self, serde_json::Error> {
        let text = data.get();
        Ok(match name {
            "READY" => Self::Ready(Box::new(serde_json::from_str(text)?)),
            "RESUMED" => Self::Resumed,
            "GUILD_CREATE" => Self::GuildCreate(Box::new(serde_json::from_str(text)?)),
            "GUILD_DELETE" => Self::GuildDelete(serde_json::from_str(text)?),
            "MESSAGE_CREATE" => Self::MessageCreate(Box::new(serde_json::from_str(text)?)),
            "MESSAGE_DELETE" => Self::MessageDelete(serde_json::from_str(text)?),
            "INTERACTION_CREATE" => Self::InteractionCreate(Box::new(serde_json::from_str(text)?)),
            "TYPING_START" => Self::TypingStart(serde_json::from_str(text)?),
            _ => Self::Unknown {
                name: name.to_owned(),
                data: data.to_owned(),
            },
        })
    }

    /// The dispatch name (`t`).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Ready(_) => "READY",
            Self::Resumed => "RESUMED",
            Self::GuildCreate(_) => "GUILD_CREATE",
            Self::GuildDelete(_) => "GUILD_DELETE",
            Self::MessageCreate(_) => "MESSAGE_CREATE",
            Self::MessageDelete(_) => "MESSAGE_DELETE",
            Self::InteractionCreate(_) => "INTERACTION_CREATE",
            Self::TypingStart(_) => "TYPING_START",
            Self::Unknown { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(name: &str, d: &str) -> Event {
        let raw = RawValue::from_string(d.to_owned()).unwrap_or_else(|e| panic!("{e}"));
        Event::from_dispatch(name, &raw).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn ready_from_the_docs() {
        let d = r#"{"v":10,"user":{"id":"111","username":"bot","bot":true},"guilds":[{"id":"222","unavailable":true}],"session_id":"abc123","resume_gateway_url":"wss://gateway-us-east1-b.discord.gg","application":{"id":"111","flags":0}}"#;
        let Event::Ready(ready) = decode("READY", d) else {
            panic!("not READY")
        };
        assert_eq!(ready.session_id, "abc123");
        assert_eq!(
            ready.resume_gateway_url,
            "wss://gateway-us-east1-b.discord.gg"
        );
        assert_eq!(ready.guilds[0].id, Id::new(222));
        assert!(ready.user.bot);
        assert_eq!(ready.shard, None);
    }

    #[test]
    fn guild_create_either_way() {
        let available = decode(
            "GUILD_CREATE",
            r#"{"id":"5","name":"g","channels":[{"id":"6","type":0,"name":"general"}],"member_count":3,"roles":[]}"#,
        );
        let Event::GuildCreate(guild) = available else {
            panic!("not GUILD_CREATE")
        };
        assert!(matches!(*guild, GuildCreate::Available(ref g) if g.channels.len() == 1));
        let unavailable = decode("GUILD_CREATE", r#"{"id":"5","unavailable":true}"#);
        let Event::GuildCreate(guild) = unavailable else {
            panic!("not GUILD_CREATE")
        };
        assert!(matches!(*guild, GuildCreate::Unavailable(ref g) if g.unavailable));
        assert_eq!(guild.id(), Id::new(5));
    }

    #[test]
    fn message_and_interaction() {
        let message = decode(
            "MESSAGE_CREATE",
            r#"{"id":"1","channel_id":"2","guild_id":"3","author":{"id":"4","username":"u"},"content":"hi","timestamp":"2026-01-01T00:00:00+00:00","type":0,"embeds":[]}"#,
        );
        assert!(
            matches!(message, Event::MessageCreate(ref m) if m.content == "hi" && m.guild_id == Some(Id::new(3)))
        );
        let interaction = decode(
            "INTERACTION_CREATE",
            r#"{"id":"1","application_id":"2","type":2,"data":{"id":"3","name":"ping","type":1},"token":"very-secret","version":1}"#,
        );
        let Event::InteractionCreate(interaction) = interaction else {
            panic!("not INTERACTION_CREATE")
        };
        assert_eq!(interaction.token.expose(), "very-secret");
        assert!(!format!("{interaction:?}").contains("very-secret"));
        assert_eq!(
            interaction.data.and_then(|d| d.name).as_deref(),
            Some("ping")
        );
    }

    #[test]
    fn small_ones() {
        assert!(matches!(decode("RESUMED", "null"), Event::Resumed));
        assert!(matches!(
            decode(
                "TYPING_START",
                r#"{"channel_id":"1","user_id":"2","timestamp":3}"#
            ),
            Event::TypingStart(TypingStart { timestamp: 3, .. })
        ));
        assert!(matches!(
            decode("GUILD_DELETE", r#"{"id":"1"}"#),
            Event::GuildDelete(UnavailableGuild {
                unavailable: false,
                ..
            })
        ));
        assert!(matches!(
            decode("MESSAGE_DELETE", r#"{"id":"1","channel_id":"2"}"#),
            Event::MessageDelete(_)
        ));
    }

    #[test]
    fn unknown_kept_raw_and_bad_known_fails() {
        let event = decode("SOMETHING_NEW", r#"{"a": [1, 2]}"#);
        assert_eq!(event.name(), "SOMETHING_NEW");
        assert!(
            matches!(event, Event::Unknown { ref data, .. } if data.get() == r#"{"a": [1, 2]}"#)
        );
        let raw =
            RawValue::from_string(r#"{"id":"x"}"#.to_owned()).unwrap_or_else(|e| panic!("{e}"));
        assert!(Event::from_dispatch("MESSAGE_CREATE", &raw).is_err());
    }
}
