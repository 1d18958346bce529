"""Optuna through Ray Tune's Searcher seam, with the collapse verdict kept on the study.

Ray's ``OptunaSearch`` asks the study for parameters and tells it the final value. This
subclass also records, per Optuna trial, the Ray trial id and config overrides (so ``best``
can rebuild a config from the study alone), the deciding verdict and every verdict the trial
reached. A trial stopped by a verdict is told as PRUNED, and one that reached ``nan`` (at any
point) too; both are infeasible under Optuna's constraint ``collapse``, which TPE ranks below
every feasible trial, so it learns where GANs fail, not only where they score low (and TPE's
proposals beside such trials are redrawn: :mod:`sweep.failure_risk`). A label-only verdict
(``d_overpowers`` under a classifier objective) stays feasible. ``best`` and ``final`` pick
COMPLETE trials only. A trial that raised is told FAIL.
"""

from __future__ import annotations

import json
import logging
import math
import warnings

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from search_spaces import SearchSpace
from sweep.collapse import FAILURES, NAN
from sweep.dashboard import TrialImages
from sweep.failure_risk import FailureRiskSampler
from sweep.internals import (
    live_trial,
    searcher_completed,
    searcher_study,
    searcher_trials,
    stored_state,
    trial_cache_set_aside,
)
from sweep.settings import MAX_FAILURE_RISK, STARTUP_TRIALS
from sweep.study_storage import open_storage
from sweep.trainable import INVALID, OBJECTIVE, REPLAYED

logger = logging.getLogger(__name__)
VERDICT_ATTRS = (
    "verdict",
    "verdict_onset",
    "verdict_epoch",
    "best_epoch",
    "objective_epoch",
    "stop_reason",
)
ALWAYS_KEPT = ("verdict", "best_epoch")
TRIAL_SEED = "train.seed"
COLLAPSE_CONSTRAINT = "collapse"  # > 0: the trial ended in a failure verdict the sweep stops on


def _tpe(
    seed: int,
    startup_trials: int = STARTUP_TRIALS,
    max_failure_risk: float = MAX_FAILURE_RISK,
) -> optuna.samplers.BaseSampler:
    # constant_liar: trials still running count as bad results, so concurrent trials are not
    # drawn next to each other (no effect when one trial runs at a time)
    tpe = optuna.samplers.TPESampler(
        seed=seed,
        multivariate=True,
        group=True,
        constant_liar=True,
        n_startup_trials=startup_trials,
    )
    if max_failure_risk >= 1:
        return tpe
    return FailureRiskSampler(tpe, max_failure_risk, seed=seed)


SAMPLERS = {
    "tpe": _tpe,
    # the others take no start-up count and no failure risk
    "nsga2": lambda seed, *_: optuna.samplers.NSGAIISampler(seed=seed),
    "random": lambda seed, *_: optuna.samplers.RandomSampler(seed=seed),
}


def objective_keys(space: SearchSpace) -> list[str]:
    """The result keys of a space's objectives, in order: :data:`OBJECTIVE` (the first, the
    one ASHA ranks by), then ``objective_METRIC`` for each other one."""
    return [OBJECTIVE, *(objective.key for objective in space.others)]


class DefineByRun:
    """The define-by-run function OptunaSearch calls: parameters come from the space file;
    the config overrides they imply travel to the trial under ``overrides``.

    Each trial trains with its own seed, its Optuna trial number (``train.seed`` among its
    overrides, so ``best`` and ``final`` rebuild it exactly). Under one shared seed, nearby
    configurations train almost alike, so the sampler would model that one seed's landscape
    and chase its lucky bumps, which fresh seeds do not repeat; with a seed per trial it sees
    the seed noise it has to see through. A seed the space's base fixes (or ``--set
    train.seed=N``) stays fixed for every trial, and a space may search it like any key.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.seed_is_fixed = "seed" in space.base.get("train", {})

    def __call__(self, trial: optuna.Trial) -> dict:
        overrides = self.space.suggest(trial)
        if not self.seed_is_fixed:
            overrides.setdefault(TRIAL_SEED, trial.number)
        return {"overrides": overrides}


class SweepOptunaSearch(OptunaSearch):
    """:class:`OptunaSearch` that labels each Optuna trial with what happened to it.

    Args:
        space: the loaded search space.
        storage: Optuna storage URL (SQLite, PostgreSQL, ``journal:PATH``, ...).
        study_name: the study to create or continue.
        seed: seed of the sampler.
        stopping: the verdicts that stop trials; a trial labelled with another verdict ran
            its budget and is told COMPLETE with its value (the label stays as an attribute).
        sampler: ``tpe`` (multivariate TPE grouped by the conditional sub-spaces a
            define-by-run space makes; several objectives too), ``nsga2`` (Optuna's NSGA-II,
            for a Pareto sweep) or ``random`` (the baseline to compare them against).
        startup_trials: TPE's random draws before it models the finished trials (a
            warm start's inherited trials count among them); other samplers ignore it.
        max_failure_risk: TPE's proposals whose estimated failure risk is above it are
            redrawn (:class:`~sweep.failure_risk.FailureRiskSampler`; 1: never); other
            samplers ignore it.
        images: attaches each trial's last generated images to its Optuna trial before
            the trial is told (artifacts for optuna-dashboard); ``None``: none.

    Example:
        >>> searcher = SweepOptunaSearch(load_space("demo"), "sqlite:///study.db", "demo")
    """

    def __init__(
        self,
        space: SearchSpace,
        storage: str,
        study_name: str,
        seed: int = 0,
        stopping: tuple[str, ...] = FAILURES,
        sampler: str = "tpe",
        images: TrialImages | None = None,
        startup_trials: int = STARTUP_TRIALS,
        max_failure_risk: float = MAX_FAILURE_RISK,
    ) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
        if startup_trials < 1:
            raise ValueError(f"startup_trials must be a positive integer, got {startup_trials}")
        if not 0 < max_failure_risk <= 1:
            raise ValueError(f"max_failure_risk must lie in (0, 1], got {max_failure_risk}")
        self.stopping = tuple(stopping)
        self.images = images
        self.keys = objective_keys(space)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        modes = [objective.mode for objective in space.objectives]
        super().__init__(
            space=DefineByRun(space),
            metric=self.keys if space.others else OBJECTIVE,
            mode=modes if space.others else space.mode,
            sampler=SAMPLERS[sampler](seed, startup_trials, max_failure_risk),
            study_name=study_name,
            storage=open_storage(storage),
        )

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        ot_trial = searcher_trials(self)[trial_id]
        ot_trial.set_user_attr("ray_trial_id", trial_id)
        ot_trial.set_user_attr("overrides", json.dumps(config["overrides"]))
        return config

    def save(self, checkpoint_path: str) -> None:
        """Ray's snapshot of the searcher, without the trials the study's storage caches
        (they are in the storage: see :func:`~sweep.internals.trial_cache_set_aside`)."""
        with trial_cache_set_aside(searcher_study(self)):
            super().save(checkpoint_path)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if not self._known(trial_id):
            return
        if math.isfinite(result.get(OBJECTIVE, math.nan)) and not result.get(REPLAYED):
            super().on_trial_result(trial_id, result)

    def _known(self, trial_id: str) -> bool:
        """Whether ``trial_id`` maps to an Optuna trial. After a driver kill, the searcher
        state Ray restores can predate a trial Ray did record: find it in the study by the
        Ray id it was labelled with."""
        trials = searcher_trials(self)
        if trial_id in trials:
            return True
        study = searcher_study(self)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.user_attrs.get("ray_trial_id") == trial_id:
                trials[trial_id] = live_trial(study, frozen)
                return True
        return False

    def _attach_images(self, trial: optuna.Trial, trial_id: str) -> None:
        """Images are a view of the trial, not its result: a failure to read or store them is
        logged and the trial is told as usual."""
        if self.images is None:
            return
        try:
            self.images.attach(trial, trial_id)
        except (OSError, ValueError) as exc:
            logger.warning("trial %s: generated images not attached (%s)", trial_id, exc)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        completed = searcher_completed(self)
        if trial_id in completed or not self._known(trial_id):
            return
        ot_trial = searcher_trials(self)[trial_id]
        study = searcher_study(self)
        if stored_state(study, ot_trial).is_finished():
            completed.add(trial_id)  # told before a driver restart
            return
        result = result or {}
        for key in VERDICT_ATTRS:  # a commit each: skip the 0 / "" a healthy trial reports
            if key in result and (key in ALWAYS_KEPT or result[key]):
                ot_trial.set_user_attr(key, result[key])
        signals = {
            k.split("/", 1)[1]: v for k, v in result.items() if k.startswith("verdict_signals/")
        }  # Ray hands searchers flat results
        if signals:
            ot_trial.set_user_attr("verdict_signals", signals)
        reached = json.loads(result.get("verdicts") or "[]")
        if reached:
            ot_trial.set_user_attr("verdicts", reached)
        values = [result.get(key) for key in self.keys]
        verdict = result.get("verdict", "healthy")
        failed = (
            verdict in self.stopping or verdict == NAN or any(v["name"] == NAN for v in reached)
        )
        if error:
            state = TrialState.FAIL
            ot_trial.set_user_attr("error", True)
        elif verdict == INVALID:
            state = TrialState.FAIL
            ot_trial.set_user_attr("invalid", result.get("invalid", ""))
        else:
            # TPE ranks an infeasible trial below every feasible one (failed GANs teach it
            # where they fail, not only where they score low); FAIL trials it ignores
            ot_trial.set_constraint(COLLAPSE_CONSTRAINT, 1.0 if failed else 0.0)
            finite = all(v is not None and math.isfinite(v) for v in values)
            state = TrialState.COMPLETE if finite and not failed else TrialState.PRUNED
        self._attach_images(ot_trial, trial_id)
        try:
            told = (
                (values if len(values) > 1 else values[0]) if state == TrialState.COMPLETE else None
            )
            study.tell(ot_trial, told, state=state)
        except (ValueError, RuntimeError) as exc:  # already told before a driver restart
            logger.warning("trial %s: %s", trial_id, exc)
        completed.add(trial_id)


def trial_config(trial: optuna.trial.FrozenTrial) -> dict:
    """The config Ray Tune gave the trial that asked for ``trial``: what
    :class:`DefineByRun` returned over the trial's parameters, as ``OptunaSearch`` builds it."""
    return {**trial.params, "overrides": json.loads(trial.user_attrs.get("overrides", "{}"))}


def running_trial_configs(storage: str, study_name: str) -> dict[str, dict]:
    """Ray trial id -> config of every trial the study holds as running and labelled with its
    Ray trial (a driver killed between Optuna's ask and the label leaves one unlabelled)."""
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        return {}
    return {
        t.user_attrs["ray_trial_id"]: trial_config(t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if "ray_trial_id" in t.user_attrs and "overrides" in t.user_attrs
    }


def reconcile_study(storage: str, study_name: str, known_trial_ids: set[str]) -> int:
    """Fail Optuna trials left RUNNING that Ray Tune does not know (they will not resume);
    returns how many. Trials Ray knows are resumed and told normally; ``resume`` records again
    every running trial labelled with its Ray trial (:mod:`sweep.recovery`), so after a
    resume only a trial the dead driver asked for and never labelled (it never ran) is left.

    Optuna's heartbeat does this job only for ``study.optimize()`` on RDB storages, and it
    would fail every stale RUNNING trial, the ones ``resume`` continues among them; Ray's
    searcher asks and tells, so the reconciliation is done here, against Ray's own record."""
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        return 0
    orphans = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("ray_trial_id") not in known_trial_ids
    ]
    for frozen in orphans:
        live_trial(study, frozen).set_user_attr("orphaned", True)
        study.tell(frozen.number, state=TrialState.FAIL)
    return len(orphans)
