"""Kill the driver mid-sweep (SIGKILL, no clean-up), then `launch.py resume`: every trial
completes once, finished trials are not rerun, and the study (SQLite, or a real PostgreSQL
server the test starts) agrees with Ray Tune."""

import json
import os
import signal
import subprocess
from functools import partial
from pathlib import Path

import optuna
import pytest
import ray.cloudpickle
from optuna.trial import TrialState

from sweep.recovery import RECOVERED, complete_epoch
from sweep.study_storage import open_storage
from tests.helpers import ended_early, launch, poll, start_driver
from tests.postgres import PASSWORD, binaries, postgres_server
from tests.sweep.helpers import (
    LOCAL,
    SER_BASE,
    freeze_a_trial_midway,
    kill_held_then_driver,
    leaves_epochs_to_train,
    sweep_command,
    trial_results,
)

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them


def epochs_by_trial(experiment: Path) -> dict[str, list[int]]:
    return {
        name.removeprefix("trial_"): [row["epoch"] for row in rows]
        for name, rows in trial_results(experiment).items()
    }


@pytest.fixture(scope="module")
def postgres_url():
    if binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL missing in CI: .ci/run should have installed it")
        pytest.skip("PostgreSQL binaries missing (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql", "journal"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sweep' / 'study.db'}"
    if request.param == "journal":  # an Optuna journal file, no database
        return f"journal:{tmp_path / 'sweep' / 'study.log'}"
    return request.getfixturevalue("postgres_url")


def finished_trials(storage: str, experiment: Path) -> list:
    if not list(experiment.glob("trial_*/checkpoint_*")):  # the study exists by then
        return []
    try:
        study = optuna.load_study(study_name="kill", storage=open_storage(storage))
    except KeyError:
        return []
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def kill_mid_sweep(corpus: Path, tmp_path: Path, storage: str, max_epochs: int = 4):
    """Start a 5-trial sweep; once a trial has finished, hold still (SIGSTOP) a trial whose
    newest checkpoint leaves epochs to train, then SIGKILL it, the driver and the Ray it
    started.
    Returns the sweep folder, the experiment, the Ray ids finished by then and the held
    trial's folder."""
    out = tmp_path / "sweep"
    experiment = out / "ray" / "kill"
    command = sweep_command(
        corpus,
        out,
        "kill",
        "--samples",
        5,
        "--max-epochs",
        max_epochs,
        "--num-cpus",
        2,
        "--study-url",
        storage,
    )

    def hold_a_trial_once_one_finished() -> str | None:
        if not finished_trials(storage, experiment):
            return None
        return freeze_a_trial_midway(
            partial(trial_results, experiment), leaves_epochs_to_train(experiment, max_epochs)
        )

    log = tmp_path / "driver.log"
    driver = start_driver(command, log)
    held = poll(hold_a_trial_once_one_finished, 300, every=0.2, alongside=driver)
    assert driver.poll() is None, ended_early(driver, log)
    kill_held_then_driver(trial_results(experiment)[held][-1]["pid"] if held else None, driver)
    assert held, "no trial had checkpointed mid-run"
    before = {t.user_attrs["ray_trial_id"] for t in finished_trials(storage, experiment)}
    # exactly what the tests stand on: a finished trial, and the held one unfinished
    assert before and len(before) < 5 and held[6:] not in before
    assert not trial_results(experiment)[held][-1]["done"]
    assert leaves_epochs_to_train(experiment, max_epochs)(held)
    return out, experiment, before, held


# a guard against a hang, not a speed limit: a resume of 5 trials x 8 epochs took over 600 s
# on 2 cores shared with two other heavy jobs
RESUME_TIMEOUT = 1500


def resume(out: Path, storage: str) -> subprocess.CompletedProcess:
    resumed = launch("resume", out, "--study-url", storage, timeout=RESUME_TIMEOUT)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return resumed


def withhold_rows_from(experiment: Path, folder: str) -> int:
    """Put ``folder``'s results where a kill just after a checkpoint leaves them: the rows of
    its newest complete checkpoint's epoch and later never written. Returns that epoch."""
    trial_id = folder.removeprefix("trial_")
    epoch = max(
        complete_epoch(LOCAL, str(path), trial_id) or 0
        for path in (experiment / folder).glob("checkpoint_*")
    )
    rows = [row for row in trial_results(experiment)[folder] if row["epoch"] < epoch]
    (experiment / folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return epoch


def test_resume_after_the_driver_is_killed(demo_corpus, tmp_path, storage):
    out, experiment, before, held = kill_mid_sweep(demo_corpus(), tmp_path, storage)
    epochs_before = epochs_by_trial(experiment)
    pid = trial_results(experiment)[held][-1]["pid"]
    withheld = withhold_rows_from(experiment, held)
    resumed = resume(out, storage)
    assert "written back from their checkpoint" in resumed.stdout
    study = optuna.load_study(study_name="kill", storage=open_storage(storage))  # has the password
    kept = [t for t in study.trials if not t.user_attrs.get("orphaned")]
    states = [(t.state.name, t.user_attrs.get("verdict"), t.user_attrs.get("error")) for t in kept]
    states += [p.read_text()[-2000:] for p in experiment.glob("trial_*/error.txt")]
    # finished, none in error (a NaN verdict ends PRUNED: the demo space reaches lr ratios
    # that NaN)
    assert all(t.state.is_finished() and not t.user_attrs.get("error") for t in kept), states
    assert all(t.state != TrialState.FAIL for t in kept), states
    epochs_after = epochs_by_trial(experiment)
    assert len(epochs_after) == 5  # every trial of the sweep, once
    assert {t.user_attrs["ray_trial_id"] for t in kept} == set(epochs_after)
    for trial_id, epochs in epochs_after.items():
        assert epochs == list(range(1, len(epochs) + 1))  # resumed, never an epoch twice
        if trial_id in before:  # finished before the kill: not run again
            assert epochs == epochs_before[trial_id]
    assert len(epochs_after[held[6:]]) > len(epochs_before[held[6:]])  # the held one went on
    # the withheld row came back from the checkpoint, as the held process had it: not retrained
    row = trial_results(experiment)[held][withheld - 1]
    assert row.get(RECOVERED) == 1 and row["pid"] == pid and row["epoch"] == withheld
    assert len(kept) == 5
    logs = (tmp_path / "driver.log").read_text() + resumed.stdout + resumed.stderr
    assert PASSWORD not in logs and PASSWORD not in (out / "sweep.yaml").read_text()


def newest_snapshot(experiment: Path) -> tuple[Path, dict]:
    path = max(experiment.glob("experiment_state-*.json"))
    return path, json.loads(path.read_text())


def test_a_trial_missing_from_rays_snapshot_resumes_from_its_newest_checkpoint(
    demo_corpus, tmp_path
):
    """A trial that ran and checkpointed but is not in the snapshot Ray restores (the kill cut
    the snapshot's copy short) continues from its newest checkpoint under its Optuna trial:
    its epochs are kept, none is trained twice, and it is not failed as orphaned."""
    storage = f"sqlite:///{tmp_path / 'sweep' / 'study.db'}"
    out, experiment, _, held = kill_mid_sweep(
        demo_corpus(12, 12, seed=3), tmp_path, storage, max_epochs=8
    )
    rows_before = trial_results(experiment)[held]
    path, snapshot = newest_snapshot(experiment)
    snapshot["trial_data"] = [
        entry for entry in snapshot["trial_data"] if json.loads(entry[0])["trial_id"] != held[6:]
    ]
    path.write_text(json.dumps(snapshot))
    study = optuna.load_study(study_name="kill", storage=storage)
    (number,) = [t.number for t in study.trials if t.user_attrs.get("ray_trial_id") == held[6:]]

    resumed = resume(out, storage)
    assert "trial(s) Ray's snapshot missed continue under their Optuna trial" in resumed.stdout
    rows = trial_results(experiment)[held]
    epochs = [row["epoch"] for row in rows]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > len(rows_before)
    # continued, not started over: its first epochs are the rows of the process held still
    first_new = next(i for i, row in enumerate(rows) if row["pid"] != rows_before[-1]["pid"])
    assert first_new >= 1 and rows[:first_new] == rows_before[:first_new]
    trial = optuna.load_study(study_name="kill", storage=storage).trials[number]
    assert trial.state.is_finished() and not trial.user_attrs.get("orphaned")
    assert trial.user_attrs["ray_trial_id"] == held[6:]
    assert len(trial_results(experiment)) == 5


def test_resume_when_the_kill_cut_a_snapshot_copy_short(demo_corpus, tmp_path):
    """Ray copies its snapshots to the storage path file by file, in the background; a kill
    mid-copy can leave the search state of a later moment (two more trials made, holding
    both concurrency slots) beside the trial list of an earlier one. Resume still runs every
    trial of the sweep once."""
    storage = f"sqlite:///{tmp_path / 'sweep' / 'study.db'}"
    out, experiment, before, _ = kill_mid_sweep(demo_corpus(), tmp_path, storage)
    search_file = max(experiment.glob("search_gen_state-*.json"))
    state = ray.cloudpickle.loads(search_file.read_bytes())
    limiter = state["name:ConcurrencyLimiter"]
    state["counter"] += 2
    limiter["live_trials"] = {"never-recorded-1", "never-recorded-2"}
    limiter["num_unfinished_live_trials"] = 2
    search_file.write_bytes(ray.cloudpickle.dumps(state))
    resumed = resume(out, storage)
    assert "2 trial(s) started as the driver died were never recorded" in resumed.stdout
    epochs_after = epochs_by_trial(experiment)
    assert len(epochs_after) == 5, sorted(epochs_after)
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in epochs_after.values())
    study = optuna.load_study(study_name="kill", storage=storage)
    kept = [t for t in study.trials if not t.user_attrs.get("orphaned")]
    assert len(kept) == 5 and all(t.state.is_finished() for t in kept)


def test_a_corrupt_checkpoint_fails_only_its_trial(demo_corpus, tmp_path):
    storage = f"sqlite:///{tmp_path / 'sweep' / 'study.db'}"
    out, experiment, _, victim = kill_mid_sweep(
        demo_corpus(12, 12, seed=3), tmp_path, storage, max_epochs=8
    )
    for state in (experiment / victim).glob("checkpoint_*/state.npz"):
        state.write_bytes(b"not a checkpoint")
    resume(out, storage)
    # a trial the kill caught between Optuna's ask and its Ray label is orphaned, unlabelled
    study = optuna.load_study(study_name="kill", storage=storage)
    trials = {
        t.user_attrs["ray_trial_id"]: t for t in study.trials if not t.user_attrs.get("orphaned")
    }
    broken = trials[victim[6:]]
    assert broken.state == TrialState.FAIL and broken.user_attrs.get("error")
    errors = " ".join(p.read_text() for p in (experiment / victim).rglob("error.txt"))
    assert "unreadable checkpoint" in errors
    others = [t for rid, t in trials.items() if rid != victim[6:]]
    assert len(others) == 4 and all(not t.user_attrs.get("error") for t in others)


def test_a_reevaluation_the_kill_cut_short_is_finished_by_resume(demo_corpus, tmp_path):
    """The driver killed while the leaders are re-evaluated (some runs written, not all):
    ``resume`` trains only the runs that are missing and writes the summary."""
    corpus = demo_corpus(12, 12, seed=3)
    out = tmp_path / "sweep"
    command = sweep_command(
        corpus,
        out,
        "re",
        "--samples",
        2,
        "--max-epochs",
        4,
        "--num-cpus",
        2,
        "--reeval-top",
        2,
        "--reeval-seeds",
        3,
    )
    runs = out / "reeval"
    log = tmp_path / "driver.log"
    driver = start_driver(command, log)
    poll(lambda: list(runs.glob("trial*/seed*/history.json")), 600, every=0.2, alongside=driver)
    assert driver.poll() is None, ended_early(driver, log)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    done = {p: p.stat().st_mtime_ns for p in runs.glob("trial*/seed*/history.json")}
    # exactly what the test stands on: some runs written, not all, no summary
    assert 1 <= len(done) < 6 and not (runs / "summary.json").exists()

    resumed = resume(out, f"sqlite:///{out / 'study.db'}")
    assert "reeval: pick Optuna trial" in resumed.stdout
    rows = json.loads((runs / "summary.json").read_text())
    assert len(rows) == 2 and all(len(row["seeds"]) == 3 for row in rows)
    assert len(list(runs.glob("trial*/seed*/history.json"))) == 6
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in done.items())  # not redone


SLOW_EPOCHS = 25
SLOW_SER_SPACE = (
    SER_BASE.replace("batch_size: 32", "batch_size: 16")
    + f"max_epochs: {SLOW_EPOCHS}\n"
    + """params:
  ser.lr: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
"""
)


def test_a_trial_whose_worker_dies_fails_alone_with_its_message(demo_corpus, tmp_path):
    """SIGKILL the process running a trial (as the OOM killer or a crashing kernel would),
    with no retries allowed: that trial ends FAIL with Ray's message; the others finish."""
    corpus = demo_corpus(12, 12, seed=4)
    (tmp_path / "space.yaml").write_text(SLOW_SER_SPACE)
    out = tmp_path / "sweep"
    experiment = out / "ray" / "die"
    command = sweep_command(
        corpus,
        out,
        "die",
        "--space",
        tmp_path / "space.yaml",
        "--samples",
        3,
        "--num-cpus",
        2,
        "--max-failures",
        0,
    )
    driver = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )

    def kill_a_running_trial() -> int | None:
        # held still first, so that the process killed is for certain still in the trial
        # whose rows name it (an actor goes on to the next trial once one ends)
        still_in_it = leaves_epochs_to_train(experiment, SLOW_EPOCHS)
        held = freeze_a_trial_midway(partial(trial_results, experiment), still_in_it)
        if held is None:
            return None
        pid = trial_results(experiment)[held][-1]["pid"]
        os.kill(pid, signal.SIGKILL)
        return pid

    killed = poll(kill_a_running_trial, 300, every=0.2, alongside=driver)
    assert killed, "no trial was running to kill"
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output[-3000:]
    storage = f"sqlite:///{out / 'study.db'}"
    trials = optuna.load_study(study_name="die", storage=storage).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(trials) == 3 and len(failed) == 1, [(t.number, t.state.name) for t in trials]
    assert failed[0].user_attrs.get("error")
    victim = failed[0].user_attrs["ray_trial_id"]
    assert f"trial {victim} raised:" in output and "died" in output  # Ray: "actor died"
    for trial in trials:
        rows = trial_results(experiment)[f"trial_{trial.user_attrs['ray_trial_id']}"]
        if trial is failed[0]:
            assert rows[-1]["pid"] == killed and not rows[-1]["done"]
        else:  # the others ran their whole budget
            assert trial.state == TrialState.COMPLETE and len(rows) == SLOW_EPOCHS
    report = launch("report", out, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (out / "report" / "report.md").read_text()
    assert "## Trials that raised" in text and victim in text
