"""The guest side of scripts/crash-test: one boot of a power-cut cycle.

    crash.py cycle SEED [--first] [--no-run] --state DIR

1. Check what the last cut left (unless --first, which makes the
   filesystem): `fsck.vexfs -n` must exit 0 before anything mounts it, the
   mount must succeed, and every item the last run acknowledged as durable
   must be there (a file's content, a rename, an unlink, a vector batch
   whole; a batch never half there); the kernel log must stay clean. One
   line `CRASHCHECK {json}` says how it went.
2. Unless --no-run, run a random workload (seeded) of writes, renames,
   unlinks, vector inserts and deletes, made durable by fsync, fsync of a
   directory, syncfs or an O_SYNC write, each logged to the host before it
   starts (intent) and after it is durable (ack), until the host kills
   QEMU. The log is a file on the repository share: a 9p write returns
   only once the host has it, so every ack the host reads was made before
   the cut.
"""

import ctypes
import hashlib
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# No numpy: a boot per cut, and importing it over 9p costs seconds under TCG.
from abi import INDEX_HNSW, PlainColl, create_raw  # noqa: E402
from harness import BAD_KERNEL_LOG, KernelLog  # noqa: E402

DEV = os.environ.get("VEXFS_CRASH_DEV", "/dev/vdb")
MNT = "/mnt/crash"
# The host's directory for this chain of cuts (on the repository share):
# the operation log, the state the checks start from, the started marker.
STATE_DIR = sys.argv[sys.argv.index("--state") + 1]
LOG = os.path.join(STATE_DIR, "ops.jsonl")
STATE = os.path.join(STATE_DIR, "state.json")
DIM, BATCH = 8, 40
# The tree and the collection stay bounded over hundreds of cuts: past these
# the workload deletes (a full disk would end every later workload early).
MAX_FILES, MAX_BATCHES = 200, 200


def rows(base):
    """The vectors of the batch starting at id `base` (a function of it), as
    float32 values."""
    ids = list(range(base, base + BATCH))
    vecs = [[ctypes.c_float((r * DIM + c + base % 1000) / 7.0).value for c in range(DIM)]
            for r in range(BATCH)]
    return ids, vecs


def sha(data):
    return hashlib.sha256(data).hexdigest()


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def observe(state):
    """What the mounted filesystem holds of every key the state knows."""
    out = {"files": {}, "batches": {}}
    for name in state["files"]:
        p = f"{MNT}/d/{name}"
        out["files"][name] = sha(open(p, "rb").read()) if os.path.exists(p) else None
    coll = PlainColl(f"{MNT}/c")
    try:
        # A batch is one log record, so it is whole or absent by
        # construction; three of its rows (read back exactly) say which,
        # and the collection's count must then be the present batches'.
        for base in state["batches"]:
            ids, vecs = rows(int(base))
            present = 0
            exact = True
            for i in (0, BATCH // 2, BATCH - 1):
                try:
                    got = coll.get(ids[i], DIM)
                except OSError:
                    continue
                present += 1
                exact = exact and got == vecs[i]
            out["batches"][base] = {"present": present * BATCH // 3, "exact": exact}
        out["count"] = coll.info()["count"]
    finally:
        coll.close()
    return out


def check(state, ops):
    """Compares the filesystem with `state` advanced by the last run's
    log; returns (problems, new state, items checked)."""
    problems, checked = [], 0
    want = {"files": dict(state["files"]), "batches": dict(state["batches"])}
    maybe = {"files": {}, "batches": {}}
    pending = {}
    for op in ops:
        key = (op["kind"], op["key"])
        if op["phase"] == "intent":
            pending[key] = op
            continue
        pending.pop(key, None)
        kind = "files" if op["kind"] == "file" else "batches"
        want[kind][op["key"]] = op["value"]
        maybe[kind].pop(op["key"], None)
    for (kind, key), op in pending.items():
        # Cut before its ack: either outcome.
        k = "files" if kind == "file" else "batches"
        maybe[k][key] = op["value"]
        want[k].setdefault(key, None)
    seen = observe(want)
    new = {"files": {}, "batches": {}}
    for name, value in want["files"].items():
        got = seen["files"][name]
        checked += 1
        ok = got == value or (name in maybe["files"] and got == maybe["files"][name])
        if not ok:
            problems.append(f"file {name}: {got} instead of {value}")
        new["files"][name] = got
    for base, value in want["batches"].items():
        got = seen["batches"][base]
        checked += 1
        whole = got["present"] in (0, BATCH) and got["exact"]
        if not whole:
            problems.append(f"batch {base}: {got['present']} of {BATCH} rows (exact: {got['exact']})")
        state_now = got["present"] == BATCH
        # A batch never acknowledged (None) is absent.
        allowed = {bool(value)} | ({bool(maybe["batches"][base])} if base in maybe["batches"] else set())
        if state_now not in allowed:
            problems.append(f"batch {base}: {'present' if state_now else 'absent'}, acknowledged "
                            f"{'present' if value else 'absent'}")
        new["batches"][base] = state_now
    whole = sum(BATCH for v in new["batches"].values() if v)
    if seen["count"] != whole:
        problems.append(f"the collection holds {seen['count']} rows, the whole batches {whole}")
    # What is gone stays gone (names and ids are never reused): only what
    # is there is checked again after the next cut.
    new = {kind: {k: v for k, v in items.items() if v} for kind, items in new.items()}
    return problems, new, checked


class Log:
    def __init__(self):
        self.fd = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def put(self, **rec):
        os.write(self.fd, (json.dumps(rec) + "\n").encode())


def durable(rng, path_fd_or_dir):
    """Makes everything so far durable by one of the ways the filesystem
    offers."""
    how = rng.randrange(3)
    if how == 0:
        fd = os.open(path_fd_or_dir, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    elif how == 1:
        fd = os.open(MNT, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    else:
        subprocess.run(["sync", "-f", MNT], check=True)


def run(seed, state):
    rng = random.Random(seed)
    log = Log()
    files = [n for n, v in state["files"].items() if v is not None]
    batches = [int(b) for b, v in state["batches"].items() if v]
    coll = PlainColl(f"{MNT}/c")
    n = 0
    with open(os.path.join(STATE_DIR, "started"), "w") as f:
        f.write(str(seed))
    print("CRASH-RUN-STARTED", flush=True)
    while True:
        n += 1
        op = rng.random()
        if len(files) >= MAX_FILES:
            op = 0.55  # an unlink
        elif len(batches) >= MAX_BATCHES:
            op = 0.9  # a batch delete
        if op < 0.35 or not files:
            name = f"s{seed}-{n}"
            data = rng.randbytes(rng.choice([0, 1, 100, 4096, 5000, 70000]))
            log.put(phase="intent", kind="file", key=name, value=sha(data))
            if data and rng.random() < 0.3:
                fd = os.open(f"{MNT}/d/{name}", os.O_CREAT | os.O_WRONLY | os.O_SYNC, 0o644)
                os.write(fd, data)
                os.close(fd)
                # The name is in the commit of the O_SYNC write (a write of
                # nothing syncs nothing, on ext4 as here: the empty files
                # take the other way).
            else:
                with open(f"{MNT}/d/{name}", "wb") as f:
                    f.write(data)
                durable(rng, f"{MNT}/d/{name}")
            log.put(phase="ack", kind="file", key=name, value=sha(data))
            files.append(name)
        elif op < 0.5:
            old = files.pop(rng.randrange(len(files)))
            new = f"r{seed}-{n}"
            value = sha(open(f"{MNT}/d/{old}", "rb").read())
            log.put(phase="intent", kind="file", key=old, value=None)
            log.put(phase="intent", kind="file", key=new, value=value)
            os.rename(f"{MNT}/d/{old}", f"{MNT}/d/{new}")
            durable(rng, f"{MNT}/d")
            log.put(phase="ack", kind="file", key=old, value=None)
            log.put(phase="ack", kind="file", key=new, value=value)
            files.append(new)
        elif op < 0.6:
            old = files.pop(rng.randrange(len(files)))
            log.put(phase="intent", kind="file", key=old, value=None)
            os.unlink(f"{MNT}/d/{old}")
            durable(rng, f"{MNT}/d")
            log.put(phase="ack", kind="file", key=old, value=None)
        elif op < 0.85 or not batches:
            base = (seed * 100_000 + n) * BATCH
            ids, vecs = rows(base)
            log.put(phase="intent", kind="batch", key=str(base), value=True)
            coll.insert(ids, vecs)
            durable(rng, f"{MNT}/c")
            log.put(phase="ack", kind="batch", key=str(base), value=True)
            batches.append(base)
        else:
            base = batches.pop(rng.randrange(len(batches)))
            ids, _ = rows(base)
            log.put(phase="intent", kind="batch", key=str(base), value=False)
            coll.delete(ids)
            durable(rng, f"{MNT}/c")
            log.put(phase="ack", kind="batch", key=str(base), value=False)
        if rng.random() < 0.3:
            # Work nobody waits for: in the log (or not) when the cut comes.
            with open(f"{MNT}/d/scratch-{n % 7}", "wb") as f:
                f.write(rng.randbytes(3000))


def main():
    seed = int(sys.argv[2])
    first = "--first" in sys.argv
    klog = KernelLog()
    os.makedirs(STATE_DIR, exist_ok=True)
    os.makedirs(MNT, exist_ok=True)
    result = {"seed": seed, "mounted": False, "fsck": None, "problems": [], "checked": 0,
              "kernel_log": []}
    if first:
        subprocess.run(["mkfs.vexfs", "-q", "-f", DEV], check=True)
        state = {"files": {}, "batches": {}}
        subprocess.run(["mount", "-t", "vexfs", DEV, MNT], check=True)
        os.mkdir(f"{MNT}/d")
        os.mkdir(f"{MNT}/c")
        create_raw(f"{MNT}/c", DIM, "l2", INDEX_HNSW)
        subprocess.run(["sync", "-f", MNT], check=True)
        result["mounted"] = True
    else:
        with open(STATE) as f:
            state = json.load(f)
        ops = [json.loads(line) for line in open(LOG)] if os.path.exists(LOG) else []
        r = sh("fsck.vexfs", "-n", DEV)
        result["fsck"] = r.returncode
        if r.returncode != 0:
            result["problems"].append("fsck: " + (r.stdout + r.stderr).strip()[-400:])
        m = sh("mount", "-t", "vexfs", DEV, MNT)
        result["mounted"] = m.returncode == 0
        if m.returncode != 0:
            why = [line for line in klog.new_lines() if "vexfs" in line]
            result["problems"].append("mount: " + m.stderr.strip() + " " + " / ".join(why[-3:]))
        else:
            problems, state, checked = check(state, ops)
            result["problems"] += problems
            result["checked"] = checked
        result["ops_logged"] = len(ops)
    bad = [line for line in klog.new_lines() if BAD_KERNEL_LOG.search(line)]
    result["kernel_log"] = bad[:5]
    with open(STATE, "w") as f:
        json.dump(state, f)
    print("CRASHCHECK " + json.dumps(result), flush=True)
    if "--no-run" in sys.argv or not result["mounted"]:
        if result["mounted"]:
            subprocess.run(["umount", MNT], check=True)
            r = sh("fsck.vexfs", "-n", DEV)
            print("CRASHFINAL " + json.dumps({"fsck": r.returncode,
                                               "kernel_log": [line for line in klog.new_lines()
                                                              if BAD_KERNEL_LOG.search(line)][:5]}),
                  flush=True)
        return 0
    try:
        run(seed, state)
    except Exception as e:  # the host cuts power at any instant
        print(f"CRASH-RUN-ERROR {e!r}", flush=True)
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
