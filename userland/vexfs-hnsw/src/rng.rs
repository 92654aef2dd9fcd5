// SPDX-License-Identifier: GPL-2.0

//! Deterministic integer PRNG (splitmix64) and the HNSW level draw.

/// splitmix64: a small, fast, well-mixed 64-bit generator. Integer only.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The whole state (for persistence: `Rng::new(state)` continues the
    /// same sequence).
    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A node level: geometric, `P(level >= l) = M^-l`, which is the
    /// paper's `floor(-ln(U) / ln(M))` (normalisation factor `1 / ln M`)
    /// without floating point. Capped at `max`.
    pub(crate) fn level(&mut self, m: usize, max: usize) -> usize {
        let m = m.max(2) as u64;
        let mut level = 0;
        while level < max && self.next_u64() % m == 0 {
            level += 1;
        }
        level
    }
}
