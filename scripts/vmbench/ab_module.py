#!/usr/bin/env python3
"""In-VM benchmark: two builds of vexfs.ko, A ("before") and B ("after"),
compared in one guest boot.

    ab_module.py A.ko B.ko        (or $VEXFS_AB_A and $VEXFS_AB_B)

`make bench-ab` runs it with the module of an earlier commit as A and the
working tree's kmod/vexfs.ko as B. Each round loads each module in turn
(order A B, B A, A B, ...: $VEXFS_BENCH_ROUNDS rounds, default 4), mounts
it and runs the same fixed workload:

  files   create + write 4 KiB + fsync + close of many small files; stat
          of them and lookup of names never used; open + read + close;
          unlink; a sequential 4 KiB pwrite loop and pread loop on one
          1 MiB file
  vectors batch inserts (100 rows) of 3,000 x 32 rows into a flat L2
          collection and the deletes of those rows; exact k = 10 searches
          on a 3,000 x 32 collection; HNSW (M 8, ef_construction 64)
          collections of 500 x 32 rows inserted in batches of 50; HNSW
          k = 10 searches (ef 64)

then a short run of the same workload under `vexctl profile --json`, whose
total gives, per operation class, the deepest kernel stack seen (at entry
and inside) and the p50 latency; then it unmounts and unloads the module.
The workload's sizes are calibrated once, on A, before the first round, so
that each phase takes about $VEXFS_AB_PHASE_S guest seconds (default 0.3)
in $VEXFS_AB_BLOCKS blocks (default 4); a block creates enough files that
unlinking them takes 0.12 s (shorter unlink blocks scatter). A phase's rate
is its median block when the guest's clock counts instructions (a block is
then slowed only by the kernel's own deferred work, which lands in it or
not), else its best block (a busy host only ever slows the emulated CPU
down). Each figure is the median over rounds of after/before within the same
round, with the lowest and highest round. Stack figures are not timings:
they are shown in bytes, before and after.

Under TCG the CPU is emulated: read the ratios, not the rates. Under plain
TCG the guest's clock is the host's, so another VM on the host moves the
ratios by tens of percent; `make bench-ab` boots with VEXFS_VM_ICOUNT=0
(QEMU -icount: the guest's clock counts instructions, 1 ns each), where an
A/A run agrees within 0.2 % in the median and 1.6 % in any round: the
ratios then compare the instructions each build executes. With A = B the
ratios show the noise floor. p50 latencies come from the profiler's
histogram (steps of up to 6.25 %). Prints a table, writes
bench-results/ab_module.json."""

import fcntl
import hashlib
import json
import os
import statistics
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vmtest"))
from harness import BAD_KERNEL_LOG, KernelLog, mount, run, sh, umount  # noqa: E402
from profiler import OPS, FastSearch, Profiler, by_op, make_collection  # noqa: E402
from abi import INDEX_HNSW, IOC_DELETE, IOC_INSERT, IOC_SEARCH, SEARCH_REQ, create_raw  # noqa: E402
from results import write_result  # noqa: E402

MNT = "/mnt/vexab"
LABELS = ("before", "after")
ROUNDS = int(os.environ.get("VEXFS_BENCH_ROUNDS", "4"))
PHASE_S = float(os.environ.get("VEXFS_AB_PHASE_S", "0.3"))   # target length of one phase
BLOCKS = int(os.environ.get("VEXFS_AB_BLOCKS", "4"))          # a phase is this many blocks
# Set by scripts/vm-exec when QEMU counts instructions (-icount): the
# guest's clock then advances 2^shift ns per instruction executed.
ICOUNT = os.environ.get("VEXFS_VM_ICOUNT")
BLOCK_RATE = statistics.median if ICOUNT else max
CHUNK, FILE_BYTES = 4096, 1 << 20
DIM, FLAT_ROWS, FLAT_BATCH, K = 32, 3000, 100, 10
HNSW_M, HNSW_EFC, HNSW_ROWS, HNSW_BATCH, HNSW_EF = 8, 64, 500, 50, 64
ATTACH_TIMEOUT = 180
# A pause before every timed phase, so that the work the kernel defers
# (RCU callbacks freeing the last phase's inodes, dentries and pages) is
# done before the clock starts, not inside the next phase.
SETTLE_S = 0.05
# Unlink blocks shorter than this scatter by several % (the kernel's
# deferred frees land in them or not): 0.12 s of unlinks (~3,500 files under
# -icount) scatter by about 1 %.
UNLINK_S = 0.12

# (phase, what one operation is, unit of the rate), in the order they run.
PHASES = (
    ("create", "create + write 4 KiB + fsync + close", "files/s"),
    ("stat", "stat of a file + lookup of a missing name", "ops/s"),
    ("read", "open + read 4 KiB + close", "files/s"),
    ("unlink", "unlink", "files/s"),
    ("seq_write", "sequential 4 KiB pwrite, 1 MiB file", "ops/s"),
    ("seq_read", "sequential 4 KiB pread, 1 MiB file", "ops/s"),
    ("flat_insert", f"flat insert, batches of {FLAT_BATCH} x {DIM}", "rows/s"),
    ("flat_delete", f"flat delete, batches of {FLAT_BATCH}", "rows/s"),
    ("flat_search", f"exact search {FLAT_ROWS} x {DIM} l2 k={K}", "queries/s"),
    ("hnsw_insert", f"HNSW insert M {HNSW_M} efc {HNSW_EFC}, {HNSW_ROWS} rows", "rows/s"),
    ("hnsw_search", f"HNSW search {HNSW_ROWS} x {DIM} k={K} ef {HNSW_EF}", "queries/s"),
)
# A block creates plan["files"] files and unlinks them, and deletes the rows
# it inserted; the size of one calibration probe of the other phases: files (stat, read),
# passes over the file (seq_*), batches of FLAT_ROWS or HNSW_ROWS rows
# (*_insert), queries (*_search).
PROBE = {"stat": 200, "read": 200, "seq_write": 1, "seq_read": 1, "flat_insert": 1, "flat_search": 10,
         "hnsw_insert": 1, "hnsw_search": 10}


def module_loaded():
    with open("/proc/modules") as f:
        return any(line.split()[0] == "vexfs" for line in f)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Rows:
    """n rows (ids from `first_id`, random vectors) as prepared insert and
    delete ioctls of `batch` rows each."""

    def __init__(self, n, batch, first_id, seed):
        self.n = n
        self.ids = np.arange(first_id, first_id + n, dtype=np.uint64)
        self.vecs = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
        self.ins, self.dels = [], []
        for at in range(0, n, batch):
            s = min(batch, n - at)
            self.ins.append(struct.pack("<IIQQ", s, DIM, self.ids[at:].ctypes.data, self.vecs[at:].ctypes.data))
            self.dels.append(struct.pack("<IIQ", s, 0, self.ids[at:].ctypes.data))

    def insert(self, fd):
        for req in self.ins:
            fcntl.ioctl(fd, IOC_INSERT, req)

    def delete(self, fd):
        for req in self.dels:
            fcntl.ioctl(fd, IOC_DELETE, req)


# ----------------------------------------------------------------- workload

class Workload:
    """The phases on one mount. `plan` holds the block sizes: "files" (files
    a block creates) and, per phase in PROBE, its size per block. Each
    phase method returns (operations, seconds), its setup left out."""

    def __init__(self, plan):
        self.plan = plan
        self.buf = os.urandom(CHUNK)
        self.seq = os.open(f"{MNT}/seq", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(self.seq, b"\0" * FILE_BYTES)
        self.files = []
        self.serial = 0        # makes every missing name and collection new
        make_collection(f"{MNT}/search", DIM, FLAT_ROWS, seed=11)
        self.searcher = FastSearch(f"{MNT}/search", np.random.default_rng(12).normal(size=(1, DIM)), K)
        self.flat_dir = f"{MNT}/flat"
        os.mkdir(self.flat_dir)
        create_raw(self.flat_dir, DIM, "l2")
        self.flat = os.open(self.flat_dir, os.O_RDONLY | os.O_DIRECTORY)
        self.flat_rows = None
        self.flat_inserted = 0
        self.hnsw_rows = Rows(HNSW_ROWS, HNSW_BATCH, 0, seed=13)
        hs = self.new_hnsw()
        self.hnsw_rows.insert(hs)
        q = np.ascontiguousarray(np.random.default_rng(14).normal(size=(1, DIM)), dtype=np.float32)
        # The request points into these arrays: kept alive with it.
        self.hnsw_q, self.hnsw_hits = q, np.zeros(K * 2, dtype=np.uint64)
        self.hnsw_counts = np.zeros(1, dtype=np.uint32)
        self.hnsw_req = struct.pack(SEARCH_REQ, 1, K, DIM, 0, HNSW_EF, 0, q.ctypes.data,
                                    self.hnsw_hits.ctypes.data, self.hnsw_counts.ctypes.data)
        self.hnsw_search_fd = hs
        self.hnsw_fds = []

    def new_hnsw(self):
        self.serial += 1
        path = f"{MNT}/hnsw{self.serial}"
        os.mkdir(path)
        create_raw(path, DIM, "l2", INDEX_HNSW, HNSW_M, HNSW_EFC)
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    # files
    def create(self, n=None):
        n = self.plan["files"] if n is None else n
        self.serial += 1
        names = [f"{MNT}/f{self.serial}-{i}" for i in range(n)]
        flags, buf = os.O_CREAT | os.O_EXCL | os.O_WRONLY, self.buf
        t0 = time.perf_counter()
        for name in names:
            fd = os.open(name, flags, 0o644)
            os.write(fd, buf)
            os.fsync(fd)
            os.close(fd)
        dt = time.perf_counter() - t0
        self.files = names
        return n, dt

    def some_files(self, n):
        """n of the files, going round them."""
        return [self.files[i % len(self.files)] for i in range(n)]

    def stat(self, n=None):
        """n stats of files and n lookups of names never used before."""
        names = self.some_files(self.plan["stat"] if n is None else n)
        self.serial += 1
        missing = [f"{MNT}/m{self.serial}-{i}" for i in range(len(names))]
        t0 = time.perf_counter()
        for name, gone in zip(names, missing):
            os.stat(name)
            try:
                os.stat(gone)
            except FileNotFoundError:
                pass
        return 2 * len(names), time.perf_counter() - t0

    def read(self, n=None):
        names = self.some_files(self.plan["read"] if n is None else n)
        t0 = time.perf_counter()
        for name in names:
            fd = os.open(name, os.O_RDONLY)
            os.read(fd, CHUNK)
            os.close(fd)
        return len(names), time.perf_counter() - t0

    def unlink(self):
        names, self.files = self.files, []
        t0 = time.perf_counter()
        for name in names:
            os.unlink(name)
        return len(names), time.perf_counter() - t0

    def seq_write(self, passes=None):
        passes = self.plan["seq_write"] if passes is None else passes
        fd, buf = self.seq, self.buf
        t0 = time.perf_counter()
        for _ in range(passes):
            for off in range(0, FILE_BYTES, CHUNK):
                os.pwrite(fd, buf, off)
        return passes * (FILE_BYTES // CHUNK), time.perf_counter() - t0

    def seq_read(self, passes=None):
        passes = self.plan["seq_read"] if passes is None else passes
        fd = self.seq
        t0 = time.perf_counter()
        for _ in range(passes):
            for off in range(0, FILE_BYTES, CHUNK):
                os.pread(fd, CHUNK, off)
        return passes * (FILE_BYTES // CHUNK), time.perf_counter() - t0

    # vectors
    def flat_insert(self, passes=None):
        passes = self.plan["flat_insert"] if passes is None else passes
        n = passes * FLAT_ROWS
        if self.flat_rows is None or self.flat_rows.n != n:
            self.flat_rows = Rows(n, FLAT_BATCH, 0, seed=15)
        t0 = time.perf_counter()
        self.flat_rows.insert(self.flat)
        dt = time.perf_counter() - t0
        self.flat_inserted = n
        return n, dt

    def flat_delete(self):
        n, self.flat_inserted = self.flat_inserted, 0
        t0 = time.perf_counter()
        if n:
            self.flat_rows.delete(self.flat)
        return n, time.perf_counter() - t0

    def flat_search(self, passes=None):
        passes = self.plan["flat_search"] if passes is None else passes
        s = self.searcher
        t0 = time.perf_counter()
        for _ in range(passes):
            s()
        return passes, time.perf_counter() - t0

    def hnsw_insert(self, passes=None):
        passes = self.plan["hnsw_insert"] if passes is None else passes
        dt = 0.0
        for _ in range(passes):
            fd = self.new_hnsw()
            self.hnsw_fds.append(fd)
            t0 = time.perf_counter()
            self.hnsw_rows.insert(fd)
            dt += time.perf_counter() - t0
        return passes * HNSW_ROWS, dt

    def hnsw_search(self, passes=None):
        passes = self.plan["hnsw_search"] if passes is None else passes
        fd, req = self.hnsw_search_fd, self.hnsw_req
        t0 = time.perf_counter()
        for _ in range(passes):
            fcntl.ioctl(fd, IOC_SEARCH, req)
        return passes, time.perf_counter() - t0

    def block(self):
        """One block of every phase: {phase: [operations, seconds]}."""
        out = {}
        for name, _, _ in PHASES:
            time.sleep(SETTLE_S)
            out[name] = list(getattr(self, name)())
        return out

    def small(self, files):
        """One short pass of every phase (for the profiler)."""
        self.create(files)
        self.stat(files)
        self.read(files)
        self.unlink()
        self.seq_write(1)
        self.seq_read(1)
        self.flat_insert(1)
        self.flat_delete()
        self.flat_search(10)
        self.hnsw_insert(1)
        self.hnsw_search(10)

    def close(self):
        for fd in [self.seq, self.flat, self.hnsw_search_fd] + self.hnsw_fds:
            os.close(fd)
        self.hnsw_fds = []
        self.searcher.close()


def calibrate():
    """Block sizes that make each phase take about PHASE_S / BLOCKS seconds
    per block, unlink at least UNLINK_S (measured on the current module,
    after a warm-up)."""
    target = PHASE_S / BLOCKS
    plan = {"files": 200, **PROBE}
    w = Workload(plan)
    w.block()                                      # warm-up
    n, dt = w.create(1000)
    n_u, dt_u = w.unlink()
    plan["files"] = max(100, int(n / dt * target), int(n_u / dt_u * UNLINK_S))
    w.create()
    for name, size in PROBE.items():
        for _ in range(2):                         # a warm-up probe, then the measured one
            ops, dt = getattr(w, name)(size)
            if name == "flat_insert":
                w.flat_delete()
        plan[name] = max(1, round(size * target / dt))
    w.unlink()
    w.close()
    return plan


# -------------------------------------------------------------- one session

def profile_totals(p):
    _, total, _ = p.records()
    return by_op(total) if total else None


def session(ko, plan, klog, profile=True):
    """Loads `ko`, mounts it, runs BLOCKS blocks of every phase (a phase's
    rate: BLOCK_RATE of its blocks) and, with `profile`, a short run under
    `vexctl profile`; unmounts and unloads. Returns a dict of the figures."""
    t_start = time.monotonic()
    sh(["insmod", ko])
    out = {"ko": ko}
    try:
        mount(MNT)
        try:
            w = Workload(plan)
            try:
                w.small(100)                       # warm-up: the new module's code, caches
                t_blocks = time.monotonic()
                blocks = [w.block() for _ in range(BLOCKS)]
                out["rates"] = {name: BLOCK_RATE([b[name][0] / b[name][1] for b in blocks])
                                for name, _, _ in PHASES}
                out["blocks"] = blocks
                t_profile = time.monotonic()
                out["seconds_blocks"] = t_profile - t_blocks
                if profile:
                    out["profile"] = profile_run(w, plan)
                out["seconds_profile"] = time.monotonic() - t_profile
            finally:
                w.close()
        finally:
            umount(MNT)
    finally:
        r = run(["rmmod", "vexfs"])
        if r.returncode != 0:
            raise RuntimeError(f"rmmod vexfs failed: {r.stderr.strip()}")
    bad = [line for line in klog.new_lines() if BAD_KERNEL_LOG.search(line)]
    out["kernel_log"] = bad[:20]
    out["seconds"] = time.monotonic() - t_start
    return out


def profile_run(w, plan):
    """A short pass of every phase under `vexctl profile --json`: per
    operation class, count, entry and max stack bytes, p50 latency."""
    p = Profiler("--json", "--duration", "30m", "--interval", "10s")
    try:
        if not p.wait_attached(ATTACH_TIMEOUT):
            return {"error": f"did not attach: {p.why()}"}
        w.small(min(plan["files"], 200))
        rc = p.stop(timeout=120)
        ops = profile_totals(p)
        if rc != 0 or ops is None:
            return {"error": f"exit status {rc}, total {'missing' if ops is None else 'present'}: {p.why()}"}
        return {op: {k: ops[op].get(k) for k in ("count", "entry_stack_bytes", "max_stack_bytes", "p50_ns")}
                for op in OPS if op in ops}
    finally:
        p.kill()


# -------------------------------------------------------------------- table

def spread(values):
    return f"[{min(values):.3f}-{max(values):.3f}]"


def summarise(rounds):
    """Per measure: before/after medians, per-round ratios, their median."""
    rates = {}
    for name, what, unit in PHASES:
        b = [r["before"]["rates"][name] for r in rounds]
        a = [r["after"]["rates"][name] for r in rounds]
        ratios = [y / x for x, y in zip(b, a)]
        rates[name] = {"what": what, "unit": unit, "before": b, "after": a, "ratio_per_round": ratios,
                       "before_median": statistics.median(b), "after_median": statistics.median(a),
                       "median_ratio": statistics.median(ratios)}
    stacks, p50 = {}, {}
    profiled = [r for r in rounds if "error" not in r["before"]["profile"] and "error" not in r["after"]["profile"]]
    for op in OPS:
        per = {lab: [r[lab]["profile"].get(op, {}) for r in profiled] for lab in LABELS}
        stacks[op] = {}
        for lab in LABELS:
            for key in ("entry_stack_bytes", "max_stack_bytes"):
                vals = [x.get(key) for x in per[lab] if x.get(key) is not None]
                stacks[op].setdefault(lab, {})[key] = {"deepest": max(vals) if vals else None,
                                                       "per_round": vals}
        pairs = [(x.get("p50_ns"), y.get("p50_ns")) for x, y in zip(per["before"], per["after"])]
        pairs = [(x, y) for x, y in pairs if x and y]
        if pairs:
            p50[op] = {"before_ns": [x for x, _ in pairs], "after_ns": [y for _, y in pairs],
                       "ratio_per_round": [y / x for x, y in pairs],
                       "before_median_ns": statistics.median(x for x, _ in pairs),
                       "after_median_ns": statistics.median(y for _, y in pairs),
                       "median_ratio": statistics.median(y / x for x, y in pairs)}
    return rates, stacks, p50


def clock():
    if ICOUNT:
        return f"guest clock: instructions (QEMU -icount shift={ICOUNT}): rates are per instruction count"
    return "guest clock: the host's (TCG without -icount): a busy host moves the ratios"


def print_tables(rates, stacks, p50, n_rounds):
    print(f"\nmodule A/B: {n_rounds} rounds (order A B, B A, ...), {BLOCKS} blocks a phase, "
          f"{'median' if ICOUNT else 'best'} block; "
          f"after/before within each round,\nmedian [lowest-highest round]; emulated CPU: read the ratios, "
          f"not the rates; {clock()}")
    print(f"{'measure':60} {'before':>11} {'after':>11} {'after/before':>12} {'spread':>14}")
    for name, r in rates.items():
        label = f"{r['what']} ({r['unit']})"
        print(f"{label:60} {r['before_median']:>11.1f} {r['after_median']:>11.1f} "
              f"{r['median_ratio']:>12.3f} {spread(r['ratio_per_round']):>14}")
    print("\nkernel stack per operation (vexctl profile, bytes, deepest over rounds; entry / max inside):")
    print(f"{'op':10} {'before':>13} {'after':>13} {'change of max':>14}  rounds differ?")
    for op, s in stacks.items():
        b, a = s["before"], s["after"]

        def cell(x):
            e, m = x["entry_stack_bytes"]["deepest"], x["max_stack_bytes"]["deepest"]
            return "-" if m is None else f"{e} / {m}"

        change = ("-" if b["max_stack_bytes"]["deepest"] is None or a["max_stack_bytes"]["deepest"] is None
                  else f"{a['max_stack_bytes']['deepest'] - b['max_stack_bytes']['deepest']:+d}")
        varies = [lab for lab in LABELS if len(set(s[lab]["max_stack_bytes"]["per_round"])) > 1
                  or len(set(s[lab]["entry_stack_bytes"]["per_round"])) > 1]
        print(f"{op:10} {cell(b):>13} {cell(a):>13} {change:>14}  {', '.join(varies) or 'no'}")
    print("\np50 latency under vexctl profile (us; after/before, higher is slower; histogram steps "
          "of up to 6.25 %):")
    print(f"{'op':10} {'before':>11} {'after':>11} {'after/before':>12} {'spread':>14}")
    for op, r in p50.items():
        print(f"{op:10} {r['before_median_ns'] / 1e3:>11.1f} {r['after_median_ns'] / 1e3:>11.1f} "
              f"{r['median_ratio']:>12.3f} {spread(r['ratio_per_round']):>14}")


# --------------------------------------------------------------------- main

def main():
    args = sys.argv[1:]
    if len(args) not in (0, 2) or args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    a, b = args if args else (os.environ.get("VEXFS_AB_A"), os.environ.get("VEXFS_AB_B"))
    if not a or not b:
        print("ab_module.py: give A.ko and B.ko (or $VEXFS_AB_A and $VEXFS_AB_B)", file=sys.stderr)
        return 2
    kos = dict(zip(LABELS, (os.path.abspath(a), os.path.abspath(b))))
    for lab, ko in kos.items():
        if not os.path.isfile(ko):
            print(f"ab_module.py: {lab}: no file {ko} in the guest (its /tmp, /run, /mnt and /var/tmp are "
                  "fresh tmpfs: put the module in the repository or under $VEXFS_CACHE)", file=sys.stderr)
            return 2
    if module_loaded():
        sh(["rmmod", "vexfs"])
    os.makedirs(MNT, exist_ok=True)
    klog = KernelLog()
    digests = {lab: sha256(ko) for lab, ko in kos.items()}
    same = digests["before"] == digests["after"]
    for lab in LABELS:
        print(f"{lab}: {kos[lab]} (sha256 {digests[lab][:16]})", flush=True)
    if same:
        print("A and B are the same bytes: an A/A run, the ratios are the noise floor", flush=True)

    t0 = time.monotonic()
    # Sizes are decided once, on A, in a session of their own.
    sh(["insmod", kos["before"]])
    try:
        mount(MNT)
        try:
            plan = calibrate()
        finally:
            umount(MNT)
    finally:
        run(["rmmod", "vexfs"])
    print(f"calibrated on before ({time.monotonic() - t0:.0f} s): {json.dumps(plan)}", flush=True)

    rounds = []
    for r in range(ROUNDS):
        order = LABELS if r % 2 == 0 else LABELS[::-1]
        res = {}
        for lab in order:
            res[lab] = session(kos[lab], plan, klog)
            prof = res[lab]["profile"]
            print(f"round {r + 1}/{ROUNDS} {lab}: {res[lab]['seconds']:.1f} s (blocks "
                  f"{res[lab]['seconds_blocks']:.1f} s, profile {res[lab]['seconds_profile']:.1f} s)"
                  + (f"; profile failed: {prof['error']}" if "error" in prof else "")
                  + (f"; KERNEL LOG: {res[lab]['kernel_log'][:3]}" if res[lab]["kernel_log"] else ""),
                  flush=True)
        res["order"] = list(order)
        rounds.append(res)
    print(f"{ROUNDS} rounds in {time.monotonic() - t0:.0f} s (in-guest time)", flush=True)

    rates, stacks, p50 = summarise(rounds)
    print_tables(rates, stacks, p50, ROUNDS)
    bad = {f"round {i + 1} {lab}": r[lab]["kernel_log"] for i, r in enumerate(rounds) for lab in LABELS
           if r[lab]["kernel_log"]}
    failed = {f"round {i + 1} {lab}": r[lab]["profile"]["error"] for i, r in enumerate(rounds) for lab in LABELS
              if "error" in r[lab]["profile"]}
    for where, lines in bad.items():
        print(f"kernel log, {where}: {lines[:3]}")
    for where, why in failed.items():
        print(f"vexctl profile, {where}: failed: {why}")

    result = {
        "modules": {lab: {"path": kos[lab], "sha256": digests[lab]} for lab in LABELS}, "same_file": same,
        "icount_shift": None if ICOUNT is None else int(ICOUNT), "clock": clock(),
        "rounds": ROUNDS, "blocks_per_phase": BLOCKS, "block_rate": BLOCK_RATE.__name__,
        "phase_target_s": PHASE_S, "unlink_target_s": UNLINK_S, "settle_s": SETTLE_S, "plan": plan,
        "workload": {"chunk_bytes": CHUNK, "file_bytes": FILE_BYTES, "dim": DIM, "metric": "l2", "k": K,
                     "flat": {"rows": FLAT_ROWS, "batch": FLAT_BATCH},
                     "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EFC, "rows": HNSW_ROWS,
                              "batch": HNSW_BATCH, "ef": HNSW_EF}},
        "rates": rates, "stack_bytes": stacks, "p50_latency": p50,
        "per_round": [{"order": r["order"], **{lab: r[lab] for lab in LABELS}} for r in rounds],
        "kernel_log": bad, "profile_failures": failed,
        "note": "in-guest rates under an emulated CPU (TCG): compare the after/before ratios; "
                "with icount_shift set, guest seconds count instructions executed",
    }
    write_result("ab_module.json", result)
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())
