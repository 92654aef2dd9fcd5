"""In-VM tests of files with several vectors (one per part, e.g. per chunk
of a text) and of filtered searches (SEARCH_UNDER, SEARCH_XATTR): a file
is found once, by its nearest part; a filter applies during the scan or
the graph walk, so a search returns k hits whenever k matching files
exist, all of them matching, with the recall of a filtered exact search."""

import errno
import fcntl
import json
import os
import struct
import time

import numpy as np

from abi import FILE_PART_SHIFT, HIT_FILE, IOC_ATTACH, SEARCH_EXACT, SEARCH_UNDER
from harness import sh, vexctl, vexctl_json
from vectors import Coll

MASK = (1 << FILE_PART_SHIFT) - 1


def attach(path, vecs):
    """ATTACH of `vecs` (parts x dim) to the file `path`."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, IOC_ATTACH, struct.pack("<IIQ", vecs.shape[1], vecs.shape[0], vecs.ctypes.data))
    finally:
        os.close(fd)


def distances(metric, q, rows):
    if metric == "l2":
        return ((rows - q) ** 2).sum(axis=1)
    if metric == "dot":
        return -(rows @ q)
    return 1 - (rows @ q) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(q))


def test_parts(t, mnt):
    with t.group("files with several vectors: found once, by the nearest part"):
        rng = np.random.default_rng(7)
        for index in ("flat", "hnsw"):
            coll = f"{mnt}/parts-{index}"
            sh(["vexctl", "create", coll, "--dim", "8", "--metric", "l2", "--index", index])
            parts = {}
            for i in range(40):
                path = f"{coll}/f{i:02d}.txt"
                with open(path, "w") as f:
                    f.write(str(i))
                v = rng.standard_normal((1 + i % 5, 8)).astype(np.float32)
                attach(path, v)
                parts[os.stat(path).st_ino] = v
            info = vexctl_json("info", coll)
            t.eq(f"{index}: every part is stored", (info["count"], info["file_vectors"]),
                 (sum(len(v) for v in parts.values()),) * 2)
            c = Coll(coll)
            queries = rng.standard_normal((20, 8)).astype(np.float32)
            ok_ids = ok_dist = True
            for q in queries:
                best = {ino: distances("l2", q, v) for ino, v in parts.items()}
                want = sorted(best, key=lambda ino: (best[ino].min(), ino))[:10]
                (ids, dist, flags), = c.search(q[None, :], 10, flags=SEARCH_EXACT, with_flags=True)
                inos = [int(i) & MASK for i in ids]
                ok_ids &= inos == want and all(f & HIT_FILE for f in flags)
                ok_dist &= all(int(i) >> FILE_PART_SHIFT == int(best[int(i) & MASK].argmin()) for i in ids)
            t.check(f"{index}: exact search returns 10 distinct files, by their nearest part", ok_ids)
            t.check(f"{index}: each hit's id names its nearest part", ok_dist)
            res = json.loads(vexctl("search", coll, "--vector", ",".join(map(str, queries[0])), "-k", "5",
                                    "--exact", "--json").stdout)
            first = res["results"][0]
            t.check(f"{index}: vexctl prints the file's inode, name and part",
                    first["id"] in parts and first["name"].startswith("f") and "part" in first, str(first))
            # Replacing with fewer parts drops the rest.
            path = f"{coll}/f04.txt"
            ino = os.stat(path).st_ino
            attach(path, np.ones((2, 8)))
            t.eq(f"{index}: attach with fewer parts drops the others",
                 vexctl_json("info", coll)["count"], info["count"] - 3)
            t.raises(f"{index}: GET of a dropped part: ENOENT", errno.ENOENT, c.get, ino | (2 << FILE_PART_SHIFT), 8)
            got, flags = c.get(ino | (1 << FILE_PART_SHIFT), 8)
            t.check(f"{index}: GET of a part", list(got) == [1.0] * 8 and flags == HIT_FILE)
            t.raises(f"{index}: DELETE of a later part alone: EINVAL", errno.EINVAL, c.delete,
                     [ino | (1 << FILE_PART_SHIFT)])
            c.delete([ino])
            t.eq(f"{index}: DELETE of the file's id deletes all its parts",
                 vexctl_json("info", coll)["count"], info["count"] - 5)
            path = f"{coll}/f09.txt"
            os.unlink(path)
            t.eq(f"{index}: unlink deletes all the file's parts",
                 vexctl_json("info", coll)["count"], info["count"] - 5 - 5)
            too_many = np.zeros((1025, 8), dtype=np.float32)
            t.raises(f"{index}: 1025 parts: EINVAL", errno.EINVAL, attach, f"{coll}/f10.txt", too_many)
            c.close()
            r = vexctl("attach", f"{coll}/f11.txt", "--vector", "1,2,3,4,5,6,7,8")
            t.check(f"{index}: vexctl attach of one vector replaces the parts", r.returncode == 0
                    and vexctl_json("info", coll)["count"] == info["count"] - 10 - 1, r.stderr)
            sh(["rm", "-rf", coll])


def test_filters(t, mnt):
    with t.group("filtered search: k hits that match, recall of a filtered exact search"):
        rng = np.random.default_rng(11)
        coll = f"{mnt}/filtered"
        n, dim, k = 1500, 16, 10
        sh(["vexctl", "create", coll, "--dim", str(dim), "--metric", "cosine", "--index", "hnsw", "--m", "16",
            "--ef-construction", "64"])
        centers = rng.standard_normal((30, dim))
        data = (centers[rng.integers(0, 30, n)] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)
        inos = np.zeros(n, dtype=np.uint64)
        # Selectivity 1 %, 10 %, 50 %: tags on every 100th, 10th and 2nd file.
        for i in range(n):
            path = f"{coll}/d{i:05d}"
            with open(path, "w") as f:
                f.write("x")
            os.setxattr(path, "user.p1", b"yes" if i % 100 == 0 else b"no")
            os.setxattr(path, "user.p10", b"yes" if i % 10 == 0 else b"no")
            os.setxattr(path, "user.p50", b"yes" if i % 2 == 0 else b"no")
            attach(path, data[i:i + 1])
            inos[i] = os.stat(path).st_ino
        c = Coll(coll)
        # Let the worker link every row, so that the graph walk (not the
        # exact scan of unlinked rows) answers.
        for _ in range(600):
            if c.info()["unindexed"] == 0:
                break
            time.sleep(0.1)
        t.eq("every row linked before the filtered searches", c.info()["unindexed"], 0)
        queries = (centers[rng.integers(0, 30, 30)] + 0.3 * rng.standard_normal((30, dim))).astype(np.float32)
        for name, every in (("p1", 100), ("p10", 10), ("p50", 2)):
            match = np.arange(n) % every == 0
            counts_ok = all_match = True
            recall_hits = 0
            for q in queries:
                (ids, _), = c.search(q[None, :], k, xattr=(f"user.{name}".encode(), b"yes"))
                (exact, _), = c.search(q[None, :], k, flags=SEARCH_EXACT, xattr=(f"user.{name}".encode(), b"yes"))
                counts_ok &= len(ids) == k and len(exact) == k
                all_match &= all(match[np.searchsorted(inos, i)] for i in ids)
                recall_hits += len(set(int(i) for i in ids) & set(int(i) for i in exact))
            sel = f"{100 // every} %"
            t.check(f"selectivity {sel}: every query gets k = {k} hits", counts_ok)
            t.check(f"selectivity {sel}: every hit holds user.{name}=yes", all_match)
            recall = recall_hits / (k * len(queries))
            print(f"#   selectivity {sel}: recall@{k} against a filtered exact search {recall:.3f} (default ef)")
            t.check(f"selectivity {sel}: recall@{k} against a filtered exact search >= 0.95", recall >= 0.95,
                    f"{recall:.3f}")
        (ids, _), = c.search(queries[:1], k, xattr=(b"user.p1", b"nothing-has-this"))
        t.eq("a filter nothing matches: no hits", len(ids), 0)
        c.insert([1 << 40], data[:1])
        (ids, _), = c.search(data[:1], 5, xattr=(b"user.p50", b"yes"))
        t.check("a filtered search leaves plain vectors out", (1 << 40) not in [int(i) for i in ids])
        (ids, _), = c.search(data[:1], 5)
        t.check("an unfiltered one finds them", (1 << 40) in [int(i) for i in ids])
        c.delete([1 << 40])
        # Unreadable files stay out, filter or not.
        os.chmod(f"{coll}/d00000", 0o600)
        r = vexctl("search", coll, "--vector", ",".join(map(str, data[0])), "-k", "3", "--xattr", "user.p1=yes",
                   "--json", user=1000)
        ids = [h["id"] for h in json.loads(r.stdout)["results"]] if r.returncode == 0 else None
        t.check("a file the caller may not read is not found, filter or not",
                ids is not None and int(inos[0]) not in ids and len(ids) == 3, r.stderr + str(ids))
        os.chmod(f"{coll}/d00000", 0o644)
        r = vexctl("search", coll, "--vector", ",".join(map(str, data[0])), "-k", "3", "--xattr", "user.p1=yes",
                   "--json")
        ids = [h["id"] for h in json.loads(r.stdout)["results"]]
        t.eq("vexctl search --xattr finds the file itself first", ids[0], int(inos[0]))
        r = vexctl("search", coll, "--vector", ",".join(map(str, data[0])), "-k", "3", "--under", coll, "--json")
        t.check("vexctl search --under the collection itself", r.returncode == 0
                and json.loads(r.stdout)["results"][0]["id"] == int(inos[0]), r.stderr)
        # Malformed filters.
        q = data[:1]
        t.raises("xattr filter outside user.*: EINVAL", errno.EINVAL, c.search, q, 3, xattr=(b"trusted.p1", b"yes"))
        t.raises("xattr name 'user.': EINVAL", errno.EINVAL, c.search, q, 3, xattr=(b"user.", b"yes"))
        t.raises("xattr value over 1024 bytes: EINVAL", errno.EINVAL, c.search, q, 3,
                 xattr=(b"user.p1", b"y" * 1025))
        t.raises("SEARCH_UNDER with a closed descriptor: EBADF", errno.EBADF, c.search, q, 3,
                 flags=SEARCH_UNDER, under_fd=999)
        outside = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        t.raises("SEARCH_UNDER with a directory of another filesystem: EXDEV", errno.EXDEV, c.search, q, 3,
                 flags=SEARCH_UNDER, under_fd=outside)
        os.close(outside)
        os.mkdir(f"{mnt}/not-in-it")
        other = os.open(f"{mnt}/not-in-it", os.O_RDONLY | os.O_DIRECTORY)
        t.raises("SEARCH_UNDER with a directory outside the collection: EINVAL", errno.EINVAL, c.search, q, 3,
                 flags=SEARCH_UNDER, under_fd=other)
        os.close(other)
        os.rmdir(f"{mnt}/not-in-it")
        f = os.open(f"{coll}/d00001", os.O_RDONLY)
        t.raises("SEARCH_UNDER with a regular file: ENOTDIR", errno.ENOTDIR, c.search, q, 3,
                 flags=SEARCH_UNDER, under_fd=f)
        os.close(f)
        r = vexctl("search", coll, "--vector", "1", "-k", "3", "--xattr", "trusted.x=1")
        t.check("vexctl refuses an xattr filter outside user.*", r.returncode != 0
                and "user.* attributes only" in r.stderr, r.stderr)
        r = vexctl("search", coll, "--vector", ",".join(["0"] * dim), "-k", "3", "--under", "/tmp")
        t.check("vexctl names a --under directory off the mount", r.returncode != 0
                and "not a VexFS filesystem" in r.stderr, r.stderr)
        c.close()
        sh(["rm", "-rf", coll])


def search_names(coll, vec, k, *extra, user=None):
    """`vexctl search --json` of one vector: the names found (None on
    failure, with the error)."""
    r = vexctl("search", coll, "--vector", ",".join(map(str, vec)), "-k", str(k), "--json", *extra, user=user)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return [h["name"] for h in json.loads(r.stdout)["results"]], ""


def test_tree(t, mnt):
    with t.group("files anywhere in a collection's tree carry vectors"):
        coll = f"{mnt}/tree"
        sh(["vexctl", "create", coll, "--dim", "2", "--metric", "l2"])
        for d in ("a", "a/deep", "b", "private"):
            os.mkdir(f"{coll}/{d}")
        files = {"top.txt": (0, 0), "a/one.txt": (1, 0), "a/deep/two.txt": (2, 0), "b/three.txt": (3, 0),
                 "private/four.txt": (4, 0)}
        for name, vec in files.items():
            with open(f"{coll}/{name}", "w") as f:
                f.write(name)
            r = vexctl("attach", f"{coll}/{name}", "--vector", f"{vec[0]},{vec[1]}")
            t.check(f"attach {name}", r.returncode == 0, r.stderr.strip())
        r = vexctl("attach", f"{coll}/a/deep/two.txt", "--vector", "1,2,3")
        t.check("vexctl attach deep in the tree: a wrong dimension names the collection",
                r.returncode != 0 and f"dimension mismatch: {coll} has dim 2" in r.stderr, r.stderr.strip())
        names, err = search_names(coll, (2, 0), 5)
        t.eq("search names files by their path in the tree", names,
             ["a/deep/two.txt", "a/one.txt", "b/three.txt", "top.txt", "private/four.txt"])
        names, err = search_names(coll, (4, 0), 5, "--under", f"{coll}/a")
        t.eq("--under a subdirectory: only the files in its tree", names, ["a/deep/two.txt", "a/one.txt"])
        names, err = search_names(coll, (0, 0), 1, "--under", f"{coll}/a/deep")
        t.eq("--under a deeper one", names, ["a/deep/two.txt"])
        # Reaching a file needs search permission on every directory down
        # to it, as a path lookup does.
        os.chmod(f"{coll}/private", 0o700)
        names, err = search_names(coll, (4, 0), 5, user=1000)
        t.check("a file under a directory the caller may not search is not found",
                names is not None and "private/four.txt" not in names and len(names) == 4, err + str(names))
        os.chmod(f"{coll}/private", 0o755)
        names, err = search_names(coll, (4, 0), 1, user=1000)
        t.eq("once it may, it is", names, ["private/four.txt"])
        # Moves inside the tree keep the vectors; a directory cannot leave.
        os.rename(f"{coll}/a/deep", f"{coll}/b/deep")
        names, err = search_names(coll, (2, 0), 1)
        t.eq("a directory moved inside the tree keeps its files' vectors", names, ["b/deep/two.txt"])
        os.mkdir(f"{mnt}/outside")
        try:
            os.rename(f"{coll}/b", f"{mnt}/outside/b")
            moved = None
        except OSError as e:
            moved = e.errno
        t.eq("a directory cannot be moved out of the tree: EXDEV", moved, errno.EXDEV)
        sh(["mv", f"{coll}/b", f"{mnt}/outside/b"])
        count = vexctl_json("info", coll)["count"]
        t.eq("mv copies it out instead, and its files' vectors go", count, 3)
        os.mkdir(f"{mnt}/newcomer")
        with open(f"{mnt}/newcomer/n.txt", "w") as f:
            f.write("n")
        os.rename(f"{mnt}/newcomer", f"{coll}/newcomer")
        r = vexctl("attach", f"{coll}/newcomer/n.txt", "--vector", "9,9")
        t.check("a directory from outside any tree may move in; its files can then carry vectors",
                r.returncode == 0, r.stderr.strip())
        # Hard links in two directories of the tree: the vectors stay while
        # one remains there.
        os.link(f"{coll}/a/one.txt", f"{coll}/top-link.txt")
        os.link(f"{coll}/a/one.txt", f"{mnt}/outside/one-link.txt")
        os.unlink(f"{coll}/a/one.txt")
        names, err = search_names(coll, (1, 0), 1)
        t.eq("unlinking one name keeps the vectors while another name is in the tree", names, ["top-link.txt"])
        os.rename(f"{coll}/top-link.txt", f"{mnt}/outside/moved.txt")
        t.eq("moving the last name in the tree out deletes them", vexctl_json("info", coll)["count"], 3)
        os.rename(f"{coll}/top.txt", f"{coll}/newcomer/top.txt")
        names, err = search_names(coll, (0, 0), 1)
        t.eq("a file moved between directories of the tree keeps its vectors", names, ["newcomer/top.txt"])
        # A collection nested in the tree has a tree of its own.
        os.mkdir(f"{coll}/inner")
        sh(["vexctl", "create", f"{coll}/inner", "--dim", "2", "--metric", "l2"])
        with open(f"{coll}/inner/i.txt", "w") as f:
            f.write("i")
        sh(["vexctl", "attach", f"{coll}/inner/i.txt", "--vector", "7,7"])
        t.eq("a file in a nested collection belongs to it, not to the outer one",
             (vexctl_json("info", coll)["count"], vexctl_json("info", f"{coll}/inner")["count"]), (3, 1))
        try:
            os.rename(f"{coll}/newcomer", f"{coll}/inner/newcomer")
            moved = None
        except OSError as e:
            moved = e.errno
        t.eq("a directory cannot move into a nested collection's tree: EXDEV", moved, errno.EXDEV)
        os.rename(f"{coll}/inner", f"{mnt}/outside/inner")
        t.eq("a collection directory moves with its tree", vexctl_json("info", f"{mnt}/outside/inner")["count"], 1)
        sh(["rm", "-rf", coll, f"{mnt}/outside"])


def test_all(t, mnt):
    test_parts(t, mnt)
    test_tree(t, mnt)
    test_filters(t, mnt)
