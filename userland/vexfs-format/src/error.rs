// SPDX-License-Identifier: GPL-2.0

//! What can be wrong with an image, in words a kernel log line, `fsck.vexfs`
//! and a test can all use.

use core::fmt;

/// A reason a structure read from a device is refused.
///
/// Each is a property of the bytes, never of the machine: the module turns
/// every one into `EUCLEAN` (a structure that is ours but damaged) or
/// `EINVAL` (not a VexFS image, or one this code does not understand), as
/// [`FormatError::is_foreign`] tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The magic number is not VexFS's.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedVersion(u32),
    /// Incompatible feature flags this code does not know.
    UnsupportedFeatures(u32),
    /// The stored checksum does not match the bytes.
    BadChecksum,
    /// A block size other than 1024, 2048 or 4096.
    BadBlockSize(u32),
    /// A geometry field out of range: regions overlap, or lie beyond the
    /// device, or are too small.
    BadGeometry(&'static str),
    /// The image is shorter than its superblock says.
    Truncated,
    /// A field that must be zero (reserved, padding) is not.
    NonZeroReserved,
    /// A buffer ends inside a structure.
    ShortBuffer,
    /// A record type this code does not know.
    UnknownRecord(u16),
    /// A record whose length does not fit its type or its frame.
    BadRecordLength,
    /// A name that is empty, too long, `.`, `..`, or holds `/` or NUL.
    BadName,
    /// A field value out of its range (a mode, a dimension, a count).
    BadValue(&'static str),
    /// A frame of another kind, log epoch or sequence than expected.
    FrameMismatch,
}

impl FormatError {
    /// Whether the bytes are not (or not yet) a VexFS image: the module
    /// refuses those with `EINVAL`, and damaged VexFS images with `EUCLEAN`.
    pub fn is_foreign(&self) -> bool {
        matches!(
            self,
            Self::BadMagic | Self::UnsupportedVersion(_) | Self::UnsupportedFeatures(_)
        )
    }

    /// A short description, without the values a variant carries.
    pub fn message(&self) -> &'static str {
        match self {
            Self::BadMagic => "bad magic number: not a VexFS image",
            Self::UnsupportedVersion(_) => "unsupported format version",
            Self::UnsupportedFeatures(_) => "unsupported incompatible features",
            Self::BadChecksum => "checksum mismatch",
            Self::BadBlockSize(_) => "bad block size",
            Self::BadGeometry(what) => what,
            Self::Truncated => "device smaller than the superblock says",
            Self::NonZeroReserved => "reserved field not zero",
            Self::ShortBuffer => "structure runs past its buffer",
            Self::UnknownRecord(_) => "unknown record type",
            Self::BadRecordLength => "record length does not fit",
            Self::BadName => "invalid name",
            Self::BadValue(what) => what,
            Self::FrameMismatch => "frame out of sequence",
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => write!(f, "{} {v}", self.message()),
            Self::UnsupportedFeatures(v) => write!(f, "{} {v:#x}", self.message()),
            Self::BadBlockSize(v) => write!(f, "{} {v}", self.message()),
            Self::UnknownRecord(v) => write!(f, "{} {v}", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

/// A result with a [`FormatError`].
pub type Result<T> = core::result::Result<T, FormatError>;

/// Little-endian field access over a byte slice, bounds-checked.
pub(crate) struct Le<'a>(pub(crate) &'a [u8]);

impl Le<'_> {
    pub(crate) fn u16(&self, at: usize) -> Result<u16> {
        self.array(at).map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&self, at: usize) -> Result<u32> {
        self.array(at).map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&self, at: usize) -> Result<u64> {
        self.array(at).map(u64::from_le_bytes)
    }
    pub(crate) fn i64(&self, at: usize) -> Result<i64> {
        self.array(at).map(i64::from_le_bytes)
    }
    pub(crate) fn array<const N: usize>(&self, at: usize) -> Result<[u8; N]> {
        let end = at.checked_add(N).ok_or(FormatError::ShortBuffer)?;
        let bytes = self.0.get(at..end).ok_or(FormatError::ShortBuffer)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Writes little-endian fields into a buffer the caller sized.
pub(crate) struct LeMut<'a>(pub(crate) &'a mut [u8]);

impl LeMut<'_> {
    pub(crate) fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }
    pub(crate) fn u16(&mut self, at: usize, v: u16) {
        self.put(at, &v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, at: usize, v: u32) {
        self.put(at, &v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, at: usize, v: u64) {
        self.put(at, &v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, at: usize, v: i64) {
        self.put(at, &v.to_le_bytes());
    }
}
