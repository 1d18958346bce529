"""The searcher's choices that need no Ray cluster: sampler, SQLite journal mode, and the
Optuna state each trial's verdicts make."""

import json
import sqlite3

import optuna
import pytest
from optuna.trial import TrialState, create_trial

import sweep.search
import sweep.settings
from search_spaces import load_space
from sweep.failure_risk import FailureRiskSampler
from sweep.internals import searcher_study
from sweep.search import SAMPLERS, SweepOptunaSearch
from sweep.study_storage import open_storage


@pytest.mark.parametrize(
    ("name", "kind"),
    [("tpe", FailureRiskSampler), ("random", optuna.samplers.RandomSampler)],
)
def test_sampler_choice_and_wal_study(tmp_path, name, kind):
    path = tmp_path / "study.db"
    searcher = SweepOptunaSearch(load_space("demo"), f"sqlite:///{path}", "s", sampler=name)
    sampler = searcher_study(searcher).sampler
    assert isinstance(sampler, kind)
    if name == "tpe":  # the shipped TPE, its proposals judged by their failure risk
        assert isinstance(sampler.inner, optuna.samplers.TPESampler)
        assert sampler.max_risk == sweep.settings.MAX_FAILURE_RISK
        plain = SweepOptunaSearch(
            load_space("demo"), f"sqlite:///{path}", "t", sampler=name, max_failure_risk=1.0
        )
        assert isinstance(searcher_study(plain).sampler, optuna.samplers.TPESampler)
    with sqlite3.connect(path) as connection:  # commits without a rollback journal
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # every connection of the study syncs the log at checkpoints, not at each commit
    storage = open_storage(f"sqlite:///{path}")
    for _ in range(2):
        with storage.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        storage.engine.dispose()


@pytest.mark.parametrize("startup_trials", [2, 3])
def test_tpe_models_the_trials_once_its_start_up_draws_are_done(tmp_path, startup_trials):
    space = load_space("demo")
    searcher = SweepOptunaSearch(
        space, f"sqlite:///{tmp_path / 's.db'}", "s", startup_trials=startup_trials
    )
    study = searcher_study(searcher)
    for value in (0.3, 0.5):
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, value)
    trial = study.ask()
    relative = study.sampler.infer_relative_search_space(study, trial)
    drawn = study.sampler.sample_relative(study, trial, relative)
    # two finished trials: TPE models them when its start-up is 2, draws at random when 3
    assert bool(drawn) == (startup_trials == 2)


def test_no_start_up_draws_is_refused(tmp_path):
    with pytest.raises(ValueError, match="startup_trials must be a positive integer"):
        SweepOptunaSearch(
            load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s", startup_trials=0
        )


def test_a_failure_risk_outside_zero_to_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"max_failure_risk must lie in \(0, 1\]"):
        SweepOptunaSearch(
            load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s", max_failure_risk=0
        )


def test_an_unknown_sampler_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sampler must be one of"):
        SweepOptunaSearch(load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s", sampler="grid")


def test_each_trial_trains_with_its_own_seed_unless_the_space_fixes_one(tmp_path):
    searcher = SweepOptunaSearch(load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s")
    seeds = [searcher.suggest(f"t{i}")["overrides"]["train.seed"] for i in range(3)]
    assert seeds == [0, 1, 2]
    fixed = load_space("demo").with_settings({"train.seed": 7})  # as `--set train.seed=7`
    searcher = SweepOptunaSearch(fixed, f"sqlite:///{tmp_path / 'f.db'}", "f")
    overrides = searcher.suggest("t0")["overrides"]
    assert "train.seed" not in overrides
    assert fixed.run_config(overrides)["train"]["seed"] == 7


def told_state(tmp_path, result: dict, stopping=("nan", "mode_collapse")):
    """The Optuna trial a searcher makes of ``result``, a trial's last result."""
    tmp_path.mkdir(exist_ok=True)
    searcher = SweepOptunaSearch(
        load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s", stopping=stopping
    )
    searcher.suggest("t1")
    verdicts = json.dumps(
        [{"name": n, "onset": e, "epoch": e, "signals": {}} for n, e in result.pop("reached", [])]
    )
    searcher.on_trial_complete("t1", {"objective": 0.7, "verdicts": verdicts, **result})
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}").trials
    return trial


def test_a_trial_that_went_nan_after_a_label_is_pruned_and_infeasible(tmp_path):
    trial = told_state(tmp_path, {"verdict": "nan", "reached": [("d_overpowers", 4), ("nan", 7)]})
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.constraints == {"collapse": 1.0}
    assert [v["name"] for v in trial.user_attrs["verdicts"]] == ["d_overpowers", "nan"]


def test_tpe_draws_away_from_infeasible_trials_but_not_from_failed_ones():
    """What telling a collapsed trial PRUNED with a violated constraint buys: the shipped TPE
    learns from it, where a FAIL trial would be ignored."""

    def draws_in_the_collapsing_half(collapsed_state) -> int:
        study = optuna.create_study(direction="maximize", sampler=SAMPLERS["tpe"](0))
        for i in range(24):
            x = (i + 0.5) / 24
            study.enqueue_trial({"x": x})
            trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
            collapses = x > 0.5
            trial.set_constraint("collapse", 1.0 if collapses else 0.0)
            if collapses:
                study.tell(trial, state=collapsed_state)
            else:
                study.tell(trial, 0.5 + 0.01 * (i % 3))
        drawn = []
        for _ in range(30):  # each draw told FAIL, so TPE's model stays the 24 trials above
            trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
            drawn.append(trial.params["x"])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return sum(x > 0.5 for x in drawn)

    infeasible = draws_in_the_collapsing_half(optuna.trial.TrialState.PRUNED)
    ignored = draws_in_the_collapsing_half(optuna.trial.TrialState.FAIL)
    assert infeasible <= 3 and ignored >= 20


def test_a_label_only_verdict_completes_and_a_stopping_one_prunes(tmp_path):
    labelled = told_state(
        tmp_path / "a", {"verdict": "d_overpowers", "reached": [("d_overpowers", 4)]}
    )
    assert labelled.state == optuna.trial.TrialState.COMPLETE and labelled.value == 0.7
    stopped = told_state(
        tmp_path / "b",
        {"verdict": "mode_collapse", "reached": [("d_overpowers", 4), ("mode_collapse", 7)]},
    )
    assert stopped.state == optuna.trial.TrialState.PRUNED
    assert stopped.user_attrs["verdict"] == "mode_collapse"


def next_suggestion(sampler: optuna.samplers.BaseSampler) -> float:
    """``x`` in [0, 1] suggested after 12 finished trials (the best at 0.5, the others near
    the ends) while 8 trials at 0.5 still run."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    ends = [0.02, 0.05, 0.08, 0.1, 0.9, 0.92, 0.95, 0.98, 0.03, 0.97]
    points = [(x, 0.1) for x in ends] + [(0.5, 1.0), (0.52, 0.9)]
    for x, value in points:
        study.add_trial(create_trial(params={"x": x}, distributions=distributions, value=value))
    for _ in range(8):
        study.add_trial(
            create_trial(params={"x": 0.5}, distributions=distributions, state=TrialState.RUNNING)
        )
    return study.ask().suggest_float("x", 0.0, 1.0)


def test_tpe_counts_running_trials_so_concurrent_ones_are_drawn_apart():
    shipped = sweep.search.SAMPLERS["tpe"](0)
    without_liar = optuna.samplers.TPESampler(
        seed=0,
        multivariate=True,
        group=True,
        constant_liar=False,
        n_startup_trials=sweep.settings.STARTUP_TRIALS,
    )
    liar, plain = next_suggestion(shipped), next_suggestion(without_liar)
    # the best region is where the running trials are: without the liar TPE draws there
    # again; with it the running trials count as bad results and the draw moves away
    assert abs(plain - 0.5) < 0.05 and abs(liar - 0.5) > abs(plain - 0.5), (liar, plain)
