//! The built `vexctl` binary: completion scripts, examples in `--help`
//! only, and no progress output on a standard error that is not a
//! terminal.

use std::process::{Command, Output, Stdio};

fn vexctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vexctl"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

const SUBCOMMANDS: [&str; 11] = [
    "profile",
    "version",
    "stats",
    "create",
    "info",
    "insert",
    "search",
    "get",
    "delete",
    "attach",
    "completions",
];

#[test]
fn completion_scripts_name_every_subcommand() {
    for (shell, marker) in [
        ("bash", "complete -F _vexctl"),
        ("zsh", "#compdef vexctl"),
        ("fish", "complete -c vexctl"),
    ] {
        let out = vexctl(&["completions", shell]);
        let script = stdout(&out);
        assert!(out.stderr.is_empty(), "{shell}: {out:?}");
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        for flag in ["metric", "ef-construction", "quantize", "flamegraph"] {
            let flag = if shell == "fish" {
                format!("-l {flag}")
            } else {
                format!("--{flag}")
            };
            assert!(script.contains(&flag), "{shell}: no {flag}");
        }
    }
    let out = vexctl(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn the_bash_script_is_bash() {
    let Ok(status) = Command::new("bash").arg("--version").output() else {
        return; // no bash to check with
    };
    assert!(status.status.success());
    let script = stdout(&vexctl(&["completions", "bash"]));
    let check = Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn examples_are_in_long_help_only() {
    for sub in SUBCOMMANDS {
        let long = stdout(&vexctl(&[sub, "--help"]));
        let short = stdout(&vexctl(&[sub, "-h"]));
        assert!(long.contains("\nExamples:\n"), "{sub} --help");
        assert!(long.contains(&format!("    vexctl {sub} ")) || sub == "completions");
        assert!(!short.contains("Examples:"), "{sub} -h");
    }
    assert!(stdout(&vexctl(&["--help"])).contains("Examples:"));
    assert!(stdout(&vexctl(&["help", "search"])).contains("--exact --json"));
}

/// Standard error here is a pipe: a failing insert or search says why in
/// one line, with no progress bar or line before it.
#[test]
fn no_progress_on_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("v.npy");
    std::fs::write(&npy, b"not read: the collection is checked first").unwrap();
    let coll = dir.path().display().to_string();
    let npy = npy.display().to_string();
    for args in [
        vec!["insert", &coll, "--npy", &npy, "--batch", "1"],
        vec!["search", &coll, "--npy", &npy, "-k", "3"],
    ] {
        let out = vexctl(&args);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("vexctl: {coll}: not a VexFS filesystem\n"),
            "{args:?}"
        );
    }
}
