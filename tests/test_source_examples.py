"""``examples/source``: one config per source experiment at the source's sizes. Each builds,
and its parameter count equals the count of the source's own architecture, worked out here
layer by layer from the source code (``sgan_mer.py``'s ``building_custom_gan``,
``trainer.py``'s model section), independently of sermodels. Two of them train a batch."""

from math import ceil
from pathlib import Path

import pytest
import yaml

from sermodels.config import config_from_dict, load_config
from sermodels.models.ser import build_ser_model
from sermodels.specs import parse_tasks

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "source").glob("*.yaml"))
RAW_WAVE = (5, 1600, 1)  # the various_metrics runs: 5 windows of 1,600 samples
MEL = (10, 10, 80)  # ENT.MSPEC: 10 windows of 10 frames of 80 mel bands
# the one deliberate difference: a highway convolution whose input has fewer channels than
# its filters carries the input through a 1 x 1 projection (the source broadcast it)
DIFFERENCES = {"ser_basic_highway_lstm_highway": 1 * 1 * 1 * 2 + 2}


def per_modality(value, n: int) -> list[list[int]]:
    """The source's ``"2,4,6;2,4,6"`` (or one value, or a list) as one list per modality."""
    if isinstance(value, int):
        return [[value]] * n
    if isinstance(value, list):
        return [value] * n
    parts = [[int(x) for x in part.split(",")] for part in str(value).split(";")]
    return parts * n if len(parts) == 1 else parts


def source_sgan_parameters(sgan: dict, shapes: list[tuple[int, int]], n_classes: int) -> int:
    n = len(shapes)
    depth_g = [d[0] for d in per_modality(sgan["depth_G"], n)]
    depth_d = [d[0] for d in per_modality(sgan["depth_D"], n)]
    kernels_g, kernels_d = (
        per_modality(sgan["n_kernels_G"], n),
        per_modality(sgan["n_kernels_D"], n),
    )
    rows_g, cols_g = per_modality(sgan["cnn_n_row_G"], n), per_modality(sgan["cnn_n_col_G"], n)
    rows_d, cols_d = per_modality(sgan["cnn_n_row_D"], n), per_modality(sgan["cnn_n_col_D"], n)
    pool_r, pool_c = per_modality(sgan["pool_n_row_D"], n), per_modality(sgan["pool_n_col_D"], n)
    latent, total, flat = sgan.get("latent_dim", 100), 0, 0
    for m, (rows, cols) in enumerate(shapes):
        # building_generator: Dense to a grid of n_row / depth_G (Python 2 division), BN
        # (4 numbers per channel), then Conv + BN per middle layer, a last 1-channel Conv
        k = kernels_g[m]
        units = k[0] * (rows // depth_g[m]) * (cols // depth_g[m])
        total += latent * units + units + 4 * k[0]
        channels = k[0]
        for i in range(1, depth_g[m] - 1):
            total += rows_g[m][i] * cols_g[m][i] * channels * k[i] + k[i] + 4 * k[i]
            channels = k[i]
        total += rows_g[m][-1] * cols_g[m][-1] * channels + 1
        # building_discriminator: a stride-2 Conv with layer 0's settings, BN, pooling, then
        # depth_D Conv + BN + pooling ("same" convolutions, "valid" pooling)
        k = kernels_d[m]
        total += rows_d[m][0] * cols_d[m][0] * k[0] + k[0] + 4 * k[0]
        h, w = ceil(rows / 2) // pool_r[m][0], ceil(cols / 2) // pool_c[m][0]
        channels = k[0]
        for i in range(depth_d[m]):
            total += rows_d[m][i] * cols_d[m][i] * channels * k[i] + k[i] + 4 * k[i]
            channels = k[i]
            h, w = h // pool_r[m][i], w // pool_c[m][i]
        flat += h * w * channels
    width = sgan["n_node"]
    for i in range(sgan.get("depth_a_v_D", 1)):
        total += (flat if i == 0 else width) * width + width
    total += width + 1  # validity
    if not sgan.get("unsupervised"):
        total += width * (n_classes + 1) + n_classes + 1
    return total


def source_trainer_parameters(ser: dict, shape: tuple[int, ...], tasks: list) -> int:
    def sizes(key, depth):
        value = ser.get(key)
        return (
            [int(v) for v in str(value).split(",")][:depth]
            if isinstance(value, str)
            else (value if isinstance(value, list) else [value] * depth)
        )

    def lstm(inputs, cell):
        return 4 * (inputs * cell + cell * cell + cell)

    def dense(inputs, units):
        return inputs * units + units

    frame, utterance = ser.get("frame", []), ser.get("utterance", [])
    n, cell, depth = ser["n_node"], ser.get("cell", 32), ser.get("conv_depth", 1)
    steps, context, dims = shape
    total = 4 * dims if ser.get("input_norm") == "batchnorm" else 0  # TimeDistributed(BN)
    features = context * dims
    if any(b in frame for b in ("conv", "r_conv", "conv_hw")):  # per frame, channels first
        h, w, channels = context, dims, 1
        filters, kr, kc = sizes("n_filter", depth), sizes("n_row", depth), sizes("n_col", depth)
        pr, pc = sizes("pool_r", depth), sizes("pool_c", depth)
        for d in range(depth):
            conv = kr[d] * kc[d] * channels * filters[d] + filters[d]
            total += 2 * conv if "conv_hw" in frame else conv  # Conv2DHighway: kernel + gate
            channels, h, w = filters[d], h // pr[d], w // pc[d]
        features = h * w * channels
    if any(b in frame for b in ("conv_3d", "r_conv_3d")):
        t, h, w, channels = steps, context, dims, 1
        filters = sizes("n_filter", depth)
        kt, kr, kc = sizes("n_time", depth), sizes("n_row", depth), sizes("n_col", depth)
        pt, pr, pc = sizes("pool_t", depth), sizes("pool_r", depth), sizes("pool_c", depth)
        for d in range(depth):
            total += kt[d] * kr[d] * kc[d] * channels * filters[d] + filters[d]
            channels, t, h, w = filters[d], t // pt[d], h // pr[d], w // pc[d]
        steps, features = t, h * w * channels
    for block in ("dnn", "highway", "residual"):
        if block in frame:
            if block != "dnn":
                total += dense(features, n)  # the 'dim' layer
                features = n
            for _ in range(ser.get("f_dnn_depth", 1)):
                total += dense(features, n) * (2 if block == "highway" else 1)
                features = n
    if "lstm" in frame:  # --f_lstm
        total += lstm(features, cell) + lstm(cell, cell)
        features = cell
    elif "lstm" in utterance:  # --u_lstm (and --g_pool: the mean input beside the output)
        total += lstm(features, cell) + lstm(cell, cell)
        features = cell + (features if "g_pool" in utterance else 0)
    elif any(b in frame for b in ("dnn", "highway", "residual", "conv_3d", "r_conv_3d")):
        features *= steps  # Flatten
    for block in ("dnn", "highway", "residual"):
        if block in utterance:
            if block != "dnn":
                total += dense(features, n)
                features = n
            for _ in range(ser.get("dnn_depth", 1)):
                total += dense(features, n) * (2 if block == "highway" else 1)
                features = n
    return total + sum(dense(features, t.n_classes) for t in tasks)


def input_shape(name: str) -> tuple[int, ...]:
    return RAW_WAVE if name.startswith("ser_metrics") else MEL


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_source_example_has_the_source_architectures_parameter_count(path):
    mapping = yaml.safe_load(path.read_text())
    for key in ("load_G", "load_D", "load_model"):  # the architecture, not the loaded weights
        mapping.get(mapping["model"], {}).pop(key, None)
    config = config_from_dict(mapping, str(path))
    tasks = parse_tasks(config.data.tasks)
    if config.model == "sgan":
        from sermodels.training.gan import SGAN

        rows = config.data.r_nrow if isinstance(config.data.r_nrow, list) else [config.data.r_nrow]
        cols = config.data.r_ncol if isinstance(config.data.r_ncol, list) else [config.data.r_ncol]
        shapes = dict(zip(config.data.features, zip(rows, cols, strict=True), strict=True))
        gan = SGAN(config.sgan, {k: (*v, 1) for k, v in shapes.items()}, tasks[0].n_classes)
        ours = sum(m.count_params() for m in (gan.discriminator, *gan.generators))
        expected = source_sgan_parameters(
            mapping["sgan"], list(shapes.values()), tasks[0].n_classes
        )
    else:
        model = build_ser_model(config.ser, input_shape(path.stem), tasks)
        ours = model.count_params()
        expected = source_trainer_parameters(mapping["ser"], input_shape(path.stem), tasks)
    assert ours == expected + DIFFERENCES.get(path.stem, 0)


@pytest.mark.parametrize("name", ["sgan_3_video", "ser_basic_fcn"])
def test_source_size_examples_train_a_batch(name, tmp_path):
    """At the source's sizes on a corpus of the source's shapes, one epoch trains: the weights
    move, nothing goes non-finite, and an SGAN takes one step per half-batch of real rows."""
    import keras
    import numpy as np

    from sermodels.data import load_run_corpus
    from sermodels.data.demo import DemoShape, write_demo_corpus
    from sermodels.training.run import make_run

    shape = DemoShape(bins=256 if name.startswith("sgan") else 80)
    corpus = write_demo_corpus(tmp_path / "source.h5", 20, 8, seed=0, shape=shape)
    config = load_config(Path(__file__).parent.parent / "examples" / "source" / f"{name}.yaml")
    config.data.test_idx, config.data.valid_idx, config.data.r_valid = "0", "1", 0.0
    run = make_run(config, load_run_corpus(config, corpus), None)
    before = [np.array(w) for w in keras.tree.flatten(run.get_weights())]
    signals = run.train_one_epoch()
    assert not signals["nonfinite"], signals
    after = keras.tree.flatten(run.get_weights())
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))  # it learned
    if name.startswith("sgan"):  # one pass: every whole half-batch of real rows, once
        half = min(config.train.batch_size // 2, run.rows.size)
        assert signals["steps"] == run.rows.size // half >= 1
