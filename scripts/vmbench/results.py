"""Where the in-VM benchmarks leave their figures: a JSON file in
bench-results/ of the repository the guest runs from ($VEXFS_ROOT)."""

import json
import os


def write_result(name, result):
    """Writes `result` to bench-results/`name` and says where."""
    folder = os.path.join(os.environ["VEXFS_ROOT"], "bench-results")
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, name)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}")
