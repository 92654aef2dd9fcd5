//! `vexfs-man DIR` writes a page per command and subcommand, each a roff
//! page with the sections a reader looks for.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

#[test]
fn every_command_has_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vexfs-man"))
        .arg(dir.path().join("man"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");

    let mut want: BTreeSet<String> = ["vexctl.1", "mkfs.vexfs.8", "fsck.vexfs.8"]
        .map(String::from)
        .into();
    let subcommands: Vec<String> = vexctl::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in &subcommands {
        want.insert(format!("vexctl-{sub}.1"));
    }
    for sub in ["create", "insert", "search", "profile", "completions"] {
        assert!(want.contains(&format!("vexctl-{sub}.1")), "{sub}");
    }
    let got: BTreeSet<String> = fs::read_dir(dir.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(got, want, "no help page, one page per subcommand");

    for file in &got {
        let text = fs::read_to_string(dir.path().join("man").join(file)).unwrap();
        let (name, section) = file.rsplit_once('.').unwrap();
        let th = format!(
            ".TH {name} {section} 2023-11-14 \"VexFS {}\" VexFS\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&th), "{file}: no {th:?} in\n{text}");
        assert_eq!(text.matches(".TH ").count(), 1, "{file}");
        assert_eq!(text.matches(".ds Aq").count(), 2, "{file}: one preamble");
        for sh in [
            ".SH NAME\n",
            ".SH SYNOPSIS\n",
            ".SH DESCRIPTION\n",
            ".SH OPTIONS\n",
            ".SH EXAMPLES\n",
            ".SH \"SEE ALSO\"\n",
        ] {
            assert!(text.contains(sh), "{file}: no {sh:?}");
        }
        // Every example's commands are set verbatim in a no-fill block.
        let examples = text.split(".SH EXAMPLES\n").nth(1).unwrap();
        assert!(examples.contains("\n.nf\n"), "{file}");
    }

    let vexctl = fs::read_to_string(dir.path().join("man/vexctl.1")).unwrap();
    for sub in &subcommands {
        assert!(vexctl.contains(&format!("vexctl\\-{sub}(1)")), "{sub}");
    }
    assert!(!vexctl.contains("vexctl\\-help"));
    let create = fs::read_to_string(dir.path().join("man/vexctl-create.1")).unwrap();
    assert!(create.contains("vexctl create /mnt/vex/docs \\-\\-dim 384 \\-\\-metric cosine\n"));
    assert!(create.contains("\\fB\\-\\-ef\\-construction\\fR"));
    assert!(create.contains("\\fB\\-\\-quantize\\fR"));
    assert!(create.contains("\\-\\-index hnsw \\-\\-quantize sq8\n"));
    let mkfs = fs::read_to_string(dir.path().join("man/mkfs.vexfs.8")).unwrap();
    assert!(mkfs.contains("mkfs.vexfs \\-L data /dev/vdb\n"));
    let fsck = fs::read_to_string(dir.path().join("man/fsck.vexfs.8")).unwrap();
    assert!(fsck.contains("e2fsck"), "the long description");
}

#[test]
fn a_directory_is_required() {
    let out = Command::new(env!("CARGO_BIN_EXE_vexfs-man"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "usage: vexfs-man DIR\n"
    );
}
