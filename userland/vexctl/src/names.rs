//! Naming file hits: a file's vector has the file's inode number as id, and
//! the kernel answers ids only, so the paths come from walking the
//! collection's tree once and matching inode numbers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Paths, relative to `root`, of the regular files whose inode numbers are
/// in `wanted`.
///
/// The walk is breadth-first with each directory's entries sorted, so a file
/// with several hard links gets its shallowest, then alphabetically first,
/// name. It follows no symlinks, stays on `root`'s filesystem, skips what it
/// cannot read (those hits stay unnamed) and stops once every inode is found.
pub fn resolve(root: &Path, wanted: &HashSet<u64>) -> HashMap<u64, PathBuf> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let Ok(root_meta) = fs::symlink_metadata(root) else {
        return found;
    };
    let mut queue = VecDeque::from([PathBuf::new()]);
    while let Some(rel_dir) = queue.pop_front() {
        let Ok(entries) = fs::read_dir(root.join(&rel_dir)) else {
            continue;
        };
        let mut names: Vec<_> = entries.filter_map(|e| Some(e.ok()?.file_name())).collect();
        names.sort();
        for name in names {
            let rel = rel_dir.join(name);
            let Ok(meta) = fs::symlink_metadata(root.join(&rel)) else {
                continue;
            };
            if meta.dev() != root_meta.dev() {
                continue;
            }
            if meta.is_dir() {
                queue.push_back(rel);
            } else if meta.is_file() && wanted.contains(&meta.ino()) {
                found.entry(meta.ino()).or_insert(rel);
                if found.len() == wanted.len() {
                    return found;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ino(p: &Path) -> u64 {
        fs::symlink_metadata(p).unwrap().ino()
    }

    #[test]
    fn maps_inode_numbers_to_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        for f in ["a.txt", "sub/b.txt", "sub/deeper/c.txt", "unwanted"] {
            fs::write(root.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("sub/link")).unwrap();
        let a = ino(&root.join("a.txt"));
        let b = ino(&root.join("sub/b.txt"));
        let c = ino(&root.join("sub/deeper/c.txt"));
        let absent = u64::MAX;
        let wanted = HashSet::from([a, b, c, absent]);
        let names = resolve(root, &wanted);
        assert_eq!(names.len(), 3);
        assert_eq!(names[&a], Path::new("a.txt"));
        assert_eq!(names[&b], Path::new("sub/b.txt"));
        assert_eq!(names[&c], Path::new("sub/deeper/c.txt"));
        assert!(!names.contains_key(&absent));
    }

    #[test]
    fn hard_links_get_the_shallowest_name_and_dirs_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("a")).unwrap();
        fs::write(root.join("a/deep"), "x").unwrap();
        fs::hard_link(root.join("a/deep"), root.join("z-shallow")).unwrap();
        let f = ino(&root.join("z-shallow"));
        let d = ino(&root.join("a"));
        let names = resolve(root, &HashSet::from([f, d]));
        assert_eq!(names.len(), 1);
        assert_eq!(names[&f], Path::new("z-shallow"));
    }

    #[test]
    fn nothing_wanted_means_no_walk_and_missing_root_means_no_names() {
        assert!(resolve(Path::new("/nonexistent"), &HashSet::from([1])).is_empty());
        assert!(resolve(Path::new("/"), &HashSet::new()).is_empty());
    }
}
