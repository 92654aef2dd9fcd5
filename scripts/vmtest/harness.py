"""A small assertion harness for the in-VM tests.

Each check prints one line (`ok`/`FAIL`); each group ends with a kernel-log
check, so a WARNING, BUG, Oops or leak report fails the group that caused
it. The run ends with `vm: N passed, N failed`.
"""

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

# `make test-long` (VEXFS_TEST_LONG=1): full-size data sets and soaks;
# `make test` keeps every check at the size that check needs.
LONG = os.environ.get("VEXFS_TEST_LONG") == "1"

# Kernel-log lines that fail a run.
BAD_KERNEL_LOG = re.compile(
    r"WARNING:|BUG:|Oops|general protection|Call Trace|RIP:|kernel BUG|"
    r"still has objects|unreferenced object|UBSAN|panicked|refcount_t:|"
    r"list_add corruption|list_del corruption|Objects remaining|stack-protector|vexfs: leak|"
    r"invoked oom-killer|Kernel panic")


class KernelLog:
    """Reads new kernel-log records from /dev/kmsg."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def new_lines(self):
        lines = []
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return lines
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten records: keep going
                    continue
                raise
            # "prio,seq,time,flags;message\n continuation lines"
            lines.append(rec.split(";", 1)[-1].rstrip("\n"))


class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.group_name = None
        self.klog = KernelLog()

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {self.group_name}: {name}", flush=True)
        else:
            self.failed += 1
            msg = f"FAIL {self.group_name}: {name}"
            if detail:
                msg += f"  ({detail})"
            print(msg, flush=True)
        return cond

    def eq(self, name, got, want):
        return self.check(name, got == want, f"got {got!r}, want {want!r}")

    def raises(self, name, want_errno, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except OSError as e:
            return self.check(name, e.errno == want_errno,
                              f"got {errno.errorcode.get(e.errno, e.errno)}, "
                              f"want {errno.errorcode[want_errno]}")
        return self.check(name, False, f"no error, want {errno.errorcode[want_errno]}")

    def kernel_log_clean(self):
        bad = [l for l in self.klog.new_lines() if BAD_KERNEL_LOG.search(l)]
        self.check("kernel log clean (no WARNING/BUG/Oops/leak)", not bad,
                   "; ".join(bad[:5]))

    @contextlib.contextmanager
    def group(self, name):
        self.group_name = name
        print(f"# {name}", flush=True)
        t0 = time.monotonic()
        try:
            yield
        except Exception:
            self.check("group ran to the end", False, traceback.format_exc().strip().splitlines()[-1])
            traceback.print_exc(file=sys.stdout)
        finally:
            self.kernel_log_clean()
            print(f"# {name}: {time.monotonic() - t0:.1f} s (in-guest time)", flush=True)

    def summary(self):
        print(f"vm: {self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1


def eventually(read, done, timeout, every=0.05):
    """read() until done(value) holds or `timeout` seconds have passed; the
    last value. For state the module's worker reaches after a call returns:
    a busy machine changes how long that takes, never where it ends."""
    end = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > end:
            return value
        time.sleep(every)


def run(cmd, **kwargs):
    """Runs a command, returning CompletedProcess with text output."""
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def sh(cmd):
    """Runs a command that must succeed."""
    r = run(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def mount(path, opts=None, fstype="vexfs", source="none"):
    os.makedirs(path, exist_ok=True)
    sh(["mount", "-t", fstype] + (["-o", opts] if opts else []) + [source, path])


def umount(path):
    sh(["umount", path])


def mount_options(path):
    """The options /proc/mounts shows for the mount at `path`."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                opts = {}
                for o in fields[3].split(","):
                    k, _, v = o.partition("=")
                    opts[k] = v
                return opts
    return None


def as_uid(uid, gid=None):
    """The command prefix that runs what follows as `uid` (and `gid`, by
    default the same) with no supplementary groups."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid if gid is None else gid}", "--clear-groups"]


def vexctl(*args, user=None):
    return run(["vexctl", *args], user=user, group=user)


def vexctl_json(*args):
    r = vexctl(*args, "--json")
    if r.returncode != 0:
        raise RuntimeError(f"vexctl {' '.join(args)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


class Background:
    """A command running in the background (a tracer, a profiler), its
    stdout and stderr collected line by line by threads; it is ready once a
    line starts with `marker`."""

    def __init__(self, argv, marker):
        self.argv = argv
        # Taken before the launch: nothing the command does starts earlier.
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.out, self.err = [], []
        self.marker = marker
        self.ready = threading.Event()
        self.t_ready = self.t_end = None
        self.rc = None
        self.threads = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                        for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for th in self.threads:
            th.start()

    def _read(self, stream, into):
        for line in stream:
            line = line.rstrip("\n")
            into.append(line)
            if line.startswith(self.marker) and not self.ready.is_set():
                self.t_ready = time.monotonic()
                self.ready.set()
        stream.close()

    def wait_ready(self, timeout=180):
        """True once the marker line came; False if it exited or timed out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready.wait(0.1):
                return True
            if self.proc.poll() is not None:
                self.ready.wait(0.5)  # the reader may still hold the line
                return self.ready.is_set()
        return False

    def wait(self, timeout):
        """Waits for the exit (SIGKILL after `timeout`); returns the status
        (None if it had to be killed)."""
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = None
        self.t_end = time.monotonic()
        for th in self.threads:
            th.join(10)
        return self.rc

    def stop(self, sig=signal.SIGINT, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10)

    def stderr(self):
        return "\n".join(self.err)

    def why(self):
        """Its last output lines, for a failure message."""
        return " ".join((self.err + self.out)[-4:]).strip()[:300] or f"exit status {self.proc.poll()}"
