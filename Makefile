# VexFS front door. `make demo` and `make test` set everything up themselves
# (toolchain and kernel are cached under $VEXFS_CACHE, default ~/.cache/vexfs).

CARGO ?= cargo

.PHONY: all setup module userland python install uninstall demo test test-long test-vm crash-test bench bench-ab fmt clippy clean

all: module userland python

setup:
	@scripts/setup

module: setup
	@scripts/build-module
	@scripts/build-module stack

userland:
	@scripts/build-userland

# `make install [PREFIX=/usr/local] [DESTDIR=] [KVER=]`: vexctl, mkfs.vexfs,
# fsck.vexfs, their man pages, vexctl's shell completions, and vexfs.ko
# under /lib/modules/KVER/extra (then depmod); KVER defaults to the release
# of the kernel the module is built against, not the running one.
# `make uninstall` removes exactly what the install put. See scripts/install.
PREFIX ?= /usr/local
install: module userland
	@PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' KVER='$(KVER)' DEPMOD='$(DEPMOD)' scripts/install

uninstall:
	@PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' DEPMOD='$(DEPMOD)' scripts/install --uninstall

# The `vexfs` Python package (userland/vexfs-python), built by maturin and
# installed into $VEXFS_CACHE/venv, the in-VM tests' interpreter.
python: setup
	@scripts/build-python

demo: module userland python
	@scripts/demo

test: module userland python
	@scripts/test

# The same suite with full-size data sets and soaks (see Documentation/admin-guide.rst).
test-long: module userland python
	@VEXFS_TEST_LONG=1 scripts/test

# Power cuts: 500 boots of the test kernel, each killed at a random instant
# (CUTS=N to change; JOBS=N chains of boots at once, default 2), then 1,000
# corrupted images mounted; see
# Documentation/durability.rst.
CUTS ?= 500
JOBS ?= 2
crash-test: module userland
	@scripts/crash-test $(CUTS) --jobs $(JOBS)
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	VEXFS_VM_DISK="$$d/a.img,$$d/b.img" VEXFS_VM_DISK_SIZE=64M VEXFS_VM_MEM=1G \
	scripts/vm-exec 'VEXFS_DISK_FLIPS=1000 $$VEXFS_PYTHON scripts/vmtest/run.py disk'

# Benchmarks (criterion natively, then in the VM); tables + bench-results/*.json.
bench: module userland
	@scripts/bench

# `make bench-ab [BASE=REV]`: this tree's vexfs.ko against REV's (default HEAD~1), A/B in one guest run.
BASE ?= HEAD~1
bench-ab: module userland
	@scripts/bench-ab $(BASE)

# The in-VM suite alone (assumes module, userland and python are built).
test-vm:
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	VEXFS_VM_DISK="$$d/a.img,$$d/b.img,$$d/c.img" VEXFS_VM_DISK_SIZE=64M VEXFS_VM_MEM=1G \
	scripts/vm-exec '$$VEXFS_PYTHON scripts/vmtest/run.py'

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path userland/vexfs-python/Cargo.toml

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path userland/vexfs-python/Cargo.toml --all-targets -- -D warnings

clean:
	@scripts/build-module clean
	$(CARGO) clean
