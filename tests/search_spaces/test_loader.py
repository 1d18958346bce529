"""Search-space files: the shipped spaces draw valid configs that train; bad files fail with
one line naming file and key."""

import textwrap

import optuna
import pytest

from search_spaces import load_space, space_names
from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.errors import ConfigError
from sermodels.training.run import make_run

SHIPPED = (
    "demo",
    "sgan_audio",
    "sgan_video",
    "sgan_av",
    "sgan_unsupervised",
    "ser_archs",
    "ser_mtl",
)


def draws(space, n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.suggest(study.ask()) for _ in range(n)]


def test_the_issue_s_spaces_are_shipped():
    assert set(SHIPPED) <= set(space_names())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_draws_build_and_train_one_epoch(name, tiny_corpus):
    space = load_space(name)
    for overrides in draws(space, 2, seed=len(name)):
        mapping = space.run_config(overrides, max_epochs=1, data_path=tiny_corpus)
        mapping["train"].update(batch_size=16, save_models=False)
        config = config_from_dict(mapping, name)
        run = make_run(config, load_run_corpus(config), None)
        metrics = run.step_epoch()
        assert metrics["epoch"] == 1 and "epoch_seconds" in metrics


def write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


BASE = """
base:
  model: sgan
  data: {features: [a_feat, v_feat], tasks: category:4:2}
"""


def test_conditions_ratios_and_per_modality_layers(tmp_path):
    space = load_space(
        write(
            tmp_path,
            BASE
            + textwrap.dedent("""
    params:
      sgan.d_lr: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
      ratio: {type: float, low: 2, high: 4, sets: sgan.g_lr, times: sgan.d_lr}
      sgan.depth_D: {type: int, low: 1, high: 3, per_modality: true}
      sgan.n_kernels_D: {type: categorical, choices: [8, 16], per_modality: true, per_layer: sgan.depth_D}
      sgan.task_weights: {type: categorical, choices: [[0.5, 0.5], [0.2, 0.8]]}
      noise: {type: categorical, choices: ["off", "on"]}
      sgan.instance_noise: {type: float, low: 0.1, high: 0.2, when: {noise: "on"}}
      sgan.d_steps: 2
    """),
        )
    )
    seen_noise = set()
    for overrides in draws(space, 12):
        assert 2 <= overrides["sgan.g_lr"] / overrides["sgan.d_lr"] <= 4
        depths = overrides["sgan.depth_D"]
        assert len(depths) == 2
        assert [len(k) for k in overrides["sgan.n_kernels_D"]] == depths
        assert overrides["sgan.task_weights"] in ([0.5, 0.5], [0.2, 0.8])
        assert overrides["sgan.d_steps"] == 2
        seen_noise.add("sgan.instance_noise" in overrides)
        config_from_dict(space.run_config(overrides))
    assert seen_noise == {True, False}  # the conditional parameter comes and goes


@pytest.mark.parametrize(
    ("body", "where", "problem"),
    [
        ("params: {sgan.d_lr: {type: float, low: 1, high: [}", "", "not valid YAML"),
        ("params: {sgan.d_lr: {type: gaussian}}", "params.sgan.d_lr.type", "expected one of"),
        (
            "params: {sgan.d_lr: {type: float, low: 0.1, high: 0.01}}",
            "params.sgan.d_lr.low",
            "> high",
        ),
        (
            "params: {sgan.d_lr: {type: float, low: 0, high: 1, log: true}}",
            "params.sgan.d_lr.low",
            "log scale",
        ),
        (
            "params: {sgan.d_lr: {type: float, low: abc, high: 1}}",
            "params.sgan.d_lr.low",
            "expected a number",
        ),
        (
            "params: {sgan.depth_D: {type: int, low: 1.5, high: 3}}",
            "params.sgan.depth_D.low",
            "expected an int",
        ),
        (
            "params: {sgan.n_node: {type: categorical, choices: []}}",
            "params.sgan.n_node.choices",
            "non-empty",
        ),
        (
            "params: {sgan.dropout: {type: float, low: 0, high: 0.5, when: {arch: cnn}}}",
            "params.sgan.dropout.when",
            "unknown parameter 'arch'",
        ),
        (
            "params: {sgan.dropout: {type: float, low: 0, high: 0.5, log: yes please}}",
            "params.sgan.dropout.log",
            "true or false",
        ),
        (
            "params: {sgan.unsupervised: {type: categorical, choices: [maybe]}}",
            "sgan.unsupervised",
            "true or false",
        ),
        (
            "params: {sgan.n_node: {type: categorical, choices: [many]}}",
            "sgan.n_node",
            "expected int",
        ),
        (
            "params: {data.r_nrow: {type: int, low: 8, high: 16}}",
            "params.data.r_nrow.sets",
            "read once",
        ),
        (
            "params: {sgan.d_lr: {type: float, low: 1, high: 2, colour: red}}",
            "params.sgan.d_lr.colour",
            "unknown field",
        ),
        ("params: {sgan.nodes: {type: int, low: 8, high: 16}}", "sgan.nodes", "unknown key"),
        (
            "params: {r: {type: float, low: 1, high: 2, times: sgan.d_lr}}",
            "params.r.times",
            "numeric parameter",
        ),
        (
            "params: {sgan.n_kernels_D: {type: int, low: 8, high: 9, per_layer: depth}}",
            "params.sgan.n_kernels_D.per_layer",
            "int parameter",
        ),
        ("objective: {metric: val_uar, mode: best}", "objective.mode", "max or min"),
        ("speed: fast", "speed", "unknown key"),
    ],
)
def test_bad_space_files_name_file_and_key(tmp_path, body, where, problem):
    path = write(tmp_path, BASE + body + "\n")
    with pytest.raises(ConfigError) as error:
        load_space(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and where in message and problem in message


def test_unknown_space_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="sgan_audio"):
        load_space("no_such_space")


def test_searched_tasks_may_only_use_columns_the_base_reads(tmp_path):
    path = write(
        tmp_path, BASE + "params: {data.tasks: {type: categorical, choices: [gender:2:5]}}\n"
    )
    with pytest.raises(ConfigError, match=r"label columns \[5\]"):
        load_space(path)
