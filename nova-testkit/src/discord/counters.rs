//! What the simulator reports: its [`Counters`], and what it knows of each connection
//! ([`ConnectionInfo`]), session ([`SessionInfo`]) and of the identify budget
//! ([`SessionStartLimit`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// What the simulator has counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Gateway WebSocket connections accepted (both listeners).
    pub connections: u64,
    /// Of those, the ones on the resume listener (`resume_gateway_url`).
    pub resume_url_connections: u64,
    /// HTTP requests answered (any path, any status).
    pub http_requests: u64,
    /// Identifies accepted (READY sent).
    pub identifies: u64,
    /// Identifies answered op 9 because their bucket identified less than
    /// [`identify_interval`](super::DiscordSimOptions::identify_interval) before.
    pub identify_rate_limited: u64,
    /// Identifies and Resumes closed with 4004.
    pub auth_failures: u64,
    /// Resumes accepted (RESUMED sent).
    pub resumes: u64,
    /// Resumes refused (op 9 `d: false` or 4007).
    pub resume_failures: u64,
    /// Heartbeats (op 1) received.
    pub heartbeats: u64,
    /// Heartbeat ACKs (op 11) sent.
    pub heartbeat_acks: u64,
    /// Heartbeats whose `d` was not the last sequence sent on their connection.
    pub heartbeat_seq_mismatches: u64,
    /// Server heartbeat requests (op 1) sent.
    pub heartbeat_requests: u64,
    /// Connections closed for not heartbeating.
    pub heartbeat_timeouts: u64,
    /// Dispatches (op 0) sent, replays included.
    pub dispatches: u64,
    /// Reconnects (op 7) sent.
    pub reconnects: u64,
    /// Invalid Sessions (op 9) sent, for any reason.
    pub invalid_sessions: u64,
    /// Connections closed with 4008 for exceeding the send limit.
    pub rate_limited: u64,
    /// Close frames the simulator sent, any code.
    pub closes: u64,
    /// Connections that got no Hello ([`DiscordHandle::withhold_hello`](super::DiscordHandle::withhold_hello)).
    pub hellos_withheld: u64,
}

/// What the simulator knows about one gateway connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's number, from 0 in accept order.
    pub id: u64,
    /// Whether the connection is still open.
    pub open: bool,
    /// Whether it came in on the resume listener.
    pub via_resume_url: bool,
    /// Whether it asked for `compress=zlib-stream`.
    pub compressed: bool,
    /// The session it identified or resumed, if any.
    pub session_id: Option<String>,
    /// Payloads the client sent.
    pub received: u64,
    /// The close code the client sent, if it closed with one.
    pub client_close_code: Option<u16>,
    /// The close code the server sent, if it closed with one.
    pub server_close_code: Option<u16>,
}

/// What the simulator knows about one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The `session_id` READY gave.
    pub session_id: String,
    /// Identify's `shard`, if given.
    pub shard: Option<[u32; 2]>,
    /// Identify's `intents`.
    pub intents: u64,
    /// The last sequence number given to a dispatch of this session.
    pub last_seq: u64,
    /// Every sequence number written to a connection of this session, in write order,
    /// replays included (at most the last 100,000).
    pub sent_seqs: Vec<u64>,
    /// Resumes accepted.
    pub resumes: u64,
    /// Whether it can still be resumed.
    pub live: bool,
    /// Whether a connection is attached now.
    pub attached: bool,
}

/// The `session_start_limit` now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStartLimit {
    /// Identifies allowed per reset period.
    pub total: u32,
    /// Identifies left.
    pub remaining: u32,
    /// Milliseconds until `remaining` goes back to `total`.
    pub reset_after: u64,
    /// Identify buckets per 5 s.
    pub max_concurrency: u32,
}

#[derive(Debug, Default)]
pub(super) struct AtomicCounters {
    pub(super) connections: AtomicU64,
    pub(super) resume_url_connections: AtomicU64,
    pub(super) http_requests: AtomicU64,
    pub(super) identifies: AtomicU64,
    pub(super) identify_rate_limited: AtomicU64,
    pub(super) auth_failures: AtomicU64,
    pub(super) resumes: AtomicU64,
    pub(super) resume_failures: AtomicU64,
    pub(super) heartbeats: AtomicU64,
    pub(super) heartbeat_acks: AtomicU64,
    pub(super) heartbeat_seq_mismatches: AtomicU64,
    pub(super) heartbeat_requests: AtomicU64,
    pub(super) heartbeat_timeouts: AtomicU64,
    pub(super) dispatches: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) invalid_sessions: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) closes: AtomicU64,
    pub(super) hellos_withheld: AtomicU64,
}

impl AtomicCounters {
    pub(super) fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            connections: get(&self.connections),
            resume_url_connections: get(&self.resume_url_connections),
            http_requests: get(&self.http_requests),
            identifies: get(&self.identifies),
            identify_rate_limited: get(&self.identify_rate_limited),
            auth_failures: get(&self.auth_failures),
            resumes: get(&self.resumes),
            resume_failures: get(&self.resume_failures),
            heartbeats: get(&self.heartbeats),
            heartbeat_acks: get(&self.heartbeat_acks),
            heartbeat_seq_mismatches: get(&self.heartbeat_seq_mismatches),
            heartbeat_requests: get(&self.heartbeat_requests),
            heartbeat_timeouts: get(&self.heartbeat_timeouts),
            dispatches: get(&self.dispatches),
            reconnects: get(&self.reconnects),
            invalid_sessions: get(&self.invalid_sessions),
            rate_limited: get(&self.rate_limited),
            closes: get(&self.closes),
            hellos_withheld: get(&self.hellos_withheld),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
