"""How a trial's epochs reduce to the one value a sweep optimises.

An SGAN's validation UAR swings from epoch to epoch by more than the gaps between the
configurations a sweep ranks, so the best epoch of one run mostly measures luck. A space's
``objective`` names the metric, its direction and the reduction of its per-epoch values:

* ``best``: the best epoch (what a sweep saved before reductions existed optimised);
* ``last``: the last epoch;
* ``mean_last:K``: the mean of the last ``K`` epochs;
* ``smoothed:K``: the best ``K``-epoch moving average (its window's last epoch is the one a
  final model trains to).

The reduction of the epochs so far is what Optuna and ASHA see at every epoch; with fewer
epochs than ``K`` the mean is over those there are. Non-finite values (a run that diverged)
are left out; with none left the value is NaN.

Example:
    >>> Reduction.parse("mean_last:3").reduce([0.4, 0.6, 0.5, 0.7], "max")
    (0.6, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sermodels.errors import ConfigError

KINDS = ("best", "last", "mean_last", "smoothed")
WINDOWED = ("mean_last", "smoothed")
DEFAULT_REDUCE = "mean_last:3"  # chosen by bench/selection.py on its calibration corpus
LEGACY_REDUCE = "best"  # what a sweep saved before reductions existed optimised
DIVERSITY_SCORE = "diversity_score"  # min(d, 1/d): 1 when G is as diverse as the data
PARAMS = "params"  # a model cost: the weights a trial trains, counted once
LATENCY_MS = "latency_ms"  # a model cost: the classifier's median time for one row, batch 1
COST_METRICS = (PARAMS, LATENCY_MS)
EPOCH_PREFIXES = ("val_", "train_")  # per-epoch metrics an objective may name (never test_)


@dataclass(frozen=True)
class Objective:
    """One objective of a space: a metric, its direction and how a trial's epochs reduce to
    one value (a cost such as ``params`` is the same every epoch)."""

    metric: str
    mode: str = "max"
    reduce: Reduction = None  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.reduce is None:
            object.__setattr__(self, "reduce", Reduction.parse(DEFAULT_REDUCE))

    @property
    def key(self) -> str:
        """The result key a trial reports this objective's value under (the first objective
        of a space is ``objective``; see :func:`objective_keys`)."""
        return f"objective_{self.metric}"


def check_metric(metric: object, where: str) -> str:
    """An objective's metric: a per-epoch validation or training metric (``val_uar``...),
    ``diversity_score`` or a cost (``params``, ``latency_ms``); the test rows never
    choose."""
    name = str(metric)
    if name.startswith(EPOCH_PREFIXES) or name in (DIVERSITY_SCORE, *COST_METRICS):
        return name
    raise ConfigError(
        where,
        f"unknown objective metric {name!r}; expected val_* or train_* (a "
        f"per-epoch metric), {DIVERSITY_SCORE} or one of {COST_METRICS}",
    )


def diversity_score(metrics: dict) -> float:
    """``min(d, 1/d)`` of an epoch's diversity ``d``; NaN without one."""
    diversity = metrics.get("diversity")
    if _is_number(diversity) and diversity > 0:
        return min(diversity, 1.0 / diversity)
    return math.nan


def epoch_value(metrics: dict, metric: str) -> float:
    """One epoch's value of an objective metric (NaN where the epoch has none)."""
    if metric == DIVERSITY_SCORE:
        return diversity_score(metrics)
    value = metrics.get(metric)
    return float(value) if _is_number(value) else math.nan


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Reduction:
    """One reduction of per-epoch values; see the module docstring.

    Args:
        kind: ``best``, ``last``, ``mean_last`` or ``smoothed``.
        k: the window of ``mean_last`` and ``smoothed`` (1 for the others).
    """

    kind: str
    k: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.k < 1 or (self.kind not in WINDOWED and self.k != 1):
            raise ValueError(f"k must be >= 1 (and 1 for {self.kind}), got {self.k}")

    @classmethod
    def parse(cls, text: object, where: str = "objective.reduce") -> Reduction:
        """``best``, ``last``, ``mean_last:K`` or ``smoothed:K``; anything else is a one-line
        :class:`ConfigError` naming ``where``."""
        expected = "expected best, last, mean_last:K or smoothed:K (K >= 1)"
        kind, _, window = str(text).partition(":")
        if kind not in KINDS or bool(window) != (kind in WINDOWED):
            raise ConfigError(where, f"{expected}, got {text!r}")
        if kind not in WINDOWED:
            return cls(kind)
        if not window.isdigit() or int(window) < 1:
            raise ConfigError(where, f"{expected}, got {text!r}")
        return cls(kind, int(window))

    def __str__(self) -> str:
        return f"{self.kind}:{self.k}" if self.kind in WINDOWED else self.kind

    def reduce(self, values: Sequence[float], mode: str = "max") -> tuple[float, int | None]:
        """The reduced value of per-epoch ``values`` (epoch 1 first) and the epoch it points
        at (the one a final model trains to); ``(nan, None)`` when no value is finite."""
        epochs = [
            (e, float(v)) for e, v in enumerate(values, 1) if v is not None and math.isfinite(v)
        ]
        if not epochs:
            return math.nan, None
        better = max if mode == "max" else min
        if self.kind == "best":
            value = better(v for _, v in epochs)
            return value, next(e for e, v in epochs if v == value)
        if self.kind == "last":
            return epochs[-1][1], epochs[-1][0]
        if self.kind == "mean_last":
            window = epochs[-self.k :]
            return sum(v for _, v in window) / len(window), epochs[-1][0]
        width = min(self.k, len(epochs))
        means = [
            (sum(v for _, v in epochs[end - width : end]) / width, epochs[end - 1][0])
            for end in range(width, len(epochs) + 1)
        ]
        value = better(mean for mean, _ in means)
        return value, next(epoch for mean, epoch in means if mean == value)
