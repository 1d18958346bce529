"""A Pareto sweep of UAR against model size: two objectives told to a real multi-objective
Optuna study through Ray Tune (NSGA-II), ``best --pareto`` and ``--pick`` on its front,
``final`` of a picked trade-off, the front drawn by ``report``; ASHA ranks by the first
objective and re-evaluation refuses in one line."""

import subprocess

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import launch as launch_module
from sermodels.errors import ConfigError
from sweep.results import pareto_front, pick_trade_off
from tests.helpers import launch
from tests.sweep.helpers import SER_BASE, sweep_command

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

PARETO_SPACE = (
    SER_BASE.replace("n_node: 16", "n_node: 8")
    + """
objectives: [{metric: val_uar, mode: max}, {metric: params, mode: min}]
max_epochs: 2
params:
  ser.n_node: {type: categorical, choices: [4, 16, 64]}
  ser.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""
)


def in_process(capsys, *args) -> tuple[int, str, str]:
    """``launch.py ARGS`` in this process (the commands that start no Ray): exit code,
    stdout, stderr."""
    code = launch_module.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def pareto_sweep(demo_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pareto")
    corpus = demo_corpus(12, 8, seed=2)
    (folder / "space.yaml").write_text(PARETO_SPACE)
    out = folder / "sweep"
    done = subprocess.run(
        sweep_command(
            corpus,
            out,
            "pareto",
            "--space",
            folder / "space.yaml",
            "--samples",
            6,
            "--sampler",
            "nsga2",
            "--num-cpus",
            2,
            "--reeval-top",
            3,
        ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    study = optuna.load_study(study_name="pareto", storage=f"sqlite:///{out / 'study.db'}")
    return out, study, done.stdout


def test_every_trial_is_told_both_objectives_and_the_front_is_optunas(pareto_sweep):
    out, study, stdout = pareto_sweep
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 3
    sizes = {t.params["ser.n_node"]: t.values[1] for t in complete}
    assert sorted(sizes, key=sizes.get) == sorted(sizes)  # more nodes, more weights
    front = pareto_front(study)
    assert {t.number for t in front} == {t.number for t in study.best_trials}
    assert "reeval: a sweep with several objectives is not re-evaluated" in stdout


def test_best_writes_the_front_or_a_picked_trade_off(pareto_sweep, capsys):
    out, study, _ = pareto_sweep
    code, _, err = in_process(capsys, "best", out, "--pareto")
    assert code == 0, err
    written = sorted((out / "best").glob("rank*.yaml"))
    assert len(written) == len(study.best_trials)
    assert "params" in written[0].read_text().splitlines()[0]
    smallest = min(study.best_trials, key=lambda t: t.values[1])
    assert in_process(capsys, "best", out, "--pick", "min params")[0] == 0
    (path,) = (out / "best").glob("rank*.yaml")
    assert path.name == f"rank1_trial{smallest.number}.yaml"
    config = yaml.safe_load(path.read_text())
    assert config["ser"]["n_node"] == smallest.params["ser.n_node"]


def test_final_retrains_a_picked_trade_off_and_report_draws_the_front(pareto_sweep, capsys):
    out, study, _ = pareto_sweep
    best_uar = max(t.values[0] for t in study.best_trials)
    done = launch("final", out, "--pick", f"val_uar>={best_uar},min params", "--seeds", 1)
    assert done.returncode == 0, done.stderr[-2000:]
    picked = pick_trade_off(study, ["val_uar", "params"], f"val_uar>={best_uar},min params")
    assert picked.values[0] == best_uar
    assert f"trial {picked.number}" in done.stdout
    assert in_process(capsys, "report", out)[0] == 0
    text = (out / "report" / "report.md").read_text()
    assert "## Pareto front" in text and (out / "report" / "pareto.png").stat().st_size > 1000


def test_a_trade_off_that_selects_nothing_or_an_unknown_objective_is_one_line(pareto_sweep, capsys):
    out, study, _ = pareto_sweep
    for pick, message in (
        ("val_uar>=1.5,min params", "no member of the Pareto front"),
        ("min size", "not one of the sweep's objectives"),
        ("val_uar>=0.1", "expected a min METRIC or max METRIC"),
    ):
        with pytest.raises(ConfigError, match=message):
            pick_trade_off(study, ["val_uar", "params"], pick)
        code, _, err = in_process(capsys, "final", out, "--pick", pick)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err
    code, _, err = in_process(capsys, "reeval", out)
    assert code == 2 and "several objectives" in err
    assert not (out / "reeval").exists()


def test_a_trials_latency_on_its_own_device_is_an_objective(demo_corpus, tmp_path, capsys):
    """``latency_ms``: each trial measures its classifier's batch-1 latency once, where it
    runs, and the multi-objective study holds it beside val UAR; ``--pick`` can choose by it."""
    corpus = demo_corpus(12, 8, seed=2)
    space = PARETO_SPACE.replace("{metric: params, mode: min}", "{metric: latency_ms, mode: min}")
    (tmp_path / "space.yaml").write_text(space.replace("max_epochs: 2", "max_epochs: 1"))
    out = tmp_path / "sweep"
    command = sweep_command(
        corpus, out, "latency", "--space", tmp_path / "space.yaml", "--samples", 2, "--num-cpus", 2
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    study = optuna.load_study(study_name="latency", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 2
    assert all(len(t.values) == 2 and 0 < t.values[1] < 1000 for t in finished)
    fastest = min(finished, key=lambda t: t.values[1])
    code, _, stderr = in_process(capsys, "best", out, "--pick", "min latency_ms")
    assert code == 0, stderr
    (path,) = (out / "best").glob("rank*.yaml")
    assert path.name == f"rank1_trial{fastest.number}.yaml"
    header = path.read_text().splitlines()[0]  # a cost is shown as measured, not reduced
    assert f"latency_ms {fastest.values[1]:.4f} (epoch" in header, header
