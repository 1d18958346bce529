"""What an h5 corpus holds, checked: feature keys of the right rank, a label matrix whose
columns may be named, and optional folds. Every problem is a one-line :class:`DataError`.

Layout (as in the source projects):

* feature keys (``a_feat``, ``v_feat``, any name): ``(n, long_frames, 1, short_frames, dims)``
  (2-D input) or ``(n, 1, time, context, dims)`` (3-D input); SER models also take
  ``(n, time, dims)`` (1-D input) and ``(n, dims)``;
* ``label``: ``(n, columns)``, e.g. arousal, valence, category, speaker id, corpus id,
  gender; its attributes ``columns`` and ``kinds`` name each column and say what it holds
  (``class`` ids, ``continuous`` values or ``id`` s such as speakers);
* optional ``start_indice`` / ``end_indice``: one row range per fold (speakers, sessions).
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from sermodels.errors import DataError
from sermodels.specs import TaskSpec

LABEL_KEY = "label"
FOLD_KEYS = ("start_indice", "end_indice")
COLUMN_KINDS = ("class", "continuous", "id")
SPEAKER_COLUMN = "speaker"


def open_h5(path: str) -> h5py.File:
    """Open ``path`` read-only, or say in one line why it cannot be."""
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "is a folder; expected an .h5 file") from None
    except OSError:
        if not h5py.is_hdf5(path):
            problem = (
                "not an HDF5 file (no HDF5 signature; expected the output of extract/demo-data)"
            )
        else:
            problem = "HDF5 file cannot be opened (truncated or corrupt; write it again)"
        raise DataError(path, None, problem) from None


def dataset(h5: h5py.File, path: str, key: str) -> h5py.Dataset:
    if key not in h5:
        raise DataError(path, key, f"key not found (file has: {', '.join(sorted(h5.keys()))})")
    found = h5[key]
    if not isinstance(found, h5py.Dataset):
        raise DataError(path, key, "expected a dataset, found a group")
    return found


def read(data: h5py.Dataset, path: str, key: str, selection=slice(None)) -> np.ndarray:
    try:
        return np.asarray(data[selection])
    except (OSError, RuntimeError) as exc:
        raise DataError(path, key, f"cannot read rows (truncated or corrupt file: {exc})") from None


def read_rows(data: h5py.Dataset, rows: np.ndarray, path: str, key: str) -> np.ndarray:
    """Read ``rows`` (sorted) as contiguous runs: h5 slices are fast, fancy indexing is not."""
    if len(rows) == 0:
        return np.zeros((0, *data.shape[1:]), dtype=data.dtype)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    runs = np.split(rows, breaks)
    return np.concatenate([read(data, path, key, slice(r[0], r[-1] + 1)) for r in runs])


def check_feature(data: h5py.Dataset, path: str, key: str, n_rows: int, layout: str) -> None:
    """A feature key's rank fits the model's layout and its rows match the labels."""
    shape = data.shape
    five_d = len(shape) == 5 and (shape[2] == 1 or shape[1] == 1)
    if layout == "image" and not five_d:
        raise DataError(
            path,
            key,
            "expected 5 dims (n, long_frames, 1, short_frames, dims) or "
            f"(n, 1, time, context, dims), got shape {shape}",
        )
    if layout == "sequence" and not (five_d or len(shape) in (2, 3)):
        raise DataError(
            path,
            key,
            "expected (n, long_frames, 1, short_frames, dims), (n, 1, time, context, dims), "
            f"(n, time, dims) or (n, dims), got shape {shape}",
        )
    if shape[0] != n_rows:
        raise DataError(path, key, f"has {shape[0]} rows but label has {n_rows}")


@dataclass(frozen=True)
class LabelColumns:
    """The label matrix's columns: how many, and their names and kinds when the file says."""

    count: int
    names: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None

    def index(self, column: int | str, path: str, task: str) -> int:
        """The column a task names (a number, or a name the file gives)."""
        if isinstance(column, int):
            if column >= self.count:
                raise DataError(
                    path,
                    LABEL_KEY,
                    f"task {task!r} uses column {column} but label has {self.count} columns",
                )
            return column
        if self.names is None:
            raise DataError(
                path,
                LABEL_KEY,
                f"task {task!r} names column {column!r} but the file has no "
                "column names; use its number",
            )
        if column not in self.names:
            raise DataError(
                path,
                LABEL_KEY,
                f"task {task!r} names column {column!r}; the file has {', '.join(self.names)}",
            )
        return self.names.index(column)

    def resolve(self, task: TaskSpec, path: str) -> TaskSpec:
        """``task`` with its column as a number, checked against the column's kind: a class
        task needs a ``class`` column, no task reads an ``id`` column."""
        column = self.index(task.column, path, task.name)
        kind = self.kinds[column] if self.kinds else None
        name = f"{self.names[column]!r} " if self.names else ""
        if kind == "id" or (kind == "continuous" and not task.is_regression):
            use = "regress" if task.is_regression else f"classify ({task.n_classes} classes)"
            raise DataError(
                path,
                LABEL_KEY,
                f"task {task.name!r} would {use} column {column} {name}which holds {kind} values",
            )
        return task.on_column(column)

    def named(self, name: str) -> int | None:
        """The index of the column called ``name``, if the file names its columns."""
        return self.names.index(name) if self.names and name in self.names else None


def label_columns(labels: h5py.Dataset, h5: h5py.File, path: str) -> LabelColumns:
    """Names and kinds from the ``label`` dataset's attributes (older files kept the names
    in the file's ``label_columns`` attribute, without kinds)."""
    count = labels.shape[1]
    names = attribute_list(labels.attrs.get("columns")) or attribute_list(
        h5.attrs.get("label_columns")
    )
    kinds = attribute_list(labels.attrs.get("kinds"))
    if names is not None and len(names) != count:
        raise DataError(path, LABEL_KEY, f"names {len(names)} columns but has {count}")
    if kinds is not None and (len(kinds) != count or set(kinds) - set(COLUMN_KINDS)):
        raise DataError(path, LABEL_KEY, f"kinds must be {count} of {COLUMN_KINDS}, got {kinds}")
    return LabelColumns(count, names, kinds)


def attribute_list(value) -> tuple[str, ...] | None:
    """A comma-separated h5 attribute (``"a,b"``) as a tuple of names."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return tuple(part.strip() for part in str(value).split(","))


def write_label_columns(labels: h5py.Dataset, names: list[str], kinds: list[str]) -> None:
    """Name the label matrix's columns and say what each holds (writers call this)."""
    assert len(names) == len(kinds) == labels.shape[1] and set(kinds) <= set(COLUMN_KINDS)
    labels.attrs["columns"] = ",".join(names)
    labels.attrs["kinds"] = ",".join(kinds)


def file_folds(h5: h5py.File, path: str, n_rows: int) -> list[np.ndarray] | None:
    """Row ranges of the file's folds (``None`` when it has none)."""
    if FOLD_KEYS[0] not in h5 and FOLD_KEYS[1] not in h5:
        return None
    starts, ends = (read(dataset(h5, path, k), path, k).astype(np.int64) for k in FOLD_KEYS)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise DataError(
            path, "end_indice", f"shape {ends.shape} differs from start_indice {starts.shape}"
        )
    bad = np.flatnonzero((starts < 0) | (ends < starts) | (ends > n_rows))
    if bad.size:
        fold = int(bad[0])
        raise DataError(
            path,
            "start_indice",
            f"fold {fold} range [{starts[fold]}, {ends[fold]}) is not within 0..{n_rows}",
        )
    return [np.arange(s, e) for s, e in zip(starts, ends, strict=True)]
