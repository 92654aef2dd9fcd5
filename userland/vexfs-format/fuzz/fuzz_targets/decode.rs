// SPDX-License-Identifier: GPL-2.0

//! Every decoder of the on-disk format on arbitrary bytes: none may panic,
//! and whatever decodes must encode back to the bytes it came from.
//!
//! Random bytes almost never get past a magic number and a checksum, or
//! give a record the length its body has: so each input is also decoded
//! as the rest of a superblock slot and of a frame header block after
//! their magic (zero-padded, checksum set), and as the type and body of a
//! record whose length is set.
//!
//! Run from `userland/vexfs-format`:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vexfs_format::{
    check_padding, crc32c_skipping, damaged_header, decode_header_block, decode_slot, frame_blocks,
    pick_super, FormatError, FrameHeader, Record, Records, SuperBlock, BLOCK_SIZES,
    FRAME_HEADER_SIZE, FRAME_MAGIC, MAX_FRAME_PAYLOAD, SUPER_MAGIC, SUPER_SIZE, SUPER_SLOT_BYTES,
};

/// A structure of `len` bytes (`magic`, then `data`, then zeros, with its
/// checksum in its last 4 bytes set) at the start of `size` bytes.
fn forged(magic: &[u8], data: &[u8], len: usize, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size.max(magic.len() + data.len())];
    v[..magic.len()].copy_from_slice(magic);
    v[magic.len()..magic.len() + data.len()].copy_from_slice(data);
    let crc = crc32c_skipping(&v[..len], len - 4);
    v[len - 4..len].copy_from_slice(&crc.to_le_bytes());
    v
}

fn superblock(data: &[u8]) {
    if let Ok(sb) = SuperBlock::decode(data) {
        let mut again = [0u8; SUPER_SIZE];
        sb.encode(&mut again);
        assert_eq!(
            &again[..],
            &data[..SUPER_SIZE],
            "superblock re-encodes differently"
        );
        assert_eq!(SuperBlock::decode(&again).as_ref(), Ok(&sb));
        let _ = sb.check_device(u64::MAX);
        let _ = sb.label_bytes();
        assert!(sb.next_slot() < 2);
    }
    if let Ok(sb) = decode_slot(data) {
        assert!(data[SUPER_SIZE..SUPER_SLOT_BYTES].iter().all(|&b| b == 0));
        assert_eq!(SuperBlock::decode(data), Ok(sb));
    }
}

fn frame_header(data: &[u8], bs: u32) {
    if let Ok(h) = FrameHeader::decode(data, bs) {
        let mut again = [0u8; FRAME_HEADER_SIZE];
        h.encode(&mut again);
        assert_eq!(
            &again[..],
            &data[..FRAME_HEADER_SIZE],
            "frame header re-encodes differently"
        );
        assert!(h.payload_len <= MAX_FRAME_PAYLOAD);
        assert_eq!(h.blocks as u64, frame_blocks(h.payload_len, bs));
        // A valid header is no bit away from a header of its own log.
        assert!(damaged_header(data, h.nonce));
        let _ = h.check_payload(&data[FRAME_HEADER_SIZE..]);
    }
    if let Ok(h) = decode_header_block(data, bs) {
        assert!(data[FRAME_HEADER_SIZE..].iter().all(|&b| b == 0));
        assert_eq!(FrameHeader::decode(data, bs), Ok(h));
    }
}

fn records(data: &[u8]) {
    let mut at = 0;
    let mut failed = false;
    for rec in Records::new(data) {
        assert!(!failed, "a record after an error");
        let rec = match rec {
            Ok(rec) => rec,
            Err(_) => {
                failed = true;
                continue;
            }
        };
        let len = rec.encoded_len();
        let from = &data[at..at + len];
        let mut again = vec![0u8; len];
        assert_eq!(rec.encode(&mut again), len);
        assert_eq!(again, from, "record {rec:?} re-encodes differently");
        assert_eq!(Record::decode(&again), Ok((rec, len)));
        at += len;
    }
    assert!(
        failed || at == data.len(),
        "records stop before the payload ends"
    );
}

fuzz_target!(|data: &[u8]| {
    superblock(data);
    let head = &data[..data.len().min(SUPER_SLOT_BYTES - SUPER_MAGIC.len())];
    superblock(&forged(&SUPER_MAGIC, head, SUPER_SIZE, SUPER_SLOT_BYTES));
    let slot = |i: usize| {
        let off = i * SUPER_SLOT_BYTES;
        data.get(off..off + SUPER_SLOT_BYTES)
            .map_or(Err(FormatError::ShortBuffer), decode_slot)
    };
    let _ = pick_super([slot(0), slot(1)]);

    let magic = FRAME_MAGIC.to_le_bytes();
    for bs in BLOCK_SIZES {
        frame_header(data, bs);
        let head = &data[..data.len().min(bs as usize - magic.len())];
        frame_header(&forged(&magic, head, FRAME_HEADER_SIZE, bs as usize), bs);
        // The header block and payload blocks of a frame, as a reader
        // meets them.
        let block = &data[..data.len().min(bs as usize)];
        if let Ok(h) = decode_header_block(block, bs) {
            let rest = &data[block.len()..];
            let payload = &rest[..rest.len().min(h.payload_len as usize)];
            if h.check_payload(payload).is_ok() {
                let _ = check_padding(&rest[payload.len()..]);
                records(payload);
            }
        }
    }
    for nonce in [0, u64::MAX] {
        let _ = damaged_header(data, nonce);
    }
    // With the block's own nonce, one bit may be off in the magic; with
    // a nonce one bit off, none.
    if let (Some(m), Some(n)) = (data.get(..4), data.get(8..16)) {
        let magic = u32::from_le_bytes(m.try_into().unwrap());
        let own = u64::from_le_bytes(n.try_into().unwrap());
        assert_eq!(
            damaged_header(data, own),
            (magic ^ FRAME_MAGIC).count_ones() <= 1
        );
        assert_eq!(damaged_header(data, own ^ 1 << 63), magic == FRAME_MAGIC);
    } else {
        assert!(!damaged_header(data, 0));
    }

    records(data);
    if let Some((ty, body)) = data.split_first_chunk::<2>() {
        let mut rec = ty.to_vec();
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
        rec.extend_from_slice(body);
        records(&rec);
    }
});
