"""Ray Tune storage on an S3-compatible object store (a moto server on loopback, spoken to
through Ray's pyarrow filesystems): trials, checkpoints and results land in the bucket, and
the commands that read them back (report, best) work from the bucket alone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pyarrow.fs
import pytest

from sermodels.data.demo import write_demo_corpus
from tests.sweep.helpers import sweep_command

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sersweep-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


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


def test_a_sweep_keeps_its_trials_in_an_s3_bucket(s3_bucket, tmp_path):
    filesystem, query = s3_bucket
    corpus = write_demo_corpus(tmp_path / "small.h5", 12, 8, seed=5)
    out = tmp_path / "sweep"
    command = sweep_command(corpus, out, "s3", "--samples", 2, "--max-epochs", 2, "--num-cpus",
                            2, "--storage-path", f"s3://sweeps/experiments?{query}")  # fmt: skip
    swept = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ)
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-3000:]
    assert not (out / "ray").exists()  # nothing of Ray Tune's on the local disk
    listing = filesystem.get_file_info(pyarrow.fs.FileSelector("sweeps/experiments/s3",
                                                               recursive=True))  # fmt: skip
    names = {info.path.removeprefix("sweeps/experiments/s3/") for info in listing}
    trials = optuna.load_study(study_name="s3", storage=f"sqlite:///{out / 'study.db'}").trials
    assert len(trials) == 2
    for trial in trials:
        folder = f"trial_{trial.user_attrs['ray_trial_id']}"
        assert f"{folder}/result.json" in names
        assert any(n.startswith(f"{folder}/checkpoint_") and n.endswith("state.npz")
                   for n in names)  # fmt: skip
        with filesystem.open_input_stream(f"sweeps/experiments/s3/{folder}/result.json") as f:
            rows = [json.loads(line) for line in f.read().decode().splitlines()]
        assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    report = subprocess.run([sys.executable, str(ROOT / "launch.py"), "report", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Learning curves" in (out / "report" / "report.md").read_text()


def test_a_missing_bucket_or_unreachable_store_fails_before_ray(s3_bucket, tmp_path):
    _, query = s3_bucket
    cases = {f"s3://no-such-bucket/x?{query}": "bucket 'no-such-bucket' does not exist",
             "s3://sweeps/x?endpoint_override=127.0.0.1:9&scheme=http": "cannot reach"}  # fmt: skip
    for uri, message in cases.items():
        out = tmp_path / "sweep"
        result = subprocess.run([sys.executable, str(ROOT / "launch.py"), "sweep", "--space",
                                 "demo", "--storage-path", uri, "--out", str(out)],
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith("error: --storage-path s3://") and message in lines[0]
        assert not out.exists()


S3_EPOCHS = 5


def s3_trials(filesystem, experiment: str) -> dict[str, dict]:
    """Per trial folder in the bucket: its epochs in ``result.json`` and whether it holds a
    complete checkpoint."""
    selector = pyarrow.fs.FileSelector(experiment, recursive=True, allow_not_found=True)
    names = [
        info.path.removeprefix(experiment + "/") for info in filesystem.get_file_info(selector)
    ]
    trials = {}
    for folder in {n.split("/")[0] for n in names if n.startswith("trial_")}:
        if f"{folder}/result.json" not in names:
            continue  # the trial has not reported yet
        with filesystem.open_input_stream(f"{experiment}/{folder}/result.json") as stream:
            lines = stream.read().decode().splitlines(keepends=True)
        trials[folder] = {
            "epochs": [json.loads(line)["epoch"] for line in lines if line.endswith("\n")],
            "checkpointed": any(
                n.startswith(f"{folder}/checkpoint_") and n.endswith("state.npz") for n in names
            ),
        }
    return trials


def finished_ray_ids(study_path: Path) -> set[str]:
    if not study_path.exists():
        return set()
    try:
        study = optuna.load_study(study_name="s3kill", storage=f"sqlite:///{study_path}")
    except KeyError:
        return set()
    return {t.user_attrs["ray_trial_id"] for t in study.trials if t.state.is_finished()}


def unfinished_checkpointed(filesystem, experiment: str, finished: set[str]) -> list[str]:
    """Trials with a checkpoint in the bucket and epochs of their budget still to train."""
    return [folder for folder, trial in s3_trials(filesystem, experiment).items()
            if trial["checkpointed"] and folder[6:] not in finished
            and len(trial["epochs"]) < S3_EPOCHS]  # fmt: skip


def test_a_sweep_on_s3_resumes_from_the_bucket_after_the_driver_is_killed(s3_bucket, tmp_path):
    """Ray restores remote checkpoints into temporary folders beside each other: every trial
    must continue from its own, never repeating an epoch."""
    filesystem, query = s3_bucket
    corpus = write_demo_corpus(tmp_path / "small.h5", 12, 12, seed=3)
    # the unfinished trial seen before the kill can finish as the kill lands: checked again
    # after it, on a fresh sweep if the window closed
    for attempt in range(3):
        out = tmp_path / f"sweep{attempt}"
        experiment = f"sweeps/attempt{attempt}/s3kill"
        command = sweep_command(corpus, out, "s3kill", "--samples", 3, "--max-epochs", S3_EPOCHS,
                                "--num-cpus", 2, "--storage-path",
                                f"s3://sweeps/attempt{attempt}?{query}")  # fmt: skip
        driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 300

        while time.monotonic() < deadline and driver.poll() is None:
            finished = finished_ray_ids(out / "study.db")
            if finished and unfinished_checkpointed(filesystem, experiment, finished):
                break
            time.sleep(0.5)
        assert driver.poll() is None, "the sweep ended before it could be killed"
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        finished = finished_ray_ids(out / "study.db")
        unfinished = unfinished_checkpointed(filesystem, experiment, finished)
        if unfinished:
            break
    assert unfinished, "in 3 sweeps, no unfinished trial had checkpointed when the kill landed"
    before = s3_trials(filesystem, experiment)
    resumed = subprocess.run([sys.executable, str(ROOT / "launch.py"), "resume", str(out)],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = s3_trials(filesystem, experiment)
    assert len(after) == 3
    for folder, trial in after.items():
        assert trial["epochs"] == list(range(1, len(trial["epochs"]) + 1)), (folder, trial)
    for folder in unfinished:  # continued from its own checkpoint, its epochs kept
        epochs = after[folder]["epochs"]
        assert epochs[: len(before[folder]["epochs"])] == before[folder]["epochs"]
        assert len(epochs) > len(before[folder]["epochs"])
    study = optuna.load_study(study_name="s3kill", storage=f"sqlite:///{out / 'study.db'}")
    kept = [t for t in study.trials if not t.user_attrs.get("orphaned")]
    assert len(kept) == 3 and all(t.state.is_finished() for t in kept)
    assert all(not t.user_attrs.get("error") for t in kept), resumed.stdout[-3000:]
