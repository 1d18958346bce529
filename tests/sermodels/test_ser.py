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
    return config_from_dict(
        {
            "model": "ser",
            "data": {**DATA, **(data or {})},
            "ser": {**SMALL, **ser},
            "train": {"epochs": epochs, "batch_size": 16, "patience": 0},
        }
    )


ARCHITECTURES = {
    "fcn": {"frame": ["dnn"], "utterance": ["dnn"]},  # frame blocks flattened, as the source
    "fcn_mean": {"frame": ["dnn"], "utterance": ["dnn"], "frame_pool": "mean"},
    "lstm_fcn": {"frame": [], "utterance": ["lstm", "dnn"]},
    "g_pool_lstm": {"frame": [], "utterance": ["g_pool", "lstm", "dnn"]},
    "cnn_lstm": {
        "frame": ["conv"],
        "utterance": ["lstm"],
        "conv_depth": 2,
        "n_filter": [2, 4],
        "pool_r": [2, 1],
        "pool_c": "2,2",
        "stride": 1,
    },
    "resnet": {
        "frame": ["r_conv", "residual"],
        "utterance": ["lstm", "residual"],
        "conv_depth": 2,
        "n_filter": [4, 4],
        "pool_r": 1,
        "pool_c": 1,
    },
    "highway": {"frame": ["conv_hw", "highway"], "utterance": ["g_lstm", "highway"]},
    "conv3d": {"frame": ["conv_3d"], "utterance": ["attention", "dnn"], "pool_t": 2},
    "resnet3d": {"frame": ["r_conv_3d"], "utterance": ["dnn"], "conv_depth": 2},
    "highway3d": {"frame": ["conv_hw_3d"], "utterance": ["dnn"]},
    "frame_lstm": {"frame": ["lstm"], "utterance": ["dnn"]},
    "input_batchnorm": {"frame": ["dnn"], "utterance": ["dnn"], "input_norm": "batchnorm"},
}


@pytest.mark.backends
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architectures_train(tiny_corpus, name):
    result = train(run_config(ARCHITECTURES[name]), tiny_corpus)
    assert result["epochs"] == 2 and 0 <= result["test_uar"] <= 1


def test_r_conv_skips_are_identities_where_shapes_match():
    """As the source: x + F(x) without a projection when F keeps the shape; a 1x1
    projection only where the filters differ."""
    from sermodels.models.ser import build_ser_model
    from sermodels.specs import parse_tasks

    def layer_names(n_filter):
        ser = {
            **SMALL,
            "frame": ["r_conv"],
            "utterance": ["dnn"],
            "conv_depth": 2,
            "n_filter": n_filter,
            "pool_r": 1,
            "pool_c": 1,
        }
        model = build_ser_model(run_config(ser).ser, (2, 10, 8), parse_tasks("category:4:2"))
        return " ".join(layer.name for layer in model.layers)

    assert "proj" not in layer_names([4, 4]) and "add" in layer_names([4, 4])
    assert "proj" in layer_names([4, 6])


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
    result = train(
        run_config({"frame": ["dnn"], "utterance": ["dnn"], **ser}, {"tasks": task}), tiny_corpus
    )
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
    tuned = run_config(
        {
            "frame": ["conv"],
            "utterance": ["lstm", "dnn"],
            "frozen": "0:3",
            "load_model": str(tmp_path / "base/models/ser.keras"),
        }
    )
    run = make_run(tuned, load_run_corpus(tuned, tiny_corpus), None)
    conv = run.model.layers[2]
    before = conv.get_weights()[0].copy()
    run.step_epoch()
    np.testing.assert_allclose(conv.get_weights()[0], before)
    # every layer with weights: the per-frame convolution, the two LSTMs, the dense, the head
    assert run.loaded == ["td_conv1", "u_lstm4", "u_lstm5", "dnn6", "category"]


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


def test_one_d_inputs_take_one_d_convolutions(tmp_path):
    """The source's 1-D input ``(n, time, dims)`` with ``-l_filter`` / ``-pool``."""
    import h5py

    path = tmp_path / "frames.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        h5["a_feat"] = rng.normal(size=(24, 20, 8)).astype("f4")
        h5["label"] = np.stack([np.zeros(24), np.zeros(24), np.arange(24) % 4], 1).astype("f4")
        h5["start_indice"], h5["end_indice"] = [0, 8, 16], [8, 16, 24]
    ser = {
        "frame": ["conv", "dnn"],
        "utterance": ["lstm"],
        "conv_depth": 2,
        "l_filter": [5, 3],
        "pool": [2, 1],
        "n_filter": 4,
    }
    config = run_config(ser, {"test_idx": "0", "valid_idx": "1"})
    run = make_run(config, load_run_corpus(config, path), None)
    convs = [layer for layer in run.model.layers if layer.__class__.__name__ == "Conv1D"]
    assert [c.kernel_size for c in convs] == [(5,), (3,)]
    assert run.model.get_layer("features").output.shape[1:] == (20, 8)
    assert run.step_epoch()["epoch"] == 1


def test_post_elm_classifies_utterances_from_frame_outputs(tiny_corpus, tmp_path):
    config = run_config(
        {"frame": ["dnn"], "utterance": ["dnn"], "post_elm": True, "elm_hidden": 12}
    )
    result = train(config, tiny_corpus, tmp_path / "elm")
    assert 0 <= result["test_uar"] <= 1
    assert (tmp_path / "elm/models/category.elm.npz").exists()
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    assert len(run.model.outputs[0].shape) == 3  # a frame-level head: (batch, time, classes)


def test_adaptation_folds_train_after_the_training_folds(tiny_corpus):
    folds = {"adopt_idx": "4,5", "test_idx": "0,1", "valid_idx": "2,3"}
    config = run_config({"frame": ["dnn"], "utterance": ["dnn"]}, folds, epochs=2)
    config.train.adopt_epochs = 1
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    assert run.total_epochs == 3 and len(run.corpus.adopt) == 12
    result = run.fit()
    assert result["epochs"] == 3 and result["best_epoch"] == 3  # the kept model is adapted


def test_loss_based_stopping_clipping_train_evaluation_and_source_class_weights(tiny_corpus):
    config = run_config(
        {
            "frame": ["dnn"],
            "utterance": ["dnn"],
            "clipvalue": 0.5,
            "lr": 0.05,
            "class_weight": "auto",
            "class_weight_formula": "complement",
        },
        epochs=6,
    )
    config.train.stop_on, config.train.patience, config.train.eval_train = "loss", 1, True
    history = []
    result = train(config, tiny_corpus, on_epoch=lambda m: history.append(m))
    assert all("val_loss" in m and "train_uar" in m for m in history)
    assert "train_uar" in result and result["stop_reason"] in ("patience", "budget")
    assert abs(result["epochs"] - len(history)) == 0


def test_class_weight_formulas():
    from sermodels.models.losses import class_weights

    ids = np.array([0] * 6 + [1] * 2 + [2] * 2)
    np.testing.assert_allclose(class_weights(ids, 3, "inverse"), [10 / 18, 10 / 6, 10 / 6])
    np.testing.assert_allclose(class_weights(ids, 3, "complement"), [0.4, 0.8, 0.8])
