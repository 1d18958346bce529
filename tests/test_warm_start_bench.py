"""The warm-start benchmark (it never trains here): failures are counted among the first
trials by completion, differences are paired seed by seed, and the figures BENCHMARKS.md
publishes are what the committed runs replay to."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import warm_start  # noqa: E402
from common import STALE_NOTE, bootstrap_spread  # noqa: E402
from record_reference import code_hash  # noqa: E402


def trial(*verdicts: str) -> dict:
    return {"state": "COMPLETE", "value": 0.5, "verdicts": list(verdicts), "overrides": {}}


def test_failures_count_only_the_first_trials_by_completion():
    trials = [
        trial("mode_collapse"),
        trial("d_overpowers"),
        *[trial() for _ in range(6)],
        trial("nan"),
        trial("nan"),
    ]
    assert warm_start.failures(trials, ("mode_collapse", "nan")) == 1  # the NaNs came 9th, 10th
    assert warm_start.failures(trials, warm_start.FAILURES) == 2


def test_the_difference_is_paired_seed_by_seed():
    def sweep(seed: int, quality: float) -> dict:
        return {"seed": seed, "trials": [trial()], "held_out": {"mean": quality}}

    payload = {
        "sweeps": {"cold": [sweep(0, 0.5), sweep(1, 0.7)], "warm": [sweep(0, 0.6), sweep(1, 0.8)]}
    }
    figures = warm_start.figures(payload)
    assert figures["quality"]["warm_minus_cold"]["mean"] == pytest.approx(0.1)
    assert figures["quality"]["warm_minus_cold"]["interval"] == pytest.approx([0.1, 0.1])
    assert figures["quality"]["cold"]["mean"] == pytest.approx(0.6)


def test_the_spread_leaves_out_what_is_not_a_number():
    spread = bootstrap_spread([0.5, float("nan"), 0.7], np.random.default_rng(0))
    assert spread["mean"] == pytest.approx(0.6)
    assert bootstrap_spread([], np.random.default_rng(0)) == {"mean": None, "interval": None}


def test_the_published_figures_are_what_the_committed_runs_replay_to():
    payload = json.loads(warm_start.RUNS.read_text())
    figures = warm_start.figures(payload)
    assert len(payload["sweeps"]["cold"]) == len(payload["sweeps"]["warm"]) >= 5
    text = (ROOT / "BENCHMARKS.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| 13 | warm start")]
    is_stale = payload["code_hash"] != code_hash()
    assert (STALE_NOTE in row) == is_stale, "row 13 must say whether it is stale"
    for key, label in (
        ("quality", "pick quality"),
        ("stopped_first8", "stopped among the first 8"),
    ):
        published = re.search(rf"{label} ([\d.]+) warm / ([\d.]+) cold", row)
        assert published, f"no '{label}' figures in BENCHMARKS.md row 13"
        warm, cold = (float(v) for v in published.groups())
        assert warm == round(figures[key]["warm"]["mean"], 3)
        assert cold == round(figures[key]["cold"]["mean"], 3)
