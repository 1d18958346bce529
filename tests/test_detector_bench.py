"""The detector benchmark replays the recorded SGAN histories (it never trains): the sets are
disjoint, every figure it reports is defined, and it says when the histories were recorded
with other model code."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "bench" / "histories" / "sgan_runs.json"
SHIPPED_SGAN_SPACES = {"sgan_audio", "sgan_video", "sgan_av", "sgan_unsupervised"}


def replay(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "bench" / "detector_accuracy.py"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_no_space_and_seed_is_in_both_sets():
    runs = json.loads(HISTORIES.read_text())["runs"]
    pairs = {name: {(r["space"], r["seed"]) for r in runs if r["set"] == name}
             for name in ("calibration", "evaluation")}  # fmt: skip
    assert pairs["calibration"] and pairs["evaluation"]
    assert not pairs["calibration"] & pairs["evaluation"]
    assert {space for space, _ in pairs["evaluation"]} == SHIPPED_SGAN_SPACES


def test_the_replay_reports_defined_out_of_sample_figures():
    done = replay()
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    evaluation = figures["evaluation"]
    mechanism = evaluation["mechanism"]
    assert mechanism["controls"] >= mechanism["forced"] > 0  # precision is defined
    assert mechanism["precision"] is not None and mechanism["recall"] is not None
    assert evaluation["outcome"]["draws"] >= 40
    assert evaluation["outcome"]["top_10pct_draws"] == len(SHIPPED_SGAN_SPACES)
    assert 0 <= evaluation["outcome"]["worse_half_epochs_saved"] <= 1
    assert "outcome" not in figures["calibration"]  # random draws are evaluation only
    recorded = json.loads(HISTORIES.read_text())["code_hash"]
    sys.path.insert(0, str(ROOT / "bench"))
    from record_histories import code_hash

    assert figures["cache_stale"] == (recorded != code_hash())


def test_histories_of_other_code_are_called_stale(tmp_path):
    payload = json.loads(HISTORIES.read_text())
    payload["code_hash"] = "0" * 16
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(payload))
    done = replay("--histories", stale)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["cache_stale"] is True
    assert "rerun bench/record_histories.py" in done.stderr
