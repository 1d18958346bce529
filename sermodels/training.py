"""Pieces every training loop shares: seeding, the source's early stopping, evaluation per
task, and TensorBoard logging."""

from __future__ import annotations

import math
import random
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sermodels import metrics
from sermodels.specs import TaskSpec


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


class SourcePatience:
    """Early stopping with the source SGAN's semantics: stop when the newest value is below
    the worst of the previous ``patience`` values (``patience`` 0 never stops).

    Example:
        >>> stopper = SourcePatience(2)
        >>> [stopper.update(v) for v in (0.5, 0.6, 0.55, 0.4)]
        [False, False, False, True]
    """

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience
        self.history: list[float] = []

    def update(self, value: float) -> bool:
        previous = self.history[-self.patience :] if self.patience else []
        self.history.append(value)
        return len(previous) == self.patience > 0 and value < min(previous)


def evaluate_task(task: TaskSpec, outputs: np.ndarray, labels: np.ndarray) -> dict:
    """Metrics of one task: a classification report, or CCC and MSE for regression."""
    y_true = labels[:, task.column]
    if task.is_regression:
        y_pred = outputs.reshape(-1)
        return {"ccc": metrics.ccc(y_true, y_pred), "mse": float(np.mean((y_true - y_pred) ** 2))}
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


class TensorBoardLog:
    """Scalars and images of one run in ``directory`` (no-op when ``directory`` is None)."""

    def __init__(self, directory: Path | None) -> None:
        self.writer = tf.summary.create_file_writer(str(directory)) if directory else None

    def scalars(self, step: int, values: dict) -> None:
        if not self.writer:
            return
        with self.writer.as_default(step=step):
            for name, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    tf.summary.scalar(name, value)

    def images(self, step: int, name: str, grid: np.ndarray) -> None:
        if self.writer:
            with self.writer.as_default(step=step):
                tf.summary.image(name, grid[None, :, :, None])

    def close(self) -> None:
        if self.writer:
            self.writer.flush()
            self.writer.close()


def image_grid(samples: np.ndarray, columns: int = 2) -> np.ndarray:
    """Tile ``(n, rows, cols, 1)`` samples in [-1, 1] into one [0, 1] image. Rows of a
    spectrogram are time, so each tile is turned to put frequency on the vertical axis."""
    tiles = [np.rot90(s[:, :, 0]) for s in samples]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.clip((np.concatenate(rows, axis=0) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def write_png(path: Path, image: np.ndarray) -> None:
    pixels = tf.cast(tf.round(image[:, :, None] * 255.0), tf.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(pixels))
