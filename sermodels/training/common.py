"""Pieces every training loop shares: the source's early stopping and evaluation per task."""

from __future__ import annotations

import numpy as np

from sermodels import metrics
from sermodels.specs import TaskSpec


class SourcePatience:
    """Early stopping on a score with the source SGAN's semantics: stop when the newest
    value is below the worst of the previous ``patience + 1`` values (``patience`` 0 never
    stops).

    Example:
        >>> stopper = SourcePatience(1)
        >>> [stopper.update(v) for v in (0.5, 0.6, 0.55, 0.4)]
        [False, False, False, True]
    """

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience
        self.history: list[float] = []

    def update(self, value: float) -> bool:
        window = self.patience + 1
        previous = self.history[-window:] if self.patience else []
        self.history.append(value)
        return len(previous) == window and value < min(previous)


class LossPatience:
    """Early stopping on a loss as Keras' ``EarlyStopping`` (the source trainer's): stop once
    ``patience`` epochs in a row bring no new lowest value (``patience`` 0 never stops).

    Example:
        >>> stopper = LossPatience(2)
        >>> [stopper.update(v) for v in (1.0, 0.8, 0.9, 0.85)]
        [False, False, False, True]
    """

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience
        self.history: list[float] = []

    def update(self, value: float) -> bool:
        self.history.append(value)
        if not self.patience or len(self.history) <= self.patience:
            return False
        best = min(range(len(self.history)), key=self.history.__getitem__)
        return len(self.history) - 1 - best >= self.patience


def evaluate_task(task: TaskSpec, outputs: np.ndarray, labels: np.ndarray) -> dict:
    """Metrics of one task: a classification report, or CCC and MSE for regression."""
    y_true = labels[:, task.column]
    if task.is_regression:
        y_pred = outputs.reshape(-1)
        report = {
            "ccc": metrics.ccc(y_true, y_pred),
            "ccc_norm": metrics.ccc_minmax(y_true, y_pred),
            "mse": float(np.mean((y_true - y_pred) ** 2)),
        }
        report["score"] = report[task.metric]
        return report
    report = metrics.classification_report(y_true.astype(int), outputs.argmax(1), task.n_classes)
    report["score"] = report[task.metric if task.metric != "accuracy" else "wa"]
    return report


def scalars_of(prefix: str, report: dict) -> dict[str, float]:
    """The scalar entries of an evaluation report, named ``prefix_key``."""
    return {
        f"{prefix}_{k}": float(v)
        for k, v in report.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def epoch_order(n_rows: int, seed: int, count: int = 0) -> np.ndarray:
    """Row positions of one epoch in an order drawn from ``seed``: one permutation of the
    rows, or with ``count`` exactly that many positions, a fresh permutation continuing where
    one pass runs out (``train.steps_per_epoch``).

    Example:
        >>> len(epoch_order(10, seed=0, count=25))
        25
    """
    rng = np.random.default_rng(seed)
    if not count:
        return rng.permutation(n_rows)
    passes = [rng.permutation(n_rows) for _ in range(-(-count // max(n_rows, 1)))]
    return np.concatenate(passes)[:count]
