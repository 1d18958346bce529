"""Optuna's Sampler seam: redraw a proposal that lies where earlier trials failed.

TPE learns from an infeasible trial only through its "above" density: Optuna ranks
infeasible trials below every feasible one, among dozens of others, where a few failures
weigh little. Where a space's best configurations border its collapsing ones (a generator
learning rate just below where the game breaks), TPE keeps proposing beside its best
trials, and much of what it draws there fails. Asking TPE again helps little where its
proposals cluster at its model's peak, so after its own proposals come random ones.

This wrapper keeps the inner sampler's proposal unless the finished trials around it failed
often. It estimates a proposal's failure risk from its neighbours (a kernel-weighted share
of failed trials, shrunk towards the study's overall share: :class:`FailureRisk`). While
that risk exceeds ``max_risk`` it asks the inner sampler again, then draws at random over
the same parameters (Optuna's ``RandomSampler``), up to ``candidates`` of each, and takes
the first proposal below ``max_risk`` (else the least risky). A trial failed when a
constraint of it is positive (sersweep's ``collapse`` constraint: a verdict the sweep stops
on). Why the shipped ``max_risk`` and what it costs: BENCHMARKS.md (the start-up draws and
failure risk, on a surrogate of the demo space).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RANDOM_DRAWS = 1  # the random draws' stream, apart from stream 0 (what the seed alone gives)


def failed(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is infeasible: a constraint of it is positive."""
    return any(value > 0 for value in trial.constraints.values())


class FailureRisk:
    """The chance that a trial fails, estimated from finished ``trials`` around it.

    Each trial counts with weight ``exp(-d²/2)``, ``d²`` summed over the parameters it shares
    with the proposal: a numeric one's squared difference on its distribution's unit scale
    (logarithmic for a log distribution) in units of ``bandwidth``, and 1 for each
    categorical choice that differs. The weighted share of failed trials is shrunk towards
    the share over all ``trials`` with the weight of one trial, so a proposal far from every
    trial gets that overall share.

    Args:
        trials: finished trials (their constraints say whether they failed).
        distributions: each parameter's distribution (the scale its values are compared on).
        bandwidth: the kernel's width on the unit scale.

    Example:
        >>> rate = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}
        >>> risk = FailureRisk(study.get_trials(states=FINISHED), rate, bandwidth=0.1)
        >>> risk({"lr": 0.1})
    """

    def __init__(
        self,
        trials: Sequence[FrozenTrial],
        distributions: dict[str, BaseDistribution],
        bandwidth: float,
    ) -> None:
        self.outcomes = np.array([failed(trial) for trial in trials], dtype=float)
        self.overall = (self.outcomes.sum() + 0.5) / (len(trials) + 1)
        self.distributions = distributions
        self.bandwidth = bandwidth
        # per parameter: where each trial has it, and its value there (unit scale if numeric)
        self.columns = {}
        for name, distribution in distributions.items():
            has = np.array([name in trial.params for trial in trials], dtype=bool)
            values = [trial.params.get(name) for trial in trials]
            if isinstance(distribution, CategoricalDistribution):
                column = np.empty(len(values), dtype=object)
                column[:] = values
            else:
                column = np.array(
                    [_unit(distribution, v) if v is not None else 0.0 for v in values]
                )
            self.columns[name] = (has, column)

    def __call__(self, params: dict) -> float:
        squared = np.zeros(len(self.outcomes))
        for name, value in params.items():
            has, column = self.columns[name]
            if isinstance(self.distributions[name], CategoricalDistribution):
                squared += has & (column != value)
            else:
                gap = (_unit(self.distributions[name], value) - column) / self.bandwidth
                squared += np.where(has, gap**2, 0.0)
        weights = np.exp(-squared / 2)
        return float((weights @ self.outcomes + self.overall) / (weights.sum() + 1))


def _unit(distribution: BaseDistribution, value: float) -> float:
    low, high = distribution.low, distribution.high
    if high <= low:
        return 0.0
    if distribution.log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


class FailureRiskSampler(BaseSampler):
    """A sampler that redraws its inner sampler's proposals where trials failed before.

    Only the inner sampler's relative (joint) proposals are judged; parameters it samples
    independently, and every proposal before the study's first failure, pass unchanged.

    Args:
        inner: the sampler whose proposals are judged (sersweep's TPE).
        max_risk: the highest estimated failure risk a proposal is taken with at once, in
            (0, 1]; 1 takes every proposal (the wrapper then changes nothing).
        candidates: proposals asked of the inner sampler at most per trial, and as many
            random draws after them; the least risky is taken when none is below
            ``max_risk``.
        bandwidth: the risk estimate's kernel width on each parameter's unit scale.
        seed: seed of the random draws (their stream is kept apart from that of an inner
            sampler given the same seed, whose own random draws it would repeat).

    Example:
        >>> tpe = optuna.samplers.TPESampler(seed=0, multivariate=True)
        >>> study = optuna.create_study(sampler=FailureRiskSampler(tpe, max_risk=0.1))
    """

    def __init__(
        self,
        inner: BaseSampler,
        max_risk: float,
        candidates: int = 8,
        bandwidth: float = 0.1,
        seed: int | None = None,
    ) -> None:
        if not 0 < max_risk <= 1:
            raise ValueError(f"max_risk must lie in (0, 1], got {max_risk}")
        if candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {candidates}")
        if bandwidth <= 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
        self.inner = inner
        self.max_risk = max_risk
        self.candidates = candidates
        self.bandwidth = bandwidth
        if seed is not None:
            seed = int(np.random.SeedSequence([seed, RANDOM_DRAWS]).generate_state(1)[0])
        self.random = RandomSampler(seed=seed)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict:
        proposal = self.inner.sample_relative(study, trial, search_space)
        if not proposal or self.max_risk >= 1:
            return proposal
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        if not any(failed(t) for t in finished):
            return proposal
        risk = FailureRisk(finished, search_space, self.bandwidth)
        least_risky, lowest = proposal, math.inf
        for attempt in range(2 * self.candidates):
            if self.candidates <= attempt:
                proposal = {
                    name: self.random.sample_independent(study, trial, name, distribution)
                    for name, distribution in search_space.items()
                    if name in proposal
                }
            elif attempt:
                proposal = self.inner.sample_relative(study, trial, search_space)
            chance = risk(proposal)
            if chance <= self.max_risk:
                return proposal
            if chance < lowest:
                least_risky, lowest = proposal, chance
        return least_risky

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> object:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self.random.reseed_rng()
