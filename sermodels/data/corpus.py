"""The h5 data contract: validated, fold-aware reading of only the rows and keys needed.

Layout (as in the source projects):

* feature keys (``a_feat``, ``v_feat``, any name): ``(n, long_frames, 1, short_frames, dims)``
  for 2D input or ``(n, 1, time, context, dims)`` for 3D input;
* ``label``: ``(n, columns)``, e.g. arousal, valence, category, speaker id, corpus id, gender;
* optional ``start_indice`` / ``end_indice``: one row range per cross-validation fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import h5py
import numpy as np

from sermodels.errors import ConfigError, DataError
from sermodels.specs import TaskSpec, parse_ids, parse_tasks

LABEL_KEY = "label"
FOLD_KEYS = ("start_indice", "end_indice")


@dataclass
class DataConfig:
    """Which file, keys, tasks and folds to use.

    Args:
        path: the h5 corpus (``None``: the built-in demo corpus).
        features: feature keys, one per modality (``["a_feat", "v_feat"]``).
        tasks: task spec ``name:n_classes:column[:loss[:weight[:metric]]]``, comma-separated.
        test_idx / valid_idx / train_idx: fold ids (``"0,1"``, ``"111:130"``). Without
            ``start_indice`` in the file they name speaker ids of ``speaker_column``.
        unlabelled_idx: folds whose rows train the GAN without their labels.
        speaker_column: label column holding speaker ids (speaker-independent split).
        r_valid / r_test: ratio split when the file has neither folds nor a speaker column;
            ``r_valid`` also carves validation out of training when ``valid_idx`` is empty.
        r_nrow / r_ncol: crop of the flattened time x feature image, per modality.
        normalize: ``minmax`` (to [-1, 1], for tanh generators), ``zscore`` or ``none``.
        seed: seed of the ratio splits.
    """

    path: str | None = None
    features: list[str] = field(default_factory=lambda: ["a_feat"])
    tasks: str = "category:4:2"
    test_idx: str | int | list | None = "0"
    valid_idx: str | int | list | None = "1"
    train_idx: str | int | list | None = None
    unlabelled_idx: str | int | list | None = None
    speaker_column: int | None = None
    r_valid: float = 0.0
    r_test: float = 0.0
    r_nrow: list[int] | int | None = None
    r_ncol: list[int] | int | None = None
    normalize: str = "auto"
    seed: int = 0


@dataclass
class Split:
    """Rows of one split: features per modality, the label matrix and a labelled mask."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    labelled: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, rows: np.ndarray) -> Split:
        return Split(
            {k: v[rows] for k, v in self.features.items()}, self.labels[rows], self.labelled[rows]
        )

    def concat(self, other: Split) -> Split:
        return Split(
            {k: np.concatenate([v, other.features[k]]) for k, v in self.features.items()},
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.labelled, other.labelled]),
        )


@dataclass
class Corpus:
    """A validated train / valid / test split, ready for a model."""

    train: Split
    valid: Split
    test: Split
    tasks: list[TaskSpec]
    source: str
    layout: str  # "image" (SGAN) or "sequence" (SER)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v.shape[1:] for k, v in self.train.features.items()}

    def with_tasks(self, tasks: list[TaskSpec]) -> Corpus:
        """The same rows read for other heads (a searched task list); their labels are
        checked as at load, so a head with too few classes is an error, not a crash mid-fit."""
        for name in ("train", "valid", "test"):
            _check_labels(getattr(self, name), tasks, self.source, name)
        return replace(self, tasks=list(tasks))

    def for_final_training(self) -> Corpus:
        """Train on train + valid rows with no validation (final runs use a fixed number of
        epochs). When valid is the test split itself, it stays out of training."""
        train = self.train if self.valid is self.test else self.train.concat(self.valid)
        empty = self.valid.select(np.zeros(0, dtype=int))
        return Corpus(train, empty, self.test, self.tasks, self.source, self.layout)


def load_corpus(config: DataConfig, path: str, layout: str = "image") -> Corpus:
    """Read, validate and split ``path`` according to ``config``.

    Only the requested keys and the rows of the chosen folds are read. Raises
    :class:`DataError` (one line naming file, key and problem) before any model is built.

    Example:
        >>> corpus = load_corpus(DataConfig(features=["a_feat"]), "demo.h5")  # doctest: +SKIP
    """
    if layout not in ("image", "sequence"):
        raise ValueError(f"layout must be 'image' or 'sequence', got {layout!r}")
    tasks = parse_tasks(config.tasks, "data.tasks")
    if not config.features:
        raise ConfigError("data.features", "name at least one feature key, e.g. ['a_feat']")
    try:
        h5 = h5py.File(path, "r")
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "is a folder; expected an .h5 file") from None
    except OSError:
        raise DataError(path, None, _unreadable(path)) from None
    with h5:
        return _read_corpus(h5, path, config, tasks, layout)


def _unreadable(path: str) -> str:
    """Why h5py cannot open ``path``: not HDF5 at all, or an HDF5 file cut short."""
    if not h5py.is_hdf5(path):
        return "not an HDF5 file (no HDF5 signature; expected the output of extract/demo-data)"
    return "HDF5 file cannot be opened (truncated or corrupt; write it again)"


def _read_corpus(h5, path, config, tasks, layout) -> Corpus:
    labels = _dataset(h5, path, LABEL_KEY)
    if labels.ndim != 2:
        raise DataError(path, LABEL_KEY, f"expected 2 dims (n, columns), got shape {labels.shape}")
    n_rows = labels.shape[0]
    for key in config.features:
        _check_feature_shape(_dataset(h5, path, key), path, key, n_rows)
    for task in tasks:
        if task.column >= labels.shape[1]:
            raise DataError(
                path,
                LABEL_KEY,
                f"task {task.name!r} uses column {task.column} but label has "
                f"{labels.shape[1]} columns",
            )
    label_matrix = _read_h5(labels, path, LABEL_KEY)
    rows = _split_rows(h5, path, config, label_matrix)
    unlabelled = rows.pop("unlabelled")
    rows["train"] = np.union1d(rows["train"], unlabelled)
    splits = {
        name: _read_split(h5, path, config, label_matrix, rows[name], layout)
        for name in ("train", "test")
    }
    # validation = test when no valid fold: read those rows once, not twice
    same = rows["valid"] is rows["test"]
    splits["valid"] = (
        splits["test"]
        if same
        else _read_split(h5, path, config, label_matrix, rows["valid"], layout)
    )
    splits["train"].labelled = ~np.isin(rows["train"], unlabelled)
    for name, split in splits.items():
        _check_labels(split, tasks, path, name)
    _crop_and_normalize(splits, config, path, layout)
    return Corpus(splits["train"], splits["valid"], splits["test"], tasks, path, layout)


def _dataset(h5, path, key) -> h5py.Dataset:
    if key not in h5:
        raise DataError(path, key, f"key not found (file has: {', '.join(sorted(h5.keys()))})")
    dataset = h5[key]
    if not isinstance(dataset, h5py.Dataset):
        raise DataError(path, key, "expected a dataset, found a group")
    return dataset


def _read_h5(dataset, path, key, selection=slice(None)) -> np.ndarray:
    try:
        return np.asarray(dataset[selection])
    except (OSError, RuntimeError) as exc:
        raise DataError(path, key, f"cannot read rows (truncated or corrupt file: {exc})") from None


def _check_feature_shape(dataset, path, key, n_rows) -> None:
    shape = dataset.shape
    if len(shape) != 5 or (shape[2] != 1 and shape[1] != 1):
        raise DataError(
            path,
            key,
            "expected 5 dims (n, long_frames, 1, short_frames, dims) or "
            f"(n, 1, time, context, dims), got shape {shape}",
        )
    if shape[0] != n_rows:
        raise DataError(path, key, f"has {shape[0]} rows but label has {n_rows}")


def _split_rows(h5, path, config, label_matrix) -> dict[str, np.ndarray]:
    """Row indices of train / valid / test (and which train rows are unlabelled)."""
    folds = _folds(h5, path, config, label_matrix)
    if folds is None:
        return _ratio_split(len(label_matrix), config)
    test = _fold_ids(config.test_idx, folds, path, "test_idx")
    valid = _fold_ids(config.valid_idx, folds, path, "valid_idx")
    unlabelled = _fold_ids(config.unlabelled_idx, folds, path, "unlabelled_idx")
    held_out = set(test) | set(valid) | set(unlabelled)
    if config.train_idx not in (None, ""):
        train = _fold_ids(config.train_idx, folds, path, "train_idx")
    else:
        train = [f for f in range(len(folds)) if f not in held_out and len(folds[f])]
    if not train:
        raise DataError(path, "start_indice", "no training folds left after test/valid")
    if not test:
        raise ConfigError("data.test_idx", "name at least one test fold")
    rows = {
        "train": _rows_of(folds, train),
        "test": _rows_of(folds, test),
        "unlabelled": _rows_of(folds, unlabelled),
    }
    if valid:
        rows["valid"] = _rows_of(folds, valid)
    elif config.r_valid > 0:
        rows["train"], rows["valid"] = _carve(rows["train"], config.r_valid, config.seed)
    else:
        rows["valid"] = rows["test"]  # as the source SGAN: validate on test when no valid fold
    return rows


def _folds(h5, path, config, label_matrix) -> list[np.ndarray] | None:
    if FOLD_KEYS[0] in h5 or FOLD_KEYS[1] in h5:
        return _index_folds(h5, path, len(label_matrix))
    if config.speaker_column is None:
        return None
    column = config.speaker_column
    if column >= label_matrix.shape[1]:
        raise DataError(path, LABEL_KEY, f"speaker_column {column} out of range")
    speakers = label_matrix[:, column].astype(np.int64)
    return [np.flatnonzero(speakers == s) for s in range(int(speakers.max()) + 1)]


def _index_folds(h5, path, n_rows) -> list[np.ndarray]:
    starts, ends = (_read_h5(_dataset(h5, path, k), path, k).astype(np.int64) for k in FOLD_KEYS)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise DataError(
            path, "end_indice", f"shape {ends.shape} differs from start_indice {starts.shape}"
        )
    bad = np.flatnonzero((starts < 0) | (ends < starts) | (ends > n_rows))
    if bad.size:
        f = int(bad[0])
        raise DataError(
            path,
            "start_indice",
            f"fold {f} range [{starts[f]}, {ends[f]}) is not within 0..{n_rows}",
        )
    return [np.arange(s, e) for s, e in zip(starts, ends, strict=True)]


def _fold_ids(spec, folds, path, name) -> list[int]:
    ids = parse_ids(spec, f"data.{name}")
    for fold in ids:
        if fold >= len(folds):
            raise DataError(
                path,
                "start_indice",
                f"{name} names fold {fold} but the file has "
                f"{len(folds)} folds (0..{len(folds) - 1})",
            )
        if len(folds[fold]) == 0:
            raise DataError(path, "start_indice", f"{name} names fold {fold}, which is empty")
    return ids


def _rows_of(folds, ids) -> np.ndarray:
    if not ids:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([folds[i] for i in ids]))


def _ratio_split(n_rows, config) -> dict[str, np.ndarray]:
    if not (0 < config.r_test < 1 and 0 <= config.r_valid < 1 - config.r_test):
        raise ConfigError(
            "data.r_test",
            "without folds or speaker_column, set 0 < r_test < 1 "
            "(and 0 <= r_valid < 1 - r_test) for a ratio split",
        )
    order = np.random.default_rng(config.seed).permutation(n_rows)
    n_test, n_valid = int(n_rows * config.r_test), int(n_rows * config.r_valid)
    test, valid, train = np.split(order, [n_test, n_test + n_valid])
    rows = {"train": np.sort(train), "test": np.sort(test), "unlabelled": np.zeros(0, np.int64)}
    rows["valid"] = np.sort(valid) if n_valid else rows["test"]
    return rows


def _carve(rows, share, seed) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(rows)
    n_valid = max(1, int(len(rows) * share))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def _read_split(h5, path, config, label_matrix, rows, layout) -> Split:
    features = {}
    for key in config.features:
        data = _read_rows(h5[key], rows, path, key).astype(np.float32, copy=False)
        bad = ~np.isfinite(data.reshape(len(data), -1)).all(axis=1)
        if bad.any():
            raise DataError(path, key, f"non-finite values (NaN/Inf) in row {rows[bad][0]}")
        features[key] = _to_layout(data, layout)
    labelled = np.ones(len(rows), dtype=bool)
    return Split(features, label_matrix[rows].astype(np.float32), labelled)


def _read_rows(dataset, rows, path, key) -> np.ndarray:
    """Read ``rows`` (sorted) as contiguous runs: h5 slices are fast, fancy indexing is not."""
    if len(rows) == 0:
        return np.zeros((0, *dataset.shape[1:]), dtype=dataset.dtype)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    runs = np.split(rows, breaks)
    return np.concatenate([_read_h5(dataset, path, key, slice(r[0], r[-1] + 1)) for r in runs])


def _to_layout(data, layout) -> np.ndarray:
    """image: (n, rows, cols) with rows = flattened time; sequence: (n, time, context, dims)."""
    n, a, b, c, d = data.shape
    if layout == "image":
        return data.reshape(n, a * b * c, d)
    return data[:, :, 0] if b == 1 else data[:, 0]


def _check_labels(split, tasks, path, split_name) -> None:
    for task in tasks:
        values = split.labels[split.labelled, task.column]
        if not np.isfinite(values).all():
            raise DataError(
                path,
                LABEL_KEY,
                f"column {task.column} ({task.name}) has non-finite "
                f"values in the {split_name} split",
            )
        if task.is_regression:
            continue
        bad = (values < 0) | (values >= task.n_classes) | (values != np.round(values))
        if bad.any():
            raise DataError(
                path,
                LABEL_KEY,
                f"column {task.column} ({task.name}) holds "
                f"{values[bad][0]:g}; expected class ids 0..{task.n_classes - 1}",
            )


def _crop_and_normalize(splits, config, path, layout) -> None:
    """Crop and normalise every distinct split; the first is train, whose statistics rule."""
    ordered = (splits["train"], splits["valid"], splits["test"])
    distinct = list({id(s): s for s in ordered}.values())  # valid may be test itself
    for index, key in enumerate(config.features):
        arrays = [s.features[key] for s in distinct]
        if layout == "image":
            arrays = _crop(arrays, config, index, path, key)
        arrays = _normalize(arrays, config.normalize, layout)
        for split, array in zip(distinct, arrays, strict=True):
            split.features[key] = array


def _crop(arrays, config, index, path, key) -> list[np.ndarray]:
    rows, cols = arrays[0].shape[1:]
    n_row = _per_modality(config.r_nrow, index, rows, "r_nrow")
    n_col = _per_modality(config.r_ncol, index, cols, "r_ncol")
    if n_row > rows or n_col > cols:
        raise DataError(
            path,
            key,
            f"r_nrow x r_ncol = {n_row}x{n_col} exceeds the flattened image {rows}x{cols}",
        )
    return [a[:, :n_row, :n_col, None] for a in arrays]


def _per_modality(value, index, default, name) -> int:
    if value is None:
        return default
    values = value if isinstance(value, list) else [value]
    if index >= len(values):
        raise ConfigError(f"data.{name}", f"give one value per feature key, got {values}")
    return int(values[index])


def _normalize(arrays, method, layout) -> list[np.ndarray]:
    method = ("minmax" if layout == "image" else "zscore") if method == "auto" else method
    train = arrays[0]
    if method == "none" or len(train) == 0:
        return arrays
    if method == "minmax":
        low, high = float(train.min()), float(train.max())
        scale = 2.0 / max(high - low, 1e-8)
        return [np.clip((a - low) * scale - 1.0, -1.0, 1.0).astype(np.float32) for a in arrays]
    if method == "zscore":
        axes = tuple(range(train.ndim - 1))
        mean, std = train.mean(axis=axes), train.std(axis=axes) + 1e-6
        return [((a - mean) / std).astype(np.float32) for a in arrays]
    raise ConfigError("data.normalize", f"expected minmax, zscore, none or auto, got {method!r}")
