"""Real SGAN training at tiny sizes: the fused step, health signals, modes and loading."""

import json

import numpy as np
import pytest

from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.errors import ConfigError
from sermodels.training.gan_values import HEALTH_SIGNALS
from sermodels.training.run import make_run, train
from tests.helpers import TINY_SGAN

pytestmark = pytest.mark.backends  # every test here runs on TensorFlow and on JAX

AV = dict(
    features=["a_feat", "v_feat"],
    tasks="category:4:2",
    test_idx="0",
    valid_idx="1",
    r_nrow=[32, 48],
    r_ncol=[16, 48],
)


def run_config(sgan=None, data=None, epochs=2):
    return config_from_dict(
        {
            "model": "sgan",
            "data": {**AV, **(data or {})},
            "sgan": {**TINY_SGAN, **(sgan or {})},
            "train": {"epochs": epochs, "batch_size": 16, "patience": 0, "save_img_interval": 1},
        }
    )


def test_av_sgan_trains_and_reports_health_signals(tiny_corpus, tmp_path, capsys):
    config = run_config(sgan={"ndb_samples": 640}, data={"unlabelled_idx": "10:11"})
    config.train.check_batch_interval = 2
    history = []
    result = train(config, tiny_corpus, tmp_path / "run", on_epoch=lambda m: history.append(m))
    assert len(history) == 2 and result["epochs"] == 2
    for signal in (*HEALTH_SIGNALS, "diversity", "ndb", "nonfinite", "val_uar", "train_uar"):
        assert np.isfinite(history[-1][signal]), signal  # train UAR every epoch, as the source
    # the source's progress lines: every 2nd of the 7 steps of an epoch, and its last
    progress = [line for line in capsys.readouterr().out.splitlines() if " batch " in line]
    steps = [line.split()[3] for line in progress if line.startswith("epoch 1 ")]
    assert steps == ["2/7", "4/7", "6/7", "7/7"] and "d_loss_fake=" in progress[0]
    assert history[-1]["steps"] == (6 * 10) // 8  # 8 train + 2 unlabelled folds of 6 rows
    assert 0 <= result["test_uar"] <= 1 and history[-1]["d_grad_norm"] > 0
    out = tmp_path / "run"
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "a_feat.generator.keras",
        "combined.keras",
        "discriminator.keras",
        "manifest.json",
        "v_feat.generator.keras",
    ]
    manifest = json.loads((out / "models" / "manifest.json").read_text())
    assert manifest["classifier"] == "discriminator.keras"
    assert manifest["features"] == ["a_feat", "v_feat"] and manifest["class_names"][0]
    import keras

    combined = keras.saving.load_model(out / "models/combined.keras", compile=False)
    validity, classes = combined.predict_on_batch(np.zeros((2, 8), "f4"))  # noise -> G -> D
    assert validity.shape == (2, 1) and classes.shape == (2, 5)
    assert (out / "images" / "a_feat_epoch002.png").stat().st_size > 0
    assert list((out / "tb").iterdir()) and (out / "metrics.json").exists()


def test_fused_step_changes_both_players(tiny_corpus):
    config = run_config(epochs=1)
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    d_before = [w.copy() for w in run.gan.discriminator.get_weights()]
    g_before = [w.copy() for w in run.gan.generators[0].get_weights()]
    run.step_epoch()
    d_after, g_after = run.gan.discriminator.get_weights(), run.gan.generators[0].get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(d_before, d_after, strict=True))
    assert any(not np.allclose(a, b) for a, b in zip(g_before, g_after, strict=True))


@pytest.mark.parametrize(
    "sgan",
    [
        {"unsupervised": True},
        {"generator": False},
        {"validity_loss": "bce", "label_smoothing": 0.1, "instance_noise": 0.1, "d_steps": 2},
    ],
)
def test_modes_train(tiny_corpus, sgan):
    config = run_config(sgan=sgan, data={"features": ["a_feat"], "r_nrow": 32, "r_ncol": 16})
    result = train(config, tiny_corpus)
    assert result["epochs"] == 2
    if sgan.get("unsupervised"):
        assert result["test_uar"] is None and 0 <= result["test_validity"] <= 1
    else:
        assert 0 <= result["test_uar"] <= 1


def test_health_signals_flag_nonfinite_and_stop(tiny_corpus):
    config = run_config(sgan={"d_lr": 1e30, "g_lr": 1e30}, epochs=5)
    result = train(config, tiny_corpus)
    assert result["stop_reason"] == "nonfinite" and result["epochs"] < 5


def test_generator_shape_must_divide(tiny_corpus):
    config = run_config(data={"r_nrow": [31, 48]})
    with pytest.raises(ConfigError, match="not divisible"):
        make_run(config, load_run_corpus(config, tiny_corpus), None)


def test_source_string_syntax_per_modality(tiny_corpus):
    config = run_config(
        sgan={
            "depth_D": "1;2",
            "n_kernels_D": "4;4,6",
            "pool_n_row_D": "2;1,2",
            "pool_n_col_D": "2;1,2",
        }
    )
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    names = [layer.name for layer in run.gan.discriminator.layers]
    assert "v_feat_d_conv2" in names and "a_feat_d_conv2" not in names


def test_single_modality_models_load_into_av_branches_and_freeze(tiny_corpus, tmp_path):
    """Tutorial (5-5): audio-only and video-only models fill the two branches of an AV model."""
    audio = train(
        run_config(data={"features": ["a_feat"], "r_nrow": 32, "r_ncol": 16}),
        tiny_corpus,
        tmp_path / "a",
    )
    video = train(
        run_config(data={"features": ["v_feat"], "r_nrow": 48, "r_ncol": 48}),
        tiny_corpus,
        tmp_path / "v",
    )
    assert audio["models"][0] == "models/discriminator.keras" and video["epochs"] == 2
    sgan = {
        "load_D": f"{tmp_path}/a/models/discriminator.keras;"
        f"{tmp_path}/v/models/discriminator.keras",
        "unloaded_D": "d_dense*;d_dense*",
        "load_G": f"{tmp_path}/a/models/a_feat.generator.keras;"
        f"{tmp_path}/v/models/v_feat.generator.keras",
        "frozen_D": "a_feat_d_conv*",
    }
    config = run_config(sgan=sgan, epochs=1)
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    assert "a_feat_d_conv0" in run.gan.loaded and "v_feat_d_conv0" in run.gan.loaded
    assert "d_dense0" not in run.gan.loaded and "a_feat_g_dense" in run.gan.loaded
    import keras

    source = keras.saving.load_model(tmp_path / "a/models/discriminator.keras")
    frozen = run.gan.discriminator.get_layer("a_feat_d_conv0")
    np.testing.assert_allclose(
        frozen.get_weights()[0], source.get_layer("a_feat_d_conv0").get_weights()[0]
    )
    before = frozen.get_weights()[0].copy()
    run.step_epoch()
    np.testing.assert_allclose(frozen.get_weights()[0], before)  # frozen: not updated
    with pytest.raises(ConfigError, match="list it in unloaded"):
        bad = run_config(sgan={**sgan, "unloaded_D": None}, epochs=1)
        make_run(bad, load_run_corpus(bad, tiny_corpus), None)


def test_the_diversity_baseline_is_a_seeded_sample_across_speakers():
    from sermodels.training.diversity import real_sample

    rows = {"a_feat": np.arange(480, dtype=np.float32)[:, None]}  # stored speaker by speaker
    sample = real_sample(rows, seed=3, count=64)["a_feat"][:, 0]
    assert len(np.unique(sample)) == 64
    assert len(np.unique(sample // 40)) >= 10  # rows of most of the 12 speakers, not 1 or 2
    assert np.array_equal(sample, real_sample(rows, seed=3, count=64)["a_feat"][:, 0])
    assert not np.array_equal(sample, real_sample(rows, seed=4, count=64)["a_feat"][:, 0])
    assert len(real_sample({"a_feat": rows["a_feat"][:10]}, seed=0, count=64)["a_feat"]) == 10
