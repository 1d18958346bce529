"""The sampler surrogate's parts (it never trains here): how it sees a configuration, how a
simulated sweep picks, counts epochs and failures, how the start-up count and the failure
risk are chosen, and that its cache and BENCHMARKS.md say what the replay computes."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import sampler_surrogate  # noqa: E402
import search_efficiency  # noqa: E402
from common import STALE_NOTE  # noqa: E402

import sweep.settings  # noqa: E402


def test_a_configuration_is_seen_by_its_rates_sizes_and_stabiliser():
    base = {"sgan.d_lr": 1e-4, "sgan.g_lr": 1e-2, "sgan.latent_dim": 16, "sgan.n_node": 64}
    plain = sampler_surrogate.features(base)
    assert plain[:4] == pytest.approx([-4.0, 2.0, 16.0, 64.0])
    assert plain[4:7] == [1.0, 0.0, 0.0]
    smoothed = sampler_surrogate.features({**base, "sgan.label_smoothing": 0.2})
    assert smoothed[4:8] == [0.0, 1.0, 0.0, 0.2]
    noisy = sampler_surrogate.features({**base, "sgan.instance_noise": 0.1})
    assert noisy[4:7] == [0.0, 0.0, 1.0] and noisy[8] == pytest.approx(-1.0)


class Exact:
    """A surrogate whose runs repeat a configuration's quality without noise."""

    noise = 0.0

    def mean(self, overrides: dict) -> float:
        return overrides["q"]


def trial(told: float, quality: float, stopped: bool = False, epochs: float = 6) -> dict:
    return {"overrides": {"q": quality}, "value": told, "stopped": stopped, "epochs": epochs}


def test_sersweep_re_evaluates_its_top_three_and_pays_for_it():
    trials = [
        trial(0.9, 0.40),  # the luckiest run: its seeds show it
        trial(0.8, 0.55),
        trial(0.7, 0.50),
        trial(0.6, 0.60),  # fourth: never re-evaluated
        trial(0.95, 0.70, stopped=True, epochs=3),  # stopped: cannot be picked
    ]
    rng = np.random.default_rng(0)
    picked = sampler_surrogate.pick(trials, True, Exact(), rng, budget=6)
    assert picked == {"quality": 0.55, "epochs": 4 * 6 + 3 + 3 * 3 * 6}
    random_pick = sampler_surrogate.pick(trials, False, Exact(), rng, budget=6)
    assert random_pick == {"quality": 0.40, "epochs": 27}


def test_the_largest_count_as_good_as_the_best_within_the_noise_is_chosen():
    def first(mean: float, low: float, high: float) -> dict:
        return {
            str(search_efficiency.BUDGETS[0]): {"quality": {"mean": mean, "interval": [low, high]}}
        }

    def ratio(value: float | None, high: float = 0.35) -> dict:
        return {"ratio": value, "ratio_interval": None if value is None else [0.26, high]}

    per_method = {
        "tpe:2": first(0.48, 0.47, 0.49),  # the best 8-trial pick
        "tpe:4": first(0.475, 0.46, 0.49),  # inside its interval
        "tpe:6": first(0.46, 0.45, 0.47),  # outside
        "tpe:10": first(0.475, 0.46, 0.49),
    }
    ratios = {"tpe:2": ratio(0.26), "tpe:4": ratio(0.26), "tpe:6": ratio(0.3), "tpe:10": ratio(0.4)}
    # tpe:10's ratio lies beyond the lowest ratio's interval, tpe:6's pick beyond the best's
    assert sampler_surrogate.choose(ratios, per_method) == "tpe:4"
    ratios["tpe:10"] = ratio(0.34)
    assert sampler_surrogate.choose(ratios, per_method) == "tpe:10"
    ratios["tpe:10"] = ratio(None)  # never reaches random search's quality
    assert sampler_surrogate.choose(ratios, per_method) == "tpe:4"


def test_the_largest_failure_risk_meeting_both_targets_is_chosen():
    def ratio(value: float | None) -> dict:
        return {"ratio": value}

    def share(mean: float) -> dict:
        return {"mean": mean}

    shares = {
        "random": share(0.04),
        "tpe:4": share(0.06),
        "tpe:4:0.02": share(0.015),
        "tpe:4:0.05": share(0.02),  # at half of random search's: meets it
        "tpe:4:0.1": share(0.03),
    }
    ratios = {
        "tpe:4": ratio(0.26),
        "tpe:4:0.02": ratio(0.30),
        "tpe:4:0.05": ratio(0.32),
        "tpe:4:0.1": ratio(0.30),
    }
    assert sampler_surrogate.choose_risk(ratios, shares) == 0.05
    ratios["tpe:4:0.05"] = ratio(0.4)  # fewer failures, but the pick comes too late
    assert sampler_surrogate.choose_risk(ratios, shares) == 0.02
    ratios["tpe:4:0.02"] = ratio(None)
    assert sampler_surrogate.choose_risk(ratios, shares) == 1.0  # none meets both: no redraw


@pytest.fixture(scope="module")
def simulated() -> tuple[dict, dict]:
    if not sampler_surrogate.CACHE.is_file():
        pytest.skip("no surrogate simulation recorded")
    cache = json.loads(sampler_surrogate.CACHE.read_text())
    payload = json.loads(search_efficiency.TEN_STARTUP.read_text())
    return cache, sampler_surrogate.replay(cache, payload)


def test_the_simulation_was_fit_on_the_recording_it_sits_beside(simulated):
    cache, _ = simulated
    payload = json.loads(search_efficiency.TEN_STARTUP.read_text())
    assert cache["recording_code_hash"] == payload["code_hash"]
    assert all(len(rows) == cache["sweeps"] for rows in cache["rows"].values())


def test_row_15_says_whether_its_simulation_drew_with_todays_sampler(simulated):
    cache, _ = simulated
    is_stale = cache["sampler_code_hash"] != sampler_surrogate.sampler_code_hash()
    rows = (ROOT / "BENCHMARKS.md").read_text().splitlines()
    row = next(line for line in rows if line.startswith("| 15 |"))
    assert (STALE_NOTE in row) == is_stale, "row 15 must say whether it is stale"


def test_the_surrogates_fit_is_the_one_its_simulation_keeps(simulated):
    """The forests are fit again from the recording (seeded) and fit it as the cache says."""
    cache, _ = simulated
    payload = json.loads(search_efficiency.TEN_STARTUP.read_text())
    budget = search_efficiency.load_space(sampler_surrogate.SPACE).max_epochs
    fit = sampler_surrogate.Surrogate(payload, budget).fit_figures()
    assert {key: cache["surrogate"][key] for key in fit} == fit


def test_the_shipped_start_up_count_and_failure_risk_are_the_chosen_ones(simulated):
    _, figures = simulated
    assert figures["chosen"] == f"tpe:{sweep.settings.STARTUP_TRIALS}"
    assert figures["chosen_max_risk"] == sweep.settings.MAX_FAILURE_RISK


def test_benchmarks_publishes_the_surrogates_figures_and_choice(simulated):
    cache, figures = simulated
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/sampler_surrogate.py")[1]
    section = " ".join(section.split("\n## ")[0].split())
    assert f"start-up count {figures['chosen'].split(':')[1]} is chosen" in section
    assert f"failure risk {figures['chosen_max_risk']} is chosen" in section
    chosen = f"tpe:{sweep.settings.STARTUP_TRIALS}:{figures['chosen_max_risk']}"
    share_ratio = figures["failure_share_ratios"][chosen]
    assert f"half of random search's ({share_ratio:.2f}, on the mean only" in section
    fit = cache["surrogate"]
    assert f"out-of-bag R² {fit['quality_oob_r2']:.2f}" in section
    assert f"out-of-bag ROC AUC {fit['failure_oob_auc']:.3f}" in section
    assert f"base rate of {fit['failure_base_rate']:.3f}" in section
    for method, per_budget in figures["per_method"].items():
        cells = []
        for size in map(str, search_efficiency.BUDGETS):
            quality = per_budget[size]["quality"]
            low, high = quality["interval"]
            epochs = per_budget[size]["epochs"]["mean"]
            cells.append(f"{quality['mean']:.3f} ({low:.3f}-{high:.3f}), {epochs:.0f}")
        ratio = figures["ratios"].get(method)
        if ratio is None:
            last = "-"
        elif ratio["ratio"] is None:
            last = f"undefined ({ratio['ratio_defined_share']:.0%} defined)"
        else:
            low, high = ratio["ratio_interval"]
            last = f"{ratio['ratio']:.2f} ({low:.2f}-{high:.2f})"
        share = figures["failure_shares"][method]
        low, high = share["interval"]
        failures = f"{share['mean']:.3f} ({low:.3f}-{high:.3f})"
        row = f"| {method} | " + " | ".join(cells) + f" | {last} | {failures} |"
        assert row in section, row


def test_benchmarks_publishes_how_the_estimate_judges_the_recorded_sweeps():
    """The shipped estimate replayed on row 8's recordings (real runs, no surrogate)."""
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/sampler_surrogate.py")[1]
    section = " ".join(section.split("\n## ")[0].split())
    risk = sweep.settings.MAX_FAILURE_RISK
    four = sampler_surrogate.recorded_risk(
        json.loads(search_efficiency.WITHOUT_REDRAWING.read_text()), risk
    )
    ten = sampler_surrogate.recorded_risk(
        json.loads(search_efficiency.TEN_STARTUP.read_text()), risk
    )

    def judged(figures: dict, method: str, kind: str) -> str:
        counts = figures[method][kind]
        return f"{counts['judged_risky']} of {counts['of']}"

    assert (
        f"judges {judged(four, 'sersweep', 'failed')} that failed above {risk} and "
        f"{judged(four, 'sersweep', 'healthy')} that did not" in section
    )
    assert (
        f"with 10 start-up draws, {judged(ten, 'sersweep', 'failed')} that failed and "
        f"{judged(ten, 'sersweep', 'healthy')} that did not" in section
    )
    assert (
        f"it judges {judged(four, 'random_full', 'failed')} failures and "
        f"{judged(four, 'random_full', 'healthy')} healthy draws risky" in section
    )
