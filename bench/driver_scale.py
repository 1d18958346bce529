"""The driver's cost per trial as a study grows, apart from the sampler's, on every storage.

For each storage (SQLite, the default; an Optuna journal file; PostgreSQL, on a server this
benchmark starts on 127.0.0.1 when its binaries are installed) and each study size (0, 1,000
and 10,000 finished trials, written into the study with ``Study.add_trials``, not run),
100 new trivial trials run through the sweep's whole driver machinery: ``new_tuner`` of
``sweep/runner.py`` (the Optuna searcher with the shipped TPE sampler, the concurrency
limiter, the collapse stopper, progress and result callbacks, a checkpoint per step and
Ray's experiment snapshot after each). A trivial trial reports one result per step and has
no model and no data: what is left is the driver's cost.

Every call Optuna makes to the sampler is timed inside it, and so is ``ray.wait``, where Ray
Tune's controller idles until a trial answers. Over the steady pace (the completions of the
first to the last new trial, Ray's start-up left out), per trial: ``pace_ms`` (wall time),
``tpe_ms`` (the sampler, including the finished trials it reads from the storage),
``waiting_ms`` (the driver idle, waiting for trials) and ``overhead_ms``, the rest: the
driver's own work per trial excluding the sampler (ask, tell and user attributes on the
storage, Ray Tune's bookkeeping and snapshots, the callbacks). With real trials the waiting
overlaps training; the overhead and the sampler's time are what the driver spends.

A second part measures the snapshot cadence (``--snapshot-every``): 50 trivial trials of 10
steps each on a new SQLite study, at 1 (the default: a snapshot per checkpoint) and 10.

Prints one JSON object on its last line; ``ms_per_trial`` is the overhead excluding the
sampler at 10,000 finished trials on SQLite.

    .venv/bin/python bench/driver_scale.py [--sizes 0,1000,10000] [--trials 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import optuna
from common import emit

import sweep.search
from search_spaces import SearchSpace, load_space
from sweep.cluster import init_ray
from sweep.runner import new_tuner
from sweep.settings import Resources, SweepSettings
from sweep.study_storage import open_storage
from tests.postgres import binaries, postgres_server

# read by Ray Tune when a run starts: no default loggers, no warning about snapshot syncs
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

PREFILLED = "prefilled_"
CADENCE_TRIALS = 50
CADENCE_STEPS = 10


def trivial_trainable(steps: int):
    from ray import tune

    class Trivial(tune.Trainable):
        """``steps`` steps of a made-up objective, then done: no model, no data."""

        def setup(self, config: dict) -> None:
            self.value = (hash(str(config)) % 1000) / 1000
            self.epoch = 0

        def step(self) -> dict:
            self.epoch += 1
            return {
                "objective": self.value,
                "val_uar": self.value,
                "verdict": "healthy",
                "collapsed": 0,
                "epoch": self.epoch,
                "done": self.epoch >= steps,
            }

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            state = {"value": self.value, "epoch": self.epoch}
            Path(checkpoint_dir, "state.json").write_text(json.dumps(state))

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            state = json.loads(Path(checkpoint_dir, "state.json").read_text())
            self.value = state["value"]
            self.epoch = state["epoch"]

        def reset_config(self, new_config: dict) -> bool:
            self.setup(new_config)
            return True

    return Trivial


class CallTimes:
    """When each timed call started and how long it took (wall clock)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def timed(self, method, *args, **kwargs):
        started = time.time()
        try:
            return method(*args, **kwargs)
        finally:
            self.calls.append((started, time.time() - started))

    def seconds_between(self, start: float, end: float) -> float:
        return sum(seconds for started, seconds in self.calls if start < started <= end)


class TimedSampler(optuna.samplers.BaseSampler):
    """Times every call Optuna makes to the sampler it wraps."""

    def __init__(self, sampler: optuna.samplers.BaseSampler, times: CallTimes) -> None:
        self.sampler = sampler
        self.times = times

    def infer_relative_search_space(self, study, trial):
        return self.times.timed(self.sampler.infer_relative_search_space, study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.times.timed(self.sampler.sample_relative, study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        method = self.sampler.sample_independent
        return self.times.timed(method, study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        return self.times.timed(self.sampler.before_trial, study, trial)

    def after_trial(self, study, trial, state, values):
        return self.times.timed(self.sampler.after_trial, study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


@contextmanager
def timed_driver():
    """While the block runs, the shipped TPE sampler is wrapped in a :class:`TimedSampler`,
    and ``ray.wait`` (where Ray Tune's controller idles until a trial answers) is timed;
    yields both :class:`CallTimes`."""
    import ray

    sampler_times = CallTimes()
    waiting_times = CallTimes()
    shipped = sweep.search.SAMPLERS["tpe"]
    wait = ray.wait
    sweep.search.SAMPLERS["tpe"] = lambda *args: TimedSampler(shipped(*args), sampler_times)
    ray.wait = lambda *args, **kwargs: waiting_times.timed(wait, *args, **kwargs)
    try:
        yield sampler_times, waiting_times
    finally:
        sweep.search.SAMPLERS["tpe"] = shipped
        ray.wait = wait


def finished_trials(space: SearchSpace, count: int, seed: int = 0) -> list:
    """``count`` finished trials of ``space`` as a sweep leaves them (parameters, value and
    the attributes the searcher writes), drawn at random in memory."""
    rng = random.Random(seed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed))
    for number in range(count):
        trial = study.ask()
        overrides = space.suggest(trial)
        trial.set_user_attr("ray_trial_id", f"{PREFILLED}{number:05d}")
        trial.set_user_attr("overrides", json.dumps(overrides))
        trial.set_user_attr("verdict", "healthy")
        trial.set_user_attr("best_epoch", rng.randint(1, 12))
        study.tell(trial, rng.random())
    return study.get_trials(deepcopy=False)


def prefill(settings: SweepSettings, space: SearchSpace, trials: list) -> float:
    """Creates the sweep's study holding ``trials``; returns the seconds it took."""
    settings.folder.mkdir(parents=True)
    started = time.perf_counter()
    direction = "maximize" if space.mode == "max" else "minimize"
    study = optuna.create_study(
        study_name=settings.name,
        direction=direction,
        storage=open_storage(settings.resolved_study_url),
    )
    study.add_trials(trials)
    return time.perf_counter() - started


def timed_sweep(settings: SweepSettings, space: SearchSpace, steps: int) -> dict:
    """Runs the sweep of trivial trials; milliseconds per trial over the steady pace: the
    pace, the sampler's share, the driver's wait for trials and the overhead left."""
    settings.folder.mkdir(parents=True, exist_ok=True)
    with timed_driver() as (sampler_times, waiting_times):
        tuner = new_tuner(settings, space, trivial_trainable(steps))
        results = tuner.fit()
    assert len(results) == settings.samples and not results.errors, "every trial must finish"
    study = optuna.load_study(
        study_name=settings.name, storage=open_storage(settings.resolved_study_url)
    )
    new = [
        t
        for t in study.get_trials(deepcopy=False)
        if not t.user_attrs["ray_trial_id"].startswith(PREFILLED)
    ]
    assert len(new) == settings.samples and all(t.state.is_finished() for t in new)
    done = sorted(t.datetime_complete.timestamp() for t in new)
    window = done[-1] - done[0]
    sampler = sampler_times.seconds_between(done[0], done[-1])
    waiting = waiting_times.seconds_between(done[0], done[-1])
    per_trial = 1000 / (len(done) - 1)
    return {
        "pace_ms": round(per_trial * window, 1),
        "tpe_ms": round(per_trial * sampler, 1),
        "waiting_ms": round(per_trial * waiting, 1),
        "overhead_ms": round(per_trial * (window - sampler - waiting), 1),
    }


def storages(tmp: Path, stack: ExitStack) -> dict[str, str | None]:
    """Storage name -> URL (``None``: the sweep's default SQLite file in its folder)."""
    urls = {"sqlite": None, "journal": f"journal:{tmp / 'journal'}"}
    if binaries() is not None:
        urls["postgresql"] = stack.enter_context(postgres_server())
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,10000", help="finished trials, comma-separated")
    parser.add_argument("--trials", type=int, default=100, help="new trials timed per study")
    parser.add_argument("--space", default="demo")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    space = load_space(args.space)
    drawn = finished_trials(space, max(sizes))
    figures: dict = {
        "benchmark": "driver_scale",
        "space": args.space,
        "trials": args.trials,
        "sizes": sizes,
        "storages": {},
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        init_ray(Resources(num_cpus=2))
        urls = storages(Path(tmp), stack)
        for storage, url in urls.items():
            by_size = figures["storages"][storage] = {}
            for size in sizes:
                name = f"scale_{size}"
                settings = SweepSettings(
                    out=f"{tmp}/{storage}/{name}",
                    space=str(space.path),
                    samples=args.trials,
                    max_epochs=1,
                    name=name,
                    concurrency=2,
                    num_cpus=2,
                    study_url=url,
                )
                if url and url.startswith("journal:"):
                    settings.study_url = f"{url}_{size}.log"
                prefill_s = prefill(settings, space, drawn[:size])
                by_size[str(size)] = {
                    **timed_sweep(settings, space, steps=1),
                    "prefill_s": round(prefill_s, 1),
                }
                print(storage, size, by_size[str(size)], flush=True)
        if "postgresql" not in urls:
            figures["storages"]["postgresql"] = "skipped: PostgreSQL binaries not installed"
        cadence = {}
        for every in (1, CADENCE_STEPS):
            settings = SweepSettings(
                out=f"{tmp}/cadence/{every}",
                space=str(space.path),
                samples=CADENCE_TRIALS,
                max_epochs=CADENCE_STEPS,
                name=f"cadence_{every}",
                concurrency=2,
                num_cpus=2,
                snapshot_every=every,
            )
            per_trial = timed_sweep(settings, space, steps=CADENCE_STEPS)
            cadence[str(every)] = {
                "overhead_ms_per_step": round(per_trial["overhead_ms"] / CADENCE_STEPS, 1),
                "tpe_ms_per_trial": per_trial["tpe_ms"],
            }
            print("snapshot every", every, cadence[str(every)], flush=True)
    figures["snapshot_every"] = {"trials": CADENCE_TRIALS, "steps": CADENCE_STEPS, **cadence}
    largest = str(max(sizes))
    figures["ms_per_trial"] = figures["storages"]["sqlite"][largest]["overhead_ms"]
    figures["cpus"] = os.cpu_count()
    emit(figures)


if __name__ == "__main__":
    main()
