"""Every private Ray Tune and Optuna name sersweep relies on, in one place.

Each has no public equivalent that does the job (each function says why). The behaviour
relied on is pinned by ``tests/sweep/test_internals.py``, so an upgrade of Ray or Optuna
that changes one fails there, by name, and not somewhere in a sweep.
"""

from __future__ import annotations

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
