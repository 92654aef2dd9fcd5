//! The userland side of the VexFS on-disk format: reading and writing
//! images (`device`), the filesystem a checkpoint and its log describe
//! (`model`), and the checks of `fsck.vexfs` (`check`).

pub mod check;
pub mod device;
pub mod image;
pub mod model;
