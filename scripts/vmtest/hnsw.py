"""In-VM tests of HNSW collections (`vexctl create --index hnsw`): recall on
GloVe against a float64 brute force, before and after deletes, replacements
and inserts; exact search equal to a flat collection's; searches running
while other processes insert and delete; the ioctl errors and vexctl's
messages; files carrying vectors."""

import errno
import json
import multiprocessing
import os
import random
import time

import numpy as np

from harness import LONG, eventually, run, sh, vexctl, vexctl_json
from abi import INDEX_FLAT, INDEX_HNSW, QUANTIZE_NONE, QUANTIZE_SQ8, SEARCH_EXACT, create_raw
from vectors import GLOVE, Coll, compare, f32_tolerance, reference, save_npy

TMP = "/tmp/hnsw"
K = 10
# Sizes: `make test` measures recall on 2,000 GloVe vectors (enough for
# recall@10 to mean something), `make test-long` on 20,000; the environment
# variables override both for a run by hand.
GLOVE_N = int(os.environ.get("VEXFS_HNSW_GLOVE_N", "20000" if LONG else "2000"))  # base vectors
GLOVE_NQ = 200         # held-out queries, all in one search ioctl
RECALL_MIN = 0.95
MAX_EF = 4096
HIT_FILE = 1


def vsearch(coll, qfile, k, *extra):
    """`vexctl search --json`, one list of (ids, distances) per query."""
    r = vexctl("search", coll, "--npy", qfile, "-k", str(k), "--json", *extra)
    if r.returncode != 0:
        raise RuntimeError(f"vexctl search {' '.join(extra)} failed: {r.stderr.strip()}")
    out = []
    for line in r.stdout.splitlines():
        res = json.loads(line)["results"]
        out.append((np.array([h["id"] for h in res], dtype=np.uint64),
                    np.array([h["distance"] for h in res], dtype=np.float64)))
    return out


def search_ops(mnt):
    """The mount's count of SEARCH ioctls."""
    return {o["op"]: o["count"] for o in vexctl_json("stats", mnt)["ops"]}["vec_search"]


def truth(base, queries, metric, k=K):
    """Positions (rows of `base`) of the float64 top k of each query."""
    ref = reference(base, queries, metric)
    return ref, np.argsort(ref, axis=1, kind="stable")[:, :k]


def recall(results, truth_ids, k=K):
    """Mean fraction of the true top k found, truth given as ids."""
    return float(np.mean([len(set(ids.tolist()) & set(want.tolist())) / k
                          for (ids, *_), want in zip(results, truth_ids)]))


def few_dead(info):
    """deleted_pending under 10 % of the stored rows (live and dead): the
    module's rule for when the worker repairs."""
    return info["deleted_pending"] * 10 < info["count"] + info["deleted_pending"] or info["deleted_pending"] == 0


def wait_repaired(c, timeout=900):
    """The collection's info once every row is linked and few rows are dead
    (the module's worker does repair, and the linking a call did not do
    itself, after the calls return), or the last one."""
    return eventually(c.info, lambda info: info["unindexed"] == 0 and few_dead(info), timeout)


def wait_linking(c, running, every=0.05):
    """Until the batch being inserted is stored and being linked (the
    batch is visible before its linking starts: some row is unindexed), or
    its inserter stopped (`running()` false)."""
    eventually(c.info, lambda info: info["unindexed"] > 0 or not running(), 3600, every)


def fresh(path):
    if os.path.exists(path):
        sh(["rm", "-rf", path])


# ------------------------------------------------------------------ GloVe

class GloveState:
    """The HNSW GloVe collection the recall, churn and exact groups share:
    the live (id, vector) rows, kept in step with the kernel's."""

    def __init__(self, coll, glove):
        self.coll = coll
        self.glove = glove
        self.ids = np.arange(GLOVE_N, dtype=np.uint64)
        self.base = np.ascontiguousarray(glove[:GLOVE_N], dtype=np.float32)
        self.queries = np.ascontiguousarray(glove[GLOVE_N:GLOVE_N + GLOVE_NQ], dtype=np.float32)
        self.qfile = f"{TMP}/queries.npy"
        save_npy(self.qfile, self.queries)
        self.deleted = set()

    def truth_ids(self):
        ref, pos = truth(self.base, self.queries, "cosine")
        return ref, self.ids[pos]


def test_glove_recall(t, mnt):
    """Returns the GloveState for the next groups (None if the build failed)."""
    state = None
    with t.group(f"HNSW GloVe {GLOVE_N} x 50 cosine: build and recall@{K}"):
        os.makedirs(TMP, exist_ok=True)
        glove = np.load(GLOVE, mmap_mode="r")
        coll = f"{mnt}/hnsw_glove"
        fresh(coll)
        st = GloveState(coll, glove)
        save_npy(f"{TMP}/base.npy", st.base)
        r = vexctl("create", coll, "--dim", "50", "--metric", "cosine", "--index", "hnsw")
        t.check("vexctl create --index hnsw (defaults)",
                r.returncode == 0 and "index hnsw, M 16, ef_construction 200" in r.stdout,
                (r.stdout + r.stderr).strip())
        t0 = time.monotonic()
        r = vexctl("insert", coll, "--npy", f"{TMP}/base.npy", "--batch", str(GLOVE_N))
        build = time.monotonic() - t0
        print(f"    HNSW build: {GLOVE_N} vectors in one insert ioctl: {build:.1f} s in the guest "
              f"({GLOVE_N / build:.0f} vectors/s)", flush=True)
        if not t.check(f"vexctl insert of {GLOVE_N} GloVe vectors in one batch", r.returncode == 0,
                       r.stderr.strip()):
            return None
        info = vexctl_json("info", coll)
        t.eq("info: index, M, ef_construction, count",
             (info["index"], info["m"], info["ef_construction"], info["count"]), ("hnsw", 16, 200, GLOVE_N))
        t.check("info: the whole batch is linked (unindexed 0, deleted_pending 0)",
                info["unindexed"] == 0 and info["deleted_pending"] == 0, str(info))
        t.check("info: the graph's bytes are counted within memory_bytes",
                0 < info["index_bytes"] < info["memory_bytes"]
                and info["memory_bytes"] >= GLOVE_N * 50 * 4 + info["index_bytes"], str(info))
        table = vexctl("info", coll).stdout
        t.check("vexctl info table shows the index",
                all(w in table for w in ("hnsw", "ef_construction", "index_bytes", "deleted_pending",
                                         "unindexed")), table)

        ref, want = st.truth_ids()
        before = search_ops(mnt)
        t0 = time.monotonic()
        res = vsearch(coll, st.qfile, K, "--ef", "64")
        took = time.monotonic() - t0
        t.eq(f"the {GLOVE_NQ} queries went in one search ioctl", search_ops(mnt) - before, 1)
        t.check(f"{GLOVE_NQ} results of {K} hits each", len(res) == GLOVE_NQ and all(len(r[0]) == K for r in res))
        rec = recall(res, want)
        print(f"    recall@{K} at ef 64: {rec:.4f}; vexctl search of {GLOVE_NQ} queries: {took:.2f} s",
              flush=True)
        t.check(f"recall@{K} at ef 64 >= {RECALL_MIN} against float64 truth", rec >= RECALL_MIN, f"{rec:.4f}")
        res_default = vsearch(coll, st.qfile, K)
        rec_default = recall(res_default, want)
        t.check(f"recall@{K} at the default ef >= {RECALL_MIN}", rec_default >= RECALL_MIN, f"{rec_default:.4f}")
        rows = {int(i): n for n, i in enumerate(st.ids)}
        bad = [(qi, int(i), float(d)) for qi, (ids, dist) in enumerate(res)
               for i, d in zip(ids, dist) if abs(d - ref[qi][rows[int(i)]]) > 1e-5]
        t.check("reported distances equal the float64 distances of the ids found", not bad, str(bad[:3]))
        t.check("hits are sorted by distance", all(np.all(np.diff(d) >= 0) for _, d in res))
        low, high = recall(vsearch(coll, st.qfile, K, "--ef", "10"), want), \
            recall(vsearch(coll, st.qfile, K, "--ef", "400"), want)
        print(f"    recall@{K} at ef 10: {low:.4f}, at ef 400: {high:.4f}", flush=True)
        t.check("a wider beam does not lower recall (ef 400 >= ef 10)", high >= low, f"{high} < {low}")
        state = st
    return state


def test_glove_churn(t, mnt, st):
    with t.group("HNSW GloVe: delete 30%, replace, insert as many; repair and recall"):
        if st is None:
            t.check("the GloVe collection was built", False)
            return
        rng = np.random.default_rng(11)
        c = Coll(st.coll)
        try:
            gone = rng.choice(GLOVE_N, size=GLOVE_N * 3 // 10, replace=False)
            pending = []
            t0 = time.monotonic()
            # One batch: one repair (each costs about a minute under TCG).
            for chunk in np.array_split(st.ids[gone], 1):
                c.delete(chunk)
                pending.append(c.info()["deleted_pending"])
            print(f"    deleted {len(gone)} in one batch: {time.monotonic() - t0:.1f} s; deleted_pending "
                  f"after each: {pending}", flush=True)
            st.deleted = set(st.ids[gone].tolist())
            keep = np.setdiff1d(np.arange(GLOVE_N), gone)
            st.ids, st.base = st.ids[keep], st.base[keep]
            info = wait_repaired(c)
            t.eq("count after the deletes", info["count"], GLOVE_N - len(gone))
            t.check("a repair ran: deleted_pending is under 10% of the rows", few_dead(info), str(info))

            # Replace a twentieth of the live ids (1,000 of 20,000) with other
            # GloVe rows.
            n_new, n_upd = len(gone), GLOVE_N // 20
            at = max(30000, GLOVE_N + GLOVE_NQ)
            fresh_rows = np.ascontiguousarray(st.glove[at:at + n_new + n_upd], dtype=np.float32)
            upd = rng.choice(len(st.ids), size=n_upd, replace=False)
            c.insert(st.ids[upd], fresh_rows[n_new:])
            st.base[upd] = fresh_rows[n_new:]
            got, _ = c.get(int(st.ids[upd[0]]), 50)
            t.check("an insert of an existing id replaces its vector",
                    np.array_equal(got, st.base[upd[0]]) and c.info()["count"] == len(st.ids))

            # As many new vectors as were deleted, through vexctl.
            new_ids = np.arange(1_000_000, 1_000_000 + n_new, dtype=np.uint64)
            save_npy(f"{TMP}/new.npy", fresh_rows[:n_new])
            t0 = time.monotonic()
            r = vexctl("insert", st.coll, "--npy", f"{TMP}/new.npy", "--start-id", "1000000",
                       "--batch", str(n_new))
            print(f"    inserted {n_new} new vectors: {time.monotonic() - t0:.1f} s", flush=True)
            t.check(f"vexctl insert of {n_new} new vectors", r.returncode == 0, r.stderr.strip())
            st.ids = np.concatenate([st.ids, new_ids])
            st.base = np.concatenate([st.base, fresh_rows[:n_new]])
            info = wait_repaired(c)
            print(f"    info after the churn: {info}", flush=True)
            t.eq("count is back to the original", info["count"], GLOVE_N)
            t.check("deleted_pending under 10% of the rows, nothing unindexed",
                    few_dead(info) and info["unindexed"] == 0, str(info))

            _, want = st.truth_ids()
            res = vsearch(st.coll, st.qfile, K, "--ef", "64")
            rec = recall(res, want)
            print(f"    recall@{K} at ef 64 over the live set: {rec:.4f}", flush=True)
            t.check(f"recall@{K} >= {RECALL_MIN} over the live set after the churn", rec >= RECALL_MIN,
                    f"{rec:.4f}")
            found_deleted = {int(i) for ids, _ in res for i in ids} & st.deleted
            t.check("no deleted id is ever returned", not found_deleted, str(sorted(found_deleted)[:5]))
        finally:
            c.close()


def test_glove_exact(t, mnt, st):
    with t.group("HNSW GloVe: --exact equals a flat collection with the same data"):
        if st is None:
            t.check("the GloVe collection was built", False)
            return
        flat = f"{mnt}/flat_glove"
        fresh(flat)
        sh(["vexctl", "create", flat, "--dim", "50", "--metric", "cosine"])
        f = Coll(flat)
        f.insert(st.ids, st.base)
        f.close()
        exact = vsearch(st.coll, st.qfile, K, "--exact")
        plain = vsearch(flat, st.qfile, K)
        same_ids = sum(np.array_equal(a[0], b[0]) for a, b in zip(exact, plain))
        close = all(len(a[1]) == len(b[1]) and np.allclose(a[1], b[1], rtol=1e-6, atol=1e-7)
                    for a, b in zip(exact, plain))
        t.eq(f"--exact on HNSW: the ids of all {GLOVE_NQ} queries equal the flat collection's",
             same_ids, GLOVE_NQ)
        t.check("--exact on HNSW: distances equal the flat collection's", close)
        ref, _ = truth(st.base, st.queries, "cosine")
        rows = {int(i): n for n, i in enumerate(st.ids)}
        bad = [qi for qi, (ids, _) in enumerate(exact)
               if not compare(ref[qi], [rows[int(i)] for i in ids], K, rel=1e-5)[0]]
        t.check("--exact on HNSW equals the float64 brute force (up to near-ties)", not bad, str(bad[:5]))
        # The flag by hand, and on a flat collection (where it changes nothing).
        c, f = Coll(st.coll), Coll(flat)
        a = c.search(st.queries[:20], K, flags=SEARCH_EXACT)
        b = f.search(st.queries[:20], K, flags=SEARCH_EXACT)
        b0 = f.search(st.queries[:20], K, ef=100)
        t.check("SEARCH_EXACT by ioctl: HNSW equals flat; flat ignores the flag and ef",
                all(np.array_equal(x[0], y[0]) and np.array_equal(y[0], z[0]) for x, y, z in zip(a, b, b0)))
        c.close()
        f.close()
        sh(["rm", "-rf", flat])
        sh(["rm", "-rf", st.coll])


# ------------------------------------------------------------ concurrency

CONC_DIM = 16
CONC_INITIAL = 5000 if LONG else 2000
CONC_MAX_IDS = 100_000
_conc_vectors = None


def conc_vectors():
    """Vector of id i: row i. Made once, before the workers fork, so every
    process shares the same table."""
    global _conc_vectors
    if _conc_vectors is None:
        _conc_vectors = np.random.default_rng(21).normal(size=(CONC_MAX_IDS, CONC_DIM)).astype(np.float32)
    return _conc_vectors


def _searcher(coll, seconds, seed, deleted, next_id, out):
    vecs = conc_vectors()
    rng = random.Random(seed)
    c = Coll(coll)
    searches = errors = 0
    problems = []
    lat_max = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        nq = rng.randint(1, 8)
        q = np.array([[rng.uniform(-2, 2) for _ in range(CONC_DIM)] for _ in range(nq)], dtype=np.float32)
        ef = rng.choice((0, 5, 10, 64, 200))
        flags = SEARCH_EXACT if rng.random() < 0.1 else 0
        gone_before = bytes(memoryview(deleted.get_obj()))
        t0 = time.perf_counter()
        try:
            res = c.search(q, K, flags=flags, ef=ef)
        except OSError as e:
            errors += 1
            problems.append(f"search: {e}")
            continue
        lat_max = max(lat_max, time.perf_counter() - t0)
        hi = next_id.value
        searches += 1
        for qi, (ids, dist) in enumerate(res):
            why = None
            if len(ids) != K:
                why = f"{len(ids)} hits"
            elif np.any(np.diff(dist) < 0):
                why = f"unsorted distances {dist.tolist()}"
            elif len(set(ids.tolist())) != K:
                why = f"repeated ids {ids.tolist()}"
            elif any(int(i) >= hi for i in ids):
                why = f"an id never inserted ({ids.tolist()} vs next {hi})"
            elif any(int(i) < CONC_INITIAL and gone_before[int(i)] for i in ids):
                why = f"an id deleted before the search ({ids.tolist()})"
            else:
                true = ((vecs[ids.astype(np.int64)].astype(np.float64) - q[qi]) ** 2).sum(1)
                if not np.allclose(dist, true, rtol=1e-4, atol=1e-4):
                    why = f"distances {dist.tolist()} are not the ids' ({true.tolist()})"
            if why:
                errors += 1
                problems.append(why)
    c.close()
    out.put(("search", searches, errors, problems[:3], lat_max))


def _inserter(coll, seconds, seed, next_id, out):
    vecs = conc_vectors()
    rng = random.Random(seed)
    c = Coll(coll)
    nid, ops, errors, problems = CONC_INITIAL, 0, 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end and nid < CONC_MAX_IDS - 300:
        n = rng.randint(1, 200)
        if rng.random() < 0.2 and nid > CONC_INITIAL + 10:
            # Re-insert some of this process's ids (same vectors): replacements.
            ids = np.array(rng.sample(range(CONC_INITIAL, nid), min(n, nid - CONC_INITIAL)), dtype=np.uint64)
        else:
            ids = np.arange(nid, nid + n, dtype=np.uint64)
            nid += n
            with next_id.get_lock():
                next_id.value = nid
        try:
            c.insert(ids, vecs[ids.astype(np.int64)])
            ops += 1
        except OSError as e:
            errors += 1
            problems.append(f"insert: {e}")
    c.close()
    out.put(("insert", ops, errors, problems[:3], nid))


def _deleter(coll, seconds, seed, deleted, out):
    rng = random.Random(seed)
    pool = list(range(CONC_INITIAL))
    rng.shuffle(pool)
    c = Coll(coll)
    ops, errors, problems, gone = 0, 0, [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(pool) > 1000:
        ids = [pool.pop() for _ in range(rng.randint(1, 50))]
        try:
            c.delete(ids)
            ops += 1
            gone += ids
            for i in ids:
                deleted[i] = 1
        except OSError as e:
            errors += 1
            problems.append(f"delete: {e}")
        time.sleep(rng.uniform(0, 0.05))
    c.close()
    out.put(("delete", ops, errors, problems[:3], gone))


def small_hnsw(coll):
    """A fresh HNSW collection with the first CONC_INITIAL test vectors, and
    a small graph (M 8, ef_construction 64): its tests are about locking."""
    fresh(coll)
    sh(["vexctl", "create", coll, "--dim", str(CONC_DIM), "--metric", "l2", "--index", "hnsw",
        "--m", "8", "--ef-construction", "64"])
    vecs = conc_vectors()
    c = Coll(coll)
    c.insert(np.arange(CONC_INITIAL), vecs[:CONC_INITIAL])
    return vecs, c


def test_concurrency(t, mnt, seconds=30 if LONG else 4, searchers=3):
    with t.group(f"HNSW concurrency: {searchers} searchers, an inserter and a deleter for {seconds} s"):
        coll = f"{mnt}/hnsw_conc"
        vecs, c = small_hnsw(coll)
        c.close()
        deleted = multiprocessing.Array("B", CONC_INITIAL)
        next_id = multiprocessing.Value("Q", CONC_INITIAL)
        q = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_searcher, args=(coll, seconds, 300 + i, deleted, next_id, q))
                 for i in range(searchers)]
        procs.append(multiprocessing.Process(target=_inserter, args=(coll, seconds, 400, next_id, q)))
        procs.append(multiprocessing.Process(target=_deleter, args=(coll, seconds, 500, deleted, q)))
        for p in procs:
            p.start()
        results = [q.get(timeout=seconds + 600) for _ in procs]
        for p in procs:
            p.join(60)
        by_kind = {}
        for r in results:
            by_kind.setdefault(r[0], []).append(r)
        summary = {k: [(r[1], r[2]) for r in v] for k, v in by_kind.items()}
        print(f"    (ops, errors) per worker: {summary}; max search latency "
              f"{max(r[4] for r in by_kind['search']) * 1000:.1f} ms", flush=True)
        problems = [p for r in results for p in r[3]]
        t.check("no worker saw an error or a malformed result", all(r[2] == 0 for r in results),
                "; ".join(problems[:4]))
        t.check("every worker made progress", all(r[1] > 0 for r in results), str(summary))
        nid = by_kind["insert"][0][4]
        gone = by_kind["delete"][0][4]
        live = np.array(sorted(set(range(CONC_INITIAL)) - set(gone)) + list(range(CONC_INITIAL, nid)),
                        dtype=np.uint64)
        c = Coll(coll)
        info = wait_repaired(c)
        t.eq("final count equals the workers' model", info["count"], len(live))
        t.check("after the workload: nothing unindexed, deleted_pending under 10%",
                info["unindexed"] == 0 and few_dead(info), str(info))
        queries = np.random.default_rng(6).normal(size=(20, CONC_DIM)).astype(np.float32)
        base = vecs[live.astype(np.int64)]
        ref, pos = truth(base, queries, "l2")
        bad = [qi for qi, (ids, _) in enumerate(c.search(queries, K, flags=SEARCH_EXACT))
               if not np.array_equal(np.sort(ids), np.sort(live[pos[qi]]))]
        t.check("exact search after the workload equals the reference", not bad, str(bad[:5]))
        rec = recall(c.search(queries, K, ef=64), live[pos])
        t.check("approximate search after the workload: recall@10 >= 0.9", rec >= 0.9, f"{rec:.3f}")
        c.close()
        sh(["rm", "-rf", coll])


BIG_INSERT = int(os.environ.get("VEXFS_HNSW_BIG_INSERT", "10000" if LONG else "1500"))


def _big_insert(coll, rows, started, out):
    vecs = np.random.default_rng(rows).normal(size=(rows, CONC_DIM)).astype(np.float32)
    ids = np.arange(CONC_INITIAL, CONC_INITIAL + rows, dtype=np.uint64)
    c = Coll(coll)
    started.set()
    t0 = time.perf_counter()
    try:
        c.insert(ids, vecs)
        out.put((time.perf_counter() - t0, None))
    except OSError as e:
        out.put((time.perf_counter() - t0, str(e)))
    c.close()


def search_during_insert(mnt, rows, want):
    """Searches while a `rows`-vector batch is linked: (searches that ended
    while the batch was still being linked, their hit counts, latencies in
    ms, the insert's duration and error, the final info)."""
    coll = f"{mnt}/hnsw_big"
    _, c = small_hnsw(coll)
    q = np.random.default_rng(8).normal(size=(1, CONC_DIM)).astype(np.float32)
    c.search(q, K)
    started, out = multiprocessing.Event(), multiprocessing.Queue()
    p = multiprocessing.Process(target=_big_insert, args=(coll, rows, started, out))
    p.start()
    started.wait(60)
    # The batch is stored (visible) before its linking starts.
    wait_linking(c, p.is_alive, every=0.01)
    lat, counts = [], []
    while p.is_alive() and len(lat) < want:
        t0 = time.perf_counter()
        res = c.search(q, K)
        took = time.perf_counter() - t0
        if c.info()["unindexed"] == 0:
            break
        lat.append(took * 1000)
        counts.append(len(res[0][0]))
    duration, err = out.get(timeout=3600)
    p.join()
    info = c.info()
    c.close()
    sh(["rm", "-rf", coll])
    return lat, counts, duration, err, info


def test_search_during_big_insert(t, mnt, want=20):
    """Searches while a large batch is linked into the graph must not wait
    for the batch: each ends while the linking goes on. The precondition
    (the linking lasts long enough for `want` searches) is retried with a
    larger batch on a fast machine."""
    with t.group(f"HNSW: searches are not blocked by a {BIG_INSERT}-vector insert"):
        for attempt, rows in enumerate((BIG_INSERT, 4 * BIG_INSERT, 16 * BIG_INSERT)):
            lat, counts, duration, err, info = search_during_insert(mnt, rows, want)
            if len(lat) >= want:
                break
            print(f"#   the {rows}-vector insert finished linking after {len(lat)} searches: retrying larger",
                  flush=True)
        if lat:
            print(f"#   insert of {rows}: {duration:.1f} s; {len(lat)} searches ended during its linking, "
                  f"latency p50 {np.median(lat):.1f} ms, max {max(lat):.1f} ms (TCG time)", flush=True)
        t.check("the big insert succeeded", err is None, str(err))
        t.check(f"{want} searches ended while the batch was still being linked (none waited for the batch)",
                len(lat) >= want, f"{len(lat)}")
        t.check("every search answered k hits", counts and all(n == K for n in counts))
        t.check("after the insert: all linked", info["count"] == CONC_INITIAL + rows and info["unindexed"] == 0,
                str(info))


# ----------------------------------------------------------------- errors

def create_in_scratch_dir(path, *args, **kw):
    """A raw CREATE on a new empty directory `path`, removed afterwards
    (whether or not the ioctl succeeds)."""
    fresh(path)
    os.mkdir(path)
    try:
        create_raw(path, *args, **kw)
    finally:
        sh(["rm", "-rf", path])


def test_errors(t, mnt):
    with t.group("HNSW ioctl errors and edge cases"):
        def try_create(*args, **kw):
            create_in_scratch_dir(f"{mnt}/bad", *args, **kw)

        for what, kw in (("M 1", {"m": 1}), ("M 128", {"m": 128}),
                         ("ef_construction 4097", {"ef_construction": 4097}),
                         ("nonzero reserved", {"reserved": (1, 0)}),
                         ("nonzero last reserved", {"reserved": (0, 1)})):
            t.raises(f"create HNSW with {what}: EINVAL", errno.EINVAL, try_create, 8, "l2", index=INDEX_HNSW, **kw)
        t.raises("create with index 2: EINVAL", errno.EINVAL, try_create, 8, "l2", index=2)
        t.raises("create flat with M 16: EINVAL", errno.EINVAL, try_create, 8, "l2", index=INDEX_FLAT, m=16)
        t.raises("create flat with ef_construction 100: EINVAL", errno.EINVAL, try_create, 8, "l2",
                 index=INDEX_FLAT, ef_construction=100)
        plain = f"{mnt}/bad"
        os.mkdir(plain)
        t.raises("a refused create (M 1) on a kept directory: EINVAL", errno.EINVAL, create_raw, plain, 8, "l2", index=INDEX_HNSW, m=1)
        t.check("a refused create leaves a plain directory", not _is_coll(plain))
        os.rmdir(plain)

        coll = f"{mnt}/hnsw_err"
        fresh(coll)
        os.mkdir(coll)
        create_raw(coll, 4, "l2", index=INDEX_HNSW, m=2, ef_construction=1)
        c = Coll(coll)
        info = c.info()
        t.eq("the smallest M and ef_construction are accepted", (info["index"], info["m"],
                                                                  info["ef_construction"]), (INDEX_HNSW, 2, 1))
        c.close()
        sh(["rm", "-rf", coll])
        os.mkdir(coll)
        create_raw(coll, 4, "l2", index=INDEX_HNSW, m=127, ef_construction=MAX_EF)
        c = Coll(coll)
        t.eq("the largest M and ef_construction are accepted", (c.info()["m"], c.info()["ef_construction"]),
             (127, MAX_EF))
        rng = np.random.default_rng(3)
        base = rng.normal(size=(5, 4)).astype(np.float32)
        c.insert(np.arange(5), base)
        q = rng.normal(size=(2, 4)).astype(np.float32)
        t.eq("k larger than count answers count hits", [len(r[0]) for r in c.search(q, K)], [5, 5])
        c.insert(np.arange(5, 300), rng.normal(size=(295, 4)))
        t.raises("ef 4097: EINVAL", errno.EINVAL, c.search, q, K, ef=MAX_EF + 1)
        t.check("ef 4096 is accepted", len(c.search(q, K, ef=MAX_EF)[0][0]) == K)
        t.raises("unknown search flags: EINVAL", errno.EINVAL, c.search, q, K, flags=8)
        t.raises("an under_fd without SEARCH_UNDER: EINVAL", errno.EINVAL, c.search, q, K, under_fd=1)
        t.eq("ef below k still answers k hits", [len(r[0]) for r in c.search(q, 50, ef=1)], [50, 50])
        before = c.info()
        t.raises("delete with a missing id: ENOENT", errno.ENOENT, c.delete, [3, 4, 99999])
        after = c.info()
        t.check("a refused delete deletes nothing",
                (after["count"], after["deleted_pending"]) == (before["count"], before["deleted_pending"])
                and [int(r[0][0]) for r in c.search(base[3:5], 1, flags=SEARCH_EXACT)] == [3, 4],
                f"{before} -> {after}")
        c.close()
        sh(["rm", "-rf", coll])


def _is_coll(path):
    try:
        c = Coll(path)
    except OSError:
        return False
    try:
        c.info()
        return True
    except OSError:
        return False
    finally:
        c.close()


def test_files(t, mnt):
    with t.group("HNSW: files carry vectors"):
        coll = f"{mnt}/hnsw_docs"
        fresh(coll)
        sh(["vexctl", "create", coll, "--dim", "3", "--metric", "l2", "--index", "hnsw"])
        c = Coll(coll)
        rng = np.random.default_rng(4)
        # Far from the files, with ids apart from inode numbers (a mount
        # numbers its inodes from 1).
        c.insert(np.arange(200) + 1000000, rng.uniform(-1, 1, size=(200, 3)) + 10)
        for name, vec in (("a.txt", "1,0,0"), ("b.txt", "0,1,0")):
            with open(f"{coll}/{name}", "w") as f:
                f.write(name)
            r = vexctl("attach", f"{coll}/{name}", "--vector", vec)
            t.check(f"vexctl attach {name} in an HNSW collection", r.returncode == 0, r.stderr.strip())
        info = c.info()
        t.check("info counts the file vectors", info["file_vectors"] == 2 and info["count"] == 202, str(info))
        for mode in ((), ("--exact",)):
            r = vexctl("search", coll, "--vector", "1,0.1,0", "-k", "2", "--json", *mode)
            res = json.loads(r.stdout.splitlines()[0])["results"] if r.returncode == 0 else []
            t.eq(f"search {' '.join(mode) or '(approximate)'} names the files",
                 [h["name"] for h in res], ["a.txt", "b.txt"])
        ino = os.stat(f"{coll}/a.txt").st_ino
        hits = c.search(np.array([[1, 0, 0]]), 1, with_flags=True)[0]
        t.check("the hit is flagged as a file's and its id is the inode",
                int(hits[0][0]) == ino and hits[2][0] & HIT_FILE, str(hits))
        os.unlink(f"{coll}/a.txt")
        info = c.info()
        t.check("unlink removes the file's vector", info["file_vectors"] == 1 and info["count"] == 201, str(info))
        for flags in (0, SEARCH_EXACT):
            ids = c.search(np.array([[1, 0, 0]]), 5, flags=flags)[0][0]
            t.check(f"the unlinked file's vector is not found (flags {flags})", ino not in ids.tolist(),
                    str(ids))
        c.close()
        sh(["rm", "-rf", coll])
        t.check("rm -rf removes an HNSW collection", not os.path.exists(coll))


def test_vexctl_messages(t, mnt):
    with t.group("HNSW: vexctl messages"):
        def fails(label, args, *wants):
            r = vexctl(*args)
            err = r.stderr.strip()
            t.check(label, r.returncode != 0 and all(w in err for w in wants), err or r.stdout.strip())

        c = f"{mnt}/msg"
        fails("--m 1 is out of range", ("create", c, "--dim", "4", "--metric", "l2", "--index", "hnsw",
                                        "--m", "1"), "--m 1 is out of range", "2 to 127")
        fails("--m 128 is out of range", ("create", c, "--dim", "4", "--metric", "l2", "--index", "hnsw",
                                          "--m", "128"), "--m 128 is out of range")
        fails("--ef-construction 4097 is out of range",
              ("create", c, "--dim", "4", "--metric", "l2", "--index", "hnsw", "--ef-construction", "4097"),
              "--ef-construction 4097 is out of range", "1 to 4096")
        fails("--m without --index hnsw", ("create", c, "--dim", "4", "--metric", "l2", "--m", "16"),
              "--m applies to HNSW collections only", "--index hnsw")
        t.check("a refused create leaves nothing behind", not os.path.exists(c))
        sh(["vexctl", "create", c, "--dim", "4", "--metric", "l2"])
        sh(["vexctl", "insert", c, "--npy", _npy(np.eye(4))])
        fails("--ef on a flat collection: it has no index", ("search", c, "--vector", "1,0,0,0", "-k", "2",
                                                             "--ef", "32"), "no index", "--ef")
        r = vexctl("search", c, "--vector", "1,0,0,0", "-k", "2", "--exact")
        t.check("--exact on a flat collection is fine", r.returncode == 0, r.stderr.strip())
        fails("--ef and --exact conflict", ("search", c, "--vector", "1,0,0,0", "-k", "2", "--ef", "32",
                                            "--exact"), "cannot be used with")
        sh(["rm", "-rf", c])
        sh(["vexctl", "create", c, "--dim", "4", "--metric", "l2", "--index", "hnsw"])
        sh(["vexctl", "insert", c, "--npy", _npy(np.eye(4))])
        fails("--ef 4097 is out of range", ("search", c, "--vector", "1,0,0,0", "-k", "2", "--ef", "4097"),
              "--ef 4097 is out of range")
        r = vexctl("search", c, "--vector", "1,0,0,0", "-k", "2", "--ef", "1", "--json")
        t.check("--ef below k answers k hits", r.returncode == 0
                and len(json.loads(r.stdout)["results"]) == 2, (r.stdout + r.stderr).strip())
        info = vexctl_json("info", c)
        t.check("info --json has the HNSW fields",
                all(k in info for k in ("m", "ef_construction", "quantize", "index_bytes", "deleted_pending",
                                        "unindexed"))
                and info["index"] == "hnsw" and info["quantize"] == "none", str(info))
        sh(["rm", "-rf", c])


# -------------------------------------------------------------------- SQ8

SQ8_SMALL_N = 1000      # rows of the L2 and dot checks
SQ8_RANGE_N = 2000      # rows in each of the two ranges of the quantizer check
SQ8_RANGE_DIM = 8
SQ8_FAR_ID = 1_000_000  # ids of the far rows


def linked(c, timeout=900):
    """The collection's info once every stored row is linked into the graph
    (the module's worker links what an insert left), or the last one."""
    return eventually(c.info, lambda info: info["unindexed"] == 0, timeout)


def check_exact_distances(t, label, res, exact, ref, row_of, atol):
    """Every hit of `res` carries its id's exact distance: the one `exact`
    (an exact search of the same queries) reports for that id where both
    found it, and the float64 distance `ref[query][row]` for every hit,
    each within 1e-5 relative plus `atol`, the float32 error bound of a
    kernel distance (f32_tolerance: the exact scan's blocked kernels sum
    in another order than a walk's). An SQ8 code's error is far larger:
    this is what shows the walk's candidates were re-ranked in float32."""
    vs_exact, vs_ref, common = [], [], 0
    for qi, ((ids, dist), (eids, edist)) in enumerate(zip(res, exact)):
        by_id = dict(zip(eids.tolist(), edist.tolist()))
        for i, d in zip(ids.tolist(), dist.tolist()):
            if i in by_id:
                common += 1
                if abs(d - by_id[i]) > 1e-5 * abs(by_id[i]) + atol:
                    vs_exact.append((qi, i, d, by_id[i]))
            want = float(ref[qi][row_of[i]])
            if abs(d - want) > 1e-5 * abs(want) + atol:
                vs_ref.append((qi, i, d, want))
    t.check(f"{label}: each distance equals the exact search's for the same id ({common} hits in both)",
            common > 0 and not vs_exact, str(vs_exact[:3]))
    t.check(f"{label}: each distance is its id's float64 distance (candidates re-ranked in float32)",
            not vs_ref, str(vs_ref[:3]))


def _sq8_create(t, mnt):
    """vexctl's --quantize, info, and the ioctl's refusals."""
    def try_create(*args, **kw):
        create_in_scratch_dir(f"{mnt}/sq8_bad", *args, **kw)

    coll = f"{mnt}/sq8_cli"
    fresh(coll)
    r = vexctl("create", coll, "--dim", "8", "--metric", "l2", "--index", "hnsw", "--quantize", "sq8")
    t.check("vexctl create --index hnsw --quantize sq8", r.returncode == 0 and
            "index hnsw, M 16, ef_construction 200, quantize sq8" in r.stdout, (r.stdout + r.stderr).strip())
    info = vexctl_json("info", coll)
    t.eq("vexctl info --json: index hnsw, quantize sq8", (info["index"], info["quantize"]), ("hnsw", "sq8"))
    table = vexctl("info", coll).stdout
    t.check("vexctl info (table) shows quantize sq8",
            any([w.strip() for w in line.split("│")[1:3]] == ["quantize", "sq8"] for line in table.splitlines()),
            table)
    c = Coll(coll)
    t.eq("INFO ioctl: quantize 1 (QUANTIZE_SQ8)", c.info()["quantize"], QUANTIZE_SQ8)
    # A handful of rows: the quantizer is learned from the first ones linked.
    rng = np.random.default_rng(31)
    few = rng.normal(size=(5, 8)).astype(np.float32)
    c.insert(np.arange(5), few)
    q = rng.normal(size=(3, 8)).astype(np.float32)
    ref = reference(few, q, "l2")
    got = c.search(q, K)
    t.check("5 rows: k 10 answers all 5, nearest first, by their float64 distances",
            all(len(ids) == 5 and np.array_equal(ids, np.argsort(ref[qi], kind="stable"))
                and np.allclose(dist, ref[qi][ids.astype(np.int64)], rtol=1e-5, atol=1e-6)
                for qi, (ids, dist) in enumerate(got)), str(got[:1]))
    c.close()
    sh(["rm", "-rf", coll])

    r = vexctl("create", coll, "--dim", "8", "--metric", "l2", "--index", "hnsw")
    t.check("vexctl create --index hnsw without --quantize: none",
            r.returncode == 0 and vexctl_json("info", coll)["quantize"] == "none", r.stderr.strip())
    sh(["rm", "-rf", coll])
    for args in ((), ("--index", "flat")):
        r = vexctl("create", coll, "--dim", "8", "--metric", "l2", *args, "--quantize", "sq8")
        err = r.stderr.strip()
        t.check(f"vexctl create {' '.join(args) or '(flat by default)'} --quantize sq8: refused with a "
                f"clear message", r.returncode != 0 and
                "--quantize sq8 applies to HNSW collections only" in err and "--index hnsw" in err,
                err or r.stdout.strip())
        t.check("the refused create leaves nothing behind", not os.path.exists(coll))
    r = vexctl("create", coll, "--dim", "8", "--metric", "l2", "--quantize", "none")
    t.check("vexctl create (flat) --quantize none is accepted: quantize none",
            r.returncode == 0 and vexctl_json("info", coll)["quantize"] == "none", r.stderr.strip())
    sh(["rm", "-rf", coll])

    t.raises("raw CREATE flat with quantize sq8: EINVAL", errno.EINVAL, try_create, 8, "l2",
             index=INDEX_FLAT, quantize=QUANTIZE_SQ8)
    t.raises("raw CREATE HNSW with quantize 2: EINVAL", errno.EINVAL, try_create, 8, "l2",
             index=INDEX_HNSW, quantize=2)
    t.raises("raw CREATE HNSW with quantize 0xffffffff: EINVAL", errno.EINVAL, try_create, 8, "l2",
             index=INDEX_HNSW, quantize=0xFFFFFFFF)
    os.mkdir(coll)
    create_raw(coll, 8, "cosine", index=INDEX_HNSW, quantize=QUANTIZE_SQ8)
    c = Coll(coll)
    t.eq("raw CREATE HNSW with quantize sq8: INFO's quantize", c.info()["quantize"], QUANTIZE_SQ8)
    c.close()
    sh(["rm", "-rf", coll])
    os.mkdir(coll)
    create_raw(coll, 8, "l2")
    c = Coll(coll)
    t.eq("a flat collection's INFO: quantize 0", c.info()["quantize"], QUANTIZE_NONE)
    c.close()
    sh(["rm", "-rf", coll])


def _sq8_glove(t, mnt):
    """The GloVe set of test_glove_recall in an sq8 collection: recall,
    exact distances, then deletes and replacements."""
    glove = np.load(GLOVE, mmap_mode="r")
    os.makedirs(TMP, exist_ok=True)
    coll = f"{mnt}/sq8_glove"
    fresh(coll)
    ids = np.arange(GLOVE_N, dtype=np.uint64)
    base = np.ascontiguousarray(glove[:GLOVE_N], dtype=np.float32)
    queries = np.ascontiguousarray(glove[GLOVE_N:GLOVE_N + GLOVE_NQ], dtype=np.float32)
    qfile = f"{TMP}/sq8_queries.npy"
    save_npy(qfile, queries)
    save_npy(f"{TMP}/sq8_base.npy", base)
    sh(["vexctl", "create", coll, "--dim", "50", "--metric", "cosine", "--index", "hnsw", "--quantize", "sq8"])
    t0 = time.monotonic()
    r = vexctl("insert", coll, "--npy", f"{TMP}/sq8_base.npy", "--batch", str(GLOVE_N))
    print(f"    sq8 build: {GLOVE_N} vectors in one insert ioctl: {time.monotonic() - t0:.1f} s in the guest",
          flush=True)
    if not t.check(f"vexctl insert of {GLOVE_N} GloVe vectors into an sq8 collection", r.returncode == 0,
                   r.stderr.strip()):
        return
    c = Coll(coll)
    try:
        info = linked(c)
        t.eq("info: count, unindexed", (info["count"], info["unindexed"]), (GLOVE_N, 0))
        print(f"    sq8 info: {info}", flush=True)
        ref, pos = truth(base, queries, "cosine")
        res = vsearch(coll, qfile, K)
        rec = recall(res, ids[pos])
        print(f"    sq8 recall@{K} at the default ef: {rec:.4f}", flush=True)
        t.check(f"recall@{K} at the default ef >= {RECALL_MIN} against float64 truth", rec >= RECALL_MIN,
                f"{rec:.4f}")
        t.check("hits are sorted by distance", all(len(i) == K and np.all(np.diff(d) >= 0) for i, d in res))
        check_exact_distances(t, "GloVe cosine", res, vsearch(coll, qfile, K, "--exact"), ref,
                              {int(i): n for n, i in enumerate(ids)}, f32_tolerance(base, queries, "cosine"))

        # Delete half, replace a tenth of the rest with other GloVe rows.
        rng = np.random.default_rng(17)
        gone = rng.choice(GLOVE_N, size=GLOVE_N // 2, replace=False)
        c.delete(ids[gone])
        keep = np.setdiff1d(np.arange(GLOVE_N), gone)
        live_ids, live = ids[keep], base[keep]
        upd = rng.choice(len(keep), size=len(keep) // 10, replace=False)
        at = max(30000, GLOVE_N + GLOVE_NQ)
        new_rows = np.ascontiguousarray(glove[at:at + len(upd)], dtype=np.float32)
        c.insert(live_ids[upd], new_rows)
        live[upd] = new_rows
        info = wait_repaired(c)
        print(f"    sq8 info after deleting {len(gone)} and replacing {len(upd)}: {info}", flush=True)
        t.eq("count after deleting half and replacing a tenth of the rest", info["count"], len(live_ids))
        t.check("repaired: deleted_pending under 10% of the rows, nothing unindexed",
                few_dead(info) and info["unindexed"] == 0, str(info))
        ref, pos = truth(live, queries, "cosine")
        res = vsearch(coll, qfile, K)
        rec = recall(res, live_ids[pos])
        print(f"    sq8 recall@{K} over the live set: {rec:.4f}", flush=True)
        t.check(f"recall@{K} >= {RECALL_MIN} over the rows left after the deletes and replacements",
                rec >= RECALL_MIN, f"{rec:.4f}")
        deleted = set(ids[gone].tolist())
        found_deleted = {int(i) for hits, _ in res for i in hits} & deleted
        t.check("no deleted id is returned", not found_deleted, str(sorted(found_deleted)[:5]))
        check_exact_distances(t, "after the churn", res, vsearch(coll, qfile, K, "--exact"), ref,
                              {int(i): n for n, i in enumerate(live_ids)}, f32_tolerance(live, queries, "cosine"))
    finally:
        c.close()
        sh(["rm", "-rf", coll])


def _sq8_metrics(t, mnt):
    """L2 and dot on SQ8_SMALL_N GloVe rows; an L2 collection without
    quantization beside the sq8 one shows what the codes cost."""
    glove = np.load(GLOVE, mmap_mode="r")
    os.makedirs(TMP, exist_ok=True)
    n = SQ8_SMALL_N
    base = np.ascontiguousarray(glove[:n], dtype=np.float32)
    queries = np.ascontiguousarray(glove[GLOVE_N:GLOVE_N + GLOVE_NQ], dtype=np.float32)
    qfile = f"{TMP}/sq8_queries.npy"
    save_npy(qfile, queries)
    save_npy(f"{TMP}/sq8_small.npy", base)
    infos = {}
    for metric, quantize in (("l2", "none"), ("l2", "sq8"), ("dot", "sq8")):
        coll = f"{mnt}/sq8_{metric}_{quantize}"
        fresh(coll)
        sh(["vexctl", "create", coll, "--dim", "50", "--metric", metric, "--index", "hnsw",
            "--quantize", quantize])
        r = vexctl("insert", coll, "--npy", f"{TMP}/sq8_small.npy", "--batch", str(n))
        if not t.check(f"{metric} {quantize}: vexctl insert of {n} rows", r.returncode == 0, r.stderr.strip()):
            continue
        c = Coll(coll)
        info = infos[(metric, quantize)] = linked(c)
        c.close()
        ref, pos = truth(base, queries, metric)
        res = vsearch(coll, qfile, K)
        rec = recall(res, pos.astype(np.uint64))
        print(f"    {metric}, quantize {quantize}: recall@{K} {rec:.4f} at the default ef; index_bytes "
              f"{info['index_bytes']}, memory_bytes {info['memory']}", flush=True)
        if quantize == "sq8":
            t.eq(f"{metric} sq8: vexctl info says quantize sq8", vexctl_json("info", coll)["quantize"], "sq8")
            t.check(f"{metric} sq8: recall@{K} at the default ef >= {RECALL_MIN}", rec >= RECALL_MIN, f"{rec:.4f}")
            check_exact_distances(t, f"{metric} sq8", res, vsearch(coll, qfile, K, "--exact"), ref,
                                  {i: i for i in range(n)}, f32_tolerance(base, queries, metric))
        sh(["rm", "-rf", coll])
    none, sq8 = infos.get(("l2", "none")), infos.get(("l2", "sq8"))
    if none and sq8:
        t.check(f"index_bytes: sq8 exceeds none by at least count x dim ({n} x 50 bytes of codes)",
                sq8["index_bytes"] - none["index_bytes"] >= n * 50,
                f"none {none['index_bytes']}, sq8 {sq8['index_bytes']}")
        t.check("memory_bytes counts the codes too",
                sq8["memory"] - none["memory"] >= n * 50, f"none {none['memory']}, sq8 {sq8['memory']}")


def new_sq8_l2(coll, dim, ef_construction):
    """A new L2 HNSW collection with --quantize sq8 at `coll`, opened."""
    fresh(coll)
    sh(["vexctl", "create", coll, "--dim", str(dim), "--metric", "l2", "--index", "hnsw", "--quantize", "sq8",
        "--ef-construction", str(ef_construction)])
    return Coll(coll)


def _sq8_range(t, mnt):
    """Rows outside the range the quantizer learned: it must follow them
    (clamped to the old range, every far row would get the same codes and
    the walk could not tell them apart), and the rows it learned from must
    still be found. (A range that grows by orders of magnitude leaves the
    first rows a few codes wide, as any 8-bit scalar quantizer would.)"""
    n, dim = SQ8_RANGE_N, SQ8_RANGE_DIM
    rng = np.random.default_rng(23)
    small = rng.uniform(-1, 1, size=(n, dim)).astype(np.float32)
    far = rng.uniform(2, 4, size=(n, dim)).astype(np.float32)
    coll = f"{mnt}/sq8_range"
    c = new_sq8_l2(coll, dim, 100)
    try:
        c.insert(np.arange(n), small)
        info = linked(c)
        t.eq(f"{n} rows in [-1, 1] linked", (info["count"], info["unindexed"]), (n, 0))
        c.insert(np.arange(SQ8_FAR_ID, SQ8_FAR_ID + n), far)
        info = linked(c)
        t.eq(f"then {n} rows in [2, 4] linked", (info["count"], info["unindexed"]), (2 * n, 0))
        ids = np.concatenate([np.arange(n), np.arange(SQ8_FAR_ID, SQ8_FAR_ID + n)]).astype(np.uint64)
        rows = np.concatenate([small, far])
        row_of = {int(i): r for r, i in enumerate(ids)}
        # Rows drawn across each batch: with codes that could not tell the
        # far rows apart, the walk would keep those first in the graph's
        # order, and queries near the first rows of a batch would pass.
        pick = rng.choice(n, size=100, replace=False)
        for label, near, q in (("near the far rows", far, far[pick] + rng.normal(0, 0.01, size=(100, dim))),
                               ("near the first rows", small,
                                small[pick] + rng.normal(0, 0.01, size=(100, dim)))):
            q = q.astype(np.float32)
            ref, pos = truth(rows, q, "l2")
            res = c.search(q, K)
            rec = recall(res, ids[pos])
            wide = recall(c.search(q, K, ef=512), ids[pos])
            print(f"    queries {label}: recall@{K} {rec:.4f} at the default ef, {wide:.4f} at ef 512", flush=True)
            t.check(f"queries {label}: recall@{K} >= {RECALL_MIN} against float64 over all {2 * n} rows",
                    rec >= RECALL_MIN, f"{rec:.4f}")
            # The error bound of the rows the hits should be (a hit among
            # the others is far, and its distance large: the relative
            # part covers it).
            check_exact_distances(t, f"queries {label}", res, c.search(q, K, flags=SEARCH_EXACT), ref, row_of,
                                  f32_tolerance(near, q, "l2"))
    finally:
        c.close()
        sh(["rm", "-rf", coll])


def _sq8_extreme(t, mnt):
    """A few rows with values near the end of float32 (finite, so the
    ioctl takes them) among ordinary ones: the quantizer is trained on
    quantiles, so they get clamped codes instead of coarsening everyone's;
    linking ends (retraining cannot run away), the default beam finds the
    true neighbours of ordinary queries, and hits keep exact distances.
    Then as many far rows as the tails hold: the walk's order coarsens,
    and a beam as wide as the collection still finds every neighbour."""
    dim, n = 8, 1000
    rng = np.random.default_rng(29)
    normal = rng.uniform(-1, 1, size=(2 * n, dim)).astype(np.float32)
    ids = np.arange(2 * n).astype(np.uint64)
    row_of = {int(i): r for r, i in enumerate(ids)}
    q = (normal[rng.choice(2 * n, size=50, replace=False)]
         + rng.normal(0, 0.01, size=(50, dim))).astype(np.float32)
    ref, pos = truth(normal, q, "l2")
    for extremes, ef in ((4, None), (200, 2 * n + 200)):
        extreme = np.zeros((extremes, dim), dtype=np.float32)
        extreme[:, dim - 1] = np.where(np.arange(extremes) % 2 == 0, 1.6e38, -1.6e38)
        coll = f"{mnt}/sq8_extreme"
        c = new_sq8_l2(coll, dim, 64)
        label = f"{extremes} rows at +-1.6e38"
        try:
            c.insert(np.arange(n), normal[:n])
            linked(c)
            c.insert(np.arange(SQ8_FAR_ID, SQ8_FAR_ID + extremes), extreme)
            c.insert(np.arange(n, 2 * n), normal[n:])
            info = linked(c)
            t.eq(f"{label}: ordinary, extreme, then ordinary rows all stored and linked",
                 (info["count"], info["unindexed"]), (2 * n + extremes, 0))
            res = c.search(q, K) if ef is None else c.search(q, K, ef=ef)
            rec = recall(res, ids[pos])
            print(f"    {label}: ordinary queries' recall@{K} {rec:.4f} at ef {ef or 'default'}", flush=True)
            t.check(f"{label}: ordinary queries at ef {ef or 'default'}: recall@{K} >= {RECALL_MIN}",
                    rec >= RECALL_MIN, f"{rec:.4f}")
            check_exact_distances(t, f"{label}: ordinary queries", res, c.search(q, K, flags=SEARCH_EXACT), ref,
                                  row_of, f32_tolerance(normal, q, "l2"))
        finally:
            c.close()
            sh(["rm", "-rf", coll])


def test_sq8(t, mnt):
    """HNSW collections created with --quantize sq8 (the walk on 8-bit
    codes, its candidates re-ranked in float32)."""
    with t.group("HNSW --quantize sq8: create, info, refusals"):
        _sq8_create(t, mnt)
    with t.group(f"HNSW sq8 GloVe {GLOVE_N} x 50 cosine: recall@{K}, exact distances, deletes, replacements"):
        _sq8_glove(t, mnt)
    with t.group(f"HNSW sq8: L2 and dot on {SQ8_SMALL_N} rows; index_bytes counts the codes"):
        _sq8_metrics(t, mnt)
    with t.group("HNSW sq8: rows far outside the quantizer's range"):
        _sq8_range(t, mnt)
    with t.group("HNSW sq8: rows with values near the end of float32"):
        _sq8_extreme(t, mnt)


def _npy(arr):
    os.makedirs(TMP, exist_ok=True)
    path = f"{TMP}/small.npy"
    save_npy(path, arr)
    return path


def test_all(t, mnt):
    st = test_glove_recall(t, mnt)
    test_glove_churn(t, mnt, st)
    test_glove_exact(t, mnt, st)
    test_errors(t, mnt)
    test_files(t, mnt)
    test_vexctl_messages(t, mnt)
    test_sq8(t, mnt)
    test_concurrency(t, mnt)
    test_search_during_big_insert(t, mnt)
    run(["rm", "-rf", TMP])
