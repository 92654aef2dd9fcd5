//! The VexFS ioctl ABI, as a `no_std` crate for userland.
//!
//! The definitions live in `abi.rs`, which the kernel module compiles too
//! (`#[path]` in `kmod/vexfs.rs`): one file, so the two sides cannot drift.
#![no_std]

mod abi;
pub use abi::*;
