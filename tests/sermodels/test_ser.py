"""Every SER architecture block and imbalance method trains for real at tiny size."""

import numpy as np
import pytest

from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.errors import ConfigError
from sermodels.training.run import make_run, train

DATA = dict(features=["a_feat"], tasks="category:4:2", test_idx="0,1", valid_idx="2,3")
SMALL = dict(n_node=8, cell=8, n_filter=4, f_dnn_depth=1, dnn_depth=1)


def run_config(ser, data=None, epochs=2):
    return config_from_dict({
        "model": "ser", "data": {**DATA, **(data or {})}, "ser": {**SMALL, **ser},
        "train": {"epochs": epochs, "batch_size": 16, "patience": 0},
    })  # fmt: skip


ARCHITECTURES = [
    (["dnn"], ["g_pool", "dnn"]),
    ([], ["lstm", "dnn"]),
    (["conv"], ["lstm"]),
    (["r_conv", "residual"], ["lstm", "residual"]),
    (["conv_hw", "highway"], ["g_lstm", "highway"]),
    (["conv_3d"], ["attention", "dnn"]),
    (["lstm"], ["lstm", "lstm"]),
]


@pytest.mark.backends
@pytest.mark.parametrize("frame,utterance", ARCHITECTURES)
def test_architectures_train(tiny_corpus, frame, utterance):
    result = train(run_config({"frame": frame, "utterance": utterance}), tiny_corpus)
    assert result["epochs"] == 2 and 0 <= result["test_uar"] <= 1


@pytest.mark.parametrize(
    "task,ser",
    [
        ("category:4:2", {"class_weight": "auto", "l2": 1e-4}),
        ("category:4:2", {"class_weight": "category:0.5:1:1:1"}),
        ("category:4:2:weighted_categorical_crossentropy", {}),
        ("category:4:2:categorical_focal_loss", {"focal_gamma": 1.0}),
        ("category:4:2", {"smote_enn": True}),
    ],
)
def test_imbalance_methods(tiny_corpus, task, ser):
    result = train(run_config({"frame": ["dnn"], "utterance": ["dnn"], **ser}, {"tasks": task}),
                   tiny_corpus)  # fmt: skip
    assert 0 <= result["test_uar"] <= 1


@pytest.mark.backends
def test_multi_task_heads_report_each_task(tiny_corpus):
    tasks = "category:4:2::1.0,arousal:3:0::0.5,arousal_c:1:6:ccc:0.5"
    config = run_config({"frame": ["dnn"], "utterance": ["dnn"]}, {"tasks": tasks})
    result = train(config, tiny_corpus)
    assert {"test_category_uar", "test_arousal_uar", "test_arousal_c_ccc"} <= set(result)
    assert -1 <= result["test_arousal_c_ccc"] <= 1


def test_pretrained_with_frozen_layers(tiny_corpus, tmp_path):
    base = run_config({"frame": ["conv"], "utterance": ["lstm", "dnn"]})
    train(base, tiny_corpus, tmp_path / "base")
    tuned = run_config({"frame": ["conv"], "utterance": ["lstm", "dnn"], "frozen": "0:3",
                        "load_model": str(tmp_path / "base/models/ser.keras")})  # fmt: skip
    run = make_run(tuned, load_run_corpus(tuned, tiny_corpus), None)
    conv = run.model.layers[2]
    before = conv.get_weights()[0].copy()
    run.step_epoch()
    np.testing.assert_allclose(conv.get_weights()[0], before)
    assert run.loaded == ["conv1", "u_lstm4", "dnn5", "category"]  # every layer with weights


@pytest.mark.parametrize(
    "ser,message",
    [
        ({"frame": ["transformer"]}, "unknown block"),
        ({"utterance": ["dnn", "lstm"]}, "must come before"),
        ({"frame": ["dnn", "conv"]}, "conv blocks must come before"),
        ({"n_node": 0}, "must be >= 1"),
        ({"smote_enn": True, "frame": ["dnn"]}, "single classification task"),
    ],
)
def test_bad_architectures_are_named(tiny_corpus, ser, message):
    config = run_config(ser, {"tasks": "category:4:2,arousal:3:0"})
    with pytest.raises(ConfigError, match=message):
        make_run(config, load_run_corpus(config, tiny_corpus), None)
