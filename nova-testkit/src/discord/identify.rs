//! Identify checks, in Discord's order, and the process-wide identify budget.
//!
//! Checks: token (4004), shard (4010 when `shard_id >= num_shards` or `num_shards == 0`; 4011
//! when sharding is required and `shard` is missing), intents (4013 for undefined bits, 4014
//! for privileged ones not allowed). Then the budget: `session_start_limit.remaining` (none left
//! closes with 4004, as Discord resets the token) and the identify buckets: Identify of shard
//! `s` uses bucket `s % max_concurrency`, and a bucket takes one Identify per
//! `identify_interval`; a faster one is refused with Invalid Session (op 9).

use std::collections::HashMap;

use tokio::time::Instant;

use super::{DiscordSimOptions, KNOWN_INTENTS, PRIVILEGED_INTENTS, SessionStartLimit};

/// The fields of Identify's `d` the simulator checks.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Identify {
    pub(super) token: String,
    pub(super) intents: u64,
    pub(super) shard: Option<[u32; 2]>,
}

impl Identify {
    /// Reads Identify's `d`; `None` when a required field is missing or mistyped (4002).
    pub(super) fn parse(d: &serde_json::Value) -> Option<Self> {
        let token = d.get("token")?.as_str()?.to_owned();
        let intents = d.get("intents")?.as_u64()?;
        d.get("properties")?.as_object()?;
        let shard = match d.get("shard") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => {
                let pair = value.as_array()?;
                if pair.len() != 2 {
                    return None;
                }
                let id = u32::try_from(pair[0].as_u64()?).ok()?;
                let count = u32::try_from(pair[1].as_u64()?).ok()?;
                Some([id, count])
            }
        };
        Some(Self {
            token,
            intents,
            shard,
        })
    }
}

/// What becomes of an Identify.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Accepted: send READY.
    Accept,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// Its bucket identified too recently: Invalid Session.
    RateLimited,
}

/// The identify budget of the whole simulator (Discord's is per bot).
#[derive(Debug)]
pub(super) struct IdentifyState {
    remaining: u32,
    reset_at: Instant,
    last_by_bucket: HashMap<u32, Instant>,
}

impl IdentifyState {
    pub(super) fn new(options: &DiscordSimOptions, now: Instant) -> Self {
        Self {
            remaining: options.session_start_total,
            reset_at: now + options.session_start_reset_after,
            last_by_bucket: HashMap::new(),
        }
    }

    fn refill(&mut self, options: &DiscordSimOptions, now: Instant) {
        if now >= self.reset_at {
            self.remaining = options.session_start_total;
            self.reset_at = now + options.session_start_reset_after;
        }
    }

    /// `session_start_limit` as `/gateway/bot` reports it.
    pub(super) fn limit(&mut self, options: &DiscordSimOptions, now: Instant) -> SessionStartLimit {
        self.refill(options, now);
        SessionStartLimit {
            total: options.session_start_total,
            remaining: self.remaining,
            reset_after: u64::try_from((self.reset_at - now).as_millis()).unwrap_or(u64::MAX),
            max_concurrency: options.max_concurrency.max(1),
        }
    }

    /// Checks `identify` (whose token is `token_ok`) and, when accepted, spends the budget.
    pub(super) fn check(
        &mut self,
        options: &DiscordSimOptions,
        identify: &Identify,
        token_ok: bool,
        now: Instant,
    ) -> Outcome {
        if !token_ok {
            return Outcome::Close(4004, "Authentication failed.");
        }
        match identify.shard {
            Some([id, count]) if count == 0 || id >= count => {
                return Outcome::Close(4010, "Invalid shard.");
            }
            None if options.sharding_required => {
                return Outcome::Close(4011, "Sharding required.");
            }
            _ => {}
        }
        if identify.intents & !KNOWN_INTENTS != 0 {
            return Outcome::Close(4013, "Invalid intent(s).");
        }
        let privileged = identify.intents & PRIVILEGED_INTENTS;
        if privileged & !options.allowed_privileged_intents != 0 {
            return Outcome::Close(4014, "Disallowed intent(s).");
        }
        self.refill(options, now);
        if self.remaining == 0 {
            return Outcome::Close(4004, "Authentication failed.");
        }
        let shard_id = identify.shard.map_or(0, |[id, _]| id);
        let bucket = shard_id % options.max_concurrency.max(1);
        if let Some(last) = self.last_by_bucket.get(&bucket)
            && now < *last + options.identify_interval
        {
            return Outcome::RateLimited;
        }
        self.last_by_bucket.insert(bucket, now);
        self.remaining -= 1;
        Outcome::Accept
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn identify(intents: u64, shard: Option<[u32; 2]>) -> Identify {
        Identify {
            token: "t".into(),
            intents,
            shard,
        }
    }

    #[test]
    fn close_codes_in_order() {
        let options = DiscordSimOptions::default()
            .with_sharding_required(true)
            .with_allowed_privileged_intents(0);
        let now = Instant::now();
        let mut state = IdentifyState::new(&options, now);
        let cases = [
            (identify(1, Some([0, 1])), false, 4004),
            (identify(1, Some([1, 1])), true, 4010),
            (identify(1, Some([0, 0])), true, 4010),
            (identify(1, None), true, 4011),
            (identify(1 << 40, Some([0, 1])), true, 4013),
            (identify(1 << 15, Some([0, 1])), true, 4014),
        ];
        for (identify, token_ok, code) in cases {
            match state.check(&options, &identify, token_ok, now) {
                Outcome::Close(got, _) => assert_eq!(got, code),
                other => panic!("expected {code}, got {other:?}"),
            }
        }
        assert_eq!(state.limit(&options, now).remaining, 1000);
    }

    #[test]
    fn buckets_and_budget() {
        let options = DiscordSimOptions::default()
            .with_max_concurrency(2)
            .with_session_start_total(3);
        let now = Instant::now();
        let mut state = IdentifyState::new(&options, now);
        let check = |state: &mut IdentifyState, shard, at| {
            state.check(&options, &identify(1, Some([shard, 4])), true, at)
        };
        assert_eq!(check(&mut state, 0, now), Outcome::Accept);
        assert_eq!(check(&mut state, 1, now), Outcome::Accept);
        assert_eq!(check(&mut state, 2, now), Outcome::RateLimited);
        let later = now + Duration::from_secs(5);
        assert_eq!(check(&mut state, 2, later), Outcome::Accept);
        assert_eq!(state.limit(&options, later).remaining, 0);
        assert_eq!(
            check(&mut state, 3, later + Duration::from_secs(5)),
            Outcome::Close(4004, "Authentication failed.")
        );
    }

    #[test]
    fn parse_identify() {
        let d = serde_json::json!({"token":"t","intents":513,"properties":{"os":"linux"},"shard":[1,2]});
        assert_eq!(Identify::parse(&d), Some(identify(513, Some([1, 2]))));
        let no_props = serde_json::json!({"token":"t","intents":513});
        assert_eq!(Identify::parse(&no_props), None);
    }
}
