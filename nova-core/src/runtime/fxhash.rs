//! A fast hasher for the runtime's own maps (routes by channel, subscriptions by id, pending
//! requests by id), looked up for every message.
//!
//! std's default SipHash costs ~500 instructions per notification routed (two lookups); this is
//! the multiply-rotate hash rustc uses (FxHash). It does not resist deliberately colliding keys,
//! which these maps do not need: their keys are chosen by the application (channels it
//! subscribed to) and by the runtime (ids it assigned); what the server sends is only looked up.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_with_string_and_integer_keys() {
        let mut routes: FxHashMap<String, u64> = FxHashMap::default();
        for i in 0..1000u64 {
            routes.insert(format!("book.INSTR-{i}.100ms"), i);
        }
        assert_eq!(routes.get("book.INSTR-517.100ms"), Some(&517));
        assert_eq!(routes.get("book.INSTR-517.100m"), None);
        let mut ids: FxHashMap<u64, u64> = FxHashMap::default();
        ids.extend((0..1000).map(|i| (i << 32, i)));
        assert_eq!(ids.get(&(7 << 32)), Some(&7));
    }
}
