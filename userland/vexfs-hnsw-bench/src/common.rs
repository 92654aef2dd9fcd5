// SPDX-License-Identifier: GPL-2.0
//! What the benchmark binaries share: the thread's CPU clock and the
//! cache directory (`#[path]`-included by each).

use std::path::PathBuf;

/// `struct timespec` of x86-64 Linux.
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Seconds of CPU time this thread has used (CLOCK_THREAD_CPUTIME_ID).
#[allow(dead_code)]
pub fn thread_cpu_s() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let r = unsafe { clock_gettime(3, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// `$VEXFS_CACHE`, or `~/.cache/vexfs`: the GloVe data and the venv.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("VEXFS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/vexfs"))
}
