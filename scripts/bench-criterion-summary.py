#!/usr/bin/env python3
"""Summarises criterion's distance benchmarks: ns per distance and GB/s per
path and peer, the AVX2/scalar speed-up, as a table and JSON."""
import json
import os
import sys
import time

root, outdir = sys.argv[1], sys.argv[2]
rows = []
for group in sorted(os.listdir(root)):
    if "_" not in group or group == "report":
        continue
    metric, _, dim = group.rpartition("_")
    gdir = os.path.join(root, group)
    for fn in sorted(os.listdir(gdir)):
        est = os.path.join(gdir, fn, "new", "estimates.json")
        bench = os.path.join(gdir, fn, "new", "benchmark.json")
        if not os.path.exists(est):
            continue
        ns = json.load(open(est))["mean"]["point_estimate"]
        tp = json.load(open(bench)).get("throughput") or {}
        nbytes = tp.get("Bytes") or tp.get("BytesDecimal") or 0
        rows.append({"metric": metric, "dim": int(dim), "impl": fn, "ns_per_distance": ns,
                     "gb_per_s": nbytes / ns if ns else 0.0})
rows.sort(key=lambda r: (r["metric"], r["dim"], r["impl"]))
if not rows:
    sys.exit("no criterion results found under " + root)
print(f"\n{'metric':8} {'dim':>5} {'implementation':16} {'ns/distance':>12} {'GB/s':>8}")
for r in rows:
    print(f"{r['metric']:8} {r['dim']:>5} {r['impl']:16} {r['ns_per_distance']:>12.1f} {r['gb_per_s']:>8.2f}")
speedups = {}
for r in rows:
    if r["impl"] == "vexfs-avx2":
        scalar = next((s for s in rows if s["metric"] == r["metric"] and s["dim"] == r["dim"]
                       and s["impl"] == "vexfs-scalar"), None)
        if scalar:
            speedups[f"{r['metric']}/{r['dim']}"] = scalar["ns_per_distance"] / r["ns_per_distance"]
print("\nAVX2 speed-up over scalar: " + ", ".join(f"{k} {v:.1f}x" for k, v in speedups.items()))
out = os.path.join(outdir, f"criterion-{time.strftime('%Y%m%d-%H%M%S')}.json")
json.dump({"rows": rows, "avx2_over_scalar": speedups}, open(out, "w"), indent=1)
print(f"wrote {out}")
