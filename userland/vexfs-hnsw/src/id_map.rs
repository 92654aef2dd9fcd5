// SPDX-License-Identifier: GPL-2.0

//! [`IdMap`]: a collection's id -> row slot map, a flat open-addressing
//! table.
//!
//! Ids are chosen by users, so a table indexed by a fixed function of the
//! id would let anyone who can insert pick ids that all land in one probe
//! run and make every insert and lookup of the collection linear. The
//! table is indexed by SipHash-1-3 of the id under a per-map random key
//! (the kernel draws it from its CSPRNG), which an attacker cannot learn
//! from outside. That is what the kernel's own hash tables of
//! user-controlled keys do, and what Rust's `HashMap` does.
//!
//! Layout: one array of 16-byte entries (id, slot), a power-of-two
//! capacity at most [`MAX_LOAD_NUM`]/[`MAX_LOAD_DEN`] full, linear probing
//! (a probe run is a few neighbouring entries, usually one cache line),
//! and deletion by backward shift, so there are no tombstones and lookups
//! never slow down with churn. Against the kernel's rbtree this is one
//! allocation per doubling instead of one 40-byte node per id, and a
//! lookup touches one or two cache lines instead of about `log2(n)`.

use super::vec::{Alloc, FVec};
use super::Error;

/// The table is grown before it would be fuller than this fraction.
pub const MAX_LOAD_NUM: usize = 3;
/// See [`MAX_LOAD_NUM`].
pub const MAX_LOAD_DEN: usize = 4;
/// The smallest table allocated.
const MIN_CAPACITY: usize = 16;
/// The slot value of an empty entry (never a row slot).
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    id: u64,
    slot: u32,
}

const VACANT: Entry = Entry { id: 0, slot: EMPTY };

/// Maps `u64` ids to `u32` slots (anything but `u32::MAX`). Growing can
/// fail ([`Error::OutOfMemory`], the map unchanged); nothing else
/// allocates.
pub struct IdMap<A: Alloc> {
    /// `capacity` entries (a power of two), or none before the first
    /// insert.
    entries: FVec<Entry, A>,
    len: usize,
    key: (u64, u64),
}

impl<A: Alloc> IdMap<A> {
    /// An empty map hashing with the SipHash key `key` (random and secret
    /// in the kernel); allocates nothing.
    pub fn new(alloc: A, key: (u64, u64)) -> Self {
        Self {
            entries: FVec::new(alloc),
            len: 0,
            key,
        }
    }

    /// Ids in the map.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds no id.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.entries.bytes()
    }

    /// Entries the table has (free or not).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of a table that holds `ids` ids without growing: what
    /// [`Self::reserve`] to that many would allocate at most.
    pub fn bytes_for(ids: usize) -> usize {
        table_capacity(ids).saturating_mul(core::mem::size_of::<Entry>())
    }

    /// The slot of `id`.
    pub fn get(&self, id: u64) -> Option<u32> {
        self.find(id).map(|at| self.entries[at].slot)
    }

    /// Whether `id` is in the map.
    pub fn contains(&self, id: u64) -> bool {
        self.find(id).is_some()
    }

    /// Makes room for `additional` more ids, so that that many
    /// [`Self::insert_reserved`] calls cannot fail. On failure the map is
    /// unchanged.
    pub fn reserve(&mut self, additional: usize) -> Result<(), Error> {
        let need = self.len.checked_add(additional).ok_or(Error::OutOfMemory)?;
        if fits(need, self.capacity()) {
            return Ok(());
        }
        let cap = table_capacity(need).max(self.capacity().saturating_mul(2));
        self.rehash(cap)
    }

    /// Maps `id` to `slot`, growing the table if needed; returns the slot
    /// it had.
    pub fn insert(&mut self, id: u64, slot: u32) -> Result<Option<u32>, Error> {
        if slot != EMPTY && !self.contains(id) {
            self.reserve(1)?;
        }
        self.insert_reserved(id, slot)
    }

    /// Maps `id` to `slot` in room made by [`Self::reserve`]; returns the
    /// slot it had. `Err(InvalidSlot)` for `u32::MAX`, and
    /// `Err(OutOfMemory)` (nothing changed) if no room was reserved. One
    /// walk of the probe run: it ends at the id or at the free entry a new
    /// id takes.
    pub fn insert_reserved(&mut self, id: u64, slot: u32) -> Result<Option<u32>, Error> {
        if slot == EMPTY {
            return Err(Error::InvalidSlot);
        }
        if !fits(self.len + 1, self.capacity()) && !self.contains(id) {
            return Err(Error::OutOfMemory);
        }
        let mask = self.capacity() - 1;
        let mut at = self.home(id);
        while self.entries[at].slot != EMPTY {
            if self.entries[at].id == id {
                return Ok(Some(core::mem::replace(&mut self.entries[at].slot, slot)));
            }
            at = (at + 1) & mask;
        }
        self.entries[at] = Entry { id, slot };
        self.len += 1;
        Ok(None)
    }

    /// Moves an id already in the map to `slot` (never allocates); returns
    /// its former slot, or `None` (nothing changed) if absent.
    pub fn update(&mut self, id: u64, slot: u32) -> Option<u32> {
        if slot == EMPTY {
            return None;
        }
        let at = self.find(id)?;
        Some(core::mem::replace(&mut self.entries[at].slot, slot))
    }

    /// Removes `id`; returns its slot.
    pub fn remove(&mut self, id: u64) -> Option<u32> {
        let mut hole = self.find(id)?;
        let slot = self.entries[hole].slot;
        // Backward shift: move later entries of the run into the hole when
        // the hole lies on their way from home, so every entry stays
        // reachable from its home without tombstones.
        let mask = self.capacity() - 1;
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let e = self.entries[at];
            if e.slot == EMPTY {
                break;
            }
            let home = self.home(e.id);
            // Distance travelled from home to `at` versus to the hole.
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                hole = at;
            }
        }
        self.entries[hole] = VACANT;
        self.len -= 1;
        Some(slot)
    }

    /// Releases memory when at most an eighth of the table is used (best
    /// effort: a failed allocation keeps the larger table). Frees it all
    /// when empty.
    pub fn trim(&mut self) {
        let cap = self.capacity();
        if self.len == 0 {
            if cap > 0 {
                let mut none = FVec::new(self.entries.allocator().clone());
                self.entries.swap_with(&mut none);
            }
            return;
        }
        if cap > MIN_CAPACITY && self.len <= cap / 8 {
            let _ = self.rehash(table_capacity(self.len * 2));
        }
    }

    /// Every (id, slot) pair, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.entries
            .iter()
            .filter(|e| e.slot != EMPTY)
            .map(|e| (e.id, e.slot))
    }

    /// Where `id` sits in the table.
    fn find(&self, id: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.capacity() - 1;
        let mut at = self.home(id);
        loop {
            let e = &self.entries[at];
            if e.slot == EMPTY {
                return None;
            }
            if e.id == id {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// Stores an id known to be absent (rehash); the table has a free
    /// entry.
    fn put(&mut self, id: u64, slot: u32) {
        let mask = self.capacity() - 1;
        let mut at = self.home(id);
        while self.entries[at].slot != EMPTY {
            at = (at + 1) & mask;
        }
        self.entries[at] = Entry { id, slot };
        self.len += 1;
    }

    /// The entry where `id`'s probe starts; the table is not empty.
    fn home(&self, id: u64) -> usize {
        (siphash13(self.key, id) as usize) & (self.capacity() - 1)
    }

    /// Moves every entry to a new table of `cap` entries (a power of two
    /// that fits them).
    fn rehash(&mut self, cap: usize) -> Result<(), Error> {
        let mut table = FVec::new(self.entries.allocator().clone());
        table.try_resize(cap, VACANT)?;
        core::mem::swap(&mut self.entries, &mut table);
        let len = self.len;
        self.len = 0;
        for e in table.iter().filter(|e| e.slot != EMPTY) {
            self.put(e.id, e.slot);
        }
        debug_assert_eq!(self.len, len);
        Ok(())
    }
}

/// Whether a table of `cap` entries may hold `n` ids.
fn fits(n: usize, cap: usize) -> bool {
    n == 0 || n.saturating_mul(MAX_LOAD_DEN) <= cap.saturating_mul(MAX_LOAD_NUM)
}

/// The smallest power-of-two table (at least [`MIN_CAPACITY`]) that may
/// hold `n` ids; saturates (and then fails to allocate) on absurd `n`.
fn table_capacity(n: usize) -> usize {
    let min = n.saturating_mul(MAX_LOAD_DEN).div_ceil(MAX_LOAD_NUM);
    min.max(MIN_CAPACITY)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
}

/// SipHash with `C` compression and `D` finalization rounds of one
/// little-endian `u64` message (8 bytes), as in the reference of Aumasson
/// and Bernstein.
fn siphash<const C: usize, const D: usize>(key: (u64, u64), m: u64) -> u64 {
    let mut v = [
        key.0 ^ 0x736f_6d65_7073_6575,
        key.1 ^ 0x646f_7261_6e64_6f6d,
        key.0 ^ 0x6c79_6765_6e65_7261,
        key.1 ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    // The message block, then the last block: only the length (8) in its
    // top byte.
    for block in [m, 8u64 << 56] {
        v[3] ^= block;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= block;
    }
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-1-3, the variant Rust's `HashMap` uses.
fn siphash13(key: (u64, u64), m: u64) -> u64 {
    siphash::<1, 3>(key, m)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::StdAlloc;
    use std::collections::BTreeMap;
    use std::hash::Hasher;
    use std::vec::Vec;

    /// Against std's SipHash-2-4 (same rounds, same padding).
    #[test]
    fn siphash_matches_reference() {
        for (k0, k1, m) in [
            (0u64, 0u64, 0u64),
            (0x0706050403020100, 0x0f0e0d0c0b0a0908, 0x0706050403020100),
            (u64::MAX, 1, 0xdead_beef),
            (12345, 67890, u64::MAX),
        ] {
            #[allow(deprecated)]
            let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
            h.write(&m.to_le_bytes());
            assert_eq!(siphash::<2, 4>((k0, k1), m), h.finish());
        }
        // The reference paper's 8-byte vector.
        assert_eq!(
            siphash::<2, 4>((0x0706050403020100, 0x0f0e0d0c0b0a0908), 0x0706050403020100),
            0x93f5f5799a932462
        );
    }

    #[test]
    fn behaves_like_a_btree_map() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut map = IdMap::new(StdAlloc, (1, 2));
        let mut model = BTreeMap::new();
        for step in 0..200_000u32 {
            // Few distinct ids, so inserts, replaces and removes all hit.
            let id = next() % 5000;
            match next() % 4 {
                0 | 1 => assert_eq!(map.insert(id, step).unwrap(), model.insert(id, step)),
                2 => assert_eq!(map.remove(id), model.remove(&id)),
                _ => assert_eq!(map.get(id), model.get(&id).copied()),
            }
            assert_eq!(map.len(), model.len());
            if step % 20_000 == 0 {
                map.trim();
                let mut all: Vec<_> = map.iter().collect();
                all.sort();
                assert_eq!(all, model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
            }
        }
        for id in model.keys() {
            assert!(map.remove(*id).is_some());
        }
        assert!(map.is_empty());
        map.trim();
        assert_eq!(map.bytes(), 0);
    }

    #[test]
    fn reserved_inserts_do_not_allocate() {
        let mut map = IdMap::new(StdAlloc, (3, 4));
        map.reserve(1000).unwrap();
        let bytes = map.bytes();
        assert!(bytes <= IdMap::<StdAlloc>::bytes_for(1000));
        for id in 0..1000u64 {
            assert_eq!(map.insert_reserved(id * 7919, id as u32), Ok(None));
        }
        assert_eq!(map.bytes(), bytes);
        // Replacing needs no room.
        assert_eq!(map.insert_reserved(0, 5), Ok(Some(0)));
        // Fill to the load limit; one more needs room.
        let mut id = 1_000_000;
        while fits(map.len() + 1, map.capacity()) {
            assert_eq!(map.insert_reserved(id, 1), Ok(None));
            id += 1;
        }
        assert_eq!(map.insert_reserved(id, 1), Err(Error::OutOfMemory));
        assert!(!map.contains(id));
        assert_eq!(map.insert(1, u32::MAX), Err(Error::InvalidSlot));
    }

    /// Sequential and strided ids, the easy patterns for a weak hash,
    /// keep probe runs short.
    #[test]
    fn probe_runs_stay_short() {
        for stride in [1u64, 1 << 20, 1 << 32, 4096 + 1] {
            let mut map = IdMap::new(StdAlloc, (5, 6));
            let n = 100_000u64;
            for i in 0..n {
                map.insert(i * stride, i as u32).unwrap();
            }
            let mask = map.capacity() - 1;
            let total: usize = (0..n)
                .map(|i| {
                    let id = i * stride;
                    let at = map.find(id).unwrap();
                    (at.wrapping_sub(map.home(id)) & mask) + 1
                })
                .sum();
            // Linear probing at load <= 3/4 expects about 2.5 probes.
            assert!(total < 4 * n as usize, "stride {stride}: {total} probes");
        }
    }
}
