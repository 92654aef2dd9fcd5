//! Compiles `ebpf/vexfs_profile.bpf.c` (CO-RE) into a libbpf skeleton.
//!
//! `vmlinux.h` is generated with bpftool from the BTF of the kernel VexFS is
//! built against (`$VEXFS_CACHE/kernel/current/vmlinux`), or from
//! `$VEXFS_BTF`, or else from the running kernel's `/sys/kernel/btf/vmlinux`:
//! CO-RE relocations make the object load on any kernel with BTF.

use std::env;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libbpf_cargo::SkeletonBuilder;

fn btf_source() -> PathBuf {
    println!("cargo:rerun-if-env-changed=VEXFS_BTF");
    println!("cargo:rerun-if-env-changed=VEXFS_CACHE");
    if let Some(p) = env::var_os("VEXFS_BTF") {
        return p.into();
    }
    let cache = env::var_os("VEXFS_CACHE")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cache/vexfs")));
    if let Some(vmlinux) = cache.map(|c| c.join("kernel/current/vmlinux")) {
        if vmlinux.exists() {
            return vmlinux;
        }
    }
    "/sys/kernel/btf/vmlinux".into()
}

fn tool(names: &[&str]) -> PathBuf {
    let path = env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .collect();
    for name in names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    names[0].into()
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let ebpf = manifest.join("../../ebpf");
    let src = ebpf.join("vexfs_profile.bpf.c");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    let btf = btf_source();
    println!("cargo:rerun-if-changed={}", btf.display());
    println!("cargo:rerun-if-changed={}", src.display());
    println!(
        "cargo:rerun-if-changed={}",
        ebpf.join("vexfs_profile.h").display()
    );

    let bpftool = tool(&["bpftool"]);
    let header = out.join("vmlinux.h");
    let status = Command::new(&bpftool)
        .args(["btf", "dump", "file"])
        .arg(&btf)
        .args(["format", "c"])
        .stdout(File::create(&header).expect("create vmlinux.h"))
        .stderr(Stdio::inherit())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {} (install bpftool): {e}", bpftool.display()));
    assert!(
        status.success(),
        "bpftool could not dump BTF of {}",
        btf.display()
    );

    SkeletonBuilder::new()
        .source(&src)
        .clang(tool(&["clang-19", "clang"]))
        .clang_args([
            "-I".as_ref(),
            out.as_os_str(),
            "-I".as_ref(),
            ebpf.as_os_str(),
            "-Wall".as_ref(),
        ])
        .build_and_generate(out.join("vexfs_profile.skel.rs"))
        .expect("building ebpf/vexfs_profile.bpf.c");
}
