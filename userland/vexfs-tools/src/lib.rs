//! The userland side of the VexFS on-disk format: reading and writing
//! images (`device`), the filesystem a checkpoint and its log describe
//! (`model`), the checks of `fsck.vexfs` (`check`), and the two tools'
//! command lines (`cli`).

pub mod check;
pub mod cli;
pub mod device;
pub mod image;
pub mod model;
