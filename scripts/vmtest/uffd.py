"""userfaultfd for the in-VM tests: memory whose first touch stops the
toucher until the test lets it go.

A buffer from `StallingBuffer` passed to an ioctl makes the kernel's copy
from user space wait inside that ioctl, deterministically, for as long as
the test wants: the way to hold a call in a known state (its staging memory
taken, its probe entered) without relying on timing. `release()` fills the
pages and wakes the waiter; killing the waiting task also ends the wait.
Kernel-mode faults need root or vm.unprivileged_userfaultfd=1.
"""

import ctypes
import fcntl
import mmap
import os
import struct

LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
LIBC.syscall.restype = ctypes.c_long
SYS_USERFAULTFD = 323
UFFD_API = 0xAA
PAGE = mmap.PAGESIZE


def _iowr(nr, size):
    return (3 << 30) | (size << 16) | (0xAA << 8) | nr


UFFDIO_API = _iowr(0x3F, 24)
UFFDIO_REGISTER = _iowr(0x00, 32)
UFFDIO_COPY = _iowr(0x03, 40)
UFFDIO_REGISTER_MODE_MISSING = 1


def available():
    """Whether this kernel has userfaultfd (CONFIG_USERFAULTFD)."""
    fd = LIBC.syscall(SYS_USERFAULTFD, os.O_CLOEXEC | os.O_NONBLOCK)
    if fd < 0:
        return False
    os.close(fd)
    return True


class StallingBuffer:
    """`pages` pages of anonymous memory, none of them present: a read of
    them from the kernel waits until `release()`."""

    def __init__(self, pages):
        self.len = pages * PAGE
        self.map = mmap.mmap(-1, self.len, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        fd = LIBC.syscall(SYS_USERFAULTFD, os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "userfaultfd")
        self.fd = fd
        fcntl.ioctl(fd, UFFDIO_API, bytearray(struct.pack("<QQQ", UFFD_API, 0, 0)))
        fcntl.ioctl(fd, UFFDIO_REGISTER,
                    bytearray(struct.pack("<QQQQ", self.addr, self.len, UFFDIO_REGISTER_MODE_MISSING, 0)))

    def release(self, fill=b"\0"):
        """Makes every page present (filled with `fill` repeated) and wakes
        whoever waits on them."""
        src = mmap.mmap(-1, PAGE)
        src.write((fill * (PAGE // len(fill) + 1))[:PAGE])
        src_addr = ctypes.addressof(ctypes.c_char.from_buffer(src))
        for off in range(0, self.len, PAGE):
            try:
                fcntl.ioctl(self.fd, UFFDIO_COPY,
                            bytearray(struct.pack("<QQQQq", self.addr + off, src_addr, PAGE, 0, 0)))
            except OSError:
                pass  # already present
        del src_addr

    def close(self):
        os.close(self.fd)
