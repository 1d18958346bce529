"""A run's data: the rows its ``data`` section selects (:mod:`sermodels.data.selection`),
read from the h5 file (:mod:`sermodels.data.contract`) and prepared for the model: laid out,
cropped and normalised with statistics of the training rows (:class:`Preprocessing`, which
is saved with the models so predictions see the same inputs).

Only the requested keys and the rows of the chosen folds are read, in contiguous runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sermodels.data.contract import (
    LABEL_KEY,
    SPEAKER_COLUMN,
    LabelColumns,
    attribute_list,
    check_feature,
    dataset,
    file_folds,
    label_columns,
    open_h5,
    read,
    read_rows,
)
from sermodels.data.modes import DataChoice, MemoryShare, check_mode, choose_mode
from sermodels.data.selection import RowPlan, plan_rows
from sermodels.data.stream import RunningStats, StreamSplit, scan_split
from sermodels.errors import ConfigError, DataError
from sermodels.specs import TaskSpec, parse_tasks

LAYOUTS = ("image", "sequence")
NORMALIZATIONS = ("auto", "minmax", "zscore", "none")


@dataclass
class DataConfig:
    """Which file, keys, tasks and folds to use.

    Args:
        path: the h5 corpus (``None``: the built-in demo corpus).
        features: feature keys, one per modality (``["a_feat", "v_feat"]``).
        tasks: task spec ``name:n_classes:column[:loss[:weight[:metric]]]``, comma-separated;
            the column by number or by the name the file gives it.
        test_idx / valid_idx / train_idx: fold ids (``"0,1"``, ``"111:130"``). Without
            ``start_indice`` in the file they name speaker ids of ``speaker_column``.
        unlabelled_idx: folds whose rows train the GAN without their labels.
        adopt_idx: folds an SER model adapts to after training (the source's ``-adopt_idx``).
        ignore_idx: folds left out of everything (the source's ``-ignore_idx``).
        valid_is_test: allow validation on the test folds (``launch.py train`` only).
        speaker_column: label column (number or name) holding speaker ids.
        r_valid / r_test: ratio split when the file has neither folds nor a speaker column;
            ``r_valid`` also carves validation speakers out of training.
        r_nrow / r_ncol: crop of the flattened time x feature image, per modality.
        normalize: ``minmax`` (to [-1, 1], for tanh generators), ``zscore``, ``none``, or
            ``auto`` (minmax for the SGAN, zscore for SER).
        seed: seed of the ratio and r_valid splits.
    """

    path: str | None = None
    features: list[str] = field(default_factory=lambda: ["a_feat"])
    tasks: str = "category:4:2"
    test_idx: str | int | list | None = "0"
    valid_idx: str | int | list | None = "1"
    train_idx: str | int | list | None = None
    unlabelled_idx: str | int | list | None = None
    adopt_idx: str | int | list | None = None
    ignore_idx: str | int | list | None = None
    valid_is_test: bool = False
    speaker_column: int | str | None = None
    r_valid: float = 0.0
    r_test: float = 0.0
    r_nrow: list[int] | int | None = None
    r_ncol: list[int] | int | None = None
    normalize: str = "auto"
    seed: int = 0


@dataclass
class Preprocessing:
    """How raw rows of each feature key become model inputs: the layout, the crop, and the
    normalisation with its statistics (from the training rows).

    Example:
        >>> prep.apply("a_feat", raw_rows)  # doctest: +SKIP
    """

    layout: str
    crops: dict[str, tuple[int, int]] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict] = field(default_factory=dict)

    def arrange(self, key: str, raw: np.ndarray) -> np.ndarray:
        """Layout and crop (no statistics needed)."""
        data = to_layout(np.asarray(raw, np.float32), self.layout)
        if self.layout == "image":
            rows, cols = self.crops[key]
            data = data[:, :rows, :cols, None]
        return data

    def fit(self, key: str, arranged: np.ndarray) -> None:
        """Statistics of ``key`` from arranged training rows."""
        method = self.methods[key]
        if method == "minmax":
            self.stats[key] = {"low": float(arranged.min()), "high": float(arranged.max())}
        elif method == "zscore":
            axes = tuple(range(arranged.ndim - 1))
            self.stats[key] = {
                "mean": arranged.mean(axis=axes, dtype=np.float64).tolist(),
                "std": (arranged.std(axis=axes, dtype=np.float64) + 1e-6).tolist(),
            }

    def normalize(self, key: str, arranged: np.ndarray) -> np.ndarray:
        method, stats = self.methods[key], self.stats.get(key)
        if method == "none" or not stats:
            return arranged
        if method == "minmax":
            scale = 2.0 / max(stats["high"] - stats["low"], 1e-8)
            scaled = (arranged - stats["low"]) * scale - 1.0
            return np.clip(scaled, -1.0, 1.0).astype(np.float32)
        mean = np.asarray(stats["mean"], np.float32)
        std = np.asarray(stats["std"], np.float32)
        return ((arranged - mean) / std).astype(np.float32)

    def apply(self, key: str, raw: np.ndarray) -> np.ndarray:
        """Raw rows of ``key`` (as the file holds them) -> model inputs."""
        return self.normalize(key, self.arrange(key, raw))

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "crops": {k: list(v) for k, v in self.crops.items()},
            "methods": self.methods,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, values: dict) -> Preprocessing:
        crops = {k: tuple(v) for k, v in values.get("crops", {}).items()}
        return cls(values["layout"], crops, dict(values["methods"]), dict(values["stats"]))


@dataclass
class Split:
    """Rows of one split held in memory: file row ids, prepared features per feature key, the
    label matrix and a mask of rows whose labels may be used. Answers the same calls as a
    streaming :class:`sermodels.data.stream.StreamSplit`."""

    rows: np.ndarray
    features: dict[str, np.ndarray]
    labels: np.ndarray
    labelled: np.ndarray

    resident = True

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def keys(self) -> list[str]:
        return list(self.features)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v.shape[1:] for k, v in self.features.items()}

    def read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Prepared features of the rows at ``positions``, in that order."""
        return {k: v[positions] for k, v in self.features.items()}

    def chunks(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """Prepared features of every row, ``size`` rows at a time, in split order."""
        for start in range(0, len(self), size):
            yield {k: v[start : start + size] for k, v in self.features.items()}

    def select(self, rows: np.ndarray) -> Split:
        return Split(
            self.rows[rows],
            {k: v[rows] for k, v in self.features.items()},
            self.labels[rows],
            self.labelled[rows],
        )

    def concat(self, other: Split) -> Split:
        return Split(
            np.concatenate([self.rows, other.rows]),
            {k: np.concatenate([v, other.features[k]]) for k, v in self.features.items()},
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.labelled, other.labelled]),
        )


@dataclass
class Corpus:
    """A validated train / valid / test (/ adopt) split, ready for a model."""

    train: Split | StreamSplit
    valid: Split | StreamSplit
    test: Split | StreamSplit
    tasks: list[TaskSpec]
    source: str
    layout: str
    preprocessing: Preprocessing
    columns: LabelColumns
    plan: RowPlan
    adopt: Split | StreamSplit | None = None
    categories: tuple[str, ...] | None = None
    extraction: dict | None = None  # ``launch.py extract``'s parameters, when it wrote the file
    data: DataChoice | None = None  # resident or streaming, and why

    @property
    def streaming(self) -> bool:
        return not self.train.resident

    def class_names(self, task: TaskSpec) -> list[str]:
        """Names of a task's classes: the file's category names for its category column,
        else the class ids."""
        names = self.columns.names
        on_category = names is not None and names[task.column] == "category"
        if on_category and self.categories and len(self.categories) >= task.n_classes:
            return list(self.categories[: task.n_classes])
        return [str(i) for i in range(task.n_classes)]

    @property
    def valid_is_test(self) -> bool:
        return self.valid is self.test

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.train.shapes

    def with_tasks(self, tasks: list[TaskSpec]) -> Corpus:
        """The same rows read for other heads (a searched task list); their labels are
        checked as at load, so a head with too few classes is an error, not a crash mid-fit."""
        tasks = [self.columns.resolve(t, self.source) for t in tasks]
        for name in ("train", "valid", "test"):
            _check_labels(getattr(self, name), tasks, self.source, name)
        return replace(self, tasks=list(tasks))

    def for_final_training(self) -> Corpus:
        """Train on train + valid rows with no validation (final runs use a fixed number of
        epochs). When valid is the test split itself, it stays out of training."""
        train = self.train if self.valid_is_test else self.train.concat(self.valid)
        empty = self.valid.select(np.zeros(0, dtype=int))
        return replace(self, train=train, valid=empty)


def load_corpus(
    config: DataConfig,
    path: str,
    layout: str = "image",
    mode: str = "resident",
    share: MemoryShare | None = None,
) -> Corpus:
    """Read, validate and split ``path`` according to ``config``.

    Args:
        mode: ``resident`` (read every row into memory), ``stream`` (check every row in one
            streaming pass, fit the normalisation on the way, keep only row ids and labels)
            or ``auto`` (resident when the rows fit in half of ``share``).
        share: the memory a run may use (``auto``; default: this machine's).

    Raises :class:`DataError` (one line naming file, key and problem) or :class:`ConfigError`
    before any model is built.

    Example:
        >>> corpus = load_corpus(DataConfig(features=["a_feat"]), "demo.h5")  # doctest: +SKIP
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    tasks = parse_tasks(config.tasks, "data.tasks")
    if not config.features:
        raise ConfigError("data.features", "name at least one feature key, e.g. ['a_feat']")
    if config.normalize not in NORMALIZATIONS:
        raise ConfigError(
            "data.normalize", f"expected one of {NORMALIZATIONS}, got {config.normalize!r}"
        )
    check_mode(mode)
    with open_h5(path) as h5:
        return _read_corpus(h5, path, config, tasks, layout, mode, share)


def _read_corpus(
    h5,
    path: str,
    config: DataConfig,
    tasks: list[TaskSpec],
    layout: str,
    mode: str,
    share: MemoryShare | None,
) -> Corpus:
    labels = dataset(h5, path, LABEL_KEY)
    if labels.ndim != 2:
        raise DataError(path, LABEL_KEY, f"expected 2 dims (n, columns), got shape {labels.shape}")
    n_rows = labels.shape[0]
    for key in config.features:
        check_feature(dataset(h5, path, key), path, key, n_rows, layout)
    columns = label_columns(labels, h5, path)
    tasks = [columns.resolve(t, path) for t in tasks]
    label_matrix = read(labels, path, LABEL_KEY)
    plan = plan_rows(
        config,
        file_folds(h5, path, n_rows),
        _speakers(config, columns, label_matrix, path),
        n_rows,
        path,
    )
    prep = Preprocessing(
        layout, methods={key: _method(config.normalize, layout) for key in config.features}
    )
    if layout == "image":
        for index, key in enumerate(config.features):
            prep.crops[key] = _crop(config, index, h5[key].shape[1:], path, key)
    shapes = {
        key: prep.arrange(key, np.zeros((1, *h5[key].shape[1:]), np.float32)).shape[1:]
        for key in config.features
    }
    plans = {
        name: rows
        for name, rows in (
            ("train", plan.train),
            ("test", plan.test),
            ("valid", plan.valid),
            ("adopt", plan.adopt),
        )
        if name != "valid" or not plan.valid_is_test
    }
    row_bytes = 4 * sum(int(np.prod(shape)) for shape in shapes.values())
    choice = choose_mode(mode, row_bytes * sum(len(r) for r in plans.values()), share)
    if choice.mode == "stream":
        path = str(Path(path).resolve())  # workers open it, from whatever folder they run in
        raw = _stream_splits(h5, path, config, label_matrix, plans, prep, shapes)
    else:
        raw = _resident_splits(h5, path, config, label_matrix, plans, prep)
    raw["train"].labelled = ~np.isin(plan.train, plan.unlabelled)
    raw["valid"] = raw["test"] if plan.valid_is_test else raw["valid"]
    for name in ("train", "valid", "test"):
        _check_labels(raw[name], tasks, path, name)
    adopt = raw["adopt"] if len(plan.adopt) else None
    categories = attribute_list(h5.attrs.get("categories"))
    extraction = json.loads(h5.attrs["extraction"]) if "extraction" in h5.attrs else None
    return Corpus(
        raw["train"],
        raw["valid"],
        raw["test"],
        tasks,
        path,
        layout,
        prep,
        columns,
        plan,
        adopt,
        categories,
        extraction,
        choice,
    )


def _resident_splits(h5, path, config, label_matrix, plans, prep: Preprocessing) -> dict:
    """Every split read into memory, laid out, cropped and normalised with statistics of the
    training rows."""
    raw = {
        name: _read_split(h5, path, config, label_matrix, rows, prep)
        for name, rows in plans.items()
    }
    for key in config.features:
        if prep.layout == "image":
            for split in raw.values():
                split.features[key] = prep.arrange(key, split.features[key])
        if len(raw["train"]):
            prep.fit(key, raw["train"].features[key])
        for split in raw.values():
            split.features[key] = prep.normalize(key, split.features[key])
    return raw


def _stream_splits(h5, path, config, label_matrix, plans, prep: Preprocessing, shapes) -> dict:
    """Every row checked in one streaming pass (the training rows' statistics fitted on the
    way); the splits keep row ids and labels only."""
    for key in config.features:
        stats = RunningStats(prep.methods[key])
        for name, rows in plans.items():
            scan_split(h5, path, key, rows, prep.arrange, stats if name == "train" else None)
        if stats.result() is not None:
            prep.stats[key] = stats.result()
    return {
        name: StreamSplit(
            path,
            rows,
            label_matrix[rows].astype(np.float32),
            np.ones(len(rows), dtype=bool),
            prep,
            shapes,
        )
        for name, rows in plans.items()
    }


def _speakers(
    config: DataConfig, columns: LabelColumns, labels: np.ndarray, path: str
) -> np.ndarray | None:
    """Speaker id per row: ``speaker_column``, else the column the file names ``speaker``."""
    column = config.speaker_column
    if column is None:
        column = columns.named(SPEAKER_COLUMN)
        if column is None:
            return None
    index = columns.index(column, path, "speaker_column")
    return labels[:, index].astype(np.int64)


def _method(normalize: str, layout: str) -> str:
    if normalize == "auto":
        return "minmax" if layout == "image" else "zscore"
    return normalize


def _read_split(h5, path, config, label_matrix, rows, prep: Preprocessing) -> Split:
    """Raw rows of every feature key (laid out for the model, not yet cropped/normalised)."""
    features = {}
    for key in config.features:
        data = read_rows(h5[key], rows, path, key).astype(np.float32, copy=False)
        bad = ~np.isfinite(data.reshape(len(data), -1)).all(axis=1) if len(data) else []
        if np.any(bad):
            raise DataError(path, key, f"non-finite values (NaN/Inf) in row {rows[bad][0]}")
        features[key] = data if prep.layout == "image" else to_layout(data, prep.layout)
    labelled = np.ones(len(rows), dtype=bool)
    return Split(rows, features, label_matrix[rows].astype(np.float32), labelled)


def to_layout(data: np.ndarray, layout: str) -> np.ndarray:
    """image: ``(n, rows, cols)`` with rows = flattened time; sequence: ``(n, time, context,
    dims)`` for 5-D rows, ``(n, time, dims)`` for 3-D rows and ``(n, 1, dims)`` for vectors."""
    if data.ndim == 2:
        return data[:, None, :]
    if data.ndim != 5:
        return data
    n, a, b, c, d = data.shape
    if layout == "image":
        return data.reshape(n, a * b * c, d)
    return data[:, :, 0] if b == 1 else data[:, 0]


def _check_labels(split: Split, tasks: list[TaskSpec], path: str, split_name: str) -> None:
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


def _crop(config: DataConfig, index: int, shape: tuple, path: str, key: str) -> tuple[int, int]:
    rows, cols = shape[0] * shape[1] * shape[2], shape[3]
    n_row = _per_modality(config.r_nrow, index, rows, "r_nrow")
    n_col = _per_modality(config.r_ncol, index, cols, "r_ncol")
    if n_row > rows or n_col > cols:
        raise DataError(
            path,
            key,
            f"r_nrow x r_ncol = {n_row}x{n_col} exceeds the flattened image {rows}x{cols}",
        )
    return n_row, n_col


def _per_modality(value, index, default, name) -> int:
    if value is None:
        return default
    values = value if isinstance(value, list) else [value]
    if index >= len(values):
        raise ConfigError(f"data.{name}", f"give one value per feature key, got {values}")
    return int(values[index])
