// SPDX-License-Identifier: GPL-2.0

//! Frames: the unit both the log and a checkpoint are written in.
//!
//! A frame is a header block (a 64-byte header, then zeros) followed by
//! its payload (a sequence of records) in whole blocks, zero-padded. The
//! header's checksum covers the header, and the payload's checksum (in
//! the header) covers the payload. A log commit is one frame: its payload
//! blocks are written first, then, after a cache flush, the header block
//! with FUA. So a crash leaves either the whole commit or no header for
//! it, and a header whose payload does not match is damage, not a crash.

use super::{crc32c, crc32c_skipping, FormatError, Le, LeMut, Result};

/// The magic number at byte 0 of every frame.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"VXFR");
/// Bytes of a frame header.
pub const FRAME_HEADER_SIZE: usize = 64;
const CRC_AT: usize = 60;

/// The kinds of frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum FrameKind {
    /// One committed transaction in the log.
    Commit = 1,
    /// A piece of a checkpoint.
    Checkpoint = 2,
}

/// Flag of the last frame of a checkpoint.
pub const FRAME_LAST: u16 = 1;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Commit or checkpoint piece.
    pub kind: FrameKind,
    /// [`FRAME_LAST`] or 0.
    pub flags: u16,
    /// The log's or the checkpoint's nonce (see the superblock).
    pub nonce: u64,
    /// Position in its sequence: 0, 1, 2, … from the checkpoint or from
    /// the log's start.
    pub seq: u64,
    /// Blocks the frame occupies, header block included.
    pub blocks: u32,
    /// Payload bytes after the header.
    pub payload_len: u64,
    /// CRC-32C of the payload.
    pub payload_crc: u32,
}

impl FrameHeader {
    /// A header for `payload`, with its size in blocks of `block_size`.
    pub fn new(
        kind: FrameKind,
        flags: u16,
        nonce: u64,
        seq: u64,
        payload: &[u8],
        block_size: u32,
    ) -> Self {
        Self {
            kind,
            flags,
            nonce,
            seq,
            blocks: frame_blocks(payload.len() as u64, block_size) as u32,
            payload_len: payload.len() as u64,
            payload_crc: crc32c(payload),
        }
    }

    /// Decodes and checks a header (not the payload: see
    /// [`FrameHeader::check_payload`]).
    pub fn decode(buf: &[u8], block_size: u32) -> Result<Self> {
        let buf = buf
            .get(..FRAME_HEADER_SIZE)
            .ok_or(FormatError::ShortBuffer)?;
        let le = Le(buf);
        if le.u32(0)? != FRAME_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if le.u32(CRC_AT)? != crc32c_skipping(buf, CRC_AT) {
            return Err(FormatError::BadChecksum);
        }
        let kind = match le.u16(4)? {
            1 => FrameKind::Commit,
            2 => FrameKind::Checkpoint,
            _ => return Err(FormatError::BadValue("unknown frame kind")),
        };
        let flags = le.u16(6)?;
        if flags & !FRAME_LAST != 0 || (flags != 0 && kind != FrameKind::Checkpoint) {
            return Err(FormatError::BadValue("unknown frame flags"));
        }
        if le.u32(28)? != 0 || buf[44..CRC_AT].iter().any(|&b| b != 0) {
            return Err(FormatError::NonZeroReserved);
        }
        let h = Self {
            kind,
            flags,
            nonce: le.u64(8)?,
            seq: le.u64(16)?,
            blocks: le.u32(24)?,
            payload_len: le.u64(32)?,
            payload_crc: le.u32(40)?,
        };
        if h.payload_len > MAX_FRAME_PAYLOAD
            || u64::from(h.blocks) != frame_blocks(h.payload_len, block_size)
        {
            return Err(FormatError::BadValue("frame length out of range"));
        }
        Ok(h)
    }

    /// Encodes into the first [`FRAME_HEADER_SIZE`] bytes of `buf`.
    pub fn encode(&self, buf: &mut [u8]) {
        let buf = &mut buf[..FRAME_HEADER_SIZE];
        buf.fill(0);
        let mut le = LeMut(buf);
        le.u32(0, FRAME_MAGIC);
        le.u16(4, self.kind as u16);
        le.u16(6, self.flags);
        le.u64(8, self.nonce);
        le.u64(16, self.seq);
        le.u32(24, self.blocks);
        le.u64(32, self.payload_len);
        le.u32(40, self.payload_crc);
        let crc = crc32c_skipping(le.0, CRC_AT);
        le.u32(CRC_AT, crc);
    }

    /// Checks that this is the frame expected next in a sequence.
    pub fn expect(&self, kind: FrameKind, nonce: u64, seq: u64) -> Result<()> {
        if self.kind != kind || self.nonce != nonce || self.seq != seq {
            return Err(FormatError::FrameMismatch);
        }
        Ok(())
    }

    /// Checks the payload against the header's length and checksum.
    pub fn check_payload(&self, payload: &[u8]) -> Result<()> {
        if payload.len() as u64 != self.payload_len {
            return Err(FormatError::ShortBuffer);
        }
        if crc32c(payload) != self.payload_crc {
            return Err(FormatError::BadChecksum);
        }
        Ok(())
    }
}

/// The largest payload of one frame: 64 MiB. A writer splits what is
/// larger; a reader never needs more than this in one buffer.
pub const MAX_FRAME_PAYLOAD: u64 = 64 << 20;

/// Blocks of a frame with `payload_len` payload bytes: the header block
/// and the payload's.
pub fn frame_blocks(payload_len: u64, block_size: u32) -> u64 {
    // No division that could panic (the kernel compiles this too): a zero
    // block size, which decoders refuse first, gives 1.
    let bs = u64::from(block_size);
    1 + payload_len
        .checked_div(bs)
        .map_or(0, |full| full + u64::from(payload_len % bs.max(1) != 0))
}

/// Decodes the header block of a frame: the header, and zeros after it.
pub fn decode_header_block(block: &[u8], block_size: u32) -> Result<FrameHeader> {
    let h = FrameHeader::decode(block, block_size)?;
    if block[FRAME_HEADER_SIZE..].iter().any(|&b| b != 0) {
        return Err(FormatError::NonZeroReserved);
    }
    Ok(h)
}

/// Whether `block`, which is not a valid frame header, is one of the log
/// with `nonce` that has been damaged: its magic and nonce together are at
/// most one bit away from a header of that log. Nothing else is: a block
/// never written by this log lacks its nonce (a random secret, so file
/// data cannot carry it either).
pub fn damaged_header(block: &[u8], nonce: u64) -> bool {
    let le = super::Le(block);
    match (le.u32(0), le.u64(8)) {
        (Ok(magic), Ok(n)) => (magic ^ FRAME_MAGIC).count_ones() + (n ^ nonce).count_ones() <= 1,
        _ => false,
    }
}

/// Checks that the bytes after a payload in its last block are zero.
pub fn check_padding(tail: &[u8]) -> Result<()> {
    if tail.iter().any(|&b| b != 0) {
        return Err(FormatError::NonZeroReserved);
    }
    Ok(())
}
