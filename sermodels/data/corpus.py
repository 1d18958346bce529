"""Loading a run's data: the rows its ``data`` section selects
(:mod:`sermodels.data.selection`), read from the h5 file (:mod:`sermodels.data.contract`),
checked, and prepared for the model (:mod:`sermodels.data.preprocessing`) into a
:class:`~sermodels.data.splits.Corpus`, resident or streamed.

Only the requested keys and the rows of the chosen folds are read, in contiguous runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sermodels.config import DataConfig
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
from sermodels.data.modes import MemoryShare, check_mode, choose_mode
from sermodels.data.preprocessing import (
    LAYOUTS,
    NORMALIZATIONS,
    Preprocessing,
    crop_of,
    normalisation_method,
    to_layout,
)
from sermodels.data.selection import plan_rows
from sermodels.data.splits import Corpus, Split, check_labels
from sermodels.data.stream import RunningStats, StreamSplit, scan_split
from sermodels.errors import ConfigError, DataError
from sermodels.specs import TaskSpec, parse_tasks


@dataclass
class _Request:
    """What :func:`load_corpus` was asked for, checked: the ``data`` section and its tasks,
    the file, the layout of the model that takes the rows, and resident or streamed within
    the memory a run may use."""

    config: DataConfig
    tasks: list[TaskSpec]
    path: str
    layout: str
    mode: str
    share: MemoryShare | None


@dataclass
class _OpenCorpus:
    """The open file and what every split of it is read with."""

    h5: h5py.File
    path: str
    config: DataConfig
    label_matrix: np.ndarray
    prep: Preprocessing


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
        return _read_corpus(h5, _Request(config, tasks, path, layout, mode, share))


def _read_corpus(h5: h5py.File, request: _Request) -> Corpus:
    config, path, layout = request.config, request.path, request.layout
    labels = dataset(h5, path, LABEL_KEY)
    if labels.ndim != 2:
        raise DataError(path, LABEL_KEY, f"expected 2 dims (n, columns), got shape {labels.shape}")
    n_rows = labels.shape[0]
    for key in config.features:
        check_feature(dataset(h5, path, key), path, key, n_rows, layout)
    columns = label_columns(labels, h5, path)
    tasks = [columns.resolve(t, path) for t in request.tasks]
    label_matrix = read(labels, path, LABEL_KEY)
    plan = plan_rows(
        config,
        file_folds(h5, path, n_rows),
        _speakers(config, columns, label_matrix, path),
        n_rows,
        path,
    )
    methods = {key: normalisation_method(config.normalize, layout) for key in config.features}
    prep = Preprocessing(layout, methods=methods)
    if layout == "image":
        for index, key in enumerate(config.features):
            prep.crops[key] = crop_of(config, index, h5[key].shape[1:], path, key)
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
    total_bytes = row_bytes * sum(len(rows) for rows in plans.values())
    choice = choose_mode(request.mode, total_bytes, request.share)
    if choice.mode == "stream":
        path = str(Path(path).resolve())  # workers open it, from whatever folder they run in
        raw = _stream_splits(_OpenCorpus(h5, path, config, label_matrix, prep), plans, shapes)
    else:
        raw = _resident_splits(_OpenCorpus(h5, path, config, label_matrix, prep), plans)
    raw["train"].labelled = ~np.isin(plan.train, plan.unlabelled)
    raw["valid"] = raw["test"] if plan.valid_is_test else raw["valid"]
    for name in ("train", "valid", "test"):
        check_labels(raw[name], tasks, path, name)
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


def _resident_splits(corpus: _OpenCorpus, plans: dict[str, np.ndarray]) -> dict:
    """Every split read into memory, laid out, cropped and normalised with statistics of the
    training rows."""
    prep = corpus.prep
    raw = {name: _read_split(corpus, rows) for name, rows in plans.items()}
    for key in corpus.config.features:
        if prep.layout == "image":
            for split in raw.values():
                split.features[key] = prep.arrange(key, split.features[key])
        if len(raw["train"]):
            prep.fit(key, raw["train"].features[key])
        for split in raw.values():
            split.features[key] = prep.normalize(key, split.features[key])
    return raw


def _stream_splits(corpus: _OpenCorpus, plans: dict[str, np.ndarray], shapes: dict) -> dict:
    """Every row checked in one streaming pass (the training rows' statistics fitted on the
    way); the splits keep row ids and labels only."""
    prep = corpus.prep
    for key in corpus.config.features:
        stats = RunningStats(prep.methods[key])
        for name, rows in plans.items():
            fitted = stats if name == "train" else None
            scan_split(corpus.h5, corpus.path, key, rows, prep.arrange, fitted)
        if stats.result() is not None:
            prep.stats[key] = stats.result()
    return {
        name: StreamSplit(
            corpus.path,
            rows,
            corpus.label_matrix[rows].astype(np.float32),
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


def _read_split(corpus: _OpenCorpus, rows: np.ndarray) -> Split:
    """Raw rows of every feature key (laid out for the model, not yet cropped/normalised)."""
    path, prep = corpus.path, corpus.prep
    features = {}
    for key in corpus.config.features:
        data = read_rows(corpus.h5[key], rows, path, key).astype(np.float32, copy=False)
        bad = ~np.isfinite(data.reshape(len(data), -1)).all(axis=1) if len(data) else []
        if np.any(bad):
            raise DataError(path, key, f"non-finite values (NaN/Inf) in row {rows[bad][0]}")
        features[key] = data if prep.layout == "image" else to_layout(data, prep.layout)
    labelled = np.ones(len(rows), dtype=bool)
    return Split(rows, features, corpus.label_matrix[rows].astype(np.float32), labelled)
