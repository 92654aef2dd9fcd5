"""In-VM tests of tmpfs parity: O_DIRECT, fallocate modes, O_TMPFILE,
renameat2 (RENAME_WHITEOUT, RENAME_EXCHANGE) and VexFS as an overlayfs
upper directory, file leases, extended attributes, POSIX ACLs, and a
differential run of random operations (in the manner of fsstress) on VexFS
and on tmpfs side by side: every result and the final trees must agree."""

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import random
import stat

from harness import as_uid, mount, run, sh

LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
LIBC.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 0x10
F_SETLEASE, F_GETLEASE = 1024, 1025
PAGE = mmap.PAGESIZE
A, B = 1000, 1001
TMPFS = "/mnt/parity-tmpfs"
# Fresh VexFS mounts beside the fresh tmpfs, with the same options.
VEX = "/mnt/parity-vexfs"


def fallocate(fd, mode, off, length):
    if LIBC.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def link_fd(fd, new):
    """linkat(AT_FDCWD, "/proc/self/fd/FD", AT_FDCWD, new, AT_SYMLINK_FOLLOW):
    gives an O_TMPFILE file a name (os.link calls link(2), which would link
    the /proc symlink itself)."""
    if LIBC.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, new.encode(), AT_SYMLINK_FOLLOW) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def renameat2(old, new, flags):
    if LIBC.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def mount_pair(opts=""):
    """A fresh tmpfs and a fresh VexFS mount with the same options."""
    for fs, path in (("tmpfs", TMPFS), ("vexfs", VEX)):
        mount(path, opts or None, fs, source=fs if fs == "tmpfs" else "none")
    return (TMPFS, VEX)


def umount_pair():
    for path in (TMPFS, VEX):
        run(["umount", path])


def aligned(n, fill=b"\0"):
    m = mmap.mmap(-1, n)
    m.write((fill * n)[:n])
    m.seek(0)
    return m


def test_direct_io(t):
    with t.group("tmpfs parity: O_DIRECT opens and I/O"):
        for root in mount_pair("size=16m"):
            fs = "tmpfs" if root == TMPFS else "VexFS"
            fd = os.open(f"{root}/d", os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
            buf = aligned(4 * PAGE, b"D")
            t.eq(f"{fs}: O_DIRECT pwrite of 4 aligned pages", os.pwrite(fd, buf, PAGE), 4 * PAGE)
            back = aligned(4 * PAGE)
            t.eq(f"{fs}: O_DIRECT pread returns them", (os.preadv(fd, [back], PAGE), back[:]),
                 (4 * PAGE, b"D" * 4 * PAGE))
            t.eq(f"{fs}: size after an O_DIRECT write", os.fstat(fd).st_size, 5 * PAGE)
            os.close(fd)
            fd = os.open(f"{root}/d", os.O_RDWR)
            fcntl.fcntl(fd, fcntl.F_SETFL, os.O_DIRECT)
            t.check(f"{fs}: fcntl(F_SETFL, O_DIRECT) is accepted",
                    fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT != 0)
            os.close(fd)
        umount_pair()


def append_steps(root):
    """O_APPEND writes, then F_SETFL taking O_APPEND away (a pwrite at 0
    then writes at 0) and giving it back: the contents after each step."""
    p = f"{root}/append"
    with open(p, "wb") as f:
        f.write(b"0123456789")
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    out = []
    os.pwrite(fd, b"AA", 0)
    out.append(("pwrite at 0 with O_APPEND appends", open(p, "rb").read()))
    fcntl.fcntl(fd, fcntl.F_SETFL, 0)
    os.pwrite(fd, b"BB", 0)
    out.append(("after F_SETFL 0, pwrite at 0 writes at 0", open(p, "rb").read()))
    os.lseek(fd, 4, os.SEEK_SET)
    os.write(fd, b"CC")
    out.append(("and write follows the offset", open(p, "rb").read()))
    fcntl.fcntl(fd, fcntl.F_SETFL, os.O_APPEND)
    os.pwrite(fd, b"DD", 0)
    out.append(("F_SETFL O_APPEND again: appends", open(p, "rb").read()))
    os.close(fd)
    return out


def same_steps(t, opts, steps):
    """Runs `steps(root)` (a list of (label, result)) on a fresh tmpfs and a
    fresh VexFS mount with `opts`; VexFS's results must be tmpfs'. Returns
    tmpfs' results."""
    tmpfs, vex = mount_pair(opts)
    want, got = steps(tmpfs), steps(vex)
    for (label, w), (_, g) in zip(want, got):
        t.eq(f"VexFS as tmpfs: {label}", g, w)
    t.eq("VexFS as tmpfs: as many steps", len(got), len(want))
    umount_pair()
    return dict(want)


def test_append(t):
    with t.group("tmpfs parity: O_APPEND and F_SETFL"):
        want = same_steps(t, "size=16m", append_steps)
        t.eq("the steps (tmpfs)", want["F_SETFL O_APPEND again: appends"], b"BB23CC6789AADD")


def splice_steps(root):
    """Data moved into files by splice(2) through a pipe (appended, and at
    an offset into existing data), sendfile(2) and copy_file_range(2); and
    what an unprivileged owner's write and fallocate leave of the setuid
    and setgid bits of its file (both clear them)."""
    data = bytes(range(256)) * 600
    src = f"{root}/src"
    with open(src, "wb") as f:
        f.write(data)

    def content(p):
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16], os.stat(p).st_size

    out = []
    dst = f"{root}/spliced"
    with open(dst, "wb") as f:
        f.write(b"z" * 5000)
    fd = os.open(dst, os.O_WRONLY)
    r, w = os.pipe()
    with open(src, "rb") as s:
        for at, count, dst_off in ((0, 70000, 5000), (70000, 1000, 100), (71000, len(data) - 71000, 76000)):
            moved = os.splice(s.fileno(), w, count, offset_src=at)
            done = 0
            while done < moved:
                done += os.splice(r, fd, moved - done, offset_dst=dst_off + done)
    os.close(r)
    os.close(w)
    os.close(fd)
    out.append(("splice through a pipe, at the end and inside the data", content(dst)))
    for label, copy in (("sendfile", lambda i, o: os.sendfile(o, i, None, len(data))),
                        ("copy_file_range", lambda i, o: os.copy_file_range(i, o, len(data)))):
        p = f"{root}/{label}"
        with open(src, "rb") as i, open(p, "wb") as o:
            done = 0
            while done < len(data):
                n = copy(i.fileno(), o.fileno())
                if n == 0:
                    break
                done += n
        out.append((label, content(p)))
    f = f"{root}/setid"
    with open(f, "wb") as h:
        h.write(b"x" * 3 * PAGE)
    os.chown(f, A, A)
    for label, code in (("write", "os.pwrite(fd, b'y', 0)"),
                        ("fallocate PUNCH_HOLE", "assert libc.fallocate(fd, 3, ctypes.c_long(0), "
                                                 "ctypes.c_long(4096)) == 0, ctypes.get_errno()")):
        os.chmod(f, 0o6775)
        res = run([*as_uid(A), "/usr/bin/python3", "-c",
                   "import ctypes, os; libc = ctypes.CDLL('libc.so.6', use_errno=True); "
                   f"fd = os.open({f!r}, os.O_WRONLY); {code}"])
        out.append((f"uid 1000's {label} on its setuid/setgid file: exit, mode after",
                    (res.returncode, oct(os.stat(f).st_mode & 0o7777))))
    return out


def test_splice_and_setid(t):
    with t.group("tmpfs parity: splice, sendfile, copy_file_range; writes and fallocate clear setuid/setgid"):
        want = same_steps(t, "size=16m", splice_steps)
        t.eq("the steps (tmpfs): fallocate cleared the bits",
             want["uid 1000's fallocate PUNCH_HOLE on its setuid/setgid file: exit, mode after"], (0, "0o775"))


def link_steps(root):
    """Under nr_inodes=8: links of one file until ENOSPC, then what
    unlinking and renaming over an extra name give back (free inodes by
    statvfs after each step)."""
    free = lambda: os.statvfs(root).f_ffree
    out = []
    open(f"{root}/f", "w").close()
    out.append(("a file", free()))
    n = 0
    try:
        while n < 100:
            os.link(f"{root}/f", f"{root}/l{n}")
            n += 1
    except OSError as e:
        out.append(("links until", (n, errno.errorcode[e.errno])))
    out.append(("after the links", free()))
    os.unlink(f"{root}/l0")
    out.append(("unlinking an extra name", free()))
    open(f"{root}/g", "w").close()
    out.append(("a second file", free()))
    os.rename(f"{root}/g", f"{root}/l1")
    out.append(("renaming it over an extra name", free()))
    fd = os.open(root, os.O_TMPFILE | os.O_WRONLY, 0o600)
    out.append(("an O_TMPFILE file", free()))
    link_fd(fd, f"{root}/t")
    os.close(fd)
    out.append(("giving it its first name", free()))
    for name in os.listdir(root):
        os.unlink(f"{root}/{name}")
    out.append(("all removed", free()))
    return out


def test_link_space(t):
    with t.group("tmpfs parity: hard links take inode space (nr_inodes=8)"):
        want = same_steps(t, "nr_inodes=8", link_steps)
        t.eq("tmpfs refused a link at the limit", want.get("links until", (0, None))[1], "ENOSPC")


def falloc_state(path):
    st = os.stat(path)
    fd = os.open(path, os.O_RDONLY)
    holes = []
    off = 0
    while off < st.st_size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        holes.append((d, h))
        off = h
    data = os.pread(fd, st.st_size, 0)
    os.close(fd)
    return st.st_size, st.st_blocks, holes, hashlib.sha256(data).hexdigest()


def test_fallocate(t):
    with t.group("tmpfs parity: fallocate (allocate, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE) and SEEK_DATA/HOLE"):
        results = {}
        for root in mount_pair("size=1m"):
            fs = "tmpfs" if root == TMPFS else "VexFS"
            p = f"{root}/f"
            with open(p, "wb") as f:
                f.write(b"x" * 3 * PAGE)
            fd = os.open(p, os.O_RDWR)
            steps = []
            fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8 * PAGE)
            steps.append(("KEEP_SIZE to 8 pages", falloc_state(p)))
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PAGE, PAGE)
            steps.append(("PUNCH_HOLE of page 1", falloc_state(p)))
            fallocate(fd, 0, 10 * PAGE, 2 * PAGE)
            steps.append(("allocate pages 10-11 (size grows)", falloc_state(p)))
            try:
                fallocate(fd, 0, 0, 2 << 20)
                steps.append(("allocating past size=", "no error"))
            except OSError as e:
                steps.append(("allocating past size=", errno.errorcode[e.errno]))
            steps.append(("after the refused allocation", falloc_state(p)))
            results[fs] = steps
            if fs == "VexFS":
                fallocate(fd, FALLOC_FL_ZERO_RANGE, 2 * PAGE - 100, 200)
                size, blocks, holes, _ = falloc_state(p)
                data = os.pread(fd, 3 * PAGE, 0)
                t.check("VexFS: ZERO_RANGE zeroes the range, keeps the rest and the size",
                        data[2 * PAGE - 100:2 * PAGE + 100] == bytes(200) and data[:PAGE] == b"x" * PAGE
                        and size == 12 * PAGE, f"size {size}")
                fallocate(fd, FALLOC_FL_ZERO_RANGE, 12 * PAGE, PAGE)
                t.eq("VexFS: ZERO_RANGE past the end grows the size", os.fstat(fd).st_size, 13 * PAGE)
                fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 13 * PAGE, PAGE)
                t.eq("VexFS: ZERO_RANGE with KEEP_SIZE keeps it", os.fstat(fd).st_size, 13 * PAGE)
            os.close(fd)
        for (label, tm), (_, vx) in zip(results["tmpfs"], results["VexFS"]):
            t.eq(f"{label}: size, blocks, data/hole map and contents as on tmpfs", vx, tm)
        umount_pair()


def test_tmpfile(t):
    with t.group("tmpfs parity: O_TMPFILE and linkat"):
        for root in mount_pair("nr_inodes=8"):
            fs = "tmpfs" if root == TMPFS else "VexFS"
            before = os.statvfs(root).f_ffree
            fd = os.open(root, os.O_TMPFILE | os.O_RDWR, 0o640)
            os.write(fd, b"unnamed")
            t.eq(f"{fs}: an O_TMPFILE file has no link and takes an inode",
                 (os.fstat(fd).st_nlink, os.statvfs(root).f_ffree), (0, before - 1))
            link_fd(fd, f"{root}/named")
            t.eq(f"{fs}: linkat gives it a name", (open(f"{root}/named", "rb").read(), os.fstat(fd).st_nlink),
                 (b"unnamed", 1))
            os.close(fd)
            fd = os.open(root, os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
            try:
                link_fd(fd, f"{root}/never")
                got = "linked"
            except OSError as e:
                got = errno.errorcode[e.errno]
            t.eq(f"{fs}: O_TMPFILE|O_EXCL cannot be linked", got, "ENOENT")
            os.close(fd)
            t.eq(f"{fs}: closing an unnamed file frees its inode", os.statvfs(root).f_ffree, before - 1)
        umount_pair()


def test_rename_overlay(t, mnt):
    with t.group("tmpfs parity: RENAME_WHITEOUT, RENAME_EXCHANGE, VexFS as an overlayfs upper directory"):
        root = mnt
        os.makedirs(f"{root}/w", exist_ok=True)
        with open(f"{root}/w/a", "w") as f:
            f.write("A")
        renameat2(f"{root}/w/a", f"{root}/w/b", RENAME_WHITEOUT)
        st = os.lstat(f"{root}/w/a")
        t.check("RENAME_WHITEOUT leaves a 0/0 character device", stat.S_ISCHR(st.st_mode) and st.st_rdev == 0,
                oct(st.st_mode))
        t.eq("... and moves the file", open(f"{root}/w/b").read(), "A")
        with open(f"{root}/w/c", "w") as f:
            f.write("C")
        renameat2(f"{root}/w/b", f"{root}/w/c", RENAME_EXCHANGE)
        t.eq("RENAME_EXCHANGE swaps", (open(f"{root}/w/b").read(), open(f"{root}/w/c").read()), ("C", "A"))
        sh(["rm", "-rf", f"{root}/w"])

        lower = "/mnt/ovl-lower"
        os.makedirs(lower, exist_ok=True)
        sh(["mount", "-t", "tmpfs", "tmpfs", lower])
        for name in ("keep", "gone", "changed"):
            with open(f"{lower}/{name}", "w") as f:
                f.write(name)
        os.mkdir(f"{lower}/dir")
        for d in ("upper", "work"):
            os.makedirs(f"{root}/{d}", exist_ok=True)
        merged = "/mnt/ovl"
        os.makedirs(merged, exist_ok=True)
        r = run(["mount", "-t", "overlay", "overlay", "-o",
                 f"lowerdir={lower},upperdir={root}/upper,workdir={root}/work", merged])
        if not t.check("overlayfs mounts with its upper and work directories on VexFS", r.returncode == 0,
                       r.stderr.strip() + " " + sh(["dmesg"])[-300:]):
            sh(["umount", lower])
            return
        os.unlink(f"{merged}/gone")
        with open(f"{merged}/changed", "a") as f:
            f.write("+")
        with open(f"{merged}/new", "w") as f:
            f.write("new")
        sh(["rm", "-rf", f"{merged}/dir"])
        os.mkdir(f"{merged}/dir")
        t.eq("the merged view", sorted(os.listdir(merged)), ["changed", "dir", "keep", "new"])
        t.eq("copy-up wrote the changed file to VexFS", open(f"{root}/upper/changed").read(), "changed+")
        st = os.lstat(f"{root}/upper/gone")
        t.check("a deleted lower file is a whiteout on VexFS", stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
        opaque = os.getxattr(f"{root}/upper/dir", "trusted.overlay.opaque")
        t.eq("a replaced directory is marked opaque in a trusted.* xattr on VexFS", opaque, b"y")
        sh(["umount", merged])
        sh(["umount", lower])
        sh(["rm", "-rf", f"{root}/upper", f"{root}/work"])


def test_leases(t, mnt):
    with t.group("tmpfs parity: file leases (F_SETLEASE)"):
        p = f"{mnt}/leased"
        with open(p, "w") as f:
            f.write("l")
        fd = os.open(p, os.O_RDONLY)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)
        t.eq("a read lease is granted", fcntl.fcntl(fd, F_GETLEASE), fcntl.F_RDLCK)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
        t.eq("and released", fcntl.fcntl(fd, F_GETLEASE), fcntl.F_UNLCK)
        os.close(fd)
        fd = os.open(p, os.O_RDWR)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
        t.eq("a write lease is granted on the only open", fcntl.fcntl(fd, F_GETLEASE), fcntl.F_WRLCK)
        os.close(fd)
        os.unlink(p)


def xattr_script(root):
    """The same extended-attribute steps on a mount; returns their results."""
    out = []

    def step(label, fn, *args):
        try:
            r = fn(*args)
            out.append((label, r if r is not None else "ok"))
        except OSError as e:
            out.append((label, errno.errorcode[e.errno]))

    f, d, s = f"{root}/x", f"{root}/xd", f"{root}/xs"
    open(f, "w").close()
    os.mkdir(d)
    os.symlink("x", s)
    step("user.* on a file", os.setxattr, f, "user.lang", b"en")
    step("get it", os.getxattr, f, "user.lang")
    step("user.* on a directory", os.setxattr, d, "user.tag", b"dir")
    step("XATTR_CREATE of an existing name", os.setxattr, f, "user.lang", b"fr", os.XATTR_CREATE)
    step("XATTR_REPLACE of a missing name", os.setxattr, f, "user.none", b"x", os.XATTR_REPLACE)
    step("XATTR_REPLACE of an existing name", os.setxattr, f, "user.lang", b"de", os.XATTR_REPLACE)
    step("the replaced value", os.getxattr, f, "user.lang")
    step("user.* on a symlink", lambda: os.setxattr(s, "user.x", b"1", 0, follow_symlinks=False))
    step("trusted.* as root", os.setxattr, f, "trusted.t", b"T")
    step("security.* as root", os.setxattr, f, "security.s", b"S")
    step("a 64 KiB value", os.setxattr, f, "user.big", b"b" * 65536)
    step("a value over 64 KiB", os.setxattr, f, "user.bigger", b"b" * 65537)
    step("list", lambda: sorted(os.listxattr(f)))
    step("remove", os.removexattr, f, "user.big")
    step("remove a missing name", os.removexattr, f, "user.big")
    step("get a missing name", os.getxattr, f, "user.big")
    for i in range(40):
        step(f"fill inode space {i}", os.setxattr, d, f"user.fill{i}", b"f" * 4000)
    step("list as uid 1000 (no trusted.*)", lambda: run(
        [*as_uid(A), "/usr/bin/python3", "-c",
         f"import os; print(sorted(os.listxattr({f!r})))"]).stdout.strip())
    step("uid 1000 sets user.* on root's 0644 file", lambda: run(
        [*as_uid(A), "/usr/bin/python3", "-c",
         f"import os; os.setxattr({f!r}, 'user.a', b'1')"]).returncode)
    step("uid 1000 sets trusted.*", lambda: run(
        [*as_uid(A), "/usr/bin/python3", "-c",
         f"import os; os.chmod({f!r}, 0o666) if os.getuid() == 0 else None; os.setxattr({f!r}, 'trusted.a', b'1')"]
    ).returncode)
    return out


def test_xattrs(t):
    with t.group("tmpfs parity: user.*, trusted.*, security.* xattrs, their rules and limits"):
        res = {}
        # nr_inodes=100: 100 KiB of inode space: a 64 KiB value fits, the 40
        # fills of 4 KiB run out of it.
        for root in mount_pair("nr_inodes=100"):
            res["tmpfs" if root == TMPFS else "VexFS"] = xattr_script(root)
        for (label, tm), (_, vx) in zip(res["tmpfs"], res["VexFS"]):
            t.eq(f"xattr: {label}: as on tmpfs", vx, tm)
        t.check("the fills ran out of inode space with ENOSPC on both",
                ("fill inode space 39", "ENOSPC") in res["VexFS"], str(res["VexFS"][-8:]))
        umount_pair()


def acl_script(root):
    out = []
    f, d = f"{root}/secret", f"{root}/shared"
    with open(f, "w") as fh:
        fh.write("s")
    os.chown(f, A, A)
    os.chmod(f, 0o600)
    as_b = as_uid(B)
    out.append(("B reads A's 0600 file", run(as_b + ["cat", f]).returncode))
    sh(["setfacl", "-m", f"u:{B}:r", f])
    out.append(("getfacl after setfacl -m u:B:r", sh(["getfacl", "-cn", f])))
    out.append(("B reads it through the ACL", run(as_b + ["cat", f]).stdout))
    os.chmod(f, 0o600)
    out.append(("chmod 600 sets the ACL mask", sh(["getfacl", "-cn", f])))
    out.append(("B is refused again", run(as_b + ["cat", f]).returncode))
    os.mkdir(d)
    sh(["setfacl", "-d", "-m", f"u:{B}:rwx", d])
    with open(f"{d}/child", "w") as fh:
        fh.write("c")
    os.mkdir(f"{d}/sub")
    out.append(("a new file inherits the default ACL", sh(["getfacl", "-cn", f"{d}/child"])))
    out.append(("a new directory inherits it as default and access ACL", sh(["getfacl", "-cn", f"{d}/sub"])))
    out.append(("B writes in the directory through the inherited ACL",
                run(as_b + ["sh", "-c", f"echo b > {d}/sub/b"]).returncode))
    out.append(("listxattr shows the ACLs", sorted(os.listxattr(f"{d}/sub"))))
    sh(["setfacl", "-b", f])
    out.append(("setfacl -b removes them", sh(["getfacl", "-cn", f])))
    return out


def test_acls(t):
    with t.group("tmpfs parity: POSIX ACLs enforced, inherited, and kept in step with chmod"):
        res = {}
        for root in mount_pair():
            res["tmpfs" if root == TMPFS else "VexFS"] = acl_script(root)
        for (label, tm), (_, vx) in zip(res["tmpfs"], res["VexFS"]):
            t.eq(f"ACL: {label}: as on tmpfs", vx, tm)
        t.eq("B reads through the ACL on VexFS", dict(res["VexFS"]).get("B reads it through the ACL"), "s")
        umount_pair()


# ------------------------------------------------ differential fsstress

class Stress:
    """Random operations on one tree; each returns a comparable result."""

    DIRS = ["d0", "d1", "d2"]
    NAMES = ["f0", "f1", "f2", "f3", "x0", "x1"]

    def __init__(self, root, seed):
        self.root = root
        self.rng = random.Random(seed)
        for d in self.DIRS:
            os.mkdir(f"{root}/{d}")
            for f in self.NAMES[:4]:
                with open(f"{root}/{d}/{f}", "wb") as fh:
                    fh.write(f.encode() * 1000)
        for f in self.NAMES[:4]:
            with open(f"{root}/{f}", "wb") as fh:
                fh.write(f.encode() * 3000)

    def path(self):
        """A path that exists more often than not: a name in the root or
        in one of the three directories."""
        r = self.rng
        if r.random() < 0.3:
            return r.choice(self.NAMES + self.DIRS)
        return f"{r.choice(self.DIRS)}/{r.choice(self.NAMES)}"

    def full(self, p):
        return f"{self.root}/{p}"

    def op(self):
        r = self.rng
        kind = r.choice(["creat", "write", "pwrite_direct", "read", "truncate", "fallocate", "punch",
                         "mkdir", "rmdir", "unlink", "rename", "rename_x", "rename_nr", "link", "symlink",
                         "setxattr", "chmod", "stat"])
        p, q = self.path(), self.path()
        size = r.choice([0, 1, 100, PAGE - 1, PAGE, 3 * PAGE + 7, 65536])
        off = r.choice([0, 1, PAGE, 5 * PAGE, 100000])
        try:
            return kind, p, getattr(self, "do_" + kind)(p, q, size, off)
        except OSError as e:
            return kind, p, errno.errorcode.get(e.errno, e.errno)

    def do_creat(self, p, q, size, off):
        os.close(os.open(self.full(p), os.O_CREAT | os.O_WRONLY, 0o644))

    def do_write(self, p, q, size, off):
        with open(self.full(p), "r+b") as f:
            f.seek(off)
            return f.write(bytes([len(p) % 251]) * size)

    def do_pwrite_direct(self, p, q, size, off):
        fd = os.open(self.full(p), os.O_RDWR | os.O_DIRECT)
        try:
            return os.pwrite(fd, aligned(PAGE, b"Z"), (off // PAGE) * PAGE)
        finally:
            os.close(fd)

    def do_read(self, p, q, size, off):
        with open(self.full(p), "rb") as f:
            f.seek(off)
            return hashlib.md5(f.read(size)).hexdigest()

    def do_truncate(self, p, q, size, off):
        os.truncate(self.full(p), off + size)

    def do_fallocate(self, p, q, size, off):
        fd = os.open(self.full(p), os.O_RDWR)
        try:
            fallocate(fd, self.rng.choice([0, FALLOC_FL_KEEP_SIZE]), off, size or 1)
        finally:
            os.close(fd)

    def do_punch(self, p, q, size, off):
        fd = os.open(self.full(p), os.O_RDWR)
        try:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, size or 1)
        finally:
            os.close(fd)

    def do_mkdir(self, p, q, size, off):
        os.mkdir(self.full(p))

    def do_rmdir(self, p, q, size, off):
        os.rmdir(self.full(p))

    def do_unlink(self, p, q, size, off):
        os.unlink(self.full(p))

    def do_rename(self, p, q, size, off):
        os.rename(self.full(p), self.full(q))

    def do_rename_x(self, p, q, size, off):
        renameat2(self.full(p), self.full(q), RENAME_EXCHANGE)

    def do_rename_nr(self, p, q, size, off):
        renameat2(self.full(p), self.full(q), RENAME_NOREPLACE)

    def do_link(self, p, q, size, off):
        os.link(self.full(p), self.full(q))

    def do_symlink(self, p, q, size, off):
        os.symlink(q, self.full(p))

    def do_setxattr(self, p, q, size, off):
        os.setxattr(self.full(p), f"user.{q[-2:]}", b"v" * (size % 300), follow_symlinks=False)

    def do_chmod(self, p, q, size, off):
        os.chmod(self.full(p), 0o600 + (size % 8) * 8)

    def do_stat(self, p, q, size, off):
        st = os.lstat(self.full(p))
        return (stat.S_IFMT(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode) else None, st.st_nlink,
                st.st_blocks if stat.S_ISREG(st.st_mode) else None)


def tree(root):
    """A comparable description of everything under `root`."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            entry = [rel, stat.filemode(st.st_mode), st.st_nlink, sorted(os.listxattr(p, follow_symlinks=False))]
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    entry += [st.st_size, st.st_blocks, hashlib.md5(f.read()).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(p))
            out.append(entry)
    return out


def test_differential(t, ops=3000):
    with t.group(f"tmpfs parity: {ops} random operations (fsstress-like) on VexFS and tmpfs agree"):
        runs = {}
        for root in mount_pair("size=8m"):
            s = Stress(root, seed=20261201)
            runs[root] = [s.op() for _ in range(ops)]
        tm, vx = runs[TMPFS], runs[VEX]
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(tm, vx)) if a != b]
        kinds = {}
        for k, _, res in vx:
            kinds.setdefault(k, [0, 0])[0 if not isinstance(res, str) or not res.startswith("E") else 1] += 1
        print("#   ops (succeeded, failed): " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(kinds.items())),
              flush=True)
        t.check("every operation's result equals tmpfs'", not diff, str(diff[:3]))
        t.check("O_DIRECT writes and both fallocate modes succeeded many times",
                all(kinds.get(k, [0])[0] >= 20 for k in ("pwrite_direct", "fallocate", "punch")), str(kinds))
        t.eq("the final trees are equal (names, modes, links, xattrs, sizes, blocks, contents)",
             tree(VEX), tree(TMPFS))
        umount_pair()


def test_all(t, mnt):
    """Every parity group; `mnt` is the suite's VexFS mount (the groups
    that compare with tmpfs make fresh mounts of both, unmounted after each
    group even if it failed half way)."""
    for group in (test_direct_io, test_append, test_link_space, test_splice_and_setid, test_fallocate, test_tmpfile,
                  test_xattrs, test_acls, test_differential):
        group(t)
        umount_pair()
    test_rename_overlay(t, mnt)
    test_leases(t, mnt)
