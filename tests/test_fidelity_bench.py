"""The multi-fidelity benchmark (it never trains here): successive halving runs on the rungs
and reduction factor the sweep's ASHA ships with, a trial the collapse detector stops never
competes while one the scheduler stops does (as in a sweep), ground truth comes only from the
held-out seeds, the ratio reads the mean curves, and the figures BENCHMARKS.md publishes are
what the committed runs replay to."""

import math
import re
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import fidelity  # noqa: E402
from common import STALE_NOTE  # noqa: E402

from sweep.settings import ASHA_GRACE_PERIOD, ASHA_REDUCTION_FACTOR  # noqa: E402


def test_the_rungs_and_their_cost_are_the_shipped_ashas():
    assert (ASHA_GRACE_PERIOD, ASHA_REDUCTION_FACTOR) == (2, 3)
    assert fidelity.rungs(2, 6) == [2]
    assert fidelity.rungs(1, 6) == [1, 3]
    assert fidelity.rungs(2, 30) == [2, 6, 18]
    assert fidelity.rungs(None, 6) == []
    assert fidelity.nominal_cost(9, 2, 6) == 9 * 2 + 3 * 4
    assert fidelity.nominal_cost(9, 1, 6) == 9 * 1 + 3 * 2 + 1 * 3
    assert fidelity.nominal_cost(4, None, 6) == 24
    assert fidelity.starts_within(30, 2, 6, available=24) == 9
    assert fidelity.starts_within(1000, 2, 6, available=24) == 24  # the table runs out


def run(curve: list[float], stopped_at: int | None = None) -> fidelity.Run:
    return fidelity.Run(tuple(curve), stopped_at, quality=curve[-1])


def test_halving_keeps_the_best_third_and_only_a_verdict_keeps_a_trial_out():
    rising = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    table = {
        0: {0: run([0.9] * 6, stopped_at=1)},  # the best, but the detector stops it
        1: {0: run([0.8, 0.8, 0.2, 0.2, 0.2, 0.2])},  # promoted, then falls
        2: {0: run([0.7, 0.7, 0.7, 0.7, 0.7, 0.7])},  # promoted
        3: {0: run(rising)},
        4: {0: run(rising)},
        5: {0: run([0.6, 0.6, 0.9, 0.9, 0.9, 0.9])},  # would have risen: stopped at rung 2
    }
    roles = {config: (0, [], []) for config in table}
    competing, spent = fidelity.search(table, roles, list(table), grace=2, budget=6)
    assert 0 not in competing
    assert competing == {1: 0.2, 2: 0.7, 3: 0.2, 4: 0.2, 5: 0.6}  # rung values for the stopped
    assert spent == 1 + 5 * 2 + 2 * 4
    full, spent_full = fidelity.search(table, roles, list(table), grace=None, budget=6)
    assert full[5] == 0.9 and spent_full == 1 + 5 * 6


def test_ground_truth_comes_only_from_the_held_out_seeds():
    # a seed's curve is flat at its own value, so any read of a held-out seed would show
    table = {c: {s: run([0.3 + 0.05 * c + 0.001 * s] * 6) for s in range(8)} for c in range(6)}
    budgets = [12, 18, 36]
    draw = fidelity.replicate(table, np.random.default_rng(0), budgets, budget=6)
    rng = np.random.default_rng(0)  # the same draw, done here by hand
    roles = {c: list(rng.permutation(range(8))) for c in table}
    held_out = {c: statistics.fmean(table[c][s].quality for s in roles[c][4:]) for c in table}
    order = [int(c) for c in rng.permutation(range(6))]
    first_three = order[:3]  # 36 search epochs train 6 trials in full; 18 train 3
    best = max(first_three, key=lambda c: c)  # every seed of a higher config scores higher
    assert draw["arms"]["full"][18]["quality"] == pytest.approx(held_out[best])
    assert draw["arms"]["full"][36]["quality"] == pytest.approx(max(held_out.values()))
    assert draw["arms"]["full"][18]["epochs"] == 18 + 3 * fidelity.REEVAL_SEEDS * 6


def test_the_ratio_reads_the_mean_curves_and_says_when_it_is_never_reached():
    budgets = [12, fidelity.REFERENCE_BUDGET, 96]

    def rows(points):
        return {
            b: {"quality": q, "epochs": e, "search_epochs": e - 10}
            for b, (e, q) in zip(budgets, points, strict=True)
        }

    full = rows([(40, 0.40), (100, 0.50), (160, 0.55)])
    fast = rows([(40, 0.45), (70, 0.55), (100, 0.56)])
    slow = rows([(40, 0.30), (100, 0.35), (160, 0.40)])
    draws = [{"arms": {"full": full, "fast": fast, "slow": slow}}]
    assert fidelity.ratio(draws, "fast", budgets) == pytest.approx((40 + 15) / 100)
    assert fidelity.ratio(draws, "fast", budgets, "search_epochs") == pytest.approx(45 / 90)
    assert fidelity.ratio(draws, "slow", budgets) is None


NUMBER = r"(\d+\.\d+)"


def published_row() -> str:
    text = (ROOT / "BENCHMARKS.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| 14 | multi-fidelity")]
    return row


def test_the_published_figures_are_what_the_committed_runs_replay_to():
    payload, budget, is_stale = fidelity.load_runs()
    assert (STALE_NOTE in published_row()) == is_stale, "row 14 must say whether it is stale"
    sets = {
        name: fidelity.summarise(
            fidelity.prepare(configs, budget),
            fidelity.REPLICATES,
            fidelity.RESAMPLES,
            index,
            budget,
        )
        for index, (name, configs) in enumerate(sorted(payload["by_set"].items()))
    }
    headline = fidelity.headline(sets)
    row = published_row()
    for corpus in ("evaluation", "calibration"):
        figures = headline[corpus]
        published = re.search(
            rf"{corpus}: ratio {NUMBER} \({NUMBER}-{NUMBER}\), search epochs {NUMBER}; rank "
            rf"correlation at epoch {ASHA_GRACE_PERIOD} {NUMBER}, at the budget's end {NUMBER}",
            row,
        )
        assert published, f"no {corpus} figures in BENCHMARKS.md row 14"
        values = [float(v) for v in published.groups()]
        replayed = [
            figures["ratio"],
            *figures["ratio_interval"],
            figures["search_ratio"],
            figures["rung_correlation"],
            figures["final_correlation"],
        ]
        assert all(math.isfinite(v) for v in replayed)
        assert values == pytest.approx(replayed, abs=0.0051), corpus
