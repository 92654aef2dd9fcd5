//! mkfs.vexfs and fsck.vexfs on image files: clean images check clean,
//! every structure fsck knows is checked, and damage is reported.

use std::path::Path;
use std::process::Command;

use vexfs_format::{InodeAttrs, Record, Time, ROOT_INO, ROWS_FILE, S_IFDIR, S_IFLNK, S_IFREG};
use vexfs_tools::check::check;
use vexfs_tools::device::Device;
use vexfs_tools::image::{append_commit, current_super, write_checkpoint, write_slot};
use vexfs_tools::model::{Collection, Inode, Model, Row};

fn mkfs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkfs-vexfs"))
        .args(args)
        .output()
        .unwrap()
}

fn fsck(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fsck-vexfs"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

fn image(dir: &Path, size: &str) -> String {
    let p = dir.join("fs.img").display().to_string();
    let out = mkfs(&[&p, size, "-L", "tests", "-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

const T: Time = Time {
    sec: 1_700_000_000,
    nsec: 5,
};

fn attrs(ino: u64, mode: u32, nlink: u32, size: u64) -> InodeAttrs {
    InodeAttrs {
        ino,
        mode,
        uid: 1000,
        gid: 1000,
        nlink,
        rdev: 0,
        size,
        atime: T,
        mtime: T,
        ctime: T,
    }
}

/// A tree with every kind of thing fsck checks.
fn populated() -> Model {
    let mut m = Model::new(0, 0, T);
    let add = |m: &mut Model, dir: u64, name: &str, a: InodeAttrs| {
        m.inodes.insert(
            a.ino,
            Inode {
                attrs: a,
                ..Inode::default()
            },
        );
        if a.mode & 0o170000 == S_IFDIR {
            m.dirs.insert(a.ino, Default::default());
        }
        m.dirs
            .get_mut(&dir)
            .unwrap()
            .insert(name.as_bytes().to_vec(), a.ino);
    };
    add(&mut m, ROOT_INO, "docs", attrs(2, S_IFDIR | 0o755, 2, 0));
    add(&mut m, 2, "a.txt", attrs(3, S_IFREG | 0o644, 2, 10_000));
    m.dirs
        .get_mut(&ROOT_INO)
        .unwrap()
        .insert(b"hardlink".to_vec(), 3);
    m.inodes.get_mut(&3).unwrap().data = (0..9_000u32).map(|i| i as u8).collect();
    m.inodes
        .get_mut(&3)
        .unwrap()
        .xattrs
        .insert(b"user.k".to_vec(), b"v".to_vec());
    add(&mut m, ROOT_INO, "link", attrs(4, S_IFLNK | 0o777, 1, 9));
    m.inodes.get_mut(&4).unwrap().target = Some(b"docs/a.txt".to_vec()[..9].to_vec());
    add(&mut m, ROOT_INO, "glove", attrs(5, S_IFDIR | 0o755, 2, 0));
    add(&mut m, 5, "word", attrs(6, S_IFREG | 0o600, 1, 0));
    m.inodes.get_mut(&ROOT_INO).unwrap().attrs.nlink = 4;
    let mut rows = std::collections::BTreeMap::new();
    for id in 0..50u64 {
        rows.insert(
            id + 100,
            Row {
                file: false,
                vector: vec![id as f32; 4],
            },
        );
    }
    rows.insert(
        6,
        Row {
            file: true,
            vector: vec![0.5; 4],
        },
    );
    m.collections.insert(
        5,
        Collection {
            dim: 4,
            metric: 0,
            index: 1,
            m: 16,
            ef_construction: 200,
            quantize: 1,
            rows,
            graph: None,
            dead_rows: 0,
        },
    );
    m.next_ino = 7;
    m
}

/// Replaces the image's contents with `m`, as fsck's repair writes it.
fn write_model(path: &str, m: &Model) {
    let dev = Device::open(Path::new(path), true).unwrap();
    let (_, mut sb) = current_super(&dev).unwrap().unwrap();
    let blocks = write_checkpoint(
        &dev,
        &sb.layout,
        sb.ckpt_start(),
        sb.ckpt_nonce,
        &m.checkpoint(),
    )
    .unwrap();
    sb.ckpt_blocks = blocks;
    sb.inodes = m.inodes.len() as u64;
    sb.data_bytes = m.data_bytes();
    sb.next_ino = m.next_ino;
    for slot in 0..2 {
        sb.generation = slot as u64;
        write_slot(&dev, slot, &sb).unwrap();
    }
}

fn commit(path: &str, seq: u64, block: u64, recs: &[Record<'_>]) -> u64 {
    let dev = Device::open(Path::new(path), true).unwrap();
    let (_, sb) = current_super(&dev).unwrap().unwrap();
    let mut payload = Vec::new();
    for r in recs {
        let at = payload.len();
        payload.resize(at + r.encoded_len(), 0);
        r.encode(&mut payload[at..]);
    }
    let start = if block == 0 {
        sb.layout.log_start
    } else {
        block
    };
    append_commit(&dev, &sb, start, seq, &payload).unwrap()
}

#[test]
fn fresh_image_is_clean() {
    let d = tempfile::tempdir().unwrap();
    let img = image(d.path(), "16M");
    let (code, text) = fsck(&["-n", &img]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("clean, 0 files, 1 directories"), "{text}");
    let (code, json) = fsck(&["-n", "--json", &img]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["status"], "clean");
    assert_eq!(v["summary"]["directories"], 1);
    // An existing filesystem is kept unless -f.
    let out = mkfs(&[&img]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("contains a VexFS filesystem"));
    assert!(mkfs(&[&img, "-f", "-q", "-b", "1024"]).status.success());
    assert_eq!(fsck(&["-n", &img]).0, 0);
    // Too small, bad block size, long label.
    let small = d.path().join("small.img").display().to_string();
    assert!(!mkfs(&[&small, "4M"]).status.success());
    assert!(!mkfs(&[&img, "-f", "-b", "512"]).status.success());
    assert!(!mkfs(&[&img, "-f", "-L", &"x".repeat(33)]).status.success());
}

#[test]
fn populated_image_replays_and_checks_clean() {
    let d = tempfile::tempdir().unwrap();
    let img = image(d.path(), "16M");
    let m = populated();
    write_model(&img, &m);
    let (code, text) = fsck(&["-n", &img]);
    assert_eq!(code, 0, "{text}");
    // Two commits: a new file written, then renamed over the hard link
    // (whose inode keeps one name) and a row deleted.
    let mut a = attrs(7, S_IFREG | 0o644, 1, 3);
    let b = commit(
        &img,
        0,
        0,
        &[
            Record::Inode(a),
            Record::Data {
                ino: 7,
                offset: 0,
                bytes: b"new",
            },
            Record::Link {
                dir: ROOT_INO,
                ino: 7,
                name: b"new",
            },
            Record::NextIno(8),
        ],
    );
    a.ctime.sec += 1;
    let mut three = m.inodes[&3].attrs;
    three.nlink = 1;
    commit(
        &img,
        1,
        b,
        &[
            Record::Unlink {
                dir: ROOT_INO,
                name: b"new",
            },
            Record::Link {
                dir: ROOT_INO,
                ino: 7,
                name: b"hardlink",
            },
            Record::Inode(a),
            Record::Inode(three),
            Record::RowsDelete {
                coll: 5,
                ids: &100u64.to_le_bytes(),
            },
        ],
    );
    let r = check(&Device::open(Path::new(&img), false).unwrap()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.summary.log_commits, 2);
    let got = r.model.unwrap();
    assert_eq!(got.dirs[&ROOT_INO][b"hardlink".as_slice()], 7);
    assert_eq!(got.inodes[&7].data, b"new");
    assert_eq!(got.collections[&5].rows.len(), 50);
    assert_eq!(got.collections[&5].quantize, 1, "sq8 is kept");
    assert_eq!(got.inodes[&3].data, m.inodes[&3].data);
    assert_eq!(fsck(&["-n", &img]).0, 0);
}

#[test]
fn errors_are_reported_then_repaired() {
    let d = tempfile::tempdir().unwrap();
    let img = image(d.path(), "16M");
    let mut m = populated();
    // Wrong link count, a name for a missing inode, a file vector of a
    // file outside the collection, a file unreachable from the root.
    m.inodes.get_mut(&6).unwrap().attrs.nlink = 3;
    m.dirs.get_mut(&2).unwrap().insert(b"ghost".to_vec(), 99);
    m.collections.get_mut(&5).unwrap().rows.insert(
        3,
        Row {
            file: true,
            vector: vec![1.0; 4],
        },
    );
    m.inodes.insert(
        8,
        Inode {
            attrs: attrs(8, S_IFREG | 0o644, 1, 0),
            ..Inode::default()
        },
    );
    m.next_ino = 9;
    write_model(&img, &m);
    let (code, text) = fsck(&["-n", &img]);
    assert_eq!(code, 4, "{text}");
    for needle in [
        "link count 3, should be 1",
        "names missing inode 99",
        "file vector of inode 3",
        "inode 8 is not reachable",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    let (code, text) = fsck(&[&img]);
    assert_eq!(code, 1, "{text}");
    let (code, text) = fsck(&["-n", &img]);
    assert_eq!(code, 0, "{text}");
    let r = check(&Device::open(Path::new(&img), false).unwrap()).unwrap();
    let got = r.model.unwrap();
    let lf = got.dirs[&ROOT_INO][b"lost+found".as_slice()];
    assert_eq!(got.dirs[&lf][b"#8".as_slice()], 8);
    assert!(!got.collections[&5].rows.contains_key(&3));
}

#[test]
fn a_quantize_the_module_refuses_is_reported_then_repaired() {
    for (index, quantize, want) in [
        (
            1,
            7,
            "collection 5: unknown quantize 7 (known: 0 none, 1 sq8); set to none",
        ),
        (
            0,
            1,
            "collection 5: quantize sq8 on a collection without an HNSW index \
             (only its walk is quantized); set to none",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let img = image(d.path(), "16M");
        let mut m = populated();
        let c = m.collections.get_mut(&5).unwrap();
        (c.index, c.quantize) = (index, quantize);
        if index == 0 {
            (c.m, c.ef_construction) = (0, 0);
        }
        write_model(&img, &m);
        let (code, text) = fsck(&["-n", &img]);
        assert_eq!(code, 4, "{text}");
        assert!(text.contains(want), "{want} not in {text}");
        let (code, text) = fsck(&[&img]);
        assert_eq!(code, 1, "{text}");
        let (code, text) = fsck(&["-n", &img]);
        assert_eq!(code, 0, "{text}");
        let r = check(&Device::open(Path::new(&img), false).unwrap()).unwrap();
        let got = &r.model.unwrap().collections[&5];
        assert_eq!((got.index, got.quantize, got.rows.len()), (index, 0, 51));
    }
}

#[test]
fn foreign_and_truncated_images_are_operational_errors() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.img");
    std::fs::write(&junk, vec![0x5au8; 16 << 20]).unwrap();
    let (code, text) = fsck(&["-n", junk.to_str().unwrap()]);
    assert_eq!(code, 8, "{text}");
    assert!(text.contains("bad magic number"), "{text}");
    let img = image(d.path(), "16M");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(12 << 20)
        .unwrap();
    let (code, text) = fsck(&["-n", &img]);
    assert_eq!(code, 8, "{text}");
    assert!(text.contains("smaller than the superblock says"), "{text}");
    let (code, _) = fsck(&["-n", d.path().join("missing.img").to_str().unwrap()]);
    assert_eq!(code, 8);
}

/// Every single-bit flip in a metadata block is reported: 2,400 flips
/// over both superblock slots, the checkpoint's frames and two log
/// commits (positions drawn from a fixed seed).
#[test]
fn every_flipped_metadata_bit_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let img = image(d.path(), "8M");
    write_model(&img, &populated());
    let a = attrs(7, S_IFREG | 0o644, 1, 3);
    let b = commit(
        &img,
        0,
        0,
        &[
            Record::Inode(a),
            Record::Link {
                dir: ROOT_INO,
                ino: 7,
                name: b"n",
            },
            Record::NextIno(8),
        ],
    );
    let end = commit(
        &img,
        1,
        b,
        &[Record::Data {
            ino: 7,
            offset: 0,
            bytes: b"abc",
        }],
    );
    let dev = Device::open(Path::new(&img), false).unwrap();
    let (_, sb) = current_super(&dev).unwrap().unwrap();
    drop(dev);
    let bs = sb.layout.block_size as u64;
    let mut ranges = vec![(0, 4096), (4096, 8192)];
    ranges.push((
        sb.layout.offset(sb.ckpt_start()),
        sb.layout.offset(sb.ckpt_start() + sb.ckpt_blocks),
    ));
    // A log commit's header block past its 64-byte header is not checked
    // (a torn write may leave anything there).
    let log0 = sb.layout.log_start;
    ranges.push((log0 * bs, log0 * bs + 64));
    ranges.push(((log0 + 1) * bs, b * bs + 64));
    ranges.push(((b + 1) * bs, end * bs));
    let total: u64 = ranges.iter().map(|(a, b)| b - a).sum();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let flip = |byte: u64, bit: u8| {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8];
        file.read_exact_at(&mut b, byte).unwrap();
        file.write_all_at(&[b[0] ^ bit], byte).unwrap();
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..2400 {
        let mut pos = rand() % (total * 8);
        let mut byte = 0;
        for (a, b) in &ranges {
            if pos < (b - a) * 8 {
                byte = a + pos / 8;
                break;
            }
            pos -= (b - a) * 8;
        }
        let bit = 1u8 << (pos % 8);
        flip(byte, bit);
        let r = check(&Device::open(Path::new(&img), false).unwrap()).unwrap();
        assert!(
            r.fatal.is_some() || !r.problems.is_empty(),
            "flip {i} at byte {byte} bit {bit:#x} went unnoticed"
        );
        flip(byte, bit);
    }
    assert_eq!(fsck(&["-n", &img]).0, 0);
    let _ = ROWS_FILE;
}
