//! Unit tests of the head tracker, step by step: forks, jumps, shorter chains, stale heads,
//! failed and abandoned fetches.

use super::*;
use serde_json::json;

fn hash(number: u64, fork: u8) -> String {
    format!("0x{fork:02x}{number:062x}")
}

/// The head at `number` of chain `fork`, whose parent is on chain `parent_fork`.
fn head(number: u64, fork: u8, parent_fork: u8) -> HeadId {
    HeadId {
        number,
        hash: hash(number, fork),
        parent: hash(number.saturating_sub(1), parent_fork),
    }
}

fn block(h: &HeadId) -> Value {
    json!({"number": format!("{:#x}", h.number), "hash": h.hash, "parentHash": h.parent,
           "timestamp": "0x1", "transactions": ["0x1"]})
}

fn ids() -> impl FnMut() -> RequestId {
    let mut n = 0;
    move || {
        n += 1;
        RequestId::Num(n)
    }
}

/// A tracker that delivered heads 1..=10 of chain 0.
fn tracker() -> HeadTracker {
    let mut t = HeadTracker::new(4, 100);
    for n in 1..=10 {
        assert_eq!(t.on_live(head(n, 0, 0)), Some(n));
    }
    t
}

/// Answers every request of `plan` from `chain` (number → head), in order.
fn answer(t: &mut HeadTracker, plan: &Plan, chain: &[HeadId]) -> Option<Delivery> {
    let Plan::Fetch(requests) = plan else {
        panic!("not a fetch: {plan:?}")
    };
    let mut done = None;
    for (id, number) in requests {
        let block = chain
            .iter()
            .find(|h| h.number == *number)
            .map_or(Value::Null, block);
        match t.on_answer(id, Ok(block)) {
            Answer::Pending => {}
            Answer::Done(d) => done = Some(d),
            other => panic!("{other:?}"),
        }
    }
    done
}

fn numbers(requests: &Plan) -> Vec<u64> {
    match requests {
        Plan::Fetch(r) => r.iter().map(|(_, n)| *n).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn extensions_pass_and_repeats_are_duplicates() {
    let mut t = tracker();
    assert_eq!(
        t.on_live(head(10, 0, 0)),
        Some(10),
        "a repeat keeps its value"
    );
    assert_eq!(t.last, Some(10));
    assert_eq!(t.on_live(head(11, 0, 0)), Some(11));
    assert_eq!(t.chain.len(), 5, "depth 4 keeps 5 heads");
    assert!(matches!(t.state, State::Idle));
}

#[test]
fn a_fork_at_a_delivered_height_fetches_from_its_first_height() {
    let mut t = tracker();
    // 9' on top of 8: a reorg of depth 2 (9 and 10 replaced).
    let fork = head(9, 1, 0);
    let value = t.on_live(fork.clone());
    assert_eq!(value, Some(head_sequence(1, 9)), "a new branch: a gap");
    let plan = t.on_gap(Some(10), value, 100, ids());
    assert_eq!(numbers(&plan), vec![9, 10]);
    // 10' and 11' arrive while fetching: held, valued later.
    assert_eq!(t.on_live(head(10, 1, 1)), None);
    assert_eq!(t.on_live(head(11, 1, 1)), None);
    let new_chain = [head(9, 1, 0), head(10, 1, 1)];
    let delivery = answer(&mut t, &plan, &new_chain).expect("complete");
    let (reorg, position) = delivery.reorg.expect("a reorg");
    assert_eq!(position, head_sequence(1, 8));
    assert_eq!(reorg.depth, 2);
    assert_eq!(
        reorg.common_ancestor.map(|a| a.hash),
        Some(hash(8, 0)),
        "ancestor 8"
    );
    assert_eq!(
        reorg.old.iter().map(|b| b.hash.clone()).collect::<Vec<_>>(),
        [hash(9, 0), hash(10, 0)]
    );
    assert_eq!(
        reorg.new.iter().map(|b| b.hash.clone()).collect::<Vec<_>>(),
        [hash(9, 1), hash(10, 1)]
    );
    let values: Vec<u64> = delivery.heads.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, [head_sequence(1, 9), head_sequence(1, 10)]);
    assert!(delivery.heads[0].0.get("transactions").is_none());
    // The held heads: 9' again (the revealer) and 10' are duplicates now, 11' follows.
    let last = head_sequence(1, 10);
    assert_eq!(t.value_of(&fork), head_sequence(1, 9));
    assert_eq!(
        check_next(Some(last), t.value_of(&fork)),
        Verdict::Duplicate
    );
    assert_eq!(t.value_of(&head(11, 1, 1)), head_sequence(1, 11));
    assert_eq!(t.last, Some(head_sequence(1, 11)));
    assert!(matches!(t.state, State::Idle));
    assert_eq!(t.on_live(head(12, 1, 1)), Some(head_sequence(1, 12)));
}

#[test]
fn a_jump_fetches_the_missed_heads_and_looks_back_for_a_fork() {
    let mut t = tracker();
    // After a reconnect: nothing to do until a head shows the gap.
    assert_eq!(t.on_gap(Some(10), None, 100, ids()), Plan::Ignore);
    let value = t.on_live(head(14, 0, 0));
    assert_eq!(value, Some(14));
    let plan = t.on_gap(Some(10), value, 100, ids());
    // 4 heights below the tip (depth 4), then 11..=14.
    assert_eq!(numbers(&plan), (7..=14).collect::<Vec<_>>());
    let chain: Vec<HeadId> = (1..=14).map(|n| head(n, 0, 0)).collect();
    let delivery = answer(&mut t, &plan, &chain).expect("complete");
    assert!(delivery.reorg.is_none());
    let values: Vec<u64> = delivery.heads.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, [11, 12, 13, 14]);
    assert_eq!(
        t.value_of(&head(14, 0, 0)),
        14,
        "the held one is a duplicate"
    );
}

#[test]
fn a_reorg_while_disconnected_is_found_by_the_lookback() {
    let mut t = tracker();
    assert_eq!(t.on_gap(Some(10), None, 100, ids()), Plan::Ignore);
    // While away: 8..=10 replaced, the chain grew to 13'. The first live head: 13'.
    let value = t.on_live(head(13, 1, 1));
    let plan = t.on_gap(Some(10), value, 100, ids());
    assert_eq!(numbers(&plan), (7..=13).collect::<Vec<_>>());
    let mut chain: Vec<HeadId> = (1..=7).map(|n| head(n, 0, 0)).collect();
    chain.push(head(8, 1, 0));
    chain.extend((9..=13).map(|n| head(n, 1, 1)));
    let delivery = answer(&mut t, &plan, &chain).expect("complete");
    let (reorg, _) = delivery.reorg.expect("a reorg");
    assert_eq!(reorg.depth, 3);
    assert_eq!(reorg.common_ancestor.map(|a| a.number), Some(7));
    assert_eq!(reorg.old.len(), 3);
    assert_eq!(reorg.new.len(), 3);
    let values: Vec<u64> = delivery.heads.iter().map(|(_, v)| *v).collect();
    assert_eq!(
        values,
        (8..=13).map(|n| head_sequence(1, n)).collect::<Vec<_>>()
    );
    // The fetched 13' is asked about with its new value; the held one (the same block)
    // keeps the value it showed the gap with, a duplicate now.
    assert_eq!(t.value_of(&head(13, 1, 1)), head_sequence(1, 13));
    assert_eq!(check_next(t.last, 13), Verdict::Duplicate);
}

#[test]
fn a_shorter_new_chain_is_a_reorg_with_fewer_new_heads() {
    let mut t = tracker();
    // Reverted to 7, one block mined: 8' is the new tip.
    let value = t.on_live(head(8, 1, 0));
    let plan = t.on_gap(Some(10), value, 100, ids());
    assert_eq!(numbers(&plan), vec![8, 9, 10]);
    let chain: Vec<HeadId> = (1..=7)
        .map(|n| head(n, 0, 0))
        .chain([head(8, 1, 0)])
        .collect();
    let delivery = answer(&mut t, &plan, &chain).expect("complete");
    let (reorg, _) = delivery.reorg.expect("a reorg");
    assert_eq!((reorg.depth, reorg.old.len(), reorg.new.len()), (3, 3, 1));
    assert_eq!(delivery.heads.len(), 1);
    assert_eq!(t.on_live(head(9, 1, 1)), Some(head_sequence(1, 9)));
}

#[test]
fn a_stale_head_of_a_replaced_branch_is_dropped() {
    let mut t = tracker();
    let value = t.on_live(head(10, 1, 0));
    let plan = t.on_gap(Some(10), value, 100, ids());
    // A late head of the old branch, built on 10, while fetching.
    assert_eq!(t.on_live(head(11, 0, 0)), None);
    let chain: Vec<HeadId> = (1..=9)
        .map(|n| head(n, 0, 0))
        .chain([head(10, 1, 0)])
        .collect();
    let delivery = answer(&mut t, &plan, &chain).expect("complete");
    assert_eq!(delivery.reorg.map(|(r, _)| r.depth), Some(1));
    let last = t.last;
    assert_eq!(
        check_next(last, t.value_of(&head(11, 0, 0))),
        Verdict::Duplicate
    );
    assert_eq!(t.on_live(head(11, 1, 1)), Some(head_sequence(1, 11)));
}

#[test]
fn a_failed_fetch_lets_the_next_head_through_and_starts_again() {
    let mut t = tracker();
    let value = t.on_live(head(13, 0, 0));
    let plan = t.on_gap(Some(10), value, 100, ids());
    let Plan::Fetch(requests) = &plan else {
        panic!()
    };
    let mut last_answer = None;
    for (i, (id, _)) in requests.iter().enumerate() {
        let answer = if i == 0 {
            Err("boom".to_owned())
        } else {
            Ok(Value::Null)
        };
        last_answer = Some(t.on_answer(id, answer));
    }
    assert!(matches!(last_answer, Some(Answer::Failed(_))));
    // The runtime delivered 13 (accept-next); the chain starts again there.
    assert_eq!(t.last, Some(13));
    assert_eq!(t.on_live(head(14, 0, 0)), Some(14));
}

#[test]
fn a_fetch_given_up_without_an_answer_follows_the_held_heads() {
    let mut t = tracker();
    let value = t.on_live(head(13, 0, 0));
    let Plan::Fetch(_) = t.on_gap(Some(10), value, 100, ids()) else {
        panic!()
    };
    // No answer ever comes (the runtime's request timed out); it took 13 anyway and
    // checks the next heads against it.
    assert_eq!(t.on_live(head(14, 0, 0)), None);
    assert_eq!(t.value_of(&head(14, 0, 0)), 14);
    assert_eq!(t.on_live(head(15, 0, 0)), None);
    assert_eq!(t.value_of(&head(15, 0, 0)), 15);
    // A fork among them still shows a gap, and the tracker plans from the heads taken.
    assert_eq!(t.on_live(head(15, 1, 0)), None);
    let fork = t.value_of(&head(15, 1, 0));
    assert_eq!(fork, head_sequence(1, 15));
    let plan = t.on_gap(Some(15), Some(fork), 100, ids());
    assert_eq!(numbers(&plan), vec![15], "its parent 14 is a head taken");
    assert_eq!(t.chain.back().map(|l| l.head.number), Some(15));
}

#[test]
fn too_many_held_heads_give_the_fetch_up_like_the_runtime() {
    let mut t = tracker();
    let value = t.on_live(head(9, 1, 0));
    let plan = t.on_gap(Some(10), value, 2, ids());
    assert!(matches!(plan, Plan::Fetch(_)));
    assert_eq!(t.on_live(head(10, 1, 1)), None);
    // The runtime holds 2 (9' and 10'): the third makes it give up.
    assert_eq!(t.on_live(head(11, 1, 1)), None);
    assert!(!matches!(t.state, State::Fetching(_)));
    assert_eq!(t.last, Some(head_sequence(1, 11)));
    let Plan::Fetch(requests) = plan else {
        panic!()
    };
    assert!(matches!(
        t.on_answer(&requests[0].0, Ok(Value::Null)),
        Answer::NotOurs
    ));
}

#[test]
fn a_fork_deeper_than_the_depth_has_no_known_ancestor() {
    let mut t = tracker();
    // Chain remembers 6..=10; the fork is at 3.
    let value = t.on_live(head(11, 1, 1));
    let plan = t.on_gap(Some(10), value, 100, ids());
    assert_eq!(numbers(&plan), (7..=11).collect::<Vec<_>>());
    let chain: Vec<HeadId> = (1..=2)
        .map(|n| head(n, 0, 0))
        .chain([head(3, 1, 0)])
        .chain((4..=11).map(|n| head(n, 1, 1)))
        .collect();
    let delivery = answer(&mut t, &plan, &chain).expect("complete");
    let (reorg, position) = delivery.reorg.expect("a reorg");
    assert!(reorg.common_ancestor.is_none());
    assert_eq!(reorg.depth, 4);
    assert_eq!(position, head_sequence(1, 6));
    assert_eq!(delivery.heads.len(), 5);
}

#[test]
fn malformed_answers_fail_the_fetch() {
    for bad in [json!([]), json!("0x1"), json!({"number": "0xzz"})] {
        let mut t = tracker();
        let value = t.on_live(head(11, 1, 1));
        let Plan::Fetch(requests) = t.on_gap(Some(10), value, 100, ids()) else {
            panic!()
        };
        let mut outcome = None;
        for (id, _) in &requests {
            outcome = Some(t.on_answer(id, Ok(bad.clone())));
        }
        assert!(matches!(outcome, Some(Answer::Failed(_))), "{bad}");
    }
}

/// A small deterministic generator (xorshift) for the chaos test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn any_order_of_heads_gaps_and_answers_never_panics_and_stays_bounded() {
    let numbers = [0, 1, 2, 3, 4, 5, 6, 1 << 40, u64::MAX - 1, u64::MAX];
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut t = HeadTracker::new(1 + rng.below(4), 1 + rng.below(8));
        let mut values = Vec::new();
        let mut plans: Vec<RequestId> = Vec::new();
        let mut next = 0u64;
        for _ in 0..300 {
            let random_head = |rng: &mut Rng| HeadId {
                number: numbers[usize::try_from(rng.below(10)).unwrap_or(0)],
                hash: format!("0x{}", rng.below(6)),
                parent: format!("0x{}", rng.below(6)),
            };
            match rng.below(5) {
                0 | 1 => {
                    let head = random_head(&mut rng);
                    if let Some(v) = t.on_live(head) {
                        values.push(v);
                    }
                }
                2 => {
                    let got = match rng.below(3) {
                        0 => None,
                        1 => values.last().copied(),
                        _ => Some(rng.next()),
                    };
                    let last = if rng.below(2) == 0 {
                        t.last
                    } else {
                        Some(rng.next())
                    };
                    let cap = usize::try_from(1 + rng.below(4)).unwrap_or(1);
                    if let Plan::Fetch(requests) = t.on_gap(last, got, cap, || {
                        next += 1;
                        RequestId::Num(next)
                    }) {
                        assert!(!requests.is_empty());
                        assert!(requests.len() <= 4 + 8 + 1);
                        plans.extend(requests.into_iter().map(|(id, _)| id));
                    }
                }
                3 => {
                    let id = RequestId::Num(rng.below(next + 2));
                    let head = random_head(&mut rng);
                    let answer = match rng.below(4) {
                        0 => Ok(block(&head)),
                        1 => Ok(Value::Null),
                        2 => Ok(json!({"number": "0xzz"})),
                        _ => Err("timeout".to_owned()),
                    };
                    let _ = t.on_answer(&id, answer);
                }
                _ => {
                    let _ = t.value_of(&random_head(&mut rng));
                }
            }
            assert!(t.chain.len() <= 5);
            assert!(t.decided.len() <= 64, "{}", t.decided.len());
            if let State::Fetching(f) = &t.state {
                assert!(f.held.len() <= f.hold_cap + 1);
            }
        }
    }
}
