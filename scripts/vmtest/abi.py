"""The VexFS ioctl ABI as the guest tests call it, without numpy.

vectors.py builds its numpy-based helpers on these numbers; the power-cut
guest (crash.py) uses them directly, because a boot per cut should not pay
for importing numpy over 9p.
"""

import ctypes
import fcntl
import os
import struct


def ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


# ABI version 4: CollectionParams 32 bytes, CollectionInfo 72, SearchRequest 72.
ABI_VERSION = 4
IOC_CREATE = ioc(1, 0x10, 32)
IOC_INFO = ioc(2, 0x11, 72)
IOC_INSERT = ioc(1, 0x12, 24)
IOC_DELETE = ioc(1, 0x13, 16)
IOC_GET = ioc(3, 0x14, 24)
IOC_SEARCH = ioc(1, 0x15, 72)
IOC_ATTACH = ioc(1, 0x16, 16)
METRIC = {"l2": 0, "cosine": 1, "dot": 2}
INDEX_FLAT, INDEX_HNSW = 0, 1
# CollectionParams.quantize (offset 20, a reserved word before): how an
# HNSW collection's walk reads the vectors.
QUANTIZE = {"none": 0, "sq8": 1}
QUANTIZE_NONE, QUANTIZE_SQ8 = 0, 1
SEARCH_EXACT, SEARCH_UNDER, SEARCH_XATTR = 1, 2, 4
# struct SearchRequest: nq, k, dim, flags, ef, under_fd, queries, hits,
# counts, xattr_name, xattr_value, xattr_name_len, xattr_value_len.
SEARCH_REQ = "<IIIIIiQQQQQII"
# A file's vectors: ids ino + (part << FILE_PART_SHIFT).
FILE_PART_SHIFT = 48
HIT_FILE = 1


def search_request(nq, k, dim, flags, ef, queries, hits, counts, under_fd=0, xattr=None):
    """A packed SearchRequest. `xattr`: (name, value) ctypes buffers (or
    bytes objects kept alive by the caller) of the attribute filter."""
    name_addr = value_addr = name_len = value_len = 0
    if xattr is not None:
        name, value = xattr
        name_addr, name_len = _addr_len(name)
        value_addr, value_len = _addr_len(value)
    return struct.pack(SEARCH_REQ, nq, k, dim, flags, ef, under_fd, queries, hits, counts,
                       name_addr, value_addr, name_len, value_len)


def _addr_len(buf):
    """Address and length of a ctypes char buffer (its last byte, a NUL
    that create_string_buffer adds, not counted)."""
    return ctypes.addressof(buf), ctypes.sizeof(buf) - 1
# struct CollectionInfo.
INFO_FIELDS = ("dim", "metric", "index", "m", "ef_construction", "quantize", "count", "file_vectors",
               "memory", "index_bytes", "deleted_pending", "unindexed")


def create_raw(path, dim, metric, index=INDEX_FLAT, m=0, ef_construction=0, quantize=QUANTIZE_NONE,
               reserved=(0, 0)):
    """VEXFS_IOC_CREATE on an existing empty directory. `metric` and
    `quantize`: names or numbers. `reserved`: the two words after
    `quantize`; three words are the layout from before `quantize` (its
    word first), as older callers pass them."""
    if len(reserved) == 3:
        quantize, reserved = quantize or reserved[0], tuple(reserved[1:])
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, IOC_CREATE, struct.pack("<8I", dim, METRIC.get(metric, metric), index, m,
                                                ef_construction, QUANTIZE.get(quantize, quantize),
                                                *reserved))
    finally:
        os.close(fd)


def info(fd):
    """VEXFS_IOC_INFO of an open collection directory, as a dict."""
    buf = bytearray(72)
    fcntl.ioctl(fd, IOC_INFO, buf)
    return dict(zip(INFO_FIELDS, struct.unpack("<6I6Q", buf)))


class PlainColl:
    """Insert, delete, get and info on a collection with Python lists."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    def close(self):
        os.close(self.fd)

    def info(self):
        return info(self.fd)

    def insert(self, ids, vecs):
        """`vecs`: one list of floats per id."""
        dim = len(vecs[0])
        id_buf = (ctypes.c_uint64 * len(ids))(*ids)
        vec_buf = (ctypes.c_float * (len(ids) * dim))(*[x for v in vecs for x in v])
        fcntl.ioctl(self.fd, IOC_INSERT, struct.pack("<IIQQ", len(ids), dim, ctypes.addressof(id_buf),
                                                     ctypes.addressof(vec_buf)))

    def delete(self, ids):
        id_buf = (ctypes.c_uint64 * len(ids))(*ids)
        fcntl.ioctl(self.fd, IOC_DELETE, struct.pack("<IIQ", len(ids), 0, ctypes.addressof(id_buf)))

    def get(self, vid, dim):
        """The stored vector of `vid` as a list of float32 values."""
        out = (ctypes.c_float * dim)()
        fcntl.ioctl(self.fd, IOC_GET, bytearray(struct.pack("<QIIQ", vid, dim, 0, ctypes.addressof(out))))
        return list(out)
