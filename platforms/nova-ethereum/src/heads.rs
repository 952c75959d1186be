//! The `newHeads` tracker: the heads the application has, how each new one relates to them, and
//! how a reorg is found and delivered through the runtime's sequences and backfill.
//!
//! # What the tracker keeps
//!
//! - `chain`: the last heads delivered (at most `max_reorg_depth + 1`), contiguous by number
//!   and linked by hash, each with the branch it was delivered on (see
//!   [`head_sequence`](crate::head_sequence)).
//! - `last` and `accept_next`: the runtime's last delivered value and whether it will take the
//!   next head whatever its value (after a gap it could not close). The tracker computes them
//!   the way the runtime does — it hands out every value the runtime checks — and takes the
//!   runtime's `last` again from every gap it is asked about.
//!
//! # A live head
//!
//! | the head | its value | the runtime |
//! |---|---|---|
//! | delivered already (same hash) | the value it was delivered with | drops it |
//! | extends the last head (number + 1, parent = its hash) | same branch, its number | delivers it |
//! | further ahead (heads were missed) | same branch, its number | gap |
//! | anything else: a fork | a new branch, its number | gap |
//!
//! # A gap
//!
//! The runtime asks [`HeadTracker::on_gap`] and holds the live heads that follow. The tracker
//! fetches the canonical blocks by number (`eth_getBlockByNumber`): from the fork's first height
//! when its parent is a delivered head, otherwise from `max_reorg_depth` heights below the last
//! delivered head (to find a fork that happened while disconnected), up to the higher of the
//! last delivered head and the head that showed the gap (at most `max_backfill_blocks` past the
//! last delivered head, and `max_reorg_depth + max_backfill_blocks` heights in all). When every
//! answer is in, the fetched blocks are compared with the chain: the newest height where both
//! agree is the common ancestor. If it is the last delivered head, the fetched heads above it
//! are delivered; otherwise a [`Reorg`] is delivered (on a new branch, valued just below the new
//! heads), then the new chain's heads from the ancestor on. The held live heads then come through with values decided against the new
//! chain: duplicates of fetched heads are dropped, heads of a branch the fetch showed is not
//! canonical are dropped, and a further fork shows a new gap.
//!
//! Live heads that arrive while a fetch is under way get no value when they arrive: the runtime
//! asks for it (`SubscriptionHandler::sequence`) when it takes them back, after the fetch.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use nova_core::RequestId;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::quantity::Quantity;
use crate::reorg::{BlockRef, Reorg, head_sequence, head_sequence_parts};

/// What the tracker reads of a head: its number, its hash and its parent's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeadId {
    pub(crate) number: u64,
    pub(crate) hash: String,
    pub(crate) parent: String,
}

/// The fields of a head the tracker reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeadFields {
    number: Quantity,
    #[serde(default)]
    hash: Option<String>,
    parent_hash: String,
}

impl From<HeadFields> for HeadId {
    fn from(fields: HeadFields) -> Self {
        Self {
            number: fields.number.0,
            // A head without a hash (a pending block on some nodes) cannot be compared; it
            // never matches a delivered one.
            hash: fields.hash.unwrap_or_default(),
            parent: fields.parent_hash,
        }
    }
}

impl HeadId {
    /// Reads a head (a `newHeads` result or a block object).
    pub(crate) fn from_value(value: &Value) -> Option<Self> {
        HeadFields::deserialize(value).ok().map(Self::from)
    }

    /// Reads a head from a parsed [`Header`](crate::Header).
    pub(crate) fn of(header: &crate::types::Header) -> Self {
        Self {
            number: header.number,
            hash: header.hash.clone().unwrap_or_default(),
            parent: header.parent_hash.clone(),
        }
    }

    fn extends(&self, number: u64, hash: &str) -> bool {
        number.checked_add(1) == Some(self.number) && self.parent == hash
    }
}

/// A delivered head and the branch it was delivered on.
#[derive(Clone, Debug)]
struct Link {
    head: HeadId,
    branch: u64,
}

impl Link {
    fn value(&self) -> u64 {
        head_sequence(self.branch, self.head.number)
    }
}

/// What the runtime does with a head's value: nova-core's check for `Sequence::next`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Duplicate,
    Gap,
}

fn check_next(last: Option<u64>, value: u64) -> Verdict {
    match last {
        None => Verdict::Accept,
        Some(last) if last.checked_add(1) == Some(value) => Verdict::Accept,
        Some(last) if value <= last => Verdict::Duplicate,
        Some(_) => Verdict::Gap,
    }
}

/// A fetch of canonical blocks under way.
#[derive(Debug)]
struct Fetch {
    /// Request id → the block number it asks for, until answered.
    outstanding: HashMap<RequestId, u64>,
    /// The answers: a block, or `None` when the node has none at that number.
    blocks: BTreeMap<u64, Option<Map<String, Value>>>,
    /// The first answer that was not a block or `null`.
    failed: Option<String>,
    /// The first height fetched.
    from: u64,
    /// The live heads the runtime holds back, in arrival order: the head that showed the gap
    /// first, then those that came while fetching.
    held: VecDeque<HeadId>,
    /// The value of the head that showed the gap: the runtime keeps the value it checked.
    first: u64,
    /// How many messages the runtime holds back before it gives the backfill up.
    hold_cap: usize,
}

#[derive(Debug)]
enum State {
    /// Every head so far went through the runtime's check.
    Idle,
    /// The first of these heads broke the sequence with value `first`; the runtime is about to
    /// ask [`HeadTracker::on_gap`] about it (the rest follow it into the runtime's hold).
    Revealed { heads: VecDeque<HeadId>, first: u64 },
    /// Blocks are being fetched.
    Fetching(Fetch),
}

/// What to do about a gap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing (no head can have been missed yet).
    Ignore,
    /// The gap cannot be closed.
    Report,
    /// Fetch these block numbers, each with its request id.
    Fetch(Vec<(RequestId, u64)>),
}

/// What a backfill answer led to.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Not an answer to this tracker's fetch (a fetch given up already).
    NotOurs,
    /// More answers are awaited.
    Pending,
    /// The fetch failed: nothing is delivered, and the gap stays open.
    Failed(String),
    /// The fetch is complete: deliver these, in order.
    Done(Delivery),
}

/// What a complete fetch delivers, in sequence order.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// The reorg found, with its sequence value.
    pub(crate) reorg: Option<(Reorg, u64)>,
    /// The new heads (block objects without their bodies), each with its sequence value.
    pub(crate) heads: Vec<(Map<String, Value>, u64)>,
}

/// The state of one `newHeads` subscription (see the module docs).
#[derive(Debug)]
pub(crate) struct HeadTracker {
    depth: u64,
    max_backfill: u64,
    chain: VecDeque<Link>,
    /// The highest branch handed out.
    branches: u64,
    last: Option<u64>,
    accept_next: bool,
    state: State,
    /// Values decided for heads the runtime will ask about (fetched and held heads).
    decided: HashMap<String, u64>,
}

impl HeadTracker {
    /// A tracker that resolves reorgs up to `depth` heads deep and fetches at most
    /// `max_backfill` heads past the last delivered one to close a gap.
    pub(crate) fn new(depth: u64, max_backfill: u64) -> Self {
        Self {
            depth: depth.max(1),
            max_backfill: max_backfill.max(1),
            chain: VecDeque::new(),
            branches: 0,
            last: None,
            accept_next: false,
            state: State::Idle,
            decided: HashMap::new(),
        }
    }

    /// A live head: its sequence value now, or `None` when the runtime is to ask later
    /// ([`value_of`](Self::value_of)), after the fetch under way.
    pub(crate) fn on_live(&mut self, head: HeadId) -> Option<u64> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Fetching(mut fetch) => {
                // The runtime gives the backfill up when it already holds `hold_cap` messages.
                let overflow = fetch.held.len() >= fetch.hold_cap;
                fetch.held.push_back(head);
                if overflow {
                    tracing::warn!(
                        held = fetch.held.len(),
                        "newHeads: too many live heads held back; the backfill is given up"
                    );
                    self.fail(fetch.held, fetch.first);
                } else {
                    self.state = State::Fetching(fetch);
                }
                return None;
            }
            State::Revealed { heads, first } => {
                // The runtime did not ask about the gap: it took the heads as they came (it had
                // given up a backfill without an answer the tracker saw).
                tracing::debug!("newHeads: a gap was not asked about; following the runtime");
                self.accept_next = true;
                self.settle(heads, Some(first), None);
            }
            State::Idle => {}
        }
        if matches!(self.state, State::Idle) {
            self.decided.clear();
        }
        let value = self.classify(&head, None);
        match self.verdict(value) {
            Verdict::Accept => self.commit(head, value),
            Verdict::Duplicate => {}
            Verdict::Gap => match &mut self.state {
                State::Revealed { heads, .. } => heads.push_back(head),
                _ => {
                    self.state = State::Revealed {
                        heads: VecDeque::from([head]),
                        first: value,
                    }
                }
            },
        }
        Some(value)
    }

    /// The sequence value of a head the runtime asks about.
    pub(crate) fn value_of(&self, head: &HeadId) -> u64 {
        if let Some(value) = self.decided.get(&head.hash) {
            return *value;
        }
        if let State::Fetching(fetch) = &self.state {
            if let Some(value) = self.held_value(head, fetch) {
                return value;
            }
        }
        self.classify(head, None)
    }

    /// The value of a head held during a fetch whose end the tracker has not seen (the runtime
    /// gave it up: a request timed out). The runtime then takes the held heads one after the
    /// other, the first whatever its value, so each is valued against the one before it.
    fn held_value(&self, head: &HeadId, fetch: &Fetch) -> Option<u64> {
        let mut tip: Option<(&HeadId, u64)> = None;
        for held in &fetch.held {
            let value = match tip {
                None => fetch.first,
                Some((_, _)) if self.find(&held.hash).is_some() => self.classify(held, None),
                Some((prev, value)) => {
                    let (branch, number) = head_sequence_parts(value);
                    if held.extends(prev.number, &prev.hash)
                        || held.number > number.saturating_add(1)
                    {
                        head_sequence(branch, held.number)
                    } else if held.hash == prev.hash {
                        value
                    } else {
                        head_sequence(self.branches.max(branch).saturating_add(1), held.number)
                    }
                }
            };
            if held == head {
                return Some(value);
            }
            if check_next(tip.map(|(_, v)| v), value) != Verdict::Duplicate || tip.is_none() {
                tip = Some((held, value));
            }
        }
        None
    }

    /// A gap the runtime found (`got`: the value of the head that showed it; `None` right
    /// after a reconnect, before any head). `hold_cap` is the runtime's limit on held messages.
    pub(crate) fn on_gap(
        &mut self,
        last: Option<u64>,
        got: Option<u64>,
        hold_cap: usize,
        mut next_id: impl FnMut() -> RequestId,
    ) -> Plan {
        let state = std::mem::replace(&mut self.state, State::Idle);
        let Some(got) = got else {
            // After a reconnect: the runtime dropped what it held and any backfill under way.
            // A gap shows itself with the next live head.
            self.decided.clear();
            self.resync(last);
            return Plan::Ignore;
        };
        let held = match state {
            State::Revealed { heads, first } if first == got => Some(heads),
            State::Fetching(fetch) => {
                // A fetch the runtime gave up without the tracker seeing its end: it took the
                // held heads one after the other up to this one.
                let at = fetch
                    .held
                    .iter()
                    .position(|h| self.held_value(h, &fetch) == Some(got));
                at.map(|at| {
                    let values: Vec<u64> = fetch
                        .held
                        .iter()
                        .take(at)
                        .filter_map(|h| self.held_value(h, &fetch))
                        .collect();
                    let mut held = fetch.held;
                    let taken: Vec<HeadId> = held.drain(..at).collect();
                    self.accept_next = true;
                    for (head, value) in taken.into_iter().zip(values) {
                        if self.verdict(value) == Verdict::Accept {
                            self.commit(head, value);
                        }
                    }
                    held
                })
            }
            _ => None,
        };
        self.decided.clear();
        self.accept_next = false;
        self.resync(last);
        let Some(held) = held.filter(|h| !h.is_empty()) else {
            // A gap the tracker did not see coming: the runtime delivers the head anyway
            // (`Report`), and the chain starts again after it.
            tracing::warn!(got, "newHeads: unexpected gap; the chain starts again");
            self.chain.clear();
            self.last = Some(got);
            return Plan::Report;
        };
        let (Some(tip), Some(revealer)) = (
            self.chain.back().map(|l| l.head.clone()),
            held.front().cloned(),
        ) else {
            return self.report(held, got);
        };
        if held.len() > hold_cap {
            // The runtime would give a backfill up while taking these back.
            return self.report(held, got);
        }
        let parent_known = self
            .link_at(revealer.number.saturating_sub(1))
            .is_some_and(|l| revealer.extends(l.head.number, &l.head.hash));
        let from = if parent_known {
            revealer.number
        } else {
            let remembered = u64::try_from(self.chain.len()).unwrap_or(u64::MAX);
            let lookback = self.depth.min(remembered);
            tip.number
                .saturating_add(1)
                .saturating_sub(lookback)
                .min(revealer.number)
        };
        // At most `max_reorg_depth + max_backfill_blocks` heights, whatever the numbers say
        // (a fork far below the remembered heads starts the fetch at the fork).
        let to = tip
            .number
            .max(revealer.number)
            .min(tip.number.saturating_add(self.max_backfill))
            .min(from.saturating_add(self.depth.saturating_add(self.max_backfill) - 1));
        if from > to {
            return self.report(held, got);
        }
        let requests: Vec<(RequestId, u64)> = (from..=to).map(|n| (next_id(), n)).collect();
        self.state = State::Fetching(Fetch {
            outstanding: requests.iter().cloned().collect(),
            blocks: BTreeMap::new(),
            failed: None,
            from,
            held,
            first: got,
            hold_cap: hold_cap.max(1),
        });
        Plan::Fetch(requests)
    }

    /// The answer to request `id`: a block object, `null`, or why there is none.
    pub(crate) fn on_answer(&mut self, id: &RequestId, answer: Result<Value, String>) -> Answer {
        let State::Fetching(fetch) = &mut self.state else {
            return Answer::NotOurs;
        };
        let Some(number) = fetch.outstanding.remove(id) else {
            return Answer::NotOurs;
        };
        match answer {
            Ok(Value::Object(block)) => {
                fetch.blocks.insert(number, Some(block));
            }
            Ok(Value::Null) => {
                fetch.blocks.insert(number, None);
            }
            Ok(other) => {
                let kind = match other {
                    Value::Array(_) => "a list",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                };
                fetch.failed.get_or_insert(format!(
                    "eth_getBlockByNumber {number}: a block was expected, got {kind}"
                ));
            }
            Err(e) => {
                fetch
                    .failed
                    .get_or_insert(format!("eth_getBlockByNumber {number}: {e}"));
            }
        }
        if !fetch.outstanding.is_empty() {
            return match &fetch.failed {
                Some(reason) => Answer::Failed(reason.clone()),
                None => Answer::Pending,
            };
        }
        let State::Fetching(fetch) = std::mem::replace(&mut self.state, State::Idle) else {
            return Answer::NotOurs;
        };
        self.complete(fetch)
    }

    /// Every answer is in: compare, deliver, and value the held heads.
    fn complete(&mut self, fetch: Fetch) -> Answer {
        let Fetch {
            blocks,
            failed,
            from,
            held,
            first,
            ..
        } = fetch;
        if let Some(reason) = failed {
            self.fail(held, first);
            return Answer::Failed(reason);
        }
        // The new chain: the blocks from `from` on, while each is the parent of the next.
        let mut segment: Vec<(HeadId, Map<String, Value>)> = Vec::new();
        for (number, block) in blocks {
            let Some(block) = block else { break };
            let Some(head) = HeadId::from_value(&Value::Object(block.clone())) else {
                self.fail(held, first);
                return Answer::Failed(format!("eth_getBlockByNumber {number}: malformed block"));
            };
            if head.number != number {
                self.fail(held, first);
                return Answer::Failed(format!(
                    "eth_getBlockByNumber {number}: the node answered block {}",
                    head.number
                ));
            }
            if segment
                .last()
                .is_some_and(|(previous, _)| !head.extends(previous.number, &previous.hash))
            {
                // The chain changed between two answers; the heads that follow show it again.
                break;
            }
            segment.push((head, block));
        }
        let (Some(tip), Some((start, _))) = (self.chain.back().cloned(), segment.first()) else {
            self.fail(held, first);
            return Answer::Failed(format!(
                "eth_getBlockByNumber {from}: the node has no block"
            ));
        };
        // The common ancestor: the newest delivered head the new chain contains.
        let mut ancestor = self
            .link_at(start.number.saturating_sub(1))
            .filter(|l| start.extends(l.head.number, &l.head.hash))
            .map(|l| l.head.clone());
        for (head, _) in &segment {
            if self
                .link_at(head.number)
                .is_some_and(|l| l.head.hash == head.hash)
            {
                ancestor = Some(head.clone());
            }
        }
        let mut refuted = Refuted {
            from,
            top: segment.last().map_or(from, |(h, _)| h.number),
            canonical: segment
                .iter()
                .map(|(h, _)| (h.number, h.hash.clone()))
                .collect(),
            rejected: HashSet::new(),
        };
        let mut delivery = Delivery::default();
        if ancestor.as_ref().map(|a| a.number) == Some(tip.head.number) {
            for (head, block) in segment {
                if head.number > tip.head.number {
                    let value = head_sequence(tip.branch, head.number);
                    self.deliver(head, block, value, &mut delivery);
                }
            }
        } else {
            // The heights from `base` on were replaced.
            let base = ancestor
                .as_ref()
                .map_or(from, |a| a.number.saturating_add(1));
            let refs = |heads: &mut dyn Iterator<Item = &HeadId>| -> Vec<BlockRef> {
                heads
                    .filter(|h| h.number >= base && h.number <= tip.head.number)
                    .map(|h| BlockRef {
                        number: h.number,
                        hash: h.hash.clone(),
                    })
                    .collect()
            };
            let reorg = Reorg {
                depth: tip.head.number.saturating_add(1).saturating_sub(base),
                old: refs(&mut self.chain.iter().map(|l| &l.head)),
                new: refs(&mut segment.iter().map(|(h, _)| h)),
                common_ancestor: ancestor.map(|a| BlockRef {
                    number: a.number,
                    hash: a.hash,
                }),
            };
            // Heads built on a replaced one are not canonical either.
            refuted
                .rejected
                .extend(reorg.old.iter().map(|b| b.hash.clone()));
            tracing::info!(
                depth = reorg.depth,
                ancestor = ?reorg.common_ancestor.as_ref().map(|a| a.number),
                "newHeads: reorg"
            );
            // Only the chain below the replaced heights stays; none of it when the ancestor is
            // unknown (nothing below `base` is known to be shared).
            if reorg.common_ancestor.is_some() {
                self.chain.retain(|l| l.head.number < base);
            } else {
                self.chain.clear();
            }
            self.branches = self.branches.saturating_add(1);
            let branch = self.branches;
            let position = head_sequence(branch, base.saturating_sub(1));
            self.last = Some(position);
            delivery.reorg = Some((reorg, position));
            for (head, block) in segment {
                if head.number >= base {
                    let value = head_sequence(branch, head.number);
                    self.deliver(head, block, value, &mut delivery);
                }
            }
        }
        // The held heads: the runtime checks the first to say whether the gap closed, then
        // takes them back in order.
        if check_next(self.last, first) == Verdict::Gap {
            self.accept_next = true;
        }
        self.settle(held, Some(first), Some(&mut refuted));
        Answer::Done(delivery)
    }

    fn deliver(
        &mut self,
        head: HeadId,
        mut block: Map<String, Value>,
        value: u64,
        delivery: &mut Delivery,
    ) {
        for body in ["transactions", "uncles", "withdrawals"] {
            block.remove(body);
        }
        self.decided.insert(head.hash.clone(), value);
        self.commit(head, value);
        delivery.heads.push((block, value));
    }

    /// The fetch failed (or the runtime gave it up): the runtime delivers nothing of it,
    /// reports the gap as not closed, and takes the next head whatever its value.
    fn fail(&mut self, held: VecDeque<HeadId>, first: u64) {
        self.accept_next = true;
        self.settle(held, Some(first), None);
    }

    /// The gap cannot be closed: the runtime delivers the head that showed it, and the ones it
    /// held after it go through the check again.
    fn report(&mut self, mut held: VecDeque<HeadId>, first: u64) -> Plan {
        if let Some(head) = held.pop_front() {
            self.commit(head, first);
        }
        self.settle(held, None, None);
        Plan::Report
    }

    /// Runs heads through the runtime's check as it will (the first with value `first` when
    /// given: the head that showed a gap keeps its value); each accepted head joins the chain.
    /// When one breaks the sequence, the runtime asks about that gap next and holds the rest:
    /// the state says so.
    fn settle(
        &mut self,
        mut heads: VecDeque<HeadId>,
        mut first: Option<u64>,
        mut refuted: Option<&mut Refuted>,
    ) {
        while let Some(head) = heads.pop_front() {
            let value = match first.take() {
                // The runtime keeps this one's value: it never asks (and a fetched head with
                // the same hash has its own).
                Some(value) => value,
                None => {
                    let value = self.classify(&head, refuted.as_deref_mut());
                    self.decided.insert(head.hash.clone(), value);
                    value
                }
            };
            match self.verdict(value) {
                Verdict::Accept => self.commit(head, value),
                Verdict::Duplicate => {}
                Verdict::Gap => {
                    heads.push_front(head);
                    self.state = State::Revealed {
                        heads,
                        first: value,
                    };
                    return;
                }
            }
        }
    }

    /// A head's value against the chain (see the module docs); heads of a branch a fetch showed
    /// is not canonical are duplicates.
    fn classify(&self, head: &HeadId, refuted: Option<&mut Refuted>) -> u64 {
        if let Some(link) = self.find(&head.hash) {
            return link.value();
        }
        if refuted.is_some_and(|r| r.rejects(head)) {
            return self.last.unwrap_or_default();
        }
        let Some(tip) = self.chain.back() else {
            let branch = self
                .last
                .map_or(self.branches, |v| head_sequence_parts(v).0);
            return head_sequence(branch, head.number);
        };
        if head.extends(tip.head.number, &tip.head.hash)
            || head.number > tip.head.number.saturating_add(1)
        {
            head_sequence(tip.branch, head.number)
        } else {
            head_sequence(self.branches.saturating_add(1), head.number)
        }
    }

    fn verdict(&mut self, value: u64) -> Verdict {
        if std::mem::take(&mut self.accept_next) {
            Verdict::Accept
        } else {
            check_next(self.last, value)
        }
    }

    /// A head the runtime delivered: it extends the chain, or the chain starts again from it.
    fn commit(&mut self, head: HeadId, value: u64) {
        let extends = self
            .chain
            .back()
            .is_some_and(|tip| head.extends(tip.head.number, &tip.head.hash));
        if !extends {
            self.chain.clear();
        }
        let (branch, _) = head_sequence_parts(value);
        self.branches = self.branches.max(branch);
        self.chain.push_back(Link { head, branch });
        let keep = usize::try_from(self.depth.saturating_add(1)).unwrap_or(usize::MAX);
        while self.chain.len() > keep {
            self.chain.pop_front();
        }
        self.last = Some(value);
    }

    /// Takes the runtime's last value (told with every gap); a chain that does not end there
    /// is forgotten.
    fn resync(&mut self, last: Option<u64>) {
        if last != self.last {
            if self.last.is_some() {
                tracing::debug!(?last, ours = ?self.last, "newHeads: following the runtime's last value");
            }
            if self.chain.back().map(Link::value) != last {
                self.chain.clear();
            }
            self.last = last;
        }
    }

    fn find(&self, hash: &str) -> Option<&Link> {
        if hash.is_empty() {
            return None;
        }
        self.chain.iter().rev().find(|l| l.head.hash == hash)
    }

    fn link_at(&self, number: u64) -> Option<&Link> {
        let first = self.chain.front()?.head.number;
        let index = usize::try_from(number.checked_sub(first)?).ok()?;
        self.chain.get(index)
    }
}

/// What a fetch showed is not canonical: a head at a fetched height with another hash, and
/// every head built on one.
#[derive(Debug)]
struct Refuted {
    from: u64,
    top: u64,
    canonical: HashMap<u64, String>,
    rejected: HashSet<String>,
}

impl Refuted {
    fn rejects(&mut self, head: &HeadId) -> bool {
        let off_chain = head.number >= self.from
            && head.number <= self.top
            && self.canonical.get(&head.number) != Some(&head.hash);
        let rejected = off_chain || self.rejected.contains(&head.parent);
        if rejected {
            self.rejected.insert(head.hash.clone());
        }
        rejected
    }
}

#[cfg(test)]
mod tests;
