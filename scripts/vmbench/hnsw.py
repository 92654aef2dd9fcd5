#!/usr/bin/env python3
"""In-VM benchmark: VexFS HNSW collections next to hnswlib in the same guest.

Builds an HNSW collection in the kernel on a GloVe subset (50-d, cosine;
N vectors, default 5,000 so that it ends in a few minutes under TCG, where
the kernel built 20,000 at 28 vectors/s; `HNSW_BENCH_N` changes it) with
M 16 and ef_construction 200, once with `--quantize none` and once with
`--quantize sq8`, and hnswlib's index with the same parameters on one
thread. For ef in 16, 32, 64, 128, 256 it measures recall@10 against a
float64 brute force and queries/s, all queries in one search: the kernel's
through `vexctl search --ef N` (its output gives the recall; the rate is the
time of one SEARCH ioctl with the same request, made by this script, and the
time of the whole vexctl process is shown too) and through the Python
package (`vexfs.Collection.search`, whose ids must equal the ioctl's). Under TCG the CPU is
emulated: compare the two columns, not the absolute rates. Prints a table
and writes bench-results/hnsw-vm.json.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vmtest"))
from abi import SEARCH_EXACT  # noqa: E402
from vectors import Coll, reference, save_npy  # noqa: E402
from results import write_result  # noqa: E402

GLOVE = os.path.join(os.environ["VEXFS_CACHE"], "data", "glove_6B_50d.npy")
MNT = "/mnt/vexbench"
N = int(os.environ.get("HNSW_BENCH_N", "5000"))
NQ = int(os.environ.get("HNSW_BENCH_NQ", "500"))
K, M, EF_CONSTRUCTION = 10, 16, 200
EFS = (16, 32, 64, 128, 256)
QUANTIZE = ("none", "sq8")
TMP = "/tmp/hnswbench"


def sh(*cmd):
    subprocess.run(cmd, check=True)


def recall(got, want):
    return float(np.mean([len(set(map(int, g)) & set(map(int, w))) / K for g, w in zip(got, want)]))


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    r = fn(*args, **kwargs)
    return r, time.perf_counter() - t0


def vexctl_search(coll, qfile, *extra):
    t0 = time.perf_counter()
    r = subprocess.run(["vexctl", "search", coll, "--npy", qfile, "-k", str(K), "--json", *extra],
                       capture_output=True, text=True, check=True)
    took = time.perf_counter() - t0
    ids = [[h["id"] for h in json.loads(line)["results"]] for line in r.stdout.splitlines()]
    return ids, took


def bench_collection(coll, quantize, base, queries, qfile, want):
    """Builds one HNSW collection (`--quantize` none or sq8) and measures its
    searches."""
    import vexfs

    sh("vexctl", "create", coll, "--dim", "50", "--metric", "cosine", "--index", "hnsw",
       "--m", str(M), "--ef-construction", str(EF_CONSTRUCTION), "--quantize", quantize)
    c = Coll(coll)
    py = vexfs.Collection(coll)
    try:
        _, build = timed(c.insert, np.arange(N, dtype=np.uint64), base)
        info = c.info()
        rows = []
        for ef in EFS:
            ids, t_proc = vexctl_search(coll, qfile, "--ef", str(ef))
            raw, t_ioctl = timed(c.search, queries, K, ef=ef)
            (py_ids, _), t_py = timed(py.search, queries, K, ef, False)
            same = all(list(map(int, r[0])) == i for r, i in zip(raw, ids))
            py_same = all(list(map(int, p)) == i for p, i in zip(py_ids, ids))
            rows.append({"ef": ef, "recall": recall(ids, want), "qps_ioctl": NQ / t_ioctl,
                         "qps_vexctl_process": NQ / t_proc, "qps_python": NQ / t_py, "ioctl_s": t_ioctl,
                         "vexctl_s": t_proc, "python_s": t_py, "ioctl_equals_vexctl": same,
                         "python_equals_vexctl": py_same})
        ids, t_proc = vexctl_search(coll, qfile, "--exact")
        _, t_ioctl = timed(c.search, queries, K, flags=SEARCH_EXACT)
        exact = {"recall": recall(ids, want), "qps_ioctl": NQ / t_ioctl, "qps_vexctl_process": NQ / t_proc}
    finally:
        c.close()
        py.close()
    return {"quantize": quantize, "build_s": build, "info": info, "search": rows, "exact": exact}


def mounted(fn, *params):
    """Runs `fn()` with the module loaded (with `params`) and mounted."""
    sh("insmod", os.environ["VEXFS_KO"], *params)
    os.makedirs(MNT, exist_ok=True)
    sh("mount", "-t", "vexfs", "none", MNT)
    try:
        return fn()
    finally:
        subprocess.run(["umount", MNT])
        subprocess.run(["rmmod", "vexfs"])


def bench_kernel(base, queries, qfile, want):
    """Both `--quantize` options, one collection each, in one mount."""
    return mounted(lambda: [bench_collection(f"{MNT}/glove-{q}", q, base, queries, qfile, want)
                            for q in QUANTIZE])


def bench_one_cpu_link(base, queries, want):
    """The same insert with the module loaded with `max_search_cpus=1`:
    linked on one CPU, where the default links a large batch on all the
    guest's CPUs (planned in rounds)."""
    def build():
        coll = f"{MNT}/glove-1cpu"
        sh("vexctl", "create", coll, "--dim", "50", "--metric", "cosine", "--index", "hnsw",
           "--m", str(M), "--ef-construction", str(EF_CONSTRUCTION))
        c = Coll(coll)
        try:
            _, took = timed(c.insert, np.arange(N, dtype=np.uint64), base)
            ids = [list(map(int, r[0])) for r in c.search(queries, K, ef=64)]
            return {"build_s": took, "recall_ef64": recall(ids, want)}
        finally:
            c.close()
    return mounted(build, "max_search_cpus=1")


# The venv's hnswlib is built with -march=native for the host; scripts/setup
# builds this copy for the guest's CPU level (x86-64-v3).
sys.path.insert(0, os.path.join(os.environ["VEXFS_CACHE"], "py-guest"))


def bench_hnswlib(base, queries, want):
    try:
        import hnswlib
    except ImportError as e:
        return {"error": f"hnswlib not importable: {e}"}
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=N, M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    index.set_num_threads(1)
    _, build = timed(index.add_items, base, np.arange(N), num_threads=1)
    rows = []
    for ef in EFS:
        index.set_ef(ef)
        (labels, _), t = timed(index.knn_query, queries, k=K, num_threads=1)
        rows.append({"ef": ef, "recall": recall(labels, want), "qps": NQ / t, "s": t})
    return {"build_s": build, "search": rows, "version": getattr(hnswlib, "__version__", "?")}


def main():
    glove = np.load(GLOVE, mmap_mode="r")
    base = np.ascontiguousarray(glove[:N], dtype=np.float32)
    queries = np.ascontiguousarray(glove[N:N + NQ], dtype=np.float32)
    ref = reference(base, queries, "cosine")
    want = np.argsort(ref, axis=1, kind="stable")[:, :K]
    os.makedirs(TMP, exist_ok=True)
    qfile = f"{TMP}/queries.npy"
    save_npy(qfile, queries)

    kernels = bench_kernel(base, queries, qfile, want)
    one_cpu = bench_one_cpu_link(base, queries, want)
    lib = bench_hnswlib(base, queries, want)

    print(f"\nGloVe {N} x 50, cosine, M {M}, ef_construction {EF_CONSTRUCTION}, {NQ} queries in one "
          f"search, k = {K}, in one guest (accelerator: TCG unless stated)")
    lb = lib.get("build_s")
    lib_rows = {r["ef"]: r for r in lib.get("search", [])}
    for kernel in kernels:
        q = kernel["quantize"]
        print(f"\n--quantize {q}: build: vexfs (kernel, one insert ioctl) {kernel['build_s']:.1f} s; "
              "hnswlib (1 thread) "
              + (f"{lb:.1f} s; ratio vexfs/hnswlib {kernel['build_s'] / lb:.2f}" if lb else lib.get("error", "")))
        info = kernel["info"]
        print(f"vexfs graph{' and codes' if q == 'sq8' else ''}: {info['index_bytes']} bytes of "
              f"{info['memory']} ({info['memory'] / N:.0f} bytes per vector)")
        print(f"{'ef':>5} {'vexfs recall':>13} {'vexfs q/s ioctl':>16} {'q/s vexctl proc':>16} {'q/s Python':>11} "
              f"{'hnswlib recall':>15} {'hnswlib q/s':>12} {'q/s ratio':>10}")
        for r in kernel["search"]:
            h = lib_rows.get(r["ef"])
            hr = f"{h['recall']:>15.4f} {h['qps']:>12.0f} {r['qps_ioctl'] / h['qps']:>10.2f}" if h else ""
            print(f"{r['ef']:>5} {r['recall']:>13.4f} {r['qps_ioctl']:>16.0f} {r['qps_vexctl_process']:>16.0f} "
                  f"{r['qps_python']:>11.0f} {hr}")
        e = kernel["exact"]
        print(f"{'exact':>5} {e['recall']:>13.4f} {e['qps_ioctl']:>16.0f} {e['qps_vexctl_process']:>16.0f}")
        if not all(r["ioctl_equals_vexctl"] for r in kernel["search"]):
            print("note: the timed ioctl's ids differ from vexctl's for some ef")
        if not all(r["python_equals_vexctl"] for r in kernel["search"]):
            print("note: the Python package's ids differ from vexctl's for some ef")
    two = kernels[0]
    ef64 = next(r["recall"] for r in two["search"] if r["ef"] == 64)
    print(f"\nlinking the {N}-row insert: {two['build_s']:.1f} s on the guest's CPUs (max_search_cpus=4, "
          f"recall@10 {ef64:.4f} at ef 64), {one_cpu['build_s']:.1f} s on one (max_search_cpus=1, recall@10 "
          f"{one_cpu['recall_ef64']:.4f}): {one_cpu['build_s'] / two['build_s']:.2f}x")
    result = {
        "dataset": "glove-6B-50d", "n": N, "dim": 50, "metric": "cosine", "k": K, "queries": NQ,
        "m": M, "ef_construction": EF_CONSTRUCTION, "vexfs": kernels, "vexfs_one_cpu_link": one_cpu,
        "hnswlib": lib,
        "note": "in-guest times under an emulated CPU (TCG) unless stated: compare vexfs with hnswlib; "
                "qps_ioctl times one SEARCH ioctl of all queries, qps_vexctl_process the whole "
                "`vexctl search --json` process (loading the .npy, printing JSON)",
    }
    write_result("hnsw-vm.json", result)


if __name__ == "__main__":
    main()
