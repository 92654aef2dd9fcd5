//! Property tests: every structure decodes to what was encoded, and no
//! byte string makes a decoder panic.

use proptest::prelude::*;
use vexfs_format::*;

fn time() -> impl Strategy<Value = Time> {
    (any::<i64>(), 0u32..1_000_000_000).prop_map(|(sec, nsec)| Time { sec, nsec })
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 1..=NAME_MAX)
        .prop_map(|v| {
            v.into_iter()
                .map(|b| if b == b'/' { b'x' } else { b })
                .collect()
        })
        .prop_filter("not . or ..", |n: &Vec<u8>| n != b"." && n != b"..")
}

fn attrs() -> impl Strategy<Value = InodeAttrs> {
    let ty = prop::sample::select(vec![S_IFREG, S_IFDIR, S_IFLNK, 0o020000, 0o010000]);
    (
        1u64..,
        ty,
        0u32..0o7777,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        0..i64::MAX as u64,
    )
        .prop_flat_map(|(ino, ty, perm, uid, gid, nlink, rdev, size)| {
            (time(), time(), time()).prop_map(move |(atime, mtime, ctime)| InodeAttrs {
                ino,
                mode: ty | perm,
                uid,
                gid,
                nlink,
                rdev,
                size,
                atime,
                mtime,
                ctime,
            })
        })
}

fn roundtrip(rec: Record<'_>) {
    let mut buf = vec![0u8; rec.encoded_len()];
    assert_eq!(rec.encode(&mut buf), buf.len());
    let (back, used) = Record::decode(&buf).unwrap();
    assert_eq!(used, buf.len());
    assert_eq!(back, rec);
    // Every strict prefix is refused, not misread.
    for cut in [0, 1, 7, buf.len() / 2, buf.len() - 1] {
        assert!(Record::decode(&buf[..cut]).is_err());
    }
}

proptest! {
    #[test]
    fn inode(a in attrs()) {
        roundtrip(Record::Inode(a));
    }

    #[test]
    fn names(dir in 1u64.., ino in 1u64.., n in name()) {
        roundtrip(Record::Link { dir, ino, name: &n });
        roundtrip(Record::Unlink { dir, name: &n });
        roundtrip(Record::XattrRemove { ino, name: &n });
    }

    #[test]
    fn data(ino in 1u64.., offset in 0u64..1 << 40, bytes in prop::collection::vec(any::<u8>(), 1..3000)) {
        roundtrip(Record::Data { ino, offset, bytes: &bytes });
        let rec = Record::Data { ino, offset, bytes: &bytes };
        let mut whole = vec![0u8; rec.encoded_len()];
        rec.encode(&mut whole);
        prop_assert_eq!(&whole[..DATA_HEADER_SIZE], &data_record_header(ino, offset, bytes.len())[..]);
        roundtrip(Record::Xattr { ino, name: b"user.k", value: &bytes });
        roundtrip(Record::Graph { coll: ino, bytes: &bytes });
    }

    #[test]
    fn ranges(ino in 1u64.., offset in 0u64..1 << 40, len in 1u64..1 << 40) {
        roundtrip(Record::Zero { ino, offset, len });
        roundtrip(Record::Alloc { ino, offset, len });
        // A range past i64::MAX, or empty, is refused.
        for (o, l) in [(i64::MAX as u64, 1), (offset, 0)] {
            for rec in [Record::Zero { ino, offset: o, len: l }, Record::Alloc { ino, offset: o, len: l }] {
                let mut buf = vec![0u8; rec.encoded_len()];
                rec.encode(&mut buf);
                prop_assert!(Record::decode(&buf).is_err());
            }
        }
    }

    #[test]
    fn rows(coll in 1u64.., dim in 1u32..64, count in 0usize..20, file in any::<bool>()) {
        let ids: Vec<u8> = (0..count as u64).flat_map(|i| (i * 7).to_le_bytes()).collect();
        let vectors: Vec<u8> = (0..count * dim as usize).flat_map(|i| (i as f32).to_le_bytes()).collect();
        roundtrip(Record::Rows { coll, kind: if file { ROWS_FILE } else { 0 }, dim, ids: &ids, vectors: &vectors });
        roundtrip(Record::RowsDelete { coll, ids: &ids });
    }

    /// Every `quantize` round-trips (the module, not the format, checks
    /// the value); a dimension out of range is refused.
    #[test]
    fn collection(ino in 1u64.., dim in 1u32..=DIM_MAX, metric in any::<u32>(), index in any::<u32>(),
                  m in any::<u32>(), ef_construction in any::<u32>(), quantize in any::<u32>()) {
        roundtrip(Record::Collection { ino, dim, metric, index, m, ef_construction, quantize });
        for bad in [0, DIM_MAX + 1] {
            let rec = Record::Collection { ino, dim: bad, metric, index, m, ef_construction, quantize };
            let mut buf = vec![0u8; rec.encoded_len()];
            rec.encode(&mut buf);
            prop_assert!(Record::decode(&buf).is_err());
        }
    }

    #[test]
    fn frame(seq in any::<u64>(), nonce in any::<u64>(), payload in prop::collection::vec(any::<u8>(), 0..10_000), bs in prop::sample::select(BLOCK_SIZES.to_vec())) {
        let h = FrameHeader::new(FrameKind::Commit, 0, nonce, seq, &payload, bs);
        let mut buf = [0u8; FRAME_HEADER_SIZE];
        h.encode(&mut buf);
        let back = FrameHeader::decode(&buf, bs).unwrap();
        prop_assert_eq!(back, h);
        back.check_payload(&payload).unwrap();
        back.expect(FrameKind::Commit, nonce, seq).unwrap();
        prop_assert!(back.expect(FrameKind::Commit, nonce ^ 1, seq).is_err());
        prop_assert_eq!(back.blocks as u64 * bs as u64 >= FRAME_HEADER_SIZE as u64 + payload.len() as u64, true);
    }

    /// Any single flipped bit of a superblock or frame header is caught.
    #[test]
    fn bit_flips(bit in 0usize..SUPER_SIZE * 8, fbit in 0usize..FRAME_HEADER_SIZE * 8) {
        let sb = sample_super();
        let mut buf = [0u8; SUPER_SIZE];
        sb.encode(&mut buf);
        prop_assert_eq!(SuperBlock::decode(&buf).unwrap(), sb.clone());
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(SuperBlock::decode(&buf).is_err());

        let h = FrameHeader::new(FrameKind::Checkpoint, FRAME_LAST, 5, 9, b"payload", 4096);
        let mut fb = [0u8; FRAME_HEADER_SIZE];
        h.encode(&mut fb);
        fb[fbit / 8] ^= 1 << (fbit % 8);
        prop_assert!(FrameHeader::decode(&fb, 4096).is_err());
    }

    /// Decoders return an error, never panic, on arbitrary bytes.
    #[test]
    fn garbage(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SuperBlock::decode(&bytes);
        let _ = FrameHeader::decode(&bytes, 4096);
        for r in Records::new(&bytes) {
            let _ = r;
        }
    }

    /// Garbage behind a valid record header still decodes or fails cleanly.
    #[test]
    fn typed_garbage(ty in 0u16..20, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = Vec::new();
        buf.extend_from_slice(&ty.to_le_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
        buf.extend_from_slice(&body);
        if let Ok((rec, used)) = Record::decode(&buf) {
            prop_assert_eq!(used, buf.len());
            let mut again = vec![0u8; rec.encoded_len()];
            rec.encode(&mut again);
            prop_assert_eq!(again, buf);
        }
    }
}

fn sample_super() -> SuperBlock {
    SuperBlock {
        layout: Layout::for_device(64 << 20, 4096).unwrap(),
        compat: 0,
        incompat: 0,
        ro_compat: 0,
        state: FsState::Clean,
        uuid: [3; 16],
        label: *b"label\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        generation: 7,
        ckpt_area: 1,
        ckpt_blocks: 3,
        ckpt_nonce: 11,
        ckpt_seq: 2,
        log_nonce: 12,
        next_ino: 10,
        mkfs_time: 1_700_000_000,
        write_time: 1_700_000_100,
        inodes: 4,
        data_bytes: 100,
    }
}

#[test]
fn super_checks() {
    let sb = sample_super();
    let mut buf = [0u8; SUPER_SIZE];
    sb.encode(&mut buf);
    assert_eq!(SuperBlock::decode(&buf).unwrap().label_bytes(), b"label");
    sb.check_device(64 << 20).unwrap();
    assert_eq!(
        sb.check_device((64 << 20) - 4096),
        Err(FormatError::Truncated)
    );
    let mut bad = sb.clone();
    bad.ckpt_blocks = bad.layout.area_blocks + 1;
    bad.encode(&mut buf);
    assert!(matches!(
        SuperBlock::decode(&buf),
        Err(FormatError::BadGeometry(_))
    ));
    // Foreign bytes: an ext4 superblock has no VexFS magic at byte 0.
    assert_eq!(
        SuperBlock::decode(&[0u8; SUPER_SIZE]),
        Err(FormatError::BadMagic)
    );
    assert!(FormatError::BadMagic.is_foreign());
    let older = sample_super();
    let mut newer = sample_super();
    newer.generation += 1;
    assert_eq!(
        pick_super([Ok(older.clone()), Ok(newer.clone())])
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        pick_super([Ok(older), Err(FormatError::BadChecksum)])
            .unwrap()
            .0,
        0
    );
}

/// A collection record byte by byte: `quantize` is the body's last `u32`,
/// at offset 28, where a reserved zero used to be.
#[test]
fn collection_layout() {
    let rec = Record::Collection {
        ino: 5,
        dim: 50,
        metric: 1,
        index: 1,
        m: 16,
        ef_construction: 200,
        quantize: 1,
    };
    assert_eq!(rec.encoded_len(), 8 + 32);
    let mut buf = vec![0u8; rec.encoded_len()];
    rec.encode(&mut buf);
    let body = &buf[8..];
    let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap());
    assert_eq!(u64::from_le_bytes(body[..8].try_into().unwrap()), 5);
    assert_eq!([8, 12, 16, 20, 24, 28].map(u32_at), [50, 1, 1, 16, 200, 1]);
    // An image written before the field existed holds 0 there: none.
    buf[8 + 28] = 0;
    let (old, _) = Record::decode(&buf).unwrap();
    assert!(matches!(old, Record::Collection { quantize: 0, .. }));
}
