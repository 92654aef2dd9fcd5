//! `mkfs.vexfs`: make a VexFS filesystem on a block device or image file.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use nix::unistd::{getgid, getuid};
use vexfs_format::{FsState, Layout, SuperBlock, Time, LABEL_LEN, SUPER_SIZE};
use vexfs_tools::cli::MkfsArgs;
use vexfs_tools::device::{random, random_u64, Device};
use vexfs_tools::image::{write_checkpoint, write_slot};
use vexfs_tools::model::Model;

fn parse_size(s: &str) -> Result<u64> {
    let (num, mult) = match s.as_bytes().last().map(|c| c.to_ascii_uppercase()) {
        Some(b'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G') => (&s[..s.len() - 1], 1 << 30),
        Some(b'T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .with_context(|| format!("invalid size {s:?} (a number with an optional K, M, G or T)"))
}

/// The filesystem already on the device, if it has a known signature.
fn existing(dev: &Device) -> Result<Option<&'static str>> {
    let mut head = vec![0u8; 65_608.min(dev.size() as usize)];
    dev.read_at(0, &mut head)?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    Ok(
        if at(0, &vexfs_format::SUPER_MAGIC) || at(4096, &vexfs_format::SUPER_MAGIC) {
            Some("VexFS")
        } else if at(1080, &[0x53, 0xef]) {
            Some("ext2/3/4")
        } else if at(0, b"XFSB") {
            Some("XFS")
        } else if at(65_600, b"_BHRfS_M") {
            Some("btrfs")
        } else {
            None
        },
    )
}

fn run(args: MkfsArgs) -> Result<()> {
    let label = args.label.unwrap_or_default();
    if label.len() > LABEL_LEN || label.contains('\0') {
        bail!("label {label:?} is longer than {LABEL_LEN} bytes or holds a NUL");
    }
    if let Some(size) = &args.size {
        let size = parse_size(size)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&args.device)
            .with_context(|| format!("cannot create {}", args.device.display()))?;
        if f.metadata()?.len() < size {
            f.set_len(size)
                .with_context(|| format!("cannot size {}", args.device.display()))?;
        }
    }
    let dev = Device::open(&args.device, true)?;
    let layout = Layout::for_device(dev.size(), args.block_size)
        .map_err(|e| anyhow::anyhow!("{}: {e} ({} bytes)", dev.path(), dev.size()))?;
    if !args.force {
        if let Some(fs) = existing(&dev)? {
            bail!(
                "{} contains a {fs} filesystem; use -f to overwrite it",
                dev.path()
            );
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let now = Time {
        sec: now.as_secs() as i64,
        nsec: now.subsec_nanos(),
    };
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    let model = Model::new(uid, gid, now);
    let payloads = model.checkpoint();
    let ckpt_nonce = random_u64()?;
    let mut log_nonce = random_u64()?;
    while log_nonce == ckpt_nonce {
        log_nonce = random_u64()?;
    }
    // No stale superblock or frame may survive: zero both slots and the
    // log's first block before anything else.
    dev.write_at(
        0,
        &vec![0u8; (layout.offset(layout.log_start) + layout.block_size as u64) as usize],
    )?;
    let blocks = write_checkpoint(&dev, &layout, layout.area_start[0], ckpt_nonce, &payloads)?;
    dev.sync()?;
    let mut lbytes = [0u8; LABEL_LEN];
    lbytes[..label.len()].copy_from_slice(label.as_bytes());
    let mut sb = SuperBlock {
        layout,
        compat: 0,
        incompat: 0,
        ro_compat: 0,
        state: FsState::Clean,
        uuid: random()?,
        label: lbytes,
        generation: 0,
        ckpt_area: 0,
        ckpt_blocks: blocks,
        ckpt_nonce,
        ckpt_seq: 0,
        log_nonce,
        next_ino: model.next_ino,
        mkfs_time: now.sec,
        write_time: now.sec,
        inodes: model.inodes.len() as u64,
        data_bytes: 0,
    };
    for slot in 0..2 {
        sb.generation = slot as u64;
        write_slot(&dev, slot, &sb)?;
    }
    dev.sync()?;
    debug_assert!(SUPER_SIZE <= layout.block_size as usize);
    if !args.quiet {
        let uuid: String = sb.uuid.iter().map(|b| format!("{b:02x}")).collect();
        let mib = |blocks: u64| (blocks * layout.block_size as u64) as f64 / (1 << 20) as f64;
        println!("Creating a VexFS filesystem on {}", dev.path());
        println!(
            "  size      {} bytes, {} blocks of {}",
            dev.size(),
            layout.block_count,
            layout.block_size
        );
        println!("  label     {label:?}");
        println!(
            "  UUID      {}-{}-{}-{}-{}",
            &uuid[..8],
            &uuid[8..12],
            &uuid[12..16],
            &uuid[16..20],
            &uuid[20..]
        );
        println!("  log       {:.1} MiB", mib(layout.log_blocks));
        println!(
            "  capacity  {:.1} MiB (each of the two checkpoint areas)",
            mib(layout.area_blocks)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(MkfsArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkfs.vexfs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
