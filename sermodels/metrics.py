"""Evaluation metrics of the field: UAR (the headline), WA, F1, precision, confusion, CCC."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def recall_per_class(matrix: np.ndarray) -> np.ndarray:
    support = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), support, out=np.zeros(len(matrix)), where=support > 0)


def uar(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted average recall over the classes present in ``y_true``.

    Example:
        >>> uar([0, 0, 0, 1], [0, 0, 1, 1], 2)
        0.8333333333333333
    """
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    present = matrix.sum(axis=1) > 0
    return float(recall_per_class(matrix)[present].mean()) if present.any() else 0.0


def weighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """WA: plain accuracy (recall weighted by class frequency)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def macro_precision(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    present = matrix.sum(axis=1) > 0
    predicted = matrix.sum(axis=0)
    precision = np.divide(np.diag(matrix), predicted, out=np.zeros(n_classes), where=predicted > 0)
    return float(precision[present].mean()) if present.any() else 0.0


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over the classes present in ``y_true``."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    present = matrix.sum(axis=1) > 0
    true_pos = np.diag(matrix).astype(float)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Concordance correlation coefficient (Lin, 1989) for continuous targets."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    mean_t, mean_p = y_true.mean(), y_pred.mean()
    covariance = ((y_true - mean_t) * (y_pred - mean_p)).mean()
    denominator = y_true.var() + y_pred.var() + (mean_t - mean_p) ** 2
    return float(2 * covariance / denominator) if denominator > 0 else 0.0


def ccc_minmax(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """CCC after min-max normalising predictions and labels to [0, 1] (the source trainer's
    variant: insensitive to the predictions' scale and offset, so it rewards a model that
    only ranks well)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    spans = (np.ptp(y_true), np.ptp(y_pred))
    if min(spans) == 0:
        return 0.0
    return ccc((y_true - y_true.min()) / spans[0], (y_pred - y_pred.min()) / spans[1])


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """UAR, WA, F1, precision and the confusion matrix (counts and row-normalised)."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    rows = matrix.sum(axis=1, keepdims=True)
    return {
        "uar": uar(y_true, y_pred, n_classes),
        "wa": weighted_accuracy(y_true, y_pred),
        "f1": macro_f1(y_true, y_pred, n_classes),
        "precision": macro_precision(y_true, y_pred, n_classes),
        "confusion": matrix.tolist(),
        "confusion_normalized": np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
        .round(4)
        .tolist(),
    }
