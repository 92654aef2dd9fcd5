#!/bin/sh
# The demo transcript, run inside the VM by scripts/demo: each command is
# printed as typed, then run.
set -e
step() {
	printf '\n$ %s\n' "$1"
	sh -c "$1"
}
echo "VexFS demo: Linux $(uname -r) under QEMU, $(nproc) CPUs"
step 'insmod $VEXFS_KO'
step 'grep vexfs /proc/filesystems'
step 'mkdir -p /mnt/vex'
step 'mount -t vexfs none /mnt/vex'
step "grep ' vexfs ' /proc/mounts"
step 'echo "hello from VexFS" > /mnt/vex/hello.txt'
step 'cat /mnt/vex/hello.txt'
step 'mkdir /mnt/vex/docs'
step 'seq 1 1000 > /mnt/vex/docs/numbers'
step 'ln -s docs/numbers /mnt/vex/numbers-link'
step 'tail -n 2 /mnt/vex/numbers-link'
step 'ls -la /mnt/vex'
step "stat -c '%n: %s bytes, mode %A, %h links' /mnt/vex/hello.txt /mnt/vex/docs/numbers"
step "stat -f -c 'filesystem type 0x%t, max name length %l' /mnt/vex"
step 'vexctl version /mnt/vex'
step 'vexctl stats /mnt/vex'
step 'umount /mnt/vex'
step 'rmmod vexfs'
printf '\nVexFS demo finished: mounted, used, unmounted and unloaded.\n'
