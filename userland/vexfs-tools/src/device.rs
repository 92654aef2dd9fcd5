//! A block device or image file, read and written at byte offsets.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// `O_EXCL` on a block device: fails with `EBUSY` while it is mounted.
const O_EXCL: i32 = 0o200;

/// An open device or image.
pub struct Device {
    file: File,
    size: u64,
    path: String,
}

impl Device {
    /// Opens `path`, for writing if `write`. A block device is opened
    /// exclusively, so a mounted one is refused.
    pub fn open(path: &Path, write: bool) -> Result<Self> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        let block = meta.file_type().is_block_device();
        if !block && !meta.file_type().is_file() {
            bail!(
                "{} is neither a block device nor a regular file",
                path.display()
            );
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(write);
        if block {
            opts.custom_flags(O_EXCL);
        }
        let mut file = opts.open(path).with_context(|| {
            if block {
                format!(
                    "cannot open {} exclusively (is it mounted?)",
                    path.display()
                )
            } else {
                format!("cannot open {}", path.display())
            }
        })?;
        let size = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            size,
            path: path.display().to_string(),
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The path it was opened by.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads `buf.len()` bytes at `offset`; past the end is an error.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            bail!(
                "read of {} bytes at {offset} runs past the end of {}",
                buf.len(),
                self.path
            );
        }
        self.file
            .read_exact_at(buf, offset)
            .with_context(|| format!("read error at byte {offset} of {}", self.path))
    }

    /// Writes `buf` at `offset`.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .with_context(|| format!("write error at byte {offset} of {}", self.path))
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("cannot sync {}", self.path))
    }
}

/// Random bytes from the kernel.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut out))
        .context("cannot read /dev/urandom")?;
    Ok(out)
}

/// A random nonzero `u64`.
pub fn random_u64() -> Result<u64> {
    loop {
        let v = u64::from_le_bytes(random()?);
        if v != 0 {
            return Ok(v);
        }
    }
}
