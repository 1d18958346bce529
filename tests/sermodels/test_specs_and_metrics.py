import numpy as np
import pytest
from sklearn.metrics import recall_score

from sermodels import metrics
from sermodels.errors import ConfigError
from sermodels.specs import parse_ids, parse_tasks, select_layers
from sermodels.training.common import SourcePatience


def test_fold_ids_lists_ranges_inclusive_and_mixed():
    assert parse_ids("0,1,2", "x") == [0, 1, 2]
    assert parse_ids("111:113", "x") == [111, 112, 113]
    assert parse_ids("0,4:5", "x") == [0, 4, 5]
    assert parse_ids(3, "x") == [3]
    assert parse_ids(None, "x") == []


@pytest.mark.parametrize("bad", ["a,b", "5:2", "-1", "1:x"])
def test_fold_ids_reject_garbage(bad):
    with pytest.raises(ConfigError, match="test_idx"):
        parse_ids(bad, "test_idx")


def test_task_spec_defaults_and_multi_task():
    arousal, valence = parse_tasks("arousal:3:4::,valence:3:5:categorical_focal_loss:0.5:f1")
    assert (arousal.n_classes, arousal.column, arousal.loss, arousal.weight, arousal.metric) == (
        3,
        4,
        "categorical_crossentropy",
        1.0,
        "uar",
    )
    assert (valence.loss, valence.weight, valence.metric) == ("categorical_focal_loss", 0.5, "f1")
    (regression,) = parse_tasks("arousal_c:1:6")
    assert regression.is_regression and regression.loss == "mse" and regression.metric == "ccc"


@pytest.mark.parametrize(
    "bad", ["category", "category:x:2", "category:4:2:hinge", "a:4:2,a:4:3", "c:4:2:mse", ""]
)
def test_task_spec_errors_name_the_problem(bad):
    with pytest.raises(ConfigError, match="tasks"):
        parse_tasks(bad, "tasks")


def test_select_layers_by_range_and_glob():
    names = ["input", "a_feat_d_conv0", "a_feat_d_bn0", "d_dense0", "validity"]
    assert select_layers(names, "0:1", "x") == {0, 1}
    assert select_layers(names, "d_dense*,validity", "x") == {3, 4}
    with pytest.raises(ConfigError, match="out of range"):
        select_layers(names, "9", "x")


def test_metrics_against_hand_computed_values():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 1])
    # recalls: 3/4, 1/2, 1/2 -> UAR 0.5833; WA 5/8
    assert metrics.uar(y_true, y_pred, 3) == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert metrics.weighted_accuracy(y_true, y_pred) == pytest.approx(5 / 8)
    assert metrics.confusion_matrix(y_true, y_pred, 3).tolist() == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    # precisions: 3/4, 1/3, 1/1; F1 per class: 0.75, 0.4, 2/3
    assert metrics.macro_precision(y_true, y_pred, 3) == pytest.approx((0.75 + 1 / 3 + 1) / 3)
    assert metrics.macro_f1(y_true, y_pred, 3) == pytest.approx((0.75 + 0.4 + 2 / 3) / 3)
    # a class absent from y_true does not count in UAR; scikit-learn's default would count it
    assert metrics.uar([0, 0], [0, 1], 3) == pytest.approx(0.5)
    assert recall_score([0, 0], [0, 1], average="macro", zero_division=0) == pytest.approx(0.25)
    assert metrics.uar([], [], 3) == 0.0


def test_ccc_hand_computed():
    assert metrics.ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # y_true mean 2 var 2/3; y_pred = y_true + 1: cov 2/3, bias^2 1 -> 2*(2/3)/(4/3+1) = 4/7
    assert metrics.ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    assert metrics.ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_source_patience_semantics():
    stopper = SourcePatience(3)
    values = [0.30, 0.40, 0.35, 0.38, 0.36, 0.29]
    assert [stopper.update(v) for v in values] == [False, False, False, False, False, True]
    never = SourcePatience(0)
    assert not any(never.update(v) for v in [0.5, 0.1, 0.0])
