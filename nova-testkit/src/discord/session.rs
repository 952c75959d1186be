//! Sessions: what READY creates and Resume continues, kept apart from connections.
//!
//! Every session has an event log: each dispatch gets the next sequence number and is appended
//! (at most [`event_log_capacity`](super::DiscordSimOptions::event_log_capacity) kept). A
//! connection attached to the session sends the log from its cursor on; a Resume with `seq`
//! attaches a new connection with its cursor at `seq + 1`, so it gets exactly the dispatches
//! the client missed, in order, and RESUMED is appended after them. Only the attached connection
//! sends: a Resume on another connection takes the session over. The ticker appends to every
//! live session, attached or not, and expires sessions detached longer than the resume window.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{DiscordSimOptions, SessionInfo, Shared, events, lock};

/// How many sequence numbers [`SessionInfo::sent_seqs`] keeps.
const SENT_SEQS_KEPT: usize = 100_000;
/// How many ended sessions are remembered.
const DEAD_SESSIONS_KEPT: usize = 1024;

/// One session.
#[derive(Debug)]
struct Record {
    id: String,
    token: String,
    shard: Option<[u32; 2]>,
    intents: u64,
    /// `(seq, payload text)`, oldest first.
    log: VecDeque<(u64, Arc<str>)>,
    last_seq: u64,
    ticks: u64,
    attached: Option<u64>,
    notify: Arc<Notify>,
    detached_at: Option<Instant>,
    live: bool,
    sent_seqs: VecDeque<u64>,
    resumes: u64,
}

impl Record {
    fn append(&mut self, t: &str, d: &str, capacity: usize) {
        self.last_seq += 1;
        let text: Arc<str> = events::dispatch(self.last_seq, t, d).into();
        self.log.push_back((self.last_seq, text));
        while self.log.len() > capacity {
            self.log.pop_front();
        }
        self.notify.notify_one();
    }

    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.attached.is_none() && self.detached_at.is_some_and(|at| now >= at + window)
    }
}

/// Why a Resume was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ResumeRefused {
    /// Unknown, ended or expired session, another token, or `seq` older than the log: op 9.
    Invalid,
    /// `seq` beyond the last dispatch: close 4007.
    BadSeq,
}

/// What a connection needs to follow its session.
#[derive(Debug)]
pub(super) struct Attachment {
    pub(super) session_id: String,
    pub(super) notify: Arc<Notify>,
    /// The next sequence number to send.
    pub(super) cursor: u64,
}

/// Every session of the simulator.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    all: Vec<Record>,
    created: u64,
}

impl Sessions {
    fn find(&mut self, id: &str) -> Option<&mut Record> {
        self.all.iter_mut().find(|r| r.id == id)
    }

    /// Creates a session for an accepted Identify: READY then GUILD_CREATEs in its log.
    pub(super) fn create(
        &mut self,
        token: &str,
        shard: Option<[u32; 2]>,
        intents: u64,
        connection: u64,
        resume_url: &str,
        options: &DiscordSimOptions,
    ) -> Attachment {
        self.created += 1;
        let id = format!(
            "{:016x}{:016x}",
            mix(self.created),
            mix(self.created ^ 0x5eed)
        );
        let mut record = Record {
            id: id.clone(),
            token: token.to_owned(),
            shard,
            intents,
            log: VecDeque::new(),
            last_seq: 0,
            ticks: 0,
            attached: Some(connection),
            notify: Arc::new(Notify::new()),
            detached_at: None,
            live: true,
            sent_seqs: VecDeque::new(),
            resumes: 0,
        };
        let ready = events::ready(&id, resume_url, shard, options.guilds);
        record.append("READY", &ready, options.event_log_capacity);
        for n in 0..options.guilds {
            if let Some(d) = events::guild_create(n, intents) {
                record.append("GUILD_CREATE", &d, options.event_log_capacity);
            }
        }
        let attachment = Attachment {
            session_id: id,
            notify: Arc::clone(&record.notify),
            cursor: 1,
        };
        self.all.push(record);
        self.trim();
        attachment
    }

    /// Resumes `session_id` from `seq` on `connection`, appending RESUMED after what was missed.
    pub(super) fn resume(
        &mut self,
        session_id: &str,
        token: &str,
        seq: u64,
        connection: u64,
        now: Instant,
        options: &DiscordSimOptions,
    ) -> Result<Attachment, ResumeRefused> {
        let record = self.find(session_id).ok_or(ResumeRefused::Invalid)?;
        if !record.live || record.token != token || record.expired(now, options.resume_window) {
            return Err(ResumeRefused::Invalid);
        }
        if seq > record.last_seq {
            return Err(ResumeRefused::BadSeq);
        }
        let oldest = record.log.front().map_or(record.last_seq + 1, |(s, _)| *s);
        if seq + 1 < oldest {
            return Err(ResumeRefused::Invalid);
        }
        record.attached = Some(connection);
        record.detached_at = None;
        record.resumes += 1;
        record.append(
            "RESUMED",
            r#"{"_trace":["nova-sim"]}"#,
            options.event_log_capacity,
        );
        Ok(Attachment {
            session_id: record.id.clone(),
            notify: Arc::clone(&record.notify),
            cursor: seq + 1,
        })
    }

    /// The dispatches from `cursor` on, while `connection` is the one attached; `None` when it
    /// is not (another connection resumed the session, or it ended).
    pub(super) fn pending(
        &mut self,
        session_id: &str,
        connection: u64,
        cursor: u64,
    ) -> Option<Vec<(u64, Arc<str>)>> {
        let record = self.find(session_id)?;
        if record.attached != Some(connection) {
            return None;
        }
        Some(
            record
                .log
                .iter()
                .filter(|(s, _)| *s >= cursor)
                .cloned()
                .collect(),
        )
    }

    /// Records that `seqs` went out on the session's connection.
    pub(super) fn record_sent(&mut self, session_id: &str, seqs: impl IntoIterator<Item = u64>) {
        if let Some(record) = self.find(session_id) {
            record.sent_seqs.extend(seqs);
            while record.sent_seqs.len() > SENT_SEQS_KEPT {
                record.sent_seqs.pop_front();
            }
        }
    }

    /// The connection is gone. `end`: the client closed with 1000/1001, so the session ends.
    pub(super) fn detach(&mut self, session_id: &str, connection: u64, now: Instant, end: bool) {
        if let Some(record) = self.find(session_id)
            && record.attached == Some(connection)
        {
            record.attached = None;
            record.detached_at = Some(now);
            if end {
                record.live = false;
            }
        }
    }

    /// Ends every session that has a connection (Invalid Session `d: false`).
    pub(super) fn invalidate_attached(&mut self) {
        for record in &mut self.all {
            if record.attached.is_some() {
                record.live = false;
            }
        }
    }

    /// Ends one session.
    pub(super) fn invalidate(&mut self, session_id: &str) {
        if let Some(record) = self.find(session_id) {
            record.live = false;
        }
    }

    /// Appends `t`/`d` to every live session; returns how many.
    pub(super) fn emit_all(&mut self, t: &str, d: &str, options: &DiscordSimOptions) -> usize {
        let mut count = 0;
        for record in self.all.iter_mut().filter(|r| r.live) {
            record.append(t, d, options.event_log_capacity);
            count += 1;
        }
        count
    }

    /// One tick: expire, then give every live session its next dispatch.
    fn tick_all(&mut self, options: &DiscordSimOptions, now: Instant) {
        for record in &mut self.all {
            if record.live && record.expired(now, options.resume_window) {
                record.live = false;
            }
            if !record.live {
                continue;
            }
            // Skip what the intents leave out; every session always gets INTERACTION_CREATEs.
            loop {
                let n = record.ticks;
                record.ticks += 1;
                if let Some((t, d)) = events::tick(n, record.intents, options.guilds) {
                    record.append(t, &d, options.event_log_capacity);
                    break;
                }
            }
        }
    }

    /// Every session, in creation order.
    pub(super) fn infos(&self) -> Vec<SessionInfo> {
        self.all
            .iter()
            .map(|r| SessionInfo {
                session_id: r.id.clone(),
                shard: r.shard,
                intents: r.intents,
                last_seq: r.last_seq,
                sent_seqs: r.sent_seqs.iter().copied().collect(),
                resumes: r.resumes,
                live: r.live,
                attached: r.attached.is_some(),
            })
            .collect()
    }

    fn trim(&mut self) {
        let dead = self.all.iter().filter(|r| !r.live).count();
        if dead > DEAD_SESSIONS_KEPT {
            let mut excess = dead - DEAD_SESSIONS_KEPT;
            self.all.retain(|r| {
                if !r.live && excess > 0 {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }
}

/// splitmix64: a well-spread session id from a counter.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ticker: every `tick`, unless paused, a dispatch for every live session.
pub(super) async fn tick(shared: Arc<Shared>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if shared.paused.load(Ordering::Relaxed) {
            continue;
        }
        lock(&shared.sessions).tick_all(&shared.options, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> DiscordSimOptions {
        DiscordSimOptions::default().with_guilds(1)
    }

    #[test]
    fn resume_replays_exactly_the_missed_dispatches() {
        let options = options();
        let now = Instant::now();
        let mut sessions = Sessions::default();
        let a = sessions.create("t", None, u64::MAX, 1, "ws://r", &options);
        // READY (1) and GUILD_CREATE (2).
        let sent = sessions.pending(&a.session_id, 1, 1).unwrap_or_default();
        assert_eq!(sent.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![1, 2]);
        sessions.detach(&a.session_id, 1, now, false);
        sessions.tick_all(&options, now);
        sessions.tick_all(&options, now);
        let b = sessions.resume(&a.session_id, "t", 2, 2, now, &options);
        let b = b.map_err(|e| format!("{e:?}"));
        let Ok(b) = b else { panic!("resume refused") };
        assert_eq!(b.cursor, 3);
        let replay = sessions.pending(&a.session_id, 2, 3).unwrap_or_default();
        assert_eq!(replay.len(), 3);
        assert!(replay[2].1.contains("\"RESUMED\""));
        // The old connection no longer sends.
        assert!(sessions.pending(&a.session_id, 1, 3).is_none());
    }

    #[test]
    fn refusals() {
        let options = options().with_event_log_capacity(2);
        let now = Instant::now();
        let mut sessions = Sessions::default();
        let a = sessions.create("t", None, u64::MAX, 1, "ws://r", &options);
        assert_eq!(
            sessions
                .resume(&a.session_id, "t", 9, 2, now, &options)
                .err(),
            Some(ResumeRefused::BadSeq)
        );
        assert_eq!(
            sessions
                .resume(&a.session_id, "other", 1, 2, now, &options)
                .err(),
            Some(ResumeRefused::Invalid)
        );
        for _ in 0..3 {
            sessions.tick_all(&options, now);
        }
        // seq 1 is gone from a log of 2.
        assert_eq!(
            sessions
                .resume(&a.session_id, "t", 1, 2, now, &options)
                .err(),
            Some(ResumeRefused::Invalid)
        );
        sessions.detach(&a.session_id, 1, now, true);
        assert_eq!(
            sessions
                .resume(&a.session_id, "t", 5, 2, now, &options)
                .err(),
            Some(ResumeRefused::Invalid)
        );
    }
}
