//! eBPF profiler for VexFS.
//!
//! Loads the CO-RE programs of `ebpf/vexfs_profile.bpf.c` (through the
//! skeleton `libbpf-cargo` generates) and attaches them to each selected
//! operation class: a raw tracepoint program on the event vexfs.ko fires as
//! a file operation returns, an fsession program on a BPF trampoline where
//! vexfs.ko's probe points are C functions with BTF, else a kprobe and a
//! kretprobe (see [`Mechanism`]). It optionally samples
//! kernel stacks with a `cpu-clock` perf event while tasks are inside VexFS.
//! [`Profiler::interval`] returns what happened since the previous call;
//! dropping the profiler detaches everything.

mod flame;
mod histogram;
mod ops;
mod perf;
mod probes;
mod symbols;

use std::ffi::OsStr;
use std::fmt;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::query::{LinkTypeInfo, PerfEventLinkInfo, PerfEventType};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags};
use probes::{fsession_unavailable, split_tracepoints, LibbpfLog, ModuleBtf};

pub use flame::{fold, write_folded, write_svg, StackSample};
pub use histogram::{bucket_bounds, bucket_of, Latencies, NR_BUCKETS};
pub use libbpf_rs::OpenObject;
pub use ops::{Op, UnknownOp, NR_OPS};
pub use probes::{Mechanism, ProbeChoice, PROBES_ENV};
pub use symbols::{demangle, KernelSymbols};

mod bpf {
    include!(concat!(env!("OUT_DIR"), "/vexfs_profile.skel.rs"));
}
use bpf::{types, VexfsProfileSkel, VexfsProfileSkelBuilder};

/// x86-64 kernel stacks without KASAN (`THREAD_SIZE`).
pub const THREAD_SIZE: u64 = 16384;
/// CPU slots of the per-CPU extremes (`VEXFS_MAX_CPUS`).
const MAX_CPUS: usize = 64;
/// Time given to probes that read the old epoch to finish before their
/// buffer is read (they run with preemption off, for microseconds).
const EPOCH_SETTLE: Duration = Duration::from_millis(5);

/// What to profile.
#[derive(Clone, Debug)]
pub struct Options {
    /// Operation classes to attach to.
    pub ops: Vec<Op>,
    /// Only operations of this process (thread group id).
    pub pid: Option<u32>,
    /// Only operations on this mounted VexFS (a path on it).
    pub mount: Option<std::path::PathBuf>,
    /// Sample kernel stacks at this frequency (Hz) for flame graphs.
    pub sample_hz: Option<u64>,
    /// How to reach the probe points.
    pub probes: ProbeChoice,
}

/// Figures of one operation class over one interval.
#[derive(Clone, Debug, Default)]
pub struct OpFigures {
    pub latencies: Latencies,
    /// Deepest kernel stack use at the probe point's entry, in bytes.
    pub entry_stack: u32,
    /// Deepest kernel stack use seen inside the operation (nested probe
    /// points and, when sampling, interrupted stack pointers), in bytes.
    pub max_stack: u32,
}

impl OpFigures {
    /// Adds `other` (a later interval) into `self`.
    pub fn merge(&mut self, other: &OpFigures) {
        self.latencies.merge(&other.latencies);
        self.entry_stack = self.entry_stack.max(other.entry_stack);
        self.max_stack = self.max_stack.max(other.max_stack);
    }
}

/// A requirement of the profiler that this system does not meet.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

fn unsupported(msg: impl Into<String>) -> anyhow::Error {
    Unsupported(msg.into()).into()
}

/// Capabilities in the effective set of this process (`CapEff`).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// Refuses early, by name, when the privileges to load and attach BPF
/// tracing programs are missing (the kernel would only say EPERM).
pub fn check_privileges() -> Result<()> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYSLOG: u32 = 34;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let caps = effective_caps();
    let has = |c: u32| caps & (1 << c) != 0;
    let mut missing = Vec::new();
    if !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        missing.push("CAP_BPF");
    }
    if !(has(CAP_PERFMON) || has(CAP_SYS_ADMIN)) {
        missing.push("CAP_PERFMON");
    }
    if !(has(CAP_SYSLOG) || has(CAP_SYS_ADMIN)) {
        missing.push("CAP_SYSLOG");
    }
    if !missing.is_empty() {
        return Err(unsupported(format!(
            "vexctl profile needs root (it lacks {}: loading BPF programs, attaching them \
             to kernel functions through BPF trampolines or kprobes, reading kernel \
             addresses)",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Kernel device number (`MKDEV(major, minor)`, as in `sb->s_dev`) of the
/// filesystem holding `path`, which must be a VexFS.
fn vexfs_dev(path: &Path) -> Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    let mut st = MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context(path.display().to_string());
    }
    // SAFETY: statfs succeeded and filled it.
    let magic = unsafe { st.assume_init() }.f_type as u32;
    if magic != vexfs_abi::VEXFS_MAGIC {
        bail!("{} is not on a VexFS mount", path.display());
    }
    let dev = meta.dev();
    Ok((libc::major(dev) << 20) | libc::minor(dev))
}

/// Whether the running kernel has BTF, which the CO-RE programs need.
fn check_btf() -> Result<()> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(unsupported(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux): it needs CONFIG_DEBUG_INFO_BTF=y",
        ));
    }
    Ok(())
}

/// Room for the profiler's BPF object. It has two slots: when the raw
/// tracepoint and fsession programs fail to load or attach, the kprobe
/// fallback opens the object again in the other.
pub struct ProfilerStorage {
    objects: [MaybeUninit<OpenObject>; 2],
}

impl Default for ProfilerStorage {
    fn default() -> Self {
        ProfilerStorage {
            objects: [MaybeUninit::uninit(), MaybeUninit::uninit()],
        }
    }
}

/// What the BPF programs are configured with (their `.rodata`).
struct Config {
    ops: Vec<Op>,
    /// When the BPF set loads, the classes of `ops` read from their
    /// tracepoint and those given fsession programs.
    tracepoints: Vec<Op>,
    sessions: Vec<Op>,
    filter_tgid: u32,
    filter_dev: u32,
    sample_hz: Option<u64>,
    rethook_trampoline: u64,
}

/// A loaded BPF object and the links of its probe points.
struct Loaded<'obj> {
    // Links first: they are dropped (detached) before the skeleton.
    entry_links: Vec<Link>,
    exit_links: Vec<Link>,
    /// fsession: one link per probe point (entry and return).
    trace_links: Vec<Link>,
    /// Raw tracepoints: one link per event.
    tp_links: Vec<Link>,
    skel: VexfsProfileSkel<'obj>,
}

/// Path of a module's BTF.
fn module_btf_path(module: &str) -> PathBuf {
    Path::new("/sys/kernel/btf").join(module)
}

/// Why fsession programs cannot attach to the probe points of `ops` on this
/// system, or `None` if they can (as far as BTF tells).
fn fsession_precheck(ops: &[Op]) -> Option<String> {
    if ops.is_empty() {
        return None;
    }
    let path = module_btf_path("vexfs");
    if !path.exists() {
        return fsession_unavailable(None, ops);
    }
    match ModuleBtf::load(Path::new("/sys/kernel/btf/vmlinux"), &path) {
        Ok(btf) => fsession_unavailable(Some(&|f: &str| btf.has_func(f)), ops),
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
    }
}

impl<'obj> Loaded<'obj> {
    /// Opens and loads the object with only the programs of one set (and
    /// the sampler when sampling), then attaches them: with `bpf`, raw
    /// tracepoint programs for `cfg.tracepoints` and fsession programs for
    /// the other classes; else kprobes for every class.
    fn start(storage: &'obj mut MaybeUninit<OpenObject>, cfg: &Config, bpf: bool) -> Result<Self> {
        let mut open = VexfsProfileSkelBuilder::default()
            .open(storage)
            .context("opening the BPF object")?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| anyhow!("BPF object has no .rodata"))?;
        rodata.filter_tgid = cfg.filter_tgid;
        rodata.filter_dev = cfg.filter_dev;
        rodata.thread_size = THREAD_SIZE;
        rodata.sample_stacks = cfg.sample_hz.is_some();
        rodata.frame_ops = probes::frame_ops(&cfg.ops, cfg.sample_hz.is_some());
        rodata.rethook_trampoline = if bpf { 0 } else { cfg.rethook_trampoline };
        if cfg.sample_hz.is_none() {
            // Without a flame graph the stack maps stay empty: do not
            // preallocate 16K stack traces for nothing.
            open.maps
                .stacks
                .set_max_entries(1)
                .context("sizing the stack map")?;
            open.maps
                .samples
                .set_max_entries(1)
                .context("sizing the sample map")?;
        }
        // Load only what runs: one program (or kprobe pair) per selected
        // class, and the sampler when sampling.
        let on_tracepoint = |op: &str| cfg.tracepoints.iter().any(|o| o.name() == op);
        for mut prog in open.open_object_mut().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            let wanted = if name == "sample" {
                cfg.sample_hz.is_some()
            } else {
                let (runs, op) = match name.split_once('_') {
                    Some(("tp", op)) => (bpf && on_tracepoint(op), op),
                    Some(("fs", op)) => (bpf && !on_tracepoint(op), op),
                    Some(("enter" | "exit", op)) => (!bpf, op),
                    _ => bail!("BPF object has an unknown program {name}"),
                };
                runs && cfg.ops.iter().any(|o| o.name() == op)
            };
            prog.set_autoload(wanted);
        }
        let skel = open
            .load()
            .context("loading the BPF programs (libbpf printed the reason above)")?;
        let mut loaded = Loaded {
            entry_links: Vec::new(),
            exit_links: Vec::new(),
            trace_links: Vec::new(),
            tp_links: Vec::new(),
            skel,
        };
        if bpf {
            loaded.attach_tracepoints(&cfg.tracepoints)?;
            loaded.attach_sessions(&cfg.sessions)?;
        } else {
            loaded.attach_kprobes(&cfg.ops)?;
        }
        Ok(loaded)
    }

    fn prog(&self, name: &str) -> Result<libbpf_rs::ProgramMut<'_>> {
        self.skel
            .object()
            .progs_mut()
            .find(|p| p.name() == OsStr::new(name))
            .ok_or_else(|| anyhow!("BPF object has no program {name}"))
    }

    fn attach_sessions(&mut self, ops: &[Op]) -> Result<()> {
        for &op in ops {
            let link = self
                .prog(&format!("fs_{}", op.name()))?
                .attach_trace()
                .with_context(|| {
                    format!(
                        "attaching an fsession program to {} (needs \
                         CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS)",
                        op.probe_symbol()
                    )
                })?;
            self.trace_links.push(link);
        }
        Ok(())
    }

    fn attach_tracepoints(&mut self, ops: &[Op]) -> Result<()> {
        for &op in ops {
            let event = op
                .tracepoint()
                .ok_or_else(|| anyhow!("{op} has no tracepoint"))?;
            let link = self
                .prog(&format!("tp_{}", op.name()))?
                .attach_raw_tracepoint(event)
                .with_context(|| format!("attaching a raw tracepoint program to vexfs:{event}"))?;
            self.tp_links.push(link);
        }
        Ok(())
    }

    fn attach_kprobes(&mut self, ops: &[Op]) -> Result<()> {
        // Return probes before entry probes: a return without its entry is
        // ignored, an entry without its return would leave a stale frame.
        for (retprobe, prefix) in [(true, "exit_"), (false, "enter_")] {
            for &op in ops {
                let symbol = op.probe_symbol();
                let what = format!(
                    "attaching a {} to {symbol} (needs CONFIG_KPROBES, and \
                     CONFIG_KPROBE_EVENTS_ON_NOTRACE for Rust functions)",
                    if retprobe { "kretprobe" } else { "kprobe" }
                );
                let link = self
                    .prog(&format!("{prefix}{}", op.name()))?
                    .attach_kprobe(retprobe, symbol)
                    .context(what)?;
                if retprobe {
                    self.exit_links.push(link);
                } else {
                    self.entry_links.push(link);
                }
            }
        }
        Ok(())
    }
}

/// A running profiling session. Dropping it detaches every probe.
pub struct Profiler<'obj> {
    /// Each owns its perf event descriptor (libbpf closes it on detach).
    sample_links: Vec<Link>,
    loaded: Loaded<'obj>,
    bss: *mut types::bss,
    epoch: u32,
    ops: Vec<Op>,
    symbols: KernelSymbols,
    mechanism: Mechanism,
}

impl<'obj> Profiler<'obj> {
    /// Loads the programs and attaches them. `storage` holds the BPF object
    /// for the profiler's lifetime.
    ///
    /// File operations are read from the tracepoints vexfs.ko fires as
    /// they return, when it has them and no stacks are sampled; the other
    /// classes' probe points are reached through fsession programs when
    /// `/sys/kernel/btf/vexfs` has a BTF function for each and they load
    /// and attach. Otherwise (or when `options.probes` asks for it) every
    /// class goes through kprobes, and [`Self::mechanism`] says why.
    pub fn start(storage: &'obj mut ProfilerStorage, options: &Options) -> Result<Self> {
        check_privileges()?;
        check_btf()?;
        if !Path::new("/sys/module/vexfs").exists() {
            return Err(unsupported(
                "the vexfs module is not loaded: insmod vexfs.ko (or mount -t vexfs) first",
            ));
        }
        let mut ops = options.ops.clone();
        ops.sort();
        ops.dedup();
        let has = |name: &str| ops.iter().any(|o| o.name() == name);
        if options.mount.is_some() && has("simd") && !(has("search") || has("insert")) {
            bail!(
                "--mount with simd needs search or insert too: SIMD batches belong to the mount \
                 of the search or insert they run in"
            );
        }
        let filter_dev = options.mount.as_deref().map(vexfs_dev).transpose()?;
        let symbols = KernelSymbols::load().context("reading /proc/kallsyms")?;
        if let Some(op) = ops.iter().find(|op| !symbols.contains(op.probe_symbol())) {
            return Err(unsupported(format!(
                "probe point {} is not in /proc/kallsyms: is this vexfs.ko older than the \
                 profiler?",
                op.probe_symbol()
            )));
        }
        let (tracepoints, sessions) =
            split_tracepoints(&ops, options.probes, options.sample_hz.is_some(), &|tp| {
                symbols.contains(&format!("__traceiter_{tp}"))
            });
        let cfg = Config {
            tracepoints,
            sessions,
            filter_tgid: options.pid.unwrap_or(0),
            filter_dev: filter_dev.unwrap_or(0),
            sample_hz: options.sample_hz,
            rethook_trampoline: symbols.address_of("arch_rethook_trampoline").unwrap_or(0),
            ops,
        };

        let [first, second] = &mut storage.objects;
        let kprobe_reason = match options.probes {
            ProbeChoice::Kprobe => format!("asked for by {PROBES_ENV}=kprobe or --probes kprobe"),
            choice => match fsession_precheck(&cfg.sessions) {
                Some(why) if choice == ProbeChoice::Fsession => {
                    return Err(unsupported(format!("fsession probes asked for, but {why}")))
                }
                Some(why) => why,
                None => {
                    let log = LibbpfLog::capture();
                    match Loaded::start(first, &cfg, true) {
                        Ok(loaded) => {
                            drop(log);
                            let mechanism = Mechanism::Bpf {
                                tracepoints: cfg.tracepoints.clone(),
                                sessions: cfg.sessions.clone(),
                            };
                            return Self::finish(loaded, cfg, symbols, mechanism);
                        }
                        Err(e) => {
                            let detail = log.last_error();
                            let messages = log.messages();
                            drop(log);
                            if choice == ProbeChoice::Fsession {
                                for m in messages {
                                    eprintln!("{m}");
                                }
                                return Err(e.context("fsession probes asked for"));
                            }
                            match detail {
                                Some(d) => format!("fsession failed: {e:#}: {d}"),
                                None => format!("fsession failed: {e:#}"),
                            }
                        }
                    }
                }
            },
        };
        let loaded = Loaded::start(second, &cfg, false)?;
        Self::finish(
            loaded,
            cfg,
            symbols,
            Mechanism::Kprobe {
                reason: kprobe_reason,
            },
        )
    }

    fn finish(
        mut loaded: Loaded<'obj>,
        cfg: Config,
        symbols: KernelSymbols,
        mechanism: Mechanism,
    ) -> Result<Self> {
        let bss: *mut types::bss = loaded
            .skel
            .maps
            .bss_data
            .as_deref_mut()
            .ok_or_else(|| anyhow!("BPF object has no .bss"))?;
        let mut profiler = Profiler {
            sample_links: Vec::new(),
            loaded,
            bss,
            epoch: 0,
            ops: cfg.ops,
            symbols,
            mechanism,
        };
        if let Some(hz) = cfg.sample_hz {
            profiler.attach_sampler(hz)?;
            // Read again now that the probes are attached: the BPF
            // trampolines (and kprobe detour pages) that samples pass
            // through exist only from now on.
            profiler.symbols = KernelSymbols::load().context("reading /proc/kallsyms")?;
        }
        Ok(profiler)
    }

    /// How the probe points are reached.
    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }

    fn attach_sampler(&mut self, hz: u64) -> Result<()> {
        for cpu in perf::online_cpus().context("reading the online CPUs")? {
            let fd = perf::open_cpu_clock(cpu, hz).map_err(|e| match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM) => unsupported(
                    "perf_event_open: permission denied: sampling needs root or CAP_PERFMON",
                ),
                Some(libc::ENOENT | libc::ENODEV | libc::EOPNOTSUPP) => {
                    unsupported("the kernel has no cpu-clock perf event (CONFIG_PERF_EVENTS)")
                }
                Some(libc::EINVAL) => unsupported(format!(
                    "perf_event_open refused {hz} Hz: at most kernel.perf_event_max_sample_rate \
                     (/proc/sys/kernel/perf_event_max_sample_rate)"
                )),
                _ => anyhow!(e).context(format!("perf_event_open(cpu-clock, cpu {cpu})")),
            })?;
            let link = self
                .loaded
                .skel
                .progs
                .sample
                .attach_perf_event(fd.as_raw_fd())
                .context("attaching the sampler to a perf event")?;
            // The link now owns the descriptor: libbpf closes it on detach.
            let _ = fd.into_raw_fd();
            self.sample_links.push(link);
        }
        Ok(())
    }

    /// Number of probes attached: raw tracepoint links (one per event),
    /// fsession links (one per probe point), kprobes and kretprobes, perf
    /// events.
    pub fn attached(&self) -> usize {
        let l = &self.loaded;
        l.tp_links.len()
            + l.trace_links.len()
            + l.entry_links.len()
            + l.exit_links.len()
            + self.sample_links.len()
    }

    /// Number of CPUs whose `cpu-clock` event samples stacks (0 when not
    /// sampling); [`Self::attached`] counts them too.
    pub fn sampling_cpus(&self) -> usize {
        self.sample_links.len()
    }

    /// The operation classes being profiled, in index order, each once.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The running kernel's symbols, read when the profiler started (and, when
    /// sampling, again once its probes were attached).
    pub fn symbols(&self) -> &KernelSymbols {
        &self.symbols
    }

    /// Everything recorded since the previous call (or the start), per
    /// operation class in `ops()` order.
    pub fn interval(&mut self) -> Vec<(Op, OpFigures)> {
        let old = (self.epoch & 1) as usize;
        self.epoch = self.epoch.wrapping_add(1);
        // SAFETY: See `take`.
        unsafe {
            (*ptr::addr_of_mut!((*self.bss).epoch).cast::<AtomicU32>())
                .store(self.epoch, Ordering::SeqCst)
        };
        std::thread::sleep(EPOCH_SETTLE);
        self.ops
            .iter()
            .map(|&op| (op, self.take(old, op.index())))
            .collect()
    }

    /// [`Self::interval`] for the last interval of a profile: it also
    /// takes what probes that read an older epoch wrote after their buffer
    /// was read (a probe whose CPU was held up longer than the settle
    /// time, as a busy hypervisor can do). Such a write is otherwise
    /// reported one interval later; after the last one, nothing would.
    pub fn last_interval(&mut self) -> Vec<(Op, OpFigures)> {
        let mut figs = self.interval();
        let current = (self.epoch & 1) as usize;
        for (op, fig) in &mut figs {
            fig.merge(&self.take(current, op.index()));
        }
        figs
    }

    /// Reads buffer `buf` of operation `op` and zeroes it for reuse, each
    /// counter with one atomic swap: an increment racing with the read is
    /// either in this interval or left for the next, never lost.
    fn take(&self, buf: usize, op: usize) -> OpFigures {
        let mut fig = OpFigures::default();
        let lat = &mut fig.latencies;
        // SAFETY: `bss` points into the skeleton's mmapped .bss, alive as
        // long as `self`; the indices are within the declared arrays
        // (`buf` < 2, `op` < NR_OPS, `cpu` < MAX_CPUS, `b` < NR_BUCKETS). The
        // BPF side updates these naturally aligned integers concurrently, so
        // they are accessed as atomics of the same size.
        unsafe {
            let h = ptr::addr_of_mut!((*self.bss).hist[buf][op]);
            lat.sum_ns = take_u64(ptr::addr_of_mut!((*h).sum_ns));
            for (b, slot) in lat.buckets.iter_mut().enumerate() {
                *slot = take_u64(ptr::addr_of_mut!((*h).buckets[b]));
            }
            for cpu in 0..MAX_CPUS {
                let x = ptr::addr_of_mut!((*self.bss).extremes[buf][cpu][op]);
                let min_ns = take_u64(ptr::addr_of_mut!((*x).min_ns));
                if min_ns != 0 {
                    lat.min_ns = if lat.min_ns == 0 {
                        min_ns
                    } else {
                        lat.min_ns.min(min_ns)
                    };
                }
                lat.max_ns = lat.max_ns.max(take_u64(ptr::addr_of_mut!((*x).max_ns)));
                fig.entry_stack = fig
                    .entry_stack
                    .max(take_u32(ptr::addr_of_mut!((*x).entry_stack)));
                fig.max_stack = fig
                    .max_stack
                    .max(take_u32(ptr::addr_of_mut!((*x).max_stack)));
            }
        }
        lat.count = lat.buckets.iter().sum();
        fig
    }

    /// Events the BPF side could not record (nesting too deep, full maps,
    /// stacks it could not walk).
    pub fn dropped(&self) -> u64 {
        // SAFETY: See `take`.
        unsafe { (*ptr::addr_of!((*self.bss).dropped).cast::<AtomicU64>()).load(Ordering::Relaxed) }
    }

    /// Probe hits the kernel dropped; each such operation is in no count.
    /// Raw tracepoints and fsession: runs skipped because the class's
    /// program was already running on that CPU (`recursion_misses` of
    /// `bpf_prog_info`). kprobe:
    /// the kernel's count of missed hits of every kprobe and kretprobe
    /// (`bpf_link_info`), mostly returns dropped when more calls are in
    /// flight than a kretprobe has instances.
    pub fn missed(&self) -> u64 {
        let l = &self.loaded;
        if l.entry_links.is_empty() {
            return self
                .ops
                .iter()
                .flat_map(|op| ["tp", "fs"].map(|set| format!("{set}_{}", op.name())))
                .filter_map(|name| l.prog(&name).ok())
                .filter(|p| p.autoload())
                .filter_map(|p| probes::prog_recursion_misses(p.as_fd()))
                .sum();
        }
        l.entry_links
            .iter()
            .chain(&l.exit_links)
            .filter_map(|link| link.info().ok())
            .map(|info| match info.info {
                LinkTypeInfo::PerfEvent(PerfEventLinkInfo {
                    event_type: PerfEventType::Kprobe { missed, .. },
                    ..
                }) => missed,
                _ => 0,
            })
            .sum()
    }

    /// Every kernel stack sampled so far, with its counts.
    pub fn samples(&self) -> Result<Vec<StackSample>> {
        let counts = &self.loaded.skel.maps.samples;
        let stacks = &self.loaded.skel.maps.stacks;
        let mut out = Vec::new();
        for key in counts.keys() {
            let (Some(value), Ok(k)) = (
                counts.lookup(&key, MapFlags::ANY)?,
                <[u8; 8]>::try_from(&key[..]),
            ) else {
                continue;
            };
            // `struct vexfs_sample_key`: the op, then the stack id.
            let op = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
            let Some(op) = Op::from_index(op as usize) else {
                continue;
            };
            let Some(raw) = stacks.lookup(&k[4..], MapFlags::ANY)? else {
                continue;
            };
            let kernel_ips = raw
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
                .take_while(|&ip| ip != 0)
                .collect();
            let count = value.try_into().map(u64::from_ne_bytes).unwrap_or(0);
            out.push(StackSample {
                op,
                kernel_ips,
                count,
            });
        }
        Ok(out)
    }
}

/// Atomically reads and zeroes a counter shared with the BPF side.
///
/// # Safety
///
/// `p` must be valid, aligned and only ever accessed atomically or by BPF.
unsafe fn take_u64(p: *mut u64) -> u64 {
    // SAFETY: Guaranteed by the caller; AtomicU64 has u64's layout.
    unsafe { (*p.cast::<AtomicU64>()).swap(0, Ordering::Relaxed) }
}

/// [`take_u64`] for 32-bit fields.
///
/// # Safety
///
/// As for [`take_u64`].
unsafe fn take_u32(p: *mut u32) -> u32 {
    // SAFETY: Guaranteed by the caller; AtomicU32 has u32's layout.
    unsafe { (*p.cast::<AtomicU32>()).swap(0, Ordering::Relaxed) }
}

impl Drop for Profiler<'_> {
    fn drop(&mut self) {
        // Entries first, so no new frame starts whose return is unwatched.
        let l = &mut self.loaded;
        l.entry_links.clear();
        l.exit_links.clear();
        l.trace_links.clear();
        l.tp_links.clear();
        self.sample_links.clear();
    }
}
