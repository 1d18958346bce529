"""A corpus ready for a model: its train / valid / test (/ adopt) splits, resident
(:class:`Split`) or streamed (:class:`sermodels.data.stream.StreamSplit`), with the tasks,
preprocessing and row plan they were read with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from sermodels.data.contract import LABEL_KEY, LabelColumns
from sermodels.data.modes import DataChoice
from sermodels.data.preprocessing import Preprocessing
from sermodels.data.selection import RowPlan
from sermodels.data.stream import StreamSplit
from sermodels.errors import DataError
from sermodels.specs import TaskSpec


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
            check_labels(getattr(self, name), tasks, self.source, name)
        return replace(self, tasks=list(tasks))

    def for_final_training(self) -> Corpus:
        """Train on train + valid rows with no validation (final runs use a fixed number of
        epochs). When valid is the test split itself, it stays out of training."""
        train = self.train if self.valid_is_test else self.train.concat(self.valid)
        empty = self.valid.select(np.zeros(0, dtype=int))
        return replace(self, train=train, valid=empty)


def check_labels(split: Split, tasks: list[TaskSpec], path: str, split_name: str) -> None:
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
