"""The whole chain on JAX through the CLI, where TensorFlow is not installed (its import
fails in every process: driver, Ray workers, final tasks): train, sweep, resume, best,
final, report, re-evaluation."""

import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import WITHOUT_TENSORFLOW
from tests.helpers import ROOT, launch
from tests.sweep.helpers import sweep_command, trial_results

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

# KERAS_BACKEND says tensorflow: the flag, and then the saved sweep, must win over it
ENV = {
    **os.environ,
    "KERAS_BACKEND": "tensorflow",
    "PYTHONPATH": os.pathsep.join([str(WITHOUT_TENSORFLOW), str(ROOT)]),
}


def launch_without_tensorflow(*args) -> subprocess.CompletedProcess:
    """``launch.py ARGS`` with TensorFlow unimportable, which must succeed."""
    done = launch(*args, env=ENV)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


# a small audio SGAN (32 x 16 crops): the chain, not the model, is under test here
TINY_SPACE = """
objective: {metric: val_uar, mode: max}
max_epochs: 2
base:
  model: sgan
  data: {features: [a_feat], test_idx: "0,1", valid_idx: "2,3", r_nrow: 32, r_ncol: 16}
  sgan: {latent_dim: 8, depth_G: 3, n_kernels_G: [4, 4, 1], depth_D: 1, n_kernels_D: [4],
         pool_n_row_D: [2], pool_n_col_D: [2], n_node: 8}
  train: {batch_size: 32, patience: 0, save_img_interval: 1}
params:
  sgan.d_lr: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
"""


def test_train_sweep_resume_best_final_report_on_jax_without_tensorflow(demo_corpus, tmp_path):
    corpus = demo_corpus(12, 12, seed=3)
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    config = tmp_path / "tiny_run.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load(TINY_SPACE)["base"]))
    launch_without_tensorflow(
        "train",
        config,
        "--backend",
        "jax",
        "--data",
        corpus,
        "--epochs",
        1,
        "--out",
        tmp_path / "train",
    )
    assert json.loads((tmp_path / "train/metrics.json").read_text())["epochs"] == 1

    out = tmp_path / "sweep"
    command = sweep_command(
        corpus, out, "jx", "--space", space, "--samples", 2, "--num-cpus", 2, "--backend", "jax"
    )
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert yaml.safe_load((out / "sweep.yaml").read_text())["backend"] == "jax"
    rows = [r for runs in trial_results(out / "ray" / "jx").values() for r in runs]
    assert len(rows) >= 2 and {r["keras_backend"] for r in rows} == {"jax"}

    # the saved backend: a TensorFlow driver could not even start
    launch_without_tensorflow("resume", out)
    launch_without_tensorflow("reeval", out, "--top", 1, "--seeds", 2)
    (row,) = json.loads((out / "reeval/summary.json").read_text())
    assert row["pick"] and len(row["seeds"]) == 2 and 0 <= row["val_mean"] <= 1
    launch_without_tensorflow("best", out, "--top", 1)
    assert list((out / "best").glob("rank1_*.yaml"))
    launch_without_tensorflow("final", out, "--top", 1, "--seeds", 1)
    summary = json.loads((out / "final/summary.json").read_text())
    assert 0 <= summary["configs"][0]["test_uar_mean"] <= 1
    launch_without_tensorflow("report", out)
    assert (out / "report/report.md").stat().st_size > 0
