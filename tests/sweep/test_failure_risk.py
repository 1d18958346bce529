"""The failure-risk sampler on real Optuna studies: where its risk estimate rises, and that
the shipped TPE, wrapped, draws less often where trials failed while its best lie beside."""

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from sweep.failure_risk import FailureRisk, FailureRiskSampler
from sweep.search import COLLAPSE_CONSTRAINT, SAMPLERS

RATE = {"lr": FloatDistribution(1e-4, 1.0, log=True)}
BORDER = 0.1  # in the toy game below, a learning rate at or above it fails


def finished(lr: float, fails: bool, value: float = 0.5, distributions=RATE, **params):
    trial = create_trial(
        params={"lr": lr, **params},
        distributions=distributions,
        value=None if fails else value,
        state=TrialState.PRUNED if fails else TrialState.COMPLETE,
        system_attrs={},
    )
    trial.set_constraint(COLLAPSE_CONSTRAINT, 1.0 if fails else 0.0)
    return trial


def test_risk_is_high_beside_failures_and_the_overall_share_far_from_every_trial():
    trials = [finished(0.3, True), finished(0.25, True), finished(0.35, False)]
    trials += [finished(lr, False) for lr in (1e-4, 2e-4, 3e-4)]
    risk = FailureRisk(trials, RATE, bandwidth=0.1)
    beside, far = risk({"lr": 0.28}), risk({"lr": 5e-3})
    overall = (2 + 0.5) / (6 + 1)
    assert beside > 0.5 > overall
    assert far == pytest.approx(overall, abs=0.01)
    # a narrower kernel reaches fewer neighbours: still far is the overall share
    assert FailureRisk(trials, RATE, bandwidth=0.01)({"lr": 5e-3}) == pytest.approx(overall)


def test_a_differing_choice_makes_a_trial_a_weaker_neighbour():
    distributions = {**RATE, "kind": CategoricalDistribution(["a", "b"])}
    trials = [finished(0.3, True, distributions=distributions, kind="a")]
    trials += [finished(1e-4, False, distributions=distributions, kind="a") for _ in range(3)]
    risk = FailureRisk(trials, distributions, bandwidth=0.1)
    same, other = risk({"lr": 0.3, "kind": "a"}), risk({"lr": 0.3, "kind": "b"})
    assert same > other


def test_a_parameter_a_trial_lacks_does_not_set_it_apart():
    """A conditional parameter (a stabiliser's strength) counts only where both have it."""
    smoothing = {**RATE, "smoothing": FloatDistribution(0.05, 0.3)}
    trials = [finished(0.3, True), finished(1e-4, False), finished(2e-4, False)]
    risk = FailureRisk(trials, smoothing, bandwidth=0.1)
    assert risk({"lr": 0.3, "smoothing": 0.05}) == pytest.approx(risk({"lr": 0.3}))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_risk": 0.0}, "max_risk must lie in"),
        ({"max_risk": 1.5}, "max_risk must lie in"),
        ({"max_risk": 0.1, "candidates": 0}, "candidates must be a positive integer"),
        ({"max_risk": 0.1, "bandwidth": 0.0}, "bandwidth must be > 0"),
    ],
)
def test_arguments_are_checked(arguments, message):
    with pytest.raises(ValueError, match=message):
        FailureRiskSampler(optuna.samplers.RandomSampler(), **arguments)


def draws_at_the_border(sampler: optuna.samplers.BaseSampler, trials: int = 60) -> int:
    """A toy game: the score rises with the learning rate up to ``BORDER``, where every trial
    fails; how many of the last half of ``trials`` drew at or above it."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    drawn = []
    for _ in range(trials):
        trial = study.ask(RATE)
        lr = trial.params["lr"]
        fails = lr >= BORDER
        trial.set_constraint(COLLAPSE_CONSTRAINT, 1.0 if fails else 0.0)
        if fails:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, lr)
        drawn.append(fails)
    return sum(drawn[trials // 2 :])


def test_the_wrapped_tpe_draws_less_where_trials_failed():
    plain = sum(draws_at_the_border(SAMPLERS["tpe"](seed, 4, 1.0)) for seed in range(3))
    wrapped = sum(
        draws_at_the_border(FailureRiskSampler(SAMPLERS["tpe"](seed, 4, 1.0), max_risk=0.1))
        for seed in range(3)
    )
    assert wrapped < plain / 2, (wrapped, plain)


def test_with_no_failure_or_max_risk_one_the_proposals_are_the_inner_samplers():
    def drawn(sampler) -> list[float]:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=12)
        return [t.params["lr"] for t in study.trials]

    plain = drawn(SAMPLERS["tpe"](0, 4, 1.0))
    assert drawn(FailureRiskSampler(SAMPLERS["tpe"](0, 4, 1.0), max_risk=0.1)) == plain
    assert drawn(FailureRiskSampler(SAMPLERS["tpe"](0, 4, 1.0), max_risk=1.0)) == plain


def test_its_random_draws_do_not_repeat_an_inner_samplers_seeded_alike():
    """TPE's start-up draws come from a random sampler with TPE's seed: the fallback's own
    stream, seeded with the same number, must not propose those configurations again."""
    study = optuna.create_study()
    study.ask()
    frozen = study.trials[-1]
    wrapped = FailureRiskSampler(optuna.samplers.TPESampler(seed=0), max_risk=0.1, seed=0)
    alike = optuna.samplers.RandomSampler(seed=0)
    draw = FloatDistribution(0.0, 1.0)
    assert wrapped.random.sample_independent(study, frozen, "x", draw) != (
        alike.sample_independent(study, frozen, "x", draw)
    )
