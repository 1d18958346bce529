"""The search-efficiency benchmark's arithmetic and its recorded reference (it never trains
here): epochs are counted to the target in completion order, a ratio is undefined when
either side never got there, the interval comes from resampling sweeps, the validation
bootstrap resamples speakers, and a reference recorded with other code is called stale."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import record_reference  # noqa: E402
import search_efficiency  # noqa: E402


def trial(epochs: int, curve: list[float]) -> dict:
    return {"epochs": epochs, "best": curve, "state": "COMPLETE"}


def test_epochs_count_every_earlier_trial_and_the_reaching_trial_up_to_its_epoch():
    trials = [trial(6, [0.5] * 6), trial(2, [0.6, 0.6]), trial(6, [0.6, 0.7, 0.81, 0.81])]
    assert search_efficiency.epochs_to(0.8, trials) == (6 + 2 + 3, True)
    assert search_efficiency.epochs_to(0.9, trials) == (14, False)
    assert search_efficiency.epochs_to(0.8, [trial(3, [float("nan")] * 3)]) == (3, False)


def test_epochs_per_success_charge_failed_sweeps_to_the_successful_ones():
    rows = [{"epochs": 30, "reached": True}, {"epochs": 90, "reached": False}]
    assert search_efficiency.epochs_per_success(rows) == 120
    assert search_efficiency.epochs_per_success([{"epochs": 90, "reached": False}]) is None


def test_the_ratio_is_undefined_when_the_baseline_never_reached_the_target():
    ours = [{"epochs": 40, "reached": True}] * 5
    never = [{"epochs": 96, "reached": False}] * 5
    assert search_efficiency.ratio_with_spread(ours, never) == {
        "ratio": None, "interval": None, "defined_share": None
    }  # fmt: skip


def test_the_ratio_interval_comes_from_resampling_each_methods_sweeps():
    ours = [{"epochs": e, "reached": True} for e in (20, 30, 40, 50, 60)]
    theirs = [{"epochs": 80, "reached": True}] * 3 + [{"epochs": 96, "reached": False}] * 2
    spread = search_efficiency.ratio_with_spread(ours, theirs)
    assert spread["ratio"] == pytest.approx(40 / (432 / 3), abs=1e-3)
    low, high = spread["interval"]
    assert low < spread["ratio"] < high
    # a resample of the baseline with no success has no ratio: not every draw is defined
    assert 0.9 < spread["defined_share"] < 1


def test_the_validation_bootstrap_resamples_speakers():
    speakers = np.repeat(np.arange(20), 10)
    y_true = np.tile(np.arange(4), 50)
    perfect = record_reference.speaker_bootstrap(y_true, y_true, speakers, 4)
    assert perfect["val_uar"] == 1.0 and perfect["bootstrap_sd"] == 0.0
    one_speaker_wrong = y_true.copy()
    one_speaker_wrong[speakers == 0] = (y_true[speakers == 0] + 1) % 4
    spread = record_reference.speaker_bootstrap(y_true, one_speaker_wrong, speakers, 4)
    assert spread["val_uar"] == pytest.approx(0.95)
    assert 0.02 < spread["bootstrap_sd"] < 0.08
    assert spread["speakers"] == 20 and spread["rows"] == 200


def test_the_recorded_reference_matches_this_corpus_and_says_whether_it_is_stale():
    reference, stale = search_efficiency.load_reference(record_reference.OUT)
    assert stale == (reference["code_hash"] != record_reference.code_hash())
    assert reference["trials"] >= 64 and reference["seed"] not in range(100)
    best = max(r["best"] for r in reference["runs"] if r["best"])
    assert reference["best_val_uar"] == pytest.approx(best, abs=1e-4)
    assert reference["best_validation"]["speakers"] >= 100


def test_a_reference_recorded_with_other_code_is_called_stale(tmp_path, capsys):
    payload = json.loads(record_reference.OUT.read_text())
    payload["code_hash"] = "0" * 16
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(payload))
    _, stale = search_efficiency.load_reference(path)
    assert stale is True
    assert "reference search is stale" in capsys.readouterr().err


def test_a_reference_for_another_corpus_is_refused(tmp_path):
    payload = json.loads(record_reference.OUT.read_text())
    payload["corpus"]["valid_idx"] = "2,3"
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(SystemExit, match="corpus/space"):
        search_efficiency.load_reference(path)
