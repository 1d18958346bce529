"""``latency_ms``, the cost objective a trial measures on its own device: a real SER model and
a real SGAN discriminator timed on one corpus row, batch 1 (no figure is asserted: timings
belong to benchmarks); a cost cannot be the objective trials are ranked by while they run."""

import pytest

from search_spaces import load_space
from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.errors import ConfigError
from sermodels.training.run import make_run
from sweep.trainable import classifier_latency_ms
from tests.helpers import TINY_SGAN

DATA = {"features": ["a_feat"], "tasks": "category:4:2", "test_idx": "0", "valid_idx": "1"}


def ser_run(corpus, n_node: int):
    """A real SER run on ``corpus`` with ``n_node`` units per layer."""
    config = config_from_dict(
        {
            "model": "ser",
            "data": DATA,
            "ser": {"frame": ["dnn"], "utterance": ["g_pool", "dnn"], "n_node": n_node},
            "train": {"epochs": 1, "batch_size": 16, "patience": 0},
        }
    )
    return make_run(config, load_run_corpus(config, corpus), None)


def test_a_ser_models_latency_is_measured_on_one_row(tiny_corpus):
    run = ser_run(tiny_corpus, 16)
    latency = classifier_latency_ms(run, run.corpus.train, calls=5)
    assert isinstance(latency, float) and 0 < latency < 1000  # a time, in milliseconds


def test_an_sgans_discriminator_is_timed_on_every_modality(tiny_corpus):
    config = config_from_dict(
        {
            "model": "sgan",
            "data": {
                **DATA,
                "features": ["a_feat", "v_feat"],
                "r_nrow": [32, 16],
                "r_ncol": [16, 16],
            },
            "sgan": dict(TINY_SGAN),
            "train": {"epochs": 1, "batch_size": 16, "patience": 0, "save_img_interval": 0},
        }
    )
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    assert 0 < classifier_latency_ms(run, run.corpus.train, calls=5) < 1000


def test_a_cost_cannot_be_the_first_objective(tmp_path):
    for objectives in (
        "objective: {metric: latency_ms, mode: min}",
        "objectives: [{metric: params, mode: min}, {metric: val_uar}]",
    ):
        (tmp_path / "space.yaml").write_text(f"{objectives}\nbase: {{model: ser}}\n")
        with pytest.raises(ConfigError, match="is a cost, the same every epoch; the first"):
            load_space(str(tmp_path / "space.yaml"))
    (tmp_path / "space.yaml").write_text(
        "objectives: [{metric: val_uar}, {metric: latency_ms, mode: min}]\nbase: {model: ser}\n"
    )
    assert [o.metric for o in load_space(str(tmp_path / "space.yaml")).objectives] == [
        "val_uar",
        "latency_ms",
    ]
