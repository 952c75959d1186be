//! Reorgs as the application sees them: a [`Reorg`] event on a `newHeads` subscription, logs
//! flagged `removed` on a `logs` subscription ([`LogReorg`]), and the sequence values that let
//! nova's runtime deliver a replaced chain in order.
//!
//! A `newHeads` message's sequence value is [`head_sequence`]`(branch, number)`, the branch
//! growing at every reorg; a reorg found by a backfill is delivered as a message of the method
//! [`REORG_METHOD`].

use nova_core::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::quantity::{Quantity, hex_u64};
use crate::types::Log;

/// The method of the messages the adapter makes to deliver a reorg found by a backfill, shaped
/// like a notification of the subscription:
///
/// ```text
/// {"jsonrpc":"2.0","method":"nova_reorg","params":{"subscription":"0x…","position":"0x…","result":{…}}}
/// ```
///
/// `result` is a [`Reorg`] on a `newHeads` subscription and a [`LogReorg`] on a `logs`
/// subscription; `position` is its sequence value. Nodes never send this method, and the
/// adapter never routes one that arrives from the network.
/// [`EthSubscription`](crate::EthSubscription) turns these messages into typed events
/// ([`EthEvent::all_from_message`](crate::EthEvent::all_from_message) decodes one); an
/// application reading the raw stream sees them as they are.
pub const REORG_METHOD: &str = "nova_reorg";

/// How many low bits of a head sequence value hold the block number.
const HEAD_NUMBER_BITS: u32 = 40;
/// The largest block number a head sequence value holds; larger ones are clamped.
const HEAD_NUMBER_MAX: u64 = (1 << HEAD_NUMBER_BITS) - 1;
/// The largest branch a head sequence value holds; larger ones are clamped.
const HEAD_BRANCH_MAX: u64 = (1 << (64 - HEAD_NUMBER_BITS)) - 1;

/// The sequence value of the head at `number` on the `branch`-th branch the subscription has
/// followed (0 until the first reorg): the branch in the top 24 bits, the block number in the
/// low 40. The branch grows by one at every reorg the adapter delivers, so the heads of a new
/// branch sort after everything delivered before — even at heights already delivered — and the
/// runtime's ordering, duplicate dropping and backfill work across a reorg unchanged. Block
/// numbers up to 2^40 - 1 and branches up to 2^24 - 1; larger values are clamped, never
/// wrapped.
///
/// ```
/// use nova_ethereum::{head_sequence, head_sequence_parts};
///
/// assert_eq!(head_sequence(0, 42), 42);
/// assert!(head_sequence(1, 10) > head_sequence(0, 1_000_000));
/// assert_eq!(head_sequence_parts(head_sequence(3, 7)), (3, 7));
/// ```
#[must_use]
pub fn head_sequence(branch: u64, number: u64) -> u64 {
    (branch.min(HEAD_BRANCH_MAX) << HEAD_NUMBER_BITS) | number.min(HEAD_NUMBER_MAX)
}

/// The `(branch, block number)` of a [`head_sequence`] value.
#[must_use]
pub fn head_sequence_parts(value: u64) -> (u64, u64) {
    (value >> HEAD_NUMBER_BITS, value & HEAD_NUMBER_MAX)
}

/// A block by number and hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    /// The block number.
    #[serde(with = "hex_u64")]
    pub number: u64,
    /// The block hash.
    pub hash: String,
}

/// The chain the application followed was replaced from some height on: the heads it had
/// received at those heights are no longer canonical. The new chain's heads follow this event
/// on the stream, in order, from the first replaced height.
///
/// ```text
/// delivered:  … 97 ─ 98 ─ 99 ─ 100
///                    └─ 98' ─ 99' ─ 100' ─ 101'      common ancestor 97, depth 3
/// stream:     Head 97, Head 98, Head 99, Head 100, Reorg, Head 98', Head 99', Head 100', Head 101'
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reorg {
    /// How many delivered heads were replaced: the heights from the common ancestor's + 1 to the
    /// last head delivered. When the common ancestor is unknown, the heights compared, a lower
    /// bound.
    pub depth: u64,
    /// The newest block both chains share; `None` when the fork is deeper than the adapter
    /// remembers (see [`EthereumAdapter::max_reorg_depth`](crate::EthereumAdapter::max_reorg_depth)).
    pub common_ancestor: Option<BlockRef>,
    /// The replaced heads, as delivered, oldest first.
    pub old: Vec<BlockRef>,
    /// The new chain's blocks at the replaced heights, oldest first, as the node had them when
    /// the adapter fetched them; fewer than `old` when the new chain is shorter.
    pub new: Vec<BlockRef>,
}

/// Logs a reorg took out of the chain, flagged `removed`, and the new chain's logs that replace
/// them. [`EthSubscription`](crate::EthSubscription) yields them one by one: every removed log
/// first, then the replacements, then the next live ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogReorg {
    /// Logs delivered before that are no longer in the chain (`removed: true`), oldest first.
    pub removed: Vec<Log>,
    /// The new chain's logs at those heights, oldest first.
    pub logs: Vec<Log>,
}

impl LogReorg {
    /// The removed logs (flagged) and their replacements.
    #[must_use]
    pub fn new(removed: Vec<Log>, logs: Vec<Log>) -> Self {
        Self { removed, logs }
    }
}

/// A reorg message of the subscription whose current server id is `server_id`, at sequence
/// value `position` (see the module docs).
pub(crate) fn reorg_message(server_id: &str, position: u64, result: Value) -> Message {
    Message::text(
        json!({
            "jsonrpc": "2.0",
            "method": REORG_METHOD,
            "params": {
                "subscription": server_id,
                "position": Quantity(position),
                "result": result,
            }
        })
        .to_string(),
    )
}

/// The sequence value of a reorg message; `None` for any other message.
pub(crate) fn reorg_position(message: &Message) -> Option<u64> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        method: &'a str,
        params: Params,
    }
    #[derive(Deserialize)]
    struct Params {
        position: Quantity,
    }
    let envelope: Envelope<'_> = serde_json::from_slice(message.as_bytes()).ok()?;
    (envelope.method == REORG_METHOD).then_some(envelope.params.position.0)
}

/// The `result` of a reorg message; `None` when the message is not one.
pub(crate) fn reorg_result<T: for<'de> Deserialize<'de>>(
    message: &Message,
) -> Option<Result<T, serde_json::Error>> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        method: &'a str,
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        result: &'a serde_json::value::RawValue,
    }
    let envelope: Envelope<'_> = serde_json::from_slice(message.as_bytes()).ok()?;
    (envelope.method == REORG_METHOD).then(|| serde_json::from_str(envelope.params.result.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_values_sort_by_branch_then_number() {
        assert_eq!(head_sequence(0, 5), 5);
        assert!(head_sequence(1, 0) > head_sequence(0, HEAD_NUMBER_MAX));
        assert_eq!(head_sequence(0, u64::MAX), HEAD_NUMBER_MAX);
        assert_eq!(
            head_sequence_parts(head_sequence(u64::MAX, 1)),
            (HEAD_BRANCH_MAX, 1)
        );
        assert_eq!(head_sequence(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn reorg_messages_carry_their_position_and_result() {
        let reorg = Reorg {
            depth: 1,
            common_ancestor: Some(BlockRef {
                number: 9,
                hash: "0x09".into(),
            }),
            old: vec![BlockRef {
                number: 10,
                hash: "0x0a".into(),
            }],
            new: vec![BlockRef {
                number: 10,
                hash: "0xaa".into(),
            }],
        };
        let value = serde_json::to_value(&reorg).unwrap_or_default();
        assert_eq!(value["commonAncestor"]["number"], "0x9");
        let message = reorg_message("0xsub", head_sequence(1, 9), value);
        assert_eq!(reorg_position(&message), Some(head_sequence(1, 9)));
        let back: Option<Result<Reorg, _>> = reorg_result(&message);
        assert_eq!(back.and_then(Result::ok), Some(reorg));
        let notification = Message::text(
            r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","position":"0x1","result":{}}}"#,
        );
        assert_eq!(reorg_position(&notification), None);
        assert!(reorg_result::<Reorg>(&notification).is_none());
        assert_eq!(reorg_position(&Message::text("garbage")), None);
    }
}
