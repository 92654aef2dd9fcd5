// SPDX-License-Identifier: GPL-2.0

//! The superblock: two slots, the newer valid one names the checkpoint and
//! the log epoch. A checkpoint is made durable before the slot that names
//! it is written (with FUA), and the slots are written alternately, so one
//! always holds a complete, earlier state.

use super::{crc32c_skipping, FormatError, Layout, Le, LeMut, Result, ROOT_INO};

/// The magic number at byte 0 of each slot.
pub const SUPER_MAGIC: [u8; 8] = *b"VEXFSDSK";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of a superblock slot that hold the structure.
pub const SUPER_SIZE: usize = 512;
/// Offset of the checksum: the last 4 bytes.
const CRC_AT: usize = SUPER_SIZE - 4;
/// Bytes of a label, NUL-padded.
pub const LABEL_LEN: usize = 32;
/// Incompatible features this code understands (none yet).
pub const INCOMPAT_SUPPORTED: u32 = 0;
/// Read-only-compatible features this code understands (none yet).
pub const RO_COMPAT_SUPPORTED: u32 = 0;

/// Whether the filesystem was unmounted cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsState {
    /// Unmounted: the log is empty, the checkpoint is everything.
    Clean,
    /// Mounted (or crashed while mounted): the log is replayed at mount.
    Mounted,
}

/// The decoded superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperBlock {
    /// Where the regions are.
    pub layout: Layout,
    /// Compatible features (ignored if unknown).
    pub compat: u32,
    /// Incompatible features (a mount refuses unknown ones).
    pub incompat: u32,
    /// Read-only-compatible features (a read-write mount refuses unknown
    /// ones).
    pub ro_compat: u32,
    /// Clean or mounted.
    pub state: FsState,
    /// The filesystem's UUID.
    pub uuid: [u8; 16],
    /// The label, NUL-padded.
    pub label: [u8; LABEL_LEN],
    /// Incremented by every superblock write; the larger valid slot wins.
    pub generation: u64,
    /// The area holding the current checkpoint.
    pub ckpt_area: u32,
    /// Blocks the current checkpoint occupies from its area's start.
    pub ckpt_blocks: u64,
    /// The checkpoint's frames carry this nonce.
    pub ckpt_nonce: u64,
    /// Checkpoints written since mkfs (mkfs's own is 0).
    pub ckpt_seq: u64,
    /// Log frames after this checkpoint carry this nonce; a frame with any
    /// other is not part of the log (a random value per checkpoint, so a
    /// stale frame, or file data shaped like a frame, is never replayed).
    pub log_nonce: u64,
    /// The next inode number to hand out, as of the checkpoint.
    pub next_ino: u64,
    /// Seconds since the epoch of mkfs.
    pub mkfs_time: i64,
    /// Seconds since the epoch of this superblock write.
    pub write_time: i64,
    /// Inodes in the checkpoint.
    pub inodes: u64,
    /// Bytes of file data in the checkpoint.
    pub data_bytes: u64,
}

impl SuperBlock {
    /// Decodes and checks a slot's first [`SUPER_SIZE`] bytes.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let buf = buf.get(..SUPER_SIZE).ok_or(FormatError::ShortBuffer)?;
        let le = Le(buf);
        if le.array::<8>(0)? != SUPER_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if le.u32(CRC_AT)? != crc32c_skipping(buf, CRC_AT) {
            return Err(FormatError::BadChecksum);
        }
        let version = le.u32(8)?;
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let incompat = le.u32(20)?;
        if incompat & !INCOMPAT_SUPPORTED != 0 {
            return Err(FormatError::UnsupportedFeatures(
                incompat & !INCOMPAT_SUPPORTED,
            ));
        }
        let state = match le.u32(28)? {
            0 => FsState::Clean,
            1 => FsState::Mounted,
            _ => return Err(FormatError::BadValue("bad filesystem state")),
        };
        if buf[140..144]
            .iter()
            .chain(&buf[216..CRC_AT])
            .any(|&b| b != 0)
        {
            return Err(FormatError::NonZeroReserved);
        }
        let layout = Layout {
            block_size: le.u32(12)?,
            block_count: le.u64(32)?,
            log_start: le.u64(96)?,
            log_blocks: le.u64(104)?,
            area_start: [le.u64(112)?, le.u64(120)?],
            area_blocks: le.u64(128)?,
        };
        layout.check()?;
        let label = le.array::<LABEL_LEN>(56)?;
        if let Some(nul) = label.iter().position(|&b| b == 0) {
            if label[nul..].iter().any(|&b| b != 0) {
                return Err(FormatError::BadValue("label not NUL-padded"));
            }
        }
        let sb = Self {
            layout,
            compat: le.u32(16)?,
            incompat,
            ro_compat: le.u32(24)?,
            state,
            uuid: le.array(40)?,
            label,
            generation: le.u64(88)?,
            ckpt_area: le.u32(136)?,
            ckpt_blocks: le.u64(144)?,
            ckpt_nonce: le.u64(152)?,
            ckpt_seq: le.u64(160)?,
            log_nonce: le.u64(168)?,
            next_ino: le.u64(176)?,
            mkfs_time: le.i64(184)?,
            write_time: le.i64(192)?,
            inodes: le.u64(200)?,
            data_bytes: le.u64(208)?,
        };
        if sb.ckpt_area > 1 {
            return Err(FormatError::BadGeometry(
                "checkpoint area is neither 0 nor 1",
            ));
        }
        if sb.ckpt_blocks == 0 || sb.ckpt_blocks > layout.area_blocks {
            return Err(FormatError::BadGeometry("checkpoint size out of its area"));
        }
        if sb.next_ino <= ROOT_INO || sb.inodes == 0 || sb.inodes >= sb.next_ino {
            return Err(FormatError::BadValue("inode counters out of range"));
        }
        if sb.ckpt_nonce == sb.log_nonce {
            return Err(FormatError::BadValue("log nonce equals checkpoint nonce"));
        }
        Ok(sb)
    }

    /// Encodes into a slot's first [`SUPER_SIZE`] bytes, checksum included.
    pub fn encode(&self, buf: &mut [u8]) {
        let buf = &mut buf[..SUPER_SIZE];
        buf.fill(0);
        let mut le = LeMut(buf);
        le.put(0, &SUPER_MAGIC);
        le.u32(8, FORMAT_VERSION);
        le.u32(12, self.layout.block_size);
        le.u32(16, self.compat);
        le.u32(20, self.incompat);
        le.u32(24, self.ro_compat);
        le.u32(28, u32::from(matches!(self.state, FsState::Mounted)));
        le.u64(32, self.layout.block_count);
        le.put(40, &self.uuid);
        le.put(56, &self.label);
        le.u64(88, self.generation);
        le.u64(96, self.layout.log_start);
        le.u64(104, self.layout.log_blocks);
        le.u64(112, self.layout.area_start[0]);
        le.u64(120, self.layout.area_start[1]);
        le.u64(128, self.layout.area_blocks);
        le.u32(136, self.ckpt_area);
        le.u64(144, self.ckpt_blocks);
        le.u64(152, self.ckpt_nonce);
        le.u64(160, self.ckpt_seq);
        le.u64(168, self.log_nonce);
        le.u64(176, self.next_ino);
        le.i64(184, self.mkfs_time);
        le.i64(192, self.write_time);
        le.u64(200, self.inodes);
        le.u64(208, self.data_bytes);
        let crc = crc32c_skipping(le.0, CRC_AT);
        le.u32(CRC_AT, crc);
    }

    /// The slot the next superblock write goes to: the other one than
    /// this generation's, so a torn write leaves this one intact.
    pub fn next_slot(&self) -> usize {
        (self.generation as usize + 1) % 2
    }

    /// The label up to its first NUL.
    pub fn label_bytes(&self) -> &[u8] {
        let end = self.label.iter().position(|&b| b == 0).unwrap_or(LABEL_LEN);
        &self.label[..end]
    }

    /// The first block of the current checkpoint.
    pub fn ckpt_start(&self) -> u64 {
        self.layout.area_start[self.ckpt_area as usize]
    }

    /// Checks that a device of `device_bytes` holds the whole layout.
    pub fn check_device(&self, device_bytes: u64) -> Result<()> {
        let need = self
            .layout
            .block_count
            .checked_mul(u64::from(self.layout.block_size));
        match need {
            Some(need) if need <= device_bytes => Ok(()),
            _ => Err(FormatError::Truncated),
        }
    }
}

/// Bytes of each superblock slot: the structure, then zeros.
pub const SUPER_SLOT_BYTES: usize = 4096;

/// Decodes a whole slot ([`SUPER_SLOT_BYTES`]): the superblock, and zeros
/// after it.
pub fn decode_slot(slot: &[u8]) -> Result<SuperBlock> {
    let sb = SuperBlock::decode(slot)?;
    let pad = slot
        .get(SUPER_SIZE..SUPER_SLOT_BYTES)
        .ok_or(FormatError::ShortBuffer)?;
    if pad.iter().any(|&b| b != 0) {
        return Err(FormatError::NonZeroReserved);
    }
    Ok(sb)
}

/// Of the two slots' decodings, the one to mount: the valid one with the
/// larger generation. The slot index comes with it.
pub fn pick_super(slots: [Result<SuperBlock>; 2]) -> Result<(usize, SuperBlock)> {
    let [a, b] = slots;
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(if b.generation > a.generation {
            (1, b)
        } else {
            (0, a)
        }),
        (Ok(a), Err(_)) => Ok((0, a)),
        (Err(_), Ok(b)) => Ok((1, b)),
        // Report slot 0's reason: a foreign image has no magic there.
        (Err(e), Err(_)) => Err(e),
    }
}
