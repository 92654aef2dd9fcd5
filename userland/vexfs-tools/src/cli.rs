//! The command lines of `mkfs.vexfs` and `fsck.vexfs`, with the examples
//! of their `--help`: the binaries parse with them, and `vexfs-man` writes
//! their man pages from them.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use vexfs_format::DEFAULT_BLOCK_SIZE;

/// Make a VexFS filesystem.
///
/// The filesystem takes the whole device (or file). Its root directory
/// belongs to the user running mkfs.vexfs, as with mke2fs.
#[derive(Parser)]
#[command(name = "mkfs.vexfs", version, after_long_help = MKFS_EXAMPLES)]
pub struct MkfsArgs {
    /// Block device or image file.
    pub device: PathBuf,
    /// Make the image file this size first (e.g. 512M, 4G): created if
    /// missing, never shrunk.
    pub size: Option<String>,
    /// Volume label, at most 32 bytes.
    #[arg(short = 'L', long)]
    pub label: Option<String>,
    /// Block size in bytes: 1024, 2048 or 4096.
    #[arg(short = 'b', long = "block-size", default_value_t = DEFAULT_BLOCK_SIZE)]
    pub block_size: u32,
    /// Overwrite an existing filesystem.
    #[arg(short, long)]
    pub force: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Check a VexFS filesystem.
///
/// Reads the superblocks, the checkpoint and the log as a mount does,
/// then checks every structure and cross-reference: link counts,
/// reachability, names, symlinks, file sizes, free space, vector-to-file
/// and row links. Without -n, repairs what it found by writing a new
/// checkpoint (copy-on-write: the old one stays until the new one is
/// complete). Exit status as e2fsck: 0 clean, 1 errors corrected, 4
/// errors left, 8 operational error.
#[derive(Parser)]
#[command(name = "fsck.vexfs", version, after_long_help = FSCK_EXAMPLES)]
pub struct FsckArgs {
    /// Block device or image file (not mounted).
    pub device: PathBuf,
    /// Open read-only and change nothing.
    #[arg(short = 'n')]
    pub no_change: bool,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
    /// Accepted for e2fsck compatibility (repairs are automatic): -p, -a,
    /// -y, -f.
    #[arg(short = 'p', short_alias = 'a', hide = true)]
    pub preen: bool,
    #[arg(short = 'y', hide = true)]
    pub yes: bool,
    #[arg(short = 'f', hide = true)]
    pub force: bool,
}

/// `mkfs.vexfs`'s command line.
pub fn mkfs_command() -> clap::Command {
    MkfsArgs::command()
}

/// `fsck.vexfs`'s command line.
pub fn fsck_command() -> clap::Command {
    FsckArgs::command()
}

// The layout of vexctl's examples (see userland/vexctl/src/cli.rs), which
// vexfs-man turns into the man pages' EXAMPLES sections.

const MKFS_EXAMPLES: &str = "\
Examples:
  Make a filesystem labelled data on a disk:
    mkfs.vexfs -L data /dev/vdb
  Make a 4 GiB image file (sparse) with 1024-byte blocks:
    mkfs.vexfs /var/tmp/vex.img 4G -b 1024
  Replace the filesystem a disk holds (mkfs.vexfs refuses without -f):
    mkfs.vexfs -f /dev/vdb
  The same through mkfs(8), which finds mkfs.vexfs in /sbin or on PATH:
    mkfs -t vexfs -f /dev/vdb";

const FSCK_EXAMPLES: &str = "\
Examples:
  Check an unmounted disk without changing anything:
    fsck.vexfs -n /dev/vdb
  Check an image file and repair what can be repaired, with a JSON report:
    fsck.vexfs --json /var/tmp/vex.img
  Check through fsck(8), which finds fsck.vexfs in /sbin or on PATH:
    fsck -t vexfs /dev/vdb";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_consistent() {
        mkfs_command().debug_assert();
        fsck_command().debug_assert();
    }

    #[test]
    fn examples_parse_and_stay_out_of_short_help() {
        for (mut cmd, name) in [
            (mkfs_command(), "mkfs.vexfs"),
            (fsck_command(), "fsck.vexfs"),
        ] {
            let text = cmd.get_after_long_help().unwrap().to_string();
            assert!(text.starts_with("Examples:\n"));
            for words in text
                .lines()
                .filter_map(|l| l.strip_prefix("    "))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|w| w[0] == name)
            {
                let parsed = if name == "mkfs.vexfs" {
                    MkfsArgs::try_parse_from(&words).err()
                } else {
                    FsckArgs::try_parse_from(&words).err()
                };
                assert!(parsed.is_none(), "{words:?}: {parsed:?}");
            }
            assert!(cmd.render_long_help().to_string().contains("Examples:"));
            assert!(!cmd.render_help().to_string().contains("Examples:"));
        }
    }
}
