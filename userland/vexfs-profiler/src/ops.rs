//! The operation classes the profiler knows, in the order of `enum vexfs_op`
//! in `ebpf/vexfs_profile.h`, with the probe point (an unmangled function of
//! vexfs.ko) each is measured at and, for file operations, the tracepoint
//! vexfs.ko fires as one returns.

use std::fmt;
use std::str::FromStr;

/// One operation class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Op(usize);

/// Short name, probe function and "returned" tracepoint (`kmod/vexfs_trace.h`)
/// of each class, by index.
const TABLE: [(&str, &str, Option<&str>); 10] = [
    ("lookup", "vexfs_lookup", Some("vexfs_lookup_done")),
    ("create", "vexfs_create", Some("vexfs_create_done")),
    ("unlink", "vexfs_unlink", Some("vexfs_unlink_done")),
    ("read", "vexfs_read_iter", Some("vexfs_read_done")),
    ("write", "vexfs_write_iter", Some("vexfs_write_done")),
    ("fsync", "vexfs_fsync", Some("vexfs_fsync_done")),
    ("insert", "vexfs_ioctl_insert", None),
    ("delete", "vexfs_ioctl_delete", None),
    ("search", "vexfs_ioctl_search", None),
    ("simd", "vexfs_simd_batch", None),
];

/// Number of operation classes (`VEXFS_NR_OPS`).
pub const NR_OPS: usize = TABLE.len();

impl Op {
    /// Every class, in index order.
    pub fn all() -> impl Iterator<Item = Op> {
        (0..NR_OPS).map(Op)
    }

    /// The class with BPF index `index`, if there is one.
    pub fn from_index(index: usize) -> Option<Op> {
        (index < NR_OPS).then_some(Op(index))
    }

    /// Index in the BPF arrays.
    pub fn index(self) -> usize {
        self.0
    }

    /// Short name, as on the command line.
    pub fn name(self) -> &'static str {
        TABLE[self.0].0
    }

    /// Kernel function the probes attach to.
    pub fn probe_symbol(self) -> &'static str {
        TABLE[self.0].1
    }

    /// The tracepoint fired as an operation of this class returns, with its
    /// duration (file operations only).
    pub fn tracepoint(self) -> Option<&'static str> {
        TABLE[self.0].2
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An operation name that is not one of [`Op::all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOp(pub String);

impl fmt::Display for UnknownOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Op::all().map(Op::name).collect();
        write!(
            f,
            "unknown operation '{}' (known: {})",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownOp {}

impl FromStr for Op {
    type Err = UnknownOp;

    fn from_str(s: &str) -> Result<Op, UnknownOp> {
        Op::all()
            .find(|op| op.name() == s)
            .ok_or_else(|| UnknownOp(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for op in Op::all() {
            assert_eq!(op.name().parse::<Op>(), Ok(op));
            assert!(op.probe_symbol().starts_with("vexfs_"));
            if let Some(tp) = op.tracepoint() {
                assert_eq!(tp, format!("vexfs_{}_done", op.name()));
            }
        }
        let err = "serch".parse::<Op>().unwrap_err();
        assert!(err.to_string().contains("unknown operation 'serch'"));
        assert!(err.to_string().contains("search"));
        assert_eq!(Op::from_index(NR_OPS), None);
    }
}
