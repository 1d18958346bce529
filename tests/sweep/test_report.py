"""The report's plots come from ``optuna.visualization.matplotlib``: on a study of known
trials, what they draw is what the report drew by hand before (objective values, best so far,
importances, parameter values), and trials that stopped or failed stay out of them."""

import numpy as np
import optuna
import pytest
from matplotlib.collections import PathCollection
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState, create_trial

from sweep.dashboard import census_note
from sweep.report import history_plot, importance_plot, slice_plot

DISTRIBUTIONS = {"lr": FloatDistribution(1e-5, 1e-2, log=True), "units": IntDistribution(4, 64)}


@pytest.fixture
def study():
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    for number in range(24):
        params = {"lr": float(10 ** rng.uniform(-5, -2)), "units": int(rng.integers(4, 65))}
        if number % 6 == 5:  # a collapsed trial: no value, labelled by its verdict
            attrs = {"verdict": "mode_collapse", "verdicts": [{"name": "mode_collapse"}]}
            study.add_trial(
                create_trial(
                    state=TrialState.FAIL,
                    params=params,
                    distributions=DISTRIBUTIONS,
                    user_attrs=attrs,
                )
            )
            continue
        value = 0.5 + 0.1 * np.log10(params["lr"] * 1e5) + 0.001 * params["units"]
        study.add_trial(
            create_trial(
                value=float(value),
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs={"verdict": "healthy", "verdicts": []},
            )
        )
    return study


def complete(study):
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def test_history_draws_every_complete_value_and_the_best_so_far(study):
    ax = history_plot(study, "val_uar")
    values = [t.value for t in complete(study)]
    scatter = next(c for c in ax.collections if isinstance(c, PathCollection))
    np.testing.assert_allclose(scatter.get_offsets()[:, 1], values)
    np.testing.assert_allclose(scatter.get_offsets()[:, 0], [t.number for t in complete(study)])
    best = next(line for line in ax.get_lines() if line.get_label() == "Best Value")
    best_at = dict(zip(best.get_xdata(), best.get_ydata(), strict=True))  # every trial number
    drawn = [best_at[t.number] for t in complete(study)]
    np.testing.assert_allclose(drawn, np.maximum.accumulate(values))


def test_importances_are_optunas_fanova_figures(study):
    ax = importance_plot(study)
    drawn = {
        label.get_text(): bar.get_width()
        for label, bar in zip(ax.get_yticklabels(), ax.patches, strict=True)
    }
    expected = optuna.importance.get_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=0)
    )
    assert set(drawn) == set(expected) == {"lr", "units"}
    for name, importance in expected.items():
        assert drawn[name] == pytest.approx(importance, abs=0.006)  # labels round to 2 places
    assert expected["lr"] > expected["units"]  # the objective is made mostly of lr


def test_slice_draws_each_parameter_against_the_objective(study):
    axes = {ax.get_xlabel(): ax for ax in np.ravel(slice_plot(study, "val_uar"))}
    assert set(axes) == {"lr", "units"}
    for name, ax in axes.items():
        points = next(c for c in ax.collections if isinstance(c, PathCollection)).get_offsets()
        drawn = sorted(zip(points[:, 0], points[:, 1], strict=True))
        expected = sorted((t.params[name], t.value) for t in complete(study))
        np.testing.assert_allclose(drawn, expected)


def test_no_complete_trial_means_no_plot_and_the_census_still_counts():
    study = optuna.create_study()
    attrs = {"verdict": "nan", "verdicts": [{"name": "nan"}, {"name": "dead"}]}
    study.add_trial(
        create_trial(
            state=TrialState.FAIL,
            params={"lr": 1e-3},
            distributions={"lr": DISTRIBUTIONS["lr"]},
            user_attrs=attrs,
        )
    )
    assert history_plot(study, "val_uar") is None and slice_plot(study, "val_uar") is None
    assert importance_plot(study) is None
    note = census_note(study.trials)
    assert "| nan | 1 |" in note and "dead 1" in note and "1 finished trials." in note
