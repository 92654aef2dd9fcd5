// SPDX-License-Identifier: GPL-2.0
//! The HNSW crate's integration tests, in one test binary: each file under
//! `tests/` is a crate of its own, and each would compile the generic index
//! again at the test profile's opt-level 3.

mod common;
mod edge;
mod glove;
mod persist;
mod planned;
mod recall;
mod repair;
