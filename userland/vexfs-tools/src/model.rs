//! The filesystem that a checkpoint and its log describe, built by
//! applying their records in order, and the checkpoint that describes a
//! given filesystem.

use std::collections::BTreeMap;

use vexfs_format::{InodeAttrs, Record, Time, ROOT_INO, ROWS_FILE, S_IFDIR};

/// One inode and what it holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inode {
    /// Attributes as last recorded.
    pub attrs: InodeAttrs,
    /// File contents (regular files); shorter than the size where the
    /// tail is a hole.
    pub data: Vec<u8>,
    /// Space allocated by `fallocate` (regular files): byte ranges, in or
    /// past the size, sorted and disjoint.
    pub alloc: Vec<(u64, u64)>,
    /// Symlink target.
    pub target: Option<Vec<u8>>,
    /// Extended attributes by full name.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A stored row of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Whether it is a file's vector (its id is the file's inode).
    pub file: bool,
    /// The vector.
    pub vector: Vec<f32>,
}

/// A collection directory's vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    /// Dimension.
    pub dim: u32,
    /// Metric (ioctl ABI).
    pub metric: u32,
    /// Index kind (ioctl ABI).
    pub index: u32,
    /// HNSW links per node.
    pub m: u32,
    /// HNSW insert beam width.
    pub ef_construction: u32,
    /// How the HNSW walk reads vectors (ioctl ABI: 0 none, 1 SQ8).
    pub quantize: u32,
    /// Rows by id.
    pub rows: BTreeMap<u64, Row>,
    /// The encoded HNSW graph, if the checkpoint holds one.
    pub graph: Option<Vec<u8>>,
    /// Deleted rows kept for the graph.
    pub dead_rows: u64,
}

impl Collection {
    /// Drops the file `ino`'s vectors from part `from` on (its parts are
    /// contiguous from 0), as the module does.
    pub fn remove_parts_from(&mut self, ino: u64, from: u32) {
        for part in from..vexfs_abi::MAX_FILE_PARTS {
            let id = vexfs_abi::file_vector_id(ino, part);
            if !self.rows.get(&id).is_some_and(|r| r.file) {
                break;
            }
            self.rows.remove(&id);
        }
    }
}

/// The whole filesystem.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Inodes by number.
    pub inodes: BTreeMap<u64, Inode>,
    /// Directory entries: directory → name → inode.
    pub dirs: BTreeMap<u64, BTreeMap<Vec<u8>, u64>>,
    /// Collections by directory inode.
    pub collections: BTreeMap<u64, Collection>,
    /// The next inode number to hand out.
    pub next_ino: u64,
}

/// Largest payload of a checkpoint frame this writer makes (a single
/// record may exceed it; its frame then holds only that record).
pub const CKPT_FRAME_TARGET: usize = 1 << 20;
/// File data goes into checkpoint records of at most this many bytes.
const DATA_CHUNK: usize = 256 << 10;

impl Model {
    /// A new filesystem: an empty root directory owned by `uid`:`gid`.
    pub fn new(uid: u32, gid: u32, now: Time) -> Self {
        let mut m = Self {
            next_ino: ROOT_INO + 1,
            ..Self::default()
        };
        let attrs = InodeAttrs {
            ino: ROOT_INO,
            mode: S_IFDIR | 0o755,
            uid,
            gid,
            nlink: 2,
            rdev: 0,
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
        };
        m.inodes.insert(
            ROOT_INO,
            Inode {
                attrs,
                ..Inode::default()
            },
        );
        m.dirs.insert(ROOT_INO, BTreeMap::new());
        m
    }

    /// Applies one record of a commit in the log. As in the module's
    /// loader: an inode made and freed between two commits was never
    /// written back, so the records that named or changed it find no
    /// inode (or directory) and set nothing, and a removal may find the
    /// name or attribute already gone.
    pub fn apply_logged(&mut self, rec: &Record<'_>) -> Result<(), String> {
        let missing = |ino: u64| !self.inodes.contains_key(&ino);
        let skip = match *rec {
            Record::Data { ino, .. }
            | Record::Zero { ino, .. }
            | Record::Alloc { ino, .. }
            | Record::Symlink { ino, .. }
            | Record::Xattr { ino, .. }
            | Record::Collection { ino, .. } => missing(ino),
            Record::Rows { coll, .. } | Record::RowsDelete { coll, .. } => missing(coll),
            Record::Link { dir, .. } => missing(dir),
            Record::Unlink { dir, name } => {
                missing(dir) || self.dirs.get(&dir).is_some_and(|e| !e.contains_key(name))
            }
            Record::XattrRemove { ino, name } => self
                .inodes
                .get(&ino)
                .is_none_or(|i| !i.xattrs.contains_key(name)),
            _ => false,
        };
        if skip {
            return Ok(());
        }
        self.apply(rec)?;
        // A file's rows in the log are all its vectors (an ATTACH): the
        // parts past them go, as the module's replay drops them.
        if let Record::Rows {
            coll, kind, ids, ..
        } = *rec
        {
            if kind & ROWS_FILE != 0 && kind & vexfs_format::ROWS_DEAD == 0 {
                let n = vexfs_format::row_ids(ids).count() as u32;
                if let (Some(first), Some(c)) = (
                    vexfs_format::row_ids(ids).next(),
                    self.collections.get_mut(&coll),
                ) {
                    let ino = vexfs_abi::file_vector_part(first).0;
                    c.remove_parts_from(ino, n);
                }
            }
        }
        Ok(())
    }

    /// Applies one record. An `Err` says why the record does not fit the
    /// state so far; the record is then skipped.
    pub fn apply(&mut self, rec: &Record<'_>) -> Result<(), String> {
        match *rec {
            Record::Inode(a) => {
                let inode = self.inodes.entry(a.ino).or_default();
                if inode.attrs.ino != 0 && inode.attrs.mode & 0o170000 != a.mode & 0o170000 {
                    return Err(format!("inode {} changes its type", a.ino));
                }
                inode.attrs = a;
                if a.is_reg() && inode.data.len() as u64 > a.size {
                    inode.data.truncate(a.size as usize);
                }
                if a.is_dir() {
                    self.dirs.entry(a.ino).or_default();
                }
                self.next_ino = self.next_ino.max(a.ino + 1);
            }
            Record::Link { dir, ino, name } => {
                let entries = self
                    .dirs
                    .get_mut(&dir)
                    .ok_or(format!("link in {dir}, not a directory"))?;
                entries.insert(name.to_vec(), ino);
            }
            Record::Unlink { dir, name } => {
                let entries = self
                    .dirs
                    .get_mut(&dir)
                    .ok_or(format!("unlink in {dir}, not a directory"))?;
                entries.remove(name).ok_or(format!(
                    "unlink of a missing name {:?} in {dir}",
                    String::from_utf8_lossy(name)
                ))?;
            }
            Record::Data { ino, offset, bytes } => {
                let inode = self.file(ino)?;
                let end = offset as usize + bytes.len();
                if inode.data.len() < end {
                    inode.data.resize(end, 0);
                }
                inode.data[offset as usize..end].copy_from_slice(bytes);
            }
            Record::Zero { ino, offset, len } => {
                let inode = self.file(ino)?;
                let start = (offset as usize).min(inode.data.len());
                let end = (offset.saturating_add(len) as usize).min(inode.data.len());
                inode.data[start..end].fill(0);
                inode.alloc = subtract(&inode.alloc, offset, offset + len);
            }
            Record::Alloc { ino, offset, len } => {
                let inode = self.file(ino)?;
                let mut alloc = subtract(&inode.alloc, offset, offset + len);
                alloc.push((offset, offset + len));
                alloc.sort_unstable();
                inode.alloc = alloc;
            }
            Record::Symlink { ino, target } => {
                let inode = self
                    .inodes
                    .get_mut(&ino)
                    .ok_or(format!("symlink target of missing inode {ino}"))?;
                if !inode.attrs.is_symlink() {
                    return Err(format!("symlink target of inode {ino}, not a symlink"));
                }
                inode.target = Some(target.to_vec());
            }
            Record::Xattr { ino, name, value } => {
                let inode = self
                    .inodes
                    .get_mut(&ino)
                    .ok_or(format!("xattr of missing inode {ino}"))?;
                inode.xattrs.insert(name.to_vec(), value.to_vec());
            }
            Record::XattrRemove { ino, name } => {
                let inode = self
                    .inodes
                    .get_mut(&ino)
                    .ok_or(format!("xattr of missing inode {ino}"))?;
                inode
                    .xattrs
                    .remove(name)
                    .ok_or(format!("removal of a missing xattr of {ino}"))?;
            }
            Record::Free { ino } => {
                if ino == ROOT_INO {
                    return Err("the root directory is freed".into());
                }
                // An inode created and deleted between two commits was
                // never written back; its free is logged all the same.
                self.inodes.remove(&ino);
                self.dirs.remove(&ino);
                self.collections.remove(&ino);
            }
            Record::Collection {
                ino,
                dim,
                metric,
                index,
                m,
                ef_construction,
                quantize,
            } => {
                if !self.dirs.contains_key(&ino) {
                    return Err(format!("collection {ino} is not a directory"));
                }
                self.collections.insert(
                    ino,
                    Collection {
                        dim,
                        metric,
                        index,
                        m,
                        ef_construction,
                        quantize,
                        rows: BTreeMap::new(),
                        graph: None,
                        dead_rows: 0,
                    },
                );
            }
            Record::Rows {
                coll,
                kind,
                dim,
                ids,
                vectors,
            } => {
                let c = self
                    .collections
                    .get_mut(&coll)
                    .ok_or(format!("rows of missing collection {coll}"))?;
                if c.dim != dim {
                    return Err(format!(
                        "rows of dimension {dim} in collection {coll} of dimension {}",
                        c.dim
                    ));
                }
                let floats: Vec<f32> = vexfs_format::row_values(vectors).collect();
                if kind & vexfs_format::ROWS_DEAD != 0 {
                    // Deleted rows the graph still routes through.
                    c.dead_rows += ids.len() as u64 / 8;
                    return Ok(());
                }
                for (id, v) in vexfs_format::row_ids(ids).zip(floats.chunks_exact(dim as usize)) {
                    c.rows.insert(
                        id,
                        Row {
                            file: kind & ROWS_FILE != 0,
                            vector: v.to_vec(),
                        },
                    );
                }
            }
            Record::RowsDelete { coll, ids } => {
                let c = self
                    .collections
                    .get_mut(&coll)
                    .ok_or(format!("delete in missing collection {coll}"))?;
                for id in vexfs_format::row_ids(ids) {
                    // A file's first part stands for all its vectors.
                    if c.rows.remove(&id).is_some_and(|r| r.file) {
                        let (ino, part) = vexfs_abi::file_vector_part(id);
                        if part == 0 {
                            c.remove_parts_from(ino, 1);
                        }
                    }
                }
            }
            Record::Graph { coll, bytes } => {
                let c = self
                    .collections
                    .get_mut(&coll)
                    .ok_or(format!("graph of missing collection {coll}"))?;
                c.graph
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(bytes);
            }
            Record::NextIno(n) => self.next_ino = self.next_ino.max(n),
        }
        Ok(())
    }

    fn file(&mut self, ino: u64) -> Result<&mut Inode, String> {
        match self.inodes.get_mut(&ino) {
            Some(i) if i.attrs.is_reg() => Ok(i),
            Some(_) => Err(format!("file data of inode {ino}, not a regular file")),
            None => Err(format!("file data of missing inode {ino}")),
        }
    }

    /// Bytes of file data stored (holes at the tail excluded).
    pub fn data_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    /// The checkpoint of this filesystem: frame payloads, in order.
    /// Parents' inodes come before their entries, so a reader can link
    /// each name as it meets it.
    pub fn checkpoint(&self) -> Vec<Vec<u8>> {
        let mut w = FrameWriter::default();
        w.push(&Record::NextIno(self.next_ino));
        for inode in self.inodes.values() {
            w.push(&Record::Inode(inode.attrs));
            let ino = inode.attrs.ino;
            if let Some(t) = &inode.target {
                w.push(&Record::Symlink { ino, target: t });
            }
            for (name, value) in &inode.xattrs {
                w.push(&Record::Xattr { ino, name, value });
            }
            for &(start, end) in &inode.alloc {
                w.push(&Record::Alloc {
                    ino,
                    offset: start,
                    len: end - start,
                });
            }
            for (i, chunk) in inode.data.chunks(DATA_CHUNK).enumerate() {
                let offset = (i * DATA_CHUNK) as u64;
                w.push(&Record::Data {
                    ino,
                    offset,
                    bytes: chunk,
                });
            }
        }
        for (&dir, entries) in &self.dirs {
            for (name, &ino) in entries {
                w.push(&Record::Link { dir, ino, name });
            }
        }
        for (&coll, c) in &self.collections {
            w.push(&Record::Collection {
                ino: coll,
                dim: c.dim,
                metric: c.metric,
                index: c.index,
                m: c.m,
                ef_construction: c.ef_construction,
                quantize: c.quantize,
            });
            for file in [false, true] {
                let rows: Vec<_> = c.rows.iter().filter(|(_, r)| r.file == file).collect();
                for batch in rows.chunks(1024) {
                    let ids: Vec<u8> = batch.iter().flat_map(|(id, _)| id.to_le_bytes()).collect();
                    let vectors: Vec<u8> = batch
                        .iter()
                        .flat_map(|(_, r)| r.vector.iter().flat_map(|f| f.to_le_bytes()))
                        .collect();
                    w.push(&Record::Rows {
                        coll,
                        kind: if file { ROWS_FILE } else { 0 },
                        dim: c.dim,
                        ids: &ids,
                        vectors: &vectors,
                    });
                }
            }
            // No graph: its slots are row slots, which this model (rows by
            // id) does not keep; the module rebuilds the graph from the
            // rows at the next mount.
        }
        w.finish()
    }
}

/// Packs records into frame payloads of about [`CKPT_FRAME_TARGET`].
#[derive(Default)]
struct FrameWriter {
    frames: Vec<Vec<u8>>,
    cur: Vec<u8>,
}

impl FrameWriter {
    fn push(&mut self, rec: &Record<'_>) {
        let len = rec.encoded_len();
        if !self.cur.is_empty() && self.cur.len() + len > CKPT_FRAME_TARGET {
            self.frames.push(std::mem::take(&mut self.cur));
        }
        let at = self.cur.len();
        self.cur.resize(at + len, 0);
        rec.encode(&mut self.cur[at..]);
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        if !self.cur.is_empty() || self.frames.is_empty() {
            self.frames.push(self.cur);
        }
        self.frames
    }
}

/// `ranges` (sorted, disjoint) without `start..end`.
fn subtract(ranges: &[(u64, u64)], start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for &(a, b) in ranges {
        if b <= start || a >= end {
            out.push((a, b));
            continue;
        }
        if a < start {
            out.push((a, start));
        }
        if b > end {
            out.push((end, b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le_bytes<T: Copy, const N: usize>(xs: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        xs.iter().flat_map(|&x| f(x)).collect()
    }

    #[test]
    fn a_logged_attach_replaces_all_parts_and_a_delete_takes_them_all() {
        let mut m = Model::new(0, 0, Time::default());
        let coll = ROOT_INO;
        m.apply_logged(&Record::Collection {
            ino: coll,
            dim: 1,
            metric: 0,
            index: 0,
            m: 0,
            ef_construction: 0,
            quantize: 0,
        })
        .unwrap();
        let attach = |m: &mut Model, parts: u32| {
            let ids: Vec<u64> = (0..parts)
                .map(|p| vexfs_abi::file_vector_id(7, p))
                .collect();
            let rows: Vec<f32> = (0..parts).map(|p| p as f32).collect();
            m.apply_logged(&Record::Rows {
                coll,
                kind: ROWS_FILE,
                dim: 1,
                ids: &le_bytes(&ids, u64::to_le_bytes),
                vectors: &le_bytes(&rows, f32::to_le_bytes),
            })
            .unwrap();
        };
        let ids = |m: &Model| {
            m.collections[&coll]
                .rows
                .keys()
                .copied()
                .collect::<Vec<_>>()
        };
        attach(&mut m, 4);
        assert_eq!(ids(&m).len(), 4);
        attach(&mut m, 2);
        assert_eq!(
            ids(&m),
            [
                vexfs_abi::file_vector_id(7, 0),
                vexfs_abi::file_vector_id(7, 1)
            ]
        );
        m.apply_logged(&Record::RowsDelete {
            coll,
            ids: &7u64.to_le_bytes(),
        })
        .unwrap();
        assert!(ids(&m).is_empty());
    }

    #[test]
    fn log_records_of_inodes_never_written_set_nothing() {
        let mut m = Model::new(0, 0, Time::default());
        let (dir, file) = (9, 10);
        let log = [
            Record::Link {
                dir: ROOT_INO,
                ino: dir,
                name: b"d",
            },
            Record::Link {
                dir,
                ino: file,
                name: b"f",
            },
            Record::Symlink {
                ino: file,
                target: b"t",
            },
            Record::Xattr {
                ino: file,
                name: b"user.x",
                value: b"v",
            },
            Record::XattrRemove {
                ino: file,
                name: b"user.x",
            },
            Record::Unlink { dir, name: b"f" },
            Record::Unlink {
                dir: ROOT_INO,
                name: b"d",
            },
            Record::Free { ino: file },
            Record::Free { ino: dir },
        ];
        for rec in &log {
            m.apply_logged(rec).unwrap();
        }
        assert!(m.dirs[&ROOT_INO].is_empty());
        assert!(!m.inodes.contains_key(&file));
        // A checkpoint's records are held to more: a symlink target of a
        // missing inode is an error there.
        assert!(m.apply(&log[2]).is_err());
    }

    #[test]
    fn allocated_ranges_follow_alloc_and_zero_records() {
        let mut m = Model::new(0, 0, Time::default());
        let ino = 5;
        m.inodes.insert(
            ino,
            Inode {
                attrs: InodeAttrs {
                    ino,
                    mode: 0o100644,
                    nlink: 1,
                    ..InodeAttrs::default()
                },
                ..Inode::default()
            },
        );
        for (offset, len) in [(0, 8192), (65536, 4096), (4096, 8192)] {
            m.apply(&Record::Alloc { ino, offset, len }).unwrap();
        }
        assert_eq!(
            m.inodes[&ino].alloc,
            vec![(0, 4096), (4096, 12288), (65536, 69632)]
        );
        m.apply(&Record::Zero {
            ino,
            offset: 2048,
            len: 65536,
        })
        .unwrap();
        assert_eq!(m.inodes[&ino].alloc, vec![(0, 2048), (67584, 69632)]);
        // A checkpoint of the model gives the same ranges back.
        let mut again = Model::new(0, 0, Time::default());
        for frame in m.checkpoint() {
            for rec in vexfs_format::Records::new(&frame) {
                again.apply(&rec.unwrap()).unwrap();
            }
        }
        assert_eq!(again.inodes[&ino].alloc, m.inodes[&ino].alloc);
    }
}
