"""The source projects' Keras 2 models load into sersweep's models, weights only, from
committed fixtures in the Keras 2 layout (``tests/fixtures/legacy/write_fixtures.py`` wrote
them): every array lands in the layer of the same place in the source architecture."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from sermodels.config import SERConfig, config_from_dict
from sermodels.errors import ConfigError
from sermodels.models.ser import build_ser_model
from sermodels.specs import parse_tasks
from sermodels.training.gan import SGAN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def weights_of(path: Path, layer: str) -> list[np.ndarray]:
    with h5py.File(path) as h5:
        group = h5["model_weights"] if "model_weights" in h5 else h5
        names = [n.decode() for n in group[layer].attrs["weight_names"]]
        return [np.asarray(group[layer][n]) for n in names]


def tiny_sgan(**extra) -> SGAN:
    """The fixtures' source SGAN, as a sersweep config."""
    mapping = {
        "latent_dim": 8,
        "depth_G": 4,
        "n_kernels_G": [4, 4, 4, 1],
        "cnn_n_row_G": 3,
        "cnn_n_col_G": 3,
        "depth_D": 1,
        "n_kernels_D": [4],
        "cnn_n_row_D": 3,
        "cnn_n_col_D": 3,
        "pool_n_row_D": [2],
        "pool_n_col_D": [2],
        "n_node": 8,
        **extra,
    }
    config = config_from_dict({"model": "sgan", "sgan": mapping}).sgan
    return SGAN(config, {"a_feat": (32, 16, 1)}, n_classes=4)


def test_source_sgan_discriminator_and_generator_load_by_order():
    stem = FIXTURES / "sgan_a"
    gan = tiny_sgan(load_D=f"{stem}.discriminator", load_G=f"{stem}.a_feat.generator")
    d = gan.discriminator
    pairs = {
        "a_feat_d_conv0": "a_feat_cnn_1",
        "a_feat_d_bn0": "a_feat_batchnorm_3",
        "a_feat_d_conv1": "a_feat_cnn_5",
        "a_feat_d_bn1": "a_feat_batchnorm_7",
        "d_dense0": "dense_1",
        "validity": "dense_2",
        "class": "dense_3",
    }
    for ours, theirs in pairs.items():
        for mine, source in zip(
            d.get_layer(ours).get_weights(),
            weights_of(FIXTURES / "sgan_a.discriminator.hdf5", theirs),
            strict=True,
        ):
            np.testing.assert_array_equal(mine, source)
    g = gan.generators[0]
    generator_file = FIXTURES / "sgan_a.a_feat.generator.hdf5"
    pairs = {
        "a_feat_g_dense": "a_feat_dense_1",
        "a_feat_g_bn0": "a_feat_batch_normalization_1",
        "a_feat_g_conv1": "a_feat_conv2d_1",
        "a_feat_g_conv2": "a_feat_conv2d_2",
        "a_feat_g_out": "a_feat_conv2d_3",
    }
    for ours, theirs in pairs.items():
        np.testing.assert_array_equal(
            g.get_layer(ours).get_weights()[0], weights_of(generator_file, theirs)[0]
        )


def test_unloaded_layers_keep_their_initialisation_and_a_mismatch_is_named():
    stem = FIXTURES / "sgan_a"
    gan = tiny_sgan(load_D=f"{stem}.discriminator", unloaded_D="d_dense*,validity,class")
    assert "d_dense0" not in gan.loaded and "a_feat_d_conv0" in gan.loaded
    with pytest.raises(ConfigError, match="takes by order has") as info:
        tiny_sgan(load_D=f"{stem}.discriminator", n_node=16)  # dense_1 is 32 x 8 there
    assert "list it in unloaded" in str(info.value) and "\n" not in str(info.value)
    # -1: every layer, as the source: nothing loaded, or everything frozen
    nothing = tiny_sgan(load_D=f"{stem}.discriminator", unloaded_D="-1")
    assert nothing.loaded == []
    frozen = tiny_sgan(load_D=f"{stem}.discriminator", frozen_D="-1")
    assert not frozen.discriminator.trainable_variables


def test_source_trainer_model_loads_with_channels_first_features_reordered():
    """The source convolved channels-first: the LSTM after the flattened feature map gets
    its input rows in channels-last order; the architecture (with a layer class no Keras
    knows) is only read as data."""
    config = SERConfig(
        frame=["conv"],
        utterance=["lstm"],
        input_norm="batchnorm",
        n_filter=2,
        n_row=2,
        n_col=2,
        cell=4,
        l2=0.0,
        load_model=str(FIXTURES / "ser_cnn_lstm.h5"),
    )
    from sermodels.models.transfer import copy_pretrained

    model = build_ser_model(config, (2, 10, 8), parse_tasks("arousal:3:0,valence:3:1"))
    copied = copy_pretrained(model, config.load_model, None, "ser.load_model")
    assert copied == ["input_norm", "td_conv1", "u_lstm4", "u_lstm5", "arousal", "valence"]
    source = FIXTURES / "ser_cnn_lstm.h5"
    np.testing.assert_array_equal(
        model.get_layer("td_conv1").get_weights()[0], weights_of(source, "conv-0")[0]
    )
    # the feature map is 5 x 4 x 2 (H, W, C) here, 2 x 5 x 4 (C, H, W) in the source
    kernel = weights_of(source, "u-lstm-0")[0]
    expected = kernel.reshape(2, 5, 4, -1).transpose(1, 2, 0, 3).reshape(40, -1)
    np.testing.assert_array_equal(model.get_layer("u_lstm4").get_weights()[0], expected)
    np.testing.assert_array_equal(
        model.get_layer("u_lstm5").get_weights()[0], weights_of(source, "u-lstm-1")[0]
    )
    np.testing.assert_array_equal(
        model.get_layer("valence").get_weights()[0], weights_of(source, "valence")[0]
    )


def test_a_file_that_is_not_keras_2_weights_is_a_one_line_error(tmp_path):
    fake = tmp_path / "model.h5"
    with h5py.File(fake, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(ConfigError, match="no layer_names: not a Keras 2 weights file"):
        tiny_sgan(load_D=str(fake))
