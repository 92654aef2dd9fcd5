"""The bounded kernel stack high-water mark of every operation class.

The test build kmod/vexfs-stack.ko (`scripts/build-module stack`) paints
the unused part of the kernel stack at each probe point (kmod/vexfs_entry.c)
and reads the paint back after the operation, so the deepest point an
operation reached is measured, not sampled;
/sys/module/vexfs/parameters/stack_watermark reports it per class. The
workload runs every class: the profiler tests' mixed workload (files, an
exact collection) plus an HNSW collection large enough that its linking
runs on helper CPUs; `stack-disk` runs it again on a durable mount, where
writes, fsyncs and vector calls log and commit (bios, the block layer).
"""

import os

import numpy as np

from disk import disks, mount_disk
from harness import mount, run, sh
from profiler import OPS, mixed_workload, populate
from vectors import Coll

KO = os.environ["VEXFS_KO"]
STACK_KO = os.path.join(os.path.dirname(KO), "vexfs-stack.ko")
PARAM = "/sys/module/vexfs/parameters/stack_watermark"
THREAD_SIZE = 16384


def read_marks():
    """{op: {"calls", "entry", "deepest", "own"}} from the module."""
    marks = {}
    with open(PARAM) as f:
        for line in f:
            name, calls, entry, deepest, own = line.split()
            marks[name] = {"calls": int(calls), "entry": int(entry), "deepest": int(deepest),
                           "own": int(own)}
    return marks


def hnsw_workload(root):
    """An HNSW collection linked past the size where linking shares the work
    among CPUs, searched, with a few deletes."""
    path = f"{root}/hnsw"
    sh(["vexctl", "create", path, "--dim", "24", "--metric", "l2", "--index", "hnsw"])
    rng = np.random.default_rng(5)
    c = Coll(path)
    for start in range(0, 3000, 1000):
        c.insert(np.arange(start, start + 1000), rng.normal(size=(1000, 24)))
    c.search(rng.normal(size=(20, 24)), 10)
    c.delete(np.arange(10))
    c.close()


def report(t, title):
    """Prints the module's marks and checks each class's."""
    marks = read_marks()
    t.eq("one line per operation class", sorted(marks), sorted(OPS))
    print(f"    stack high-water mark per operation, {title} (bytes of the 16 KiB kernel stack):")
    print(f"    {'op':8} {'calls':>8} {'at entry':>9} {'deepest':>8} {'VexFS own':>10}")
    for op in OPS:
        m = marks.get(op)
        if m:
            print(f"    {op:8} {m['calls']:>8} {m['entry']:>9} {m['deepest']:>8} {m['own']:>10}")
    for op in OPS:
        m = marks.get(op, {"calls": 0, "entry": 0, "deepest": 0, "own": 0})
        t.check(f"{op}: measured, and its deepest point lies between its entry and the "
                "stack's end", m["calls"] > 0 and 0 < m["entry"] < m["deepest"] < THREAD_SIZE, str(m))


def measured(t, title, mount_at):
    """Loads the test build, mounts a VexFS with `mount_at(root)`, runs
    every class on it, reports, unmounts and unloads."""
    if not os.path.exists(STACK_KO):
        t.check("kmod/vexfs-stack.ko built (scripts/build-module stack)", False, STACK_KO)
        return
    sh(["insmod", STACK_KO])
    root = "/mnt/vexstack"
    try:
        t.check("the test build reports its marks", os.path.exists(PARAM), PARAM)
        if os.path.exists(PARAM):
            mount_at(root)
            populate(root)
            mixed_workload(root, 0)
            hnsw_workload(root)
            sh(["umount", root])
            report(t, title)
    finally:
        run(["umount", root])
        run(["rmmod", "vexfs"])


def test_all(t):
    with t.group("stack high-water mark (test build vexfs-stack.ko)"):
        measured(t, "in memory", mount)


def test_disk(t):
    """The same on a durable mount of the VM's last disk (the disk groups
    are done with it; the reboot pair keeps the first)."""
    def mount_at(root):
        dev = disks()[-1]
        sh(["mkfs.vexfs", "-q", "-f", dev])
        mount_disk(dev, root)

    with t.group("stack high-water mark on a disk (test build vexfs-stack.ko)"):
        if len(disks()) < 2:
            t.check("the VM has two disks (VEXFS_VM_DISK)", False, str(disks()))
            return
        measured(t, "durable mount", mount_at)
