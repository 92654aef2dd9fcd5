// SPDX-License-Identifier: GPL-2.0

//! Persistence: [`Hnsw::encode`] streams an index as bytes (so that a
//! filesystem can store a collection's graph in its checkpoint) and
//! [`Hnsw::decode`] rebuilds it from them at mount, instead of
//! re-inserting every vector.
//!
//! # What is stored
//!
//! The graph as the searches and mutations see it, and nothing else:
//! per node id its state, level and slot; the stack of free node ids (in
//! order: it decides which ids later inserts reuse); each list of each
//! node in use; the entry point, top level, counts, the `identity` flag
//! and the state of the level generator. So a decoded index answers every
//! search exactly like the original (same slots, same keys), and later
//! inserts draw the same levels, reuse the same ids and build the same
//! lists: the two indexes stay identical, encoding for encoding.
//!
//! Not stored, because they change no result:
//!
//! - the in-memory layout: stale words past a list's count, dead blocks of
//!   purged nodes in the upper-level array (decode lays the blocks out in
//!   node order, compacted), the spare length of the slot map (decode sizes
//!   it to the highest slot in use + 1);
//! - the scratch buffers, the visited stamps and the checkpoint counter;
//! - the cursor of an incremental repair: a decoded index starts it at the
//!   beginning. Restarting only rescans: a list the repair rebuilt holds no
//!   tombstone any more, so it is not rebuilt again, and the lists not yet
//!   rebuilt come out as they would have (a rebuild reads only its node's
//!   list and those of tombstones, which a repair never changes). The graph
//!   after the repair is the same; only the number of steps differs.
//!
//! Of [`Params`], only `M` is stored: it fixes the list capacities, and
//! `decode` fails with [`Error::InvalidParams`] when the caller's differs.
//! `ef_construction` and `repair_percent` are tuning knobs taken from the
//! caller's `params` (a filesystem may change them between mounts), and
//! `seed` is unused by a decoded index, whose level generator continues
//! from the stored state.
//!
//! # Layout (version 1)
//!
//! Little-endian, no padding, no checksum: integrity is the caller's (a
//! filesystem checksums the blocks it stores the encoding in); `decode`
//! only guarantees a consistent index, so a corruption that keeps the
//! graph consistent (a neighbour id changed into another valid one, the
//! generator state) goes unnoticed. `N` node ids, `F` free ids, `W` list
//! words; the length is exactly `64 + 6N + 4F + 4W` bytes.
//!
//! Header, 64 bytes:
//!
//! | offset | size | field                                                     |
//! |-------:|-----:|-----------------------------------------------------------|
//! |      0 |    8 | magic `b"VXHNSW\0\x01"`                                   |
//! |      8 |    4 | version, 1                                                |
//! |     12 |    4 | `M` (2 to 127; level-0 lists hold up to `2M`)             |
//! |     16 |    4 | `N`: node ids, in use or free (at most `0xFFFF_FFFE`)     |
//! |     20 |    4 | `F`: free node ids (`N - live - deleted`)                 |
//! |     24 |    4 | slots: highest slot in use + 1, 0 if none                 |
//! |     28 |    4 | entry node, `0xFFFF_FFFF` iff no node is in use           |
//! |     32 |    4 | top level (the entry's level; 0 without nodes), <= 16     |
//! |     36 |    4 | live nodes                                                |
//! |     40 |    4 | deleted nodes (tombstones not yet purged)                 |
//! |     44 |    4 | flags: bit 0 `identity` (every node in use has slot = id) |
//! |     48 |    8 | level generator (splitmix64) state                        |
//! |     56 |    8 | `W`: words of the lists section                           |
//!
//! Then five sections, one after the other:
//!
//! | size   | section                                                        |
//! |-------:|----------------------------------------------------------------|
//! | `N`    | state per node id: 0 free, 1 live, 2 deleted                   |
//! | `N`    | level per node id (0 for a free id)                            |
//! | `4N`   | slot per node id (u32; `0xFFFF_FFFF` for a free id)            |
//! | `4F`   | free ids (u32), bottom of the stack first: the last is reused  |
//! |        | first                                                          |
//! | `4W`   | lists: for each node in use, by increasing id, for each of its |
//! |        | levels from 0 up: a count (u32, at most `2M` on level 0 and    |
//! |        | `M` above), then that many neighbour ids (u32)                 |
//!
//! So 10 bytes per node, 4 per list and 4 per edge. With `M = 16`:
//! 90 bytes per node on GloVe 50-d (20,000 vectors, `ef_construction`
//! 200; 250 in memory), 75 on the tests' clustered data.
//!
//! # Validation
//!
//! The bytes come from a disk, so `decode` trusts nothing: it checks the
//! magic, version and `M`, that the length is exactly the one the header
//! implies (before allocating anything, so the memory it asks for is
//! bounded by a small multiple of the input's size, level-0 lists being
//! allocated at full capacity, apart from the slot map, which costs 4
//! bytes per slot up to the highest slot in use, as in the original
//! index), then that: states are 0, 1 or 2; a free id has level 0 and no
//! slot, and is on the free stack exactly once, which holds nothing else;
//! a node in use has a level at most the top level and a slot below the
//! header's slot count, unique, equal to its id if the `identity` flag is
//! set; the counts of live, deleted and free ids match the header; the
//! highest slot matches; the entry is a node in use of the top level, and
//! the top level is the highest level in use (or the entry is none and the
//! top level 0, iff no node is in use); each list count is within its
//! capacity; each neighbour is a node in use, not the node itself, with a
//! level at least the list's; the lists fill exactly `W` words; unknown
//! flag bits are 0. Finally [`Hnsw::check`] runs on the result (it also
//! rejects duplicate neighbours). Every failure is [`Error::Corrupt`]
//! (a wrong `M`: [`Error::InvalidParams`]; no memory:
//! [`Error::OutOfMemory`]); nothing panics, whatever the bytes.

use super::graph::{DELETED, FREE, LIVE, MAX_LEVEL, NONE};
use super::rng::Rng;
use super::vec::Alloc;
use super::{Error, Hnsw, Params};

/// First 8 bytes of an encoding.
const MAGIC: [u8; 8] = *b"VXHNSW\0\x01";
/// Version of the layout described above.
const VERSION: u32 = 1;
/// Header bytes.
const HEADER: usize = 64;
/// `flags` bit: `Graph::identity`.
const FLAG_IDENTITY: u32 = 1;
/// Largest piece handed to the sink (a stack buffer of `encode`).
const CHUNK: usize = 1024;

/// Buffers the encoding and hands it to the sink `CHUNK` bytes at a time.
struct Writer<'a, F> {
    sink: &'a mut F,
    buf: [u8; CHUNK],
    len: usize,
}

impl<F> Writer<'_, F> {
    fn put<E>(&mut self, bytes: &[u8]) -> Result<(), E>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        if self.len + bytes.len() > CHUNK {
            self.flush()?;
        }
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            for (d, &s) in dst.iter_mut().zip(bytes) {
                *d = s;
            }
            self.len += bytes.len();
        }
        Ok(())
    }

    fn u8<E>(&mut self, v: u8) -> Result<(), E>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        self.put(&[v])
    }

    fn u32<E>(&mut self, v: u32) -> Result<(), E>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        self.put(&v.to_le_bytes())
    }

    fn u64<E>(&mut self, v: u64) -> Result<(), E>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        self.put(&v.to_le_bytes())
    }

    fn flush<E>(&mut self) -> Result<(), E>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        if let Some(piece) = self.buf.get(..self.len) {
            if !piece.is_empty() {
                (self.sink)(piece)?;
            }
        }
        self.len = 0;
        Ok(())
    }
}

/// Reads the encoding front to back; running out is [`Error::Corrupt`].
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        match (self.bytes.get(..n), self.bytes.get(n..)) {
            (Some(head), Some(rest)) => {
                self.bytes = rest;
                Ok(head)
            }
            _ => Err(Error::Corrupt),
        }
    }

    fn u32(&mut self) -> Result<u32, Error> {
        le32(self.take(4)?).ok_or(Error::Corrupt)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        match *self.take(8)? {
            [a, b, c, d, e, f, g, h] => Ok(u64::from_le_bytes([a, b, c, d, e, f, g, h])),
            _ => Err(Error::Corrupt),
        }
    }
}

/// A little-endian `u32` from exactly 4 bytes.
fn le32(b: &[u8]) -> Option<u32> {
    match *b {
        [a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
        _ => None,
    }
}

/// What the header needs beyond the graph's fields: free ids, slot count
/// (highest slot in use + 1), list words.
struct Summary {
    free: usize,
    slots: u32,
    words: u64,
}

impl<A: Alloc> Hnsw<A> {
    fn summary(&self) -> Summary {
        let g = &self.g;
        let (mut slots, mut words) = (0u32, 0u64);
        for node in 0..g.nodes() as u32 {
            if g.state(node) == FREE {
                continue;
            }
            slots = slots.max(g.slot(node).saturating_add(1));
            for lc in 0..=g.level(node) {
                words += 1 + g.neighbours(node, lc).len() as u64;
            }
        }
        Summary {
            free: g.free_nodes.len(),
            slots,
            words,
        }
    }

    /// Bytes [`encode`](Self::encode) produces (O(nodes): it counts the
    /// list entries).
    pub fn encoded_len(&self) -> usize {
        let s = self.summary();
        let n = self.g.nodes() as u64;
        let len = HEADER as u64 + 6 * n + 4 * s.free as u64 + 4 * s.words;
        usize::try_from(len).unwrap_or(usize::MAX)
    }

    /// Streams the encoding of the index (the layout is in the module
    /// documentation of `persist.rs`) to `sink`, in pieces of at most
    /// 1 KiB, [`encoded_len`](Self::encoded_len) bytes in all. Allocates
    /// nothing; stops at the sink's first error and returns it.
    /// [`decode`](Self::decode) rebuilds an index that behaves exactly like
    /// this one.
    pub fn encode<E>(&self, sink: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let g = &self.g;
        let s = self.summary();
        let nodes = g.nodes() as u32;
        let mut w = Writer {
            sink,
            buf: [0; CHUNK],
            len: 0,
        };
        w.put(&MAGIC)?;
        w.u32(VERSION)?;
        w.u32(g.m as u32)?;
        w.u32(nodes)?;
        w.u32(s.free as u32)?;
        w.u32(s.slots)?;
        w.u32(g.entry)?;
        w.u32(g.max_level as u32)?;
        w.u32(g.live as u32)?;
        w.u32(g.deleted as u32)?;
        w.u32(if g.identity { FLAG_IDENTITY } else { 0 })?;
        w.u64(self.rng.state())?;
        w.u64(s.words)?;
        for node in 0..nodes {
            w.u8(g.state(node))?;
        }
        for node in 0..nodes {
            let free = g.state(node) == FREE;
            w.u8(if free { 0 } else { g.level(node) as u8 })?;
        }
        for node in 0..nodes {
            let free = g.state(node) == FREE;
            w.u32(if free { NONE } else { g.slot(node) })?;
        }
        for &id in g.free_nodes.iter() {
            w.u32(id)?;
        }
        for node in 0..nodes {
            if g.state(node) == FREE {
                continue;
            }
            for lc in 0..=g.level(node) {
                let list = g.neighbours(node, lc);
                w.u32(list.len() as u32)?;
                for &id in list {
                    w.u32(id)?;
                }
            }
        }
        w.flush()
    }

    /// Rebuilds an index from the bytes of [`encode`](Self::encode), on
    /// `alloc`, with `params` (whose `M` must be the encoded one; its
    /// `ef_construction` and `repair_percent` apply from now on; its
    /// `seed` is unused: the level generator continues from the stored
    /// state). The bytes are untrusted: anything but a valid encoding
    /// (exactly, with no trailing bytes) is [`Error::Corrupt`], never a
    /// panic, and a decoded index passes [`check`](Self::check).
    ///
    /// Errors: [`Error::InvalidParams`] for a bad `M` or one that differs
    /// from the encoded `M`, [`Error::Corrupt`], [`Error::OutOfMemory`].
    pub fn decode(params: Params, bytes: &[u8], alloc: A) -> Result<Self, Error> {
        let mut h = Self::new(params, alloc)?;
        let (m, m0) = (h.g.m, h.g.m0);
        let mut r = Reader { bytes };

        // Header.
        if r.take(MAGIC.len())? != MAGIC || r.u32()? != VERSION {
            return Err(Error::Corrupt);
        }
        if r.u32()? as usize != m {
            return Err(Error::InvalidParams);
        }
        let nodes = r.u32()?;
        let free = r.u32()?;
        let slots = r.u32()?;
        let entry = r.u32()?;
        let max_level = r.u32()? as usize;
        let live = r.u32()?;
        let deleted = r.u32()?;
        let flags = r.u32()?;
        let rng = r.u64()?;
        let words = r.u64()?;
        if nodes == NONE
            || max_level > MAX_LEVEL
            || flags & !FLAG_IDENTITY != 0
            || u64::from(live) + u64::from(deleted) + u64::from(free) != u64::from(nodes)
        {
            return Err(Error::Corrupt);
        }
        let identity = flags & FLAG_IDENTITY != 0;
        let expected = words
            .checked_mul(4)
            .and_then(|l| l.checked_add(HEADER as u64 + 6 * u64::from(nodes)))
            .and_then(|l| l.checked_add(4 * u64::from(free)));
        if expected != Some(bytes.len() as u64) {
            return Err(Error::Corrupt);
        }
        // The length is right: every section below is within `bytes`.
        let n = nodes as usize;
        let states = r.take(n)?;
        let levels = r.take(n)?;
        let node_slots = r.take(4 * n)?;
        let free_ids = r.take(4 * free as usize)?;
        let mut lists = Reader { bytes: r.bytes };

        // Per node, before allocating anything.
        let (mut nlive, mut ndeleted, mut slot_end) = (0u32, 0u32, 0u32);
        let (mut upper_words, mut top) = (0u64, 0usize);
        // Indexed rather than zipped with `chunks_exact`, whose length
        // division the kernel's objtool cannot see as unreachable.
        for (i, (&state, &level)) in states.iter().zip(levels).enumerate() {
            let s = node_slots.get(4 * i..4 * i + 4).ok_or(Error::Corrupt)?;
            let slot = le32(s).ok_or(Error::Corrupt)?;
            let level = level as usize;
            match state {
                FREE if level == 0 && slot == NONE => continue,
                LIVE => nlive += 1,
                DELETED => ndeleted += 1,
                _ => return Err(Error::Corrupt),
            }
            if level > max_level || slot >= slots || (identity && slot as usize != i) {
                return Err(Error::Corrupt);
            }
            slot_end = slot_end.max(slot + 1);
            upper_words += (level * (1 + m)) as u64;
            top = top.max(level);
        }
        let used = nlive + ndeleted;
        let entry_ok = if used == 0 {
            entry == NONE && max_level == 0
        } else {
            let e = entry as usize;
            matches!(states.get(e), Some(&LIVE | &DELETED))
                && levels.get(e).map(|&l| l as usize) == Some(max_level)
                && top == max_level
        };
        if nlive != live
            || ndeleted != deleted
            || slot_end != slots
            || !entry_ok
            || upper_words >= u64::from(NONE)
        {
            return Err(Error::Corrupt);
        }

        // Allocate everything, then fill the per-node arrays.
        let g = &mut h.g;
        let stride = 1 + m0;
        let level0 = n.checked_mul(stride).ok_or(Error::OutOfMemory)?;
        g.level0.try_resize(level0, 0)?;
        g.upper.try_resize(upper_words as usize, 0)?;
        g.node_upper.try_reserve(n)?;
        g.node_level.try_reserve(n)?;
        g.node_state.try_reserve(n)?;
        g.node_slot.try_reserve(n)?;
        g.slot_node.try_resize(slots as usize, NONE)?;
        g.free_nodes.try_reserve(free as usize)?;
        let mut base = 0u32;
        // Indexed rather than zipped with `chunks_exact`, whose length
        // division the kernel's objtool cannot see as unreachable.
        for (i, (&state, &level)) in states.iter().zip(levels).enumerate() {
            let s = node_slots.get(4 * i..4 * i + 4).ok_or(Error::Corrupt)?;
            let slot = le32(s).ok_or(Error::Corrupt)?;
            let upper = if state == FREE || level == 0 {
                NONE
            } else {
                let b = base;
                base += u32::from(level) * (1 + m as u32);
                b
            };
            if state != FREE {
                match g.slot_node.get_mut(slot as usize) {
                    Some(x) if *x == NONE => *x = i as u32,
                    _ => return Err(Error::Corrupt),
                }
            }
            let pushed = g.node_state.push_within_capacity(state).is_ok()
                && g.node_level.push_within_capacity(level).is_ok()
                && g.node_slot.push_within_capacity(slot).is_ok()
                && g.node_upper.push_within_capacity(upper).is_ok();
            if !pushed {
                return Err(Error::OutOfMemory);
            }
        }

        // The free stack: free ids only, each once (marked meanwhile by a
        // 0 in `node_upper`, which is `NONE` for every free id). With the
        // header's `F = N - live - deleted`, that is every free id.
        for s in free_ids.chunks_exact(4) {
            let id = le32(s).ok_or(Error::Corrupt)?;
            if g.node_state.get(id as usize) != Some(&FREE) {
                return Err(Error::Corrupt);
            }
            match g.node_upper.get_mut(id as usize) {
                Some(x) if *x == NONE => *x = 0,
                _ => return Err(Error::Corrupt),
            }
            if g.free_nodes.push_within_capacity(id).is_err() {
                return Err(Error::OutOfMemory);
            }
        }
        for &id in g.free_nodes.iter() {
            if let Some(x) = g.node_upper.get_mut(id as usize) {
                *x = NONE;
            }
        }

        // The lists.
        for node in 0..nodes {
            let i = node as usize;
            if !matches!(g.node_state.get(i), Some(&LIVE | &DELETED)) {
                continue;
            }
            let level = g.node_level.get(i).map_or(0, |&l| l as usize);
            for lc in 0..=level {
                let cap = g.cap(lc);
                let count = lists.u32()? as usize;
                if count > cap {
                    return Err(Error::Corrupt);
                }
                let (arr, start) = if lc == 0 {
                    (&mut g.level0, i * stride)
                } else {
                    let b = g.node_upper.get(i).map_or(NONE, |&b| b);
                    (&mut g.upper, b as usize + (lc - 1) * (1 + m))
                };
                let Some(block) = arr.get_mut(start..start + 1 + cap) else {
                    return Err(Error::Corrupt);
                };
                let Some((c, ids)) = block.split_first_mut() else {
                    return Err(Error::Corrupt);
                };
                *c = count as u32;
                for slot in ids.iter_mut().take(count) {
                    let id = lists.u32()?;
                    let ok = id != node
                        && matches!(g.node_state.get(id as usize), Some(&LIVE | &DELETED))
                        && g.node_level
                            .get(id as usize)
                            .is_some_and(|&l| l as usize >= lc);
                    if !ok {
                        return Err(Error::Corrupt);
                    }
                    *slot = id;
                }
            }
        }
        if !lists.bytes.is_empty() {
            return Err(Error::Corrupt);
        }

        g.entry = entry;
        g.max_level = max_level;
        g.live = live as usize;
        g.deleted = deleted as usize;
        g.identity = identity;
        h.rng = Rng::new(rng);
        h.check().map_err(|_| Error::Corrupt)?;
        Ok(h)
    }
}
