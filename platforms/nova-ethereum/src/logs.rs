//! The `logs` tracker: the logs the application has, and how the logs of a reorg — removed and
//! replaced — reach it without being dropped as duplicates or delivered twice.
//!
//! A log's sequence value is its position ([`log_sequence`](crate::log_sequence)), checked as
//! monotonic: the runtime drops a log at or below the last position delivered. A reorg sends
//! logs at positions already delivered, so the tracker remembers the logs it delivered from the
//! last `max_reorg_depth` blocks (at most [`MAX_REMEMBERED_LOGS`]) with their block hashes and
//! judges each new one:
//!
//! | the log | what the application gets | its sequence |
//! |---|---|---|
//! | `removed: true` (geth and most nodes send these on a reorg) | the log, as sent; it is forgotten | none (always delivered) |
//! | delivered already (same block hash, same index) | nothing | its position (a duplicate) |
//! | past the last position, in a block not seen with another hash | the log | its position |
//! | in a block seen with another hash, or at or below the last position | the delivered logs from that height on that the node has not removed itself, flagged `removed: true` (anvil sends none), then the log ([`LogReorg`]) | a snapshot at its position: accepted, and the last position goes back to it |
//!
//! After a reconnect, the backfill (`eth_getLogs`) starts at the oldest remembered block, so a
//! reorg that happened while disconnected shows: a remembered block whose logs are gone or have
//! another hash, or a log at a height passed without one. Then the logs from that height on are
//! delivered as one [`LogReorg`] message (the removed ones and the new ones up to one past the
//! last position), valued one past the last position, followed by the newer logs.
//!
//! Limits: a block replaced by one without matching logs, with no matching log at or below the
//! last position after it, shows nothing on a node that does not send removed logs (anvil) —
//! the `logs` stream alone cannot see it. Live logs that arrive while the backfill runs are
//! judged after it; one that replaces a delivered log then comes without the removed copies.

use std::collections::{BTreeMap, HashMap, VecDeque};

use nova_core::{RequestId, Sequence};
use serde::Deserialize;
use serde_json::Value;

use crate::adapter::{log_sequence, log_sequence_block};
use crate::reorg::LogReorg;
use crate::types::Log;

/// At most this many delivered logs are remembered per subscription (oldest forgotten first).
pub(crate) const MAX_REMEMBERED_LOGS: usize = 10_000;

/// How a live log relates to the delivered ones.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// Delivered already (or too old to judge).
    Same,
    /// Not delivered, past the last position.
    New,
    /// The chain changed from this block on.
    Replaces(u64),
}

/// A live log's sequence and, on a reorg, the delivered logs it removes (flagged).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) sequence: Option<Sequence>,
    pub(crate) removed: Vec<Log>,
}

/// An `eth_getLogs` backfill under way.
#[derive(Debug)]
struct Fetch {
    id: RequestId,
    /// The runtime's last position when it asked.
    last: u64,
    /// The live logs the runtime holds back meanwhile, in arrival order.
    held: VecDeque<Log>,
    /// How many messages the runtime has held back (logs it holds without a position too).
    holding: usize,
    hold_cap: usize,
}

/// What a backfill answer led to.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Not the answer to this tracker's backfill.
    NotOurs,
    /// The backfill failed: nothing is delivered.
    Failed(String),
    /// Deliver these, in order.
    Done(Delivery),
}

/// What a backfill delivers, in sequence order.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// The logs a reorg changed, with the sequence value of their message.
    pub(crate) reorg: Option<(LogReorg, u64)>,
    /// The logs after them, each at its position.
    pub(crate) logs: Vec<Log>,
}

/// The state of one `logs` subscription (see the module docs).
#[derive(Debug)]
pub(crate) struct LogTracker {
    depth: u64,
    /// Delivered logs, by position.
    seen: BTreeMap<u64, Log>,
    /// The block hash of every block in `seen`.
    blocks: BTreeMap<u64, Option<String>>,
    /// Logs of blocks below this one were forgotten: they cannot be judged.
    floor: u64,
    /// The runtime's last position, as it computes it.
    last: Option<u64>,
    accept_next: bool,
    fetch: Option<Fetch>,
    /// Sequences decided for logs the runtime will ask about, by (block hash, log index).
    decided: HashMap<(Option<String>, u64), Sequence>,
}

fn position(log: &Log) -> Option<u64> {
    Some(log_sequence(log.block_number?, log.log_index?))
}

fn key(log: &Log) -> (Option<String>, u64) {
    (log.block_hash.clone(), log.log_index.unwrap_or_default())
}

impl LogTracker {
    /// A tracker that remembers the logs of the last `depth` blocks.
    pub(crate) fn new(depth: u64) -> Self {
        Self {
            depth: depth.max(1),
            seen: BTreeMap::new(),
            blocks: BTreeMap::new(),
            floor: 0,
            last: None,
            accept_next: false,
            fetch: None,
            decided: HashMap::new(),
        }
    }

    /// A live log: its sequence (none: delivered as it is, or the runtime asks later, after the
    /// backfill under way) and what it removes.
    pub(crate) fn on_live(&mut self, log: &Log) -> Live {
        if let Some(fetch) = &mut self.fetch {
            let overflow = fetch.holding >= fetch.hold_cap;
            fetch.holding = fetch.holding.saturating_add(1);
            if !log.removed && position(log).is_some() {
                fetch.held.push_back(log.clone());
            }
            if overflow {
                tracing::warn!("logs: too many live logs held back; the backfill is given up");
                if let Some(fetch) = self.fetch.take() {
                    self.fail(fetch.held);
                }
            }
            if log.removed {
                self.forget(log);
            }
            return Live::default();
        }
        if log.removed {
            self.forget(log);
            return Live::default();
        }
        let Some(pos) = position(log) else {
            return Live::default();
        };
        self.decided.clear();
        let (sequence, removed) = self.judge(log, pos);
        Live {
            sequence: Some(sequence),
            removed,
        }
    }

    /// The sequence of a log the runtime asks about.
    pub(crate) fn sequence_of(&self, log: &Log) -> Option<Sequence> {
        if log.removed {
            return None;
        }
        let pos = position(log)?;
        if let Some(sequence) = self.decided.get(&key(log)) {
            return Some(*sequence);
        }
        Some(match self.classify(log, pos) {
            Class::Replaces(_) => Sequence::snapshot(pos),
            Class::Same | Class::New => Sequence::monotonic(pos),
        })
    }

    /// After a reconnect: the first block to fetch logs from, when something was delivered;
    /// `None`: nothing to fetch.
    pub(crate) fn on_reconnect(
        &mut self,
        last: Option<u64>,
        hold_cap: usize,
        id: impl FnOnce() -> RequestId,
    ) -> Option<(RequestId, u64)> {
        // The runtime dropped what it held and any backfill under way.
        self.fetch = None;
        self.decided.clear();
        self.last = last;
        let last = last?;
        let from = self
            .blocks
            .keys()
            .next()
            .map_or(log_sequence_block(last), |b| {
                (*b).min(log_sequence_block(last))
            });
        let id = id();
        self.fetch = Some(Fetch {
            id: id.clone(),
            last,
            held: VecDeque::new(),
            holding: 0,
            hold_cap: hold_cap.max(1),
        });
        Some((id, from))
    }

    /// The answer to the backfill request `id`: the `eth_getLogs` result, or why there is none.
    pub(crate) fn on_answer(&mut self, id: &RequestId, answer: Result<Value, String>) -> Answer {
        let Some(fetch) = self.fetch.take_if(|f| f.id == *id) else {
            return Answer::NotOurs;
        };
        let logs = match answer {
            Ok(Value::Array(items)) => items
                .iter()
                .map(Log::deserialize)
                .collect::<Result<Vec<Log>, _>>()
                .map_err(|e| format!("eth_getLogs: malformed log: {e}")),
            Ok(other) => Err(format!(
                "eth_getLogs: a list of logs was expected, got {}",
                match other {
                    Value::Object(_) => "an object",
                    Value::Null => "null",
                    _ => "a scalar",
                }
            )),
            Err(e) => Err(format!("eth_getLogs: {e}")),
        };
        let mut fetched: Vec<(u64, Log)> = match logs {
            Ok(logs) => logs
                .into_iter()
                .filter(|l| !l.removed)
                .filter_map(|l| Some((position(&l)?, l)))
                .collect(),
            Err(reason) => {
                self.fail(fetch.held);
                return Answer::Failed(reason);
            }
        };
        fetched.sort_by_key(|(pos, _)| *pos);
        fetched.dedup_by_key(|(pos, _)| *pos);
        let last = fetch.last;
        let changed = self.changed_from(&fetched, last);
        let mut delivery = Delivery::default();
        if let Some(block) = changed {
            let removed = self.take_from(block);
            let edge = last.saturating_add(1);
            let mut replaced = Vec::new();
            for (pos, log) in fetched {
                if pos > edge {
                    self.remember(log.clone());
                    delivery.logs.push(log);
                } else if log.block_number.is_some_and(|b| b >= block) {
                    self.remember(log.clone());
                    replaced.push(log);
                }
            }
            tracing::info!(
                block,
                removed = removed.len(),
                replaced = replaced.len(),
                "logs: reorg while disconnected"
            );
            delivery.reorg = Some((LogReorg::new(removed, replaced), edge));
            self.last = Some(edge);
        } else {
            for (pos, log) in fetched {
                if pos > last {
                    self.remember(log.clone());
                    delivery.logs.push(log);
                }
            }
        }
        if let Some(pos) = delivery.logs.last().and_then(position) {
            self.last = Some(pos);
        }
        self.settle(fetch.held);
        Answer::Done(delivery)
    }

    /// The lowest block whose logs the fetched ones show changed, if any: a remembered block
    /// whose logs are gone or in another block now, or a log at or below the last position
    /// that was not delivered.
    fn changed_from(&self, fetched: &[(u64, Log)], last: u64) -> Option<u64> {
        let mut now: BTreeMap<u64, &Option<String>> = BTreeMap::new();
        for (_, log) in fetched {
            if let Some(block) = log.block_number {
                now.entry(block).or_insert(&log.block_hash);
            }
        }
        let mut changed: Option<u64> = None;
        let mut lower = |block: u64| changed = Some(changed.map_or(block, |c| c.min(block)));
        for (block, hash) in &self.blocks {
            if now.get(block) != Some(&hash) {
                lower(*block);
            }
        }
        for (pos, log) in fetched {
            let Some(block) = log.block_number else {
                continue;
            };
            if *pos <= last && block >= self.floor && !self.has(log) {
                lower(block);
            }
        }
        changed
    }

    /// The held logs, as the runtime takes them back after the backfill.
    fn settle(&mut self, held: VecDeque<Log>) {
        for log in held {
            let Some(pos) = position(&log) else {
                continue;
            };
            let (sequence, removed) = self.judge(&log, pos);
            if !removed.is_empty() {
                tracing::warn!(
                    removed = removed.len(),
                    "logs: a reorg during the backfill; the removed logs are not re-sent"
                );
            }
            self.decided.insert(key(&log), sequence);
        }
    }

    /// The backfill failed: the runtime delivers nothing of it and takes the next log whatever
    /// its position.
    fn fail(&mut self, held: VecDeque<Log>) {
        self.accept_next = true;
        self.settle(held);
    }

    /// A log the runtime checks now: its sequence, what the runtime does with it, and the
    /// delivered logs it removes.
    fn judge(&mut self, log: &Log, pos: u64) -> (Sequence, Vec<Log>) {
        let class = self.classify(log, pos);
        let accept_anyway = std::mem::take(&mut self.accept_next);
        match class {
            Class::Replaces(block) => {
                let removed = self.take_from(block);
                self.remember(log.clone());
                self.last = Some(pos);
                (Sequence::snapshot(pos), removed)
            }
            Class::New => {
                self.remember(log.clone());
                self.last = Some(pos);
                (Sequence::monotonic(pos), Vec::new())
            }
            Class::Same => {
                if accept_anyway {
                    self.last = Some(pos);
                }
                (Sequence::monotonic(pos), Vec::new())
            }
        }
    }

    fn classify(&self, log: &Log, pos: u64) -> Class {
        let Some(block) = log.block_number else {
            return Class::New;
        };
        let below_last = self.last.is_some_and(|last| pos <= last);
        match self.blocks.get(&block) {
            Some(hash) if *hash == log.block_hash => {
                if below_last || self.has(log) {
                    Class::Same
                } else {
                    Class::New
                }
            }
            Some(_) => Class::Replaces(block),
            None if below_last => {
                if block < self.floor {
                    tracing::debug!(block, "logs: a log older than the remembered blocks");
                    Class::Same
                } else {
                    Class::Replaces(block)
                }
            }
            None => Class::New,
        }
    }

    fn has(&self, log: &Log) -> bool {
        position(log)
            .and_then(|pos| self.seen.get(&pos))
            .is_some_and(|l| l.block_hash == log.block_hash)
    }

    /// Takes out the remembered logs from `block` on, flagged removed, oldest first.
    fn take_from(&mut self, block: u64) -> Vec<Log> {
        self.blocks.split_off(&block);
        self.seen
            .split_off(&log_sequence(block, 0))
            .into_values()
            .map(|mut l| {
                l.removed = true;
                l
            })
            .collect()
    }

    /// A log the node says was removed: not to be removed again.
    fn forget(&mut self, log: &Log) {
        let (Some(pos), Some(block)) = (position(log), log.block_number) else {
            return;
        };
        if self.has(log) {
            self.seen.remove(&pos);
            let range = log_sequence(block, 0)..=log_sequence(block, u64::MAX);
            if self.seen.range(range).next().is_none() {
                self.blocks.remove(&block);
            }
        }
    }

    fn remember(&mut self, log: Log) {
        let (Some(pos), Some(block)) = (position(&log), log.block_number) else {
            return;
        };
        self.blocks.insert(block, log.block_hash.clone());
        self.seen.insert(pos, log);
        let newest = self.blocks.keys().next_back().copied().unwrap_or_default();
        while let Some((&oldest, _)) = self.blocks.first_key_value() {
            if oldest.saturating_add(self.depth) > newest && self.seen.len() <= MAX_REMEMBERED_LOGS
            {
                break;
            }
            // Forget the oldest block whole.
            self.blocks.remove(&oldest);
            self.seen = self
                .seen
                .split_off(&log_sequence(oldest.saturating_add(1), 0));
            self.floor = self.floor.max(oldest.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(block: u64, index: u64, fork: u8) -> Log {
        serde_json::from_value(json!({
            "address": "0xab", "topics": [], "data": format!("{block:#x}"),
            "blockNumber": format!("{block:#x}"), "logIndex": format!("{index:#x}"),
            "blockHash": format!("0x{fork:02x}{block:062x}"),
            "transactionHash": format!("0x{fork:02x}{block:030x}{index:032x}")
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn removed(mut l: Log) -> Log {
        l.removed = true;
        l
    }

    /// A tracker that delivered one log in each of the blocks 1..=10 (chain 0).
    fn tracker() -> LogTracker {
        let mut t = LogTracker::new(5);
        for b in 1..=10 {
            let live = t.on_live(&log(b, 0, 0));
            assert_eq!(live.sequence, Some(Sequence::monotonic(log_sequence(b, 0))));
        }
        t
    }

    fn ids() -> impl FnOnce() -> RequestId {
        || RequestId::Num(7)
    }

    #[test]
    fn remembers_the_last_blocks_and_drops_repeats() {
        let mut t = tracker();
        assert_eq!(t.seen.len(), 5, "blocks 6..=10");
        assert_eq!(t.floor, 6);
        let again = t.on_live(&log(10, 0, 0));
        assert_eq!(
            again.sequence,
            Some(Sequence::monotonic(log_sequence(10, 0)))
        );
        assert!(again.removed.is_empty());
        assert_eq!(t.seen.len(), 5);
    }

    #[test]
    fn a_replacement_removes_the_delivered_logs_from_its_height_on() {
        let mut t = tracker();
        // anvil: no removed logs, the replacement at 9 comes.
        let live = t.on_live(&log(9, 0, 1));
        assert_eq!(live.sequence, Some(Sequence::snapshot(log_sequence(9, 0))));
        assert_eq!(
            live.removed,
            vec![removed(log(9, 0, 0)), removed(log(10, 0, 0))]
        );
        assert_eq!(t.last, Some(log_sequence(9, 0)));
        let next = t.on_live(&log(10, 0, 1));
        assert_eq!(
            next.sequence,
            Some(Sequence::monotonic(log_sequence(10, 0)))
        );
        assert!(next.removed.is_empty());
    }

    #[test]
    fn removed_logs_from_the_node_are_not_removed_twice() {
        let mut t = tracker();
        // geth: the removed logs first, then the replacements.
        for b in [9, 10] {
            assert_eq!(t.on_live(&removed(log(b, 0, 0))), Live::default());
        }
        let live = t.on_live(&log(9, 0, 1));
        assert_eq!(live.sequence, Some(Sequence::snapshot(log_sequence(9, 0))));
        assert!(live.removed.is_empty());
        assert_eq!(t.sequence_of(&removed(log(9, 0, 1))), None);
    }

    #[test]
    fn a_log_in_a_block_seen_with_another_hash_is_a_reorg_even_above_the_last() {
        let mut t = tracker();
        let live = t.on_live(&log(10, 1, 1));
        assert_eq!(live.sequence, Some(Sequence::snapshot(log_sequence(10, 1))));
        assert_eq!(live.removed, vec![removed(log(10, 0, 0))]);
    }

    #[test]
    fn a_backfill_without_a_reorg_delivers_what_is_new() {
        let mut t = tracker();
        let (id, from) = t
            .on_reconnect(Some(log_sequence(10, 0)), 100, ids())
            .expect("a backfill");
        assert_eq!(from, 6, "from the oldest remembered block");
        // A live log arrives meanwhile: asked about later.
        assert_eq!(t.on_live(&log(13, 0, 0)), Live::default());
        let answer: Vec<Log> = (6..=12).map(|b| log(b, 0, 0)).collect();
        let Answer::Done(d) =
            t.on_answer(&id, Ok(serde_json::to_value(&answer).unwrap_or_default()))
        else {
            panic!()
        };
        assert!(d.reorg.is_none());
        let blocks: Vec<u64> = d.logs.iter().filter_map(|l| l.block_number).collect();
        assert_eq!(blocks, [11, 12]);
        assert_eq!(
            t.sequence_of(&log(13, 0, 0)),
            Some(Sequence::monotonic(log_sequence(13, 0)))
        );
        assert_eq!(t.last, Some(log_sequence(13, 0)));
    }

    #[test]
    fn a_backfill_finds_a_reorg_that_happened_while_disconnected() {
        let mut t = tracker();
        let last = log_sequence(10, 0);
        let (id, _) = t.on_reconnect(Some(last), 100, ids()).expect("a backfill");
        // 8..=10 replaced; block 8' has two logs; 11' and 12' are new.
        let mut answer: Vec<Log> = (6..=7).map(|b| log(b, 0, 0)).collect();
        answer.extend([log(8, 0, 1), log(8, 1, 1), log(9, 0, 1), log(10, 0, 1)]);
        answer.extend([log(10, 1, 1), log(11, 0, 1), log(12, 0, 1)]);
        let Answer::Done(d) =
            t.on_answer(&id, Ok(serde_json::to_value(&answer).unwrap_or_default()))
        else {
            panic!()
        };
        let (reorg, position) = d.reorg.expect("a reorg");
        assert_eq!(position, last + 1);
        assert_eq!(
            reorg.removed,
            (8..=10).map(|b| removed(log(b, 0, 0))).collect::<Vec<_>>()
        );
        // Up to one past the last position: 10'/1 is inside, 11' and 12' follow.
        let inside: Vec<(Option<u64>, Option<u64>)> = reorg
            .logs
            .iter()
            .map(|l| (l.block_number, l.log_index))
            .collect();
        assert_eq!(
            inside,
            [(8, 0), (8, 1), (9, 0), (10, 0), (10, 1)].map(|(b, i)| (Some(b), Some(i)))
        );
        assert_eq!(d.logs, vec![log(11, 0, 1), log(12, 0, 1)]);
        // Live copies of the replacements are duplicates now.
        assert_eq!(
            t.sequence_of(&log(9, 0, 1)),
            Some(Sequence::monotonic(log_sequence(9, 0)))
        );
        assert!(t.has(&log(9, 0, 1)));
    }

    #[test]
    fn a_failed_backfill_lets_the_next_log_through() {
        let mut t = tracker();
        let (id, _) = t
            .on_reconnect(Some(log_sequence(10, 0)), 100, ids())
            .expect("a backfill");
        assert!(matches!(
            t.on_answer(&id, Ok(json!({"not": "a list"}))),
            Answer::Failed(_)
        ));
        assert!(matches!(t.on_answer(&id, Ok(json!([]))), Answer::NotOurs));
        assert!(t.accept_next);
        assert!(matches!(
            t.on_answer(&RequestId::Num(1), Err("x".into())),
            Answer::NotOurs
        ));
    }

    #[test]
    fn nothing_delivered_means_nothing_to_fetch() {
        let mut t = LogTracker::new(5);
        assert_eq!(t.on_reconnect(None, 100, ids()), None);
        let pending: Log =
            serde_json::from_value(json!({"address":"0xab","topics":[],"data":"0x"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.on_live(&pending), Live::default());
    }

    #[test]
    fn any_order_of_logs_reconnects_and_answers_never_panics_and_stays_bounded() {
        let blocks = [0, 1, 2, 3, 4, 5, 1 << 40, u64::MAX];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rng = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n.max(1)
        };
        let mut t = LogTracker::new(3);
        for _ in 0..20_000 {
            let block = blocks[usize::try_from(rng(8)).unwrap_or(0)];
            let mut l = log(block, rng(3), u8::try_from(rng(3)).unwrap_or(0));
            l.removed = rng(6) == 0;
            match rng(4) {
                0 | 1 => {
                    let _ = t.on_live(&l);
                }
                2 => {
                    let last = if rng(2) == 0 {
                        t.last
                    } else {
                        Some(rng(u64::MAX))
                    };
                    let cap = usize::try_from(1 + rng(3)).unwrap_or(1);
                    let _ = t.on_reconnect(last, cap, || RequestId::Num(7));
                }
                _ => {
                    let answer = match rng(3) {
                        0 => Ok(serde_json::to_value(vec![l.clone()]).unwrap_or_default()),
                        1 => Ok(json!({})),
                        _ => Err("x".to_owned()),
                    };
                    let _ = t.on_answer(&RequestId::Num(rng(9)), answer);
                    let _ = t.sequence_of(&l);
                }
            }
            assert!(t.seen.len() <= MAX_REMEMBERED_LOGS);
            assert!(t.blocks.len() <= 4);
            assert!(t.decided.len() <= 8);
            if let Some(f) = &t.fetch {
                assert!(f.held.len() <= f.hold_cap + 1);
            }
        }
    }
}
