"""A file's pages in the kernel's page cache: how many are there, sending them away, and how
fast the disk delivers the file when none are.

A benchmark that reads a file it has just written (or read) measures memory, not the disk:
on a machine whose RAM holds the whole corpus, every "streamed" row comes from the cache.
``posix_fadvise(POSIX_FADV_DONTNEED)`` asks the kernel to drop a file's clean cached pages;
it needs no privilege, unlike ``/proc/sys/vm/drop_caches``, and touches no other file.
``mincore`` on a mapping of the file says which pages are still cached, so the eviction is
checked, not assumed.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import time
from pathlib import Path

import numpy as np

READ_BLOCK = 8 * 2**20
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def cached_share(path: Path) -> float:
    """The share of ``path``'s pages in the page cache now (0 to 1), from ``mincore``."""
    size = path.stat().st_size
    if size == 0:
        return 0.0
    pages = -(-size // mmap.PAGESIZE)
    resident = np.zeros(pages, np.uint8)
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), size, prot=mmap.PROT_READ) as view:
        start = np.frombuffer(view, np.uint8).ctypes.data  # a mapping only: nothing is read
        if _libc.mincore(start, size, resident.ctypes.data) != 0:
            raise OSError(ctypes.get_errno(), f"mincore on {path} failed")
    return float(np.mean(resident & 1))


def evict(path: Path) -> None:
    """Ask the kernel to drop ``path``'s pages from the page cache (written to the disk first:
    the kernel drops clean pages only)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


class Evicting:
    """While the ``with`` block runs, ``path``'s pages are evicted every ``every`` seconds, so
    that a reader in another process finds at most ``every`` seconds' worth of its own
    reads in the cache. ``cached_after`` is the share :func:`cached_share` found just after
    the first eviction (the check that eviction works on this file system).

    Example:
        >>> with Evicting(corpus) as evicting:
        ...     run_the_sweep()
        >>> evicting.cached_after
        0.0
    """

    def __init__(self, path: Path, every: float = 0.5) -> None:
        if every <= 0:
            raise ValueError(f"every must be > 0 seconds, got {every}")
        self.path, self.every = path, every
        self.cached_after: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Evicting:
        evict(self.path)
        self.cached_after = cached_share(self.path)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            evict(self.path)


def cold_read_mb_s(path: Path) -> float:
    """MB/s (10^6 bytes) of one sequential read of the whole of ``path`` in 8 MiB blocks,
    its pages evicted first: what the disk delivers to the simplest possible reader."""
    evict(path)
    block = bytearray(READ_BLOCK)
    total = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(block):
            total += count
    return total / (time.perf_counter() - started) / 1e6
