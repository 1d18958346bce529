"""Cross-validation rotations: speaker folds dealt into test groups, never over the folds a
sweep selected on, nor unlabelled, adaptation, ignored or empty folds."""

import h5py
import numpy as np
import pytest

from sermodels.config import DataConfig
from sermodels.data.rotation import plan_rotation, rotation_groups
from sermodels.errors import ConfigError
from sermodels.metrics import pooled_report


def test_groups_are_disjoint_and_cover_the_folds():
    groups = rotation_groups(list(range(7)), 3)
    assert sorted(f for g in groups for f in g) == list(range(7))
    assert [len(g) for g in groups] == [3, 2, 2]


def test_after_a_sweep_its_selection_folds_leave_the_rotation(tiny_corpus):
    data = DataConfig(
        features=["a_feat"],
        tasks="category:4:2",
        test_idx="0,1",
        valid_idx="2,3",
        unlabelled_idx="10:11",
    )
    rotation = plan_rotation(data, tiny_corpus, 3, selected_on=[0, 1, 2, 3])
    assert rotation.rotating == [4, 5, 6, 7, 8, 9] and rotation.held_out == [0, 1, 2, 3]
    first = rotation.selections[0]
    assert first["data.test_idx"] == "4,7" and first["data.train_idx"] == "5,6,8,9"
    assert first["data.ignore_idx"] == "0,1,2,3" and first["data.valid_is_test"]


def test_train_cv_keeps_its_validation_folds_validating(tiny_corpus):
    data = DataConfig(
        features=["a_feat"], tasks="category:4:2", test_idx="0", valid_idx="1", ignore_idx="11"
    )
    rotation = plan_rotation(data, tiny_corpus, 2, selected_on=None)
    assert 1 not in rotation.rotating and 11 not in rotation.rotating and 0 in rotation.rotating
    assert all("data.valid_idx" not in s for s in rotation.selections)


def test_too_few_folds_is_an_error_naming_them(tmp_path, tiny_corpus):
    data = DataConfig(features=["a_feat"], tasks="category:4:2", test_idx="0", valid_idx="1")
    with h5py.File(tiny_corpus) as h5:
        count = len(h5["start_indice"])
    with pytest.raises(ConfigError, match="--cv"):
        plan_rotation(data, tiny_corpus, count, selected_on=[0, 1])


def test_pooled_report_is_the_report_of_the_pooled_predictions():
    rng = np.random.default_rng(0)
    truths = [rng.integers(0, 3, 20) for _ in range(3)]
    preds = [rng.integers(0, 3, 20) for _ in range(3)]
    matrices = []
    for y_true, y_pred in zip(truths, preds, strict=True):
        matrix = np.zeros((3, 3), int)
        np.add.at(matrix, (y_true, y_pred), 1)
        matrices.append(matrix)
    y_true, y_pred = np.concatenate(truths), np.concatenate(preds)
    recalls = [np.mean(y_pred[y_true == c] == c) for c in range(3)]
    report = pooled_report(matrices)
    assert report["uar"] == pytest.approx(np.mean(recalls))
    assert report["wa"] == pytest.approx(np.mean(y_true == y_pred))
