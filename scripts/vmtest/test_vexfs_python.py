"""pytest tests of the `vexfs` Python package (userland/vexfs-python),
run inside the test kernel by run.py's `python` group (python_pkg.py), as
root, on the VexFS mount named by VEXFS_TEST_MNT. The package's answers are
compared with `vexctl`'s on the same collections: search ids (default,
--ef and --exact), `info --json`, `get --json`, and error messages.

Outside the VM (no VEXFS_TEST_MNT) only the tests that need no VexFS mount
run: `$VEXFS_CACHE/venv/bin/python -m pytest scripts/vmtest/test_vexfs_python.py`.

Sizes: 2,000 GloVe vectors (or clustered random ones without the data
file), in a flat collection and in an HNSW one (M 16, ef_construction 40,
quick to build under TCG), 100 queries. `make test-long`
(VEXFS_TEST_LONG=1) takes 20,000 and builds the HNSW graph with the
defaults (M 16, ef_construction 200; minutes under TCG);
VEXFS_PY_GLOVE_N=N sets the count alone.
"""

import errno
import faulthandler
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import vexfs

MNT = os.environ.get("VEXFS_TEST_MNT")
LONG = os.environ.get("VEXFS_TEST_LONG") == "1"
CACHE = os.environ.get("VEXFS_CACHE", os.path.expanduser("~/.cache/vexfs"))
GLOVE = os.path.join(CACHE, "data", "glove_6B_50d.npy")
N = int(os.environ.get("VEXFS_PY_GLOVE_N", "20000" if LONG else "2000"))
NQ = 100
K = 10
# HNSW (M, ef_construction): the defaults for the long run, a narrower
# build beam otherwise (the comparison with vexctl needs the same graph,
# not a good one).
HNSW = (16, 200) if LONG else (16, 40)
USER = 1000
# Where the GIL test's watchdog writes the tracebacks of a hung search.
WATCHDOG = "/tmp/vexfs-python-watchdog.txt"

needs_vexfs = pytest.mark.skipif(
    not MNT, reason="needs a VexFS mount (VEXFS_TEST_MNT): run in the VM, `run.py python`")


# ------------------------------------------------------------------ helpers

def vexctl(*args, uid=None):
    kw = {"user": uid, "group": uid} if uid is not None else {}
    return subprocess.run(["vexctl", *args], capture_output=True, text=True, **kw)


def vexctl_json(*args):
    r = vexctl(*args, "--json")
    assert r.returncode == 0, f"vexctl {' '.join(args)}: {r.stderr.strip()}"
    return json.loads(r.stdout)


def vexctl_error(*args, uid=None):
    """The message of a failing vexctl command, without `vexctl: `."""
    r = vexctl(*args, uid=uid)
    assert r.returncode != 0, f"vexctl {' '.join(args)} succeeded"
    err = r.stderr.strip()
    assert err.startswith("vexctl: "), err
    return err[len("vexctl: "):]


def save_npy(arr):
    """A .npy of `arr` (float32) in /tmp that any user can read."""
    fd, path = tempfile.mkstemp(suffix=".npy", dir="/tmp")
    os.close(fd)
    np.save(path, np.ascontiguousarray(arr, dtype=np.float32))
    os.chmod(path, 0o644)
    return path


def vexctl_search(path, queries, k, *flags):
    """`vexctl search --json` as (ids, distances) of shape (nq, k), rows
    filled as the package fills them."""
    qfile = save_npy(np.atleast_2d(queries))
    try:
        r = vexctl("search", path, "--npy", qfile, "-k", str(k), "--json", *flags)
    finally:
        os.unlink(qfile)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    ids = np.full((len(lines), k), vexfs.MISSING_ID, dtype=np.uint64)
    dist = np.full((len(lines), k), vexfs.MISSING_DISTANCE, dtype=np.float32)
    for i, line in enumerate(lines):
        assert line["query"] == i
        for j, hit in enumerate(line["results"]):
            ids[i, j] = hit["id"]
            dist[i, j] = hit["distance"]
    return ids, dist


def as_user(fn, uid=USER):
    """fn() in a forked child running as uid:gid `uid` without supplementary
    groups (the venv, under /root, is out of such a user's reach, so not a
    new interpreter: the package is already loaded here). Returns ("ok",
    repr of the result, None) or (exception class, message, errno)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                out = ["ok", repr(fn()), None]
            except BaseException as e:  # reported to the parent
                out = [type(e).__name__, str(e), getattr(e, "errno", None)]
            os.write(wfd, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return tuple(json.loads(data))


@pytest.fixture(scope="module")
def root():
    """A directory of the mount for this run's collections."""
    d = os.path.join(MNT, f"pytest-{os.getpid()}")
    os.makedirs(d)
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture(scope="module")
def data():
    """(base, queries): N GloVe vectors and NQ held-out ones, or clustered
    random ones of the same shape without the data file."""
    if os.path.exists(GLOVE):
        glove = np.load(GLOVE, mmap_mode="r")
        return (np.ascontiguousarray(glove[:N], dtype=np.float32),
                np.ascontiguousarray(glove[len(glove) - NQ:], dtype=np.float32))
    print(f"no {GLOVE}: clustered random vectors instead")
    rng = np.random.default_rng(13)
    centers = rng.normal(0, 4, size=(16, 50))
    pick = rng.integers(0, 16, N + NQ)
    vecs = (centers[pick] + rng.normal(0, 0.5, size=(N + NQ, 50))).astype(np.float32)
    return vecs[:N], vecs[N:]


# ------------------------------------------------- without a VexFS mount

def test_module_constants_and_docs():
    assert vexfs.__doc__ and "Collection" in vexfs.__doc__
    assert vexfs.__version__ == "0.1.0"
    assert vexfs.MISSING_ID == np.iinfo(np.uint64).max == 2**64 - 1
    assert vexfs.MISSING_DISTANCE == float("inf")
    assert (vexfs.MAX_DIM, vexfs.MAX_K, vexfs.MAX_BATCH, vexfs.MAX_QUERIES, vexfs.MAX_EF) == \
        (4096, 1024, 1 << 20, 65536, 4096)
    assert vexfs.ABI_VERSION == 4
    for name in ("create", "info", "insert", "search", "get", "delete", "attach", "close"):
        assert getattr(vexfs.Collection, name).__doc__, name


def test_not_a_vexfs_filesystem():
    with pytest.raises(OSError) as e:
        vexfs.Collection("/tmp")
    assert type(e.value) is OSError
    assert (str(e.value), e.value.errno) == ("/tmp: not a VexFS filesystem", None)
    if shutil.which("vexctl"):
        assert str(e.value) == vexctl_error("info", "/tmp")
    # create makes the directory, finds it is not on VexFS, removes it again
    with tempfile.TemporaryDirectory() as d:
        new = os.path.join(d, "coll")
        with pytest.raises(OSError, match="not a VexFS filesystem"):
            vexfs.Collection.create(new, 4, "l2")
        assert not os.path.exists(new)


def test_missing_paths_and_files():
    with pytest.raises(FileNotFoundError) as e:
        vexfs.Collection("/nonexistent/vexfs")
    assert (str(e.value), e.value.errno) == ("/nonexistent/vexfs: no such file or directory", errno.ENOENT)
    with tempfile.NamedTemporaryFile() as f:
        with pytest.raises(NotADirectoryError) as e:
            vexfs.Collection(f.name)
        assert (str(e.value), e.value.errno) == (f"{f.name}: not a directory", errno.ENOTDIR)


def test_create_arguments_are_checked_first():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "c")
        cases = [
            (dict(dim=4, metric="hamming"), 'unknown metric "hamming" (known: l2, cosine, dot)'),
            (dict(dim=4, metric="l2", index="ivf"), 'unknown index "ivf" (known: flat, hnsw)'),
            (dict(dim=0, metric="l2"), "dim = 0 (a collection's dimension is 1 to 4096)"),
            (dict(dim=4097, metric="l2"), "dim = 4097 (a collection's dimension is 1 to 4096)"),
            (dict(dim=4, metric="l2", m=1), "m = 1 (HNSW M is 2 to 127)"),
            (dict(dim=4, metric="l2", ef_construction=0), "ef_construction = 0 (ef_construction is 1 to 4096)"),
            (dict(dim=4, metric="l2", index="flat", m=8),
             'm and ef_construction apply to HNSW collections only: pass index="hnsw" '
             "(a flat collection has no index to tune)"),
            (dict(dim=4, metric="l2", quantize="sq4"), 'unknown quantize "sq4" (known: none, sq8)'),
            (dict(dim=4, metric="l2", index="flat", quantize="sq8"),
             'quantize="sq8" applies to HNSW collections only: pass index="hnsw" '
             "(a flat collection has no index to tune)"),
        ]
        for kwargs, reason in cases:
            with pytest.raises(ValueError) as e:
                vexfs.Collection.create(p, **kwargs)
            assert str(e.value) == f"{p}: CREATE not sent: {reason}"
            assert e.value.errno is None
            assert not os.path.exists(p)


# ---------------------------------------------------- on the VexFS mount

@needs_vexfs
def test_create_flat_and_hnsw(root):
    flat_path = os.path.join(root, "flat")
    flat = vexfs.Collection.create(flat_path, 8, "l2", index="flat")
    info = flat.info()
    assert info == vexctl_json("info", flat_path)
    assert (info["dim"], info["metric"], info["index"], info["m"], info["ef_construction"], info["quantize"],
            info["count"]) == (8, "l2", "flat", 0, 0, "none", 0)
    assert flat.path == flat_path and not flat.closed

    hnsw_path = os.path.join(root, "hnsw")
    info = vexfs.Collection.create(hnsw_path, 8, "cosine").info()
    assert (info["metric"], info["index"], info["m"], info["ef_construction"], info["quantize"]) == \
        ("cosine", "hnsw", 16, 200, "none")
    assert info == vexctl_json("info", hnsw_path)
    # A flat collection with quantize="none" is what flat is.
    vexfs.Collection.create(os.path.join(root, "flat-none"), 3, "l2", index="flat", quantize="none")
    tuned = vexfs.Collection.create(os.path.join(root, "tuned"), 3, "dot", m=8, ef_construction=50).info()
    assert (tuned["metric"], tuned["m"], tuned["ef_construction"]) == ("dot", 8, 50)

    # Opening again; a with block closes it.
    with vexfs.Collection(flat_path) as c:
        assert c.info()["dim"] == 8
    assert c.closed and "closed" in repr(c)
    with pytest.raises(ValueError, match="closed"):
        c.info()

    # Refusals, with vexctl create's messages.
    with pytest.raises(FileExistsError) as e:
        vexfs.Collection.create(flat_path, 8, "l2", index="flat")
    assert e.value.errno == errno.EEXIST
    assert str(e.value) == vexctl_error("create", flat_path, "--dim", "8", "--metric", "l2") \
        == f"{flat_path} is already a collection"
    busy = os.path.join(root, "busy")
    os.mkdir(busy)
    open(os.path.join(busy, "x"), "w").close()
    with pytest.raises(OSError) as e:
        vexfs.Collection.create(busy, 4, "l2")
    assert e.value.errno == errno.ENOTEMPTY
    assert str(e.value) == vexctl_error("create", busy, "--dim", "4", "--metric", "l2")
    assert os.path.exists(os.path.join(busy, "x"))
    nowhere = os.path.join(root, "no", "such")
    with pytest.raises(FileNotFoundError) as e:
        vexfs.Collection.create(nowhere, 4, "l2")
    assert str(e.value) == vexctl_error("create", nowhere, "--dim", "4", "--metric", "l2")

    # A plain directory opens, and says what it is not at the first call.
    plain = os.path.join(root, "plain")
    os.mkdir(plain)
    with pytest.raises(OSError) as e:
        vexfs.Collection(plain).info()
    assert e.value.errno == errno.ENODATA
    assert str(e.value) == vexctl_error("info", plain)


@needs_vexfs
def test_insert_takes_any_layout_and_dtype(root):
    p = os.path.join(root, "inputs")
    c = vexfs.Collection.create(p, 4, "l2", index="flat")
    rng = np.random.default_rng(1)
    v = rng.normal(size=(10, 4)).astype(np.float32)
    c.insert(np.arange(10, dtype=np.uint64), v)  # uint64 + float32, C order: used in place
    big = rng.normal(size=(20, 4)).astype(np.float32)
    w64 = rng.normal(size=(3, 4))  # float64
    c.insert(np.arange(100, 110), big[::2])  # int64 ids, every other row
    c.insert([200, 201], np.asfortranarray(big[:2]))  # a list, Fortran order
    c.insert(np.array([300, 301, 302], dtype=np.uint64), w64)
    c.insert(np.arange(500, 520, dtype=np.uint64)[::2], big[:10])  # strided ids
    c.insert(400, [1, 2, 3, 4])  # one id, one row of ints
    assert c.info()["count"] == 10 + 10 + 2 + 3 + 10 + 1

    for i in range(10):
        assert_array_equal(c.get(i), v[i])
    got = c.get(3)
    assert got.dtype == np.float32 and got.shape == (4,)
    vec, is_file = c.get(3, return_is_file=True)
    assert is_file is False
    assert_array_equal(vec, v[3])
    assert_array_equal(c.get(np.uint64(104)), big[8])
    assert_array_equal(c.get(201), big[1])
    assert_array_equal(c.get(302), w64[2].astype(np.float32))
    assert_array_equal(c.get(518), big[9])
    assert_array_equal(c.get(400), [1, 2, 3, 4])
    assert_array_equal(np.array(vexctl_json("get", p, "301")["vector"], dtype=np.float32),
                       w64[1].astype(np.float32))

    # An upsert replaces.
    c.insert([400], [[4, 3, 2, 1]])
    assert_array_equal(c.get(400), [4, 3, 2, 1])
    assert c.info()["count"] == 36


@needs_vexfs
def test_insert_refusals(root):
    p = os.path.join(root, "refusals")
    c = vexfs.Collection.create(p, 4, "l2", index="flat")
    with pytest.raises(ValueError) as e:
        c.insert([1, 2], np.ones((2, 5), dtype=np.float32))
    assert e.value.errno == errno.EINVAL
    assert str(e.value) == f"{p}: invalid request: a batch of 2 vectors of dim 5 (it must equal the collection's)"
    nan = np.ones((1, 4), dtype=np.float32)
    nan[0, 1] = np.nan
    with pytest.raises(ValueError) as e:
        c.insert([1], nan)
    assert e.value.errno == errno.EINVAL
    cases = [
        (([1, 2, 3], np.ones((2, 4))), ValueError, "3 ids and 2 rows of vectors (one row per id)"),
        (([-1], np.ones((1, 4))), ValueError, "id -1 (ids are 0 to 2**64-1)"),
        (([2**64], np.ones((1, 4))), ValueError, "an id out of range (ids are 0 to 2**64-1)"),
        (([1.5], np.ones((1, 4))), TypeError, "ids must be integers, not float64"),
        (([[1]], np.ones((1, 4))), ValueError, "ids must be one id or a 1-D sequence of ids, not a 2-D array"),
        (([], np.ones((0, 4))), ValueError, "a batch of 0 ids (a batch holds 1 to 1048576)"),
        (([1], np.ones((1, 1, 4))), ValueError,
         "vectors must be one vector (1-D) or rows of vectors (2-D), not a 3-D array"),
    ]
    for args, kind, reason in cases:
        with pytest.raises(kind) as e:
            c.insert(*args)
        assert str(e.value) == f"{p}: INSERT not sent: {reason}"
    assert c.info()["count"] == 0


@needs_vexfs
def test_search_flat_matches_vexctl(root, data):
    base, queries = data
    p = os.path.join(root, "glove-flat")
    c = vexfs.Collection.create(p, base.shape[1], "cosine", index="flat")
    c.insert(np.arange(len(base), dtype=np.uint64), base)
    c = vexfs.Collection(p)
    assert c.info() == vexctl_json("info", p)

    ids, dist = c.search(queries, K)
    assert (ids.shape, ids.dtype, dist.shape, dist.dtype) == ((NQ, K), np.uint64, (NQ, K), np.float32)
    want_ids, want_dist = vexctl_search(p, queries, K)
    assert_array_equal(ids, want_ids)
    assert_allclose(dist, want_dist, rtol=1e-6)
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert_array_equal(c.search(queries, K, exact=True)[0], want_ids)
    # Converted once: float64 in Fortran order finds the same.
    assert_array_equal(c.search(np.asfortranarray(queries.astype(np.float64)), K)[0], want_ids)
    # One query, 1-D: one row.
    one_ids, one_dist = c.search(queries[3], K)
    assert one_ids.shape == (1, K)
    assert_array_equal(one_ids[0], want_ids[3])
    # ef needs an index, as vexctl says.
    with pytest.raises(ValueError) as e:
        c.search(queries, K, ef=64)
    assert str(e.value) == vexctl_error(
        "search", p, "--vector", ",".join(["0.5"] * base.shape[1]), "-k", str(K), "--ef", "64"
    ).replace("--ef", "ef")


@needs_vexfs
def test_search_hnsw_matches_vexctl(root, data):
    base, queries = data
    p = os.path.join(root, "glove-hnsw")
    m, ef_construction = HNSW
    c = vexfs.Collection.create(p, base.shape[1], "cosine", m=m, ef_construction=ef_construction)
    t0 = time.monotonic()
    c.insert(np.arange(len(base), dtype=np.uint64), base)
    print(f"HNSW insert of {len(base)} (M {m}, ef_construction {ef_construction}): "
          f"{time.monotonic() - t0:.1f} s")
    # What the user does: open by path, search.
    c = vexfs.Collection(p)
    # The insert links the rows it stored before it returns; should the
    # module's worker have been left some, both sides must see the same
    # graph.
    end = time.monotonic() + 120
    while c.info()["unindexed"] and time.monotonic() < end:
        time.sleep(0.1)
    info = c.info()
    assert info == vexctl_json("info", p)
    assert (info["count"], info["unindexed"], info["deleted_pending"]) == (len(base), 0, 0)

    default_ids, _ = c.search(queries, K)
    for kwargs, flags in (({}, ()), ({"ef": 64}, ("--ef", "64")), ({"ef": 16}, ("--ef", "16")),
                          ({"exact": True}, ("--exact",))):
        ids, dist = c.search(queries, K, **kwargs)
        want_ids, want_dist = vexctl_search(p, queries, K, *flags)
        assert_array_equal(ids, want_ids, err_msg=f"search {kwargs} vs vexctl search {flags}")
        assert_allclose(dist, want_dist, rtol=1e-6)
        if kwargs.get("ef") == 64:
            # The default beam is ef 64.
            assert_array_equal(ids, default_ids)


@needs_vexfs
def test_search_sq8_matches_vexctl(root, data):
    """quantize="sq8": info says so (as `vexctl info --json` does), the
    searches find what vexctl's find on the same collection, and every
    distance is the exact one of its id (the walk's candidates are
    re-ranked in float32)."""
    base, queries = data
    base = base[:1000]
    p = os.path.join(root, "glove-sq8")
    c = vexfs.Collection.create(p, base.shape[1], "cosine", ef_construction=HNSW[1], quantize="sq8")
    c.insert(np.arange(len(base), dtype=np.uint64), base)
    end = time.monotonic() + 120
    while c.info()["unindexed"] and time.monotonic() < end:
        time.sleep(0.1)
    info = c.info()
    assert info == vexctl_json("info", p)
    assert (info["index"], info["quantize"], info["count"], info["unindexed"]) == ("hnsw", "sq8", len(base), 0)
    for kwargs, flags in (({}, ()), ({"ef": 16}, ("--ef", "16")), ({"exact": True}, ("--exact",))):
        ids, dist = c.search(queries, K, **kwargs)
        want_ids, want_dist = vexctl_search(p, queries, K, *flags)
        assert_array_equal(ids, want_ids, err_msg=f"search {kwargs} vs vexctl search {flags}")
        assert_allclose(dist, want_dist, rtol=1e-6)
    ids, dist = c.search(queries, K)
    b, q = base.astype(np.float64), queries.astype(np.float64)
    rows = b[ids.astype(np.int64)]
    exact = 1.0 - np.einsum("qkd,qd->qk", rows, q) / (np.linalg.norm(rows, axis=2) * np.linalg.norm(q, axis=1)[:, None])
    assert_allclose(dist, exact, rtol=0, atol=1e-5)


@needs_vexfs
def test_short_rows_are_filled(root):
    for index in ("flat", "hnsw"):
        p = os.path.join(root, f"short-{index}")
        kw = {} if index == "flat" else {"ef_construction": 10}
        c = vexfs.Collection.create(p, 2, "l2", index=index, **kw)
        c.insert([7, 8, 9], [[0, 0], [1, 0], [5, 5]])
        for exact in (False, True):
            ids, dist = c.search([[0.1, 0]], 5, exact=exact)
            assert ids.tolist() == [[7, 8, 9, vexfs.MISSING_ID, vexfs.MISSING_ID]]
            assert_allclose(dist[0, :3], [0.01, 0.81, 49.01], rtol=1e-5)
            assert np.all(np.isinf(dist[0, 3:]))
            assert ids[ids != vexfs.MISSING_ID].tolist() == [7, 8, 9]
        want_ids, want_dist = vexctl_search(p, [[0.1, 0]], 5)
        assert_array_equal(ids, want_ids)
        assert_allclose(dist, want_dist, rtol=1e-6)


@needs_vexfs
def test_get_and_delete(root):
    p = os.path.join(root, "getdel")
    c = vexfs.Collection.create(p, 3, "dot", index="flat")
    c.insert(np.arange(10), np.arange(30).reshape(10, 3))
    v = c.get(4)
    assert v.dtype == np.float32 and v.tolist() == [12, 13, 14]
    assert v.tolist() == vexctl_json("get", p, "4")["vector"]
    with pytest.raises(FileNotFoundError) as e:
        c.get(99)
    assert e.value.errno == errno.ENOENT
    assert str(e.value) == vexctl_error("get", p, "99") == f"{p}: no vector with id 99"
    with pytest.raises(ValueError):
        c.get(-1)
    with pytest.raises(TypeError):
        c.get(1.5)

    c.delete(4)  # one int
    c.delete(np.array([5, 6, 6], dtype=np.uint64))  # an array, a repeat
    assert c.info()["count"] == 7
    with pytest.raises(FileNotFoundError):
        c.get(5)
    # A missing id: nothing deleted, the missing named as vexctl names them.
    with pytest.raises(FileNotFoundError) as e:
        c.delete([1, 99, 98])
    assert e.value.errno == errno.ENOENT
    assert str(e.value) == vexctl_error("delete", p, "1", "99", "98") \
        == f"{p}: no vectors with ids 99, 98; nothing deleted"
    assert c.info()["count"] == 7
    assert c.get(1).tolist() == [3, 4, 5]


@needs_vexfs
def test_attach_a_file(root):
    p = os.path.join(root, "files")
    c = vexfs.Collection.create(p, 4, "l2", index="flat")
    c.insert([1, 2], [[0, 0, 0, 0], [9, 9, 9, 9]])
    f = os.path.join(p, "notes.txt")
    with open(f, "w") as fh:
        fh.write("x")
    fid = c.attach("notes.txt", np.array([1, 1, 1, 1.0]))  # relative to the collection; float64
    assert fid == os.stat(f).st_ino
    vec, is_file = c.get(fid, return_is_file=True)
    assert is_file is True and vec.tolist() == [1, 1, 1, 1]
    got = vexctl_json("get", p, str(fid))
    assert (got["vector"], got["file"]) == ([1, 1, 1, 1], True)
    ids, _ = c.search([1, 1, 1, 1.2], 3)
    assert ids[0].tolist() == [fid, 1, 2]
    hits = vexctl_json("search", p, "--vector", "1,1,1,1.2", "-k", "3")["results"]
    assert [(h["id"], h["name"]) for h in hits] == [(fid, "notes.txt"), (1, None), (2, None)]
    info = c.info()
    assert (info["count"], info["file_vectors"]) == (3, 1)
    assert info == vexctl_json("info", p)

    assert c.attach(f, [[2, 2, 2, 2]]) == fid  # absolute, one row; replaces
    assert c.get(fid).tolist() == [2, 2, 2, 2]

    with pytest.raises(ValueError) as e:
        c.attach(f, [1, 2, 3])
    assert e.value.errno == errno.EINVAL
    assert str(e.value) == f"{f}: invalid request: a vector of dim 3 (it must equal the collection's)"
    # Several rows: the file's parts, replaced together; a search names the
    # file once, by its nearest part, with that part's id.
    part1 = fid | (1 << 48)
    assert c.attach(f, [[5, 5, 5, 5], [2, 2, 2, 2]]) == fid
    assert (c.get(fid).tolist(), c.get(part1).tolist()) == ([5, 5, 5, 5], [2, 2, 2, 2])
    ids, _ = c.search([2, 2, 2, 2], 3)
    assert ids[0].tolist() == [part1, 1, 2]
    hits = vexctl_json("search", p, "--vector", "2,2,2,2", "-k", "3")["results"]
    assert [(h["id"], h.get("part")) for h in hits[:1]] == [(fid, 1)]
    assert c.info()["file_vectors"] == 2
    with pytest.raises(ValueError) as e:
        c.attach(f, np.ones((1025, 4)))
    assert str(e.value) == f"{f}: ATTACH not sent: 1025 vectors (a file carries 1 to 1024)"
    assert c.attach(f, [2, 2, 2, 2]) == fid  # one row again: part 1 is gone
    with pytest.raises(FileNotFoundError):
        c.get(part1)
    # A file in a subdirectory belongs to the collection too.
    os.mkdir(os.path.join(p, "sub"))
    deep = os.path.join(p, "sub", "deep.txt")
    open(deep, "w").close()
    assert c.attach("sub/deep.txt", [3, 3, 3, 3]) == os.stat(deep).st_ino
    c.delete(os.stat(deep).st_ino)
    # A file of a collection nested in this one is that collection's.
    nested = os.path.join(p, "nested")
    vexfs.Collection.create(nested, 4, "l2", index="flat")
    n = os.path.join(nested, "n")
    open(n, "w").close()
    with pytest.raises(ValueError) as e:
        c.attach(n, [1, 1, 1, 1])
    assert "not in the collection" in str(e.value)
    other_path = os.path.join(root, "files-other")
    other = vexfs.Collection.create(other_path, 4, "l2", index="flat")
    g = os.path.join(other_path, "g")
    open(g, "w").close()
    with pytest.raises(ValueError) as e:
        c.attach(g, [1, 1, 1, 1])
    assert str(e.value) == (f"{g}: not in the collection {p} (a file's vector belongs to the "
                            "nearest collection directory above the file)")
    assert other.info()["count"] == 0
    missing = os.path.join(p, "missing")
    with pytest.raises(FileNotFoundError) as e:
        c.attach("missing", [1, 1, 1, 1])
    assert str(e.value) == vexctl_error("attach", missing, "--vector", "1,1,1,1")
    # Its inode number taken by a plain vector: as vexctl says.
    other.insert([os.stat(g).st_ino], [[0, 0, 0, 0]])
    with pytest.raises(FileExistsError) as e:
        other.attach("g", [1, 1, 1, 1])
    assert e.value.errno == errno.EEXIST
    assert str(e.value) == vexctl_error("attach", g, "--vector", "1,1,1,1")

    c.delete(fid)  # detaches; the file stays
    assert c.info()["file_vectors"] == 0 and os.path.exists(f)


@needs_vexfs
def test_search_filters(root):
    """under= and xattr= filter inside the search, as vexctl's --under and
    --xattr: a full row whenever k matching files exist."""
    p = os.path.join(root, "filtered")
    c = vexfs.Collection.create(p, 4, "l2", index="hnsw", ef_construction=16)
    os.mkdir(os.path.join(p, "a"))
    inos = []
    for i in range(40):
        f = os.path.join(p, "a" if i % 4 == 0 else "", f"f{i}")
        open(f, "w").close()
        if i % 5 == 0:
            os.setxattr(f, "user.lang", b"en")
        inos.append(c.attach(f, [i, 0, 0, 0]))
    c.insert([1 << 40], [[0, 0, 0, 0]])  # a plain vector: no filter keeps it
    q = np.array([[0, 0, 0, 0], [39, 0, 0, 0]], dtype=np.float32)
    ids, d = c.search(q, 5, under=os.path.join(p, "a"))
    want = [[inos[i] for i in (0, 4, 8, 12, 16)], [inos[i] for i in (36, 32, 28, 24, 20)]]
    assert ids.tolist() == want
    assert d.tolist() == [[0, 16, 64, 144, 256], [9, 49, 121, 225, 361]]
    assert ids.tolist() == vexctl_search(p, q, 5, "--under", os.path.join(p, "a"))[0].tolist()
    ids, _ = c.search(q, 3, xattr=("user.lang", "en"), exact=True)
    assert ids.tolist() == [[inos[0], inos[5], inos[10]], [inos[35], inos[30], inos[25]]]
    ids2, _ = c.search(q, 3, xattr=(b"user.lang", b"en"), under=p)
    assert ids2.tolist() == ids.tolist()
    ids, d = c.search(q[:1], 12, under=os.path.join(p, "a"), xattr=("user.lang", "en"))
    assert ids[0].tolist()[:5] == [inos[i] for i in (0, 20)] + [vexfs.MISSING_ID] * 3
    assert np.isinf(d[0][2:]).all()
    with pytest.raises(ValueError) as e:
        c.search(q, 3, xattr=("trusted.x", "1"))
    assert "user." in str(e.value)
    with pytest.raises(FileNotFoundError):
        c.search(q, 3, under=os.path.join(p, "missing"))
    with pytest.raises(ValueError) as e:
        c.search(q, 3, under=root)
    assert e.value.errno == errno.EINVAL


@needs_vexfs
def test_search_and_arguments_refused(root):
    p = os.path.join(root, "args")
    c = vexfs.Collection.create(p, 4, "l2", ef_construction=10)
    c.insert([1, 2, 3], np.eye(3, 4))
    with pytest.raises(ValueError) as e:
        c.search(np.ones((2, 5)), 3)
    assert e.value.errno == errno.EINVAL
    assert str(e.value) == f"{p}: invalid request: 2 queries of dim 5 (it must equal the collection's), k = 3"
    with pytest.raises(ValueError) as e:
        c.search(np.ones(5), 3, ef=32)
    assert str(e.value) == \
        f"{p}: invalid request: 1 queries of dim 5 (it must equal the collection's), k = 3, ef = 32 (at most 4096)"
    cases = [
        (dict(k=0), "k = 0 (k is 1 to 1024)"),
        (dict(k=1025), "k = 1025 (k is 1 to 1024)"),
        (dict(k=3, ef=0), "ef = 0 (ef is 1 to 4096)"),
        (dict(k=3, ef=4097), "ef = 4097 (ef is 1 to 4096)"),
        (dict(k=3, ef=8, exact=True),
         "ef and exact=True exclude each other (ef tunes the HNSW walk, exact scans every vector)"),
    ]
    for kwargs, reason in cases:
        with pytest.raises(ValueError) as e:
            c.search(np.ones(4), **kwargs)
        assert (str(e.value), e.value.errno) == (f"{p}: SEARCH not sent: {reason}", None)
    with pytest.raises(ValueError) as e:
        c.search(np.ones((0, 4)), 3)
    assert str(e.value) == f"{p}: SEARCH not sent: 0 queries (a search takes 1 to 65536)"


@needs_vexfs
def test_permissions(root):
    p = os.path.join(root, "perm")
    c = vexfs.Collection.create(p, 2, "l2", index="flat")
    c.insert([1], [[1, 2]])
    os.chmod(p, 0o755)
    # Another user may search, not change.
    assert as_user(lambda: vexfs.Collection(p).search([1, 2], 1)[0].tolist()) == ("ok", "[[1]]", None)
    kind, msg, err = as_user(lambda: vexfs.Collection(p).insert([2], [3, 4]))
    assert (kind, err) in (("PermissionError", errno.EACCES), ("PermissionError", errno.EPERM))
    assert msg == f"{p}: permission denied (needs write permission on the collection directory)"
    one = save_npy([[3, 4]])
    try:
        r = vexctl("insert", p, "--npy", one, "--start-id", "2", uid=USER)
    finally:
        os.unlink(one)
    assert r.returncode != 0 and r.stderr.startswith(f"vexctl: {msg};"), r.stderr
    kind, msg, err = as_user(lambda: vexfs.Collection(p).delete(1))
    assert kind == "PermissionError" and err in (errno.EACCES, errno.EPERM)
    assert msg == vexctl_error("delete", p, "1", uid=USER)
    assert c.info()["count"] == 1
    # No access at all.
    os.chmod(p, 0o700)
    try:
        kind, msg, err = as_user(lambda: vexfs.Collection(p))
        assert (kind, err) == ("PermissionError", errno.EACCES)
        assert msg == vexctl_error("info", p, uid=USER) == f"{p}: permission denied"
    finally:
        os.chmod(p, 0o755)


@needs_vexfs
def test_gil_is_released_during_the_ioctl(root):
    """A search whose query the kernel cannot read until this thread
    provides it (userfaultfd): it finishes only if this thread can run
    Python while the other waits inside the ioctl."""
    import uffd  # scripts/vmtest, beside this file
    if not uffd.available():
        pytest.skip("kernel without userfaultfd")
    p = os.path.join(root, "gil")
    c = vexfs.Collection.create(p, 4, "l2", index="flat")
    c.insert([1, 2], [[0, 0, 0, 0], [1, 1, 1, 1]])
    buf = uffd.StallingBuffer(1)
    # A float32 C-contiguous view of the stalling page: passed as it is, so
    # only the kernel's read touches it.
    query = np.frombuffer(buf.map, dtype=np.float32, count=4).reshape(1, 4)
    out = {}

    def search():
        out["result"] = c.search(query, 2)

    # Were the GIL held in the ioctl, this thread would never run again:
    # end the process with tracebacks rather than hang (into a file: pytest
    # captures standard error; python_pkg.py prints it).
    watchdog = open(WATCHDOG, "w")
    faulthandler.dump_traceback_later(120, exit=True, file=watchdog)
    try:
        worker = threading.Thread(target=search)
        worker.start()
        time.sleep(0.5)
        stalled = worker.is_alive()
        buf.release(fill=struct.pack("<f", 1.0))
        worker.join(60)
    finally:
        faulthandler.cancel_dump_traceback_later()
        watchdog.close()
        os.unlink(WATCHDOG)
        buf.close()
    assert stalled, "the search did not wait for its query"
    assert not worker.is_alive()
    ids, dist = out["result"]
    assert ids.tolist() == [[2, 1]] and dist[0, 0] == 0
