//! Gateway opcodes (`op`): the fourteen Discord documents, and any other kept as a number.
//!
//! | op | name | direction |
//! |---|---|---|
//! | 0 | Dispatch | receive |
//! | 1 | Heartbeat | send/receive |
//! | 2 | Identify | send |
//! | 3 | Presence Update | send |
//! | 4 | Voice State Update | send |
//! | 6 | Resume | send |
//! | 7 | Reconnect | receive |
//! | 8 | Request Guild Members | send |
//! | 9 | Invalid Session | receive |
//! | 10 | Hello | receive |
//! | 11 | Heartbeat ACK | receive |
//! | 31 | Request Soundboard Sounds | send |
//! | 43 | Request Channel Info | send |

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A gateway opcode. An op Discord adds later arrives as [`OpCode::Unknown`] with its number,
/// so a new op never fails a parse.
///
/// ```
/// use nova_discord::OpCode;
///
/// assert_eq!(OpCode::from(10), OpCode::Hello);
/// assert_eq!(OpCode::from(99), OpCode::Unknown(99));
/// assert_eq!(OpCode::Resume.code(), 6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// 0: an event (`t`) with a sequence number (`s`).
    Dispatch,
    /// 1: a heartbeat; from the server, a request for one now.
    Heartbeat,
    /// 2: starts a new session.
    Identify,
    /// 3: updates the bot's presence.
    PresenceUpdate,
    /// 4: joins, moves or leaves voice channels.
    VoiceStateUpdate,
    /// 6: resumes a session.
    Resume,
    /// 7: the server asks the client to reconnect and resume.
    Reconnect,
    /// 8: asks for guild members.
    RequestGuildMembers,
    /// 9: the session is invalid; `d` says whether it can be resumed.
    InvalidSession,
    /// 10: the first payload, with the heartbeat interval.
    Hello,
    /// 11: a heartbeat was received.
    HeartbeatAck,
    /// 31: asks for soundboard sounds.
    RequestSoundboardSounds,
    /// 43: asks for channel info.
    RequestChannelInfo,
    /// Any other op, kept.
    Unknown(u64),
}

impl OpCode {
    /// The number on the wire.
    #[must_use]
    pub const fn code(self) -> u64 {
        match self {
            Self::Dispatch => 0,
            Self::Heartbeat => 1,
            Self::Identify => 2,
            Self::PresenceUpdate => 3,
            Self::VoiceStateUpdate => 4,
            Self::Resume => 6,
            Self::Reconnect => 7,
            Self::RequestGuildMembers => 8,
            Self::InvalidSession => 9,
            Self::Hello => 10,
            Self::HeartbeatAck => 11,
            Self::RequestSoundboardSounds => 31,
            Self::RequestChannelInfo => 43,
            Self::Unknown(code) => code,
        }
    }
}

impl From<u64> for OpCode {
    fn from(code: u64) -> Self {
        match code {
            0 => Self::Dispatch,
            1 => Self::Heartbeat,
            2 => Self::Identify,
            3 => Self::PresenceUpdate,
            4 => Self::VoiceStateUpdate,
            6 => Self::Resume,
            7 => Self::Reconnect,
            8 => Self::RequestGuildMembers,
            9 => Self::InvalidSession,
            10 => Self::Hello,
            11 => Self::HeartbeatAck,
            31 => Self::RequestSoundboardSounds,
            43 => Self::RequestChannelInfo,
            other => Self::Unknown(other),
        }
    }
}

impl Serialize for OpCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.code())
    }
}

impl<'de> Deserialize<'de> for OpCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..=64 {
            assert_eq!(OpCode::from(code).code(), code);
        }
        assert_eq!(OpCode::from(5), OpCode::Unknown(5));
    }

    #[test]
    fn serde_as_a_number() {
        assert_eq!(
            serde_json::to_string(&OpCode::HeartbeatAck).ok().as_deref(),
            Some("11")
        );
        let op: Result<OpCode, _> = serde_json::from_str("77");
        assert_eq!(op.ok(), Some(OpCode::Unknown(77)));
    }
}
