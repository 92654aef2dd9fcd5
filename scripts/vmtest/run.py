#!/usr/bin/env python3
"""In-VM tests of vexfs.ko: run inside the test kernel by `make test`
(`scripts/vm-exec '$VEXFS_PYTHON scripts/vmtest/run.py'`), as root.

Asserts file and directory semantics against what tmpfs does, the errors a
user hits, the ioctls through vexctl, independent mounts, vector collections
(vectors.py) and their HNSW index (hnsw.py), the `vexfs` Python package
(python_pkg.py, which runs test_vexfs_python.py with pytest), load/unload
cycles, the eBPF profiler (`vexctl profile`, profiler.py), and a clean
kernel log after every group. `run.py GROUP...` runs only those groups (the
module is loaded before and unloaded after them), e.g. `run.py hnsw`
(`run.py sq8`: only its quantized-walk groups);
`run.py -GROUP...` runs all but those (scripts/test runs the disk groups in
a VM of their own).
"""

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import re
import stat
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import LONG, Suite, mount, run, sh, umount, vexctl, vexctl_json  # noqa: E402
import abi  # noqa: E402
import vectors  # noqa: E402
import filters  # noqa: E402
import embed  # noqa: E402
import profiler  # noqa: E402
import hnsw  # noqa: E402
import hardening  # noqa: E402
import parity  # noqa: E402
import stack  # noqa: E402
import disk  # noqa: E402
import replay  # noqa: E402
import python_pkg  # noqa: E402

KO = os.environ["VEXFS_KO"]
VEXFS_MAGIC = 0x56455846
LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
# Interpreter for commands run as an unprivileged user (the venv's lives
# under /root, which such a user cannot enter).
USER_PYTHON = "/usr/bin/python3"
# Coarse kernel timestamps tick every jiffy: wait a few before comparing.
TICK = 0.05


def ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


IOC_VERSION = ioc(2, 1, 48)
IOC_UNKNOWN = ioc(2, 0x7F, 8)


def renameat2(old, new, flags):
    if LIBC.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def insmod():
    sh(["insmod", KO])


def rmmod():
    return run(["rmmod", "vexfs"])


def module_loaded():
    with open("/proc/modules") as f:
        return any(l.split()[0] == "vexfs" for l in f)


def slab_caches():
    with open("/proc/slabinfo") as f:
        return sorted(l.split()[0] for l in f if l.startswith("vexfs_"))


def write(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def ops(mnt):
    return {o["op"]: o["count"] for o in vexctl_json("stats", mnt)["ops"]}


def test_module(t, mnt):
    with t.group("module"):
        insmod()
        t.check("insmod registers the module", module_loaded())
        with open("/proc/filesystems") as f:
            t.check("vexfs listed in /proc/filesystems", any(l.split()[-1] == "vexfs" for l in f))
        t.eq("three slab pool caches exist", slab_caches(),
             ["vexfs_pool_16k", "vexfs_pool_1k", "vexfs_pool_4k"])
        mount(mnt)
        with open("/proc/mounts") as f:
            t.check("mount -t vexfs shows in /proc/mounts",
                    any(l.split()[1] == mnt and l.split()[2] == "vexfs" for l in f))
        t.eq("statfs f_type is VEXFS_MAGIC", sh(["stat", "-f", "-c", "%t", mnt]).strip(),
             format(VEXFS_MAGIC, "x"))
        sv = os.statvfs(mnt)
        t.eq("statfs name length limit", sv.f_namemax, 255)
        st = os.stat(mnt)
        t.eq("root is a 0755 directory", stat.filemode(st.st_mode), "drwxr-xr-x")
        t.eq("root nlink", st.st_nlink, 2)
        r = rmmod()
        t.check("rmmod refused while mounted", r.returncode != 0 and module_loaded(), r.stderr.strip())
        os.makedirs("/mnt/bogus", exist_ok=True)
        r = run(["mount", "-t", "vexfs", "-o", "bogus_option=1", "none", "/mnt/bogus"])
        t.check("unknown mount option is refused", r.returncode != 0)


def test_files(t, mnt):
    with t.group("files"):
        f = f"{mnt}/hello.txt"
        write(f, b"hello, vexfs\n")
        t.eq("read back what was written", read(f), b"hello, vexfs\n")
        write(f, b"more\n", "ab")
        t.eq("O_APPEND appends", read(f), b"hello, vexfs\nmore\n")
        t.eq("size after append", os.stat(f).st_size, 18)

        fd = os.open(f, os.O_RDWR)
        t.eq("lseek SEEK_END", os.lseek(fd, 0, os.SEEK_END), 18)
        t.eq("lseek SEEK_SET", os.lseek(fd, 7, os.SEEK_SET), 7)
        t.eq("read at offset", os.read(fd, 5), b"vexfs")
        t.eq("lseek SEEK_CUR", os.lseek(fd, -5, os.SEEK_CUR), 7)
        os.pwrite(fd, b"VEXFS", 7)
        t.eq("pwrite then pread", os.pread(fd, 5, 7), b"VEXFS")
        os.close(fd)

        # Sparse file: holes read as zeros; SEEK_DATA/HOLE answered generically.
        s = f"{mnt}/sparse"
        fd = os.open(s, os.O_CREAT | os.O_RDWR, 0o644)
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        os.write(fd, b"x")
        t.eq("write past EOF extends size", os.fstat(fd).st_size, (1 << 20) + 1)
        t.eq("hole reads as zeros", os.pread(fd, 4096, 4096), bytes(4096))
        # As on tmpfs: the hole before the written byte is a hole.
        t.eq("SEEK_DATA from 0 finds the written page", os.lseek(fd, 0, os.SEEK_DATA), 1 << 20)
        t.eq("SEEK_HOLE from 0 is the hole at 0", os.lseek(fd, 0, os.SEEK_HOLE), 0)
        t.eq("SEEK_HOLE after the data is the end of file", os.lseek(fd, 1 << 20, os.SEEK_HOLE), (1 << 20) + 1)
        t.raises("SEEK_DATA past EOF is ENXIO", errno.ENXIO, os.lseek, fd, (2 << 20), os.SEEK_DATA)
        os.close(fd)

        big = os.urandom(8 << 20)
        write(f"{mnt}/big", big)
        t.eq("8 MiB file reads back identical",
             hashlib.sha256(read(f"{mnt}/big")).hexdigest(), hashlib.sha256(big).hexdigest())
        t.eq("st_blocks counts page-cache pages", os.stat(f"{mnt}/big").st_blocks, (8 << 20) // 512)

        # truncate: grow with zeros, shrink, ftruncate
        os.truncate(f, 30)
        data = read(f)
        t.check("truncate grows with zeros", len(data) == 30 and data[18:] == bytes(12), repr(data))
        os.truncate(f, 5)
        t.eq("truncate shrinks", read(f), b"hello")
        fd = os.open(f, os.O_RDWR)
        os.ftruncate(fd, 2)
        t.eq("ftruncate shrinks", os.fstat(fd).st_size, 2)
        os.ftruncate(fd, 10000)
        t.eq("ftruncate grows", os.fstat(fd).st_size, 10000)
        os.close(fd)
        write(f, b"a" * 10000)
        t.eq("st_blocks of 10000 bytes is 3 pages", os.stat(f).st_blocks, 24)
        os.truncate(f, 0)
        t.eq("truncate to 0 frees pages", os.stat(f).st_blocks, 0)

        # fsync and fdatasync succeed
        fd = os.open(f, os.O_RDWR)
        os.write(fd, b"sync me")
        os.fsync(fd)
        os.fdatasync(fd)
        t.eq("data intact after fsync", os.pread(fd, 7, 0), b"sync me")
        os.close(fd)

        # mmap: read and shared write
        m = f"{mnt}/mapped"
        write(m, b"A" * 3 * 4096)
        fd = os.open(m, os.O_RDWR)
        mm = mmap.mmap(fd, 3 * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        t.eq("mmap read", mm[4096:4100], b"AAAA")
        mm[5000:5005] = b"vexfs"
        mm.flush()
        mm.close()
        os.close(fd)
        t.eq("mmap shared write is visible to read()", read(m)[5000:5005], b"vexfs")
        fd = os.open(m, os.O_RDONLY)
        mm = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
        mm[0:3] = b"zzz"
        mm.close()
        os.close(fd)
        t.eq("MAP_PRIVATE write does not reach the file", read(m)[0:3], b"AAA")

        t.raises("EISDIR opening a directory for writing", errno.EISDIR, os.open, mnt, os.O_WRONLY)
        t.raises("ENOENT opening a missing file", errno.ENOENT, os.open, f"{mnt}/missing", os.O_RDONLY)
        t.raises("EEXIST with O_CREAT|O_EXCL", errno.EEXIST, os.open, f, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        t.raises("ENOTDIR through a file", errno.ENOTDIR, os.open, f"{f}/x", os.O_RDONLY)
        os.unlink(f)
        t.check("unlink removes the name", not os.path.exists(f))
        t.raises("ENOENT unlinking a missing file", errno.ENOENT, os.unlink, f)
        for name in ("sparse", "big", "mapped"):
            os.unlink(f"{mnt}/{name}")


def test_attrs(t, mnt):
    with t.group("attributes and times"):
        old_umask = os.umask(0o022)
        f = f"{mnt}/attrs"
        fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o666)
        os.close(fd)
        st = os.stat(f)
        t.eq("mode honours umask", stat.filemode(st.st_mode), "-rw-r--r--")
        t.eq("new file nlink", st.st_nlink, 1)
        t.eq("owner is the creator (root)", (st.st_uid, st.st_gid), (0, 0))
        os.umask(old_umask)
        now = time.time()
        # A generous window: a busy host may stall the guest between the
        # two lines; a wrong clock or unset time is off by far more.
        t.check("creation times are now", all(abs(x - now) < 120 for x in (st.st_atime, st.st_mtime, st.st_ctime)),
                f"{st.st_atime} {st.st_mtime} {st.st_ctime} vs {now}")

        time.sleep(TICK)
        write(f, b"changed")
        st2 = os.stat(f)
        t.check("write updates mtime and ctime", st2.st_mtime_ns > st.st_mtime_ns and st2.st_ctime_ns > st.st_ctime_ns)
        time.sleep(TICK)
        read(f)
        st3 = os.stat(f)
        t.check("read updates atime (relatime, atime older than mtime)", st3.st_atime_ns > st2.st_atime_ns)
        time.sleep(TICK)
        os.chmod(f, 0o600)
        st4 = os.stat(f)
        t.eq("chmod sets mode", stat.S_IMODE(st4.st_mode), 0o600)
        t.check("chmod updates ctime, not mtime",
                st4.st_ctime_ns > st3.st_ctime_ns and st4.st_mtime_ns == st3.st_mtime_ns)
        os.chown(f, 1000, 1001)
        st5 = os.stat(f)
        t.eq("chown sets owner and group", (st5.st_uid, st5.st_gid), (1000, 1001))
        os.utime(f, (1_000_000_000, 1_200_000_000))
        st6 = os.stat(f)
        t.eq("utime sets atime and mtime", (st6.st_atime, st6.st_mtime), (1_000_000_000, 1_200_000_000))
        time.sleep(TICK)
        os.truncate(f, 1)
        t.check("truncate updates mtime", os.stat(f).st_mtime > 1_200_000_000)

        d = os.stat(mnt)
        time.sleep(TICK)
        write(f"{mnt}/newentry", b"")
        d2 = os.stat(mnt)
        t.check("creating an entry updates the directory's mtime and ctime",
                d2.st_mtime_ns > d.st_mtime_ns and d2.st_ctime_ns > d.st_ctime_ns)
        time.sleep(TICK)
        os.unlink(f"{mnt}/newentry")
        t.check("unlinking updates the directory's mtime", os.stat(mnt).st_mtime_ns > d2.st_mtime_ns)

        # A non-root user: owns what it creates, cannot write root's files.
        os.mkdir(f"{mnt}/shared", 0o777)
        os.chmod(f"{mnt}/shared", 0o777)
        r = run([USER_PYTHON, "-c", f"open('{mnt}/shared/mine','w').write('x')"],
                user=1000, group=1000)
        t.eq("unprivileged create succeeds in a 0777 directory", r.returncode, 0)
        st = os.stat(f"{mnt}/shared/mine")
        t.eq("file is owned by its creator", (st.st_uid, st.st_gid), (1000, 1000))
        os.chmod(f, 0o644)
        os.chown(f, 0, 0)
        r = run([USER_PYTHON, "-c", f"open('{f}','w')"], user=1000, group=1000)
        t.check("EACCES writing another user's 0644 file", r.returncode != 0 and "PermissionError" in r.stderr,
                r.stderr.strip()[-120:])
        os.unlink(f)
        os.unlink(f"{mnt}/shared/mine")
        os.rmdir(f"{mnt}/shared")


def test_dirs(t, mnt):
    with t.group("directories"):
        d = f"{mnt}/d"
        os.mkdir(d, 0o755)
        t.eq("new directory nlink", os.stat(d).st_nlink, 2)
        root_links = os.stat(mnt).st_nlink
        os.mkdir(f"{d}/sub")
        t.eq("subdirectory raises parent nlink", os.stat(d).st_nlink, 3)
        t.raises("EEXIST for mkdir of an existing name", errno.EEXIST, os.mkdir, f"{d}/sub")
        write(f"{d}/sub/file", b"x")
        t.raises("ENOTEMPTY removing a non-empty directory", errno.ENOTEMPTY, os.rmdir, f"{d}/sub")
        t.raises("ENOTDIR for rmdir of a file", errno.ENOTDIR, os.rmdir, f"{d}/sub/file")
        t.raises("EISDIR for unlink of a directory", errno.EISDIR, os.unlink, f"{d}/sub")
        t.raises("ENOTDIR for mkdir under a file", errno.ENOTDIR, os.mkdir, f"{d}/sub/file/x")
        t.raises("ENAMETOOLONG for a 256-byte name", errno.ENAMETOOLONG, os.open, f"{d}/{'n' * 256}",
                 os.O_CREAT | os.O_WRONLY)
        write(f"{d}/{'n' * 255}", b"")
        t.check("a 255-byte name is fine", os.path.exists(f"{d}/{'n' * 255}"))
        os.unlink(f"{d}/{'n' * 255}")

        for name in ("a", "b", "c"):
            write(f"{d}/{name}", name.encode())
        t.eq("readdir lists every entry", sorted(os.listdir(d)), ["a", "b", "c", "sub"])
        ls = sh(["ls", "-la", d]).splitlines()
        names = [l.split()[-1] for l in ls[1:]]
        t.eq("ls -la lists . and .. and the entries", sorted(names), [".", "..", "a", "b", "c", "sub"])
        modes = {l.split()[-1]: l.split()[0] for l in ls[1:]}
        t.check("ls -la shows types and permissions",
                modes["a"] == "-rw-r--r--" and modes["sub"].startswith("d") and modes["."].startswith("d"),
                str(modes))

        os.unlink(f"{d}/sub/file")
        os.rmdir(f"{d}/sub")
        t.eq("rmdir lowers parent nlink", os.stat(d).st_nlink, 2)
        t.check("rmdir removes the name", not os.path.exists(f"{d}/sub"))
        t.eq("root nlink counts its subdirectory", root_links, 3)


def test_rename_links(t, mnt):
    with t.group("rename and links"):
        d = f"{mnt}/r"
        os.mkdir(d)
        write(f"{d}/a", b"AAA")
        ino = os.stat(f"{d}/a").st_ino
        os.rename(f"{d}/a", f"{d}/b")
        t.check("rename moves the name", not os.path.exists(f"{d}/a") and read(f"{d}/b") == b"AAA")
        t.eq("rename keeps the inode", os.stat(f"{d}/b").st_ino, ino)
        write(f"{d}/c", b"CCC")
        os.rename(f"{d}/b", f"{d}/c")
        t.eq("rename overwrites an existing file", read(f"{d}/c"), b"AAA")
        t.eq("overwritten name is gone", sorted(os.listdir(d)), ["c"])
        write(f"{d}/e", b"EEE")
        t.raises("RENAME_NOREPLACE refuses an existing target", errno.EEXIST, renameat2, f"{d}/e", f"{d}/c",
                 RENAME_NOREPLACE)
        renameat2(f"{d}/e", f"{d}/f", RENAME_NOREPLACE)
        t.eq("RENAME_NOREPLACE renames to a free name", read(f"{d}/f"), b"EEE")
        renameat2(f"{d}/c", f"{d}/f", RENAME_EXCHANGE)
        t.check("RENAME_EXCHANGE swaps", read(f"{d}/c") == b"EEE" and read(f"{d}/f") == b"AAA")

        os.mkdir(f"{d}/dir1")
        os.mkdir(f"{d}/dir2")
        os.rename(f"{d}/dir1", f"{d}/dir2/moved")
        t.eq("moving a directory updates both parents' nlink",
             (os.stat(d).st_nlink, os.stat(f"{d}/dir2").st_nlink), (3, 3))
        t.raises("EISDIR renaming a file over a directory", errno.EISDIR, os.rename, f"{d}/c", f"{d}/dir2")
        t.raises("ENOTDIR renaming a directory over a file", errno.ENOTDIR, os.rename, f"{d}/dir2", f"{d}/c")
        write(f"{d}/dir2/moved/x", b"")
        os.mkdir(f"{d}/dir3")
        t.raises("ENOTEMPTY renaming over a non-empty directory", errno.ENOTEMPTY, os.rename, f"{d}/dir3",
                 f"{d}/dir2")

        os.link(f"{d}/c", f"{d}/hard")
        st = os.stat(f"{d}/c")
        t.eq("hard link raises nlink", st.st_nlink, 2)
        t.eq("hard link shares the inode", os.stat(f"{d}/hard").st_ino, st.st_ino)
        write(f"{d}/hard", b"via link")
        t.eq("write through one name shows through the other", read(f"{d}/c"), b"via link")
        os.unlink(f"{d}/c")
        t.eq("unlink of one name leaves the other", (read(f"{d}/hard"), os.stat(f"{d}/hard").st_nlink),
             (b"via link", 1))
        t.raises("EEXIST linking onto an existing name", errno.EEXIST, os.link, f"{d}/hard", f"{d}/f")
        t.raises("EPERM hard-linking a directory", errno.EPERM, os.link, f"{d}/dir3", f"{d}/dirlink")

        os.symlink("hard", f"{d}/sym")
        t.eq("readlink returns the target", os.readlink(f"{d}/sym"), "hard")
        t.check("lstat sees a symlink", stat.S_ISLNK(os.lstat(f"{d}/sym").st_mode))
        t.eq("symlink size is the target length", os.lstat(f"{d}/sym").st_size, 4)
        t.eq("open follows the symlink", read(f"{d}/sym"), b"via link")
        long_target = "t" * 4000
        os.symlink(long_target, f"{d}/longsym")
        t.eq("a 4000-byte symlink target round-trips", os.readlink(f"{d}/longsym"), long_target)
        os.symlink("nowhere", f"{d}/dangling")
        t.raises("ENOENT through a dangling symlink", errno.ENOENT, os.open, f"{d}/dangling", os.O_RDONLY)
        t.raises("EEXIST for a symlink onto an existing name", errno.EEXIST, os.symlink, "x", f"{d}/sym")
        sh(["rm", "-rf", d])
        t.check("rm -rf removes the tree", not os.path.exists(d))


def test_ioctl(t, mnt):
    with t.group("ioctl and vexctl"):
        r = vexctl("version", mnt)
        t.check("vexctl version succeeds", r.returncode == 0 and "ABI version" in r.stdout, r.stderr)
        print(r.stdout, end="")
        v = vexctl_json("version", mnt)
        t.eq(f"module reports ABI version {abi.ABI_VERSION}", v["abi_version"], abi.ABI_VERSION)
        t.eq("module reports its release", v["module_version"], "0.1.0")
        t.check("kernel detected SSE2 at least", "sse2" in v["cpu_features"], str(v["cpu_features"]))

        s0 = vexctl_json("stats", mnt)
        t.eq("stats has four pool tiers", [p["object_size"] for p in s0["pools"]], [1024, 4096, 16384, 0])
        one_k = s0["pools"][0]
        t.eq("1 KiB pool holds the mount's state and the STATS reply", one_k["in_use"], 2)
        t.eq("1 KiB pool frees match allocations", one_k["frees"], one_k["allocs"] - 2)
        s1 = vexctl_json("stats", mnt)
        t.eq("each vexctl stats allocates two ioctl buffers", s1["pools"][0]["allocs"] - one_k["allocs"], 2)
        o0 = {o["op"]: o["count"] for o in s0["ops"]}
        o1 = {o["op"]: o["count"] for o in s1["ops"]}
        t.eq("each vexctl stats makes two ioctls", o1["ioctl"] - o0["ioctl"], 2)

        before = ops(mnt)
        for i in range(5):
            write(f"{mnt}/count{i}", b"x" * 10)
        for i in range(5):
            os.unlink(f"{mnt}/count{i}")
        after = ops(mnt)
        t.eq("five creates counted", after["create"] - before["create"], 5)
        t.eq("five writes counted", after["write"] - before["write"], 5)
        t.eq("five unlinks counted", after["unlink"] - before["unlink"], 5)

        inodes = vexctl_json("stats", mnt)["inodes"]
        for i in range(100):
            write(f"{mnt}/i{i}", b"")
        t.eq("inode count rises with files", vexctl_json("stats", mnt)["inodes"], inodes + 100)
        for i in range(100):
            os.unlink(f"{mnt}/i{i}")
        t.eq("unlinked inodes are freed", vexctl_json("stats", mnt)["inodes"], inodes)

        r = vexctl("stats", mnt)
        t.check("stats table shows the pools", r.returncode == 0 and "1 KiB" in r.stdout and "ioctl" in r.stdout)

        fd = os.open(mnt, os.O_RDONLY)
        t.raises("ENOTTY for an unknown ioctl", errno.ENOTTY, fcntl.ioctl, fd, IOC_UNKNOWN, bytes(8))
        t.raises("EFAULT for a bad user pointer", errno.EFAULT, fcntl.ioctl, fd, IOC_VERSION, 8)
        buf = bytearray(48)
        fcntl.ioctl(fd, IOC_VERSION, buf)
        t.eq("VERSION ioctl by hand: ABI version field", struct.unpack_from("<I", buf)[0], abi.ABI_VERSION)
        os.close(fd)

        r = vexctl("stats", "/tmp")
        t.check("vexctl on tmpfs: not a VexFS filesystem",
                r.returncode != 0 and r.stderr.strip() == "vexctl: /tmp: not a VexFS filesystem", r.stderr)
        r = vexctl("stats", f"{mnt}/missing")
        t.check("vexctl on a missing path: one clear line",
                r.returncode != 0 and r.stderr.strip() == f"vexctl: {mnt}/missing: no such file or directory",
                r.stderr)
        os.mkdir(f"{mnt}/private", 0o700)
        r = vexctl("stats", f"{mnt}/private", user=1000)
        t.check("vexctl without permission: permission denied",
                r.returncode != 0 and r.stderr.strip() == f"vexctl: {mnt}/private: permission denied", r.stderr)
        os.rmdir(f"{mnt}/private")


def test_mounts(t, mnt):
    with t.group("independent mounts"):
        other = "/mnt/vex2"
        mount(other)
        write(f"{mnt}/only-here", b"1")
        t.check("a file in one mount is absent from the other", not os.path.exists(f"{other}/only-here"))
        t.eq("a fresh mount counts only its root inode", vexctl_json("stats", other)["inodes"], 1)
        t.raises("EXDEV renaming across mounts", errno.EXDEV, os.rename, f"{mnt}/only-here", f"{other}/x")
        t.raises("EXDEV linking across mounts", errno.EXDEV, os.link, f"{mnt}/only-here", f"{other}/x")
        t.raises("EXDEV renaming to tmpfs", errno.EXDEV, os.rename, f"{mnt}/only-here", "/tmp/x")
        sh(["cp", "-a", f"{mnt}/only-here", f"{other}/copied"])
        t.eq("cp across mounts works", read(f"{other}/copied"), b"1")
        for i in range(50):
            write(f"{other}/f{i}", os.urandom(20000))
        umount(other)
        t.eq("the other mount survives an umount", read(f"{mnt}/only-here"), b"1")
        mount(other)
        t.eq("a remount starts empty", os.listdir(other), [])
        umount(other)
        os.unlink(f"{mnt}/only-here")


def heavy_use(root):
    for d in range(20):
        os.makedirs(f"{root}/d{d}/e")
        for i in range(50):
            write(f"{root}/d{d}/e/f{i}", os.urandom(3000))
        os.symlink(f"d{d}", f"{root}/l{d}")
    write(f"{root}/big", os.urandom(2 << 20))


def test_unmount_unload(t, mnt):
    with t.group("umount and rmmod after heavy use"):
        heavy_use(f"{mnt}/heavy")
        t.eq("heavy use wrote 1000 small files and a big one",
             int(sh(["sh", "-c", f"find {mnt}/heavy -type f | wc -l"])), 1001)
        umount(mnt)
        r = rmmod()
        t.check("rmmod succeeds after umount", r.returncode == 0 and not module_loaded(), r.stderr)
        t.eq("no slab cache left behind", slab_caches(), [])


def test_cycles(t, mnt):
    cycles = 10 if LONG else 4
    with t.group(f"{cycles} insmod/mount/umount/rmmod cycles"):
        ok = True
        for i in range(cycles):
            insmod()
            mount(mnt)
            write(f"{mnt}/cycle", str(i).encode())
            os.mkdir(f"{mnt}/dir")
            write(f"{mnt}/dir/blob", os.urandom(100000))
            ok &= read(f"{mnt}/cycle") == str(i).encode()
            ok &= vexctl("stats", mnt).returncode == 0
            umount(mnt)
            r = rmmod()
            ok &= r.returncode == 0 and not module_loaded() and slab_caches() == []
        t.check("every cycle wrote, read, unmounted and unloaded cleanly", ok)


def kmemleak_check(t):
    with t.group("kmemleak"):
        path = "/sys/kernel/debug/kmemleak"
        if not os.path.exists(path):
            t.check("kmemleak available", False, "kernel built without CONFIG_DEBUG_KMEMLEAK")
            return
        # kmemleak ignores objects younger than 5 s, and an object must stay
        # unreferenced across two scans to be reported.
        time.sleep(6)
        for _ in range(2):
            write(path, b"scan")
        with open(path) as f:
            report = f.read()
        # After rmmod, the module's frames show as bare 0xffffffffc... addresses.
        leaks = [blk for blk in report.split("unreferenced object")
                 if "vexfs" in blk or re.search(r"\] 0xffffffffc[0-9a-f]+", blk)]
        t.check("no leaked object allocated by vexfs", not leaks, leaks[0][:400] if leaks else "")


def main():
    """`run.py [GROUP...]` runs only the named groups (between loading the
    module and unloading it); `run.py -GROUP...` all but the named ones; no
    argument runs everything."""
    t = Suite()
    mnt = "/mnt/vex"
    steps = [
        ("module", lambda: test_module(t, mnt)),
        ("files", lambda: test_files(t, mnt)),
        ("attrs", lambda: test_attrs(t, mnt)),
        ("dirs", lambda: test_dirs(t, mnt)),
        ("rename", lambda: test_rename_links(t, mnt)),
        ("ioctl", lambda: test_ioctl(t, mnt)),
        ("mounts", lambda: test_mounts(t, mnt)),
        ("limits", lambda: hardening.test_limits(t)),
        ("memcg", lambda: hardening.test_memcg_and_swap(t)),
        ("full", lambda: hardening.test_full_mount_no_oom(t)),
        ("parity", lambda: parity.test_all(t, mnt)),
        ("vectors", lambda: (vectors.test_exact_search(t, mnt), vectors.test_glove(t, mnt),
                             vectors.test_errors(t, mnt), vectors.test_files(t, mnt))),
        ("privacy", lambda: hardening.test_file_vector_privacy(t, mnt)),
        ("filters", lambda: filters.test_all(t, mnt)),
        ("embed", lambda: embed.test_all(t, mnt)),
        ("vector-concurrency", lambda: vectors.test_concurrency(t, mnt)),
        ("hnsw", lambda: hnsw.test_all(t, mnt)),
        # Part of "hnsw"; alone only when named (`run.py sq8`).
        ("sq8", lambda: hnsw.test_sq8(t, mnt)),
        ("hnsw-bounds", lambda: hardening.test_hnsw_bounds(t, mnt)),
        ("locks", lambda: hardening.test_short_lock_holds(t, mnt)),
        ("python", lambda: python_pkg.test_all(t, mnt)),
        ("profiler", lambda: profiler.test_profile(t)),
        ("disk", lambda: disk.test_all(t)),
        ("disk-replay", lambda: replay.test_all(t)),
        ("disk-reboot-write", lambda: disk.test_reboot_write(t)),
        ("disk-reboot-read", lambda: disk.test_reboot_read(t)),
        ("unload", lambda: test_unmount_unload(t, mnt)),
        ("memory-limit", lambda: vectors.test_memory_limit(t, KO)),
        ("stack", lambda: stack.test_all(t)),
        # In the disk boot only (it needs the disks).
        ("stack-disk", lambda: stack.test_disk(t)),
        ("vector-memory", lambda: hardening.test_vector_memory(t, KO)),
        ("cycles", lambda: test_cycles(t, mnt)),
        ("kmemleak", lambda: kmemleak_check(t)),
    ]
    only = {a for a in sys.argv[1:] if not a.startswith("-")}
    skip = {a[1:] for a in sys.argv[1:] if a.startswith("-")}
    unknown = (only | skip) - {name for name, _ in steps}
    if unknown:
        print(f"unknown groups {sorted(unknown)}; groups: {' '.join(name for name, _ in steps)}")
        return 2
    for name, fn in steps:
        # The second boot of the reboot pair, and the groups of another
        # step run alone, run only when named.
        if name in ("disk-reboot-read", "sq8", "stack-disk") and name not in only:
            continue
        if name in ("module", "unload", "kmemleak") or (name in only if only else name not in skip):
            fn()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
