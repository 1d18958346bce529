"""Which rows train, validate and test a model: folds (or speakers, or a seeded ratio) by
the ``data`` section, checked so that evaluation cannot leak.

* Test, validation, training, unlabelled, adaptation and ignored folds are disjoint; an
  overlap is an error naming the folds.
* Validation = test (no validation folds and no ``r_valid``, or the same folds) selects
  hyperparameters on the test set: refused unless ``valid_is_test`` (the source SGAN did it;
  ``launch.py train --valid-is-test`` allows it and the metrics record it).
* An empty fold is skipped, as the source did (folds of an aggregated corpus can be empty);
  a selection whose folds are all empty is an error.
* ``r_valid`` carves validation out of training by speaker when speaker ids are known (a
  label column named ``speaker``, or ``speaker_column``), else by fold, else by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sermodels.errors import ConfigError, DataError
from sermodels.specs import parse_ids

SELECTIONS = ("test_idx", "valid_idx", "unlabelled_idx", "adopt_idx", "ignore_idx")

# the command-line flags that choose folds (sweep, train, final)
FOLD_FLAGS = "--test-idx, --valid-idx, --unlabelled-idx and --train-idx"


@dataclass
class RowPlan:
    """Row indices (sorted, into the file) of each part of a run's data.

    ``train`` includes the unlabelled rows; ``groups`` gives each training row's speaker (or
    fold) for splits that must keep speakers apart.
    """

    train: np.ndarray
    unlabelled: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    adopt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    valid_is_test: bool = False
    skipped_folds: list[int] = field(default_factory=list)
    folds: dict[str, list[int]] = field(default_factory=dict)


def plan_rows(
    config, folds: list[np.ndarray] | None, speakers: np.ndarray | None, n_rows: int, path: str
) -> RowPlan:
    """Split ``n_rows`` by ``config`` (a :class:`~sermodels.config.DataConfig`).

    Args:
        folds: the file's folds (row ranges), or ``None``.
        speakers: a speaker id per row when known (then ``speaker_column`` folds and
            speaker-wise ``r_valid`` use it), else ``None``.
    """
    if folds is None and config.speaker_column is not None and speakers is not None:
        folds = [np.flatnonzero(speakers == s) for s in range(int(speakers.max()) + 1)]
    if folds is None:
        return _ratio_plan(config, n_rows, speakers)
    chosen = {name: _fold_ids(getattr(config, name), folds, path, name) for name in SELECTIONS}
    explicit_train = config.train_idx not in (None, "")
    if explicit_train:
        chosen["train_idx"] = _fold_ids(config.train_idx, folds, path, "train_idx")
    valid_is_test = bool(chosen["valid_idx"]) and set(chosen["valid_idx"]) == set(
        chosen["test_idx"]
    )
    if valid_is_test:
        chosen["valid_idx"] = []  # the same folds, not an overlap
    _check_disjoint(chosen)
    skipped = sorted({f for ids in chosen.values() for f in ids if not len(folds[f])})
    nonempty = {name: [f for f in ids if len(folds[f])] for name, ids in chosen.items()}
    for name, ids in chosen.items():
        if ids and not nonempty[name]:
            raise DataError(
                path, "start_indice", f"{name} names only empty folds {ids}; see {FOLD_FLAGS}"
            )
    if not nonempty["test_idx"]:
        raise ConfigError("data.test_idx", "name at least one test fold")
    if not explicit_train:
        held_out = {f for ids in nonempty.values() for f in ids}
        nonempty["train_idx"] = [
            f for f in range(len(folds)) if f not in held_out and len(folds[f])
        ]
    if not nonempty["train_idx"]:
        raise DataError(
            path, "start_indice", f"no training folds left after test/valid; see {FOLD_FLAGS}"
        )
    rows = {name: _rows_of(folds, ids) for name, ids in nonempty.items()}
    plan = RowPlan(
        train=np.union1d(rows["train_idx"], rows["unlabelled_idx"]),
        unlabelled=rows["unlabelled_idx"],
        valid=rows["valid_idx"],
        test=rows["test_idx"],
        adopt=rows["adopt_idx"],
        skipped_folds=skipped,
        folds={name.removesuffix("_idx"): ids for name, ids in nonempty.items() if ids},
    )
    if not len(plan.valid):
        if valid_is_test or config.r_valid <= 0:
            _validation_is_test(plan, config)
        else:
            groups = speakers if speakers is not None else _fold_of_row(folds, n_rows)
            _carve_validation(plan, config.r_valid, config.seed, groups)
    return plan


def _fold_ids(spec, folds: list[np.ndarray], path: str, name: str) -> list[int]:
    ids = parse_ids(spec, f"data.{name}")
    for fold in ids:
        if fold >= len(folds):
            raise DataError(
                path,
                "start_indice",
                f"{name} names fold {fold} but the file has {len(folds)} folds "
                f"(0..{len(folds) - 1}); choose this corpus's folds with {FOLD_FLAGS}",
            )
    return ids


def _check_disjoint(chosen: dict[str, list[int]]) -> None:
    names = list(chosen)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = sorted(set(chosen[first]) & set(chosen[second]))
            if shared:
                raise ConfigError(
                    f"data.{second}",
                    f"fold(s) {shared} also in {first}: test, validation, training, "
                    "unlabelled, adaptation and ignored folds must be disjoint",
                )


def _rows_of(folds: list[np.ndarray], ids: list[int]) -> np.ndarray:
    if not ids:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([folds[i] for i in ids]))


def _fold_of_row(folds: list[np.ndarray], n_rows: int) -> np.ndarray:
    groups = np.full(n_rows, -1, np.int64)
    for fold, rows in enumerate(folds):
        groups[rows] = fold
    return groups


def _validation_is_test(plan: RowPlan, config) -> None:
    if not config.valid_is_test:
        raise ConfigError(
            "data.valid_idx",
            "validation would be the test set (selecting on test data); name validation "
            "folds (--valid-idx), set r_valid, or allow it for one run with "
            "`launch.py train --valid-is-test`",
        )
    plan.valid, plan.valid_is_test = plan.test, True


def _carve_validation(plan: RowPlan, share: float, seed: int, groups: np.ndarray) -> None:
    """Move a seeded ``share`` of the labelled training rows' groups (speakers) to
    validation; rows without a group (-1) are split one by one."""
    rng = np.random.default_rng(seed)
    labelled = np.setdiff1d(plan.train, plan.unlabelled)
    row_groups = groups[labelled]
    ids = np.unique(row_groups[row_groups >= 0])
    if len(ids) >= 2:
        count = min(len(ids) - 1, max(1, round(len(ids) * share)))
        taken = rng.permutation(ids)[:count]
        valid = labelled[np.isin(row_groups, taken)]
    else:
        count = max(1, int(len(labelled) * share))
        valid = np.sort(rng.permutation(labelled)[:count])
    plan.valid = np.sort(valid)
    plan.train = np.setdiff1d(plan.train, valid)


def _ratio_plan(config, n_rows: int, speakers: np.ndarray | None) -> RowPlan:
    if not (0 < config.r_test < 1 and 0 <= config.r_valid < 1 - config.r_test):
        raise ConfigError(
            "data.r_test",
            "without folds or speaker_column, set 0 < r_test < 1 "
            "(and 0 <= r_valid < 1 - r_test) for a ratio split",
        )
    order = np.random.default_rng(config.seed).permutation(n_rows)
    n_test, n_valid = int(n_rows * config.r_test), int(n_rows * config.r_valid)
    test, valid, train = np.split(order, [n_test, n_test + n_valid])
    plan = RowPlan(np.sort(train), np.zeros(0, np.int64), np.sort(valid), np.sort(test))
    if not n_valid:
        _validation_is_test(plan, config)
    return plan
