"""Ray Tune storage on an S3-compatible object store (a moto server on loopback, spoken to
through Ray's pyarrow filesystems): trials, checkpoints and results land in the bucket, and
the commands that read them back (report, best) work from the bucket alone."""

import json
import os
import subprocess
import sys
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
