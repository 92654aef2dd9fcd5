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
DISK=${VEXFS_VM_DISKS%% *}
echo "VexFS demo: Linux $(uname -r) under QEMU, $(nproc) CPUs, a disk at $DISK"

say 'Load the module; make a VexFS on the disk and mount it (durable, crash-consistent).'
step 'insmod $VEXFS_KO'
step "mkfs.vexfs -q -L demo $DISK && mkdir -p /mnt/vex && mount -t vexfs $DISK /mnt/vex"
step "grep ' vexfs ' /proc/mounts && df -h /mnt/vex"

say 'Files behave as on any Linux filesystem.'
step 'echo "hello from VexFS" > /mnt/vex/hello.txt && cat /mnt/vex/hello.txt && ls -la /mnt/vex'

say 'Find files by meaning: the project'"'"'s own documentation in a collection of 384-d vectors.'
step 'vexctl create /mnt/vex/docs --dim 384 --metric cosine --index hnsw'
step 'mkdir /mnt/vex/docs/guides && cp $VEXFS_ROOT/Documentation/admin-guide.rst $VEXFS_ROOT/Documentation/profiling.rst /mnt/vex/docs/guides/ && cp $VEXFS_ROOT/README.md $(ls $VEXFS_ROOT/Documentation/*.rst | grep -v -e admin-guide -e profiling) /mnt/vex/docs/ && ls -R /mnt/vex/docs'
say 'vexctl embed gives each text file one vector per chunk, from all-MiniLM-L6-v2 run locally.'
step 'vexctl embed /mnt/vex/docs --progress'
step 'vexctl search /mnt/vex/docs -k 3 --text "What are the mount options size, nr_inodes, mode, uid and gid?" --text "How do I make a flame graph with vexctl profile?" --text "How does the graph pick neighbours with the heuristic?"'
say 'Filters a filesystem can offer, applied inside the search: a subtree (an attribute below).'
step 'vexctl search /mnt/vex/docs --text "how do I mount it?" -k 3 --under /mnt/vex/docs/guides'

say 'Words as files: the 2,000 most common GloVe words, each a file carrying its 50-d vector (the Python package).'
step "\"\$VEXFS_PYTHON\" - <<'PY'
import os, numpy as np, vexfs
g = np.load(os.environ['VEXFS_CACHE'] + '/data/glove_6B_50d.npy', mmap_mode='r')
words = open(os.environ['VEXFS_CACHE'] + '/data/glove_6B_50d.words', encoding='utf-8').read().split('\\n')
c = vexfs.Collection.create('/mnt/vex/words', 50, 'cosine', index='hnsw', ef_construction=100)
n = 0
for i, w in enumerate(words[:3000]):
    if w.isalpha() and n < 2000:
        path = f'/mnt/vex/words/{w}'
        open(path, 'w').close()
        c.attach(path, np.asarray(g[i], dtype=np.float32))
        n += 1
np.save('/tmp/king.npy', np.asarray(g[words.index('king')], dtype=np.float32))
print(f'{n} word files, each with its vector')
PY"
step 'vexctl search /mnt/vex/words --npy /tmp/king.npy -k 8'
say 'The HNSW walk against an exact scan of every vector: the same neighbours.'
step 'vexctl search /mnt/vex/words --npy /tmp/king.npy -k 8 --exact --json'
say 'An attribute filter inside the search: only the words tagged user.kind=family, and still k hits.'
step 'for w in son father brother mother daughter sister wife husband; do setfattr -n user.kind -v family /mnt/vex/words/$w; done && vexctl search /mnt/vex/words --npy /tmp/king.npy -k 3 --xattr user.kind=family'

say 'A file'"'"'s vectors are as private as the file: another user does not see it in a search.'
step 'chmod 600 /mnt/vex/words/queen && setpriv --reuid=1000 --regid=1000 --clear-groups vexctl search /mnt/vex/words --npy /tmp/king.npy -k 4'

say 'Profile searches with eBPF: a table per interval and a flame graph.'
vexctl profile --duration 5s --interval 5s --ops search,simd --flamegraph "$OUT/vexfs-flamegraph.svg" \
	>/tmp/profile.out 2>/tmp/profile.err &
prof=$!
printf '\n$ vexctl profile --duration 5s --interval 5s --ops search,simd --flamegraph %s &\n' "$OUT/vexfs-flamegraph.svg"
until grep -q 'attached' /tmp/profile.err 2>/dev/null; do
	kill -0 $prof 2>/dev/null || break
	sleep 0.2
done
cat /tmp/profile.err
# Searches for as long as the profile runs (its table counts them).
printf '$ while kill -0 $prof; do vexctl search /mnt/vex/words --npy /tmp/king.npy -k 10 --exact >/dev/null; done\n'
while kill -0 $prof 2>/dev/null; do vexctl search /mnt/vex/words --npy /tmp/king.npy -k 10 --exact >/dev/null; done
wait $prof
cat /tmp/profile.out
step "ls -la $OUT/vexfs-flamegraph.svg"

say 'Durable: unmount, mount again, and the collections are still there, graph and all.'
step 'vexctl stats /mnt/vex | head -5'
step "umount /mnt/vex && mount -t vexfs $DISK /mnt/vex"
step 'vexctl search /mnt/vex/words --npy /tmp/king.npy -k 4'
step 'vexctl info /mnt/vex/docs | grep -E "count|file_vectors"'
step 'vexctl info /mnt/vex/words'
step "umount /mnt/vex && fsck.vexfs -n $DISK"
step 'rmmod vexfs'
printf '\nVexFS demo finished: a durable mount, files found by meaning through a local\n'
printf 'model, words found by their vectors (HNSW and exact), filters, privacy, an eBPF\n'
printf 'profile, and everything still there after a remount. Unmounted and unloaded.\n'
printf 'The flame graph is %s on the host.\n' "$OUT/vexfs-flamegraph.svg"
