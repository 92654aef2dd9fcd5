//! How the profiler reaches VexFS's operations: raw tracepoint programs on
//! the events vexfs.ko fires as file operations return, fsession programs
//! on BPF trampolines where vexfs.ko's entry points are C functions with
//! BTF, or kprobe/kretprobe pairs otherwise.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::Mutex;

use libbpf_rs::libbpf_sys;
use libbpf_rs::PrintLevel;

use crate::ops::Op;

/// Environment variable that picks the mechanism (`auto`, `fsession` or
/// `kprobe`) when the caller does not.
pub const PROBES_ENV: &str = "VEXFS_PROFILE_PROBES";

/// The mechanism asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeChoice {
    /// Raw tracepoints for file operations where vexfs.ko has them and no
    /// stacks are sampled, fsession for the rest; kprobes if fsession
    /// cannot attach.
    #[default]
    Auto,
    /// fsession for every class (no tracepoints), or an error.
    Fsession,
    /// kprobes even where fsession would work.
    Kprobe,
}

impl ProbeChoice {
    /// The choice named by [`PROBES_ENV`], `Auto` when it is unset or empty.
    pub fn from_env() -> Result<ProbeChoice, String> {
        match std::env::var(PROBES_ENV) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("{PROBES_ENV}: {e}")),
            _ => Ok(ProbeChoice::Auto),
        }
    }
}

impl FromStr for ProbeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<ProbeChoice, String> {
        match s {
            "auto" => Ok(ProbeChoice::Auto),
            "fsession" => Ok(ProbeChoice::Fsession),
            "kprobe" => Ok(ProbeChoice::Kprobe),
            _ => Err(format!(
                "unknown probe mechanism '{s}' (use auto, fsession or kprobe)"
            )),
        }
    }
}

impl fmt::Display for ProbeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeChoice::Auto => "auto",
            ProbeChoice::Fsession => "fsession",
            ProbeChoice::Kprobe => "kprobe",
        })
    }
}

/// The mechanism a running profiler uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// BPF programs without kprobes: a raw tracepoint program on the
    /// "returned" event of each class of `tracepoints` (one run per
    /// operation), one fsession program, run by a BPF trampoline at the
    /// function's entry and return, on the probe point of each class of
    /// `sessions`.
    Bpf {
        tracepoints: Vec<Op>,
        sessions: Vec<Op>,
    },
    /// A kprobe and a kretprobe per probe point; `reason` says why not
    /// fsession.
    Kprobe { reason: String },
}

impl Mechanism {
    /// Short name, as in `--json`: `"raw_tp"`, `"fsession"`,
    /// `"raw_tp+fsession"` or `"kprobe"`.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Bpf {
                tracepoints,
                sessions,
            } => match (tracepoints.is_empty(), sessions.is_empty()) {
                (false, true) => "raw_tp",
                (false, false) => "raw_tp+fsession",
                (true, _) => "fsession",
            },
            Mechanism::Kprobe { .. } => "kprobe",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |ops: &[Op]| ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(",");
        match self {
            Mechanism::Bpf {
                tracepoints,
                sessions,
            } => {
                f.write_str(self.name())?;
                let mut parts = Vec::new();
                if !tracepoints.is_empty() {
                    parts.push(format!(
                        "raw tracepoints vexfs:vexfs_<op>_done for {}",
                        names(tracepoints)
                    ));
                }
                if !sessions.is_empty() {
                    parts.push(format!(
                        "BPF trampolines on vexfs.ko's C entry points for {}",
                        names(sessions)
                    ));
                }
                write!(f, " ({})", parts.join("; "))
            }
            Mechanism::Kprobe { reason } => write!(f, "kprobe/kretprobe ({reason})"),
        }
    }
}

/// Splits `ops` between raw tracepoints and fsession: a class with a
/// "returned" event that `has_tracepoint` finds goes to the tracepoint,
/// unless stacks are sampled (the sampler needs every operation's entry,
/// which only a trampoline sees) or `choice` asks for fsession throughout.
pub fn split_tracepoints(
    ops: &[Op],
    choice: ProbeChoice,
    sampling: bool,
    has_tracepoint: &dyn Fn(&str) -> bool,
) -> (Vec<Op>, Vec<Op>) {
    ops.iter().partition(|op| {
        choice == ProbeChoice::Auto && !sampling && op.tracepoint().is_some_and(has_tracepoint)
    })
}

/// Bit mask of the classes whose fsession program keeps a per-task frame
/// (`frame_ops` in the BPF program): every class when sampling stacks (the
/// sampler needs to know the task is inside VexFS, and in which outermost
/// operation); otherwise only insert and search when simd is selected, for
/// the SIMD batches they run (the batch deepens their stack figure and,
/// under a mount filter, counts only inside a counted one).
pub fn frame_ops(ops: &[Op], sampling: bool) -> u32 {
    let has = |name: &str| ops.iter().any(|o| o.name() == name);
    ops.iter()
        .filter(|op| sampling || (has("simd") && matches!(op.name(), "insert" | "search")))
        .fold(0, |mask, op| mask | 1 << op.index())
}

/// Why fsession cannot attach to `ops`, given whether the module's BTF is
/// there (`None`: it is not) and which FUNC entries it has.
pub fn fsession_unavailable(
    module_btf: Option<&dyn Fn(&str) -> bool>,
    ops: &[Op],
) -> Option<String> {
    let Some(has_func) = module_btf else {
        return Some(
            "no /sys/kernel/btf/vexfs: the kernel lacks CONFIG_DEBUG_INFO_BTF_MODULES \
             or vexfs.ko has no BTF"
                .into(),
        );
    };
    let missing: Vec<&str> = ops
        .iter()
        .map(|op| op.probe_symbol())
        .filter(|s| !has_func(s))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "/sys/kernel/btf/vexfs has no BTF function {}: this vexfs.ko's probe points \
             are not C functions",
            missing.join(", ")
        )
    })
}

/// The BTF of a kernel module, split on the kernel's (libbpf's parser).
pub struct ModuleBtf {
    base: NonNull<libbpf_sys::btf>,
    btf: NonNull<libbpf_sys::btf>,
}

impl ModuleBtf {
    /// Parses `module` (as `/sys/kernel/btf/vexfs`) on top of `base` (as
    /// `/sys/kernel/btf/vmlinux`).
    pub fn load(base: &Path, module: &Path) -> io::Result<ModuleBtf> {
        let cpath = |p: &Path| {
            CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        };
        let (base_c, module_c) = (cpath(base)?, cpath(module)?);
        // SAFETY: `base_c` is a NUL-terminated path; libbpf returns a new
        // object or NULL with errno set.
        let base =
            NonNull::new(unsafe { libbpf_sys::btf__parse(base_c.as_ptr(), std::ptr::null_mut()) })
                .ok_or_else(io::Error::last_os_error)?;
        // SAFETY: As above; `base` is a valid BTF object, which the split
        // object refers to and which outlives it (freed after it in Drop).
        let btf = unsafe { libbpf_sys::btf__parse_split(module_c.as_ptr(), base.as_ptr()) };
        let Some(btf) = NonNull::new(btf) else {
            let err = io::Error::last_os_error();
            // SAFETY: `base` came from btf__parse and is not used again.
            unsafe { libbpf_sys::btf__free(base.as_ptr()) };
            return Err(err);
        };
        Ok(ModuleBtf { base, btf })
    }

    /// Whether the module's own types (not the base's) include a function
    /// (BTF FUNC) named `name`.
    pub fn has_func(&self, name: &str) -> bool {
        let Ok(c) = CString::new(name) else {
            return false;
        };
        // SAFETY: Both objects are valid for `self`'s lifetime and `c` is
        // NUL-terminated.
        let (id, base_types) = unsafe {
            (
                libbpf_sys::btf__find_by_name_kind(
                    self.btf.as_ptr(),
                    c.as_ptr(),
                    libbpf_sys::BTF_KIND_FUNC,
                ),
                libbpf_sys::btf__type_cnt(self.base.as_ptr()),
            )
        };
        id >= 0 && id as u32 >= base_types
    }
}

impl Drop for ModuleBtf {
    fn drop(&mut self) {
        // SAFETY: Both came from libbpf's parsers and are freed once, the
        // split object before the base it refers to.
        unsafe {
            libbpf_sys::btf__free(self.btf.as_ptr());
            libbpf_sys::btf__free(self.base.as_ptr());
        }
    }
}

/// Runs of the BPF program `prog` that the kernel skipped because the
/// program was already running on that CPU (`recursion_misses` of
/// `bpf_prog_info`); `None` if the kernel does not say.
pub fn prog_recursion_misses(prog: BorrowedFd<'_>) -> Option<u64> {
    // SAFETY: bpf_prog_info is plain data, valid when zeroed.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `prog` is an open descriptor and `info`/`len` describe a
    // writable buffer of that size; no array field asks for more.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) };
    (rc == 0).then_some(info.recursion_misses)
}

/// Messages libbpf printed while a [`LibbpfLog`] was alive.
static CAPTURED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut v) = CAPTURED.lock() {
        v.push(msg);
    }
}

/// Holds libbpf's messages back (warnings and worse) while alive, instead
/// of printing them: a failed fsession attempt that falls back to kprobes
/// reports one reason, not libbpf's whole log.
pub struct LibbpfLog {
    previous: Option<(PrintLevel, libbpf_rs::PrintCallback)>,
}

impl LibbpfLog {
    pub fn capture() -> LibbpfLog {
        if let Ok(mut v) = CAPTURED.lock() {
            v.clear();
        }
        LibbpfLog {
            previous: libbpf_rs::set_print(Some((PrintLevel::Warn, capture))),
        }
    }

    /// The messages so far, each without its trailing newline.
    pub fn messages(&self) -> Vec<String> {
        CAPTURED
            .lock()
            .map(|v| v.iter().map(|m| m.trim_end().to_owned()).collect())
            .unwrap_or_default()
    }

    /// The last message that names an error, for a one-line reason.
    pub fn last_error(&self) -> Option<String> {
        let msgs = self.messages();
        msgs.iter()
            .rev()
            .find(|m| m.contains("failed") || m.contains("error") || m.contains("-E"))
            .or(msgs.last())
            .map(|m| m.strip_prefix("libbpf: ").unwrap_or(m).to_owned())
    }
}

impl Drop for LibbpfLog {
    fn drop(&mut self) {
        libbpf_rs::set_print(self.previous.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(names: &[&str]) -> Vec<Op> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn choices_parse_and_print() {
        for c in [
            ProbeChoice::Auto,
            ProbeChoice::Fsession,
            ProbeChoice::Kprobe,
        ] {
            assert_eq!(c.to_string().parse::<ProbeChoice>(), Ok(c));
        }
        assert!("kprobes"
            .parse::<ProbeChoice>()
            .unwrap_err()
            .contains("auto, fsession or kprobe"));
    }

    #[test]
    fn mechanisms_name_themselves_and_the_fallback_reason() {
        let bpf = |tp: &[&str], fs: &[&str]| Mechanism::Bpf {
            tracepoints: ops(tp),
            sessions: ops(fs),
        };
        assert_eq!(bpf(&[], &["search", "read"]).name(), "fsession");
        assert_eq!(bpf(&["read"], &[]).name(), "raw_tp");
        let mixed = bpf(&["read", "write"], &["search"]);
        assert_eq!(mixed.name(), "raw_tp+fsession");
        assert_eq!(
            mixed.to_string(),
            "raw_tp+fsession (raw tracepoints vexfs:vexfs_<op>_done for read,write; \
             BPF trampolines on vexfs.ko's C entry points for search)"
        );
        let k = Mechanism::Kprobe {
            reason: "forced".into(),
        };
        assert_eq!(k.name(), "kprobe");
        assert_eq!(k.to_string(), "kprobe/kretprobe (forced)");
    }

    #[test]
    fn tracepoints_for_file_operations_unless_sampling_or_told_otherwise() {
        let sel = ops(&["lookup", "write", "search", "simd"]);
        let names = |v: Vec<Op>| v.iter().map(|o| o.name()).collect::<Vec<_>>();
        let all = |_: &str| true;
        let (tp, fs) = split_tracepoints(&sel, ProbeChoice::Auto, false, &all);
        assert_eq!(names(tp), ["lookup", "write"]);
        assert_eq!(names(fs), ["search", "simd"]);
        let (tp, fs) = split_tracepoints(&sel, ProbeChoice::Auto, true, &all);
        assert!(tp.is_empty() && fs.len() == 4, "sampling needs every entry");
        let (tp, _) = split_tracepoints(&sel, ProbeChoice::Fsession, false, &all);
        assert!(tp.is_empty());
        let only_write = |tp: &str| tp == "vexfs_write_done";
        let (tp, fs) = split_tracepoints(&sel, ProbeChoice::Auto, false, &only_write);
        assert_eq!(names(tp), ["write"]);
        assert_eq!(names(fs), ["lookup", "search", "simd"]);
    }

    #[test]
    fn frames_only_where_needed() {
        let all: Vec<Op> = Op::all().collect();
        let bit = |n: &str| 1u32 << n.parse::<Op>().unwrap().index();
        assert_eq!(frame_ops(&all, true), (1 << all.len()) - 1);
        assert_eq!(frame_ops(&all, false), bit("insert") | bit("search"));
        assert_eq!(frame_ops(&ops(&["search", "write"]), false), 0);
        assert_eq!(frame_ops(&ops(&["search", "simd"]), false), bit("search"));
        assert_eq!(frame_ops(&ops(&["write"]), true), bit("write"));
    }

    #[test]
    fn fsession_needs_every_selected_function_in_the_module_btf() {
        let sel = ops(&["search", "write"]);
        assert!(fsession_unavailable(None, &sel)
            .unwrap()
            .contains("no /sys/kernel/btf/vexfs"));
        let only_search = |f: &str| f == "vexfs_ioctl_search";
        let why = fsession_unavailable(Some(&only_search), &sel).unwrap();
        assert!(why.contains("vexfs_write_iter") && !why.contains("vexfs_ioctl_search"));
        assert_eq!(fsession_unavailable(Some(&|_| true), &sel), None);
    }

    /// Writes BTF built by libbpf to `path`.
    fn write_btf(btf: *mut libbpf_sys::btf, path: &Path) {
        let mut size = 0u32;
        // SAFETY: `btf` is valid; libbpf returns a buffer it owns.
        let data = unsafe { libbpf_sys::btf__raw_data(btf, &mut size) };
        assert!(!data.is_null());
        // SAFETY: libbpf says the buffer holds `size` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn module_btf_finds_its_own_functions_only() {
        let dir = std::env::temp_dir().join(format!("vexfs-btf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (base_path, module_path) = (dir.join("vmlinux"), dir.join("vexfs"));
        let name = |s: &str| CString::new(s).unwrap();
        // SAFETY: libbpf's BTF writer on objects created here and freed
        // at the end; every name is NUL-terminated.
        unsafe {
            let base = libbpf_sys::btf__new_empty();
            let int = libbpf_sys::btf__add_int(base, name("int").as_ptr(), 4, 1);
            let proto = libbpf_sys::btf__add_func_proto(base, int);
            assert!(libbpf_sys::btf__add_func(base, name("vfs_read").as_ptr(), 1, proto) > 0);
            write_btf(base, &base_path);
            let module = libbpf_sys::btf__new_empty_split(base);
            let proto = libbpf_sys::btf__add_func_proto(module, int);
            let f = libbpf_sys::btf__add_func(module, name("vexfs_lookup").as_ptr(), 1, proto);
            assert!(f > 0);
            libbpf_sys::btf__add_var(module, name("vexfs_unlink").as_ptr(), 0, int);
            write_btf(module, &module_path);
            libbpf_sys::btf__free(module);
            libbpf_sys::btf__free(base);
        }
        let btf = ModuleBtf::load(&base_path, &module_path).unwrap();
        assert!(btf.has_func("vexfs_lookup"));
        assert!(
            !btf.has_func("vfs_read"),
            "a base function is not the module's"
        );
        assert!(
            !btf.has_func("vexfs_unlink"),
            "a variable is not a function"
        );
        assert!(!btf.has_func("vexfs_create"));
        assert!(ModuleBtf::load(&base_path, &dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
