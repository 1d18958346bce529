"""Sweep overhead: N short SGAN trials through the sweep vs the same trials back-to-back in
one plain Python process, at concurrency 1 and 2, side by side in one run, with where the
sweep's extra time goes.

The same N configurations (drawn from the ``demo`` space with a seeded random sampler) run
three ways: a plain loop (``TrainingRun.fit`` with TensorBoard output, as a user's script
would), a sweep at concurrency 1 (one trial at a time, 2 CPUs per trial) and a sweep at
concurrency 2 (1 CPU per trial). The sweeps get the configs through Optuna's
``enqueue_trial``, so the trials are identical. Collapse stopping and the leaders'
re-evaluation are off: every trial runs its full budget in all three, and nothing else.
The three run in turn, ``--repeats`` rounds, so a slow minute of the machine falls on all.

In each round Ray is started after the plain loop and before the sweeps (as on a running
cluster) and shut down after them, so no plain loop runs beside an idle Ray; its start-up
time is reported separately (``ray_init_s``) and ``ratio_c1_cold`` includes it.

The concurrency-1 sweep's wall time is split along the trials' own timeline (each result's
``epoch_started_at``, ``trial_setup_seconds`` and Ray's ``time_this_iter_s``):

* ``first_trial_wait_s``: from the sweep's start until its first trial begins to build (Ray
  Tune's set-up, the first actor's new worker process and its imports, the corpus);
* ``trial_setup_s``: every trial's ``clear_session`` and model build;
* ``epochs_s``: every epoch as its trial ran it (training, validation, health signals,
  the verdict);
* ``between_epochs_s``: between one epoch's end and the next's start within a trial
  (checkpoint, result handling, the driver's snapshot);
* ``between_trials_s``: between a trial's last epoch and the next trial's build (the actor's
  reset, the searcher's next config);
* ``after_last_s``: after the last epoch until the sweep returns (the study's bookkeeping,
  the summary).

and the plain loop's into ``build_s`` and ``fit_s``. ``per_trial_s`` is what each trial adds
beyond the plain loop once the first trial has started (the sweep minus its fixed
``first_trial_wait_s`` and ``after_last_s``, minus the plain loop, per trial).

Prints one JSON object on its last line with ``ratio_c1`` and ``ratio_c2`` (sweep wall /
plain wall; mean, SD and the per-round values), the breakdown, and
``epoch_1cpu_over_2cpu``: how much slower an epoch trains on one CPU than on two (the best
``ratio_c2`` two concurrent trials can reach is about half of it).

    .venv/bin/python bench/sweep_overhead.py [--trials 8] [--epochs 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import ray
from common import emit, spread

from search_spaces import load_space
from sermodels.config import config_from_dict
from sermodels.data import demo_corpus_path
from sermodels.training.run import make_run
from sweep.cluster import init_ray
from sweep.corpus import load_sweep_corpus
from sweep.runner import start_sweep
from sweep.search import DefineByRun
from sweep.settings import Resources, SweepSettings
from sweep.trainable import EPOCH_STARTED_AT, TRIAL_SETUP_SECONDS


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


def plain_loop(space, params: list[dict], epochs: int, corpus, out: Path) -> dict:
    """The trials one after another in this process; seconds in all, building and fitting."""
    build = fit = 0.0
    define = DefineByRun(space)
    for index, values in enumerate(params):
        # what the sweep's trial of this number trains (its seed included)
        overrides = define(optuna.trial.FixedTrial(values, number=index))["overrides"]
        mapping = space.run_config(overrides, max_epochs=epochs)
        mapping["train"]["save_models"] = False
        config = config_from_dict(mapping, "plain")
        started = time.perf_counter()
        run = make_run(config, corpus, out / f"trial{index}")
        built = time.perf_counter()
        run.fit()
        build, fit = build + built - started, fit + time.perf_counter() - built
    return {"wall_s": build + fit, "build_s": build, "fit_s": fit}


def trial_rows(out: Path) -> list[list[dict]]:
    """Each trial's result rows in epoch order, trials in the order they started."""
    trials = [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in out.glob("ray/bench/trial_*/result.json")
    ]
    return sorted(trials, key=lambda rows: rows[0][EPOCH_STARTED_AT])


def timeline(trials: list[list[dict]], started: float, ended: float) -> dict:
    """A concurrency-1 sweep's wall time split along its trials' timeline (see the module's
    docstring); the parts add up to the wall time."""
    names = (
        "first_trial_wait_s",
        "trial_setup_s",
        "epochs_s",
        "between_epochs_s",
        "between_trials_s",
        "after_last_s",
    )
    parts = dict.fromkeys(names, 0.0)
    previous_end = None
    for rows in trials:
        setup = rows[0][TRIAL_SETUP_SECONDS]
        build_start = rows[0][EPOCH_STARTED_AT] - setup
        if previous_end is None:
            parts["first_trial_wait_s"] = build_start - started
        else:
            parts["between_trials_s"] += build_start - previous_end
        parts["trial_setup_s"] += setup
        for row, following in zip(rows, rows[1:] + [None], strict=True):
            end = row[EPOCH_STARTED_AT] + row["time_this_iter_s"]
            parts["epochs_s"] += row["time_this_iter_s"]
            if following is not None:
                parts["between_epochs_s"] += following[EPOCH_STARTED_AT] - end
            previous_end = end
    parts["after_last_s"] = ended - previous_end
    return parts


def mean_epoch_seconds(trials: list[list[dict]]) -> float:
    """Mean training time of an epoch after the first (which traces) in a sweep's trials."""
    return statistics.fmean(
        row["epoch_seconds"] for rows in trials for row in rows if row["epoch"] > 1
    )


def sweep(space, params, epochs, concurrency: int, out: Path) -> tuple[float, list, dict]:
    """One sweep of the enqueued ``params``: its wall seconds, its trials' rows and, at
    concurrency 1, its timeline."""
    settings = SweepSettings(
        out=str(out),
        space=str(space.path),
        data=str(demo_corpus_path()),
        samples=len(params),
        max_epochs=epochs,
        name="bench",
        concurrency=concurrency,
        cpus_per_trial=2 / concurrency,
        stop_on_collapse=False,
        num_cpus=2,
        reeval_top=0,
    )
    out.mkdir(parents=True)
    study = optuna.create_study(
        study_name="bench", storage=settings.resolved_study_url, direction="maximize"
    )
    for values in params:
        study.enqueue_trial(values)
    started_at, started = time.time(), time.perf_counter()
    start_sweep(settings)
    wall = time.perf_counter() - started
    trials = trial_rows(out)
    parts = timeline(trials, started_at, started_at + wall) if concurrency == 1 else {}
    return wall, trials, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("demo")
    params = draw_params(space, args.trials, args.seed)
    rounds, epoch_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = load_sweep_corpus(space, SweepSettings(out=str(tmp), space="demo"))
        plain_loop(space, params[:1], 1, corpus, tmp / "warmup")  # trace once, like a worker
        for index in range(args.repeats):
            plain = plain_loop(space, params, args.epochs, corpus, tmp / f"plain{index}")
            started = time.perf_counter()
            init_ray(Resources(num_cpus=2))
            ray_init = time.perf_counter() - started
            c1, c1_trials, parts = sweep(space, params, args.epochs, 1, tmp / f"c1_{index}")
            c2, c2_trials, _ = sweep(space, params, args.epochs, 2, tmp / f"c2_{index}")
            ray.shutdown()
            # how much slower one trial trains on 1 CPU (c2) than on 2 (c1): with perfect
            # thread scaling two concurrent trials cannot beat one trial on both cores
            epoch_ratios.append(mean_epoch_seconds(c2_trials) / mean_epoch_seconds(c1_trials))
            fixed = parts["first_trial_wait_s"] + parts["after_last_s"]
            rounds.append(
                {
                    "plain_s": plain["wall_s"],
                    "sweep_c1_s": c1,
                    "sweep_c2_s": c2,
                    "ratio_c1": c1 / plain["wall_s"],
                    "ratio_c2": c2 / plain["wall_s"],
                    "ray_init_s": ray_init,
                    "plain": plain,
                    "c1_timeline": parts,
                    "per_trial_s": (c1 - fixed - plain["wall_s"]) / args.trials,
                }
            )
    figures = {
        "trials": args.trials,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "ratio_c1": spread([r["ratio_c1"] for r in rounds]),
        "ratio_c2": spread([r["ratio_c2"] for r in rounds]),
        "ratio_c1_cold": spread(
            [(r["sweep_c1_s"] + r["ray_init_s"]) / r["plain_s"] for r in rounds]
        ),
        "plain_s": spread([r["plain_s"] for r in rounds]),
        "sweep_c1_s": spread([r["sweep_c1_s"] for r in rounds]),
        "sweep_c2_s": spread([r["sweep_c2_s"] for r in rounds]),
        "plain_parts": {
            key: spread([r["plain"][key] for r in rounds]) for key in ("build_s", "fit_s")
        },
        "c1_timeline": {
            key: spread([r["c1_timeline"][key] for r in rounds]) for key in rounds[0]["c1_timeline"]
        },
        "per_trial_s": spread([r["per_trial_s"] for r in rounds]),
        "ray_init_s": spread([r["ray_init_s"] for r in rounds]),
        "epoch_1cpu_over_2cpu": spread(epoch_ratios),
        "cpus": os.cpu_count(),
    }
    emit(figures)


if __name__ == "__main__":
    main()
