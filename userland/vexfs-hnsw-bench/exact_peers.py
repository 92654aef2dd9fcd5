#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""faiss and numpy side of the native exact-search benchmark (run by the
`exact` binary of vexfs-hnsw-bench, with one OpenMP/BLAS thread).

For each NQ in NQS, searches the first NQ queries of QUERIES.npy for the
10 nearest of BASE.npy: faiss IndexFlatIP on unit-normalised copies for
METRIC cosine, IndexFlatIP for dot, IndexFlatL2 for l2; numpy computes
the same matrix product (or squared distances) and takes the 10 smallest
with argpartition. Prints one line per NQ, "faiss_qps numpy_qps" (best of
REPEATS calls, by process CPU time), and writes faiss's labels (int64,
NQ x 10 per NQ, in NQS order) to LABELS.

usage: exact_peers.py BASE.npy QUERIES.npy METRIC NQS REPEATS LABELS
"""
import sys
import time

import faiss
import numpy as np

K = 10


def unit(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1, n)


def best(repeats, fn):
    t, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        t = min(t, time.process_time() - t0)
    return max(t, 1e-9), out


def main():
    base_path, query_path, metric, nqs, repeats, labels_path = sys.argv[1:7]
    nqs, repeats = [int(x) for x in nqs.split(",")], int(repeats)
    faiss.omp_set_num_threads(1)
    base = np.ascontiguousarray(np.load(base_path), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(query_path), dtype=np.float32)
    if metric == "cosine":
        base = unit(base)
    index = (faiss.IndexFlatL2 if metric == "l2" else faiss.IndexFlatIP)(base.shape[1])
    index.add(base)
    base_sq = (base * base).sum(axis=1)
    labels = []
    for nq in nqs:
        q = queries[:nq]
        if metric == "cosine":
            q = unit(q)
        t_faiss, (_, ids) = best(repeats, lambda: index.search(q, K))

        def numpy_search():
            if metric == "l2":
                d = base_sq[None, :] - 2.0 * (q @ base.T)
            else:
                d = -(q @ base.T)
            part = np.argpartition(d, K, axis=1)[:, :K]
            rows = np.arange(len(q))[:, None]
            return part[rows, np.argsort(d[rows, part], axis=1)]

        t_numpy, _ = best(repeats if nq < 1000 else 1, numpy_search)
        labels.append(ids.astype("<i8"))
        print(f"{nq / t_faiss:.3f} {nq / t_numpy:.3f}", flush=True)
    np.concatenate(labels).tofile(labels_path)


if __name__ == "__main__":
    main()
