"""Cross-validation folds: which of a corpus's folds (speakers) rotate through the test set,
and the data selection of each rotation.

Folds are whole speakers, so every rotation is speaker-independent (the source trainer's
``-kf`` cut random row blocks instead). Folds the model must not be tested on stay out of
the rotation: after a sweep, the folds it selected the config on (its validation and test
folds); in every case unlabelled, adaptation and ignored folds, and empty folds.

Example:
    >>> rotation_groups([4, 5, 6, 7, 8, 9], 3)
    [[4, 7], [5, 8], [6, 9]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py

from sermodels.data.contract import file_folds
from sermodels.errors import ConfigError, DataError
from sermodels.specs import parse_ids


def rotation_groups(folds: list[int], k: int) -> list[list[int]]:
    """``folds`` dealt round-robin into ``k`` test groups (sizes differ by at most one)."""
    return [folds[i::k] for i in range(k)]


@dataclass
class Rotation:
    """The K data selections of a cross-validation.

    Args:
        rotating: the folds that take turns as the test set.
        held_out: folds kept out of the rotation because they selected the config (they
            neither train nor test: a sweep's validation and test folds), or empty.
        selections: per rotation, ``{"data.test_idx": ..., ...}`` settings over the config.
    """

    rotating: list[int]
    held_out: list[int]
    selections: list[dict]


def plan_rotation(data, path: str | Path, k: int, selected_on: list[int] | None) -> Rotation:
    """The rotation of ``k`` test groups over the folds of the h5 at ``path``.

    Args:
        data: the config's :class:`sermodels.data.DataConfig`.
        path: the corpus (its ``start_indice``/``end_indice`` folds).
        k: the number of rotations (>= 2).
        selected_on: the folds a sweep selected the config on: they leave the rotation and
            every rotation trains for a fixed number of epochs without validation. ``None``
            (``train --cv``): the config's validation folds keep validating every rotation
            and its test and training folds rotate.
    """
    if k < 2:
        raise ConfigError("--cv", f"expected at least 2 folds, got {k}")
    with h5py.File(path, "r") as h5:
        n_rows = h5[data.features[0]].shape[0]
        folds = file_folds(h5, str(path), n_rows)
    if folds is None:
        raise DataError(str(path), "start_indice", "missing: cross-validation rotates folds")
    ids = {name: parse_ids(getattr(data, name), f"data.{name}") for name in _FOLD_KEYS}
    fixed = set(ids["unlabelled_idx"]) | set(ids["adopt_idx"]) | set(ids["ignore_idx"])
    if selected_on is None:
        validation = set(ids["valid_idx"])
        held_out = set()
    else:
        validation = set()
        held_out = set(selected_on)
    rotating = [
        f for f in range(len(folds)) if len(folds[f]) and f not in fixed | validation | held_out
    ]
    if len(rotating) < k:
        kept_out = sorted(fixed | validation | held_out)
        raise ConfigError(
            "--cv",
            f"{k} rotations need at least {k} folds, but only {rotating} rotate (folds "
            f"{kept_out} are unlabelled, adaptation, ignored, validation or selection folds; "
            "empty folds never rotate)",
        )
    selections = []
    for group in rotation_groups(rotating, k):
        train = [f for f in rotating if f not in group]
        selection = {"data.test_idx": _ids(group), "data.train_idx": _ids(train)}
        if held_out:
            ignored = sorted(set(ids["ignore_idx"]) | held_out)
            # validation = test, dropped before training: the rotation has no validation
            selection.update(
                {
                    "data.valid_idx": _ids(group),
                    "data.valid_is_test": True,
                    "data.ignore_idx": _ids(ignored),
                    "data.r_valid": 0.0,
                }
            )
        selections.append(selection)
    return Rotation(rotating, sorted(held_out), selections)


_FOLD_KEYS = ("test_idx", "valid_idx", "unlabelled_idx", "adopt_idx", "ignore_idx")


def _ids(folds: list[int]) -> str:
    return ",".join(str(f) for f in folds)
