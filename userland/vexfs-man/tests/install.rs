//! scripts/install into a temporary DESTDIR: every file goes where the
//! system looks for it, depmod is run for the module's kernel, and
//! `--uninstall` leaves the DESTDIR as it found it (empty).
//!
//! The script runs from a copy of scripts/ in a temporary tree holding
//! stand-ins for what `make module userland` builds, and the man pages
//! vexfs-man writes.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file and symlink under `root`, relative to it.
fn files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel);
            }
        }
    }
    out
}

struct Tree {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    dest: PathBuf,
    depmod_log: PathBuf,
    depmod: PathBuf,
}

/// A source tree with built stand-ins and an empty DESTDIR.
fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for script in ["install", "env.sh"] {
        let to = src.join("scripts").join(script);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(repo().join("scripts").join(script), &to).unwrap();
    }
    for bin in ["vexctl", "mkfs.vexfs", "fsck.vexfs"] {
        write(
            &src.join("target/release").join(bin),
            "#!/bin/sh\necho built\n",
            0o755,
        );
    }
    write(&src.join("kmod/vexfs.ko"), "module", 0o644);
    let comp = src.join("target/completions");
    for f in ["vexctl.bash", "_vexctl", "vexctl.fish"] {
        write(&comp.join(f), &format!("# {f}\n"), 0o644);
    }
    vexfs_man::write_to(&src.join("target/man"), "2023-11-14").unwrap();
    // A depmod that logs its arguments and writes an index as depmod does.
    let depmod_log = tmp.path().join("depmod.log");
    let depmod = tmp.path().join("depmod");
    write(
        &depmod,
        &format!(
            "#!/bin/sh\necho \"$@\" >>{log}\n[ \"$1\" = -b ] && echo x >\"$2/lib/modules/$4/modules.dep\"\nexit 0\n",
            log = depmod_log.display()
        ),
        0o755,
    );
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    Tree {
        _tmp: tmp,
        src,
        dest,
        depmod_log,
        depmod,
    }
}

impl Tree {
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new("bash")
            .arg(self.src.join("scripts/install"))
            .args(args)
            .env("DESTDIR", &self.dest)
            .env("PREFIX", "/usr/local")
            .env("KVER", "7.3.4")
            .env("DEPMOD", &self.depmod)
            .env("VEXFS_CACHE", self.src.join("no-cache"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "install {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn depmods(&self) -> String {
        fs::read_to_string(&self.depmod_log).unwrap_or_default()
    }
}

#[test]
fn install_puts_everything_in_place_and_uninstall_takes_it_all_away() {
    let t = tree();
    t.run(&[], &[]);
    let got = files(&t.dest);
    let pages: Vec<String> = fs::read_dir(t.src.join("target/man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(pages.len() > 10);
    let mut want: BTreeSet<String> = [
        "usr/local/bin/vexctl",
        "usr/local/sbin/mkfs.vexfs",
        "usr/local/sbin/fsck.vexfs",
        "usr/local/share/bash-completion/completions/vexctl",
        "usr/local/share/zsh/site-functions/_vexctl",
        "usr/local/share/fish/vendor_completions.d/vexctl.fish",
        "usr/local/share/vexfs/install-manifest",
        "lib/modules/7.3.4/extra/vexfs.ko",
        "lib/modules/7.3.4/modules.dep",
    ]
    .map(String::from)
    .into();
    for p in &pages {
        let section = p.rsplit('.').next().unwrap();
        want.insert(format!("usr/local/share/man/man{section}/{p}"));
    }
    assert_eq!(got, want);
    assert!(want.contains("usr/local/share/man/man1/vexctl-create.1"));
    assert!(want.contains("usr/local/share/man/man8/mkfs.vexfs.8"));

    let mode = |p: &str| fs::metadata(t.dest.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("usr/local/bin/vexctl"), 0o755);
    assert_eq!(mode("usr/local/sbin/fsck.vexfs"), 0o755);
    assert_eq!(mode("usr/local/share/man/man1/vexctl.1"), 0o644);
    assert_eq!(mode("lib/modules/7.3.4/extra/vexfs.ko"), 0o644);
    assert_eq!(
        fs::read_to_string(t.dest.join("usr/local/share/zsh/site-functions/_vexctl")).unwrap(),
        "# _vexctl\n"
    );
    assert_eq!(t.depmods(), format!("-b {} -a 7.3.4\n", t.dest.display()));

    // Installing again replaces the install, listed once.
    t.run(&[], &[]);
    assert_eq!(files(&t.dest), want);
    let manifest =
        fs::read_to_string(t.dest.join("usr/local/share/vexfs/install-manifest")).unwrap();
    assert_eq!(manifest.matches("f /usr/local/bin/vexctl\n").count(), 1);
    assert!(manifest.starts_with("d /usr\n"), "{manifest}");
    assert!(manifest.contains("k 7.3.4\n"));

    // Uninstall: nothing left, not even the directories install made or
    // the depmod index of the module tree it made.
    t.run(&["--uninstall"], &[]);
    assert_eq!(
        fs::read_dir(&t.dest).unwrap().count(),
        0,
        "{:?}",
        files(&t.dest)
    );
}

#[test]
fn uninstall_leaves_what_was_there_before() {
    let t = tree();
    // A kernel's module tree and a man directory with a page of its own.
    write(&t.dest.join("lib/modules/7.3.4/kernel/fs/x.ko"), "x", 0o644);
    write(&t.dest.join("usr/local/share/man/man1/other.1"), "x", 0o644);
    let before = files(&t.dest);
    t.run(&[], &[]);
    t.run(&["--uninstall"], &[]);
    // depmod ran again for the kernel whose tree keeps other modules.
    assert_eq!(
        t.depmods(),
        format!("-b {0} -a 7.3.4\n-b {0} -a 7.3.4\n", t.dest.display())
    );
    let mut after = files(&t.dest);
    assert!(after.remove("lib/modules/7.3.4/modules.dep"), "depmod's");
    assert_eq!(after, before);
    assert!(!t.dest.join("usr/local/share/vexfs").exists());
    assert!(!t.dest.join("lib/modules/7.3.4/extra").exists());
    assert!(!t.dest.join("usr/local/share/man/man8").exists());
}

#[test]
fn without_depmod_a_staged_install_skips_it() {
    let t = tree();
    let out = t.run(&[], &[("DEPMOD", "")]);
    assert_eq!(t.depmods(), "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running depmod"));
    t.run(&["--uninstall"], &[("DEPMOD", "")]);
    assert_eq!(fs::read_dir(&t.dest).unwrap().count(), 0);
}

#[test]
fn refusals() {
    let t = tree();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new("bash")
            .arg(t.src.join("scripts/install"))
            .args(args)
            .env("DESTDIR", &t.dest)
            .env("KVER", "7.3.4")
            .env("VEXFS_CACHE", t.src.join("no-cache"))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let err = |o: Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(err(run(&["--uninstall"], &[])).contains("nothing to uninstall"));
    assert!(err(run(&[], &[("PREFIX", "usr")])).contains("absolute"));
    assert!(err(run(&[], &[("KVER", "../x")])).contains("not a kernel release"));
    assert!(err(run(&[], &[("KVER", "")])).contains("no built kernel"));
    assert!(err(run(&["--bogus"], &[])).contains("usage"));
    fs::remove_file(t.src.join("kmod/vexfs.ko")).unwrap();
    assert!(err(run(&[], &[])).contains("run make module userland"));
    assert_eq!(fs::read_dir(&t.dest).unwrap().count(), 0);
}
