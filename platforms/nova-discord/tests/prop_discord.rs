//! Property tests of everything that reads what the Discord gateway sends: the envelope
//! ([`RawPayload`], [`GatewayEvent`]), the typed dispatches ([`Event`], [`Dispatch`]), the
//! `zlib-stream` inflater ([`ZlibStreamInflater`], against the messages deflated), and the
//! adapter's callbacks run through `nova_core::testing::TestContext` (classification, payload
//! handling, the Ready/Resumed verdict, heartbeats).
//!
//! Inputs: arbitrary bytes, arbitrary JSON with the gateway's field names, valid gateway payloads
//! mutated (fields dropped, types swapped, numbers at the limits, huge strings; see
//! `nova_testkit::hostile`), and compressed streams cut at any point, corrupted, or made of
//! arbitrary bytes. Property: no panic, a typed error, a deflated stream inflated back exactly
//! however it is split, and the adapter's session unchanged by a payload that failed to parse.
//!
//! Cases per property: 2,000 by default (500 for whole compressed streams);
//! `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use flate2::{Compress, Compression, FlushCompress};
use nova_core::testing::TestContext;
use nova_core::{AuthHandler, HeartbeatHandler, Message, MessageHandler, Secret};
use nova_discord::{
    Discord, DiscordConfig, Dispatch, Event, GatewayEvent, InflateError, Intents, RawPayload,
    ZlibStreamInflater,
};
use nova_testkit::hostile::strategy::{config, messages};
use proptest::prelude::*;

/// The field names the gateway's parsers look at.
const KEYS: &[&str] = &[
    "op",
    "d",
    "s",
    "t",
    "heartbeat_interval",
    "session_id",
    "resume_gateway_url",
    "user",
    "id",
    "username",
    "guilds",
    "unavailable",
    "application",
    "flags",
    "v",
    "shard",
    "channel_id",
    "guild_id",
    "content",
    "author",
    "timestamp",
    "name",
    "members",
    "channels",
    "type",
    "data",
    "token",
    "member",
    "READY",
    "RESUMED",
    "GUILD_CREATE",
    "MESSAGE_CREATE",
    "_trace",
];

/// Valid payloads of every op the gateway sends, and every typed dispatch.
const VALID: &[&str] = &[
    r#"{"op":10,"d":{"heartbeat_interval":41250,"_trace":["gateway-prd"]},"s":null,"t":null}"#,
    r#"{"op":11,"d":null}"#,
    r#"{"op":1,"d":null}"#,
    r#"{"op":7,"d":null}"#,
    r#"{"op":9,"d":false}"#,
    r#"{"op":0,"s":1,"t":"READY","d":{"v":10,"user":{"id":"80351110224678912","username":"Nelly","discriminator":"1337","bot":true},"guilds":[{"id":"41771983423143937","unavailable":true}],"session_id":"9f1c","resume_gateway_url":"wss://gateway-us-east1-b.discord.gg","shard":[0,1],"application":{"id":"1","flags":0}}}"#,
    r#"{"op":0,"s":2,"t":"RESUMED","d":{}}"#,
    r#"{"op":0,"s":3,"t":"GUILD_CREATE","d":{"id":"41771983423143937","name":"Discord Developers","unavailable":false,"member_count":2,"channels":[{"id":"41771983423143937","type":0,"name":"general"}],"members":[]}}"#,
    r#"{"op":0,"s":4,"t":"GUILD_DELETE","d":{"id":"41771983423143937","unavailable":true}}"#,
    r#"{"op":0,"s":5,"t":"MESSAGE_CREATE","d":{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"41771983423143937","author":{"id":"53908099506183680","username":"Mason"},"content":"hello","timestamp":"2017-07-11T17:27:07.299000+00:00","tts":false,"mention_everyone":false,"mentions":[],"attachments":[],"embeds":[]}}"#,
    r#"{"op":0,"s":6,"t":"MESSAGE_DELETE","d":{"id":"1","channel_id":"2","guild_id":"3"}}"#,
    r#"{"op":0,"s":7,"t":"TYPING_START","d":{"channel_id":"2","guild_id":"3","user_id":"4","timestamp":1500000000}}"#,
    r#"{"op":0,"s":8,"t":"INTERACTION_CREATE","d":{"id":"5","application_id":"1","type":2,"token":"interaction-token","version":1,"data":{"id":"6","name":"ping","type":1},"channel_id":"2","guild_id":"3"}}"#,
    r#"{"op":0,"s":9,"t":"SOMETHING_NEW","d":{"x":[1,2]}}"#,
];

/// A hostile message (`nova_testkit::hostile::strategy::messages`) from the valid ones above.
fn hostile() -> impl Strategy<Value = Message> {
    messages(VALID, KEYS)
}

fn adapter() -> Discord {
    let config = DiscordConfig::new(
        Secret::new("token"),
        "ws://127.0.0.1:9/gateway",
        Intents::GUILDS,
    );
    Discord::new(config)
}

/// The server side of `zlib-stream`: one deflate context, a sync flush per message.
struct Deflater(Compress);

impl Deflater {
    fn new() -> Self {
        Self(Compress::new(Compression::fast(), true))
    }

    fn message(&mut self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + 64);
        let mut input = text;
        loop {
            let before = self.0.total_in();
            self.0
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            let used = usize::try_from(self.0.total_in() - before).unwrap();
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

/// Typed inflate errors, never anything else.
fn typed(e: &InflateError) -> bool {
    matches!(
        e,
        InflateError::Corrupt(_)
            | InflateError::TooLarge { .. }
            | InflateError::Utf8(_)
            | InflateError::StreamEnded
    ) && !e.to_string().is_empty()
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Every decoder answers hostile input with a value or a typed error, never a panic.
    #[test]
    fn decoders_never_panic(message in hostile()) {
        if let Some(text) = message.as_text() {
            if let Ok(raw) = RawPayload::parse(text) {
                let _ = GatewayEvent::from_raw(&raw);
                if let Some(d) = raw.d {
                    for name in ["READY", "RESUMED", "GUILD_CREATE", "GUILD_DELETE", "MESSAGE_CREATE", "MESSAGE_DELETE", "INTERACTION_CREATE", "TYPING_START", "X"] {
                        let _ = Event::from_dispatch(name, d).map(|e| e.name().to_owned());
                    }
                }
            }
            if let Err(e) = GatewayEvent::parse(text) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
        if let Err(e) = Dispatch::from_message(&message) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// The adapter's callbacks take hostile input without panicking; a payload that does not
    /// parse leaves the session as it was.
    #[test]
    fn adapter_callbacks_never_panic(message in hostile()) {
        let mut discord = adapter();
        let mut t = TestContext::new();
        let _ = discord.message_type(&message);
        let before = format!("{:?}", discord.session());
        let parses = message.as_text().is_some_and(|text| GatewayEvent::parse(text).is_ok());
        match t.run(|ctx| discord.handle_message(message.clone(), ctx)) {
            Ok(()) => {}
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(!parses);
                prop_assert_eq!(&format!("{:?}", discord.session()), &before);
            }
        }
        let _ = t.run(|ctx| discord.handle_auth_response(&message, ctx));
        let _ = t.run(|ctx| discord.handle_heartbeat(&message, ctx));
        if let Some(at) = discord.next_heartbeat() {
            let _ = t.run(|ctx| discord.heartbeat_due(at, ctx));
        }
        let _ = t.run(|ctx| discord.heartbeat_due(Instant::now() + Duration::from_secs(3600), ctx));
    }

    /// Arbitrary bytes, in arbitrary pieces, through the inflater: a message, more to wait for,
    /// or a typed error.
    #[test]
    fn the_inflater_takes_any_bytes(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8), suffix in any::<bool>()) {
        let mut inflater = ZlibStreamInflater::new(4096);
        for mut frame in frames {
            if suffix {
                frame.extend_from_slice(&nova_discord::ZLIB_SUFFIX);
            }
            match inflater.push_text(&frame) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(typed(&e), "{e:?}");
                    inflater.reset();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    /// A stream of deflated messages, cut at any points into frames, inflates back to exactly
    /// the messages; one corrupted byte gives the same, other text, or a typed error.
    #[test]
    fn deflated_streams_inflate_back_however_split(
        picks in proptest::collection::vec((0..VALID.len(), any::<bool>()), 1..6),
        cuts in proptest::collection::vec(any::<u16>(), 0..6),
        flip in any::<Option<(u16, u8)>>(),
    ) {
        let mut deflater = Deflater::new();
        let texts: Vec<String> = picks
            .iter()
            .map(|&(i, big)| if big { VALID[i].replace("hello", &"hello ".repeat(4000)) } else { VALID[i].to_owned() })
            .collect();
        let mut inflater = ZlibStreamInflater::new(1 << 20);
        let mut corrupt = ZlibStreamInflater::new(1 << 20);
        let mut corrupted = false;
        for text in &texts {
            let mut stream = deflater.message(text.as_bytes());
            // Cut the message into frames at the chosen points.
            let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (stream.len() + 1)).collect();
            points.sort_unstable();
            points.dedup();
            let mut got = None;
            let mut from = 0;
            for &to in points.iter().chain(std::iter::once(&stream.len())) {
                if to <= from && to != stream.len() {
                    continue;
                }
                let out = inflater.push_text(&stream[from..to]);
                prop_assert!(out.is_ok(), "{:?}", out);
                if let Ok(Some(t)) = out {
                    got = Some(t.to_owned());
                }
                from = to;
            }
            prop_assert_eq!(got.as_deref(), Some(text.as_str()));

            // The same message with one byte changed, through a second context.
            if let (Some((at, mask)), false) = (flip, corrupted) {
                let at = usize::from(at) % stream.len();
                stream[at] ^= mask.max(1);
                match corrupt.push_text(&stream) {
                    Ok(_) => {}
                    Err(e) => {
                        prop_assert!(typed(&e), "{e:?}");
                        corrupted = true;
                    }
                }
            } else if !corrupted {
                prop_assert!(corrupt.push_text(&stream).is_ok());
            }
        }
    }
}
