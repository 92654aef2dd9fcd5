#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""hnswlib side of the native HNSW benchmark (run by vexfs-hnsw-bench).

Builds an hnswlib index (space 'cosine', M 16, ef_construction 200, one
thread) on the base rows of the GloVe .npy and searches the query rows for
the 10 nearest at each ef; ROWS is a file of little-endian uint32 row
numbers, the base rows then the NQ query rows (the split is made by the
Rust side). Queries are answered one at a time on one thread, timed two
ways, best of REPEATS each: `knn_query` of the whole query matrix with
num_threads=1 (a C++ loop over the queries) and one `knn_query` call per
query; `qps` is the better of the two. Prints one JSON object on stdout and
writes the labels (uint32, nq x 10 per ef, in ef order) to LABELS.

usage: hnswlib_bench.py DATA ROWS NQ EF,EF,... LABELS REPEATS
"""
import json
import os
import resource
import sys
import tempfile
import time

import hnswlib
import numpy as np


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    data, rows, nq, efs, labels_path, repeats = sys.argv[1:7]
    nq, repeats = int(nq), int(repeats)
    efs = [int(e) for e in efs.split(",")]
    x = np.load(data)
    rows = np.fromfile(rows, dtype="<u4").astype(np.int64)
    n = len(rows) - nq
    base = np.ascontiguousarray(x[rows[:n]], dtype=np.float32)
    queries = np.ascontiguousarray(x[rows[n:]], dtype=np.float32)
    dim = base.shape[1]

    rss0 = rss_bytes()
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
    index.set_num_threads(1)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=1)
    build_s = time.perf_counter() - t
    rss_delta = rss_bytes() - rss0
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "index.bin")
        index.save_index(path)
        file_bytes = os.path.getsize(path)

    try:
        from importlib.metadata import version
        ver = version("hnswlib")
    except Exception:
        ver = "?"
    out = {"library": "hnswlib", "version": ver,
           "build_s": build_s, "file_bytes": file_bytes, "rss_delta_bytes": rss_delta,
           "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ef": []}
    with open(labels_path, "wb") as f:
        for ef in efs:
            index.set_ef(ef)
            best = None
            for _ in range(repeats):
                t = time.perf_counter()
                labels, _ = index.knn_query(queries, k=10, num_threads=1)
                s = time.perf_counter() - t
                best = s if best is None else min(best, s)
            per_call = None
            for _ in range(repeats):
                t = time.perf_counter()
                for i in range(nq):
                    index.knn_query(queries[i:i + 1], k=10, num_threads=1)
                s = time.perf_counter() - t
                per_call = s if per_call is None else min(per_call, s)
            f.write(labels.astype(np.uint32).tobytes())
            out["ef"].append({"ef": ef, "qps": nq / min(best, per_call),
                              "qps_matrix_call": nq / best, "qps_per_call": nq / per_call})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
