// SPDX-License-Identifier: GPL-2.0

//! Where things are on a VexFS device.
//!
//! ```text
//! byte 0      superblock slot 0 (512 bytes used, in its own block)
//! byte 4096   superblock slot 1
//! byte 8192   log: redo frames of the current epoch, from its start
//!             area 0 | area 1: the two checkpoint areas; a checkpoint is
//!             written into the one the superblock does not name
//! ```

use super::{FormatError, Result};

/// Byte offset of each superblock slot.
pub const SUPER_SLOT_OFFSETS: [u64; 2] = [0, 4096];
/// Bytes before the first block any region may use.
pub const SUPER_AREA_BYTES: u64 = 8192;
/// Block sizes a filesystem may have.
pub const BLOCK_SIZES: [u32; 3] = [1024, 2048, 4096];
/// The default block size of `mkfs.vexfs`.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;
/// The smallest device `mkfs.vexfs` formats.
pub const MIN_DEVICE_BYTES: u64 = 8 << 20;
/// The smallest log; a commit larger than the log is split by the module.
pub const MIN_LOG_BYTES: u64 = 2 << 20;
/// The largest log `mkfs.vexfs` makes: replaying it is part of a mount
/// after a crash, so it stays a few seconds of disk bandwidth.
pub const MAX_LOG_BYTES: u64 = 256 << 20;
/// The inode number of the root directory.
pub const ROOT_INO: u64 = 1;

/// `bytes / bs` (0 for a zero `bs`, which checks refuse first): no
/// division that could panic, in code the kernel compiles too.
fn per_block(bytes: u64, bs: u64) -> u64 {
    bytes.checked_div(bs).unwrap_or(0)
}

/// Whether `bs` is a block size a filesystem may have.
pub fn valid_block_size(bs: u32) -> bool {
    BLOCK_SIZES.contains(&bs)
}

/// The regions of a device, in blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per block.
    pub block_size: u32,
    /// Blocks on the device that the filesystem uses.
    pub block_count: u64,
    /// First block of the log.
    pub log_start: u64,
    /// Blocks in the log.
    pub log_blocks: u64,
    /// First block of each checkpoint area.
    pub area_start: [u64; 2],
    /// Blocks in each checkpoint area.
    pub area_blocks: u64,
}

impl Layout {
    /// The layout `mkfs.vexfs` gives a device of `device_bytes`: a log of
    /// an eighth of it (2 to 256 MiB), the rest split into the two areas.
    pub fn for_device(device_bytes: u64, block_size: u32) -> Result<Self> {
        if !valid_block_size(block_size) {
            return Err(FormatError::BadBlockSize(block_size));
        }
        if device_bytes < MIN_DEVICE_BYTES {
            return Err(FormatError::BadGeometry("device smaller than 8 MiB"));
        }
        let bs = u64::from(block_size);
        let block_count = per_block(device_bytes, bs);
        let log_bytes = (device_bytes / 8).clamp(MIN_LOG_BYTES, MAX_LOG_BYTES);
        let log_start = per_block(SUPER_AREA_BYTES, bs);
        let log_blocks = per_block(log_bytes, bs);
        let first_area = log_start + log_blocks;
        let area_blocks = (block_count - first_area) / 2;
        let layout = Self {
            block_size,
            block_count,
            log_start,
            log_blocks,
            area_start: [first_area, first_area + area_blocks],
            area_blocks,
        };
        layout.check()?;
        Ok(layout)
    }

    /// Checks that the regions are in order, apart and on the device.
    pub fn check(&self) -> Result<()> {
        if !valid_block_size(self.block_size) {
            return Err(FormatError::BadBlockSize(self.block_size));
        }
        let bs = u64::from(self.block_size);
        if self.log_start != per_block(SUPER_AREA_BYTES, bs) {
            return Err(FormatError::BadGeometry(
                "log does not follow the superblocks",
            ));
        }
        if self.log_blocks < per_block(MIN_LOG_BYTES, bs)
            || self.log_blocks > per_block(MAX_LOG_BYTES, bs)
        {
            return Err(FormatError::BadGeometry("log size out of range"));
        }
        if self.area_blocks < 2 {
            return Err(FormatError::BadGeometry("checkpoint area too small"));
        }
        let log_end = self.log_start + self.log_blocks;
        if self.area_start[0] != log_end {
            return Err(FormatError::BadGeometry("area 0 does not follow the log"));
        }
        let end0 = self.area_start[0].checked_add(self.area_blocks);
        if end0 != Some(self.area_start[1]) {
            return Err(FormatError::BadGeometry("area 1 does not follow area 0"));
        }
        match self.area_start[1].checked_add(self.area_blocks) {
            Some(end) if end <= self.block_count => {}
            _ => return Err(FormatError::BadGeometry("area 1 runs past the device")),
        }
        match self.block_count.checked_mul(bs) {
            Some(bytes) if bytes >= MIN_DEVICE_BYTES => Ok(()),
            _ => Err(FormatError::BadGeometry("block count out of range")),
        }
    }

    /// The byte offset of block `block`.
    pub fn offset(&self, block: u64) -> u64 {
        block * u64::from(self.block_size)
    }

    /// Bytes a checkpoint may hold: what one area holds.
    pub fn area_bytes(&self) -> u64 {
        self.area_blocks * u64::from(self.block_size)
    }

    /// Bytes the log holds.
    pub fn log_bytes(&self) -> u64 {
        self.log_blocks * u64::from(self.block_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for bs in BLOCK_SIZES {
            for mib in [8u64, 9, 64, 1024, 100 * 1024] {
                let l = Layout::for_device(mib << 20, bs).unwrap();
                l.check().unwrap();
                assert!(l.area_start[1] + l.area_blocks <= l.block_count);
                assert!(l.block_count - (l.area_start[1] + l.area_blocks) <= 1);
            }
        }
        assert!(Layout::for_device((8 << 20) - 1, 4096).is_err());
        assert!(Layout::for_device(1 << 30, 512).is_err());
        let g = Layout::for_device(1 << 30, 4096).unwrap();
        assert_eq!(g.log_bytes(), 128 << 20);
        assert_eq!(g.log_start, 2);
    }
}
