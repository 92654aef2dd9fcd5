//! The checks of `fsck.vexfs`: read everything an image holds, replay it
//! as a mount would, and check every structure and cross-reference.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::Result;
use serde::Serialize;
use vexfs_format::{InodeAttrs, Records, SuperBlock, ROOT_INO, S_IFDIR};

use crate::device::Device;
use crate::image::{current_super, read_checkpoint, read_slots, scan_log, LogEnd};
use crate::model::Model;

/// One thing wrong with an image.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// Which structure: `superblock`, `checkpoint`, `log`, `namespace`,
    /// `inode`, `collection`.
    pub area: &'static str,
    /// What is wrong.
    pub message: String,
    /// Whether `fsck.vexfs` without `-n` repairs it.
    pub fixable: bool,
}

/// What was found, in numbers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Block size.
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub blocks: u64,
    /// Blocks the checkpoint takes, and its area's size.
    pub checkpoint_blocks: u64,
    /// Blocks of each checkpoint area.
    pub area_blocks: u64,
    /// Commits in the log, and the blocks they take.
    pub log_commits: u64,
    /// See `log_commits`.
    pub log_blocks_used: u64,
    /// Blocks of the log.
    pub log_blocks: u64,
    /// Inodes by kind.
    pub files: u64,
    /// See `files`.
    pub directories: u64,
    /// See `files`.
    pub symlinks: u64,
    /// See `files`.
    pub other: u64,
    /// Bytes of file data.
    pub data_bytes: u64,
    /// Collections and their rows.
    pub collections: u64,
    /// See `collections`.
    pub rows: u64,
    /// Inodes with no name left, dropped at the next mount.
    pub orphans: u64,
}

/// The result of a check.
pub struct Report {
    /// The superblock used, if any was valid.
    pub sb: Option<(usize, SuperBlock)>,
    /// The filesystem as a mount would see it (repaired where fixable).
    pub model: Option<Model>,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// The numbers.
    pub summary: Summary,
    /// Why the image is not VexFS at all, or could not be read to the end.
    pub fatal: Option<String>,
}

impl Report {
    fn problem(&mut self, area: &'static str, fixable: bool, message: String) {
        self.problems.push(Problem {
            area,
            message,
            fixable,
        });
    }

    /// Whether every problem can be repaired.
    pub fn all_fixable(&self) -> bool {
        self.fatal.is_none() && self.problems.iter().all(|p| p.fixable)
    }
}

/// Checks the image on `dev`.
pub fn check(dev: &Device) -> Result<Report> {
    let mut r = Report {
        sb: None,
        model: None,
        problems: Vec::new(),
        summary: Summary::default(),
        fatal: None,
    };
    let (slot, sb) = match current_super(dev)? {
        Ok(s) => s,
        Err(e) => {
            r.fatal = Some(format!("no valid superblock: {e}"));
            return Ok(r);
        }
    };
    for (i, s) in read_slots(dev)?.into_iter().enumerate() {
        match s {
            Err(e) => r.problem("superblock", true, format!("slot {i}: {e}")),
            Ok(other) if other.uuid != sb.uuid || other.layout != sb.layout => r.problem(
                "superblock",
                true,
                format!("slot {i} belongs to another filesystem"),
            ),
            Ok(_) => {}
        }
    }
    r.sb = Some((slot, sb.clone()));
    r.summary.block_size = sb.layout.block_size;
    r.summary.blocks = sb.layout.block_count;
    r.summary.checkpoint_blocks = sb.ckpt_blocks;
    r.summary.area_blocks = sb.layout.area_blocks;
    r.summary.log_blocks = sb.layout.log_blocks;

    let ckpt = match read_checkpoint(dev, &sb)? {
        Ok(c) => c,
        Err(f) => {
            r.fatal = Some(format!(
                "checkpoint frame {} at block {}: {} (the checkpoint cannot be read)",
                f.seq, f.block, f.error
            ));
            return Ok(r);
        }
    };
    let mut model = Model::default();
    for (i, payload) in ckpt.iter().enumerate() {
        replay(
            &mut r,
            &mut model,
            payload,
            &format!("checkpoint frame {i}"),
            "checkpoint",
        );
    }
    if model.inodes.len() as u64 != sb.inodes {
        r.problem(
            "superblock",
            true,
            format!(
                "{} inodes counted, {} in the checkpoint",
                sb.inodes,
                model.inodes.len()
            ),
        );
    }
    if model.data_bytes() != sb.data_bytes {
        r.problem(
            "superblock",
            true,
            format!(
                "{} data bytes counted, {} in the checkpoint",
                sb.data_bytes,
                model.data_bytes()
            ),
        );
    }
    if model.next_ino != sb.next_ino {
        r.problem(
            "superblock",
            true,
            format!(
                "next inode {} but the checkpoint says {}",
                sb.next_ino, model.next_ino
            ),
        );
    }

    let (log, end, end_block) = scan_log(dev, &sb)?;
    r.summary.log_commits = log.len() as u64;
    r.summary.log_blocks_used = end_block - sb.layout.log_start;
    if let LogEnd::Corrupt { seq, block, error } = end {
        r.problem(
            "log",
            true,
            format!("commit {seq} at block {block}: {error}, and later commits follow it (they are lost)"),
        );
    }
    for (i, payload) in log.iter().enumerate() {
        replay(
            &mut r,
            &mut model,
            payload,
            &format!("log commit {i}"),
            "log",
        );
    }
    check_model(&mut r, &mut model);
    r.model = Some(model);
    Ok(r)
}

fn replay(r: &mut Report, model: &mut Model, payload: &[u8], what: &str, area: &'static str) {
    for rec in Records::new(payload) {
        match rec {
            Ok(rec) => {
                let applied = if area == "log" {
                    model.apply_logged(&rec)
                } else {
                    model.apply(&rec)
                };
                if let Err(e) = applied {
                    r.problem(area, true, format!("{what}: {e}"));
                }
            }
            Err(e) => {
                r.problem(area, true, format!("{what}: undecodable record: {e}"));
                return;
            }
        }
    }
}

/// Checks (and repairs, in `model`) the namespace and the collections.
fn check_model(r: &mut Report, m: &mut Model) {
    match m.inodes.get(&ROOT_INO) {
        Some(root) if root.attrs.is_dir() => {}
        _ => {
            r.problem("namespace", true, "the root directory is missing".into());
            let attrs = InodeAttrs {
                ino: ROOT_INO,
                mode: S_IFDIR | 0o755,
                nlink: 2,
                ..InodeAttrs::default()
            };
            m.inodes.insert(
                ROOT_INO,
                crate::model::Inode {
                    attrs,
                    ..Default::default()
                },
            );
            m.dirs.insert(ROOT_INO, BTreeMap::new());
        }
    }
    // Entries that name nothing, or whose directory is gone.
    let dirs: Vec<u64> = m.dirs.keys().copied().collect();
    for dir in dirs {
        if !m.inodes.get(&dir).is_some_and(|i| i.attrs.is_dir()) {
            r.problem(
                "namespace",
                true,
                format!("entries of {dir}, which is not a directory"),
            );
            m.dirs.remove(&dir);
            continue;
        }
        let entries = m.dirs.get_mut(&dir).unwrap();
        entries.retain(|name, ino| {
            if m.inodes.contains_key(ino) && *ino != ROOT_INO {
                return true;
            }
            r.problems.push(crate::check::Problem {
                area: "namespace",
                fixable: true,
                message: format!(
                    "entry {:?} in {dir} names missing inode {ino}",
                    String::from_utf8_lossy(name)
                ),
            });
            false
        });
    }
    // Names per inode, and a parent per directory.
    let mut names: BTreeMap<u64, u32> = BTreeMap::new();
    let mut parent: BTreeMap<u64, u64> = BTreeMap::new();
    let mut extra: Vec<(u64, Vec<u8>)> = Vec::new();
    for (&dir, entries) in &m.dirs {
        for (name, &ino) in entries {
            if m.inodes[&ino].attrs.is_dir() && parent.insert(ino, dir).is_some() {
                extra.push((dir, name.clone()));
                continue;
            }
            *names.entry(ino).or_default() += 1;
        }
    }
    for (dir, name) in extra {
        r.problem(
            "namespace",
            true,
            format!(
                "second name {:?} in {dir} for a directory",
                String::from_utf8_lossy(&name)
            ),
        );
        m.dirs.get_mut(&dir).unwrap().remove(&name);
    }
    // Reachability from the root; what cannot be reached goes to
    // /lost+found, as e2fsck does: directories first (their subtrees come
    // along), then files that have no name left.
    loop {
        let seen = reachable(m);
        let unreachable = |ino: &u64, i: &crate::model::Inode| {
            !seen.contains(ino)
                && (i.attrs.nlink > 0 || names.contains_key(ino) || parent.contains_key(ino))
        };
        let dir = m
            .inodes
            .iter()
            .find(|(ino, i)| i.attrs.is_dir() && unreachable(ino, i))
            .map(|(&i, _)| i);
        let file = || {
            m.inodes
                .iter()
                .find(|(ino, i)| unreachable(ino, i))
                .map(|(&i, _)| i)
        };
        let Some(ino) = dir.or_else(file) else { break };
        r.problem(
            "namespace",
            true,
            format!("inode {ino} is not reachable from the root (moved to /lost+found)"),
        );
        let lf = lost_found(m);
        parent.entry(lf).or_insert(ROOT_INO);
        if m.inodes[&ino].attrs.is_dir() {
            if let Some(old) = parent.insert(ino, lf) {
                m.dirs.get_mut(&old).unwrap().retain(|_, i| *i != ino);
            }
        } else {
            names.insert(ino, 1);
        }
        m.dirs
            .get_mut(&lf)
            .unwrap()
            .insert(format!("#{ino}").into_bytes(), ino);
    }
    // Orphans: no name and no link count, open when the system went down.
    let orphans: Vec<u64> = m
        .inodes
        .iter()
        .filter(|(ino, i)| {
            **ino != ROOT_INO
                && i.attrs.nlink == 0
                && !names.contains_key(ino)
                && !parent.contains_key(ino)
        })
        .map(|(&ino, _)| ino)
        .collect();
    r.summary.orphans = orphans.len() as u64;
    for ino in orphans {
        m.inodes.remove(&ino);
        m.dirs.remove(&ino);
        m.collections.remove(&ino);
    }
    // Link counts and per-kind contents.
    let subdirs: BTreeMap<u64, u32> = parent.values().fold(BTreeMap::new(), |mut acc, &p| {
        *acc.entry(p).or_default() += 1;
        acc
    });
    let max_ino = m.inodes.keys().next_back().copied().unwrap_or(ROOT_INO);
    if m.next_ino <= max_ino {
        r.problem(
            "inode",
            true,
            format!("next inode number {} is in use", m.next_ino),
        );
        m.next_ino = max_ino + 1;
    }
    for (&ino, inode) in m.inodes.iter_mut() {
        let a = &mut inode.attrs;
        let want = if a.is_dir() {
            2 + subdirs.get(&ino).copied().unwrap_or(0)
        } else {
            names.get(&ino).copied().unwrap_or(0)
        };
        if a.nlink != want {
            r.problems.push(Problem {
                area: "inode",
                fixable: true,
                message: format!("inode {ino} has link count {}, should be {want}", a.nlink),
            });
            a.nlink = want;
        }
        if a.is_symlink() {
            let len = inode.target.as_ref().map_or(0, |t| t.len() as u64);
            if inode.target.is_none() || a.size != len {
                r.problems.push(Problem {
                    area: "inode",
                    fixable: true,
                    message: format!(
                        "symlink {ino} has size {} but a target of {len} bytes",
                        a.size
                    ),
                });
                a.size = len;
                inode.target.get_or_insert_with(Vec::new);
            }
        } else if inode.target.is_some() {
            r.problems.push(Problem {
                area: "inode",
                fixable: true,
                message: format!("inode {ino} is no symlink but has a target"),
            });
            inode.target = None;
        }
        if !a.is_reg() && !inode.data.is_empty() {
            r.problems.push(Problem {
                area: "inode",
                fixable: true,
                message: format!("inode {ino} is no regular file but has data"),
            });
            inode.data.clear();
        }
        if a.is_reg() && inode.data.len() as u64 > a.size {
            r.problems.push(Problem {
                area: "inode",
                fixable: true,
                message: format!("file {ino} has data past its size {}", a.size),
            });
            inode.data.truncate(a.size as usize);
        }
    }
    // Collections: on directories, file rows naming files of theirs.
    let colls: Vec<u64> = m.collections.keys().copied().collect();
    for coll in colls {
        if !m.inodes.get(&coll).is_some_and(|i| i.attrs.is_dir()) {
            r.problem(
                "collection",
                true,
                format!("collection {coll} is not a directory"),
            );
            m.collections.remove(&coll);
            continue;
        }
        let files = files_in_tree(m, coll);
        let c = m.collections.get_mut(&coll).unwrap();
        if let Some(why) = quantize_problem(c.index, c.quantize) {
            // The module refuses to mount it. The graph is rebuilt from
            // the rows after a repair (its checkpoint holds none), so
            // walking on floats loses nothing.
            r.problem(
                "collection",
                true,
                format!("collection {coll}: {why}; set to none"),
            );
            c.quantize = vexfs_abi::quantize::NONE;
        }
        c.rows.retain(|id, row| {
            if !row.file || files.contains(&vexfs_abi::file_vector_part(*id).0) {
                return true;
            }
            r.problems.push(Problem {
                area: "collection",
                fixable: true,
                message: format!(
                    "collection {coll}: file vector of inode {id}, which is not a file in its tree"
                ),
            });
            false
        });
        r.summary.collections += 1;
        r.summary.rows += c.rows.len() as u64;
    }
    for inode in m.inodes.values() {
        let a = &inode.attrs;
        if a.is_dir() {
            r.summary.directories += 1;
        } else if a.is_reg() {
            r.summary.files += 1;
        } else if a.is_symlink() {
            r.summary.symlinks += 1;
        } else {
            r.summary.other += 1;
        }
    }
    r.summary.data_bytes = m.data_bytes();
}

/// Why a collection's `quantize` is one the module refuses: a value it
/// does not know, or a quantized walk on a flat collection (which has
/// none).
fn quantize_problem(index: u32, quantize: u32) -> Option<String> {
    use vexfs_abi::{index, quantize};
    let Some(name) = quantize::NAMES.get(quantize as usize) else {
        let known: Vec<String> = quantize::NAMES
            .iter()
            .enumerate()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        return Some(format!(
            "unknown quantize {quantize} (known: {})",
            known.join(", ")
        ));
    };
    (quantize != quantize::NONE && index != index::HNSW).then(|| {
        format!(
            "quantize {name} on a collection without an HNSW index (only its walk is quantized)"
        )
    })
}

/// The inodes reachable from the root.
fn reachable(m: &Model) -> BTreeSet<u64> {
    let mut seen = BTreeSet::from([ROOT_INO]);
    let mut queue = VecDeque::from([ROOT_INO]);
    while let Some(d) = queue.pop_front() {
        for &ino in m.dirs.get(&d).map(|e| e.values()).into_iter().flatten() {
            if seen.insert(ino) && m.inodes[&ino].attrs.is_dir() {
                queue.push_back(ino);
            }
        }
    }
    seen
}

/// The inode of `/lost+found`, made if missing.
fn lost_found(m: &mut Model) -> u64 {
    if let Some(&ino) = m.dirs[&ROOT_INO].get(b"lost+found".as_slice()) {
        if m.inodes[&ino].attrs.is_dir() {
            return ino;
        }
    }
    let ino = m.next_ino.max(m.inodes.keys().next_back().unwrap() + 1);
    m.next_ino = ino + 1;
    let root = m.inodes[&ROOT_INO].attrs;
    let attrs = InodeAttrs {
        ino,
        mode: S_IFDIR | 0o700,
        nlink: 2,
        atime: root.mtime,
        mtime: root.mtime,
        ctime: root.mtime,
        ..InodeAttrs::default()
    };
    m.inodes.insert(
        ino,
        crate::model::Inode {
            attrs,
            ..Default::default()
        },
    );
    m.dirs.insert(ino, BTreeMap::new());
    m.dirs
        .get_mut(&ROOT_INO)
        .unwrap()
        .insert(b"lost+found".to_vec(), ino);
    ino
}

/// The regular files with a name in the tree of the collection directory
/// `coll`: in it and in the directories below, down to collections nested
/// in it (whose trees are their own), as the module counts a file's names.
fn files_in_tree(m: &Model, coll: u64) -> BTreeSet<u64> {
    let mut files = BTreeSet::new();
    let mut seen = BTreeSet::from([coll]);
    let mut todo = vec![coll];
    while let Some(dir) = todo.pop() {
        let Some(entries) = m.dirs.get(&dir) else {
            continue;
        };
        for &ino in entries.values() {
            let Some(inode) = m.inodes.get(&ino) else {
                continue;
            };
            if inode.attrs.is_reg() {
                files.insert(ino);
            } else if inode.attrs.is_dir() && !m.collections.contains_key(&ino) && seen.insert(ino)
            {
                todo.push(ino);
            }
        }
    }
    files
}
