"""In-VM tests of the `vexfs` Python package (userland/vexfs-python, built
and installed into the venv by `make python`): runs its pytest tests,
test_vexfs_python.py, with the venv's interpreter against the mount, and
counts each pytest test as one check of the group (a skipped one is
printed, not counted)."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from harness import LONG

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "test_vexfs_python.py")
REPORT = "/tmp/vexfs-python-pytest.xml"
WATCHDOG = "/tmp/vexfs-python-watchdog.txt"  # as test_vexfs_python.py names it
# The long run builds an HNSW graph of 20,000 vectors (minutes under TCG).
TIMEOUT = 3600 if LONG else 900


def results(path):
    """(name, outcome, detail) per test of a JUnit XML report."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "skipped" if child.tag == "skipped" else "failed"
                detail = (child.get("message") or "").strip().splitlines()
                detail = detail[0][:300] if detail else child.tag
                break
        out.append((case.get("name"), outcome, detail))
    return out


def test_all(t, mnt):
    with t.group("python package (pytest)"):
        for stale in (REPORT, WATCHDOG):
            if os.path.exists(stale):
                os.unlink(stale)
        # No .pytest_cache and no __pycache__ in the tree (the guest sees
        # the repository read-write).
        env = dict(os.environ, VEXFS_TEST_MNT=mnt, PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "pytest", TESTS, "-q", "-rfE", "-p", "no:cacheprovider",
               f"--junitxml={REPORT}"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            print(out[-3000:], flush=True)
            t.check("pytest finished", False, f"still running after {TIMEOUT} s")
            return
        print(r.stdout, end="", flush=True)
        cases = results(REPORT) if os.path.exists(REPORT) else []
        # 0: all passed, 1: some failed; anything else (an error collecting,
        # a crash, a faulthandler exit) leaves no full report.
        if not t.check("pytest ran the tests to the end", r.returncode in (0, 1) and cases,
                       f"exit status {r.returncode} (are vexfs and pytest in the venv? `make python`, "
                       f"`make setup`): {r.stderr.strip()[-300:]}"):
            print(r.stderr[-3000:], flush=True)
            if os.path.exists(WATCHDOG):
                with open(WATCHDOG) as f:
                    print(f"the GIL test's watchdog ended pytest:\n{f.read()[-3000:]}", flush=True)
        for name, outcome, detail in cases:
            if outcome == "skipped":
                print(f"skip {t.group_name}: {name}  ({detail})", flush=True)
            else:
                t.check(name, outcome == "passed", detail)
