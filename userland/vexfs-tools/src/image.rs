//! Reading and writing the regions of an image: superblock slots,
//! checkpoints and the log.

use anyhow::Result;
use vexfs_format::{
    check_padding, damaged_header, decode_header_block, decode_slot, pick_super, FormatError,
    FrameHeader, FrameKind, Layout, SuperBlock, FRAME_LAST, SUPER_SLOT_BYTES, SUPER_SLOT_OFFSETS,
};

use crate::device::Device;

/// Both superblock slots, decoded or refused.
pub fn read_slots(dev: &Device) -> Result<[Result<SuperBlock, FormatError>; 2]> {
    let mut out = [Err(FormatError::ShortBuffer), Err(FormatError::ShortBuffer)];
    for (slot, &off) in SUPER_SLOT_OFFSETS.iter().enumerate() {
        if off + SUPER_SLOT_BYTES as u64 > dev.size() {
            out[slot] = Err(FormatError::Truncated);
            continue;
        }
        let mut buf = [0u8; SUPER_SLOT_BYTES];
        dev.read_at(off, &mut buf)?;
        out[slot] = decode_slot(&buf);
    }
    Ok(out)
}

/// The superblock to use and its slot, or why there is none.
pub fn current_super(dev: &Device) -> Result<Result<(usize, SuperBlock), FormatError>> {
    let slots = read_slots(dev)?;
    Ok(pick_super(slots).and_then(|(i, sb)| sb.check_device(dev.size()).map(|_| (i, sb))))
}

/// A frame read from the device.
enum FrameRead {
    /// Header and payload check out.
    Good(FrameHeader, Vec<u8>),
    /// No valid header block here; the block is returned.
    NoHeader(FormatError, Vec<u8>),
    /// A valid header whose payload does not check out.
    BadPayload(FrameHeader, FormatError),
}

/// Reads the frame at `block`, which must end before block `end`. In the
/// log (`log`), only a header block's header counts: the rest of the block
/// may be torn (the header is written with FUA after the payload, but a
/// device writes sectors).
fn read_frame(dev: &Device, layout: &Layout, block: u64, end: u64, log: bool) -> Result<FrameRead> {
    let bs = layout.block_size as usize;
    let mut first = vec![0u8; bs];
    dev.read_at(layout.offset(block), &mut first)?;
    let decoded = if log {
        FrameHeader::decode(&first, layout.block_size)
    } else {
        decode_header_block(&first, layout.block_size)
    };
    let h = match decoded {
        Ok(h) => h,
        Err(e) => return Ok(FrameRead::NoHeader(e, first)),
    };
    if block + h.blocks as u64 > end {
        return Ok(FrameRead::BadPayload(
            h,
            FormatError::BadGeometry("frame runs past its region"),
        ));
    }
    let mut buf = vec![0u8; (h.blocks as usize - 1) * bs];
    dev.read_at(layout.offset(block + 1), &mut buf)?;
    let (payload, tail) = buf.split_at(h.payload_len as usize);
    if let Err(e) = h.check_payload(payload).and_then(|_| check_padding(tail)) {
        return Ok(FrameRead::BadPayload(h, e));
    }
    buf.truncate(h.payload_len as usize);
    Ok(FrameRead::Good(h, buf))
}

/// Where a checkpoint failed to read.
#[derive(Debug)]
pub struct FrameFault {
    /// The frame's sequence number.
    pub seq: u64,
    /// Its first block.
    pub block: u64,
    /// What is wrong.
    pub error: FormatError,
}

/// The payloads of the checkpoint `sb` names.
pub fn read_checkpoint(dev: &Device, sb: &SuperBlock) -> Result<Result<Vec<Vec<u8>>, FrameFault>> {
    let start = sb.ckpt_start();
    let end = start + sb.ckpt_blocks;
    let mut block = start;
    let mut out = Vec::new();
    loop {
        let seq = out.len() as u64;
        let here = block;
        let fault = |error| {
            Ok(Err(FrameFault {
                seq,
                block: here,
                error,
            }))
        };
        let (h, payload) = match read_frame(dev, &sb.layout, block, end, false)? {
            FrameRead::Good(h, p) => (h, p),
            FrameRead::NoHeader(error, _) | FrameRead::BadPayload(_, error) => return fault(error),
        };
        if let Err(error) = h.expect(FrameKind::Checkpoint, sb.ckpt_nonce, seq) {
            return fault(error);
        }
        out.push(payload);
        block += h.blocks as u64;
        if h.flags & FRAME_LAST != 0 {
            if block != end {
                return fault(FormatError::BadGeometry(
                    "checkpoint shorter than the superblock says",
                ));
            }
            return Ok(Ok(out));
        }
    }
}

/// How the log ended.
#[derive(Debug, PartialEq)]
pub enum LogEnd {
    /// At a block that is no frame of this log: the normal end (after a
    /// clean unmount, or a crash before the next commit's header block).
    Clean,
    /// At the region's end.
    Full,
    /// At a damaged frame of this log: not what a crash leaves (a header
    /// is written after its payload is durable) but corruption, which
    /// loses this commit and any after it.
    Corrupt {
        /// The damaged frame's sequence number.
        seq: u64,
        /// Its first block.
        block: u64,
        /// What is wrong with it.
        error: FormatError,
    },
}

/// The log after the checkpoint of `sb`: its committed payloads, in order,
/// how it ended, and the block after the last commit.
pub fn scan_log(dev: &Device, sb: &SuperBlock) -> Result<(Vec<Vec<u8>>, LogEnd, u64)> {
    let layout = &sb.layout;
    let end = layout.log_start + layout.log_blocks;
    let mut block = layout.log_start;
    let mut out = Vec::new();
    loop {
        if block >= end {
            return Ok((out, LogEnd::Full, block));
        }
        let seq = out.len() as u64;
        let corrupt = |error| LogEnd::Corrupt { seq, block, error };
        let how = match read_frame(dev, layout, block, end, true)? {
            FrameRead::Good(h, payload)
                if h.kind == FrameKind::Commit && h.nonce == sb.log_nonce =>
            {
                if h.seq != seq {
                    corrupt(FormatError::FrameMismatch)
                } else {
                    block += h.blocks as u64;
                    out.push(payload);
                    continue;
                }
            }
            FrameRead::Good(..) => LogEnd::Clean,
            FrameRead::BadPayload(h, error) if h.nonce == sb.log_nonce => corrupt(error),
            FrameRead::BadPayload(..) => LogEnd::Clean,
            FrameRead::NoHeader(error, first) if damaged_header(&first, sb.log_nonce) => {
                corrupt(error)
            }
            FrameRead::NoHeader(error, _) => {
                // Damage of more than one bit to a header in the middle
                // of the log: later commits give it away.
                if later_frame(dev, sb, block + 1, seq)? {
                    corrupt(error)
                } else {
                    LogEnd::Clean
                }
            }
        };
        return Ok((out, how, block));
    }
}

/// Whether any block from `from` to the log's end starts a frame of this
/// log with a sequence number after `seq`.
fn later_frame(dev: &Device, sb: &SuperBlock, from: u64, seq: u64) -> Result<bool> {
    let layout = &sb.layout;
    let bs = layout.block_size as usize;
    let end = layout.log_start + layout.log_blocks;
    let chunk_blocks = (1 << 20) / bs as u64;
    let mut block = from;
    let mut buf = vec![0u8; chunk_blocks as usize * bs];
    while block < end {
        let n = chunk_blocks.min(end - block);
        let buf = &mut buf[..n as usize * bs];
        dev.read_at(layout.offset(block), buf)?;
        for b in buf.chunks_exact(bs) {
            if let Ok(h) = FrameHeader::decode(b, layout.block_size) {
                if h.kind == FrameKind::Commit && h.nonce == sb.log_nonce && h.seq > seq {
                    return Ok(true);
                }
            }
        }
        block += n;
    }
    Ok(false)
}

/// Writes `payloads` as the checkpoint frames at `start`; returns the
/// blocks written.
pub fn write_checkpoint(
    dev: &Device,
    layout: &Layout,
    start: u64,
    nonce: u64,
    payloads: &[Vec<u8>],
) -> Result<u64> {
    let bs = layout.block_size as usize;
    let mut block = start;
    for (seq, payload) in payloads.iter().enumerate() {
        let last = seq + 1 == payloads.len();
        let flags = if last { FRAME_LAST } else { 0 };
        let h = FrameHeader::new(
            FrameKind::Checkpoint,
            flags,
            nonce,
            seq as u64,
            payload,
            layout.block_size,
        );
        let mut buf = vec![0u8; h.blocks as usize * bs];
        h.encode(&mut buf);
        buf[bs..bs + payload.len()].copy_from_slice(payload);
        dev.write_at(layout.offset(block), &buf)?;
        block += h.blocks as u64;
    }
    Ok(block - start)
}

/// Writes superblock slot `slot`.
pub fn write_slot(dev: &Device, slot: usize, sb: &SuperBlock) -> Result<()> {
    let mut buf = vec![0u8; SUPER_SLOT_BYTES];
    sb.encode(&mut buf);
    dev.write_at(SUPER_SLOT_OFFSETS[slot], &buf)
}

/// Appends commit `seq` of the log of `sb` at `block`, as the module
/// does: the payload blocks, a sync, then the header block. Returns the
/// block after it.
pub fn append_commit(
    dev: &Device,
    sb: &SuperBlock,
    block: u64,
    seq: u64,
    payload: &[u8],
) -> Result<u64> {
    let layout = &sb.layout;
    let bs = layout.block_size as usize;
    let h = FrameHeader::new(
        FrameKind::Commit,
        0,
        sb.log_nonce,
        seq,
        payload,
        layout.block_size,
    );
    if block + h.blocks as u64 > layout.log_start + layout.log_blocks {
        anyhow::bail!("the log is full");
    }
    let mut body = vec![0u8; (h.blocks as usize - 1) * bs];
    body[..payload.len()].copy_from_slice(payload);
    dev.write_at(layout.offset(block + 1), &body)?;
    dev.sync()?;
    let mut head = vec![0u8; bs];
    h.encode(&mut head);
    dev.write_at(layout.offset(block), &head)?;
    dev.sync()?;
    Ok(block + h.blocks as u64)
}
