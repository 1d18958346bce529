"""Ray Tune storage on an S3-compatible object store (a moto server on loopback, spoken to
through Ray's pyarrow filesystems): trials, checkpoints and results land in the bucket, and
the commands that read them back (report, best) work from the bucket alone."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import optuna
import pyarrow.fs
import pytest

from sweep.recovery import result_rows
from sweep.study_storage import open_storage
from tests.helpers import ended_early, launch, poll, start_driver
from tests.sweep.helpers import (
    kill_held_then_driver,
    leaves_epochs,
    newest_checkpoint,
    sweep_command,
)

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sersweep-test",
    "AWS_SECRET_ACCESS_KEY": "not-a-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_bucket(monkeypatch):
    """A real S3 protocol server (moto) on 127.0.0.1 with an empty bucket ``sweeps``."""
    from moto.server import ThreadedMotoServer

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    query = f"endpoint_override={host}:{port}&scheme=http"
    bucket = f"s3://sweeps?{query}&allow_bucket_creation=true"
    filesystem, _ = pyarrow.fs.FileSystem.from_uri(bucket)
    filesystem.create_dir("sweeps")
    yield filesystem, query
    server.stop()


def test_a_sweep_keeps_its_trials_in_an_s3_bucket(s3_bucket, demo_corpus, tmp_path):
    filesystem, query = s3_bucket
    corpus = demo_corpus(12, 8, seed=5)
    out = tmp_path / "sweep"
    command = sweep_command(
        corpus,
        out,
        "s3",
        "--samples",
        2,
        "--max-epochs",
        2,
        "--num-cpus",
        2,
        "--ray-storage",
        f"s3://sweeps/experiments?{query}",
    )
    swept = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ)
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-3000:]
    assert not (out / "ray").exists()  # nothing of Ray Tune's on the local disk
    listing = filesystem.get_file_info(
        pyarrow.fs.FileSelector("sweeps/experiments/s3", recursive=True)
    )
    names = {info.path.removeprefix("sweeps/experiments/s3/") for info in listing}
    trials = optuna.load_study(study_name="s3", storage=f"sqlite:///{out / 'study.db'}").trials
    assert len(trials) == 2
    for trial in trials:
        folder = f"trial_{trial.user_attrs['ray_trial_id']}"
        assert f"{folder}/result.json" in names
        assert any(n.startswith(f"{folder}/checkpoint_") and n.endswith("state.npz") for n in names)
        with filesystem.open_input_stream(f"sweeps/experiments/s3/{folder}/result.json") as f:
            rows = [json.loads(line) for line in f.read().decode().splitlines()]
        assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    report = launch("report", out, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Learning curves" in (out / "report" / "report.md").read_text()


def test_a_missing_bucket_or_unreachable_store_fails_before_ray(s3_bucket, tmp_path):
    _, query = s3_bucket
    cases = {
        f"s3://no-such-bucket/x?{query}": "bucket 'no-such-bucket' does not exist",
        "s3://sweeps/x?endpoint_override=127.0.0.1:9&scheme=http": "cannot reach",
    }
    for uri, message in cases.items():
        out = tmp_path / "sweep"
        result = launch("sweep", "--space", "demo", "--ray-storage", uri, "--out", out, timeout=300)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith("error: --ray-storage s3://") and message in lines[0]
        assert not out.exists()


S3_EPOCHS = 8


def s3_results(filesystem, experiment: str) -> dict[str, list[dict]]:
    """Per trial folder in the bucket, its whole ``result.json`` rows."""
    selector = pyarrow.fs.FileSelector(experiment, allow_not_found=True)
    folders = [
        i.base_name for i in filesystem.get_file_info(selector) if i.base_name.startswith("trial_")
    ]
    return {folder: result_rows(filesystem, f"{experiment}/{folder}") for folder in folders}


def s3_trials(filesystem, experiment: str) -> dict[str, dict]:
    """Per trial folder in the bucket that has reported: its epochs in ``result.json``."""
    return {
        folder: {"epochs": [row["epoch"] for row in rows]}
        for folder, rows in s3_results(filesystem, experiment).items()
        if rows
    }


def hold_a_checkpointed_trial(
    filesystem, experiment: str, finished: Callable[[], set[str]]
) -> tuple[str, int, int] | None:
    """Stop (SIGSTOP) the process of an unfinished trial whose newest complete checkpoint in
    the bucket leaves epochs to train (before its last epoch, not ended or condemned there);
    returns its folder, that checkpoint's epoch and the process id (``None``: no such trial
    yet). Found by the checkpoints the trial writes to the bucket itself, not by the result
    rows the driver copies there later. The process can still checkpoint, and a result it
    sent can still end the trial, between the look and the stop: both are looked at again
    once it is stopped, and a trial that no longer qualifies is let go."""
    selector = pyarrow.fs.FileSelector(experiment, allow_not_found=True)
    for trial in filesystem.get_file_info(selector):
        trial_id = trial.base_name.removeprefix("trial_")
        if not trial.base_name.startswith("trial_") or trial_id in finished():
            continue
        newest = newest_checkpoint(filesystem, trial.path, trial_id)
        if not leaves_epochs(newest, S3_EPOCHS):
            continue
        pid = newest[1]["pid"]
        os.kill(pid, signal.SIGSTOP)
        time.sleep(1.0)  # the driver takes in a result it already had
        newest = newest_checkpoint(filesystem, trial.path, trial_id)
        if leaves_epochs(newest, S3_EPOCHS) and trial_id not in finished():
            return trial.base_name, newest[0], pid
        os.kill(pid, signal.SIGCONT)
    return None


def finished_ray_ids(study_path: Path) -> set[str]:
    if not study_path.exists():
        return set()
    try:
        # opened as the product opens it: the driver may be creating this new database now
        study = optuna.load_study(
            study_name="s3kill", storage=open_storage(f"sqlite:///{study_path}")
        )
    except KeyError:
        return set()
    return {t.user_attrs["ray_trial_id"] for t in study.trials if t.state.is_finished()}


def test_a_sweep_on_s3_resumes_from_the_bucket_after_the_driver_is_killed(
    s3_bucket, demo_corpus, tmp_path
):
    """Ray restores remote checkpoints into temporary folders beside each other: every trial
    must continue from its own, never repeating an epoch."""
    filesystem, query = s3_bucket
    corpus = demo_corpus(12, 12, seed=3)
    out = tmp_path / "sweep"
    experiment = "sweeps/experiments/s3kill"
    command = sweep_command(
        corpus,
        out,
        "s3kill",
        "--samples",
        3,
        "--max-epochs",
        S3_EPOCHS,
        "--num-cpus",
        2,
        "--ray-storage",
        f"s3://sweeps/experiments?{query}",
    )
    log = tmp_path / "driver.log"
    driver = start_driver(command, log)

    def hold_a_trial_once_one_finished() -> tuple[str, int, int] | None:
        finished = partial(finished_ray_ids, out / "study.db")
        if not finished():
            return None
        return hold_a_checkpointed_trial(filesystem, experiment, finished)

    held = poll(hold_a_trial_once_one_finished, 300, every=0.2, alongside=driver)
    assert driver.poll() is None, ended_early(driver, log)
    kill_held_then_driver(held[2] if held else None, driver)
    assert held, "no trial had checkpointed mid-run"
    held, checkpointed_epoch, pid = held
    finished = finished_ray_ids(out / "study.db")
    # exactly what the test stands on: a finished trial, the held one not, and its newest
    # checkpoint still the one it was held at
    assert finished and held[6:] not in finished
    newest = newest_checkpoint(filesystem, f"{experiment}/{held}", held[6:])
    assert newest is not None and newest[0] == checkpointed_epoch
    resumed = launch("resume", out, timeout=1500)  # a hang guard
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = s3_trials(filesystem, experiment)
    assert len(after) == 3
    for folder, trial in after.items():
        assert trial["epochs"] == list(range(1, len(trial["epochs"]) + 1)), (folder, trial)
    # continued from its own checkpoint: the epochs up to it are the held process's own rows
    # (written back from the checkpoint where the driver had not copied them yet)
    rows = s3_results(filesystem, experiment)[held]
    assert len(rows) > checkpointed_epoch and rows[-1]["pid"] != pid
    assert all(row["pid"] == pid for row in rows[:checkpointed_epoch])
    study = optuna.load_study(study_name="s3kill", storage=f"sqlite:///{out / 'study.db'}")
    kept = [t for t in study.trials if not t.user_attrs.get("orphaned")]
    assert len(kept) == 3 and all(t.state.is_finished() for t in kept)
    assert all(not t.user_attrs.get("error") for t in kept), resumed.stdout[-3000:]
