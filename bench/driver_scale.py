"""Driver overhead per trial: 1,000 trivial trials through the sweep's whole driver
machinery (Optuna TPE searcher on SQLite, concurrency limiter, collapse stopper, progress and
result loggers, a checkpoint per step) vs the same trials through bare Ray Tune (random
search, no callbacks), in one run.

A trivial trial reports one result and ends: what is left is the driver's cost per trial.

Prints one JSON object on its last line: ``ms_per_trial`` (the sweep's wall time / trials),
``ms_per_trial_last_100`` (the pace at the end: costs grow with the study), the share spent
in Optuna (``optuna_ms_per_trial``: ask + tell + user attributes, timed in the searcher),
the same sweep with Optuna's random sampler instead of TPE, and bare Ray Tune.

    .venv/bin/python bench/driver_scale.py [--trials 1000] [--space demo]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_spaces import load_space  # noqa: E402
from sweep.runner import init_ray, new_tuner  # noqa: E402
from sweep.search import SweepOptunaSearch  # noqa: E402
from sweep.settings import SweepSettings  # noqa: E402


def trivial_trainable():
    from ray import tune

    class Trivial(tune.Trainable):
        """One step, a made-up objective, done: no model, no data."""

        def setup(self, config: dict) -> None:
            self.value = (hash(str(config)) % 1000) / 1000

        def step(self) -> dict:
            return {"objective": self.value, "val_uar": self.value, "verdict": "healthy",
                    "collapsed": 0, "done": True}  # fmt: skip

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            Path(checkpoint_dir, "state.json").write_text(json.dumps({"value": self.value}))

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            self.value = json.loads(Path(checkpoint_dir, "state.json").read_text())["value"]

        def reset_config(self, new_config: dict) -> bool:
            self.setup(new_config)
            return True

    return Trivial


class TimedSearch(SweepOptunaSearch):
    """The sweep's searcher, timing its own calls (what Optuna costs the driver)."""

    seconds = 0.0

    def suggest(self, trial_id):
        started = time.perf_counter()
        try:
            return super().suggest(trial_id)
        finally:
            TimedSearch.seconds += time.perf_counter() - started

    def on_trial_complete(self, trial_id, result=None, error=False):
        started = time.perf_counter()
        try:
            return super().on_trial_complete(trial_id, result, error)
        finally:
            TimedSearch.seconds += time.perf_counter() - started


def sweep_machinery(space, trials: int, out: Path, sampler: str = "tpe") -> dict:
    import sweep.search
    from sweep.results import load_study

    settings = SweepSettings(out=str(out), space=str(space.path), samples=trials, max_epochs=1,
                             name="scale", concurrency=2, num_cpus=2, sampler=sampler)  # fmt: skip
    out.mkdir(parents=True)
    original, sweep.search.SweepOptunaSearch = sweep.search.SweepOptunaSearch, TimedSearch
    try:
        tuner = new_tuner(settings, space, trivial_trainable())
    finally:
        sweep.search.SweepOptunaSearch = original
    started = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started
    assert len(results) == trials and not results.errors, "every trivial trial must finish"
    done = sorted(t.datetime_complete for t in load_study(settings).trials)
    last = min(100, trials - 1)  # the cost grows with the study: the last trials' pace
    return {"wall": wall, "last_ms": 1000 * (done[-1] - done[-1 - last]).total_seconds() / last}


def bare_ray(trials: int, out: Path) -> float:
    from ray import tune

    tuner = tune.Tuner(
        trivial_trainable(),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            num_samples=trials, max_concurrent_trials=2, reuse_actors=True
        ),  # fmt: skip
        run_config=tune.RunConfig(storage_path=str(out), name="bare", verbose=0),
    )
    started = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started
    assert len(results) == trials and not results.errors
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--space", default="demo")
    args = parser.parse_args()
    space = load_space(args.space)
    with tempfile.TemporaryDirectory() as tmp:
        init_ray(SweepSettings(out=tmp, space=args.space, num_cpus=2))
        bare = bare_ray(args.trials, Path(tmp) / "bare")
        swept = sweep_machinery(space, args.trials, Path(tmp) / "sweep")
        tpe_seconds, TimedSearch.seconds = TimedSearch.seconds, 0.0
        random = sweep_machinery(space, args.trials, Path(tmp) / "random", sampler="random")
    figures = {
        "benchmark": "driver_scale", "trials": args.trials, "space": args.space,
        "sweep_s": round(swept["wall"], 2), "bare_ray_s": round(bare, 2),
        "ms_per_trial": round(1000 * swept["wall"] / args.trials, 1),
        "ms_per_trial_last_100": round(swept["last_ms"], 1),
        "optuna_ms_per_trial": round(1000 * tpe_seconds / args.trials, 1),
        "random_sampler_ms_per_trial": round(1000 * random["wall"] / args.trials, 1),
        "random_sampler_optuna_ms_per_trial": round(1000 * TimedSearch.seconds / args.trials, 1),
        "bare_ray_ms_per_trial": round(1000 * bare / args.trials, 1),
        "cpus": os.cpu_count(),
    }  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
