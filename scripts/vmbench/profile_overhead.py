#!/usr/bin/env python3
"""In-VM benchmark: what profiling VexFS costs. A fixed workload (exact
searches on a mid-size collection; a loop of 4 KiB file writes and reads)
is timed without a tracer, under `vexctl profile` (counts and latencies;
file operations read from vexfs.ko's tracepoints), under `vexctl profile`
with BPF trampolines for every class (VEXFS_PROFILE_PROBES=fsession), under
`vexctl profile --flamegraph` (plus stack sampling, trampolines throughout)
and, if it is installed and works, under bpftrace with fentry/fexit
(kfunc/kretfunc) latency histograms on the trampolines' probe points. It
also reports the CPU time each tracer's own process used while the
workload ran (reading and printing, beside the probes' cost). The
conditions alternate in every round of one guest run and each is compared with the baseline of its
own round; the figure is the median ratio over the rounds (throughput loss;
goals: under 1 % on searches, under 3 % on 4 KiB file operations). Under
TCG the CPU is emulated: read the ratios, not the rates.
Prints a table, writes bench-results/profile_overhead.json."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vmtest"))
from harness import Background  # noqa: E402
from profiler import FastSearch, make_collection  # noqa: E402
from results import write_result  # noqa: E402

MNT = "/mnt/vexprofbench"
BPFTRACE = os.environ.get("VEXFS_BPFTRACE", "/usr/bin/bpftrace")
ROUNDS = int(os.environ.get("VEXFS_BENCH_ROUNDS", "6"))
PHASE_S = 2.0                     # target length of one workload phase (baseline)
BLOCKS = 4                        # a phase is this many blocks; its rate is the best block's
ROWS, DIM, K = 3000, 32, 10       # the search collection: ~15-20 ms a query under TCG
FILE_BYTES, CHUNK = 1 << 20, 4096
FUNCS = ("vexfs_lookup", "vexfs_create", "vexfs_unlink", "vexfs_read_iter", "vexfs_write_iter",
         "vexfs_fsync", "vexfs_ioctl_insert", "vexfs_ioctl_delete", "vexfs_ioctl_search", "vexfs_simd_batch")
# Throughput loss allowed per phase.
GOALS = {"search": 0.01, "file": 0.03}
BPFTRACE_READY = "vexfs-bench: attached"


def sh(*cmd):
    subprocess.run(cmd, check=True)


def module_loaded():
    with open("/proc/modules") as f:
        return any(l.split()[0] == "vexfs" for l in f)


# ----------------------------------------------------------------- workload

class Workload:
    """The two phases, each a fixed number of operations."""

    def __init__(self):
        make_collection(f"{MNT}/c", DIM, ROWS, seed=11)
        self.searcher = FastSearch(f"{MNT}/c", np.random.default_rng(12).normal(size=(1, DIM)), K)
        self.fd = os.open(f"{MNT}/data", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(self.fd, b"\0" * FILE_BYTES)
        self.buf = os.urandom(CHUNK)
        self.n = {"search": 20, "file": 200}

    def search(self, n):
        for _ in range(n):
            self.searcher()
        return n

    def file(self, n):
        """n iterations of one 4 KiB pwrite and one 4 KiB pread: 2n ops."""
        slots = FILE_BYTES // CHUNK
        for i in range(n):
            off = (i % slots) * CHUNK
            os.pwrite(self.fd, self.buf, off)
            os.pread(self.fd, CHUNK, off)
        return 2 * n

    def block(self, name):
        """Ops per second of one block of a phase."""
        t0 = time.perf_counter()
        ops = getattr(self, name)(self.n[name])
        return ops / (time.perf_counter() - t0)

    def run(self, name):
        """Ops per second of one phase: the best of BLOCKS blocks, since a
        busy host only ever slows the emulated CPU down."""
        return max(self.block(name) for _ in range(BLOCKS))

    def calibrate(self):
        """Picks the block sizes so that a phase takes about PHASE_S untraced."""
        for name in self.n:
            self.block(name)  # warm up
            rate = self.block(name)
            per_op = 2 if name == "file" else 1
            self.n[name] = max(10, int(rate * PHASE_S / BLOCKS / per_op))

    def expected_counts(self):
        return {"search": BLOCKS * self.n["search"], "write": BLOCKS * self.n["file"],
                "read": BLOCKS * self.n["file"]}

    def close(self):
        self.searcher.close()
        os.close(self.fd)


# ------------------------------------------------------------------ tracers

def tracer_ready(tr, timeout=180):
    """Ready, and still running a moment later: the probes are in place."""
    if not tr.wait_ready(timeout):
        return False
    time.sleep(0.5)
    return tr.proc.poll() is None


def bpftrace_program():
    """fentry + fexit (bpftrace 0.17's kfunc/kretfunc) latency histograms on
    the module's probe points, keyed by thread (the SIMD probe nests inside
    search and insert, hence a map each): the same attach points as
    `vexctl profile`, and a tracer as a user would write it."""
    parts = ['BEGIN { printf("vexfs-bench: attached\\n"); }']
    for f in FUNCS:
        n = f.removeprefix("vexfs_")
        parts.append(f"kfunc:vexfs:{f} {{ @t_{n}[tid] = nsecs; }}\n"
                     f"kretfunc:vexfs:{f} /@t_{n}[tid]/ {{ @lat_{n} = hist(nsecs - @t_{n}[tid]); "
                     f"delete(@t_{n}[tid]); }}")
    return "\n".join(parts)


def conditions():
    """(name, argv or None, ready marker), and the reason bpftrace is left out."""
    conds = [
        ("baseline", None, None),
        # A/A control: untraced again, so the table shows the noise floor.
        ("no tracer (control)", None, None),
        ("vexctl profile", ["vexctl", "profile", "--json", "--duration", "30m", "--interval", "1s"],
         "vexctl profile: attached"),
        ("vexctl profile --flamegraph", ["vexctl", "profile", "--json", "--duration", "30m", "--interval", "1s",
                                         "--flamegraph", "/tmp/profile-overhead.svg"], "vexctl profile: attached"),
        # File operations at their entry and return too, instead of once
        # from their tracepoint: what the tracepoints save.
        ("vexctl profile, fsession only", ["env", "VEXFS_PROFILE_PROBES=fsession", "vexctl", "profile", "--json",
                                           "--duration", "30m", "--interval", "1s"], "vexctl profile: attached"),
    ]
    if not os.path.exists(BPFTRACE):
        return conds, f"{BPFTRACE} not found (Debian package bpftrace is not installed)"
    # BEGIN runs once every probe is attached; -B line: no pipe buffering.
    argv = [BPFTRACE, "-B", "line", "-e", bpftrace_program()]
    tr = Background(argv, BPFTRACE_READY)
    ok = tracer_ready(tr, 120)
    if ok:  # one probed operation, so that a histogram is printed on exit
        with open(f"{MNT}/bpftrace-check", "wb") as f:
            f.write(b"x")
        os.unlink(f"{MNT}/bpftrace-check")
    rc = tr.stop(timeout=120)
    if not ok:
        return conds, f"{BPFTRACE} did not attach to the vexfs functions: {tr.why()}"
    if not any("@lat_" in l for l in tr.out):
        return conds, f"{BPFTRACE} attached but printed no histogram on exit (status {rc})"
    conds.append(("bpftrace", argv, BPFTRACE_READY))
    return conds, None


def cpu_seconds(pid):
    """User and system CPU time of process `pid` so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profiler_counts(tracer):
    """Search/write/read counts from a `vexctl profile --json` total line."""
    for line in reversed(tracer.out):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("kind") == "total":
            return {o["op"]: o["count"] for o in rec["ops"] if o["op"] in ("search", "write", "read")}
    return None


# --------------------------------------------------------------------- main

KMEMLEAK = "/sys/kernel/debug/kmemleak"


def kmemleak_off():
    """The test kernel's kmemleak records a stack trace at every slab
    allocation; unwinding through a BPF trampoline's frame makes that cost
    tens of microseconds per search under TCG, a debugging kernel's cost
    that a production kernel does not have. This bench's boot is its own:
    kmemleak goes off for good (until the next boot). Returns whether it was
    on."""
    if not os.path.exists(KMEMLEAK):
        return False
    with open(KMEMLEAK, "w") as f:
        f.write("off")
    return True


def main():
    kmemleak_was_on = kmemleak_off()
    loaded = module_loaded()
    if not loaded:
        sh("insmod", os.environ["VEXFS_KO"])
    os.makedirs(MNT, exist_ok=True)
    sh("mount", "-t", "vexfs", "none", MNT)
    w = Workload()
    w.calibrate()
    conds, bpftrace_missing = conditions()
    names = [c[0] for c in conds]
    phases = ("search", "file")
    rates = {c: {p: [] for p in phases} for c in names}
    mismatches, failures = [], {}
    tracer_cpu = {c: [] for c in names}
    t_start = time.monotonic()
    for r in range(ROUNDS):
        k = r % len(conds)
        for name, argv, ready in conds[k:] + conds[:k]:
            if name in failures:
                continue
            tr = None
            if argv:
                tr = Background(argv, ready)
                if not tracer_ready(tr):
                    failures[name] = tr.why()
                    tr.stop(timeout=120)
                    continue
            t0, cpu0 = time.monotonic(), tr and cpu_seconds(tr.pid)
            for p in phases:
                rates[name][p].append(w.run(p))
            if tr:
                tracer_cpu[name].append((cpu_seconds(tr.pid) - cpu0) / (time.monotonic() - t0))
                rc = tr.stop(timeout=120)
                if rc != 0:
                    failures[name] = f"exit status {rc}: {tr.why()}"
                if name.startswith("vexctl"):
                    got = profiler_counts(tr)
                    # Only the operations this profiler was attached to.
                    want = {op: n for op, n in w.expected_counts().items() if got is None or op in got}
                    if not got or got != want:
                        mismatches.append(f"round {r} {name}: counted {got}, ran {want}")
        print(f"round {r + 1}/{ROUNDS} done ({time.monotonic() - t_start:.0f} s)", flush=True)
    w.close()
    sh("umount", MNT)
    if not loaded:
        sh("rmmod", "vexfs")

    # Ratios against the baseline of the same round.
    summary = {}
    for name in names[1:]:
        summary[name] = {}
        for p in phases:
            ratios = [a / b for a, b in zip(rates[name][p], rates["baseline"][p])]
            med = statistics.median(ratios) if ratios else None
            added = [1e6 / a - 1e6 / b for a, b in zip(rates[name][p], rates["baseline"][p])]
            summary[name][p] = {
                "ops_per_s": rates[name][p], "ratio_per_round": ratios, "median_ratio": med,
                "added_us_per_op": statistics.median(added) if added else None,
                "throughput_loss": None if med is None else 1 - med,
                "goal_loss": GOALS[p],
                "goal_met": None if med is None else 1 - med < GOALS[p],
            }
    labels = {"search": f"search {ROWS}x{DIM} l2 k={K}", "file": "file 4 KiB pwrite+pread"}
    if kmemleak_was_on:
        print("(the test kernel's kmemleak was turned off for this run: see kmemleak_off())")
    print(f"\nprofiler overhead: {ROUNDS} rounds, conditions in rotating order; each condition's throughput "
          "over the same round's baseline:\nmedian ratio (loss) [lowest-highest round]; TCG: read the ratios")
    print(f"{'condition':34}" + "".join(f" {labels[p]:>32}" for p in phases))
    print(f"{'baseline (median ops/s)':34}" +
          "".join(f" {statistics.median(rates['baseline'][p]):>32.1f}" for p in phases))
    for name in names[1:]:
        row = f"{name:34}"
        for p in phases:
            s = summary[name][p]
            cell = "failed" if s["median_ratio"] is None else (
                f"{s['median_ratio']:.3f} ({100 * s['throughput_loss']:.1f}%) "
                f"[{min(s['ratio_per_round']):.2f}-{max(s['ratio_per_round']):.2f}]")
            row += f" {cell:>32}"
        print(row)
    print("time added per operation (median, in-guest us): " + "; ".join(
        f"{n} {p}: {summary[n][p]['added_us_per_op']:.1f}"
        for n in names[2:] for p in phases if summary[n][p]["added_us_per_op"] is not None))
    print("goal, throughput loss under " + ", ".join(f"{GOALS[p]:.0%} ({p})" for p in phases) + ": " + "; ".join(
        f"{n} {p}: {'met' if summary[n][p]['goal_met'] else 'NOT met'}"
        for n in names[2:] for p in phases if summary[n][p]["median_ratio"] is not None))
    busy = {n: statistics.median(v) for n, v in tracer_cpu.items() if v}
    print("tracer process CPU while the workload ran (median share of one CPU): " + "; ".join(
        f"{n} {100 * c:.1f}%" for n, c in busy.items()))
    if bpftrace_missing:
        print(f"bpftrace: unavailable: {bpftrace_missing}")
    for name, why in failures.items():
        print(f"{name}: failed: {why}")
    print("profiler counts equal the workload's in every round" if not mismatches else
          "profiler counts differ from the workload:\n  " + "\n  ".join(mismatches))

    result = {
        "rounds": ROUNDS, "phase_target_s": PHASE_S, "blocks_per_phase": BLOCKS,
        "workload": {"search": {"rows": ROWS, "dim": DIM, "metric": "l2", "k": K, "ops_per_block": w.n["search"]},
                     "file": {"chunk_bytes": CHUNK, "file_bytes": FILE_BYTES, "iterations": w.n["file"],
                              "ops_per_block": 2 * w.n["file"]}},
        "baseline_ops_per_s": rates["baseline"], "conditions": summary, "goal_loss": GOALS,
        "bpftrace": {"available": bpftrace_missing is None and "bpftrace" not in failures,
                     "reason": bpftrace_missing or failures.get("bpftrace"), "path": BPFTRACE,
                     "version": (subprocess.run([BPFTRACE, "--version"], capture_output=True, text=True).stdout.strip()
                                 if shutil.which(BPFTRACE) else None)},
        "failures": failures, "count_mismatches": mismatches,
        "tracer_cpu_share": {n: v for n, v in tracer_cpu.items() if v},
        "kmemleak_turned_off": kmemleak_was_on,
        "note": "in-guest rates under an emulated CPU (TCG): compare the ratios",
    }
    write_result("profile_overhead.json", result)


if __name__ == "__main__":
    main()
