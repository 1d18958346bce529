"""The source projects' options are searchable: a space samples every choice of every option
and each drawn run config trains on real data."""

from pathlib import Path

import optuna
import pytest
import yaml

from search_spaces import load_space
from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.training.run import make_run

SER_SPACE = """
base:
  model: ser
  data: {features: [a_feat], tasks: "category:4:category,arousal:3:arousal::0.5",
         test_idx: "0,1", valid_idx: "2,3"}
  ser: {n_node: 8, cell: 8, conv_depth: 2}
  train: {epochs: 1, batch_size: 32, patience: 1}
params:
  ser.frame:
    type: categorical
    choices: [[conv], [r_conv], [conv_hw], [conv_3d], [r_conv_3d], [conv_hw_3d], [lstm], [dnn],
              [highway], [residual]]
  ser.utterance:
    type: categorical
    choices: [[lstm, dnn], [g_lstm], [g_pool, lstm], [attention], [g_pool], [highway],
              [residual], []]
  ser.n_filter: {type: categorical, choices: [2, 4], per_layer: 2}
  ser.pool_r: {type: categorical, choices: [2, 1], per_layer: 2}
  ser.pool_t: {type: categorical, choices: [2, 1], per_layer: 2}
  ser.stride: {type: categorical, choices: [1, 2]}
  ser.frame_pool: {type: categorical, choices: [flatten, mean]}
  ser.input_norm: {type: categorical, choices: [none, batchnorm]}
  ser.clipvalue: {type: categorical, choices: [null, 0.5]}
  ser.class_weight: {type: categorical, choices: [none, auto]}
  ser.class_weight_formula: {type: categorical, choices: [inverse, complement]}
  ser.post_elm: {type: categorical, choices: [false, true]}
  train.stop_on: {type: categorical, choices: [score, loss]}
  train.eval_train: {type: categorical, choices: [false, true]}
"""
SGAN_SPACE = """
base:
  model: sgan
  data: {features: [a_feat], tasks: category:4:category, test_idx: "0,1", valid_idx: "2,3",
         r_nrow: 32, r_ncol: 16}
  sgan: {latent_dim: 8, depth_G: 3, n_kernels_G: [4, 4, 1], cnn_n_row_G: 3, cnn_n_col_G: 3,
         depth_D: 1, n_kernels_D: [4], cnn_n_row_D: 3, cnn_n_col_D: 3, n_node: 8}
  train: {epochs: 1, batch_size: 16, patience: 0, save_img_interval: 0}
params:
  train.check_batch_interval: {type: categorical, choices: [0, 2]}
  train.eval_train: {type: categorical, choices: [true, false]}
  sgan.dropout: {type: categorical, choices: [0.0, 0.25]}
  sgan.frozen_G: {type: categorical, choices: [null, "-1"]}
"""


def every_choice(space) -> list[dict]:
    """Optuna parameters of as many draws as the longest choice list: draw i takes each
    parameter's i-th choice (cycling), so every choice of every option is drawn once."""
    from search_spaces.loader import _label

    count = max(len(p.choices) for p in space.params)
    return [
        {p.name: _label(p.choices[i % len(p.choices)]) for p in space.params} for i in range(count)
    ]


def draws(text: str, tmp_path: Path):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    space = load_space(path)
    for params in every_choice(space):
        trial = optuna.trial.FixedTrial(_per_layer(params, space))
        yield params, space.run_config(space.suggest(trial))


def _per_layer(params: dict, space) -> dict:
    """FixedTrial needs every Optuna name a per-layer parameter asks for (``NAME.0`` ...)."""
    named = dict(params)
    for param in space.params:
        if param.per_layer is not None:
            for layer in range(param.per_layer):
                named[f"{param.name}.{layer}"] = params[param.name]
    return named


@pytest.mark.parametrize(
    "space_text",
    [pytest.param(SER_SPACE, id="ser", marks=pytest.mark.e2e), pytest.param(SGAN_SPACE, id="sgan")],
)  # the SER draw trains every source architecture option: end to end
def test_each_source_option_is_sampled_and_trains(space_text, tiny_corpus, tmp_path):
    trained = 0
    for params, mapping in draws(space_text, tmp_path):
        config = config_from_dict(mapping, f"draw {params}")
        run = make_run(config, load_run_corpus(config, tiny_corpus), None)
        metrics = run.step_epoch()
        assert metrics["epoch"] == 1 and not metrics["nonfinite"], params
        trained += 1
    assert trained == len(every_choice(load_space(_write(space_text, tmp_path))))


def _write(text: str, tmp_path: Path) -> Path:
    path = tmp_path / "again.yaml"
    path.write_text(text)
    return path


def test_the_space_files_are_valid_yaml():
    for text in (SER_SPACE, SGAN_SPACE):
        assert set(yaml.safe_load(text)) == {"base", "params"}
