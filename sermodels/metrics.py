"""Evaluation metrics of the field: UAR (the headline), WA, F1, precision, confusion, CCC.

Classification metrics come from ``sklearn.metrics`` with the field's convention made
explicit: macro averages run over the classes present in ``y_true``."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    return sk.confusion_matrix(y_true, y_pred, labels=np.arange(n_classes)).astype(np.int64)


def _present(y_true) -> np.ndarray:
    return np.unique(np.asarray(y_true, int))


def uar(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted average recall over the classes present in ``y_true``.

    scikit-learn's macro recall averages over every class in ``y_true`` or ``y_pred``: a
    class that is only predicted would add a recall of 0. The field's UAR (and the source's)
    counts only the classes the test set holds, so the labels are given explicitly.

    Example:
        >>> uar([0, 0, 0, 1], [0, 0, 1, 1], 2)
        0.8333333333333333
    """
    present = _present(y_true)
    if not len(present):
        return 0.0
    return float(sk.recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def weighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """WA: plain accuracy (recall weighted by class frequency)."""
    return float(sk.accuracy_score(y_true, y_pred)) if len(y_true) else 0.0


def macro_precision(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro precision over the classes present in ``y_true`` (0 for a class never
    predicted)."""
    present = _present(y_true)
    if not len(present):
        return 0.0
    return float(
        sk.precision_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over the classes present in ``y_true``."""
    present = _present(y_true)
    if not len(present):
        return 0.0
    return float(sk.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


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


def pooled_report(matrices: list) -> dict:
    """The classification report of several test sets' predictions pooled (the sum of their
    confusion matrices), as the source trainer pooled its cross-validation folds.

    Example:
        >>> pooled_report([[[1, 0], [0, 1]], [[0, 1], [0, 2]]])["uar"]
        0.75
    """
    matrix = np.sum(np.asarray(matrices, dtype=np.int64), axis=0)
    true_rows, predicted_columns = np.nonzero(matrix)
    counts = matrix[true_rows, predicted_columns]
    y_true = np.repeat(true_rows, counts)
    y_pred = np.repeat(predicted_columns, counts)
    return classification_report(y_true, y_pred, len(matrix))
