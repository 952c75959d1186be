//! The dispatches the simulator makes: their names, their `d` objects and the op 0 envelope.
//!
//! Ids are snowflakes (`(milliseconds since 2015-01-01) << 22 | counter`) built from a fixed
//! clock, so runs are repeatable. The ticker cycles through MESSAGE_CREATE, INTERACTION_CREATE,
//! TYPING_START and GUILD_SCHEDULED_EVENT_CREATE, leaving out what the session's intents do not
//! ask for, as Discord does.

/// `GUILDS`: GUILD_CREATE and friends.
const INTENT_GUILDS: u64 = 1 << 0;
/// `GUILD_MESSAGES`: MESSAGE_CREATE in guilds.
const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
/// `GUILD_MESSAGE_TYPING`: TYPING_START in guilds.
const INTENT_GUILD_MESSAGE_TYPING: u64 = 1 << 11;
/// `MESSAGE_CONTENT` (privileged): without it, `content` is empty.
const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;
/// `GUILD_SCHEDULED_EVENTS`.
const INTENT_GUILD_SCHEDULED_EVENTS: u64 = 1 << 16;

/// The simulated bot's user id.
pub(super) const BOT_USER_ID: u64 = 1_100_000_000_000_000_001;
/// A fixed "now" for snowflakes: 2026-01-01 in milliseconds since the Discord epoch.
const SNOWFLAKE_MS: u64 = 1_767_225_600_000 - 1_420_070_400_000;

/// A snowflake numbered `n`.
pub(super) fn snowflake(n: u64) -> u64 {
    (SNOWFLAKE_MS << 22) | (n & 0x3F_FFFF)
}

/// The id of guild number `n`.
pub(super) fn guild_id(n: u32) -> u64 {
    snowflake(1000 + u64::from(n))
}

/// The op 0 envelope around `d`.
pub(super) fn dispatch(seq: u64, t: &str, d: &str) -> String {
    format!(r#"{{"op":0,"s":{seq},"t":"{t}","d":{d}}}"#)
}

/// READY's `d`.
pub(super) fn ready(
    session_id: &str,
    resume_url: &str,
    shard: Option<[u32; 2]>,
    guilds: u32,
) -> String {
    let guilds: Vec<String> = (0..guilds)
        .map(|n| format!(r#"{{"id":"{}","unavailable":true}}"#, guild_id(n)))
        .collect();
    let shard = match shard {
        Some([id, count]) => format!(r#","shard":[{id},{count}]"#),
        None => String::new(),
    };
    format!(
        r#"{{"v":10,"user":{{"id":"{BOT_USER_ID}","username":"nova-sim","discriminator":"0","global_name":null,"avatar":null,"bot":true}},"guilds":[{}],"session_id":"{session_id}","resume_gateway_url":"{resume_url}"{shard},"application":{{"id":"{BOT_USER_ID}","flags":0}},"_trace":["nova-sim"]}}"#,
        guilds.join(",")
    )
}

/// GUILD_CREATE's `d` for guild number `n`, when the intents ask for it.
pub(super) fn guild_create(n: u32, intents: u64) -> Option<String> {
    if intents & INTENT_GUILDS == 0 {
        return None;
    }
    let id = guild_id(n);
    let channel = snowflake(2000 + u64::from(n));
    Some(format!(
        r#"{{"id":"{id}","name":"sim guild {n}","icon":null,"owner_id":"{owner}","unavailable":false,"large":false,"member_count":3,"joined_at":"2026-01-01T00:00:00.000000+00:00","roles":[],"emojis":[],"features":[],"channels":[{{"id":"{channel}","type":0,"name":"general","guild_id":"{id}","position":0}}],"threads":[],"members":[],"voice_states":[],"presences":[],"stage_instances":[],"guild_scheduled_events":[]}}"#,
        owner = snowflake(3)
    ))
}

/// The `n`th ticker dispatch `(t, d)` of a session with `intents`; `None` when its intents
/// leave this one out.
pub(super) fn tick(n: u64, intents: u64, guilds: u32) -> Option<(&'static str, String)> {
    let guild = u32::try_from(n % u64::from(guilds.max(1))).unwrap_or(0);
    let guild_id = guild_id(guild);
    let channel_id = snowflake(2000 + u64::from(guild));
    let id = snowflake(10_000 + n);
    let author = snowflake(5 + n % 3);
    match n % 8 {
        3 => Some((
            "INTERACTION_CREATE",
            format!(
                r#"{{"id":"{id}","application_id":"{BOT_USER_ID}","type":2,"data":{{"id":"{cmd}","name":"ping","type":1}},"guild_id":"{guild_id}","channel_id":"{channel_id}","member":{{"user":{{"id":"{author}","username":"user{u}"}},"roles":[],"joined_at":"2026-01-01T00:00:00.000000+00:00"}},"token":"sim-interaction-token-{n}","version":1,"locale":"en-US","app_permissions":"0"}}"#,
                cmd = snowflake(4),
                u = n % 3
            ),
        )),
        5 if intents & INTENT_GUILD_MESSAGE_TYPING != 0 => Some((
            "TYPING_START",
            format!(
                r#"{{"channel_id":"{channel_id}","guild_id":"{guild_id}","user_id":"{author}","timestamp":{ts}}}"#,
                ts = 1_767_225_600 + n
            ),
        )),
        7 if intents & INTENT_GUILD_SCHEDULED_EVENTS != 0 => Some((
            "GUILD_SCHEDULED_EVENT_CREATE",
            format!(
                r#"{{"id":"{id}","guild_id":"{guild_id}","name":"event {n}","scheduled_start_time":"2026-02-01T00:00:00.000000+00:00","privacy_level":2,"status":1,"entity_type":3}}"#
            ),
        )),
        5 | 7 => None,
        _ if intents & INTENT_GUILD_MESSAGES != 0 => {
            let content = if intents & INTENT_MESSAGE_CONTENT != 0 {
                format!("message {n}")
            } else {
                String::new()
            };
            Some((
                "MESSAGE_CREATE",
                format!(
                    r#"{{"id":"{id}","channel_id":"{channel_id}","guild_id":"{guild_id}","author":{{"id":"{author}","username":"user{u}","discriminator":"0","global_name":null,"avatar":null}},"content":"{content}","timestamp":"2026-01-01T00:00:00.000000+00:00","edited_timestamp":null,"tts":false,"mention_everyone":false,"mentions":[],"mention_roles":[],"attachments":[],"embeds":[],"pinned":false,"type":0}}"#,
                    u = n % 3
                ),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dispatch_is_json() {
        let all = u64::MAX;
        let texts = [
            ready("s", "ws://x", Some([0, 1]), 2),
            guild_create(0, all).unwrap_or_default(),
        ];
        for d in texts
            .into_iter()
            .chain((0..16).filter_map(|n| tick(n, all, 2).map(|(_, d)| d)))
        {
            let text = dispatch(1, "X", &d);
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn intents_filter_dispatches() {
        assert!(guild_create(0, 0).is_none());
        let names: Vec<_> = (0..8)
            .filter_map(|n| tick(n, 0, 1).map(|(t, _)| t))
            .collect();
        assert_eq!(names, vec!["INTERACTION_CREATE"]);
        let with_content = tick(0, INTENT_GUILD_MESSAGES | INTENT_MESSAGE_CONTENT, 1);
        assert!(with_content.is_some_and(|(_, d)| d.contains("message 0")));
    }
}
