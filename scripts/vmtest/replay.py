"""Every crash state of a workload, as fstests' generic/482 checks them.

A disk mount runs on dm-log-writes, which records every write, flush and
FUA the filesystem sends to /dev/vdb into a log on /dev/vdc, with a mark
after each item the workload made durable. The log is then replayed in
order onto /dev/vdd; at each flush or FUA (the only points a power cut can
leave on a device that honours them), the image so far is copied to the
scratch disk /dev/vda, and there `fsck.vexfs -n` must exit 0, the mount
must succeed, and every item marked durable before that point must be
there, vector batches whole. The filesystem, the replay and the copies
use the first 16 MiB of their disks (dm-linear): a copy per point is the
cost of this test.
"""

import json
import mmap
import os
import struct
import subprocess

import numpy as np

from harness import run, sh
import abi
import vectors

DATA, LOGDEV, TARGET, CHECK = "/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vda"
MNT, SNAP = "/mnt/vexreplay", "/mnt/vexreplay-check"
MAGIC = 0x6a736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
DIM, BATCH = 8, 30
SLICE_SECTORS = 16 << 11  # 16 MiB


def sectors(dev):
    return int(sh(["blockdev", "--getsz", dev]))


def zero(dev):
    """Zeroes a whole device (the state the recorded one started from)."""
    if subprocess.run(["blkdiscard", "-z", dev], capture_output=True).returncode == 0:
        return
    buf = mmap.mmap(-1, 1 << 20)
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    try:
        size = sectors(dev) * 512
        off = 0
        while off < size:
            os.pwritev(fd, [buf], off)
            off += 1 << 20
    finally:
        os.close(fd)


def workload():
    """Files, renames, unlinks and vector batches, each made durable and
    then marked; returns the expected state after each mark."""
    mark = 0
    marks = {}
    state = {"files": {}, "batches": {}}

    def durable(path):
        nonlocal mark
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        mark += 1
        sh(["dmsetup", "message", "vexlog", "0", "mark", f"m{mark}"])
        marks[f"m{mark}"] = json.loads(json.dumps(state))

    os.makedirs(f"{MNT}/d")
    os.makedirs(f"{MNT}/c")
    abi.create_raw(f"{MNT}/c", DIM, "l2", abi.INDEX_HNSW)
    durable(MNT)
    coll = vectors.Coll(f"{MNT}/c")
    try:
        for i in range(8):
            data = os.urandom(1000 + 3000 * i)
            with open(f"{MNT}/d/f{i}", "wb") as f:
                f.write(data)
            state["files"][f"f{i}"] = data.hex()[:64] + str(len(data))
            durable(f"{MNT}/d/f{i}")
            ids = np.arange(i * BATCH, (i + 1) * BATCH, dtype=np.uint64)
            coll.insert(ids, np.full((BATCH, DIM), float(i), dtype=np.float32))
            state["batches"][str(i)] = True
            durable(f"{MNT}/c")
            if i % 3 == 2:
                os.rename(f"{MNT}/d/f{i - 1}", f"{MNT}/d/g{i - 1}")
                state["files"][f"g{i - 1}"] = state["files"].pop(f"f{i - 1}")
                os.unlink(f"{MNT}/d/f{i - 2}")
                state["files"].pop(f"f{i - 2}")
                coll.delete(np.arange((i - 2) * BATCH, (i - 1) * BATCH, dtype=np.uint64))
                state["batches"][str(i - 2)] = False
                durable(f"{MNT}/d")
    finally:
        coll.close()
    return marks


def entries():
    """The recorded entries: (sector, data or None, flags, mark name)."""
    fd = os.open(LOGDEV, os.O_RDONLY)
    try:
        magic, version, count, secsize = struct.unpack("<QQQI", os.pread(fd, 28, 0))
        assert magic == MAGIC and version == 1, "no dm-log-writes log"
        pos = secsize
        for _ in range(count):
            sector, nr, flags, datalen = struct.unpack("<QQQQ", os.pread(fd, 32, pos))
            name = None
            if flags & MARK:
                name = os.pread(fd, datalen, pos + 32).decode()
                pos += secsize
                yield sector, None, flags, name
                continue
            pos += secsize
            data = None
            if nr and not flags & DISCARD:
                data = os.pread(fd, nr * 512, pos)
                pos += nr * 512
            yield sector, data, flags, None
    finally:
        os.close(fd)


def dm(name, table):
    """A device-mapper device; no udev in the guest: dmsetup makes the node."""
    sh(["dmsetup", "create", "--noudevsync", name, "--table", table])
    sh(["dmsetup", "mknodes", name])
    return f"/dev/mapper/{name}"


def dm_remove(name):
    run(["dmsetup", "remove", "--noudevsync", name])


def check_point(target, check, expect, following):
    """fsck, mount and the expected state on a copy of the target: every
    item as the last mark left it, or as the operation after it (in
    flight at the cut, so maybe durable already) leaves it."""
    import disk
    disk.copy_device(target, check)
    code, out = disk.fsck(check, "-n")
    problems = [] if code == 0 else [f"fsck {code}: {out.strip()[-200:]}"]
    r = run(["mount", "-t", "vexfs", check, SNAP])
    if r.returncode != 0:
        return problems + [f"mount: {r.stderr.strip()}"]
    nxt = following or expect
    try:
        for name in set(expect["files"]) | set(nxt["files"]):
            allowed = {expect["files"].get(name), nxt["files"].get(name)}
            p = f"{SNAP}/d/{name}"
            got = None
            if os.path.exists(p):
                data = open(p, "rb").read()
                got = data.hex()[:64] + str(len(data))
            if got not in allowed:
                problems.append(f"{name}: {'missing' if got is None else 'differs'}")
        if os.path.isdir(f"{SNAP}/c"):
            coll = vectors.Coll(f"{SNAP}/c")
            try:
                for b in set(expect["batches"]) | set(nxt["batches"]):
                    allowed = {BATCH if expect["batches"].get(b) else 0,
                               BATCH if nxt["batches"].get(b) else 0}
                    got = 0
                    for vid in range(int(b) * BATCH, (int(b) + 1) * BATCH):
                        try:
                            coll.get(vid, DIM)
                            got += 1
                        except OSError:
                            pass
                    if got not in allowed:
                        problems.append(f"batch {b}: {got} rows")
            finally:
                coll.close()
    finally:
        run(["umount", SNAP])
    return problems


def test_all(t):
    disks = os.environ.get("VEXFS_VM_DISKS", "").split()
    with t.group("disk crash states (dm-log-writes replay)"):
        if len(disks) < 3:
            t.check("three disks attached (VEXFS_VM_DISK)", False, str(disks))
            return
        slices = {name: dm(name, f"0 {SLICE_SECTORS} linear {dev} 0")
                  for name, dev in (("vexr-data", DATA), ("vexr-target", TARGET), ("vexr-check", CHECK))}
        try:
            replay_and_check(t, slices["vexr-data"], slices["vexr-target"], slices["vexr-check"])
        finally:
            for name in slices:
                dm_remove(name)


def replay_and_check(t, data_dev, target, check):
    """Records the workload on `data_dev`, replays it onto `target`, checks
    a copy on `check` at each flush or FUA."""
    for dev in (data_dev, LOGDEV, target):
        zero(dev)
    size = sectors(data_dev)
    logged = dm("vexlog", f"0 {size} log-writes {data_dev} {LOGDEV}")
    try:
        sh(["mkfs.vexfs", "-q", "-f", logged])
        os.makedirs(MNT, exist_ok=True)
        sh(["mount", "-t", "vexfs", logged, MNT])
        marks = workload()
        sh(["umount", MNT])
    finally:
        run(["umount", MNT])
        dm_remove("vexlog")
    os.makedirs(SNAP, exist_ok=True)
    fd = os.open(target, os.O_WRONLY)
    points, failures, expect, total, last_mark = 0, [], None, 0, None
    try:
        for sector, data, flags, name in entries():
            total += 1
            if name is not None:
                expect = marks.get(name, expect)
                last_mark = name
                continue
            if data is not None:
                os.pwrite(fd, data, sector * 512)
            if flags & (FLUSH | FUA) and expect is not None:
                # (Before the first mark, mkfs has not finished: there
                # is no filesystem to find yet.)
                os.fsync(fd)
                points += 1
                following = marks.get(f"m{int(last_mark[1:]) + 1}")
                problems = check_point(target, check, expect, following)
                if problems:
                    if os.environ.get("VEXFS_REPLAY_DEBUG"):
                        r = run(["fsck.vexfs", "-n", "--json", check])
                        print(f"# entry {total} flags {flags} expect-mark {last_mark}: {problems[:3]} "
                              f"{json.loads(r.stdout)['summary']}", flush=True)
                    failures.append((total, problems[:3]))
    finally:
        os.close(fd)
    print(f"#   {total} entries recorded, {len(marks)} durable items marked, "
          f"{points} flush/FUA points replayed and checked", flush=True)
    t.check(f"every crash state ({points} flush/FUA points) passes fsck, mounts and holds "
            f"every item made durable before it", not failures and points > 0, str(failures[:3]))
