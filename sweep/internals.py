"""Every private Ray Tune and Optuna name sersweep relies on, in one place.

Each has no public equivalent that does the job (each function says why). The behaviour
relied on is pinned by ``tests/sweep/test_internals.py``, so an upgrade of Ray or Optuna
that changes one fails there, by name, and not somewhere in a sweep.
"""

from __future__ import annotations

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
