"""Streaming rows from the h5 file: a split that holds only row ids and labels and reads its
features batch by batch (:class:`StreamSplit`), the one streaming pass that checks a corpus
and fits its normalisation (:func:`scan_split`), and a read-ahead thread that overlaps
reading with the compiled step (:func:`prefetched`).

A :class:`StreamSplit` answers the same calls as a resident :class:`sermodels.data.Split`
(``read``, ``chunks``, ``select``, ``concat``, ``keys``, ``shapes``), so the training code
asks for rows one way whichever mode the corpus is in.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import h5py
import numpy as np

from sermodels.data.contract import read_rows
from sermodels.data.preprocessing import Preprocessing
from sermodels.errors import DataError

CHUNK_BYTES = 64 * 2**20  # raw rows read at once by the checking pass and by `chunks`
PREFETCH_DEPTH = 2  # batches read ahead of the step


@dataclass
class StreamSplit:
    """Rows of one split, read from ``source`` when asked for.

    Args:
        source: the h5 file (a path every worker can read).
        rows: file row ids (sorted, as the row plan gives them).
        labels: the label matrix of those rows (small: kept in memory).
        labelled: mask of rows whose labels may be used.
        preprocessing: layout, crop and normalisation of each feature key.
        shapes: prepared shape of one row per feature key.

    Example:
        >>> batch = split.read(np.array([5, 2, 9]))  # doctest: +SKIP
        >>> batch["a_feat"].shape  # three prepared rows, in the order asked
    """

    source: str
    rows: np.ndarray
    labels: np.ndarray
    labelled: np.ndarray
    preprocessing: Preprocessing
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    resident = False

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict:
        return dict(vars(self))  # no file handle travels: each process opens its own

    @property
    def keys(self) -> list[str]:
        return list(self.shapes)

    def read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Prepared features of the rows at ``positions`` (into this split), in that order."""
        file_rows = self.rows[np.asarray(positions, dtype=np.int64)]
        unique, inverse = np.unique(file_rows, return_inverse=True)  # h5 reads go in order
        h5 = open_source(self.source)
        features = {}
        for key in self.keys:
            raw = read_rows(h5[key], unique, self.source, key).astype(np.float32, copy=False)
            features[key] = self.preprocessing.apply(key, raw)[inverse]
        return features

    def chunks(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """Prepared features of every row, ``size`` rows at a time, in split order."""
        for start in range(0, len(self), size):
            yield self.read(np.arange(start, min(start + size, len(self))))

    def select(self, positions: np.ndarray) -> StreamSplit:
        return StreamSplit(
            self.source,
            self.rows[positions],
            self.labels[positions],
            self.labelled[positions],
            self.preprocessing,
            self.shapes,
        )

    def concat(self, other: StreamSplit) -> StreamSplit:
        return StreamSplit(
            self.source,
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.labelled, other.labelled]),
            self.preprocessing,
            self.shapes,
        )


_OPEN: dict[tuple[int, str], h5py.File] = {}


def open_source(path: str) -> h5py.File:
    """This process's read handle of ``path`` (opened once; a forked child opens its own)."""
    handle = _OPEN.get((os.getpid(), path))
    if handle is None:
        handle = _OPEN[(os.getpid(), path)] = h5py.File(path, "r")
    return handle


def check_readable(path: str) -> None:
    """Fail with one line naming ``path`` and this node when a worker cannot open the corpus
    it is to stream (a node without the shared storage, or without its local copy)."""
    try:
        open_source(path)
    except OSError as exc:
        problem = exc.strerror or str(exc).splitlines()[0]
        raise DataError(
            path,
            None,
            f"cannot be read on node {socket.gethostname()} ({problem}); streaming needs the "
            "corpus at this path on every node (shared storage, or a copy per node)",
        ) from None


class RunningStats:
    """Normalisation statistics of one feature key, accumulated chunk by chunk: the same
    values :meth:`sermodels.data.preprocessing.Preprocessing.fit` takes from all rows at once
    (per-channel mean and variance merged as Chan et al. 1979, in float64)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.count = 0
        self.low, self.high = np.inf, -np.inf
        self.mean = self.m2 = None

    def update(self, arranged: np.ndarray) -> None:
        if not len(arranged) or self.method not in ("minmax", "zscore"):
            return
        if self.method == "minmax":
            self.low = min(self.low, float(arranged.min()))
            self.high = max(self.high, float(arranged.max()))
            return
        values = arranged.reshape(-1, arranged.shape[-1]).astype(np.float64)
        count = len(values)
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / total
        self.count = total

    def result(self) -> dict | None:
        """The statistics (``None`` when no row was seen or the method needs none)."""
        if self.method == "minmax" and np.isfinite(self.low):
            return {"low": self.low, "high": self.high}
        if self.method == "zscore" and self.mean is not None:
            std = np.sqrt(self.m2 / self.count) + 1e-6
            return {"mean": self.mean.tolist(), "std": std.tolist()}
        return None


def scan_split(h5, path: str, key: str, rows: np.ndarray, arrange, stats: RunningStats | None):
    """One streaming pass over ``rows`` of ``key``: every value finite (else a one-line
    error naming the first bad row), and, with ``stats``, the arranged rows accumulated."""
    data = h5[key]
    row_bytes = max(1, int(np.prod(data.shape[1:])) * 4)
    step = max(1, CHUNK_BYTES // row_bytes)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        raw = read_rows(data, chunk, path, key).astype(np.float32, copy=False)
        bad = ~np.isfinite(raw.reshape(len(raw), -1)).all(axis=1)
        if bad.any():
            raise DataError(path, key, f"non-finite values (NaN/Inf) in row {chunk[bad][0]}")
        if stats is not None:
            stats.update(arrange(key, raw))


def prefetched(items: Iterable, depth: int = PREFETCH_DEPTH) -> Iterator:
    """``items`` produced by a background thread up to ``depth`` ahead, so reading the next
    batch overlaps the step on this one (h5py and the compiled steps release the GIL). An
    error in the producer is raised here, at the item where it happened."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
        except BaseException as exc:  # handed to the consumer, raised in its thread
            buffer.put((None, exc))
            return
        buffer.put((done, None))

    thread = threading.Thread(target=produce, name="sersweep-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a producer blocked on a full buffer see the stop
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
