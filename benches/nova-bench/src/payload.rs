//! The traffic of the benchmarks: Deribit-style `book` notifications of about 400 bytes, the
//! parse every consumer (bare and nova alike) applies to each of them, and raw WebSocket frames.
//!
//! The parse is a typed, borrowing `serde` struct ([`Notification`]): what a latency-minded
//! trading application writes, and the cheapest honest parse, so nova's own overhead weighs as
//! much as it can in the ratio. Every consumer folds what it parsed into a [`Tally`], and the
//! tallies of bare and nova are compared, so a variant that skipped or garbled messages is
//! caught.

use serde::Deserialize;

/// The channel the flood is published on.
pub(crate) const CHANNEL: &str = "book.BTC-PERPETUAL.100ms";

/// Messages in one pre-encoded chunk the server writes (distinct change ids).
pub(crate) const CHUNK_MESSAGES: usize = 1024;

/// First change id; every id has the same number of digits, so every message the same length.
const FIRST_CHANGE_ID: u64 = 70_000_000_000;

/// A Deribit `book.{instrument}.100ms` change notification with change id `FIRST + i`.
pub(crate) fn notification(channel: &str, i: u64) -> String {
    let change_id = FIRST_CHANGE_ID + i;
    let prev = change_id - 1;
    let ts = 1_764_420_000_000u64 + i;
    let p = 91_250.0 + (i % 50) as f64 * 0.5;
    format!(
        concat!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{{"#,
            r#""type":"change","timestamp":{ts},"prev_change_id":{prev},"instrument_name":"BTC-PERPETUAL","#,
            r#""change_id":{change_id},"bids":[["change",{b1:.1},12340.0],["new",{b2:.1},500.0],"#,
            r#"["delete",{b3:.1},0.0]],"asks":[["change",{a1:.1},8800.0],"#,
            r#"["new",{a2:.1},1500.0],["delete",{a3:.1},0.0],["change",{a4:.1},3120.0]]}}}}}}"#
        ),
        channel = channel,
        ts = ts,
        prev = prev,
        change_id = change_id,
        b1 = p,
        b2 = p - 1.5,
        b3 = p - 2.0,
        a1 = p + 0.5,
        a2 = p + 2.0,
        a3 = p + 2.5,
        a4 = p + 9.0,
    )
}

/// The same book change in the envelope of nova-gen's `generic` kind (Bybit's shape: data on
/// a `topic`, written `topic` first), for the stream through a crate generated with
/// `--platform generic` and its bare loop.
pub(crate) fn generic_notification(topic: &str, i: u64) -> String {
    let deribit = notification(topic, i);
    let data_at = deribit.find(r#""data":"#).unwrap_or(0);
    let data = &deribit[data_at..deribit.len() - 2];
    let ts = 1_764_420_000_000u64 + i;
    format!(r#"{{"topic":"{topic}","type":"delta","ts":{ts},{data}}}"#)
}

/// A notification as the consumers parse it (borrowing from the message).
#[derive(Debug, Deserialize)]
pub(crate) struct Notification<'a> {
    /// `"subscription"`.
    #[serde(borrow)]
    pub(crate) method: &'a str,
    /// The channel and its data.
    #[serde(borrow)]
    pub(crate) params: Params<'a>,
}

/// `params` of a notification.
#[derive(Debug, Deserialize)]
pub(crate) struct Params<'a> {
    /// The channel.
    #[serde(borrow)]
    pub(crate) channel: &'a str,
    /// The book change.
    #[serde(borrow)]
    pub(crate) data: Book<'a>,
}

/// One order book change: price levels as `[action, price, amount]`.
#[derive(Debug, Deserialize)]
pub(crate) struct Book<'a> {
    /// `"change"` or `"snapshot"`.
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    /// Milliseconds since the epoch.
    pub(crate) timestamp: u64,
    /// The previous change id.
    pub(crate) prev_change_id: u64,
    /// The instrument.
    pub(crate) instrument_name: &'a str,
    /// This change's id.
    pub(crate) change_id: u64,
    /// Bid levels.
    #[serde(borrow)]
    pub(crate) bids: Vec<(&'a str, f64, f64)>,
    /// Ask levels.
    #[serde(borrow)]
    pub(crate) asks: Vec<(&'a str, f64, f64)>,
}

/// A generic-kind notification as its consumers parse it (borrowing from the message).
#[derive(Debug, Deserialize)]
pub(crate) struct GenericNote<'a> {
    /// The topic.
    #[serde(borrow)]
    pub(crate) topic: &'a str,
    /// The book change.
    #[serde(borrow)]
    pub(crate) data: Book<'a>,
}

/// What a consumer saw: how many notifications, and a checksum of their contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Notifications parsed.
    pub(crate) count: u64,
    /// Wrapping sum of change ids, timestamps and level counts.
    pub(crate) checksum: u64,
    /// Messages that did not parse.
    pub(crate) bad: u64,
}

impl Tally {
    /// Parses one message with the benchmark's parse and adds it.
    #[inline]
    pub(crate) fn add(&mut self, bytes: &[u8]) {
        match serde_json::from_slice::<Notification<'_>>(bytes) {
            Ok(n) => self.fold(n.method.len(), n.params.channel, &n.params.data),
            Err(_) => self.bad += 1,
        }
    }

    /// Parses one generic-kind notification ([`generic_notification`]) and adds it: the same
    /// checksum as [`add`](Self::add) (the method's length stands for the envelope's).
    #[inline]
    pub(crate) fn add_generic(&mut self, bytes: &[u8]) {
        match serde_json::from_slice::<GenericNote<'_>>(bytes) {
            Ok(n) => self.fold("subscription".len(), n.topic, &n.data),
            Err(_) => self.bad += 1,
        }
    }

    #[inline]
    fn fold(&mut self, method_len: usize, channel: &str, d: &Book<'_>) {
        let levels = (d.bids.len() + d.asks.len()) as u64;
        let text = (method_len + channel.len() + d.kind.len() + d.instrument_name.len()) as u64;
        self.count += 1;
        self.checksum = self
            .checksum
            .wrapping_add(d.change_id ^ d.prev_change_id.rotate_left(7))
            .wrapping_add(d.timestamp)
            .wrapping_add(levels + text);
    }
}

/// A notification parsed into nova-deribit's own types (what `bare` does when compared with
/// nova-deribit's typed stream: the same struct, parsed once).
#[derive(Deserialize)]
pub(crate) struct DeribitNote<'a> {
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow)]
    params: DeribitParams<'a>,
}

#[derive(Deserialize)]
struct DeribitParams<'a> {
    #[serde(borrow)]
    channel: &'a str,
    data: nova_deribit::BookUpdate,
}

impl Tally {
    /// Parses one message into nova-deribit's `BookUpdate` and adds it.
    pub(crate) fn add_deribit(&mut self, bytes: &[u8]) {
        match serde_json::from_slice::<DeribitNote<'_>>(bytes) {
            Ok(n) => self.add_book(n.method, n.params.channel, &n.params.data),
            Err(_) => self.bad += 1,
        }
    }

    /// Adds a book change already parsed (by nova-deribit's adapter, or by `add_deribit`): the
    /// same checksum as [`add`](Self::add).
    pub(crate) fn add_book(&mut self, method: &str, channel: &str, d: &nova_deribit::BookUpdate) {
        let levels = (d.bids.len() + d.asks.len()) as u64;
        let kind = d.kind.as_deref().unwrap_or_default();
        let text = (method.len() + channel.len() + kind.len() + d.instrument_name.len()) as u64;
        self.count += 1;
        self.checksum = self
            .checksum
            .wrapping_add(d.change_id ^ d.prev_change_id.unwrap_or_default().rotate_left(7))
            .wrapping_add(d.timestamp)
            .wrapping_add(levels + text);
    }
}

/// An unmasked server-to-client text frame (RFC 6455 5.2) carrying `payload`.
pub(crate) fn text_frame(payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x81);
    if let Some(small) = u8::try_from(len).ok().filter(|&l| l < 126) {
        out.push(small);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// [`CHUNK_MESSAGES`] encoded notifications on `channel`, back to back, and the length of one
/// frame (they all have the same length).
/// `encode` writes notification `i` on the channel ([`notification`], [`generic_notification`]).
pub(crate) fn flood_chunk(channel: &str, encode: fn(&str, u64) -> String) -> (Vec<u8>, usize) {
    let mut chunk = Vec::new();
    let mut frame_len = 0;
    for i in 0..CHUNK_MESSAGES as u64 {
        let frame = text_frame(encode(channel, i).as_bytes());
        frame_len = frame.len();
        chunk.extend_from_slice(&frame);
    }
    (chunk, frame_len)
}

/// Where the digits of `prev_change_id` and `change_id` sit in every frame of a chunk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdOffsets {
    prev: usize,
    change: usize,
}

impl IdOffsets {
    /// Finds the id digits in the first frame of `chunk`.
    pub(crate) fn find(chunk: &[u8]) -> Option<Self> {
        let after = |key: &[u8]| memchr::memmem::find(chunk, key).map(|at| at + key.len());
        Some(Self {
            prev: after(br#""prev_change_id":"#)?,
            change: after(br#""change_id":"#)?,
        })
    }

    /// Renumbers the chunk so that its change ids continue from `first` (message `first`
    /// of the flood): every id keeps its digit count, so the frames keep their length. A book
    /// sequence stays continuous across chunks, as a sequence-checking adapter requires.
    pub(crate) fn renumber(self, chunk: &mut [u8], frame_len: usize, first: u64) {
        for (i, frame) in chunk.chunks_exact_mut(frame_len).enumerate() {
            let change_id = FIRST_CHANGE_ID + first + i as u64;
            write_digits(&mut frame[self.change..self.change + ID_DIGITS], change_id);
            write_digits(&mut frame[self.prev..self.prev + ID_DIGITS], change_id - 1);
        }
    }
}

/// Digits of every change id in the flood.
const ID_DIGITS: usize = 11;

fn write_digits(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn notifications_are_about_400_bytes_and_parse() {
        let a = notification(CHANNEL, 0);
        let b = notification(CHANNEL, 1023);
        assert_eq!(a.len(), b.len());
        assert!((380..=420).contains(&a.len()), "{} bytes", a.len());
        let mut tally = Tally::default();
        tally.add(a.as_bytes());
        assert_eq!((tally.count, tally.bad), (1, 0));
        let (mut chunk, frame_len) = flood_chunk(CHANNEL, notification);
        assert_eq!(chunk.len(), frame_len * CHUNK_MESSAGES);
        // Renumbered as the second chunk, its ids continue where the first chunk's ended.
        let offsets = IdOffsets::find(&chunk).unwrap();
        offsets.renumber(&mut chunk, frame_len, CHUNK_MESSAGES as u64);
        for (i, frame) in chunk.chunks_exact(frame_len).enumerate().take(3) {
            let note: Notification<'_> = serde_json::from_slice(&frame[4..]).unwrap();
            let id = FIRST_CHANGE_ID + (CHUNK_MESSAGES + i) as u64;
            assert_eq!(note.params.data.change_id, id);
            assert_eq!(note.params.data.prev_change_id, id - 1);
        }
    }

    #[test]
    fn generic_notifications_carry_the_same_book() {
        let mut deribit = Tally::default();
        let mut generic = Tally::default();
        for i in [0, 7, 1023] {
            deribit.add(notification(CHANNEL, i).as_bytes());
            generic.add_generic(generic_notification(CHANNEL, i).as_bytes());
        }
        assert_eq!(deribit, generic);
        let (chunk, frame_len) = flood_chunk(CHANNEL, generic_notification);
        assert!(IdOffsets::find(&chunk).is_some());
        assert_eq!(chunk.len(), frame_len * CHUNK_MESSAGES);
    }
}
