//! `fsck.vexfs`: check a VexFS filesystem and repair what can be repaired,
//! with e2fsck's exit codes.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use clap::Parser;
use serde::Serialize;
use vexfs_format::{FsState, SuperBlock};
use vexfs_tools::check::{check, Problem, Report, Summary};
use vexfs_tools::cli::FsckArgs;
use vexfs_tools::device::{random_u64, Device};
use vexfs_tools::image::{write_checkpoint, write_slot};

/// No errors.
const EXIT_CLEAN: u8 = 0;
/// Errors were corrected.
const EXIT_CORRECTED: u8 = 1;
/// Errors were left uncorrected.
const EXIT_UNCORRECTED: u8 = 4;
/// The check could not be made (cannot open, read or recognise).
const EXIT_OPERATIONAL: u8 = 8;

#[derive(Serialize)]
struct JsonReport<'a> {
    device: String,
    status: &'static str,
    exit_code: u8,
    problems: &'a [Problem],
    summary: Option<&'a Summary>,
    error: Option<String>,
}

/// Writes the repaired filesystem as a new checkpoint, then both
/// superblock slots.
fn repair(dev: &Device, report: &Report) -> Result<()> {
    let (Some((_, old)), Some(model)) = (&report.sb, &report.model) else {
        bail!("nothing to repair from");
    };
    let payloads = model.checkpoint();
    let area = 1 - old.ckpt_area;
    let need: u64 = payloads
        .iter()
        .map(|p| vexfs_format::frame_blocks(p.len() as u64, old.layout.block_size))
        .sum();
    if need > old.layout.area_blocks {
        bail!(
            "the repaired filesystem needs {need} blocks, a checkpoint area has {}",
            old.layout.area_blocks
        );
    }
    let nonce = random_u64()?;
    let blocks = write_checkpoint(
        dev,
        &old.layout,
        old.layout.area_start[area as usize],
        nonce,
        &payloads,
    )?;
    dev.sync()?;
    let mut log_nonce = random_u64()?;
    while log_nonce == nonce {
        log_nonce = random_u64()?;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut sb = SuperBlock {
        state: FsState::Clean,
        ckpt_area: area,
        ckpt_blocks: blocks,
        ckpt_nonce: nonce,
        ckpt_seq: old.ckpt_seq + 1,
        log_nonce,
        next_ino: model.next_ino,
        write_time: now,
        inodes: model.inodes.len() as u64,
        data_bytes: model.data_bytes(),
        ..old.clone()
    };
    for step in 1..=2 {
        sb.generation = old.generation + step;
        write_slot(dev, sb.next_slot() ^ 1, &sb)?;
        dev.sync()?;
    }
    Ok(())
}

fn run(args: &FsckArgs) -> (u8, Option<Report>, Option<String>) {
    let dev = match Device::open(&args.device, !args.no_change) {
        Ok(d) => d,
        Err(e) => return (EXIT_OPERATIONAL, None, Some(format!("{e:#}"))),
    };
    let report = match check(&dev) {
        Ok(r) => r,
        Err(e) => return (EXIT_OPERATIONAL, None, Some(format!("{e:#}"))),
    };
    if let Some(fatal) = &report.fatal {
        let code = if report.sb.is_none() {
            EXIT_OPERATIONAL
        } else {
            EXIT_UNCORRECTED
        };
        let fatal = fatal.clone();
        return (code, Some(report), Some(fatal));
    }
    if report.problems.is_empty() {
        return (EXIT_CLEAN, Some(report), None);
    }
    if args.no_change || !report.all_fixable() {
        return (EXIT_UNCORRECTED, Some(report), None);
    }
    match repair(&dev, &report) {
        Ok(()) => (EXIT_CORRECTED, Some(report), None),
        Err(e) => (
            EXIT_UNCORRECTED,
            Some(report),
            Some(format!("repair failed: {e:#}")),
        ),
    }
}

fn main() -> ExitCode {
    let args = FsckArgs::parse();
    let (code, report, error) = run(&args);
    let status = match code {
        EXIT_CLEAN => "clean",
        EXIT_CORRECTED => "corrected",
        EXIT_UNCORRECTED => "errors",
        _ => "failed",
    };
    let device = args.device.display().to_string();
    if args.json {
        let out = JsonReport {
            device,
            status,
            exit_code: code,
            problems: report.as_ref().map_or(&[], |r| &r.problems),
            summary: report.as_ref().map(|r| &r.summary),
            error,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("a report serialises")
        );
        return ExitCode::from(code);
    }
    if let Some(r) = &report {
        for p in &r.problems {
            let fix = if p.fixable && code == EXIT_CORRECTED {
                " (fixed)"
            } else {
                ""
            };
            println!("{}: {}{fix}", p.area, p.message);
        }
    }
    if let Some(e) = &error {
        eprintln!("fsck.vexfs: {device}: {e}");
    }
    if let Some(Report { summary: s, .. }) = &report {
        if error.is_none() || code != EXIT_OPERATIONAL {
            println!(
                "{device}: {status}, {} files, {} directories, {} symlinks, {} other, {} data bytes, \
                 {} collections with {} rows; checkpoint {}/{} blocks, log {} commits in {}/{} blocks",
                s.files,
                s.directories,
                s.symlinks,
                s.other,
                s.data_bytes,
                s.collections,
                s.rows,
                s.checkpoint_blocks,
                s.area_blocks,
                s.log_commits,
                s.log_blocks_used,
                s.log_blocks
            );
        }
    }
    ExitCode::from(code)
}
