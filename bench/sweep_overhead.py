"""Sweep overhead: N short SGAN trials through the sweep vs the same trials back-to-back in
one plain Python process, at concurrency 1 and 2, in one run.

The same N configurations (drawn from the ``demo`` space with a seeded random sampler) run
three ways: a plain loop (``TrainingRun.fit`` with TensorBoard output, as a user's script
would), a sweep at concurrency 1 (one trial at a time, 2 CPUs per trial) and a sweep at
concurrency 2 (1 CPU per trial). The sweeps get the configs through Optuna's
``enqueue_trial``, so the trials are identical. Collapse stopping is off: every trial runs
its full budget in all three.

Ray is started once before the sweeps (as on a running cluster); its start-up time is
reported separately (``ray_init_s``) and ``ratio_c1_cold`` includes it.

Prints one JSON object on its last line with ``ratio_c1`` and ``ratio_c2`` (sweep wall /
plain wall), and ``epoch_1cpu_over_2cpu``: how much slower an epoch trains on one CPU than
on two (the best ``ratio_c2`` two concurrent trials can reach is about half of it).

    .venv/bin/python bench/sweep_overhead.py [--trials 8] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import optuna
from common import emit

from search_spaces import load_space
from sermodels.config import config_from_dict
from sermodels.data import demo_corpus_path
from sermodels.training.run import make_run
from sweep.cluster import init_ray
from sweep.corpus import load_sweep_corpus
from sweep.runner import start_sweep
from sweep.search import DefineByRun
from sweep.settings import Resources, SweepSettings


def draw_params(space, trials: int, seed: int) -> list[dict]:
    """Optuna parameter sets (what ``enqueue_trial`` takes) for ``trials`` configs."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    define = DefineByRun(space)
    params = []
    for _ in range(trials):
        trial = study.ask()
        define(trial)
        params.append(dict(trial.params))
    return params


def plain_loop(space, params: list[dict], epochs: int, corpus, out: Path) -> float:
    started = time.perf_counter()
    for index, values in enumerate(params):
        overrides = space.suggest(optuna.trial.FixedTrial(values))
        mapping = space.run_config(overrides, max_epochs=epochs)
        mapping["train"]["save_models"] = False
        config = config_from_dict(mapping, "plain")
        make_run(config, corpus, out / f"trial{index}").fit()
    return time.perf_counter() - started


def mean_epoch_seconds(out: Path) -> float:
    """Mean training time of an epoch after the first (which traces) in a sweep's trials."""
    seconds = [
        row["epoch_seconds"]
        for path in out.glob("ray/bench/trial_*/result.json")
        for row in map(json.loads, path.read_text().splitlines())
        if row["epoch"] > 1
    ]
    return sum(seconds) / len(seconds)


def sweep(space, params, epochs, concurrency: int, out: Path) -> float:
    settings = SweepSettings(
        out=str(out), space=str(space.path), data=str(demo_corpus_path()),
        samples=len(params), max_epochs=epochs, name="bench", concurrency=concurrency,
        cpus_per_trial=2 / concurrency, stop_on_collapse=False, num_cpus=2, reeval_top=0,
    )  # fmt: skip
    out.mkdir(parents=True)
    study = optuna.create_study(study_name="bench", storage=settings.resolved_study_url,
                                direction="maximize")  # fmt: skip
    for values in params:
        study.enqueue_trial(values)
    started = time.perf_counter()
    start_sweep(settings)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("demo")
    params = draw_params(space, args.trials, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = load_sweep_corpus(space, SweepSettings(out=str(tmp), space="demo"))
        plain_loop(space, params[:1], 1, corpus, tmp / "warmup")  # trace once, like a worker
        plain = plain_loop(space, params, args.epochs, corpus, tmp / "plain")
        started = time.perf_counter()
        init_ray(Resources(num_cpus=2))
        ray_init = time.perf_counter() - started
        c1 = sweep(space, params, args.epochs, 1, tmp / "c1")
        c2 = sweep(space, params, args.epochs, 2, tmp / "c2")
        # how much slower one trial trains on 1 CPU (c2) than on 2 (c1): with perfect
        # thread scaling two concurrent trials cannot beat one trial on both cores
        thread_scaling = mean_epoch_seconds(tmp / "c2") / mean_epoch_seconds(tmp / "c1")
    figures = {
        "trials": args.trials, "epochs": args.epochs, "plain_s": round(plain, 2),
        "sweep_c1_s": round(c1, 2), "sweep_c2_s": round(c2, 2), "ray_init_s": round(ray_init, 2),
        "ratio_c1": round(c1 / plain, 3), "ratio_c2": round(c2 / plain, 3),
        "ratio_c1_cold": round((c1 + ray_init) / plain, 3),
        "epoch_1cpu_over_2cpu": round(thread_scaling, 3), "cpus": os.cpu_count(),
    }  # fmt: skip
    emit(figures)


if __name__ == "__main__":
    main()
