"""In-VM tests of vector collections: vexctl end to end against a numpy
float64 brute force, the ioctl error cases, files carrying vectors,
permissions, the memory limit and a concurrent workload."""

import ctypes
import errno
import fcntl
import json
import multiprocessing
import os
import random
import struct
import time

import numpy as np

from abi import (IOC_ATTACH, IOC_DELETE, IOC_GET, IOC_INSERT, IOC_SEARCH, SEARCH_EXACT, SEARCH_XATTR,
                 create_raw, search_request)
from abi import info as raw_info
from harness import LONG, mount, run, sh, vexctl, vexctl_json

GLOVE = os.path.join(os.environ["VEXFS_CACHE"], "data", "glove_6B_50d.npy")
METRICS = ("l2", "cosine", "dot")
MAX_K, MAX_BATCH = 1024, 1 << 20


class Coll:
    """Raw ioctls on a collection directory (for what vexctl guards against)."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    def close(self):
        os.close(self.fd)

    def info(self):
        return raw_info(self.fd)

    def insert(self, ids, vecs, ids_addr=None, vec_addr=None, count=None, dim=None):
        ids = np.ascontiguousarray(ids, dtype=np.uint64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        req = struct.pack("<IIQQ", len(ids) if count is None else count,
                          vecs.shape[1] if dim is None else dim,
                          ids.ctypes.data if ids_addr is None else ids_addr,
                          vecs.ctypes.data if vec_addr is None else vec_addr)
        fcntl.ioctl(self.fd, IOC_INSERT, req)

    def delete(self, ids):
        ids = np.ascontiguousarray(ids, dtype=np.uint64)
        fcntl.ioctl(self.fd, IOC_DELETE, struct.pack("<IIQ", len(ids), 0, ids.ctypes.data))

    def get(self, vid, dim):
        out = np.zeros(dim, dtype=np.float32)
        req = bytearray(struct.pack("<QIIQ", vid, dim, 0, out.ctypes.data))
        fcntl.ioctl(self.fd, IOC_GET, req)
        return out, struct.unpack_from("<I", req, 12)[0]

    def search(self, queries, k, nq=None, dim=None, q_addr=None, hits_addr=None, flags=0, ef=0, under_fd=0,
               xattr=None, with_flags=False):
        """One SEARCH ioctl; per query (ids, distances) or, with_flags,
        (ids, distances, hit flags). `xattr`: (name, value) bytes of an
        attribute filter (sets SEARCH_XATTR)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        n = q.shape[0] if nq is None else nq
        hits = np.zeros(max(n, 1) * max(k, 1) * 2, dtype=np.uint64)
        counts = np.zeros(max(n, 1), dtype=np.uint32)
        bufs = None
        if xattr is not None:
            bufs = tuple(ctypes.create_string_buffer(b, len(b) + 1) for b in xattr)
            flags |= SEARCH_XATTR
        req = search_request(n, k, q.shape[1] if dim is None else dim, flags, ef,
                             q.ctypes.data if q_addr is None else q_addr,
                             hits.ctypes.data if hits_addr is None else hits_addr, counts.ctypes.data,
                             under_fd=under_fd, xattr=bufs)
        fcntl.ioctl(self.fd, IOC_SEARCH, req)
        raw = hits.view(np.uint8).reshape(-1, 16)
        out = []
        for i in range(n):
            rows = raw[i * k: i * k + counts[i]]
            ids = rows[:, :8].copy().view(np.uint64).ravel()
            dist = rows[:, 8:12].copy().view(np.float32).ravel()
            if with_flags:
                out.append((ids, dist, rows[:, 12:16].copy().view(np.uint32).ravel()))
            else:
                out.append((ids, dist))
        return out


def reference(base, queries, metric):
    """float64 distances of every query to every base row."""
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "l2":
        return ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    dot = q @ b.T
    if metric == "dot":
        return -dot
    nb, nq = np.linalg.norm(b, axis=1), np.linalg.norm(q, axis=1)
    denom = nq[:, None] * nb[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom == 0, 1.0, 1.0 - dot / denom)


def compare(ref_row, ids, k, rel=1e-6, atol=0.0):
    """ids must be the reference's top k, except where distances tie within
    `rel` relative plus `atol` absolute. Returns (ok, detail)."""
    order = np.lexsort((np.arange(len(ref_row)), ref_row))[:k]
    if len(ids) != len(order):
        return False, f"{len(ids)} hits, want {len(order)}"
    for j, (got, want) in enumerate(zip(ids, order)):
        if got == want:
            continue
        a, b = ref_row[int(got)], ref_row[want]
        if abs(a - b) > rel * max(abs(a), abs(b), 1e-30) + atol:
            return False, f"rank {j}: id {got} (d={a:.9g}) instead of {want} (d={b:.9g})"
    return True, ""


def f32_tolerance(base, queries, metric):
    """An absolute bound on the float32 error of a kernel distance: sums of
    `dim` products each rounded (2^-24 relative), in the magnitude of the
    terms, not of the result, which cancellation can make tiny (1 - cos of
    near-parallel vectors, a dot product of mixed signs)."""
    dim = base.shape[1]
    nb = np.linalg.norm(base.astype(np.float64), axis=1).max()
    nq = np.linalg.norm(queries.astype(np.float64), axis=1).max()
    scale = {"l2": (nb + nq) ** 2, "dot": nb * nq, "cosine": 2.0}[metric]
    return 2 * (dim + 4) * 2.0 ** -24 * scale


def save_npy(path, arr):
    np.save(path, np.ascontiguousarray(arr, dtype=np.float32))


def search_json(coll, qfile, k):
    r = vexctl("search", coll, "--npy", qfile, "-k", str(k), "--json")
    if r.returncode != 0:
        raise RuntimeError(f"vexctl search failed: {r.stderr.strip()}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def check_search(t, label, coll, base, queries, metric, k, tmp):
    qfile = f"{tmp}/q.npy"
    save_npy(qfile, queries)
    results = search_json(coll, qfile, k)
    ref = reference(base, queries, metric)
    bad = []
    for qi, res in enumerate(results):
        ids = [h["id"] for h in res["results"]]
        ok, detail = compare(ref[qi], ids, k, atol=f32_tolerance(base, queries, metric))
        if not ok:
            bad.append(f"query {qi}: {detail}")
    t.check(f"{label}: {len(queries)} queries equal the float64 brute force",
            len(results) == len(queries) and not bad, "; ".join(bad[:3]))
    if results and results[0]["results"]:
        h = results[0]["results"][0]
        t.check(f"{label}: reported distance matches the reference",
                abs(h["distance"] - ref[0][h["id"]]) <= 1e-4 * max(1.0, abs(ref[0][h["id"]])),
                f"{h['distance']} vs {ref[0][h['id']]}")


def clustered(rng, n, dim, centers=8):
    c = rng.normal(0, 4, size=(centers, dim))
    return (c[rng.integers(0, centers, n)] + rng.normal(0, 0.3, size=(n, dim))).astype(np.float32)


def check_ids(t, label, ref, results, k, atol):
    """Each query's ids equal the reference's top k (up to near-ties)."""
    bad = []
    for qi, (ids, _) in enumerate(results):
        ok, detail = compare(ref[qi], [int(i) for i in ids], k, atol=atol)
        if not ok:
            bad.append(f"query {qi}: {detail}")
    t.check(f"{label}: {len(results)} queries equal the float64 brute force", not bad, "; ".join(bad[:3]))


def check_batch_invariant(t, label, c, queries):
    """A query's hits are the same, ids and distance bits, whether it is
    searched alone or in a batch: the kernel scans queries in groups of up
    to 32 with blocked kernels (35 queries: a full group and a short one
    ending in a one-query tile), and a pair's distance must not depend on
    its neighbours in the block."""
    def bits(hits):
        ids, dist = hits
        return [int(i) for i in ids], np.asarray(dist, dtype=np.float32).view(np.uint32).tolist()

    batch = [bits(h) for h in c.search(queries, 10)]
    alone = [bits(c.search(queries[i:i + 1], 10)[0]) for i in range(len(queries))]
    diff = [i for i, (b, a) in enumerate(zip(batch, alone)) if b != a]
    t.check(f"{label}: {len(queries)} queries in one call equal each alone (ids and distance bits)",
            len(batch) == len(alone) and not diff, f"differ at queries {diff[:5]}")


def test_exact_search(t, mnt):
    """Every metric on dimensions that hit each SIMD tail (1, 3, 50, 128,
    769) and on random and clustered data; one case per metric goes
    through vexctl end to end, the rest through the ioctls directly."""
    with t.group("exact search against numpy float64"):
        rng = np.random.default_rng(7)
        tmp = "/tmp/vec"
        os.makedirs(tmp, exist_ok=True)
        for metric in METRICS:
            for dim in (1, 3, 50, 128, 769):
                for kind in ("random", "clustered"):
                    n = 1500 if LONG else 300
                    base = (rng.normal(size=(n, dim)).astype(np.float32) if kind == "random"
                            else clustered(rng, n, dim))
                    queries = (rng.normal(size=(8, dim)).astype(np.float32) if kind == "random"
                               else clustered(rng, 8, dim))
                    coll = f"{mnt}/{metric}_{dim}_{kind}"
                    label = f"{metric} D={dim} {kind}"
                    if dim == 50 and kind == "random":
                        r = vexctl("create", coll, "--dim", str(dim), "--metric", metric)
                        if not t.check(f"vexctl create {metric} D={dim}", r.returncode == 0, r.stderr):
                            continue
                        save_npy(f"{tmp}/base.npy", base)
                        r = vexctl("insert", coll, "--npy", f"{tmp}/base.npy")
                        t.check(f"vexctl insert {n} x {dim} ({metric}, {kind})", r.returncode == 0, r.stderr)
                        check_search(t, label, coll, base, queries, metric, 10, tmp)
                    else:
                        os.mkdir(coll)
                        create_raw(coll, dim, metric)
                        c = Coll(coll)
                        c.insert(np.arange(n), base)
                        check_ids(t, label, reference(base, queries, metric), c.search(queries, 10), 10,
                                  f32_tolerance(base, queries, metric))
                        if kind == "random":
                            check_batch_invariant(t, label, c, rng.normal(size=(35, dim)).astype(np.float32))
                        c.close()
                    sh(["rm", "-rf", coll])


def test_glove(t, mnt):
    n = 20000 if LONG else 5000
    with t.group(f"GloVe {n} x 50, cosine, 100 queries"):
        glove = np.load(GLOVE, mmap_mode="r")
        base = np.ascontiguousarray(glove[:n])
        queries = np.ascontiguousarray(glove[20000:20100])
        coll = f"{mnt}/glove"
        tmp = "/tmp/vec"
        os.makedirs(tmp, exist_ok=True)
        save_npy(f"{tmp}/glove.npy", base)
        r = vexctl("create", coll, "--dim", "50", "--metric", "cosine")
        t.check("vexctl create --dim 50 --metric cosine", r.returncode == 0, r.stderr)
        r = vexctl("insert", coll, "--npy", f"{tmp}/glove.npy")
        t.check(f"vexctl insert --npy {n} GloVe vectors", r.returncode == 0, r.stderr)
        info = vexctl_json("info", coll)
        t.eq(f"vexctl info counts {n}", info["count"], n)
        t.check("vexctl info reports memory used", info["memory_bytes"] >= n * 50 * 4, str(info))
        # Standard error is a pipe here: the same rows again (an upsert) in
        # batches of 1,000 draw no progress bar, and --progress logs a line
        # per batch.
        r = vexctl("insert", coll, "--npy", f"{tmp}/glove.npy", "--batch", "1000")
        t.check("vexctl insert in batches prints no progress on a pipe",
                r.returncode == 0 and r.stderr == "", r.stderr[-300:])
        r = vexctl("insert", coll, "--npy", f"{tmp}/glove.npy", "--batch", "1000", "--progress")
        lines = r.stderr.splitlines()
        t.check("vexctl insert --progress logs a line per batch on a pipe",
                r.returncode == 0 and len(lines) == -(-n // 1000)
                and lines[-1] == f"inserted {n} of {n} vectors (100%)", r.stderr[-300:])
        check_search(t, "GloVe cosine k=10", coll, base, queries, "cosine", 10, tmp)
        got = vexctl_json("get", coll, "123")
        t.check("vexctl get returns the stored vector",
                np.array_equal(np.array(got["vector"], dtype=np.float32), base[123]))
        # 100 queries in one call: groups of 32, each scan shared with a
        # helper CPU (the guest has 2); one query alone is too small to
        # share. The answers must be the same bits.
        c = Coll(coll)
        check_batch_invariant(t, "GloVe exact, scans shared by 2 CPUs", c, queries)
        check_killed_search(t, "GloVe exact", coll, c, queries)
        c.close()
        sh(["rm", "-rf", coll])


def _search_forever(coll, queries, ready):
    c = Coll(coll)
    ready.set()
    while True:
        c.search(queries, 10, flags=SEARCH_EXACT)


def check_killed_search(t, label, coll, c, queries):
    """SIGKILL to a task in the middle of long exact searches (whose scans
    helper CPUs share) ends it; the collection answers as before. The kill
    lands anywhere in the loop: the check is that the task ends and nothing
    is left behind (kmemleak and the kernel log are checked at the end)."""
    before = c.search(queries[:5], 10)
    many = np.ascontiguousarray(np.tile(queries, (20, 1)))
    ready = multiprocessing.Event()
    p = multiprocessing.Process(target=_search_forever, args=(coll, many, ready))
    p.start()
    started = ready.wait(120)
    time.sleep(0.5)
    os.kill(p.pid, 9)
    p.join(120)
    t.check(f"{label}: SIGKILL ends a task in long shared searches",
            started and not p.is_alive() and p.exitcode == -9, f"started {started}, exit {p.exitcode}")
    after = c.search(queries[:5], 10)
    t.check(f"{label}: the collection answers as before after the kill",
            all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(before, after)))


def test_errors(t, mnt):
    with t.group("vector ioctl errors"):
        coll = f"{mnt}/errs"
        sh(["vexctl", "create", coll, "--dim", "4", "--metric", "l2"])
        c = Coll(coll)
        base = np.arange(40, dtype=np.float32).reshape(10, 4)
        c.insert(np.arange(10), base)
        t.eq("ten vectors stored", c.info()["count"], 10)
        t.raises("dim mismatch on insert: EINVAL", errno.EINVAL, c.insert, [11], np.ones((1, 5)))
        t.raises("dim mismatch on search: EINVAL", errno.EINVAL, c.search, np.ones((1, 5)), 3)
        t.raises("k = 0: EINVAL", errno.EINVAL, c.search, np.ones((1, 4)), 0)
        t.raises("k = 1025: EINVAL", errno.EINVAL, c.search, np.ones((1, 4)), MAX_K + 1)
        t.check("k = 1024 is accepted", len(c.search(np.ones((1, 4)), MAX_K)[0][0]) == 10)
        t.raises("nq = 0: EINVAL", errno.EINVAL, c.search, np.ones((1, 4)), 3, nq=0)
        t.raises("a batch over the limit: EINVAL", errno.EINVAL, c.insert, [1], np.ones((1, 4)),
                 count=MAX_BATCH + 1)
        bad = np.ones((3, 4), dtype=np.float32)
        bad[1, 2] = np.nan
        t.raises("NaN in a batch: EINVAL", errno.EINVAL, c.insert, [20, 21, 22], bad)
        bad[1, 2] = np.inf
        t.raises("infinity in a batch: EINVAL", errno.EINVAL, c.insert, [20, 21, 22], bad)
        t.eq("a refused batch changes nothing", c.info()["count"], 10)
        t.raises("NaN in a query: EINVAL", errno.EINVAL, c.search, np.array([[np.nan, 0, 0, 0]]), 3)
        t.raises("bad vector pointer: EFAULT", errno.EFAULT, c.insert, [30, 31], np.ones((2, 4)), vec_addr=16)
        t.raises("bad id pointer: EFAULT", errno.EFAULT, c.insert, [30, 31], np.ones((2, 4)), ids_addr=16)
        t.raises("bad query pointer: EFAULT", errno.EFAULT, c.search, np.ones((1, 4)), 3, q_addr=16)
        t.raises("bad result pointer: EFAULT", errno.EFAULT, c.search, np.ones((1, 4)), 3, hits_addr=16)
        empty = f"{mnt}/empty"
        sh(["vexctl", "create", empty, "--dim", "4", "--metric", "l2"])
        e = Coll(empty)
        t.raises("result pointer at the end of the address space: EFAULT, no overflow", errno.EFAULT,
                 e.search, np.ones((2, 4)), 1, hits_addr=0xFFFF_FFFF_FFFF_FFF0)
        e.close()
        os.rmdir(empty)
        v = np.ones((2, 4), dtype=np.float32)
        t.raises("unaligned vector pointer: EINVAL", errno.EINVAL, c.insert, [30, 31], v,
                 vec_addr=v.ctypes.data + 1)
        ids = np.array([30, 31, 0], dtype=np.uint64)
        t.raises("unaligned id pointer: EINVAL", errno.EINVAL, c.insert, [30, 31], v, ids_addr=ids.ctypes.data + 4)
        t.eq("failed batches change nothing", c.info()["count"], 10)
        t.raises("delete of a missing id: ENOENT", errno.ENOENT, c.delete, [3, 999])
        t.eq("a refused delete changes nothing", c.info()["count"], 10)
        t.raises("get of a missing id: ENOENT", errno.ENOENT, c.get, 999, 4)
        c.insert([3], np.full((1, 4), 7.0))
        got, _ = c.get(3, 4)
        t.check("insert of an existing id replaces it (upsert)",
                np.array_equal(got, np.full(4, 7.0, dtype=np.float32)) and c.info()["count"] == 10)
        c.insert([40, 40], np.array([[1, 1, 1, 1], [2, 2, 2, 2]]))
        t.check("a repeated id in one batch keeps the last row",
                np.array_equal(c.get(40, 4)[0], np.full(4, 2.0, dtype=np.float32)) and c.info()["count"] == 11)
        c.delete([40])
        c.close()

        os.mkdir(f"{mnt}/plain")
        p = Coll(f"{mnt}/plain")
        t.raises("ioctl on a non-collection directory: ENODATA", errno.ENODATA, p.info)
        p.close()
        r = vexctl("info", f"{mnt}/plain")
        t.check("vexctl names a non-collection plainly",
                r.returncode != 0 and "not a vector collection" in r.stderr, r.stderr.strip())
        os.rmdir(f"{mnt}/plain")
        r = vexctl("create", coll, "--dim", "4", "--metric", "l2")
        t.check("create on an existing collection fails clearly", r.returncode != 0 and "already" in r.stderr,
                r.stderr.strip())
        os.mkdir(f"{mnt}/full")
        open(f"{mnt}/full/x", "w").close()
        r = vexctl("create", f"{mnt}/full", "--dim", "4", "--metric", "l2")
        t.check("create on a non-empty directory fails clearly", r.returncode != 0 and "not empty" in r.stderr,
                r.stderr.strip())
        sh(["rm", "-rf", f"{mnt}/full"])
        r = vexctl("create", f"{mnt}/baddim", "--dim", "4097", "--metric", "l2")
        t.check("dimension 4097 is refused", r.returncode != 0)
        r = vexctl("search", coll, "--vector", "1,2,3", "-k", "3")
        t.check("vexctl reports a dimension mismatch", r.returncode != 0 and "dim" in r.stderr, r.stderr.strip())

        # Permissions: search needs read, insert/delete need write.
        os.chmod(coll, 0o755)
        r = vexctl("search", coll, "--vector", "1,2,3,4", "-k", "3", user=1000)
        t.check("another user may search a 0755 collection", r.returncode == 0, r.stderr.strip())
        np.save("/tmp/vec/one.npy", np.ones((1, 4), dtype=np.float32))
        os.chmod("/tmp/vec/one.npy", 0o644)
        r = vexctl("insert", coll, "--npy", "/tmp/vec/one.npy", "--start-id", "500", user=1000)
        t.check("another user may not insert into a 0755 collection",
                r.returncode != 0 and "permission denied" in r.stderr, r.stderr.strip())
        r = vexctl("delete", coll, "1", user=1000)
        t.check("another user may not delete from a 0755 collection",
                r.returncode != 0 and "permission denied" in r.stderr, r.stderr.strip())
        os.chmod(coll, 0o711)
        pid = os.fork()
        if pid == 0:
            # Child: drop to uid 1000 and use an fd opened while root could read:
            # the kernel still checks the collection's mode on search.
            try:
                c2 = Coll(coll)
                os.setgid(1000)
                os.setuid(1000)
                try:
                    c2.search(np.ones((1, 4)), 3)
                    os._exit(0)
                except OSError as e:
                    os._exit(3 if e.errno == errno.EACCES else 4)
            except BaseException:
                os._exit(5)
        _, status = os.waitpid(pid, 0)
        t.eq("search without read permission (fd opened before): EACCES", os.waitstatus_to_exitcode(status), 3)
        os.chmod(coll, 0o755)

        # A read-only bind mount refuses changes, even to root.
        ro = "/mnt/vexro"
        os.makedirs(ro, exist_ok=True)
        sh(["mount", "--bind", mnt, ro])
        sh(["mount", "-o", "remount,bind,ro", ro])
        r = Coll(f"{ro}/errs")
        t.raises("insert through a read-only bind mount: EROFS", errno.EROFS, r.insert, [50], np.ones((1, 4)))
        t.raises("delete through a read-only bind mount: EROFS", errno.EROFS, r.delete, [1])
        t.check("search through a read-only bind mount works", len(r.search(np.ones((1, 4)), 3)[0][0]) == 3)
        r.close()
        sh(["umount", ro])
        sh(["rm", "-rf", coll])


def test_files(t, mnt):
    with t.group("files carry vectors"):
        coll = f"{mnt}/docs"
        sh(["vexctl", "create", coll, "--dim", "3", "--metric", "l2"])
        os.mkdir(f"{coll}/sub")
        for name, vec in (("a.txt", "1,0,0"), ("b.txt", "0,1,0"), ("sub/c.txt", "0,0,1")):
            with open(f"{coll}/{name}", "w") as f:
                f.write(name)
        for name, vec in (("a.txt", "1,0,0"), ("b.txt", "0,1,0")):
            r = vexctl("attach", f"{coll}/{name}", "--vector", vec)
            t.check(f"vexctl attach {name}", r.returncode == 0, r.stderr.strip())
        with open(f"{mnt}/outside.txt", "w") as f:
            f.write("o")
        r = vexctl("attach", f"{mnt}/outside.txt", "--vector", "0,0,1")
        t.check("attach outside any collection's tree is refused",
                r.returncode != 0 and "not in a vector collection" in r.stderr, r.stderr.strip())
        os.unlink(f"{mnt}/outside.txt")
        c = Coll(coll)
        c.insert([7], np.array([[0.9, 0.1, 0]]))
        c.close()
        res = json.loads(vexctl("search", coll, "--vector", "1,0,0", "-k", "3", "--json").stdout.splitlines()[0])
        names = [h["name"] for h in res["results"]]
        t.eq("search names the files (and null for plain vectors)", names, ["a.txt", None, "b.txt"])
        ino = os.stat(f"{coll}/a.txt").st_ino
        t.eq("a file's vector id is its inode number", res["results"][0]["id"], ino)
        os.rename(f"{coll}/a.txt", f"{coll}/renamed.txt")
        res = json.loads(vexctl("search", coll, "--vector", "1,0,0", "-k", "1", "--json").stdout.splitlines()[0])
        t.eq("rename within the collection keeps the vector", res["results"][0]["name"], "renamed.txt")
        before = vexctl_json("info", coll)["count"]
        os.unlink(f"{coll}/renamed.txt")
        after = vexctl_json("info", coll)
        t.check("unlink deletes the file's vector", after["count"] == before - 1 and after["file_vectors"] == 1,
                str(after))
        with open(f"{coll}/b2.txt", "w") as f:
            f.write("x")
        sh(["vexctl", "attach", f"{coll}/b2.txt", "--vector", "5,5,5"])
        os.rename(f"{coll}/b2.txt", f"{coll}/b.txt")
        after = vexctl_json("info", coll)
        t.eq("a rename over a file with a vector deletes the replaced vector", after["file_vectors"], 1)
        # A vector belongs to the file, not to a name: hard links are fine,
        # and the vector stays while one name in the collection remains.
        os.link(f"{coll}/b.txt", f"{mnt}/b-link")
        t.eq("a file with a vector may get a second name outside the collection",
             os.stat(f"{mnt}/b-link").st_nlink, 2)
        os.unlink(f"{mnt}/b-link")
        t.eq("unlinking that outside name keeps the vector", vexctl_json("info", coll)["file_vectors"], 1)
        with open(f"{coll}/two.txt", "w") as f:
            f.write("2")
        os.link(f"{coll}/two.txt", f"{coll}/two-again.txt")
        r = vexctl("attach", f"{coll}/two.txt", "--vector", "1,1,1")
        t.check("a file with two names in the collection can carry a vector", r.returncode == 0, r.stderr.strip())
        os.unlink(f"{coll}/two.txt")
        t.eq("unlinking one of its two names keeps the vector", vexctl_json("info", coll)["file_vectors"], 2)
        res = json.loads(vexctl("search", coll, "--vector", "1,1,1", "-k", "1", "--json").stdout.splitlines()[0])
        t.eq("search names the remaining name", res["results"][0]["name"], "two-again.txt")
        os.mkdir(f"{mnt}/other")
        os.link(f"{coll}/two-again.txt", f"{coll}/two-third.txt")
        os.rename(f"{coll}/two-again.txt", f"{mnt}/other/moved.txt")
        t.eq("moving one name out while another stays keeps the vector",
             vexctl_json("info", coll)["file_vectors"], 2)
        os.unlink(f"{coll}/two-third.txt")
        t.eq("unlinking the last name in the collection deletes it", vexctl_json("info", coll)["file_vectors"], 1)
        sh(["rm", "-rf", f"{mnt}/other"])
        with open(f"{coll}/gone.txt", "w") as f:
            f.write("g")
        fd = os.open(f"{coll}/gone.txt", os.O_RDONLY)
        os.unlink(f"{coll}/gone.txt")
        vec = np.ones(3, dtype=np.float32)
        t.raises("attach after unlink: ENOENT", errno.ENOENT, fcntl.ioctl, fd, IOC_ATTACH,
                 struct.pack("<IIQ", 3, 0, vec.ctypes.data))
        os.close(fd)
        before = vexctl_json("info", coll)["file_vectors"]
        os.mkdir(f"{mnt}/elsewhere")
        os.rename(f"{coll}/b.txt", f"{mnt}/elsewhere/b.txt")
        t.eq("moving a file out of its collection deletes its vector",
             vexctl_json("info", coll)["file_vectors"], before - 1)
        sh(["rm", "-rf", f"{mnt}/elsewhere"])
        r = vexctl("delete", coll, "7")
        t.check("vexctl delete", r.returncode == 0 and vexctl_json("info", coll)["count"] == 0, r.stderr)
        sh(["rm", "-rf", coll])
        t.check("rm -rf removes a collection", not os.path.exists(coll))


def test_memory_limit(t, ko):
    with t.group("memory limit (max_vector_mib=1)"):
        sh(["insmod", ko, "max_vector_mib=1"])
        mnt = "/mnt/vexlim"
        mount(mnt)
        sh(["vexctl", "create", f"{mnt}/c", "--dim", "128", "--metric", "l2"])
        c = Coll(f"{mnt}/c")
        c.insert(np.arange(1000), np.ones((1000, 128)))
        t.raises("a batch that fits in flight but not in the store: ENOSPC", errno.ENOSPC, c.insert,
                 np.arange(1000, 2000), np.ones((1000, 128)))
        t.raises("a batch larger than the limit itself: E2BIG", errno.E2BIG, c.insert, np.arange(1000, 4000),
                 np.ones((3000, 128)))
        t.eq("the refused batches changed nothing", c.info()["count"], 1000)
        stats = vexctl_json("stats", mnt)
        t.check("stats show vector bytes under the limit",
                0 < stats.get("vector_bytes", 0) <= stats.get("vector_bytes_limit", 0) == 1 << 20, str(stats)[:300])
        c.delete(np.arange(1000))
        t.eq("deleting frees the memory", vexctl_json("info", f"{mnt}/c")["memory_bytes"], 0)
        c.close()
        sh(["umount", mnt])
        t.eq("rmmod after the limit test", run(["rmmod", "vexfs"]).returncode, 0)


MIN_WORKER_OPS = 50


def _worker(coll, wid, seconds, dim, seed, out):
    rng = random.Random(seed)
    c = Coll(coll)
    model = {}
    base = wid * 1_000_000
    end = time.monotonic() + seconds
    ops = errors = 0
    # At least MIN_WORKER_OPS each, however slow the machine is.
    while time.monotonic() < end or ops + errors < MIN_WORKER_OPS:
        op = rng.random()
        try:
            if op < 0.45:
                ids = [base + rng.randrange(2000) for _ in range(rng.randint(1, 20))]
                vecs = np.array([[rng.uniform(-1, 1) for _ in range(dim)] for _ in ids], dtype=np.float32)
                c.insert(ids, vecs)
                for i, v in zip(ids, vecs):
                    model[i] = v
            elif op < 0.7 and model:
                ids = rng.sample(sorted(model), min(len(model), rng.randint(1, 10)))
                c.delete(ids)
                for i in ids:
                    del model[i]
            else:
                q = np.array([[rng.uniform(-1, 1) for _ in range(dim)]], dtype=np.float32)
                ids, dist = c.search(q, 10)[0]
                if list(dist) != sorted(dist):
                    errors += 1
            ops += 1
        except OSError:
            errors += 1
    c.close()
    out.put((wid, ops, errors, {k: v.tolist() for k, v in model.items()}))


def test_concurrency(t, mnt, seconds=30 if LONG else 4):
    with t.group(f"concurrency: 4 workers insert, delete and search for {seconds} s"):
        coll = f"{mnt}/conc"
        dim = 16
        sh(["vexctl", "create", coll, "--dim", str(dim), "--metric", "l2"])
        q = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_worker, args=(coll, w, seconds, dim, 100 + w, q))
                 for w in range(4)]
        for p in procs:
            p.start()
        results = [q.get() for _ in procs]
        for p in procs:
            p.join()
        total_ops = sum(r[1] for r in results)
        print(f"#   {total_ops} operations by 4 workers", flush=True)
        t.check(f"every worker ran its operations (at least {MIN_WORKER_OPS}) without errors",
                all(r[2] == 0 for r in results),
                f"ops={[r[1] for r in results]} errors={[r[2] for r in results]}")
        model = {}
        for r in results:
            model.update({int(k): v for k, v in r[3].items()})
        c = Coll(coll)
        t.eq("final count equals the model's", c.info()["count"], len(model))
        mismatched = [k for k, v in model.items() if not np.array_equal(c.get(k, dim)[0], np.float32(v))]
        t.check("every stored vector equals the model's", not mismatched, f"{len(mismatched)} differ")
        ids = np.array(sorted(model), dtype=np.uint64)
        base = np.array([model[int(i)] for i in ids], dtype=np.float32)
        queries = np.random.default_rng(5).uniform(-1, 1, size=(10, dim)).astype(np.float32)
        ref = reference(base, queries, "l2")
        bad = 0
        for qi, (got, _) in enumerate(c.search(queries, 10)):
            pos = {int(i): n for n, i in enumerate(ids)}
            ok, _ = compare(ref[qi], [pos[int(g)] for g in got], 10)
            bad += not ok
        t.eq("search after the workload equals the reference", bad, 0)
        c.close()
        sh(["rm", "-rf", coll])
