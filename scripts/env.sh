# Shared paths and tool locations for every VexFS script. Sourced, not run.
#
# Everything the project downloads or builds lives under $VEXFS_CACHE
# (default ~/.cache/vexfs), never in the repository, so a fresh clone reuses
# a kernel built by an earlier clone on the same machine.

VEXFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VEXFS_CACHE=${VEXFS_CACHE:-$HOME/.cache/vexfs}
KERNEL_PKG=linux-source-7.3
KERNEL_SRC=$VEXFS_CACHE/src/$KERNEL_PKG
TOOLS=$VEXFS_CACHE/tools
PAHOLE=$TOOLS/bin/pahole
BINDGEN=$TOOLS/bin/bindgen
RUSTV=$(rustc --version | awk '{print $2}')
RUST_LIB_SRC=$VEXFS_CACHE/rust-src/usr/src/rustc-$RUSTV/library
LIBCLANG_PATH=/usr/lib/llvm-19/lib
# `current` points at the kernel build of the newest successful setup.
KBUILD=$VEXFS_CACHE/kernel/current
# Cargo's build directory for `make userland` and `make test`: shared by
# every clone on the machine, so their dependencies are compiled once
# (CARGO_CACHE_TARGET in the environment picks another, e.g. for a build
# that must not wait for the shared one's lock).
CARGO_CACHE_TARGET=${CARGO_CACHE_TARGET:-$VEXFS_CACHE/cargo-target}
# The all-MiniLM-L6-v2 text-embedding model (scripts/setup's fetch_minilm);
# exported so vexfs-embed's tests and vexctl find it under a moved cache.
VEXFS_MINILM=$VEXFS_CACHE/models/all-minilm-l6-v2
export VEXFS_CACHE RUST_LIB_SRC LIBCLANG_PATH VEXFS_MINILM
export PATH=$HOME/.cargo/bin:$PATH

kmake() {
	make -C "$KERNEL_SRC" O="$KBUILD" LLVM=-19 PAHOLE="$PAHOLE" BINDGEN="$BINDGEN" "$@"
}

log() { printf '[vexfs %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'vexfs: error: %s\n' "$*" >&2; exit 1; }

# Built products kept by a key of their sources (scripts/build-module,
# build-userland): `build_cache_put DIR KEY KEEP PATH...` copies the PATHs
# into DIR/KEY, whole or not at all (a copy in progress is a hidden
# temporary directory renamed into place), and keeps the newest KEEP keys.
build_cache_put() {
	local dir=$1 key=$2 keep=$3 tmp
	shift 3
	mkdir -p "$dir"
	tmp=$(mktemp -d "$dir/.partial.XXXXXX")
	chmod 755 "$tmp"
	cp -r "$@" "$tmp/"
	rm -rf "${dir:?}/$key" && mv "$tmp" "$dir/$key"
	ls -1dt "$dir"/*/ | tail -n +"$((keep + 1))" | xargs -r rm -rf
}
