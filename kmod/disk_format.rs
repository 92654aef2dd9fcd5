// SPDX-License-Identifier: GPL-2.0

//! The on-disk format of `userland/vexfs-format`, compiled from the same
//! source files as the userland crate (whose `lib.rs` only declares these
//! modules), so the module writes what `mkfs.vexfs` makes and
//! `fsck.vexfs` checks.

#[path = "../userland/vexfs-format/src/crc.rs"]
mod crc;
#[path = "../userland/vexfs-format/src/error.rs"]
mod error;
#[path = "../userland/vexfs-format/src/frame.rs"]
mod frame;
#[path = "../userland/vexfs-format/src/layout.rs"]
mod layout;
#[path = "../userland/vexfs-format/src/record.rs"]
mod record;
#[path = "../userland/vexfs-format/src/super_block.rs"]
mod super_block;

pub(crate) use crc::*;
pub(crate) use error::*;
pub(crate) use frame::*;
pub(crate) use layout::*;
pub(crate) use record::*;
pub(crate) use super_block::*;
