"""Losses for class imbalance and continuous targets."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from sermodels.specs import TaskSpec


def inverse_frequency_weights(class_ids: np.ndarray, n_classes: int) -> np.ndarray:
    """Class weights n / (K * count), the 'balanced' heuristic (mean weight over rows = 1)."""
    counts = np.bincount(class_ids.astype(int), minlength=n_classes).astype(float)
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


def task_loss(task: TaskSpec, class_ids: np.ndarray | None, focal_gamma: float):
    """The Keras loss named by ``task.loss``."""
    if task.loss == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy()
    if task.loss == "weighted_categorical_crossentropy":
        return WeightedCategoricalCrossentropy(inverse_frequency_weights(class_ids, task.n_classes))
    if task.loss == "categorical_focal_loss":
        return keras.losses.CategoricalFocalCrossentropy(gamma=focal_gamma)
    if task.loss == "ccc":
        return ConcordanceLoss()
    return keras.losses.MeanSquaredError()
