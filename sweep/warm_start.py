"""Warm starts: the finished trials of earlier sweeps enter a new study before its first draw.

Every new corpus or model variant would otherwise start its sweep from nothing, although an
earlier study knows where the configurations scored and where the GANs collapsed. With
``launch.py sweep --warm-start DIR[,DIR...]`` each earlier sweep's finished trials (COMPLETE,
or PRUNED by a failure verdict) are added to the new study with Optuna's ``add_trials`` before
Ray Tune asks for the first trial, so TPE models them from its first draw: a COMPLETE trial
with its objective, a collapsed one infeasible (constraint ``collapse`` = 1), as the sweep
itself tells them (:mod:`sweep.search`).

A trial is inherited only where it fits the new space exactly: its parameters are replayed
through the new space (Optuna's ``FixedTrial``), and a trial is skipped, and counted by
reason, when the new space asks for a parameter it lacks, when it has a parameter the new
space does not ask for, or when one of its values lies outside the new space's range or
choices; a value is never clipped. Its objective is reduced again from its recorded epochs
with the new sweep's reduction (an older sweep may have optimised its best epoch). Sweeps
whose objectives differ from the new space's are refused with one line.

Inherited trials carry the user attribute ``inherited`` (the sweep folder and Optuna trial
they come from) and their verdicts. They teach the sampler and nothing else: they were
trained on another sweep's data, so ``best``, ``final`` and re-evaluation never pick them,
``--samples`` counts only the sweep's own trials and ``report`` says how many were inherited.

Example:
    >>> plan = plan_warm_start(load_space("demo"), ["runs/sweeps/earlier"])  # doctest: +SKIP
    >>> plan.add_to("sqlite:///runs/sweeps/new/study.db", "new", space)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FixedTrial, FrozenTrial, TrialState, create_trial

from search_spaces import SearchSpace
from search_spaces.objective import COST_METRICS, epoch_value
from sermodels.errors import ConfigError
from sweep.results import INHERITED_ATTR, is_inherited, load_study, trial_curves
from sweep.search import COLLAPSE_CONSTRAINT, TRIAL_SEED, VERDICT_ATTRS
from sweep.settings import load_settings, sweep_space
from sweep.study_storage import open_storage

FLAG = "--warm-start"


@dataclass
class WarmStartPlan:
    """The trials a warm start adds, and how many it skipped for each reason."""

    trials: list[FrozenTrial] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def add_to(self, storage: str, study_name: str, space: SearchSpace) -> None:
        """Create the new sweep's study and add the inherited trials, before its first draw
        (Ray Tune's searcher then loads the study as it is)."""
        study = optuna.create_study(
            study_name=study_name,
            storage=open_storage(storage),
            directions=[f"{objective.mode}imize" for objective in space.objectives],
            load_if_exists=True,
        )
        study.add_trials(self.trials)

    def summary(self) -> str:
        """One line for the sweep's output."""
        line = f"warm start: {len(self.trials)} trials inherited"
        if self.skipped:
            reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
            line += f"; skipped: {reasons}"
        return line


def plan_warm_start(space: SearchSpace, folders: list[str]) -> WarmStartPlan:
    """The finished trials of the sweeps in ``folders`` that fit ``space``.

    Args:
        space: the new sweep's search space (with its reduction).
        folders: earlier sweep folders (finished or not; their finished trials are read).

    Raises:
        ConfigError: a folder that is no sweep, or whose objectives are not the new space's.
    """
    plan = WarmStartPlan()
    for folder in folders:
        try:
            settings = load_settings(folder)
        except ConfigError as exc:
            raise ConfigError(f"{FLAG} {exc.where}", exc.problem) from None
        earlier = sweep_space(settings)
        wanted = [(o.metric, o.mode) for o in space.objectives]
        found = [(o.metric, o.mode) for o in earlier.objectives]
        if wanted != found:
            raise ConfigError(
                f"{FLAG} {folder}", f"its objectives {found} are not this space's {wanted}"
            )
        study = load_study(settings)
        curves = trial_curves(settings)
        for trial in study.get_trials(deepcopy=False):
            inherited, reason = _inherit(space, trial, curves, str(folder))
            if inherited is None:
                plan.skipped[reason] += 1
            else:
                plan.trials.append(inherited)
    return plan


def _inherit(
    space: SearchSpace, trial: FrozenTrial, curves: dict, folder: str
) -> tuple[FrozenTrial | None, str]:
    """The trial as the new study holds it, or ``None`` and why not."""
    if is_inherited(trial):
        return None, "inherited there from another sweep"
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return None, "not finished (running, failed or raised)"
    replay = FixedTrial(trial.params)
    try:
        overrides = space.suggest(replay)
    except ValueError:  # FixedTrial: the new space asks for a parameter the trial lacks
        return None, "lacking a parameter of this space"
    if set(trial.params) - set(replay.params):
        return None, "with a parameter this space lacks"
    if not all(
        _contains(replay.distributions[name], value) for name, value in trial.params.items()
    ):
        return None, "with a value outside this space's range"
    earlier = json.loads(trial.user_attrs.get("overrides", "{}"))
    if TRIAL_SEED in earlier:  # what the earlier sweep trained, its seed included
        overrides[TRIAL_SEED] = earlier[TRIAL_SEED]
    failed = trial.state == TrialState.PRUNED
    values = None
    if not failed:
        values = _values(space, trial, curves)
        if values is None:
            return None, "without a finite objective under this sweep's reduction"
    attrs = {
        key: trial.user_attrs[key]
        for key in (*VERDICT_ATTRS, "verdicts")
        if key in trial.user_attrs
    }
    attrs["overrides"] = json.dumps(overrides)
    attrs[INHERITED_ATTR] = {"sweep": folder, "optuna_trial": trial.number}
    return create_trial(
        state=trial.state,
        values=values,
        params=trial.params,
        distributions=dict(replay.distributions),
        user_attrs=attrs,
        constraints={COLLAPSE_CONSTRAINT: 1.0 if failed else 0.0},
    ), ""


def _values(space: SearchSpace, trial: FrozenTrial, curves: dict) -> list[float] | None:
    """The trial's objectives under the new sweep's reduction: each per-epoch metric reduced
    again from its recorded epochs (a cost is the same every epoch, so it is kept)."""
    rows = curves.get(trial.user_attrs.get("ray_trial_id"), [])
    values = []
    for index, objective in enumerate(space.objectives):
        if objective.metric in COST_METRICS:
            values.append(trial.values[index])
            continue
        curve = [epoch_value(row, objective.metric) for row in rows]
        values.append(objective.reduce.reduce(curve, objective.mode)[0])
    return values if all(math.isfinite(v) for v in values) else None


def _contains(distribution: BaseDistribution, value: object) -> bool:
    """Whether ``value`` is one the new space can draw (never clipped into range)."""
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not distribution.low <= value <= distribution.high:
            return False
        step = distribution.step
        return step is None or math.isclose(
            round((value - distribution.low) / step) * step, value - distribution.low
        )
    return False
