//! Close codes and what each means for the next connection, in one function.
//!
//! Discord's table (`shared/PROTOCOLS.md` 3.6): 4004 (authentication failed) and 4010–4014
//! (invalid shard, sharding required, invalid API version, invalid intents, disallowed intents)
//! must not be retried: the client stops and reports the reason. 4007 (invalid `seq`) and 4009
//! (session timed out) need a new session: identify again. Every other close, with a code or
//! without one (a dropped TCP connection), keeps the session: resume.
//!
//! The client's own closes matter too: closing with 1000 or 1001 ends the session on Discord's
//! side (the bot goes offline), so a client that means to resume closes with
//! [`RESUME_CLOSE_CODE`] instead.

/// The code a client closes with when it intends to resume (zombie, Reconnect, Invalid Session
/// `d: true`): anything but 1000/1001 keeps the session; 4000 is the common choice.
pub const RESUME_CLOSE_CODE: u16 = 4000;

/// A gateway close code, by Discord's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 4000: unknown error. Resume.
    UnknownError,
    /// 4001: an invalid opcode was sent. Resume.
    UnknownOpcode,
    /// 4002: an invalid payload was sent. Resume.
    DecodeError,
    /// 4003: a payload was sent before identifying. Resume.
    NotAuthenticated,
    /// 4004: the token is wrong. Fatal.
    AuthenticationFailed,
    /// 4005: more than one Identify. Resume.
    AlreadyAuthenticated,
    /// 4007: an invalid `seq` on Resume. Identify anew.
    InvalidSeq,
    /// 4008: payloads sent too quickly. Resume.
    RateLimited,
    /// 4009: the session timed out. Identify anew.
    SessionTimedOut,
    /// 4010: an invalid shard on Identify. Fatal.
    InvalidShard,
    /// 4011: the bot must shard. Fatal.
    ShardingRequired,
    /// 4012: an invalid API version. Fatal.
    InvalidApiVersion,
    /// 4013: invalid intents. Fatal.
    InvalidIntents,
    /// 4014: intents not enabled or approved. Fatal.
    DisallowedIntents,
    /// Any other code (1000, 1006, a new 4xxx). Resume.
    Other(u16),
}

impl CloseCode {
    /// The code's meaning.
    #[must_use]
    pub fn from_code(code: u16) -> Self {
        match code {
            4000 => Self::UnknownError,
            4001 => Self::UnknownOpcode,
            4002 => Self::DecodeError,
            4003 => Self::NotAuthenticated,
            4004 => Self::AuthenticationFailed,
            4005 => Self::AlreadyAuthenticated,
            4007 => Self::InvalidSeq,
            4008 => Self::RateLimited,
            4009 => Self::SessionTimedOut,
            4010 => Self::InvalidShard,
            4011 => Self::ShardingRequired,
            4012 => Self::InvalidApiVersion,
            4013 => Self::InvalidIntents,
            4014 => Self::DisallowedIntents,
            other => Self::Other(other),
        }
    }

    /// The number.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::UnknownError => 4000,
            Self::UnknownOpcode => 4001,
            Self::DecodeError => 4002,
            Self::NotAuthenticated => 4003,
            Self::AuthenticationFailed => 4004,
            Self::AlreadyAuthenticated => 4005,
            Self::InvalidSeq => 4007,
            Self::RateLimited => 4008,
            Self::SessionTimedOut => 4009,
            Self::InvalidShard => 4010,
            Self::ShardingRequired => 4011,
            Self::InvalidApiVersion => 4012,
            Self::InvalidIntents => 4013,
            Self::DisallowedIntents => 4014,
            Self::Other(code) => code,
        }
    }

    /// Discord's description.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::UnknownError => "unknown error",
            Self::UnknownOpcode => "unknown opcode",
            Self::DecodeError => "decode error",
            Self::NotAuthenticated => "not authenticated",
            Self::AuthenticationFailed => "authentication failed",
            Self::AlreadyAuthenticated => "already authenticated",
            Self::InvalidSeq => "invalid seq",
            Self::RateLimited => "rate limited",
            Self::SessionTimedOut => "session timed out",
            Self::InvalidShard => "invalid shard",
            Self::ShardingRequired => "sharding required",
            Self::InvalidApiVersion => "invalid API version",
            Self::InvalidIntents => "invalid intent(s)",
            Self::DisallowedIntents => "disallowed intent(s)",
            Self::Other(_) => "other close",
        }
    }
}

/// What to do after the server closed the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseAction {
    /// Reconnect (to `resume_gateway_url`) and Resume.
    Resume,
    /// Reconnect (to the discovered gateway URL) and Identify: the session is gone.
    Reidentify,
    /// Stop: retrying cannot help. Report the code.
    Fatal(CloseCode),
}

/// What a close with `code` means; `None` is a connection that ended without a close frame.
///
/// ```
/// use nova_discord::{CloseAction, CloseCode, close_action};
///
/// assert_eq!(close_action(Some(4004)), CloseAction::Fatal(CloseCode::AuthenticationFailed));
/// assert_eq!(close_action(Some(4009)), CloseAction::Reidentify);
/// assert_eq!(close_action(Some(4008)), CloseAction::Resume);
/// assert_eq!(close_action(None), CloseAction::Resume);
/// ```
#[must_use]
pub fn close_action(code: Option<u16>) -> CloseAction {
    let Some(code) = code else {
        return CloseAction::Resume;
    };
    match CloseCode::from_code(code) {
        fatal @ (CloseCode::AuthenticationFailed
        | CloseCode::InvalidShard
        | CloseCode::ShardingRequired
        | CloseCode::InvalidApiVersion
        | CloseCode::InvalidIntents
        | CloseCode::DisallowedIntents) => CloseAction::Fatal(fatal),
        CloseCode::InvalidSeq | CloseCode::SessionTimedOut => CloseAction::Reidentify,
        _ => CloseAction::Resume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_table() {
        for code in 3000..5000u16 {
            let expected = match code {
                4004 | 4010..=4014 => CloseAction::Fatal(CloseCode::from_code(code)),
                4007 | 4009 => CloseAction::Reidentify,
                _ => CloseAction::Resume,
            };
            assert_eq!(close_action(Some(code)), expected, "{code}");
            assert_eq!(CloseCode::from_code(code).code(), code);
        }
        for code in [1000, 1001, 1006, 1011] {
            assert_eq!(close_action(Some(code)), CloseAction::Resume);
        }
        assert_eq!(close_action(None), CloseAction::Resume);
        assert_eq!(
            CloseCode::from_code(4014).description(),
            "disallowed intent(s)"
        );
    }
}
