"""Warm starts on real sweeps: an earlier sweep's finished trials enter the new study before
its first draw, with their verdicts and their objectives reduced again under the new sweep's
reduction; trials that do not fit the new space are skipped with a count, never clipped;
inherited trials are never picked and the report marks them; a folder that is no sweep, or
one with other objectives, is one line and nothing written."""

import json
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces import load_space
from search_spaces.objective import Reduction
from sweep.results import INHERITED_ATTR, is_inherited, summarize, top_trials, trial_curves
from sweep.settings import load_settings
from sweep.warm_start import plan_warm_start
from tests.helpers import launch
from tests.sweep.helpers import SER_BASE, sweep_command

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

PARAMS = """
params:
  ser.n_node: {type: categorical, choices: [4, 8, 16]}
  ser.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""
SPACE = SER_BASE + "max_epochs: 3\nobjective: {metric: val_uar, mode: max, reduce: best}\n" + PARAMS


@pytest.fixture(scope="module")
def earlier(demo_corpus, tmp_path_factory):
    """A finished 5-trial sweep that optimised each trial's best epoch."""
    folder = tmp_path_factory.mktemp("warm")
    corpus = demo_corpus(12, 8, seed=3)
    (folder / "space.yaml").write_text(SPACE)
    out = folder / "earlier"
    done = subprocess.run(
        sweep_command(
            corpus,
            out,
            "earlier",
            "--space",
            folder / "space.yaml",
            "--samples",
            5,
            "--num-cpus",
            2,
        ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return folder, corpus, out


def space_file(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_the_earlier_trials_enter_the_new_study_first_and_are_never_picked(earlier):
    folder, corpus, source = earlier
    new_space = space_file(folder, "new", SPACE.replace("reduce: best", "reduce: mean_last:2"))
    out = folder / "warm"
    done = subprocess.run(
        sweep_command(
            corpus,
            out,
            "warm",
            "--space",
            new_space,
            "--samples",
            2,
            "--num-cpus",
            2,
            "--warm-start",
            source,
        ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    old = optuna.load_study(study_name="earlier", storage=f"sqlite:///{source / 'study.db'}")
    finished = [t for t in old.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert f"warm start: {len(finished)} trials inherited" in done.stdout

    study = optuna.load_study(study_name="warm", storage=f"sqlite:///{out / 'study.db'}")
    inherited = [t for t in study.trials if is_inherited(t)]
    own = [t for t in study.trials if not is_inherited(t)]
    assert len(inherited) == len(finished) and len(own) == 2  # --samples counts its own
    assert max(t.number for t in inherited) < min(t.number for t in own)  # before any draw
    curves = trial_curves(load_settings(source))
    by_number = {t.number: t for t in old.trials}
    for trial in inherited:
        was = by_number[trial.user_attrs[INHERITED_ATTR]["optuna_trial"]]
        assert trial.params == was.params and trial.state == was.state
        assert trial.user_attrs.get("verdict") == was.user_attrs.get("verdict")
        # what the earlier sweep trained, its trial's own seed included
        assert json.loads(trial.user_attrs["overrides"]) == json.loads(was.user_attrs["overrides"])
        assert trial.constraints == {"collapse": 1.0 if was.state == TrialState.PRUNED else 0.0}
        if was.state == TrialState.COMPLETE:  # reduced again, as the new sweep reduces
            rows = curves[was.user_attrs["ray_trial_id"]]
            expected = Reduction.parse("mean_last:2").reduce([r["val_uar"] for r in rows])[0]
            assert trial.value == pytest.approx(expected)
            assert was.value == pytest.approx(max(r["val_uar"] for r in rows))

    summary = summarize(load_settings(out))
    assert summary["trials"] == 2 and summary["inherited"] == len(finished)
    assert {t.number for t in top_trials(load_settings(out), 10)} <= {t.number for t in own}
    assert load_settings(out).warm_start == [str(source)]
    report = launch("report", out)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (out / "report" / "report.md").read_text()
    assert "## Inherited trials (warm start)" in text
    assert text.count(f"| {source} |") == len(finished)


def test_trials_that_do_not_fit_the_new_space_are_skipped_with_a_count_never_clipped(earlier):
    folder, _, source = earlier
    old = optuna.load_study(study_name="earlier", storage=f"sqlite:///{source / 'study.db'}")
    finished = [t for t in old.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    # ser.lr narrowed to the upper half of what the earlier sweep drew: the rest is outside
    values = sorted(t.params["ser.lr"] for t in finished)
    cut = values[len(values) // 2]
    narrowed = PARAMS.replace("low: 1.0e-4", f"low: {cut}")
    plan = plan_warm_start(
        load_space(space_file(folder, "narrow", SER_BASE + narrowed)), [str(source)]
    )
    inside = [t for t in finished if t.params["ser.lr"] >= cut]
    assert len(plan.trials) == len(inside) < len(finished)
    assert plan.skipped["with a value outside this space's range"] == len(finished) - len(inside)
    assert all(t.params["ser.lr"] >= cut for t in plan.trials)  # kept as drawn

    extra = PARAMS + "  ser.dropout: {type: float, low: 0.0, high: 0.5}\n"
    plan = plan_warm_start(load_space(space_file(folder, "extra", SER_BASE + extra)), [str(source)])
    assert not plan.trials and plan.skipped["lacking a parameter of this space"] == len(finished)

    fewer = PARAMS.split("  ser.lr")[0]
    plan = plan_warm_start(load_space(space_file(folder, "fewer", SER_BASE + fewer)), [str(source)])
    assert not plan.trials
    assert plan.skipped["with a parameter this space lacks"] == len(finished)
    assert "skipped: " in plan.summary()


@pytest.mark.parametrize(
    "case, expected",
    [("not_a_sweep", "not a sweep folder"), ("other_objective", "its objectives")],
)
def test_a_warm_start_from_the_wrong_folder_is_one_line_and_writes_nothing(earlier, case, expected):
    folder, corpus, source = earlier
    if case == "not_a_sweep":
        space, warm = folder / "space.yaml", folder
    else:
        text = SPACE.replace("metric: val_uar, mode: max", "metric: val_uar, mode: min")
        space, warm = space_file(folder, "minimise", text), source
    out = folder / f"refused_{case}"
    done = launch(
        "sweep",
        "--space",
        space,
        "--data",
        corpus,
        "--out",
        out,
        "--samples",
        1,
        "--warm-start",
        warm,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: --warm-start ") and expected in lines[0]
    assert not out.exists()
