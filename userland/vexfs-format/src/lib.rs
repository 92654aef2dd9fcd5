//! The VexFS on-disk format as a `no_std` crate for userland.
//!
//! The definitions live in the files below, which the kernel module
//! compiles too (`#[path]` in `kmod/disk_format.rs`): one source, so the
//! module, `mkfs.vexfs` and `fsck.vexfs` cannot drift apart. Nothing here
//! allocates: decoders borrow from the buffer they are given and encoders
//! write into one. `Documentation/disk-format.rst` has the byte tables.
#![no_std]

mod crc;
mod error;
mod frame;
mod layout;
mod record;
mod super_block;

pub use crc::*;
pub use error::*;
pub use frame::*;
pub use layout::*;
pub use record::*;
pub use super_block::*;
