"""VexFS on a block device: mkfs.vexfs and fsck.vexfs in the guest,
persistence across unmount, durability points (fsync, O_SYNC, syncfs, the
`sync` option, `commit=`), crash states, and corrupted images.

Needs two disks (scripts/test attaches them with VEXFS_VM_DISK): the first
holds the filesystem under test; the second receives copies of it taken
while it is mounted. A copy holds exactly what the device had stored at
that instant, which is the state a power cut at that instant leaves, so
mounting it checks crash recovery without a second boot.
"""

import ctypes
import errno
import json
import mmap
import os
import random
import stat
import struct

import numpy as np

import parity
from harness import eventually, mount, run, sh, umount, vexctl, vexctl_json
from profiler import TraceInstance

GLOVE = os.path.join(os.environ["VEXFS_CACHE"], "data", "glove_6B_50d.npy")
# What the first boot of the reboot pair leaves for the second (target/ is
# the repository's, shared with the guest, and ignored by git).
REBOOT_EXPECT = os.path.join(os.environ["VEXFS_ROOT"], "target", "disk-reboot.json")

MNT = "/mnt/vexdisk"
SNAP = "/mnt/vexsnap"
MEM = "/mnt/vexmem"
CHUNK = 1 << 20


def disks():
    return os.environ.get("VEXFS_VM_DISKS", "").split()


def dev_size(dev):
    with open(dev, "rb") as f:
        return f.seek(0, os.SEEK_END)


def copy_device(src, dst):
    """Copies `src` to `dst` with O_DIRECT (what the devices store, not a
    page cache's view of them)."""
    buf = mmap.mmap(-1, CHUNK)
    size = dev_size(src)
    fi = os.open(src, os.O_RDONLY | os.O_DIRECT)
    fo = os.open(dst, os.O_WRONLY | os.O_DIRECT)
    try:
        off = 0
        while off < size:
            n = os.preadv(fi, [buf], off)
            os.pwritev(fo, [memoryview(buf)[:n]], off)
            off += n
    finally:
        os.close(fi)
        os.close(fo)


def flip_bit(dev, byte, bit):
    """Flips one bit of a device through O_DIRECT (one 4 KiB block)."""
    buf = mmap.mmap(-1, 4096)
    block = byte - byte % 4096
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        os.preadv(fd, [buf], block)
        buf[byte - block] ^= 1 << bit
        os.pwritev(fd, [buf], block)
    finally:
        os.close(fd)


def write_block(dev, offset, data):
    buf = mmap.mmap(-1, 4096)
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        os.preadv(fd, [buf], offset)
        buf[:len(data)] = data
        os.pwritev(fd, [buf], offset)
    finally:
        os.close(fd)


def crc32c(data):
    """CRC-32C, as the format checksums its structures."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


LIBC = ctypes.CDLL(None, use_errno=True)


def mount_errno(dev, path):
    """mount(2) itself (no mount(8) process: cheap enough for a thousand
    attempts): 0 or the errno."""
    os.makedirs(path, exist_ok=True)
    if LIBC.mount(dev.encode(), path.encode(), b"vexfs", 0, None) == 0:
        return 0
    return ctypes.get_errno()


def mount_disk(dev, path, opts=None):
    mount(path, opts, source=dev)


def try_mount(dev, path):
    """mount(2) of `dev`: None, or the errno it failed with."""
    os.makedirs(path, exist_ok=True)
    r = run(["mount", "-t", "vexfs", dev, path])
    if r.returncode == 0:
        return None
    msg = r.stderr
    if "Structure needs cleaning" in msg:
        return errno.EUCLEAN
    if "Invalid argument" in msg or "wrong fs type" in msg:
        return errno.EINVAL
    return msg.strip() or r.returncode


def fsck(dev, *args):
    r = run(["fsck.vexfs", *args, dev])
    return r.returncode, r.stdout + r.stderr


def tree(root):
    """Every entry under `root`: type, mode, owner, links, size, times (ns),
    content hash, symlink target, extended attributes; hard links by
    identity within the tree."""
    out = {}
    inos = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [""] + sorted(dirnames) + sorted(filenames):
            p = os.path.join(dirpath, name) if name else dirpath
            if name == "" and dirpath != root:
                continue
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            e = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                 "nlink": st.st_nlink, "size": st.st_size, "mtime": st.st_mtime_ns,
                 "ctime": st.st_ctime_ns, "rdev": st.st_rdev,
                 "link": inos.setdefault(st.st_ino, rel)}
            if stat.S_ISREG(st.st_mode):
                import hashlib
                with open(p, "rb") as f:
                    e["sha"] = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            if not stat.S_ISLNK(st.st_mode):
                e["xattrs"] = {k: os.getxattr(p, k) for k in sorted(os.listxattr(p))}
            out[rel] = e
    return out


def populate(root):
    os.makedirs(f"{root}/docs/deep/er", exist_ok=True)
    with open(f"{root}/docs/a.txt", "w") as f:
        f.write("hello\n" * 1000)
    with open(f"{root}/big.bin", "wb") as f:
        f.write(random.Random(1).randbytes(3 << 20))
    os.link(f"{root}/docs/a.txt", f"{root}/docs/deep/a-link")
    os.symlink("../a.txt", f"{root}/docs/deep/sym")
    os.symlink("x" * 3000, f"{root}/longsym")
    os.mkfifo(f"{root}/fifo", 0o640)
    os.mknod(f"{root}/chardev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    open(f"{root}/empty", "w").close()
    with open(f"{root}/sparse", "wb") as f:
        f.truncate(5 << 20)
        f.seek(2 << 20)
        f.write(b"middle")
    with open(f"{root}/holed", "wb") as f:
        f.write(b"\xab" * (1 << 20))
    fd = os.open(f"{root}/holed", os.O_RDWR)
    # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate(fd, 3, ctypes.c_long(4096), ctypes.c_long(65536))
    os.close(fd)
    os.chmod(f"{root}/docs/a.txt", 0o4755)
    os.chown(f"{root}/big.bin", 1000, 1001)
    os.chmod(f"{root}/docs/deep", 0o1777)
    os.setxattr(f"{root}/docs/a.txt", "user.color", b"blue")
    os.setxattr(f"{root}/docs", "trusted.k", b"\x00\x01binary")
    os.setxattr(f"{root}/empty", "user.big", b"v" * 60000)
    os.utime(f"{root}/empty", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    with open(f"{root}/renamed-from", "w") as f:
        f.write("moved")
    os.rename(f"{root}/renamed-from", f"{root}/docs/deep/er/renamed-to")
    with open(f"{root}/victim", "w") as f:
        f.write("gone")
    os.unlink(f"{root}/victim")


def unmount_all():
    """Unmounts what a failed check left mounted."""
    for path in (SNAP, MEM, MNT):
        if any(line.split()[1] == path for line in open("/proc/mounts")):
            run(["umount", path])


def collections(root, n):
    """A flat collection (l2) and an HNSW one (cosine) of `n` GloVe
    vectors, some deleted, and a file vector; the queries' file."""
    glove = np.load(GLOVE, mmap_mode="r")
    work = "/tmp/vexdisk"
    os.makedirs(work, exist_ok=True)
    np.save(f"{work}/base.npy", np.ascontiguousarray(glove[:n], dtype=np.float32))
    np.save(f"{work}/q.npy", np.ascontiguousarray(glove[20000:20050], dtype=np.float32))
    np.save(f"{work}/one.npy", np.ascontiguousarray(glove[30000:30001], dtype=np.float32))
    for name, args in (("flat", ["--metric", "l2"]),
                       ("hnsw", ["--metric", "cosine", "--index", "hnsw"])):
        os.mkdir(f"{root}/{name}")
        sh(["vexctl", "create", f"{root}/{name}", "--dim", "50", *args])
        sh(["vexctl", "insert", f"{root}/{name}", "--npy", f"{work}/base.npy",
            "--start-id", "100000"])
        sh(["vexctl", "delete", f"{root}/{name}", *[str(100000 + i) for i in range(0, n, 97)]])
        with open(f"{root}/{name}/doc.txt", "w") as f:
            f.write(f"a document in {name}")
        sh(["vexctl", "attach", f"{root}/{name}/doc.txt", "--npy", f"{work}/one.npy"])
    return f"{work}/q.npy"


def sq8_collection(root, n=500):
    """An HNSW collection with --quantize sq8 (l2) of `n` GloVe vectors,
    inserted in one batch (the quantizer is learned from all of them, as a
    mount learns it again from the rows), every row linked."""
    glove = np.load(GLOVE, mmap_mode="r")
    work = "/tmp/vexdisk"
    os.makedirs(work, exist_ok=True)
    np.save(f"{work}/sq8.npy", np.ascontiguousarray(glove[40000:40000 + n], dtype=np.float32))
    coll = f"{root}/sq8"
    sh(["vexctl", "create", coll, "--dim", "50", "--metric", "l2", "--index", "hnsw", "--quantize", "sq8"])
    sh(["vexctl", "insert", coll, "--npy", f"{work}/sq8.npy", "--batch", str(n)])
    eventually(lambda: json.loads(vexctl("info", coll, "--json").stdout)["unindexed"], lambda u: u == 0,
               timeout=600)


def searches(root, qfile, names=("flat", "hnsw")):
    """`vexctl search --json` output of the collections `names`, as text,
    and `vexctl info` without the memory figures (allocation sizes differ
    between a built and a loaded graph)."""
    out = {}
    for name in names:
        r = vexctl("search", f"{root}/{name}", "--npy", qfile, "-k", "10", "--ef", "64", "--json")
        out[name] = r.stdout if r.returncode == 0 else f"error {r.stderr}"
        info = json.loads(vexctl("info", f"{root}/{name}", "--json").stdout)
        for k in ("memory_bytes", "index_bytes"):
            info.pop(k, None)
        out[f"{name}-info"] = info
    return out


def test_persistence(t, dev):
    with t.group("disk-persistence"):
        sh(["mkfs.vexfs", "-q", "-f", "-L", "persist", dev])
        code, out = fsck(dev, "-n", "--json")
        t.eq("fsck -n of a new filesystem exits 0", code, 0)
        t.eq("fsck --json says clean", json.loads(out)["status"], "clean")
        mount_disk(dev, MNT)
        populate(MNT)
        qfile = collections(MNT, 1500)
        t.eq("nothing left unindexed before unmount",
             eventually(lambda: json.loads(vexctl("info", f"{MNT}/hnsw", "--json").stdout)["unindexed"],
                        lambda u: u == 0, timeout=1200), 0)
        sq8_collection(MNT)
        names = ("flat", "hnsw", "sq8")
        found = searches(MNT, qfile, names)
        t.eq("sq8: vexctl info says quantize sq8 before unmount", found["sq8-info"].get("quantize"), "sq8")
        before = tree(MNT)
        before = tree(MNT)  # atimes settle after the first read
        umount(MNT)
        code, out = fsck(dev, "-n")
        t.eq("fsck -n after unmount exits 0", code, 0)
        mount_disk(dev, MNT)
        after = tree(MNT)
        t.eq("entries after remount", sorted(after), sorted(before))
        diff = [k for k in before if before[k] != after.get(k)]
        t.check("every entry identical (content, mode, owner, links, times, xattrs)",
                not diff, "; ".join(f"{k}: {before[k]} != {after.get(k)}" for k in diff[:3]))
        again = searches(MNT, qfile, names)
        t.eq("sq8: quantize sq8 after remount", again["sq8-info"].get("quantize"), "sq8")
        for name in names:
            t.eq(f"{name}: vexctl search --json identical after remount", again[name], found[name])
            t.eq(f"{name}: vexctl info identical after remount", again[f"{name}-info"],
                 found[f"{name}-info"])
        with open(f"{MNT}/docs/a.txt", "a") as f:
            f.write("appended\n")
        os.unlink(f"{MNT}/docs/deep/a-link")
        os.rename(f"{MNT}/big.bin", f"{MNT}/docs/big.bin")
        again = tree(MNT)
        umount(MNT)
        mount_disk(dev, MNT)
        t.eq("changes after a remount persist too", tree(MNT), again)
        # Both modes in one kernel at once.
        mount(MEM)
        with open(f"{MEM}/m", "w") as f:
            f.write("memory")
        with open(f"{MNT}/d", "w") as f:
            f.write("disk")
        t.eq("an in-memory mount beside a disk mount", open(f"{MEM}/m").read(), "memory")
        umount(MEM)
        opts = [line.split()[3] for line in open("/proc/mounts") if line.split()[1] == MNT]
        t.check("/proc/mounts shows commit=5", opts and "commit=5" in opts[0].split(","), str(opts))
        r = run(["mount", "-o", "remount,ro", MNT])
        still_rw = [line.split()[3].split(",")[0] for line in open("/proc/mounts")
                    if line.split()[1] == MNT]
        t.check("remounting a disk mount read-only is refused (EINVAL, a kernel message)",
                r.returncode != 0 and still_rw == ["rw"], f"{r.stderr.strip()} {still_rw}")
        r = run(["setfacl", "-m", "u:1000:r", f"{MNT}/d"])
        t.check("an ACL on a disk mount is refused (not written to disk yet)",
                r.returncode != 0 and "not supported" in r.stderr.lower(), r.stderr.strip())
        umount(MNT)
        t.eq("fsck -n clean at the end", fsck(dev, "-n")[0], 0)


def test_file_parts(t, dev, copy):
    with t.group("disk-file-parts: a file's vectors in a subdirectory, replaced, in a crash state and remounted"):
        sh(["mkfs.vexfs", "-q", "-f", "-L", "parts", dev])
        mount_disk(dev, MNT)
        coll = f"{MNT}/docs"
        sh(["vexctl", "create", coll, "--dim", "4", "--metric", "l2", "--index", "hnsw"])
        os.makedirs(f"{coll}/sub/deeper")
        work = "/tmp/vexparts"
        os.makedirs(work, exist_ok=True)
        rows = np.arange(20, dtype=np.float32).reshape(5, 4)
        np.save(f"{work}/five.npy", rows)
        np.save(f"{work}/two.npy", rows[:2] + 100)
        for name in ("a.txt", "b.txt"):
            with open(f"{coll}/sub/deeper/{name}", "w") as f:
                f.write(name)
            sh(["vexctl", "attach", f"{coll}/sub/deeper/{name}", "--npy", f"{work}/five.npy"])
        sh(["sync", "-f", MNT])
        # Logged after the last commit: a replay must drop a.txt's parts
        # 2..4 and all of b.txt's.
        sh(["vexctl", "attach", f"{coll}/sub/deeper/a.txt", "--npy", f"{work}/two.npy"])
        os.unlink(f"{coll}/sub/deeper/b.txt")
        sh(["sync", "-f", MNT])
        want = vexctl_json("info", coll)["count"]
        t.eq("live: a.txt's 2 parts left", want, 2)
        snapshot_mount(t, dev, copy)
        t.eq("the crash state replays the replacement and the unlink",
             vexctl_json("info", f"{SNAP}/docs")["count"], 2)
        r = vexctl("search", f"{SNAP}/docs", "--vector", "100,101,102,103", "-k", "3", "--json")
        hits = json.loads(r.stdout)["results"] if r.returncode == 0 else r.stderr
        t.eq("it finds a.txt once, by its first part, by its path in the tree",
             [(h["name"], h["part"]) for h in hits] if isinstance(hits, list) else hits,
             [("sub/deeper/a.txt", 0)])
        umount(SNAP)
        umount(MNT)
        t.eq("fsck -n clean after unmount", fsck(dev, "-n")[0], 0)
        mount_disk(dev, MNT)
        t.eq("after a remount: the same 2 parts", vexctl_json("info", coll)["count"], 2)
        umount(MNT)


def test_differential(t, dev, copy, ops=3000):
    """The tmpfs-parity random operations (parity.Stress) on a disk mount:
    every result as on tmpfs; the whole tree (sizes, allocated blocks,
    holes, contents) in the crash state right after a syncfs (the log
    replayed) and after a remount (a checkpoint)."""
    with t.group(f"disk-differential: {ops} random operations agree with tmpfs, in a crash state and "
                 "after a remount"):
        sh(["mkfs.vexfs", "-q", "-f", dev])
        mount_disk(dev, MNT)
        mount(parity.TMPFS, None, "tmpfs", source="tmpfs")
        runs = {}
        for root in (parity.TMPFS, MNT):
            s = parity.Stress(root, seed=20261202)
            runs[root] = [s.op() for _ in range(ops)]
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(runs[parity.TMPFS], runs[MNT])) if a != b]
        t.check("every operation's result equals tmpfs'", not diff, str(diff[:3]))
        before = parity.tree(MNT)
        t.eq("the trees are equal (names, modes, links, xattrs, sizes, blocks, contents)", before,
             parity.tree(parity.TMPFS))
        umount(parity.TMPFS)
        sh(["sync", "-f", MNT])
        snapshot_mount(t, dev, copy)
        crashed = parity.tree(SNAP)
        umount(SNAP)
        diff = [(a, b) for a, b in zip(before, crashed) if a != b]
        t.check("the crash state after a syncfs holds the same tree", before == crashed,
                str(diff[:3]) if diff else f"{len(before)} entries before, {len(crashed)} after")
        umount(MNT)
        t.eq("fsck -n after unmount exits 0", fsck(dev, "-n")[0], 0)
        mount_disk(dev, MNT)
        after = parity.tree(MNT)
        diff = [(a, b) for a, b in zip(before, after) if a != b]
        t.check("the tree after a remount is the same", before == after,
                str(diff[:3]) if diff else f"{len(before)} entries before, {len(after)} after")
        umount(MNT)


def snapshot_mount(t, dev, copy):
    """Copies the mounted `dev` to `copy` (a crash at this instant), checks
    it with fsck and mounts it at SNAP."""
    copy_device(dev, copy)
    code, out = fsck(copy, "-n")
    t.check("the crash state checks clean without a mount", code == 0, out.strip()[-300:])
    mount_disk(copy, SNAP)


def test_durability(t, dev, copy):
    unmount_all()
    with t.group("disk-durability"):
        sh(["mkfs.vexfs", "-q", "-f", dev])
        mount_disk(dev, MNT, "commit=3600")
        # fsync of a file.
        with open(f"{MNT}/fsynced", "wb") as f:
            f.write(b"a" * 10000)
            os.fsync(f.fileno())
        # O_SYNC and O_DSYNC writes.
        fd = os.open(f"{MNT}/osync", os.O_CREAT | os.O_WRONLY | os.O_SYNC, 0o644)
        os.write(fd, b"sync write")
        os.close(fd)
        fd = os.open(f"{MNT}/odsync", os.O_CREAT | os.O_WRONLY | os.O_DSYNC, 0o644)
        os.write(fd, b"dsync write")
        os.close(fd)
        # rename over an existing name, then fsync of the directory.
        with open(f"{MNT}/target", "w") as f:
            f.write("old")
        with open(f"{MNT}/newer", "w") as f:
            f.write("new")
        os.rename(f"{MNT}/newer", f"{MNT}/target")
        dfd = os.open(MNT, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        # A vector batch and a delete, then fsync of the collection.
        os.mkdir(f"{MNT}/c")
        sh(["vexctl", "create", f"{MNT}/c", "--dim", "4", "--metric", "l2", "--index", "hnsw"])
        np.save("/tmp/vexdisk-b.npy", np.arange(400, dtype=np.float32).reshape(100, 4))
        sh(["vexctl", "insert", f"{MNT}/c", "--npy", "/tmp/vexdisk-b.npy"])
        sh(["vexctl", "delete", f"{MNT}/c", "3", "4"])
        cfd = os.open(f"{MNT}/c", os.O_RDONLY)
        os.fsync(cfd)
        os.close(cfd)
        snapshot_mount(t, dev, copy)
        info = json.loads(vexctl("info", f"{SNAP}/c", "--json").stdout)
        t.eq("the fsync'd collection holds the batch less the deleted", info["count"], 98)
        r = vexctl("get", f"{SNAP}/c", "50", "--json")
        t.check("a vector of the batch reads back", r.returncode == 0 and "200" in r.stdout, r.stdout)
        t.eq("the replayed rows are linked into the graph",
             eventually(lambda: json.loads(vexctl("info", f"{SNAP}/c", "--json").stdout)["unindexed"],
                        lambda u: u == 0, timeout=1200), 0)
        t.eq("fsync'd file present", open(f"{SNAP}/fsynced", "rb").read(), b"a" * 10000)
        t.eq("O_SYNC write present", open(f"{SNAP}/osync", "rb").read(), b"sync write")
        t.eq("O_DSYNC write present", open(f"{SNAP}/odsync", "rb").read(), b"dsync write")
        t.eq("renamed file replaced its target", open(f"{SNAP}/target").read(), "new")
        t.check("renamed-from name gone", not os.path.exists(f"{SNAP}/newer"))
        umount(SNAP)
        # syncfs (sync -f).
        with open(f"{MNT}/syncfs", "w") as f:
            f.write("syncfs")
        sh(["sync", "-f", MNT])
        snapshot_mount(t, dev, copy)
        t.eq("syncfs made a file durable", open(f"{SNAP}/syncfs").read(), "syncfs")
        umount(SNAP)
        umount(MNT)
        # The sync mount option.
        mount_disk(dev, MNT, "sync")
        with open(f"{MNT}/on-sync-mount", "w") as f:
            f.write("sync mount")
        os.mkdir(f"{MNT}/dir-on-sync-mount")
        snapshot_mount(t, dev, copy)
        t.eq("a write on a sync mount is durable at once",
             open(f"{SNAP}/on-sync-mount").read(), "sync mount")
        t.check("a mkdir on a sync mount is durable at once",
                os.path.isdir(f"{SNAP}/dir-on-sync-mount"))
        umount(SNAP)
        umount(MNT)
        # commit=1: unsynced work reaches the device within the interval.
        mount_disk(dev, MNT, "commit=1")
        with open(f"{MNT}/periodic", "w") as f:
            f.write("periodic")

        def committed():
            copy_device(dev, copy)
            if fsck(copy, "-n")[0] != 0:
                return "fsck"
            mount_disk(copy, SNAP)
            try:
                return open(f"{SNAP}/periodic").read()
            except FileNotFoundError:
                return None
            finally:
                umount(SNAP)

        t.eq("commit=1 commits unsynced work by itself (polled until it has, up to 600 s)",
             eventually(committed, lambda got: got is not None, timeout=600, every=1.0), "periodic")
        umount(MNT)
        t.eq("fsck clean after the durability checks", fsck(dev, "-n")[0], 0)


def test_capacity(t, dev):
    unmount_all()
    with t.group("disk-capacity"):
        sh(["mkfs.vexfs", "-q", "-f", dev])
        mount_disk(dev, MNT)
        st = os.statvfs(MNT)
        total = st.f_blocks * st.f_frsize
        t.check("statfs shows a size", total > 0, str(total))
        written = 0
        try:
            with open(f"{MNT}/fill", "wb") as f:
                while True:
                    f.write(b"\x5a" * CHUNK)
                    written += CHUNK
        except OSError as e:
            t.eq("filling the disk ends in ENOSPC", e.errno, errno.ENOSPC)
        size = os.stat(f"{MNT}/fill").st_size
        t.check("most of the size could be written", size >= total // 2, f"{size} of {total}")
        umount(MNT)
        t.eq("a full filesystem checks clean", fsck(dev, "-n")[0], 0)
        mount_disk(dev, MNT)
        t.eq("its data is all there after a remount", os.stat(f"{MNT}/fill").st_size, size)
        os.unlink(f"{MNT}/fill")
        umount(MNT)


def metadata_ranges(dev):
    """Byte ranges of the metadata a mount of `dev` reads: both superblock
    slots, the checkpoint, the log commits."""
    with open(dev, "rb") as f:
        sb = f.read(512)
    bs = struct.unpack_from("<I", sb, 12)[0]
    log_start, = struct.unpack_from("<Q", sb, 96)
    area = [struct.unpack_from("<Q", sb, 112)[0], struct.unpack_from("<Q", sb, 120)[0]]
    # The newer slot names the checkpoint.
    with open(dev, "rb") as f:
        f.seek(4096)
        sb1 = f.read(512)
    gen0, gen1 = struct.unpack_from("<Q", sb, 88)[0], struct.unpack_from("<Q", sb1, 88)[0]
    cur = sb1 if gen1 > gen0 else sb
    ckpt_area, = struct.unpack_from("<I", cur, 136)
    ckpt_blocks, = struct.unpack_from("<Q", cur, 144)
    r = run(["fsck.vexfs", "-n", "--json", dev])
    used = json.loads(r.stdout)["summary"]["log_blocks_used"]
    start = area[ckpt_area] * bs
    ranges = [(0, 512), (4096, 4096 + 512), (start, start + ckpt_blocks * bs)]
    # Each log commit: its 64-byte header (the rest of its header block is
    # not checked: a torn write may leave anything there), its payload.
    block, end = log_start, log_start + used
    with open(dev, "rb") as f:
        while block < end:
            f.seek(block * bs)
            blocks = struct.unpack_from("<I", f.read(64), 24)[0]
            ranges.append((block * bs, block * bs + 64))
            ranges.append(((block + 1) * bs, (block + blocks) * bs))
            block += blocks
    return ranges


def test_corruption(t, dev, copy, flips):
    unmount_all()
    with t.group("disk-corruption"):
        sh(["mkfs.vexfs", "-q", "-f", "-b", "4096", dev])
        mount_disk(dev, MNT)
        for i in range(5):
            os.makedirs(f"{MNT}/d{i}", exist_ok=True)
            with open(f"{MNT}/d{i}/f", "w") as f:
                f.write(f"file {i}" * 100)
        umount(MNT)
        mount_disk(dev, MNT)
        # A checkpoint, then commits in the log.
        for i in range(3):
            with open(f"{MNT}/logged{i}", "w") as f:
                f.write("x" * 5000)
                os.fsync(f.fileno())
        copy_device(dev, copy)
        umount(MNT)
        t.eq("the image to corrupt checks clean", fsck(copy, "-n")[0], 0)
        ranges = metadata_ranges(copy)
        total = sum(b - a for a, b in ranges)
        t.check("its log holds commits", len(ranges) > 3, str(ranges))
        rng = random.Random(12)
        print(f"# disk-corruption: seed 12, {flips} single-bit flips over {total} metadata bytes",
              flush=True)
        refused, bad_errno, log_lines, fsck_missed, fsck_runs = 0, [], [], [], 0
        for i in range(flips):
            pos = rng.randrange(total * 8)
            for a, b in ranges:
                if pos < (b - a) * 8:
                    byte = a + pos // 8
                    break
                pos -= (b - a) * 8
            bit = pos % 8
            flip_bit(copy, byte, bit)
            t.klog.new_lines()
            e = mount_errno(copy, SNAP)
            lines = [line for line in t.klog.new_lines() if "vexfs" in line or "cannot mount" in line]
            if e == 0:
                umount(SNAP)
                bad_errno.append((byte, bit, "mounted"))
                copy_device(dev, copy)  # the mount wrote to it
                continue
            refused += 1
            if e not in (errno.EUCLEAN, errno.EINVAL):
                bad_errno.append((byte, bit, e))
            if len([line for line in lines if "cannot mount" in line]) != 1:
                log_lines.append((byte, bit, lines))
            if i % 20 == 0:
                fsck_runs += 1
                if fsck(copy, "-n")[0] == 0:
                    fsck_missed.append((byte, bit))
            flip_bit(copy, byte, bit)
        t.eq(f"each of {flips} corrupted images is refused", refused, flips)
        t.eq("with EUCLEAN or EINVAL", bad_errno[:5], [])
        t.eq("and one kernel log line saying what is wrong", log_lines[:3], [])
        t.eq(f"fsck -n reports each corruption it is shown ({fsck_runs} shown)", fsck_missed[:5], [])
        # Foreign bytes, a wrong version, random bytes.
        write_block(copy, 0, b"\x00" * 4096)
        write_block(copy, 4096, b"\x00" * 4096)
        t.eq("a zeroed superblock area: EINVAL", try_mount(copy, SNAP), errno.EINVAL)
        copy_device(dev, copy)
        with open(copy, "r+b") as f:
            sb = bytearray(f.read(512))
        sb[8:12] = struct.pack("<I", 2)
        sb[508:512] = struct.pack("<I", crc32c(bytes(sb[:508]) + b"\0\0\0\0"))
        write_block(copy, 0, bytes(sb))
        t.eq("another format version: EINVAL", try_mount(copy, SNAP), errno.EINVAL)
        buf = random.Random(3).randbytes(8192)
        write_block(copy, 0, buf[:4096])
        write_block(copy, 4096, buf[4096:])
        t.eq("random bytes: EINVAL", try_mount(copy, SNAP), errno.EINVAL)
        t.eq("fsck of random bytes: operational error (8)", fsck(copy, "-n")[0], 8)


def test_reboot_write(t):
    """First boot of the pair: a tree and collections on the first disk,
    and what the second boot must find."""
    dev = disks()[0] if disks() else None
    unmount_all()
    with t.group("disk-reboot: write"):
        sh(["mkfs.vexfs", "-q", "-f", "-L", "reboot", dev])
        mount_disk(dev, MNT)
        populate(MNT)
        # The acceptance runs this pair with 20,000 vectors.
        qfile = collections(MNT, int(os.environ.get("VEXFS_REBOOT_VECTORS", "2000")))
        eventually(lambda: json.loads(vexctl("info", f"{MNT}/hnsw", "--json").stdout)["unindexed"],
                   lambda u: u == 0, timeout=1200)
        expect = {"searches": searches(MNT, qfile), "tree": tree(MNT)}
        expect["tree"] = tree(MNT)
        umount(MNT)
        os.makedirs(os.path.dirname(REBOOT_EXPECT), exist_ok=True)
        with open(REBOOT_EXPECT, "w") as f:
            json.dump(expect, f, default=lambda b: b.hex())
        t.check("the tree and collections are written", True)


def test_reboot_read(t):
    """Second boot: the same files and the same search results."""
    dev = disks()[0] if disks() else None
    with t.group("disk-reboot: read in the next boot"):
        with open(REBOOT_EXPECT) as f:
            expect = json.load(f)
        code, out = fsck(dev, "-n")
        t.check("fsck.vexfs -n exits 0", code == 0, out.strip()[-300:])
        mount_disk(dev, MNT)
        got = tree(MNT)
        got = json.loads(json.dumps(got, default=lambda b: b.hex()))
        diff = [k for k in expect["tree"] if expect["tree"][k] != got.get(k)]
        t.check("every file hash, mode, owner, link and time identical", not diff and
                sorted(got) == sorted(expect["tree"]), "; ".join(diff[:3]))
        again = searches(MNT, "/tmp/vexdisk/q.npy") if os.path.exists("/tmp/vexdisk/q.npy") else None
        if again is None:
            glove = np.load(GLOVE, mmap_mode="r")
            os.makedirs("/tmp/vexdisk", exist_ok=True)
            np.save("/tmp/vexdisk/q.npy", np.ascontiguousarray(glove[20000:20050], dtype=np.float32))
            again = searches(MNT, "/tmp/vexdisk/q.npy")
        for name in ("flat", "hnsw"):
            t.eq(f"{name}: vexctl search --json byte-identical", again[name], expect["searches"][name])
        umount(MNT)
        t.eq("fsck.vexfs -n exits 0 after the second boot's unmount", fsck(dev, "-n")[0], 0)


def test_tracepoints(t, dev):
    """vexfs:vexfs_commit_done and vexfs_checkpoint_done as ftrace shows
    them: an fsync commits the file, the unmount writes a clean checkpoint."""
    with t.group("disk-tracepoints: commit and checkpoint events through ftrace"):
        sh(["mkfs.vexfs", "-q", "-f", dev])
        mount_disk(dev, MNT)
        st = os.stat(MNT)
        try:
            with TraceInstance("vexfs-disk") as tr:
                fd = os.open(f"{MNT}/traced", os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, b"c" * 1024)
                os.fsync(fd)
                os.close(fd)
                umount(MNT)
                events = tr.events()
                raw = tr.lines()
        finally:
            unmount_all()
        print("#   as ftrace shows them: " + " | ".join(
            l for l in raw if "commit_done" in l or "checkpoint_done" in l), flush=True)
        dev_no = (os.major(st.st_dev), os.minor(st.st_dev))
        mine = [(ev, f) for ev, f in events if f.get("dev") == dev_no]
        commits = [f for ev, f in mine if ev == "vexfs_commit_done"]
        ckpts = [f for ev, f in mine if ev == "vexfs_checkpoint_done"]
        t.check("the fsync's commit: returned 0, with log records and the file's inode",
                any(f["ret"] == 0 and f["bytes"] > 0 and f["inodes"] >= 1 for f in commits),
                str(commits[:3]))
        t.check("the unmount's checkpoint: returned 0, numbered, holding the root and the file",
                any(f["ret"] == 0 and f["seq"] > 0 and f["inodes"] >= 2 for f in ckpts),
                str(ckpts[:3]))


def test_all(t):
    devs = disks()
    if len(devs) < 2:
        with t.group("disk"):
            t.check("two disks attached (VEXFS_VM_DISK)", False, f"VEXFS_VM_DISKS={devs}")
        return
    dev, copy = devs[0], devs[1]
    # `make test` mounts 200 corrupted images; `make crash-test` 1,000.
    flips = int(os.environ.get("VEXFS_DISK_FLIPS", "200"))
    test_persistence(t, dev)
    test_tracepoints(t, dev)
    test_file_parts(t, dev, copy)
    test_differential(t, dev, copy)
    test_durability(t, dev, copy)
    test_capacity(t, dev)
    test_corruption(t, dev, copy, flips)
    unmount_all()
