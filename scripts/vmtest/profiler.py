"""In-VM tests of `vexctl profile`, the eBPF profiler: its counts against a
workload of known size, ended by --duration and by a signal; percentile
order; the --pid, --mount and --ops filters; a bimodal search workload;
kernel stack figures; the flame graph; that every probe, BPF program and
perf event goes away when it ends; and its errors.

By default the profiler reads file operations from the tracepoints vexfs.ko
fires as they return (raw tracepoint programs) and attaches fsession
programs (BPF trampolines) to the C entry points of the others, or of every
class when it samples stacks; these tests check that it does (no kprobe).
fsession for every class, forced by VEXFS_PROFILE_PROBES=fsession, and the
kprobe fallback, forced by VEXFS_PROFILE_PROBES=kprobe, have exact-count
groups of their own, the latter a dropped-return group too.

Workloads run in forked processes that issue raw ioctls and syscalls, so
the number of each operation is known exactly. Nothing else touches a VexFS
mount while a profiler runs: an unfiltered profiler sees every mount."""

import errno
import fcntl
import json
import math
import multiprocessing
import os
import re
import signal
import struct
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np

import uffd
from harness import Background, as_uid, eventually, mount, run, sh
from abi import IOC_DELETE, IOC_INSERT, IOC_SEARCH, SEARCH_EXACT, search_request

# Operations in the profiler's default order, and the probe function of each.
OPS = ("lookup", "create", "unlink", "read", "write", "fsync", "insert", "delete", "search", "simd")
PROBES = {
    "lookup": "vexfs_lookup", "create": "vexfs_create", "unlink": "vexfs_unlink",
    "read": "vexfs_read_iter", "write": "vexfs_write_iter", "fsync": "vexfs_fsync",
    "insert": "vexfs_ioctl_insert", "delete": "vexfs_ioctl_delete",
    "search": "vexfs_ioctl_search", "simd": "vexfs_simd_batch",
}
LATENCY = ("min_ns", "p50_ns", "p95_ns", "p99_ns", "p999_ns", "max_ns")
OP_FIELDS = {"op", "count", "ops_per_sec", *LATENCY, "mean_ns", "entry_stack_bytes", "max_stack_bytes"}
STACK_SIZE = 16384
KPROBE_LIST = "/sys/kernel/debug/kprobes/list"
KPROBE_EVENTS = "/sys/kernel/tracing/kprobe_events"
# Functions with an ftrace hook in use, and how: "D" marks a direct call (a
# BPF trampoline).
ENABLED_FUNCTIONS = "/sys/kernel/tracing/enabled_functions"
# Kernel frames that only the probes' own machinery runs in. kprobes: the
# optimized probe's detour (kprobe_optinsn_page, optimized_callback, ...)
# and the kretprobe's return path (arch_rethook_trampoline, ...); the
# kernel's unwinder stops in a trampoline (no unwind data), and a sample in
# the return path is taken after the probed function's frame is gone.
# fsession: the BPF trampoline (bpf_trampoline_*), the program-run wrappers
# around it (__bpf_prog_enter*, __bpf_prog_exit*, __bpf_tramp_*) and the
# programs themselves (bpf_prog_*).
PROBE_MACHINERY = re.compile(r"kprobe|kretprobe|optprobe|optinsn|optimized_callback|opt_pre_handler|rethook"
                             r"|bpf_trampoline|__bpf_prog_enter|__bpf_prog_exit|__bpf_tramp|bpf_prog_")
# How the profiler reaches the probe points (the names it gives in its
# header line and JSON): raw tracepoints, BPF trampolines, or the fallback
# that VEXFS_PROFILE_PROBES=kprobe forces.
RAW_TP, FSESSION, KPROBE = "raw_tp", "fsession", "kprobe"
# The classes whose operations vexfs.ko reports in a tracepoint as they
# return, and its name.
TRACEPOINTS = {op: f"vexfs_{op}_done" for op in ("lookup", "create", "unlink", "read", "write", "fsync")}
MNT, MNT2 = "/mnt/vexprof", "/mnt/vexprof2"
SCRATCH = "/tmp/vexprof"
# Generous limits for an emulated CPU: loading and attaching the BPF
# programs, and a workload that should take a few seconds.
ATTACH_TIMEOUT = 120
WORK_TIMEOUT = 180
MP = multiprocessing.get_context("fork")


# ---------------------------------------------------------------- profiler

def default_probes(ops=OPS, sampling=False):
    """The mechanism the profiler's default choice names for `ops`: raw
    tracepoints for the classes that have one, unless it samples stacks,
    and fsession for the rest."""
    tp = not sampling and any(o in TRACEPOINTS for o in ops)
    fs = sampling or any(o not in TRACEPOINTS for o in ops)
    return "+".join(name for name, used in ((RAW_TP, tp), (FSESSION, fs)) if used)


def split_ops(ops, probes):
    """(classes on raw tracepoints, classes on fsession) under `probes`."""
    if probes == KPROBE:
        return (), ()
    tp = tuple(o for o in ops if RAW_TP in probes.split("+") and o in TRACEPOINTS)
    return tp, tuple(o for o in ops if o not in tp)


class Profiler(Background):
    """One `vexctl profile` process; ready once it says it attached.
    `probes` sets VEXFS_PROFILE_PROBES (None: unset, the default choice)."""

    def __init__(self, *args, probes=None):
        env = ["env", f"VEXFS_PROFILE_PROBES={probes}"] if probes else []
        super().__init__([*env, "vexctl", "profile", *args], "vexctl profile: attached")

    def wait_attached(self, timeout=ATTACH_TIMEOUT):
        return self.wait_ready(timeout)

    def mechanism(self):
        """What its `vexctl profile: probes: NAME ...` line says."""
        for line in self.err:
            m = re.match(r"vexctl profile: probes: ([\w/+]+)", line)
            if m:
                return m.group(1).split("/")[0]
        return None

    def records(self):
        """(intervals, total, lines that are not JSON objects)."""
        intervals, total, bad = [], None, []
        for line in self.out:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                bad.append(line)
                continue
            if not isinstance(rec, dict):
                bad.append(line)
            elif rec.get("kind") == "interval":
                intervals.append(rec)
            elif rec.get("kind") == "total":
                total = rec
            else:
                bad.append(line)
        return intervals, total, bad


def counts(rec):
    return {o["op"]: o["count"] for o in rec["ops"]} if rec else {}


def by_op(rec):
    return {o["op"]: o for o in rec["ops"]} if rec else {}


def profile_available():
    r = run(["vexctl", "profile", "--help"])
    return r.returncode == 0, (r.stderr or r.stdout).strip()[-200:]


# ------------------------------------------------------ probes and programs

def _lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f]
    except OSError:
        return []


def _bpftool(*args):
    r = run(["bpftool", *args, "--json"])
    if r.returncode != 0:
        return []
    try:
        return json.loads(r.stdout or "[]")
    except ValueError:
        return []


def held_prog_ids(pid):
    """Ids of the BPF programs that process `pid` holds a descriptor of
    (program or link), from /proc/PID/fdinfo."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return ids
    for fd in fds:
        for line in _lines(f"/proc/{pid}/fdinfo/{fd}"):
            if line.startswith("prog_id:"):
                ids.add(int(line.split()[1]))
    return ids


def direct_called_functions():
    """vexfs functions that ftrace calls a direct trampoline (a BPF
    trampoline) from, per enabled_functions."""
    found = set()
    for line in _lines(ENABLED_FUNCTIONS):
        f = line.split()
        if len(f) >= 2 and f[1] == "[vexfs]" and " D " in f" {line} ":
            found.add(f[0])
    return found


def tracing_links(prog_ids):
    """{function name: attach type} of the tracing links of the BPF programs
    `prog_ids`, their target functions named from the target BTF object."""
    links = [l for l in _bpftool("link", "show") if l.get("prog_id") in prog_ids and l.get("type") == "tracing"]
    names = {}
    for obj in {l.get("target_obj_id") for l in links}:
        r = run(["bpftool", "btf", "dump", "id", str(obj), "format", "raw"])
        for m in re.finditer(r"^\[(\d+)\] FUNC '([^']+)'", r.stdout or "", re.M):
            names[(obj, int(m.group(1)))] = m.group(2)
    return {names.get((l.get("target_obj_id"), l.get("target_btf_id")), f"btf id {l.get('target_btf_id')}"):
            str(l.get("attach_type")) for l in links}


def kprobed_functions():
    """{symbol: set of kinds ('k', 'r', ...)} of the vexfs functions in the
    kernel's list of registered kprobes."""
    found = {}
    for line in _lines(KPROBE_LIST):
        f = line.split()
        if len(f) >= 3 and "vexfs" in line:
            found.setdefault(f[2].split("+")[0], set()).add(f[1])
    return found


def probe_state():
    return {
        "kprobes": [l for l in _lines(KPROBE_LIST) if "vexfs" in l],
        "kprobe_events": [l for l in _lines(KPROBE_EVENTS) if "vexfs" in l],
        "direct": sorted(direct_called_functions()),
        "progs": {p["id"]: (p.get("name", ""), p.get("type", "")) for p in _bpftool("prog", "show")},
        "links": {l["id"] for l in _bpftool("link", "show")},
        "perf": [p for p in _bpftool("perf", "show") if "vexfs" in str(p.get("func", ""))],
    }


def check_attached(t, label, before, ops=OPS, probes=None, p=None):
    """While a profiler runs: its probes and BPF programs are visible (so the
    detach checks that follow can fail), of the mechanism expected
    (default: the default choice's for `ops` without sampling): raw
    tracepoint and fsession programs and no kprobe, or kprobes. `p`, the
    profiler, must say the same."""
    probes = probes or default_probes(ops)
    want = {PROBES[o] for o in ops}
    if p is not None:
        said = [l for l in p.err if l.startswith("vexctl profile: probes:")]
        t.check(f"{label}: the profiler says it uses {probes} probes", p.mechanism() == probes, str(said)[:400])
    now = probe_state()
    new = {i: v for i, v in now["progs"].items() if i not in before["progs"]}
    # Only this profiler's (another one may run beside it).
    if p is not None:
        new = {i: v for i, v in new.items() if i in held_prog_ids(p.pid)}
    t.check(f"{label}: while attached, bpftool lists the profiler's BPF programs", new,
            "no new program in `bpftool prog show`")
    probed = kprobed_functions()
    if probes != KPROBE:
        tp_ops, fs_ops = split_ops(ops, probes)
        want = {PROBES[o] for o in fs_ops}
        traced = {n[3:] for n, ty in new.values() if ty == "tracing" and n.startswith("fs_")}
        t.eq(f"{label}: bpftool lists a `tracing` program fs_OP for each op on fsession (and no other)",
             sorted(traced), sorted(fs_ops))
        raw = {n[3:] for n, ty in new.values() if ty == "raw_tracepoint" and n.startswith("tp_")}
        t.eq(f"{label}: bpftool lists a `raw_tracepoint` program tp_OP for each op on its tracepoint "
             "(and no other)", sorted(raw), sorted(tp_ops))
        events = {l.get("tp_name") for l in _bpftool("link", "show")
                  if l.get("prog_id") in new and l.get("type") == "raw_tracepoint"}
        t.eq(f"{label}: bpftool lists a raw_tracepoint link on each such op's vexfs_OP_done event",
             sorted(events), sorted(TRACEPOINTS[o] for o in tp_ops))
        links = tracing_links(set(new))
        t.check(f"{label}: bpftool lists a tracing link of type fsession on every vexfs function on fsession",
                set(links) == want and all(ty in ("trace_fsession", "58") for ty in links.values()),
                f"links {sorted(links.items())}")
        t.check(f"{label}: {ENABLED_FUNCTIONS} shows a direct (BPF trampoline) call on every such function",
                want <= set(now["direct"]), f"missing {sorted(want - set(now['direct']))}")
        t.check(f"{label}: no vexfs kprobe in {KPROBE_LIST}", not probed, str(sorted(probed))[:300])
    else:
        t.check(f"{label}: while attached, {KPROBE_LIST} lists a probe on every selected function",
                want <= set(probed), f"missing {sorted(want - set(probed))}; listed {sorted(probed)}")
        t.check(f"{label}: no BPF trampoline on a vexfs function ({ENABLED_FUNCTIONS})", not now["direct"],
                str(now["direct"])[:300])


def check_detached(t, label, before, procs=(), wait=60.0):
    """After a profiler ended: no vexfs kprobe, no new BPF program, link or
    perf event, and its process is gone. Program and link teardown is
    deferred in the kernel, so this polls for a few seconds."""
    end = time.monotonic() + wait
    while True:
        now = probe_state()
        new_progs = {i: n for i, n in now["progs"].items() if i not in before["progs"]}
        new_links = now["links"] - before["links"]
        left = (now["kprobes"] or now["kprobe_events"] or new_progs or new_links or now["perf"]
                or now["direct"])
        if not left or time.monotonic() > end:
            break
        time.sleep(0.25)
    t.check(f"{label}: no vexfs kprobe left in {KPROBE_LIST} or kprobe_events",
            not now["kprobes"] and not now["kprobe_events"], "; ".join((now["kprobes"] + now["kprobe_events"])[:4]))
    t.check(f"{label}: no BPF program, link or perf event left (bpftool prog/link/perf show)",
            not new_progs and not new_links and not now["perf"],
            f"programs {sorted(new_progs.items())[:6]} links {sorted(new_links)[:6]} perf {now['perf'][:3]}")
    t.check(f"{label}: no BPF trampoline left on a vexfs function ({ENABLED_FUNCTIONS})", not now["direct"],
            str(now["direct"])[:300])
    alive = [p.pid for p in procs if os.path.exists(f"/proc/{p.pid}")]
    if procs:
        t.check(f"{label}: the profiler process is gone", not alive, f"still there: {alive}")


# ----------------------------------------------------------------- workload

class FastSearch:
    """One prepared search ioctl: the request is packed once, so each call is
    a single syscall."""

    def __init__(self, path, queries, k):
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        self.q = np.ascontiguousarray(queries, dtype=np.float32)
        nq, dim = self.q.shape
        self.hits = np.zeros(nq * k * 2, dtype=np.uint64)
        self.counts = np.zeros(nq, dtype=np.uint32)
        self.req = search_request(nq, k, dim, 0, 0, self.q.ctypes.data, self.hits.ctypes.data,
                                  self.counts.ctypes.data)

    def __call__(self):
        fcntl.ioctl(self.fd, IOC_SEARCH, self.req)

    def timed(self):
        t0 = time.perf_counter_ns()
        fcntl.ioctl(self.fd, IOC_SEARCH, self.req)
        return time.perf_counter_ns() - t0

    def close(self):
        os.close(self.fd)


class FastInsert:
    """Prepared insert ioctls of `sizes[i]` rows each, ids from `first_id`."""

    def __init__(self, path, dim, sizes, first_id, seed=0):
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        n = int(sum(sizes))
        self.ids = np.arange(first_id, first_id + n, dtype=np.uint64)
        self.vecs = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
        self.reqs, at = [], 0
        for s in sizes:
            self.reqs.append(struct.pack("<IIQQ", s, dim, self.ids[at:].ctypes.data,
                                         self.vecs[at:].ctypes.data))
            at += s

    def __call__(self, i):
        fcntl.ioctl(self.fd, IOC_INSERT, self.reqs[i])

    def close(self):
        os.close(self.fd)


def delete_ids(path, ids):
    ids = np.ascontiguousarray(ids, dtype=np.uint64)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, IOC_DELETE, struct.pack("<IIQ", len(ids), 0, ids.ctypes.data))
    finally:
        os.close(fd)


def make_collection(path, dim, n, seed, metric="l2"):
    sh(["vexctl", "create", path, "--dim", str(dim), "--metric", metric])
    if n:
        # Batches of at most 2^16 rows, well inside the ABI's limit.
        sizes = [min(1 << 16, n - at) for at in range(0, n, 1 << 16)]
        ins = FastInsert(path, dim, sizes, 0, seed)
        for i in range(len(sizes)):
            ins(i)
        ins.close()


class Worker:
    """A forked process that runs fn(*args) once released by go(); its pid is
    known before it does anything on VexFS."""

    def __init__(self, fn, *args):
        self.release = MP.Event()
        self.conn, child = MP.Pipe(duplex=False)
        self.proc = MP.Process(target=Worker._main, args=(fn, args, self.release, child), daemon=True)
        self.proc.start()
        child.close()
        self.pid = self.proc.pid

    @staticmethod
    def _main(fn, args, release, conn):
        release.wait()
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            conn.send(("error", f"{type(e).__name__}: {e}"))
        conn.close()

    def go(self):
        self.release.set()

    def result(self, timeout=WORK_TIMEOUT):
        if not self.conn.poll(timeout):
            self.proc.kill()
            self.proc.join()
            raise RuntimeError(f"workload {self.pid} did not finish in {timeout} s")
        status, value = self.conn.recv()
        self.proc.join(30)
        if status != "ok":
            raise RuntimeError(f"workload {self.pid} failed: {value}")
        return value

    def kill(self):
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)


# The known workload of the count tests (besides lookups, whose number the
# dcache decides).
MIXED = {"search": 500, "insert": 250, "write": 100, "read": 11, "create": 7, "unlink": 4,
         "fsync": 5, "delete": 3}


def mixed_workload(root, tag):
    """Exactly MIXED's operations on the mount at `root`: searches on a small
    collection, inserts of 1-4 rows into another, writes to one file, and a
    few creates, unlinks, reads, fsyncs and deletes in the middle. Returns
    the counts, the client-side search times and the elapsed time."""
    n = MIXED
    search = FastSearch(f"{root}/small", np.ones((1, 8)), 5)
    sizes = [1 + i % 4 for i in range(n["insert"])]
    first = 1_000_000 * (1 + tag)
    insert = FastInsert(f"{root}/ins", 8, sizes, first, seed=tag)
    fd = os.open(f"{root}/data", os.O_RDWR)
    chunk = b"v" * 512
    times = []
    done = dict.fromkeys(n, 0)
    t0 = time.monotonic()
    for i in range(n["search"]):
        times.append(search.timed())
        done["search"] += 1
        if i % 2 == 0:
            insert(i // 2)
            done["insert"] += 1
        if i % 5 == 0:
            os.write(fd, chunk)
            done["write"] += 1
        if i == n["search"] // 2:
            for j in range(n["create"]):
                os.close(os.open(f"{root}/new-{tag}-{j}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                done["create"] += 1
            for j in range(n["unlink"]):
                os.unlink(f"{root}/new-{tag}-{j}")
                done["unlink"] += 1
            for j in range(n["read"]):
                os.pread(fd, 100, 100 * j)
                done["read"] += 1
            for j in range(n["fsync"]):
                (os.fsync if j % 2 == 0 else os.fdatasync)(fd)
                done["fsync"] += 1
            for j in range(n["delete"]):
                delete_ids(f"{root}/ins", [first + j])
                done["delete"] += 1
    elapsed = time.monotonic() - t0
    os.close(fd)
    search.close()
    insert.close()
    return {"counts": done, "search_ns": times, "elapsed": elapsed, "t_end": time.monotonic()}


def searches_and_writes(plan):
    """plan: [(mount, searches, inserts, writes), ...], run interleaved.
    Returns {mount: {"search": n, "insert": n, "write": n}}."""
    done = {}
    for root, ns, ni, nw in plan:
        search = FastSearch(f"{root}/small", np.ones((1, 8)), 5)
        insert = FastInsert(f"{root}/ins", 8, [2] * ni, 5_000_000 + os.getpid() * 1000, seed=ni)
        fd = os.open(f"{root}/data", os.O_WRONLY | os.O_APPEND)
        c = {"search": 0, "insert": 0, "write": 0}
        for i in range(max(ns, ni, nw)):
            if i < ns:
                search()
                c["search"] += 1
            if i < ni:
                insert(i)
                c["insert"] += 1
            if i < nw:
                os.write(fd, b"w" * 100)
                c["write"] += 1
        os.close(fd)
        search.close()
        insert.close()
        done[root] = c
    return done


def two_threads(plan_main, plan_thread):
    """searches_and_writes of both plans at once, one in a second thread of
    the same process: --pid means the process (tgid), not the thread."""
    out = {}
    th = threading.Thread(target=lambda: out.update(thread=searches_and_writes(plan_thread)))
    th.start()
    main = searches_and_writes(plan_main)
    th.join()
    return {root: {op: c + out["thread"][root][op] for op, c in ops.items()} for root, ops in main.items()}


def bimodal_workload(root, n, every):
    """n searches, every `every`-th one on the large collection, the rest on
    the tiny one. Returns the client-side times (ns) of each mode."""
    tiny = FastSearch(f"{root}/tiny", np.ones((1, 32)), 5)
    large = FastSearch(f"{root}/large", np.ones((1, 32)), 5)
    out = {"tiny": [], "large": []}
    for i in range(n):
        if i % every == every - 1:
            out["large"].append(large.timed())
        else:
            out["tiny"].append(tiny.timed())
    tiny.close()
    large.close()
    return out


def search_loop(root, seconds):
    """Searches the large collection for `seconds`; returns (count, busy ns)."""
    large = FastSearch(f"{root}/large", np.ones((1, 32)), 5)
    n = busy = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        busy += large.timed()
        n += 1
    large.close()
    return {"count": n, "busy_ns": busy}


def blocked_in_ioctl(tids):
    """How many of the threads `tids` of this process are inside an ioctl
    (syscall 16), per /proc/self/task/TID/syscall."""
    n = 0
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/syscall") as f:
                n += f.read().split()[0] == "16"
        except (OSError, IndexError):
            pass
    return n


def burst_then_spin(root, threads, spin_s):
    """`threads` threads search the large collection at once, more of them
    than the kernel has kretprobe instances: each search's query lies in
    userfaultfd memory, so every thread enters vexfs_ioctl_search and waits
    there until all of them are inside; then they are let go, and all spin
    in user space for `spin_s`. Needs no timing: the overlap is made."""
    stall = uffd.StallingBuffer(1)
    fd = os.open(f"{root}/large", os.O_RDONLY | os.O_DIRECTORY)
    hits = np.zeros(threads * 5 * 2, dtype=np.uint64)
    counts = np.zeros(threads, dtype=np.uint32)
    tids, errors = [], []
    done = threading.Barrier(threads + 1)

    def body(i):
        tids.append(threading.get_native_id())
        req = search_request(1, 5, 32, 0, 0, stall.addr, hits[i * 10:].ctypes.data, counts[i:].ctypes.data)
        try:
            fcntl.ioctl(fd, IOC_SEARCH, req)
        except OSError as e:
            errors.append(e.errno)
        done.wait()
        end, x = time.monotonic() + spin_s, 0
        while time.monotonic() < end:
            x += 1

    ts = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for th in ts:
        th.start()
    # Every thread inside its search, or one refused (the caller's check
    # of `errors` reports it): never an endless wait.
    eventually(lambda: bool(errors) or (len(tids) == threads and blocked_in_ioctl(tids) == threads),
               lambda ready: ready, 600)
    stall.release(struct.pack("<f", 1.0))
    done.wait()
    for th in ts:
        th.join()
    os.close(fd)
    return {"searches": threads, "errors": errors}


def missed_returns(p):
    """The count of `N operations not counted` (probe hits the kernel
    dropped) on the profiler's stderr."""
    m = re.search(r"(\d+) operations not counted", p.stderr())
    return int(m.group(1)) if m else 0


# ------------------------------------------------------------ shared checks

def check_records(t, label, p, ops=OPS, interval=1.0, probes=None):
    """Shape of --json output: intervals then one total, each saying which
    probes were used (default: the default choice's for `ops` without
    sampling); every selected op listed; count-0 ops with null figures;
    interval counts add up to the total; ops/s agrees with count/duration.
    Returns (intervals, total)."""
    probes = probes or default_probes(ops)
    intervals, total, bad = p.records()
    t.check(f"{label}: stdout is JSON objects only, one per line", not bad, repr(bad[:2]))
    said = sorted({str(r.get("probes")) for r in intervals + ([total] if total else [])})
    t.eq(f'{label}: every JSON object says "probes": "{probes}"', said, [probes])
    last = [l for l in p.out if l.strip()][-1:]
    if not t.check(f"{label}: a total object at the end", total is not None and last and
                   last[0] not in bad and json.loads(last[0]).get("kind") == "total", repr(last)[:200]):
        return intervals, None
    t.check(f"{label}: at least one interval object", intervals, "none")
    idx = [r.get("index") for r in intervals]
    first = idx[0] if idx and idx[0] in (0, 1) else 0
    t.eq(f"{label}: interval indexes count up by one (from 0 or 1)", idx, list(range(first, first + len(idx))))
    el = [r.get("elapsed_s") for r in intervals]
    t.check(f"{label}: interval elapsed_s increases", all(isinstance(x, (int, float)) for x in el) and
            all(a < b for a, b in zip(el, el[1:])), str(el[:20]))
    full = [r.get("duration_s") for r in intervals[:-1]]
    # Never shorter than asked (each boundary is the previous read plus the
    # interval); longer by however late a busy machine wakes the reader.
    t.check(f"{label}: each interval but the last lasts at least {interval:g} s",
            all(isinstance(d, (int, float)) and 0.99 * interval <= d <= interval + 60 for d in full),
            str(full[:20]))
    shapes = []
    for r in intervals + [total]:
        names = [o.get("op") for o in r.get("ops", [])]
        if sorted(names) != sorted(ops):
            shapes.append(f"{r.get('kind')} {r.get('index', '')}: ops {names}")
        for o in r.get("ops", []):
            if set(o) != OP_FIELDS:
                shapes.append(f"{o.get('op')}: fields {sorted(set(o) ^ OP_FIELDS)}")
            elif o["count"] == 0 and any(o[k] is not None for k in (*LATENCY, "mean_ns", "entry_stack_bytes",
                                                                        "max_stack_bytes")):
                shapes.append(f"{o['op']}: count 0 but figures {o}")
    t.check(f"{label}: every object lists each selected op with all fields, null figures at count 0",
            not shapes, "; ".join(shapes[:3]))
    summed = dict.fromkeys(ops, 0)
    for r in intervals:
        for op, c in counts(r).items():
            summed[op] = summed.get(op, 0) + c
    t.eq(f"{label}: interval counts add up to the total", summed, {**dict.fromkeys(ops, 0), **counts(total)})
    rate = [(o["op"], o["ops_per_sec"], o["count"] / total["duration_s"]) for o in total["ops"]
            if total.get("duration_s")]
    t.check(f"{label}: total ops_per_sec = count / duration_s",
            rate and all(abs(a - b) <= 0.01 * max(b, 1e-9) + 1e-6 for _, a, b in rate), str(rate[:4]))
    return intervals, total


def check_figures(t, label, recs):
    """Percentile order and stack figures of every op with a count, in every
    record given."""
    order, stack = [], []
    for r in recs:
        where = f"{r.get('kind')}{r.get('index', '')}"
        for o in r.get("ops", []):
            if not o.get("count"):
                continue
            lat = [o.get(k) for k in LATENCY]
            if (not all(isinstance(x, (int, float)) and x > 0 for x in lat)
                    or any(a > b for a, b in zip(lat, lat[1:]))
                    or not (isinstance(o.get("mean_ns"), (int, float)) and lat[0] <= o["mean_ns"] <= lat[-1])):
                order.append(f"{where} {o['op']}: {dict(zip(LATENCY, lat))} mean {o.get('mean_ns')}")
            e, m = o.get("entry_stack_bytes"), o.get("max_stack_bytes")
            if not (isinstance(e, int) and isinstance(m, int) and 0 < e <= m < STACK_SIZE):
                stack.append(f"{where} {o['op']}: entry {e} max {m}")
    t.check(f"{label}: 0 < min <= p50 <= p95 <= p99 <= p99.9 <= max, mean within [min, max], every op",
            not order, "; ".join(order[:3]))
    t.check(f"{label}: 0 < entry_stack_bytes <= max_stack_bytes < 16 KiB, every op", not stack,
            "; ".join(stack[:3]))


def check_exit(t, label, p, how):
    t.eq(f"{label}: exits 0 when {how}", p.rc, 0)
    t.check(f"{label}: says `vexctl profile: detached` at the end",
            any(l.startswith("vexctl profile: detached") for l in p.err), p.stderr()[-300:])
    t.check(f"{label}: no panic", "panicked" not in p.stderr(), p.stderr()[-300:])


def check_mixed(t, label, p, res, by_duration=None, probes=None):
    """Counts of a mixed_workload run against what it did."""
    intervals, total = check_records(t, label, p, probes=probes)
    if total is None:
        return
    got = counts(total)
    want = res["counts"]
    t.eq(f"{label}: search, insert, write, create, unlink, read, fsync, delete counts equal the workload's",
         {k: got.get(k) for k in want}, want)
    t.check(f"{label}: simd count >= search count (each search runs a SIMD section)",
            got.get("simd", 0) >= want["search"], f"simd {got.get('simd')}")
    t.check(f"{label}: lookups counted (creates look names up)", got.get("lookup", 0) >= want["create"],
            f"lookup {got.get('lookup')}")
    check_figures(t, label, intervals + [total])
    print("#   stack bytes at entry/max: " + ", ".join(
        f"{o['op']} {o['entry_stack_bytes']}/{o['max_stack_bytes']}" for o in total["ops"] if o["count"]), flush=True)
    s = by_op(total)["search"]
    client_max = max(res["search_ns"])
    t.check(f"{label}: profiler's max search latency <= client-observed max per ioctl",
            s["max_ns"] is not None and s["max_ns"] <= client_max, f"{s['max_ns']} ns vs {client_max} ns")
    t.check(f"{label}: profiler's median search latency <= client-observed median",
            s["p50_ns"] is not None and s["p50_ns"] <= sorted(res["search_ns"])[len(res["search_ns"]) // 2],
            f"{s['p50_ns']} ns")
    t.check(f"{label}: search max_stack_bytes > entry_stack_bytes (the SIMD probe runs deeper)",
            (s["max_stack_bytes"] or 0) > (s["entry_stack_bytes"] or 0),
            f"entry {s['entry_stack_bytes']} max {s['max_stack_bytes']}")
    if by_duration is not None:
        # Not before; after only by what a loaded machine may delay the end.
        t.check(f"{label}: total duration_s is the requested {by_duration} s",
                by_duration - 0.25 <= (total.get("duration_s") or 0) <= by_duration + 30.0,
                str(total.get("duration_s")))


# ------------------------------------------------------------------- groups

def populate(root):
    """On a mounted VexFS, what mixed_workload works on."""
    make_collection(f"{root}/small", 8, 64, seed=1)
    make_collection(f"{root}/ins", 8, 0, seed=2)
    with open(f"{root}/data", "wb") as f:
        f.write(b"d" * 4096)


def setup_mount(root):
    mount(root)
    populate(root)


def cleanup_mixed(root):
    for name in os.listdir(root):
        if name.startswith("new-"):
            os.unlink(f"{root}/{name}")


def run_counts(t, label, end_by, needed_s=None, probes=None):
    """One profiler over mixed_workload, ended by --duration or a signal;
    returns the time from the profiler's launch to the workload's end
    (None if it did not run). Counting by --duration needs the workload to
    end before the duration does: the first duration is 1.5 times
    `needed_s` (what the SIGINT round measured) plus a margin, and the
    round is retried with longer ones if the workload still outlasted it
    (a busy host)."""
    if end_by != "duration":
        return counts_round(t, label, end_by, None, probes)
    first = max(4, math.ceil(1.5 * needed_s + 2)) if needed_s else 8
    for duration in (first, 4 * first, 16 * first):
        got = counts_round(t, label, end_by, duration, probes)
        if got != "precondition":
            return got
        print(f"#   the workload outlasted --duration {duration}s: running again with a longer one", flush=True)
    t.check(f"{label}: the workload ended before the profiler's --duration", False,
            f"even {16 * first} s was too short")
    return None


def counts_round(t, label, end_by, duration, probes=None):
    """`probes`: the mechanism forced through VEXFS_PROFILE_PROBES (None:
    the default choice's)."""
    before = probe_state()
    w = Worker(mixed_workload, MNT, 0 if end_by == "duration" else 1)
    args = ["--json", "--interval", "1s", "--duration", f"{duration}s" if end_by == "duration" else "10m"]
    p = Profiler(*args, probes=probes)
    try:
        if not t.check(f"{label}: prints `vexctl profile: attached`", p.wait_attached(), p.stderr()[-300:]):
            return None
        check_attached(t, label, before, probes=probes, p=p)
        w.go()
        res = w.result()
        if end_by == "duration":
            # The profiler's --duration starts after it attached, so after
            # it was launched (t_start): the workload ended inside the
            # profile if it ended before t_start + duration, whenever this
            # process saw the `attached` line.
            if res["t_end"] >= p.t_start + duration:
                return "precondition"
            p.wait(duration + 600)
            t.check(f"{label}: ends by itself, not before its {duration} s",
                    p.rc is not None and p.t_end - p.t_start >= duration,
                    f"{p.t_end - p.t_start:.1f} s after launch")
        else:
            time.sleep(0.3)
            p.stop(signal.SIGINT)
        print(f"#   workload: {res['elapsed']:.2f} s, {len(res['search_ns'])} searches, "
              f"client median search {sorted(res['search_ns'])[len(res['search_ns']) // 2] / 1e3:.0f} us", flush=True)
        check_exit(t, label, p, "its duration ends" if end_by == "duration" else "sent SIGINT")
        check_mixed(t, label, p, res, duration if end_by == "duration" else None, probes)
        if end_by == "duration":
            t.eq(f"{label}: lists the default ops in order", [o["op"] for o in p.records()[1]["ops"]]
                 if p.records()[1] else None, list(OPS))
        # From the profiler's launch to the workload's end: what a
        # --duration must cover.
        return res["t_end"] - p.t_start
    finally:
        w.kill()
        p.kill()
        check_detached(t, label, before, [p])
        cleanup_mixed(MNT)


def test_counts(t):
    # SIGINT first: its workload's time sizes the --duration round's.
    with t.group("profile: exact counts of a known workload, ended by SIGINT"):
        needed_s = run_counts(t, "by SIGINT", "sigint")
    with t.group("profile: exact counts of a known workload, ended by --duration, with fsession for every "
                 "class (VEXFS_PROFILE_PROBES=fsession)"):
        run_counts(t, "by duration, fsession", "duration", needed_s, probes=FSESSION)
    with t.group("profile: exact counts through the kprobe fallback (VEXFS_PROFILE_PROBES=kprobe)"):
        run_counts(t, "kprobe fallback", "sigint", probes=KPROBE)


def test_filters(t):
    with t.group("profile: --pid, --mount and --ops filters (two profilers at once)"):
        # --pid: two processes, each with its own profiler.
        before = probe_state()
        ws = {"A": Worker(two_threads, [(MNT, 100, 25, 20)], [(MNT, 50, 15, 10)]),
              "B": Worker(searches_and_writes, [(MNT, 90, 20, 60)])}
        ps = {k: Profiler("--json", "--duration", "10m", "--pid", str(w.pid)) for k, w in ws.items()}
        try:
            if not t.check("--pid: both profilers attach", all(p.wait_attached() for p in ps.values()),
                           " | ".join(p.stderr()[-200:] for p in ps.values())):
                return
            for w in ws.values():
                w.go()
            done = {k: w.result()[MNT] for k, w in ws.items()}
            for p in ps.values():
                p.stop(signal.SIGTERM)
            for k, p in ps.items():
                label = f"--pid {k}"
                check_exit(t, label, p, "sent SIGTERM")
                _, total = check_records(t, label, p)
                got = counts(total)
                t.eq(f"{label}: counts exactly that process's searches, inserts and writes"
                     + (" (both of its threads)" if k == "A" else ""),
                     {op: got.get(op) for op in done[k]}, done[k])
                t.eq(f"{label}: no create, unlink, read, fsync or delete (the other process did none either)",
                     {op: got.get(op) for op in ("create", "unlink", "read", "fsync", "delete")},
                     dict.fromkeys(("create", "unlink", "read", "fsync", "delete"), 0))
                check_figures(t, label, [total] if total else [])
        finally:
            for w in ws.values():
                w.kill()
            for p in ps.values():
                p.kill()
            check_detached(t, "--pid", before, list(ps.values()))

        # --mount (and --ops): one process working on two mounts.
        before = probe_state()
        w = Worker(searches_and_writes, [(MNT, 70, 15, 25), (MNT2, 45, 35, 10)])
        sel = ("search", "insert", "write")
        ps = {MNT: Profiler("--json", "--duration", "10m", "--mount", MNT, "--ops", ",".join(sel)),
              MNT2: Profiler("--json", "--duration", "10m", "--mount", MNT2)}
        try:
            if not t.check("--mount: both profilers attach", all(p.wait_attached() for p in ps.values()),
                           " | ".join(p.stderr()[-200:] for p in ps.values())):
                return
            check_attached(t, "--mount", before, sel, p=ps[MNT])
            w.go()
            done = w.result()
            for p in ps.values():
                p.stop(signal.SIGINT)
            for m, p in ps.items():
                label = f"--mount {m}" + (" --ops search,insert,write" if m == MNT else "")
                check_exit(t, label, p, "sent SIGINT")
                _, total = check_records(t, label, p, sel if m == MNT else OPS)
                got = counts(total)
                t.eq(f"{label}: counts exactly that mount's searches, inserts and writes",
                     {op: got.get(op) for op in sel}, done[m])
                check_figures(t, label, [total] if total else [])
        finally:
            w.kill()
            for p in ps.values():
                p.kill()
            check_detached(t, "--mount", before, list(ps.values()))


def bimodal_round(t, n, every):
    """One profiled bimodal run: (the profiler's total, the client's times)
    or None if the profiler did not produce a total."""
    before = probe_state()
    w = Worker(bimodal_workload, MNT, n, every)
    p = Profiler("--json", "--duration", "10m", "--ops", "search")
    try:
        if not t.check("bimodal: attached", p.wait_attached(), p.stderr()[-300:]):
            return None
        w.go()
        res = w.result()
        p.stop(signal.SIGINT)
        check_exit(t, "bimodal", p, "sent SIGINT")
        intervals, total = check_records(t, "bimodal", p, ("search",))
        return (intervals, total, res) if total is not None else None
    finally:
        w.kill()
        p.kill()
        check_detached(t, "bimodal", before, [p])


def test_bimodal(t):
    """A search workload with two latency modes: the profiler's percentiles
    must fall in the right mode. The precondition (in the same run, the
    client sees two modes: the large searches' median over 10x the tiny
    ones' p90) needs a collection large enough for this machine's load:
    the setup grows it until the precondition holds, and says so."""
    with t.group("profile: bimodal search latency (tiny and large collection)"):
        make_collection(f"{MNT}/tiny", 32, 8, seed=3)
        n, every, large_rows = 200, 10, 20000
        attempts = 3
        for attempt in range(attempts):
            make_collection(f"{MNT}/large", 32, large_rows, seed=4)
            got = bimodal_round(t, n, every)
            if got is None:
                return
            intervals, total, res = got
            tiny, large = sorted(res["tiny"]), sorted(res["large"])
            tiny_p90, med_t, med_l = tiny[int(len(tiny) * 0.9)], tiny[len(tiny) // 2], large[len(large) // 2]
            if med_l > 10 * tiny_p90 or attempt == attempts - 1:
                break
            print(f"#   precondition not met with {large_rows} rows (tiny p90 {tiny_p90} ns, large median "
                  f"{med_l} ns): growing the large collection and running again", flush=True)
            sh(["rm", "-rf", f"{MNT}/large"])
            large_rows *= 4
        if not t.check(f"bimodal: the client sees two separate modes (large median > 10x tiny p90), with "
                       f"{large_rows} rows, attempt {attempt + 1}", med_l > 10 * tiny_p90,
                       f"tiny p90 {tiny_p90} ns, large median {med_l} ns"):
            return
        s = by_op(total)["search"]
        t.eq("bimodal: search count", s["count"], n)
        if not t.check("bimodal: search latency figures present", all(s[k] for k in LATENCY), str(s)):
            return
        cut = math.sqrt(med_t * med_l)
        print(f"#   client medians: tiny {med_t / 1e3:.0f} us, large {med_l / 1e3:.0f} us; "
              f"mode boundary {cut / 1e3:.0f} us; profiler: "
              + ", ".join(f"{k[:-3]} {s[k] / 1e3:.0f} us" for k in LATENCY if s[k]), flush=True)
        t.check("bimodal: min and p50 lie in the tiny mode", s["min_ns"] < cut and s["p50_ns"] < cut,
                f"min {s['min_ns']} p50 {s['p50_ns']} boundary {cut:.0f}")
        t.check("bimodal: p95, p99, p99.9 and max lie in the large mode",
                all(s[k] > cut for k in ("p95_ns", "p99_ns", "p999_ns", "max_ns")),
                f"p95 {s['p95_ns']} p99 {s['p99_ns']} p999 {s['p999_ns']} max {s['max_ns']} boundary {cut:.0f}")
        t.check("bimodal: p99 is no more than the client's largest large-search time",
                s["p99_ns"] <= large[-1], f"p99 {s['p99_ns']} vs client max {large[-1]}")
        t.check("bimodal: p99 is at least half the client's smallest large-search time",
                s["p99_ns"] >= large[0] / 2, f"p99 {s['p99_ns']} vs client min {large[0]}")
        # The kernel's median is at most the client's (each search it times
        # lies inside the client's ioctl call); the profiler prints its
        # bucket's middle, up to half a bucket (1/32 of the value) above it.
        t.check("bimodal: p50 is no more than the client's tiny-search median plus the histogram's "
                "resolution (1/32)", s["p50_ns"] <= med_t * (1 + 1 / 32), f"p50 {s['p50_ns']} vs {med_t}")
        check_figures(t, "bimodal", intervals + [total])


MANGLED = re.compile(r"^_ZN|^_R[A-Z0-9]|17h[0-9a-f]{16}E$")


def entry_frame(stack, fn):
    """Index of probe point `fn`'s frame in a folded stack, or None. The
    probe point is a C function that tail-calls its Rust body, FN_rs, so
    the body's frame stands for it (under fsession, called from the BPF
    trampoline, which the ftrace hook jumps to)."""
    for i, f in enumerate(stack):
        if f in (fn, f"{fn}_rs"):
            return i
    return None


def test_flamegraph(t):
    with t.group("profile: flame graph of a search workload"):
        os.makedirs(SCRATCH, exist_ok=True)
        svg, folded = f"{SCRATCH}/search.svg", f"{SCRATCH}/search.folded"
        for f in (svg, folded):
            if os.path.exists(f):
                os.unlink(f)
        before = probe_state()
        hz, busy_s = 199, 2.5
        w = Worker(search_loop, MNT, busy_s)
        # Ended by SIGINT once the workload is over, so every search falls
        # inside the profile however slowly this machine attaches.
        p = Profiler("--json", "--duration", "10m", "--frequency", str(hz),
                     "--flamegraph", svg, "--folded", folded)
        try:
            if not t.check("flame graph: attached", p.wait_attached(), p.stderr()[-300:]):
                return
            check_attached(t, "flame graph", before, probes=FSESSION, p=p)
            w.go()
            res = w.result()
            p.stop(signal.SIGINT, timeout=300)
            check_exit(t, "flame graph", p, "sent SIGINT")
            _, total = check_records(t, "flame graph", p, probes=FSESSION)
            t.eq("flame graph: counts every search while sampling", counts(total).get("search"), res["count"])
            try:
                root = ET.parse(svg).getroot()
                texts = " ".join(filter(None, (e.text for e in root.iter())))
                t.check("flame graph: the SVG parses as XML with an <svg> root", root.tag.endswith("svg"), root.tag)
                t.check("flame graph: the SVG has a vexfs_ioctl_search frame", "vexfs_ioctl_search" in texts,
                        texts[:200])
            except (OSError, ET.ParseError) as e:
                t.check("flame graph: the SVG parses as XML", False, str(e))
            try:
                with open(folded) as f:
                    lines = [l.rstrip("\n") for l in f if l.strip()]
            except OSError as e:
                lines = []
                t.check("flame graph: the folded file exists", False, str(e))
            stacks, bad = [], []
            for line in lines:
                m = re.fullmatch(r"(\S(?:.*\S)?) (\d+)", line)
                if not m:
                    bad.append(line)
                    continue
                # Module symbols may carry their module, perf-style: "f [vexfs]".
                stacks.append(([re.sub(r" \[[\w-]+\]$", "", f) for f in m.group(1).split(";")],
                               int(m.group(2))))
            t.check("flame graph: folded lines are `frame;frame;... COUNT`", lines and not bad, repr(bad[:2]))
            roots = {s[0] for s, _ in stacks}
            t.check("flame graph: every folded stack's root frame is an op name", roots and roots <= set(OPS),
                    str(sorted(roots)[:8]))
            search = [(s, c) for s, c in stacks if s[0] == "search"]
            n_search = sum(c for _, c in search)
            # A sample can land in the probes' own machinery (see
            # PROBE_MACHINERY): such stacks stop there or no longer hold
            # the search's frame, and are left out; how many there are
            # depends on timing, so it is reported, not checked.
            through = [(s, c) for s, c in search if entry_frame(s, "vexfs_ioctl_search") is not None]
            n_through = sum(c for _, c in through)
            n_trampoline = sum(c for s, c in search if entry_frame(s, "vexfs_ioctl_search") is None
                               and any(PROBE_MACHINERY.search(f) for f in s))
            print(f"#   search samples: {n_search}, through vexfs_ioctl_search {n_through}, "
                  f"in the probes' own machinery {n_trampoline}", flush=True)
            if through:
                print(f"#   e.g. {';'.join(max(through, key=lambda x: x[1])[0])[:400]}", flush=True)
            t.check("flame graph: every search sample passes through vexfs_ioctl_search (but those in the probes' "
                    "own machinery)", n_search and n_through + n_trampoline == n_search and n_through > 0,
                    f"{n_through} + {n_trampoline} of {n_search}; "
                    + str([s for s, _ in search if entry_frame(s, "vexfs_ioctl_search") is None][:1])[:300])
            t.check("flame graph: they start at the syscall entry (op;entry...;do_syscall_64;...;vexfs_ioctl_search)",
                    through and all(entry_frame(s, "vexfs_ioctl_search") > 1 and
                                    any(f.startswith("entry_SYSCALL") for f in s) for s, _ in through),
                    str(through[:1])[:300])
            t.check("flame graph: the BPF trampoline on vexfs_ioctl_search is named as such (bpf_trampoline_*), "
                    "not as a random kernel function",
                    through and all(s[entry_frame(s, "vexfs_ioctl_search") - 1].startswith("bpf_trampoline_")
                                    for s, _ in through), str(through[:1])[:300])
            in_simd = sum(c for s, c in search if entry_frame(s, "vexfs_simd_batch") is not None)
            t.check("flame graph: most search samples are inside vexfs_simd_batch (the distance loop)",
                    n_search and in_simd > n_search / 2, f"{in_simd} of {n_search}")
            mangled = sorted({f for s, _ in stacks for f in s if MANGLED.search(f)})
            t.check("flame graph: no mangled Rust symbol", not mangled, str(mangled[:3]))
            # At most --frequency samples per second of the search's time;
            # a busy host can only lose samples (a descheduled vCPU misses
            # timer ticks), so the lower bound only catches a sampling rate
            # off by an order of magnitude.
            expect = hz * res["busy_ns"] / 1e9
            t.check(f"flame graph: search samples match --frequency {hz} Hz over the busy time (0.05x-1.3x)",
                    0.05 * expect <= n_search <= 1.3 * expect, f"{n_search} samples, {expect:.0f} expected")
        finally:
            w.kill()
            p.kill()
            check_detached(t, "flame graph", before, [p])


def test_missed_returns(t):
    """More concurrent searches than kretprobe instances. fsession probes
    have no instances to run out of: every search is counted and nothing is
    reported dropped. Through the kprobe fallback the returns the kernel
    drops are reported and every other search is counted. Either way the
    frames left behind do not make later user-space samples look like
    VexFS."""
    for probes in (FSESSION, KPROBE):
        with t.group(f"profile: more concurrent operations than kretprobe instances ({probes} probes)"):
            burst_round(t, probes)


def burst_round(t, probes):
    label = f"burst ({probes})"
    folded = f"{SCRATCH}/burst-{probes}.folded"
    threads = 16
    w = Worker(burst_then_spin, MNT, threads, 3.0)
    p = Profiler("--json", "--duration", "10m", "--ops", "search", "--frequency", "199",
                 "--folded", folded, probes=None if probes == FSESSION else probes)
    try:
        if not t.check(f"{label}: attached", p.wait_attached(), p.stderr()[-300:]):
            return
        t.check(f"{label}: the profiler says it uses {probes} probes", p.mechanism() == probes,
                p.stderr()[-400:])
        w.go()
        res = w.result()
        p.stop(signal.SIGINT)
        check_exit(t, label, p, "SIGINT")
        _, total = check_records(t, label, p, ops=("search",), probes=probes)
        missed = missed_returns(p)
        t.eq(f"{label}: the searches all succeeded", res["errors"], [])
        if probes == FSESSION:
            t.eq(f"{label}: nothing dropped (16 searches were inside at once)", missed, 0)
            t.eq(f"{label}: every search counted", counts(total).get("search", 0), res["searches"])
        else:
            t.check(f"{label}: the kernel dropped some returns (16 searches were inside at once)", missed > 0,
                    p.stderr()[-300:])
            t.eq(f"{label}: counted searches + reported dropped probe hits = searches run",
                 counts(total).get("search", 0) + missed, res["searches"])
        lines = _lines(folded)
        # A sample taken in the probes' own entry or return path (the
        # optimized kprobe's detour before the search's frame exists, the
        # kretprobe's return trampoline after it is gone, or the BPF
        # trampoline's program runs) is still inside the operation. A sample
        # from the user-space spin has neither the search nor probe
        # machinery on its stack.
        stray = [l for l in lines
                 if "vexfs_ioctl_search" not in l
                 and not PROBE_MACHINERY.search(l)]
        t.check(f"{label}: every sample is inside vexfs_ioctl_search (none from the user-space spin)",
                lines and not stray, f"{len(stray)} of {len(lines)}: {stray[:2]}")
    finally:
        w.kill()
        p.kill()


def test_errors(t):
    with t.group("profile: errors, privileges and the table output"):
        before = probe_state()
        r = run([*as_uid(1000), "vexctl", "profile", "--duration", "1s"], timeout=120)
        t.check("as uid 1000: exits non-zero naming the missing privilege (CAP_BPF / CAP_PERFMON / root)",
                r.returncode != 0 and re.search(r"CAP_BPF|CAP_PERFMON|root", r.stderr) is not None
                and "attached" not in r.stderr, f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        t.check("as uid 1000: no panic, one short message", "panicked" not in r.stderr and
                len(r.stderr.strip().splitlines()) <= 3, r.stderr.strip()[-300:])
        r = run(["vexctl", "profile", "--ops", "search,bogus", "--duration", "1s"], timeout=120)
        t.check("--ops with an unknown op: exits non-zero naming it",
                r.returncode != 0 and "bogus" in r.stderr and "attached" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        t.check("--ops with an unknown op: lists the valid ops",
                all(op in r.stderr for op in ("search", "insert", "simd")), r.stderr.strip()[-300:])
        r = run(["env", "VEXFS_PROFILE_PROBES=uprobe", "vexctl", "profile", "--duration", "1s"], timeout=120)
        t.check("VEXFS_PROFILE_PROBES=uprobe: exits non-zero naming the variable and the valid choices",
                r.returncode != 0 and "VEXFS_PROFILE_PROBES" in r.stderr and "kprobe" in r.stderr
                and "attached" not in r.stderr, f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        r = run(["vexctl", "profile", "--duration", "5x"], timeout=120)
        t.check("--duration 5x: exits non-zero with a clear message",
                r.returncode != 0 and "5x" in r.stderr and "attached" not in r.stderr and "panicked" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        r = run(["vexctl", "profile", "--mount", "/tmp", "--duration", "1s"], timeout=120)
        t.check("--mount on a directory that is not VexFS: exits non-zero",
                r.returncode != 0 and "attached" not in r.stderr and "panicked" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        # Bad output paths and pids fail before anything is attached.
        r = run(["vexctl", "profile", "--duration", "10m", "--flamegraph", "/nonexistent/x.svg"], timeout=120)
        t.check("--flamegraph into a missing directory: fails at once, naming the path",
                r.returncode != 0 and "/nonexistent/x.svg" in r.stderr and "attached" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        r = run(["vexctl", "profile", "--duration", "10m", "--pid", "999999"], timeout=120)
        t.check("--pid of no process: fails at once",
                r.returncode != 0 and "no such process" in r.stderr and "attached" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        r = run(["vexctl", "profile", "--duration", "10m", "--mount", MNT, "--ops", "simd"], timeout=120)
        t.check("--mount with simd alone: refused (SIMD batches belong to a search or insert)",
                r.returncode != 0 and "simd" in r.stderr and "attached" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        release = threading.Event()
        holder = threading.Thread(target=release.wait)
        holder.start()
        r = run(["vexctl", "profile", "--duration", "10m", "--pid", str(holder.native_id)], timeout=120)
        release.set()
        holder.join()
        t.check("--pid of a thread (not a process): refused, naming the process",
                r.returncode != 0 and f"process {os.getpid()}" in r.stderr and "attached" not in r.stderr,
                f"status {r.returncode}: {r.stderr.strip()[-300:]}")
        check_detached(t, "after the failed runs", before)

        # Killed outright: nothing it attached may outlive the process (no
        # tracefs event or pinned object that only a clean exit removes).
        p = Profiler("--json", "--duration", "10m", "--flamegraph", f"{SCRATCH}/killed.svg")
        try:
            if t.check("SIGKILL: attached", p.wait_attached(), p.stderr()[-300:]):
                check_attached(t, "SIGKILL", before, probes=FSESSION, p=p)
                p.proc.kill()
                p.wait(30)
        finally:
            p.kill()
            check_detached(t, "after SIGKILL", before, [p])

        # The table, without --json.
        w = Worker(searches_and_writes, [(MNT, 40, 0, 20)])
        p = Profiler("--duration", "3s", "--interval", "1s", "--ops", "search,write")
        try:
            if t.check("table: attached", p.wait_attached(), p.stderr()[-300:]):
                w.go()
                w.result()
                p.wait(120)
                out = "\n".join(p.out)
                check_exit(t, "table", p, "its duration ends")
                t.check("table: has a header with p50, p99 and max and a row per selected op",
                        all(re.search(rf"(?im)^.*\b{x}\b", out) for x in ("p50", "p99", "max", "search", "write"))
                        and not re.search(r"(?m)^\s*insert\b", out), out[-600:])
        finally:
            w.kill()
            p.kill()
            check_detached(t, "table", before, [p])


TRACEFS = "/sys/kernel/tracing"
# `<task>-<pid> [cpu] <flags> <time>: vexfs_<what>_done: key value key value ...`
TRACE_LINE = re.compile(r"-(\d+)\s+\[\d+\].*?: (vexfs_\w+_done): (.*)$")
# Every event of kmod/vexfs_trace.h.
EVENTS = (*TRACEPOINTS.values(), "vexfs_insert_done", "vexfs_delete_done", "vexfs_search_done",
          "vexfs_simd_batch_done", "vexfs_commit_done", "vexfs_checkpoint_done")


class TraceInstance:
    """An ftrace instance of its own with VexFS's events on: other tracing
    is untouched. `events()` parses what it recorded."""

    def __init__(self, name):
        self.path = f"{TRACEFS}/instances/{name}"

    def __enter__(self):
        os.makedirs(self.path, exist_ok=True)
        # Empty, should a crashed run have left it behind.
        with open(f"{self.path}/trace", "w"):
            pass
        self.enable(True)
        return self

    def enable(self, on):
        with open(f"{self.path}/events/vexfs/enable", "w") as f:
            f.write("1" if on else "0")

    def lines(self):
        with open(f"{self.path}/trace") as f:
            return [l.strip() for l in f.read().splitlines() if TRACE_LINE.search(l)]

    def events(self, pid=None):
        """[(event, {field: value})] in order, of process `pid` if given;
        `dev M:m` reads as (M, m), numbers as ints (flags in hex too)."""
        out = []
        for line in self.lines():
            tid, ev, rest = TRACE_LINE.search(line).groups()
            if pid is not None and int(tid) != pid:
                continue
            words = rest.split()
            fields = {}
            for key, val in zip(words[::2], words[1::2]):
                fields[key] = tuple(map(int, val.split(":"))) if key == "dev" else int(val, 0)
            out.append((ev, fields))
        return out

    def __exit__(self, *exc):
        self.enable(False)
        os.rmdir(self.path)


def test_tracepoints(t):
    """The vexfs:vexfs_*_done events as ftrace shows them: each file and
    vector operation of this process appears once, naming the mount's
    device and the inode, with what the operation returned (and a search's
    shape, a batch's size) and a duration; nothing appears while the events
    are off. (Commits and checkpoints: the stack-disk group.)"""
    with t.group("tracepoints: vexfs:vexfs_*_done events through ftrace"):
        events = f"{TRACEFS}/events/vexfs"
        if not t.check(f"{events} lists the twelve events",
                       all(os.path.isdir(f"{events}/{e}") for e in EVENTS),
                       str(sorted(os.listdir(events)) if os.path.isdir(events) else "missing")):
            return
        coll, dim = f"{MNT}/tp-coll", 4
        make_collection(coll, dim, 0, seed=5)
        queries = np.ones((2, dim), dtype=np.float32)
        hits = np.zeros(2 * 3 * 2, dtype=np.uint64)
        found = np.zeros(2, dtype=np.uint32)
        search = search_request(2, 3, dim, SEARCH_EXACT, 0, queries.ctypes.data, hits.ctypes.data,
                                found.ctypes.data)
        refused = search_request(2, 0, dim, 0, 0, queries.ctypes.data, hits.ctypes.data, found.ctypes.data)
        with TraceInstance("vexfs-test") as tr:
            path, size = f"{MNT}/tp-file", 4096
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            st, dst, cst = os.fstat(fd), os.stat(MNT), os.stat(coll)
            os.write(fd, b"t" * size)
            got = len(os.pread(fd, 100, 10))
            os.fsync(fd)
            os.close(fd)
            os.unlink(path)
            try:
                os.stat(f"{MNT}/{'n' * 300}")
                too_long = None
            except OSError as e:
                too_long = e.errno
            ins = FastInsert(coll, dim, [5], 0, seed=6)
            ins(0)
            ins.close()
            cfd = os.open(coll, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.ioctl(cfd, IOC_SEARCH, search)
                try:
                    fcntl.ioctl(cfd, IOC_SEARCH, refused)
                    k0 = None
                except OSError as e:
                    k0 = e.errno
            finally:
                os.close(cfd)
            delete_ids(coll, [0, 1])
            tr.enable(False)
            # Off: an operation now leaves no line.
            with open(f"{MNT}/tp-off", "wb") as f:
                f.write(b"x")
            os.unlink(f"{MNT}/tp-off")
            raw = tr.lines()
            mine = tr.events(os.getpid())
        sh(["rm", "-rf", coll])
        print(f"#   as ftrace shows them: {raw[0] if raw else None} | "
              f"{next((l for l in raw if 'vexfs_search_done' in l), None)}", flush=True)
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        t.check("every event of a mount names its device; every one has a duration",
                mine and all(f.get("dev", dev) == dev and "ns" in f for _, f in mine), str(mine[:3]))
        seen = {}
        for ev, f in mine:
            seen.setdefault(ev, []).append(f)

        def pick(ev, *keys):
            return [tuple(f.get(k) for k in keys) for f in seen.get(ev, [])]
        t.eq("create: once, on the directory, returning 0", pick("vexfs_create_done", "ino", "ret"),
             [(dst.st_ino, 0)])
        t.eq("write: once, on the file, returning the bytes written", pick("vexfs_write_done", "ino", "ret"),
             [(st.st_ino, size)])
        t.eq("read: once, on the file, returning the bytes read", pick("vexfs_read_done", "ino", "ret"),
             [(st.st_ino, got)])
        t.eq("fsync: once, on the file, returning 0", pick("vexfs_fsync_done", "ino", "ret"), [(st.st_ino, 0)])
        t.eq("unlink: once, on the directory, returning 0", pick("vexfs_unlink_done", "ino", "ret"),
             [(dst.st_ino, 0)])
        lookups = pick("vexfs_lookup_done", "ino", "ret")
        t.check("lookup: the new name was looked up in the directory, returning 0", (dst.st_ino, 0) in lookups,
                str(lookups))
        t.eq("a 300-byte name fails with ENAMETOOLONG", too_long, errno.ENAMETOOLONG)
        t.check("lookup: that failure returned -ENAMETOOLONG", (dst.st_ino, -errno.ENAMETOOLONG) in lookups,
                str(lookups))
        t.eq("insert: once, on the collection, 5 rows, returning 0", pick("vexfs_insert_done", "ino", "count", "ret"),
             [(cst.st_ino, 5, 0)])
        t.eq("a search with k = 0 is refused with EINVAL", k0, errno.EINVAL)
        t.eq("search: the exact one (nq 2, k 3, ef 0, flags 0x1) returning 0, then the refused one (k 0) "
             "returning -EINVAL", pick("vexfs_search_done", "ino", "nq", "k", "ef", "flags", "ret"),
             [(cst.st_ino, 2, 3, 0, 1, 0), (cst.st_ino, 2, 0, 0, 0, -errno.EINVAL)])
        t.eq("delete: once, on the collection, 2 ids, returning 0", pick("vexfs_delete_done", "ino", "count", "ret"),
             [(cst.st_ino, 2, 0)])
        batches = pick("vexfs_simd_batch_done", "floats")
        t.check("simd: the search's SIMD sections, each with its float count", batches and
                all(f and f > 0 for (f,) in batches), str(batches[:4]))
        t.eq("nothing is traced once the events are off: one create, write and unlink each (not tp-off's)",
             [len(seen.get(ev, [])) for ev in ("vexfs_create_done", "vexfs_write_done", "vexfs_unlink_done")],
             [1, 1, 1])


def test_profile(t):
    """Every profiler group, on two mounts of their own (the module is loaded
    by the suite)."""
    ok, why = profile_available()
    if not ok:
        with t.group("profile"):
            t.check("vexctl profile --help works", False, why)
        return
    with t.group("profile: setup"):
        os.makedirs(SCRATCH, exist_ok=True)
        t.check(f"debugfs shows {KPROBE_LIST}", os.path.exists(KPROBE_LIST))
        t.check("bpftool lists programs", run(["bpftool", "prog", "show", "--json"]).returncode == 0)
        setup_mount(MNT)
        setup_mount(MNT2)
        t.check("no vexfs kprobe before the profiler runs", not probe_state()["kprobes"],
                str(probe_state()["kprobes"][:3]))
    try:
        test_tracepoints(t)
        test_counts(t)
        test_filters(t)
        test_bimodal(t)
        test_flamegraph(t)
        test_missed_returns(t)
        test_errors(t)
    finally:
        for m in (MNT, MNT2):
            run(["umount", m])
