"""Every private Ray Tune and Optuna name sersweep relies on, in one place.

Each has no public equivalent that does the job (each function says why). The behaviour
relied on is pinned by ``tests/sweep/test_internals.py``, so an upgrade of Ray or Optuna
that changes one fails there, by name, and not somewhere in a sweep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch


def searcher_trials(searcher: OptunaSearch) -> dict[str, optuna.Trial]:
    """Ray trial id -> the live Optuna trial ``OptunaSearch`` asked for it. The searcher keeps
    this ask/tell bookkeeping to itself; sersweep labels those trials (Ray id, overrides,
    verdicts) and re-attaches trials a restored searcher state predates."""
    return searcher._ot_trials


def searcher_study(searcher: OptunaSearch) -> optuna.Study:
    """The study ``OptunaSearch`` asks and tells (it exposes none)."""
    return searcher._ot_study


def searcher_completed(searcher: OptunaSearch) -> set[str]:
    """Ray trial ids ``OptunaSearch`` has told: a trial told before a driver restart must not
    be told again."""
    return searcher._completed_trials


@contextmanager
def trial_cache_set_aside(study: optuna.Study) -> Iterator[None]:
    """While the block runs, the study's storage holds no cached trials. Optuna wraps every
    database storage in a cache of the study's trials that pickles with it, and Ray pickles
    the searcher, study included, at every experiment snapshot: with the cache, a snapshot
    costs time in proportion to the study's finished trials (BENCHMARKS.md, driver_scale).
    An unpickled storage without the cache reads the trials again when they are asked for."""
    storage = study._storage
    if not isinstance(storage, optuna.storages._CachedStorage):
        yield  # journal storage leaves its replayed trials out of its pickle itself
        return
    names = ("_studies", "_trial_id_to_study_id_and_number", "_study_id_and_number_to_trial_id")
    with storage._lock:
        cached = {name: getattr(storage, name) for name in names}
        for name in names:
            setattr(storage, name, {})
        try:
            yield
        finally:
            for name, value in cached.items():
                setattr(storage, name, value)


def live_trial(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """A live handle on a stored trial, e.g. one a killed driver left RUNNING. Optuna's public
    API hands out live trials only from ``ask()``; this one must be continued, not asked."""
    return optuna.Trial(study, frozen._trial_id)


def stored_state(study: optuna.Study, trial: optuna.Trial) -> TrialState:
    """The stored state of one trial, read from the storage (``study.get_trials()``, the
    public way, loads every trial of the study at each call)."""
    return study._storage.get_trial(trial._trial_id).state


def keep_local_ray_on_one_node() -> None:
    """Make a local Ray start in its single-node mode, where every server listens on
    loopback only. Ray reads the flag from the environment when it is imported, so a program
    that imported Ray first (a notebook, a test session) would get servers on every
    interface; there is no public setting after import."""
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def trial_storage(trainable) -> object | None:
    """The storage context Ray Tune gives a class trainable (``None`` outside Tune). Its
    artifacts are synced only when Tune saves a checkpoint; a trial stopped from outside
    (ASHA) must sync its last TensorBoard events itself: :func:`sync_artifacts`."""
    return getattr(trainable, "_storage", None)


def sync_artifacts(storage) -> None:
    """Upload the trial folder's artifacts to the sweep's storage now."""
    storage.persist_artifacts(force=True)


EXPERIMENT_STATE = "experiment_state-"  # Ray Tune's snapshot files: a prefix, a session, .json
SEARCH_STATE = "search_gen_state-"
FINISHED = ("TERMINATED", "ERROR")  # Ray trial statuses the concurrency limiter has let go


def align_search_state(experiment_uri: str) -> list[str]:
    """Make an experiment's newest search snapshot agree with its newest experiment state
    before ``Tuner.restore``; returns the ids of trials the searcher made that Ray never
    recorded.

    Ray writes both snapshots on the driver and copies them to the storage path in a
    background thread, file by file, so a driver killed mid-copy can leave a search snapshot
    from a later moment than the trial list beside it. Restored as they are, the search
    generator counts trials Ray never recorded (the sweep ends short of its samples) and the
    concurrency limiter keeps slots for them (fewer trials at once, or none). Both are in the
    generator's pickled state (its ``counter`` and the limiter's ``live_trials``), which Ray
    offers no public way to read or change.
    """
    import pyarrow.fs
    import ray.cloudpickle

    filesystem, folder = pyarrow.fs.FileSystem.from_uri(experiment_uri)
    names = [info.base_name for info in filesystem.get_file_info(pyarrow.fs.FileSelector(folder))]
    snapshots = [name for name in names if name.endswith(".json")]
    states = sorted(name for name in snapshots if name.startswith(EXPERIMENT_STATE))
    searches = sorted(name for name in snapshots if name.startswith(SEARCH_STATE))
    if not states or not searches:
        return []
    with filesystem.open_input_stream(f"{folder}/{states[-1]}") as handle:
        trials = [json.loads(entry[0]) for entry in json.loads(handle.readall())["trial_data"]]
    search_file = f"{folder}/{searches[-1]}"
    with filesystem.open_input_stream(search_file) as handle:
        search = ray.cloudpickle.loads(handle.readall())
    limiter = search.get("name:ConcurrencyLimiter", {})
    recorded = {trial["trial_id"] for trial in trials}
    running = {trial["trial_id"] for trial in trials if trial["status"] not in FINISHED}
    unrecorded = sorted(set(limiter.get("live_trials", ())) - recorded)
    if search["counter"] == len(trials) and limiter.get("live_trials", running) == running:
        return unrecorded
    search["counter"] = len(trials)
    if limiter:
        limiter["live_trials"] = running
        limiter["num_unfinished_live_trials"] = len(running)
    with filesystem.open_output_stream(search_file + ".part") as handle:
        handle.write(ray.cloudpickle.dumps(search))
    filesystem.move(search_file + ".part", search_file)
    return unrecorded
