#!/bin/sh
# The demo transcript, run inside the VM by scripts/demo: each command is
# printed as typed, then run. The flame graph lands in the repository
# (target/demo/), which the guest shares with the host.
set -e
step() {
	printf '\n$ %s\n' "$1"
	sh -c "$1"
}
say() {
	printf '\n# %s\n' "$1"
}
OUT=$VEXFS_ROOT/target/demo
mkdir -p "$OUT"
GLOVE=$VEXFS_CACHE/data/glove_6B_50d.npy
echo "VexFS demo: Linux $(uname -r) under QEMU, $(nproc) CPUs"

say 'Load the module and mount an in-memory VexFS with tmpfs-style limits.'
step 'insmod $VEXFS_KO'
step 'mkdir -p /mnt/vex && mount -t vexfs -o size=256m,mode=1777 none /mnt/vex'
step "grep ' vexfs ' /proc/mounts"
step 'df -h /mnt/vex'

say 'Files behave as on tmpfs.'
step 'echo "hello from VexFS" > /mnt/vex/hello.txt && cat /mnt/vex/hello.txt'
step 'mkdir /mnt/vex/docs && seq 1 1000 > /mnt/vex/docs/numbers && ls -la /mnt/vex /mnt/vex/docs'

say 'A vector collection: 5,000 GloVe word vectors (50-d, cosine) with an HNSW index.'
"$VEXFS_PYTHON" - "$GLOVE" <<'EOF'
import sys
import numpy as np
g = np.load(sys.argv[1], mmap_mode="r")
np.save("/tmp/glove.npy", np.ascontiguousarray(g[:5000], dtype=np.float32))
np.save("/tmp/queries.npy", np.ascontiguousarray(g[[42, 1234]], dtype=np.float32))
for i, row in enumerate((100, 200, 300)):
    np.save(f"/tmp/file{i}.npy", np.ascontiguousarray(g[row], dtype=np.float32))
np.save("/tmp/near-file1.npy", np.ascontiguousarray(g[[200]] * 0.9 + g[[201]] * 0.1, dtype=np.float32))
print("(prepared /tmp/glove.npy: 5,000 x 50 float32, and query files)")
EOF
step 'vexctl create /mnt/vex/glove --dim 50 --metric cosine --index hnsw --m 16 --ef-construction 100'
step 'vexctl insert /mnt/vex/glove --npy /tmp/glove.npy --batch 1000 --progress'
step 'vexctl info /mnt/vex/glove'
say 'Exact search (every vector scanned) and HNSW search (the graph walked) agree.'
step 'vexctl search /mnt/vex/glove --npy /tmp/queries.npy -k 5 --exact'
step 'vexctl search /mnt/vex/glove --npy /tmp/queries.npy -k 5 --ef 64'

say 'Files carry vectors, and a search names the files it found.'
step 'vexctl create /mnt/vex/notes --dim 50 --metric cosine'
step 'for n in rivers mountains cities; do echo "notes on $n" > /mnt/vex/notes/$n.txt; done'
step 'vexctl attach /mnt/vex/notes/rivers.txt --npy /tmp/file0.npy && vexctl attach /mnt/vex/notes/mountains.txt --npy /tmp/file1.npy && vexctl attach /mnt/vex/notes/cities.txt --npy /tmp/file2.npy'
step 'vexctl search /mnt/vex/notes --npy /tmp/near-file1.npy -k 2'
step 'vexctl search /mnt/vex/notes --npy /tmp/near-file1.npy -k 1 --json'
say 'A file vector is as private as the file: another user cannot see it in a search.'
step 'chmod 600 /mnt/vex/notes/mountains.txt && chmod 755 /mnt/vex/notes'
step 'setpriv --reuid=1000 --regid=1000 --clear-groups vexctl search /mnt/vex/notes --npy /tmp/near-file1.npy -k 2'

say 'Profile the searches with eBPF: a table per interval and a flame graph.'
vexctl profile --duration 8s --interval 8s --ops search,simd --flamegraph "$OUT/vexfs-flamegraph.svg" \
	>/tmp/profile.out 2>/tmp/profile.err &
prof=$!
printf '\n$ vexctl profile --duration 8s --interval 8s --ops search,simd --flamegraph %s &\n' "$OUT/vexfs-flamegraph.svg"
until grep -q 'attached' /tmp/profile.err 2>/dev/null; do
	kill -0 $prof 2>/dev/null || break
	sleep 0.2
done
cat /tmp/profile.err
printf '$ for i in $(seq 20); do vexctl search /mnt/vex/glove --npy /tmp/queries.npy -k 10 --exact >/dev/null; done\n'
for i in $(seq 20); do vexctl search /mnt/vex/glove --npy /tmp/queries.npy -k 10 --exact >/dev/null; done
wait $prof
cat /tmp/profile.out
step "ls -la $OUT/vexfs-flamegraph.svg"

step 'vexctl stats /mnt/vex'
step 'umount /mnt/vex'
step 'rmmod vexfs'
printf '\nVexFS demo finished: mounted, stored files and vectors, searched exactly and\n'
printf 'through HNSW, found files by their vectors, profiled, unmounted and unloaded.\n'
printf 'The flame graph is %s on the host.\n' "$OUT/vexfs-flamegraph.svg"
