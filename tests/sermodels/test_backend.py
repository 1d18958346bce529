"""The Keras backend: a checkpoint written under one backend restores under the other, the
seed makes runs repeatable on both, and Ray workers get the backend and a bounded GPU share."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sermodels.backend import requested, worker_environment
from sermodels.errors import ConfigError
from tests.conftest import WITHOUT_TENSORFLOW

ROOT = Path(__file__).resolve().parents[2]


def run_on(backend: str, *args) -> dict:
    """``backend_checkpoints.py`` in a fresh process on ``backend`` (JAX without TensorFlow)."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    if backend == "jax":
        env["PYTHONPATH"] = os.pathsep.join([str(WITHOUT_TENSORFLOW), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "tests.sermodels.backend_checkpoints", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.e2e  # a whole run on each backend, each in a process of its own
@pytest.mark.parametrize("writer,reader", [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_a_checkpoint_restores_under_the_other_backend(tiny_corpus, tmp_path, writer, reader):
    assert run_on(writer, "save", tmp_path, tiny_corpus)["backend"] == writer
    report = run_on(reader, "load", tmp_path, tiny_corpus)
    assert report["backend"] == reader
    for model in ("sgan", "ser"):
        # every weight, batch-norm statistic and optimiser slot, bit for bit
        assert report[f"{model}_equal"] and report[f"{model}_arrays"] > 10, report
        assert report[f"{model}_epoch"] == 2  # and training goes on from epoch 1


@pytest.mark.backends
def test_the_seed_makes_a_run_repeatable(tiny_corpus):
    from sermodels.backend import seed_everything
    from sermodels.config import config_from_dict
    from sermodels.data import load_run_corpus
    from sermodels.training.run import make_run
    from tests.sermodels.backend_checkpoints import CONFIGS

    config = config_from_dict(CONFIGS["sgan"])
    corpus = load_run_corpus(config, tiny_corpus)
    histories = []
    for _ in range(2):
        seed_everything(0)
        run = make_run(config, corpus, None)
        histories.append(run.step_epoch())
    for key in ("d_loss", "g_loss", "diversity", "val_uar"):
        assert histories[0][key] == pytest.approx(histories[1][key], rel=1e-5), key
    if os.environ.get("KERAS_BACKEND") == "jax":
        assert "tensorflow" not in sys.modules  # nothing on the JAX path imported it


def test_workers_get_the_backend_and_a_bounded_share_of_a_gpu():
    jax = worker_environment("jax", cpus=1, gpus=0.25)
    assert jax["KERAS_BACKEND"] == "jax"
    assert float(jax["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.225)
    assert "intra_op_parallelism_threads=1" in jax["XLA_FLAGS"]
    assert jax["JAX_COMPILATION_CACHE_DIR"]  # trials of the same shapes share compiled steps
    whole = worker_environment("jax", cpus=4, gpus=1)
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in whole and "XLA_FLAGS" not in whole
    tf = worker_environment("tensorflow", cpus=1, gpus=0.5)
    assert tf == {"KERAS_BACKEND": "tensorflow", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    with pytest.raises(ConfigError, match="--backend"):
        requested("torch")


def test_keras_seed_adapter_resets_the_global_seed_like_set_random_seed():
    """Pins the private Keras names sermodels.keras_adapter relies on: after it, Keras' global
    seed is the one given and its global seed generator starts afresh, as after
    ``keras.utils.set_random_seed``."""
    import random

    import keras
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    from sermodels.keras_adapter import set_keras_seed

    draws = []
    for _ in range(2):
        random.seed(123)
        set_keras_seed(123)
        assert rng_utils.get_random_seed() == 123
        assert global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR) is None
        draws.append(np.asarray(keras.random.normal((3,))))
    np.testing.assert_array_equal(*draws)
