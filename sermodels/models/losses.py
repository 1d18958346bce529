"""Losses for class imbalance and continuous targets."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from sermodels.specs import TaskSpec

CLASS_WEIGHT_FORMULAS = ("inverse", "complement")


def class_weights(class_ids: np.ndarray, n_classes: int, formula: str = "inverse") -> np.ndarray:
    """Per-class weights from the training labels.

    ``inverse``: n / (K count), the "balanced" heuristic: every class carries the same total
    weight (mean weight over rows 1). ``complement``: 1 - frequency, the source trainer's
    ``-cw auto``; with K classes it never weights a class more than K/(K-1) times another
    of half its frequency's complement, so it corrects imbalance far less.

    Example:
        >>> class_weights(np.array([0, 0, 0, 1]), 2).tolist()
        [0.6666666865348816, 2.0]
    """
    counts = np.bincount(class_ids.astype(int), minlength=n_classes).astype(float)
    if formula == "complement":
        return (1.0 - counts / max(len(class_ids), 1)).astype(np.float32)
    weights = np.where(counts > 0, len(class_ids) / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


@keras.saving.register_keras_serializable("sersweep")
class WeightedCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy whose per-class terms are scaled by ``class_weights``."""

    def __init__(self, class_weights, name="weighted_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        weights = ops.convert_to_tensor(self.class_weights, dtype=y_pred.dtype)
        return -ops.sum(y_true * ops.log(y_pred) * weights, axis=-1)

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights}


@keras.saving.register_keras_serializable("sersweep")
class ConcordanceLoss(keras.losses.Loss):
    """1 - CCC over the batch: optimises the metric continuous emotion is judged by."""

    def __init__(self, name="ccc_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.reshape(y_true, (-1,)), ops.reshape(y_pred, (-1,))
        mean_t, mean_p = ops.mean(y_true), ops.mean(y_pred)
        covariance = ops.mean((y_true - mean_t) * (y_pred - mean_p))
        denominator = ops.var(y_true) + ops.var(y_pred) + ops.square(mean_t - mean_p)
        return 1.0 - 2.0 * covariance / (denominator + 1e-8)


def task_loss(task: TaskSpec, class_ids: np.ndarray | None, config):
    """The Keras loss named by ``task.loss`` (``config``: the ``ser`` section, for the focal
    gamma and the class-weight formula; the source normalised its complement weights to sum
    to 1, which only rescales the loss)."""
    if task.loss == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy()
    if task.loss == "weighted_categorical_crossentropy":
        weights = class_weights(class_ids, task.n_classes, config.class_weight_formula)
        return WeightedCategoricalCrossentropy(weights)
    if task.loss == "categorical_focal_loss":
        return keras.losses.CategoricalFocalCrossentropy(gamma=config.focal_gamma)
    if task.loss == "ccc":
        return ConcordanceLoss()
    return keras.losses.MeanSquaredError()
