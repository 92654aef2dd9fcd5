"""Disk-mode benchmarks, in one guest run, as ratios (make bench).

VexFS on /dev/vdb and ext4 on /dev/vdc, two virtio disks of the same size
and cache mode (scripts/bench attaches them):

- fsync'd small-file creation (fs_mark: 4 KiB files, fsync before close);
- 4 KiB random writes (fio, psync, 32 MiB file, fsync at the end);
- device bytes written per byte of user data in both (/sys/block/*/stat);
- vector insert plus collection fsync throughput, against the same inserts
  on an in-memory mount;
- mount (graph loaded) against build (insert and link) of a GloVe HNSW
  collection (VEXFS_BENCH_GLOVE rows, default 400,000).

Under TCG the guest CPU is emulated: only the ratios mean anything.
"""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import write_result  # noqa: E402

VEX, EXT = "/dev/vdb", "/dev/vdc"
VMNT, EMNT, MEM = "/mnt/bench-vexfs", "/mnt/bench-ext4", "/mnt/bench-mem"
GLOVE = os.path.join(os.environ["VEXFS_CACHE"], "data", "glove_6B_50d.npy")


def sh(*cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


def sectors_written(dev):
    name = os.path.basename(dev)
    with open(f"/sys/block/{name}/stat") as f:
        return int(f.read().split()[6])


def fresh():
    for mnt in (VMNT, EMNT, MEM):
        subprocess.run(["umount", mnt], capture_output=True)
        os.makedirs(mnt, exist_ok=True)
    sh("mkfs.vexfs", "-q", "-f", VEX)
    sh("mkfs.ext4", "-q", "-F", EXT)
    sh("mount", "-t", "vexfs", VEX, VMNT)
    sh("mount", "-t", "ext4", EXT, EMNT)


def fsmark(mnt, files):
    os.makedirs(f"{mnt}/fsmark", exist_ok=True)
    # fs_mark writes its log (fs_log.txt) where it runs: not in the repository.
    out = sh("fs_mark", "-d", f"{mnt}/fsmark", "-s", "4096", "-n", str(files), "-S", "1", "-L", "1",
             cwd="/tmp")
    # The result line: "FSUse%  Count  Size  Files/sec  App Overhead".
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s*\d+\s+\d+\s+\d+\s+[\d.]+", line)]
    return float(rows[-1][3])


def fio(mnt):
    # --invalidate=0: VexFS has no fadvise (the data is its page cache).
    out = sh("fio", "--name=rw", f"--filename={mnt}/fio.dat", "--size=32M", "--bs=4k",
             "--rw=randwrite", "--ioengine=psync", "--end_fsync=1", "--invalidate=0",
             "--output-format=json")
    job = json.loads(out[out.index("{"):])["jobs"][0]["write"]
    return job["bw_bytes"]


def small_files(files):
    res = {}
    for name, mnt, dev in (("vexfs", VMNT, VEX), ("ext4", EMNT, EXT)):
        before = sectors_written(dev)
        res[f"{name}_files_per_s"] = fsmark(mnt, files)
        res[f"{name}_device_bytes_per_user_byte"] = (sectors_written(dev) - before) * 512 / (files * 4096)
    res["ratio"] = res["vexfs_files_per_s"] / res["ext4_files_per_s"]
    return res


def random_writes():
    res = {}
    for name, mnt, dev in (("vexfs", VMNT, VEX), ("ext4", EMNT, EXT)):
        before = sectors_written(dev)
        res[f"{name}_bytes_per_s"] = fio(mnt)
        res[f"{name}_device_bytes_per_user_byte"] = (sectors_written(dev) - before) * 512 / (32 << 20)
    res["ratio"] = res["vexfs_bytes_per_s"] / res["ext4_bytes_per_s"]
    return res


def inserts(base, batch):
    """Vectors/s of batches of `batch`, each followed by an fsync of the
    collection, on the disk mount and on an in-memory one."""
    np.save("/tmp/bench-batch.npy", base[:batch])
    res = {}
    sh("mount", "-t", "vexfs", "none", MEM)
    for name, mnt, dev in (("disk", VMNT, VEX), ("memory", MEM, None)):
        coll = f"{mnt}/ins"
        os.mkdir(coll)
        sh("vexctl", "create", coll, "--dim", "50", "--metric", "cosine")
        before = sectors_written(dev) if dev else 0
        t0 = time.monotonic()
        n = 0
        for i in range(20):
            sh("vexctl", "insert", coll, "--npy", "/tmp/bench-batch.npy", "--start-id", str(i * batch))
            fd = os.open(coll, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            n += batch
        res[f"{name}_vectors_per_s"] = n / (time.monotonic() - t0)
        if dev:
            res["disk_device_bytes_per_vector_byte"] = (sectors_written(dev) - before) * 512 / (n * 50 * 4)
    sh("umount", MEM)
    res["ratio"] = res["disk_vectors_per_s"] / res["memory_vectors_per_s"]
    return res


def mount_vs_build(glove, rows):
    coll = f"{VMNT}/glove"
    os.mkdir(coll)
    sh("vexctl", "create", coll, "--dim", "50", "--metric", "cosine", "--index", "hnsw")
    np.save("/tmp/bench-glove.npy", np.ascontiguousarray(glove[:rows], dtype=np.float32))
    t0 = time.monotonic()
    sh("vexctl", "insert", coll, "--npy", "/tmp/bench-glove.npy")
    # The module links rows in the background; poll until none is left,
    # with a line every few minutes so a long build shows it is moving.
    shown = t0
    while (left := json.loads(sh("vexctl", "info", coll, "--json"))["unindexed"]) > 0:
        if time.monotonic() - shown >= 300:
            shown = time.monotonic()
            print(f"  build of {rows} rows: {rows - left} linked after {shown - t0:.0f} s",
                  file=sys.stderr, flush=True)
        time.sleep(0.5)
    build = time.monotonic() - t0
    sh("umount", VMNT)
    t0 = time.monotonic()
    sh("mount", "-t", "vexfs", VEX, VMNT)
    info = json.loads(sh("vexctl", "info", f"{VMNT}/glove", "--json"))
    mount = time.monotonic() - t0
    return {"rows": rows, "build_s": build, "mount_s": mount, "ratio": mount / build,
            "unindexed_after_mount": info["unindexed"]}


def main():
    files = int(os.environ.get("VEXFS_BENCH_FILES", "2000"))
    rows = int(os.environ.get("VEXFS_BENCH_GLOVE", "400000"))
    glove = np.load(GLOVE, mmap_mode="r")
    out = {"accel_note": "TCG: ratios only"}
    fresh()
    out["fsync_small_files"] = small_files(files)
    print("fsync'd 4 KiB files:", json.dumps(out["fsync_small_files"]), flush=True)
    out["random_4k_writes"] = random_writes()
    print("4 KiB random writes:", json.dumps(out["random_4k_writes"]), flush=True)
    fresh()
    out["vector_insert_fsync"] = inserts(glove, 1000)
    print("vector insert + fsync:", json.dumps(out["vector_insert_fsync"]), flush=True)
    fresh()
    out["mount_vs_build"] = mount_vs_build(glove, rows)
    print("mount vs build:", json.dumps(out["mount_vs_build"]), flush=True)
    for mnt in (VMNT, EMNT):
        subprocess.run(["umount", mnt], capture_output=True)
    print()
    print(f"{'benchmark':40} {'VexFS':>14} {'peer':>14} {'ratio':>8}")

    def row(label, ours, peer, ratio, digits=3):
        print(f"{label:40} {ours:14.2f} {peer:14.2f} {ratio:8.{digits}f}")

    f = out["fsync_small_files"]
    row("fsync 4 KiB files (files/s), ext4", f["vexfs_files_per_s"], f["ext4_files_per_s"], f["ratio"])
    w = out["random_4k_writes"]
    row("4 KiB random writes (MB/s), ext4", w["vexfs_bytes_per_s"] / 1e6, w["ext4_bytes_per_s"] / 1e6,
        w["ratio"])
    v = out["vector_insert_fsync"]
    row("insert+fsync (vectors/s), in-memory", v["disk_vectors_per_s"], v["memory_vectors_per_s"], v["ratio"])
    m = out["mount_vs_build"]
    row(f"mount vs build of {m['rows']} HNSW (s)", m["mount_s"], m["build_s"], m["ratio"], 4)
    print(f"device bytes per user byte: small files VexFS {f['vexfs_device_bytes_per_user_byte']:.2f}, "
          f"ext4 {f['ext4_device_bytes_per_user_byte']:.2f}; random writes VexFS "
          f"{w['vexfs_device_bytes_per_user_byte']:.2f}, ext4 {w['ext4_device_bytes_per_user_byte']:.2f}; "
          f"vectors {v['disk_device_bytes_per_vector_byte']:.2f}")
    write_result("disk.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
