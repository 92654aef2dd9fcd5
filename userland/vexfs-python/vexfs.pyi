"""VexFS vector collections from Python (type stubs of the extension module).

The docstrings are the module's own (``help(vexfs.Collection.search)``);
these stubs give the types.
"""

import os
from types import TracebackType
from typing import Any, Literal, TypedDict, overload

import numpy as np
import numpy.typing as npt

__version__: str
__all__: list[str]

MISSING_ID: int
"""The id filling a search row past its hits: 2**64-1."""
MISSING_DISTANCE: float
"""The distance filling a search row past its hits: +inf."""
MAX_DIM: int
"""Largest dimension of a collection (4096)."""
MAX_K: int
"""Largest k of a search (1024)."""
MAX_BATCH: int
"""Most vectors per insert, or ids per delete (1,048,576)."""
MAX_QUERIES: int
"""Most queries per search ioctl (65,536); ``search`` splits larger inputs."""
MAX_EF: int
"""Largest HNSW beam width (4096)."""
ABI_VERSION: int
"""The ioctl ABI version this package speaks."""

_Path = str | os.PathLike[str]
_Ids = int | npt.ArrayLike
_Rows = npt.ArrayLike
_Metric = Literal["l2", "cosine", "dot"]
_Index = Literal["hnsw", "flat"]
_Quantize = Literal["none", "sq8"]

class Info(TypedDict):
    """``Collection.info()``: the keys of ``vexctl info --json``."""

    path: str
    dim: int
    metric: str
    index: str
    m: int
    ef_construction: int
    quantize: str
    count: int
    file_vectors: int
    memory_bytes: int
    index_bytes: int
    deleted_pending: int
    unindexed: int

class Collection:
    """A vector collection: a directory on a VexFS mount whose vectors the
    kernel stores, indexes and searches."""

    def __init__(self, path: _Path) -> None:
        """Opens the collection directory ``path``."""
    @staticmethod
    def create(
        path: _Path,
        dim: int,
        metric: _Metric,
        index: _Index = "hnsw",
        m: int = 16,
        ef_construction: int = 200,
        quantize: _Quantize = "none",
    ) -> Collection:
        """Makes ``path`` (created if missing) a collection and opens it."""
    @property
    def path(self) -> str:
        """The path the collection was opened by, as given."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
    def close(self) -> None:
        """Closes the directory's file descriptor."""
    def __enter__(self) -> Collection: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
    def info(self) -> Info:
        """Parameters and counters, as ``vexctl info --json`` prints them."""
    def insert(self, ids: _Ids, vectors: _Rows) -> None:
        """Inserts (or replaces) ``vectors`` under ``ids``, all or nothing."""
    def search(
        self,
        queries: _Rows,
        k: int,
        ef: int | None = None,
        exact: bool = False,
        under: _Path | None = None,
        xattr: tuple[str | bytes, str | bytes] | None = None,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]:
        """The k nearest of each query: (ids, distances), each (nq, k);
        short rows filled with MISSING_ID and MISSING_DISTANCE. ``under``
        and ``xattr`` filter the files inside the search."""
    @overload
    def get(self, id: int, return_is_file: Literal[False] = False) -> npt.NDArray[np.float32]: ...
    @overload
    def get(
        self, id: int, return_is_file: Literal[True]
    ) -> tuple[npt.NDArray[np.float32], bool]: ...
    @overload
    def get(self, id: int, return_is_file: bool) -> Any: ...
    def delete(self, ids: _Ids) -> None:
        """Deletes the vectors with ``ids``, all or none."""
    def attach(self, file: _Path, vector: _Rows) -> int:
        """Sets the vector of ``file`` (in this collection); returns its id."""
