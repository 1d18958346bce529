"""The search-efficiency benchmark's arithmetic and its recorded reference (it never trains
here): epochs to a quality level are interpolated between budgets, a ratio is undefined when
sersweep never gets there, the interval comes from resampling sweeps, sersweep's pick is the
re-evaluation's (mean less one standard error) and its epochs include the re-evaluation's,
and the reference's target is its pick's held-out quality."""

import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402
import record_reference  # noqa: E402
import search_efficiency  # noqa: E402

from sweep.reeval import FRESH_SEED_OFFSET  # noqa: E402

BUDGETS = [16, 32, 64]


def row(*points: tuple[float, float]) -> dict:
    """One sweep's outcome at each budget: (epochs, quality) per budget."""
    return {size: {"epochs": e, "quality": q} for size, (e, q) in zip(BUDGETS, points, strict=True)}


def test_epochs_to_a_level_are_interpolated_between_budgets():
    rows = [row((100, 0.5), (200, 0.6), (400, 0.7))]
    assert common.epochs_to_quality(rows, 0.5, BUDGETS) == 100
    assert common.epochs_to_quality(rows, 0.65, BUDGETS) == pytest.approx(300)
    assert common.epochs_to_quality(rows, 0.71, BUDGETS) is None


def test_the_ratio_is_undefined_when_sersweep_never_reaches_random_searchs_quality():
    ours = [row((100, 0.5), (200, 0.5), (400, 0.5))] * 4
    theirs = [row((100, 0.5), (200, 0.6), (400, 0.7))] * 4
    spread = search_efficiency.ratio_with_spread(ours, theirs, BUDGETS, np.random.default_rng(0))
    assert spread["ratio"] is None and spread["beyond"] is True
    assert spread["ratio_interval"] is None and spread["ratio_defined_share"] == 0


def test_the_ratio_interval_comes_from_resampling_each_methods_sweeps():
    ours = [row((100, 0.6 + d), (200, 0.7 + d), (400, 0.72 + d)) for d in (0, 0.01, 0.02)]
    theirs = [row((100, 0.5), (200, 0.6), (400, q)) for q in (0.66, 0.68, 0.70)]
    spread = search_efficiency.ratio_with_spread(ours, theirs, BUDGETS, np.random.default_rng(0))
    # random search's 64-trial mean (0.68) is reached between sersweep's budgets 16 and 32
    level_share = (0.68 - 0.61) / (0.71 - 0.61)
    assert spread["ratio"] == pytest.approx((100 + level_share * 100) / 400, abs=1e-3)
    low, high = spread["ratio_interval"]
    assert low < spread["ratio"] < high and spread["ratio_defined_share"] == 1


def sweep_trial(number: int, value: float, epochs: int = 6) -> dict:
    return {
        "number": number,
        "state": "COMPLETE",
        "value": value,
        "epochs": epochs,
        "overrides": {"sgan.d_lr": number, "train.seed": number},
        "verdicts": [],
    }


def seed_runs(trial: dict, values: list[float]) -> dict:
    """Fresh-seed runs of ``trial`` whose every epoch scores its seed's value."""
    runs = {}
    for i, value in enumerate(values):
        spec = search_efficiency._fresh(trial, i)
        assert spec["seed"] == trial["number"] + FRESH_SEED_OFFSET + i  # as sweep.reeval seeds
        runs[search_efficiency._key(spec)] = {**spec, "val_uar": [value] * 6, "epochs": 6}
    return runs


def test_sersweeps_pick_is_the_best_mean_less_one_standard_error_and_pays_its_epochs():
    steady, noisy, third = sweep_trial(0, 0.70), sweep_trial(1, 0.75), sweep_trial(2, 0.60)
    runs = {
        **seed_runs(steady, [0.66, 0.68, 0.67]),
        **seed_runs(noisy, [0.9, 0.5, 0.7]),
        **seed_runs(third, [0.5, 0.5, 0.5]),
    }
    assert statistics.fmean([0.9, 0.5, 0.7]) > statistics.fmean([0.66, 0.68, 0.67])
    leaders = search_efficiency._leaders([steady, noisy, third])
    assert search_efficiency.reeval_pick(leaders, runs) is steady
    for seed in record_reference.HELD_OUT:
        spec = search_efficiency._spec(steady, seed)
        runs[search_efficiency._key(spec)] = {**spec, "quality": 0.6 + (seed - 2000) / 100}
    outcome = search_efficiency.outcome("sersweep", [steady, noisy, third], runs)
    assert outcome == {"quality": pytest.approx(0.61), "epochs": 3 * 6 + 9 * 6}
    # under ASHA the same pick and the same re-evaluation; a trial stopped at its rung pays
    # only the epochs it trained
    third["epochs"] = 2
    outcome = search_efficiency.outcome("sersweep_asha", [steady, noisy, third], runs)
    assert outcome == {"quality": pytest.approx(0.61), "epochs": 2 * 6 + 2 + 9 * 6}


def test_random_search_picks_its_best_single_value_and_pays_only_its_trials():
    trials = [sweep_trial(0, 0.70, epochs=6), sweep_trial(1, 0.75, epochs=4)]
    runs = {}
    for seed in record_reference.HELD_OUT:
        spec = search_efficiency._spec(trials[1], seed)
        runs[search_efficiency._key(spec)] = {**spec, "quality": 0.5}
    assert search_efficiency.outcome("random_full", trials, runs) == {"quality": 0.5, "epochs": 10}


def test_the_failure_share_counts_the_second_half_by_completion():
    trials = [sweep_trial(i, 0.5) for i in range(4)]
    trials[0]["verdicts"] = ["mode_collapse"]  # first half: not counted
    trials[3]["verdicts"] = ["nan"]
    assert search_efficiency.failure_share(trials) == 0.5


def test_the_recorded_reference_target_is_its_picks_held_out_quality():
    reference = json.loads(record_reference.OUT.read_text())
    held_out = reference["pick"]["held_out"]
    assert held_out["seeds"] == record_reference.HELD_OUT
    assert reference["target"] == held_out["mean"]
    assert held_out["mean"] == pytest.approx(statistics.fmean(held_out["values"]), abs=1e-4)
    assert reference["trials"] >= 64 and reference["seed"] not in range(100)
    numbers = {r["number"]: r for r in reference["runs"]}
    assert numbers[reference["pick"]["optuna_trial"]]["state"] == "COMPLETE"
    assert reference["corpus"]["valid_idx"] == record_reference.VALID_FOLDS
    # the re-evaluation's fresh seeds are not the held-out ones
    assert not set(record_reference.HELD_OUT) & set(
        range(FRESH_SEED_OFFSET, FRESH_SEED_OFFSET + 100)
    )


@pytest.fixture(scope="module")
def recording() -> tuple[dict, dict] | None:
    """The recorded comparison and the figures its replay computes (None when unrecorded)."""
    if not search_efficiency.RUNS.is_file():
        return None
    payload = json.loads(search_efficiency.RUNS.read_text())
    target = json.loads(record_reference.OUT.read_text())["target"]
    return payload, search_efficiency.figures(payload, target)


def test_benchmarks_publishes_the_recorded_target_and_what_the_runs_are(recording):
    text = (ROOT / "BENCHMARKS.md").read_text()
    reference = json.loads(record_reference.OUT.read_text())
    assert f"target {reference['target']:.3f}" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| 8 | search efficiency")]
    if recording is None:
        assert "not recorded" in row
        return
    payload, figures = recording
    is_stale = payload["code_hash"] != record_reference.code_hash()
    assert (common.STALE_NOTE in row) == is_stale, "row 8 must say whether it is stale"
    ratio = figures["ratio"]
    assert ("undefined" if ratio is None else f"ratio {ratio:.2f}") in row
    assert figures["ratio_interval"] is not None
    low, high = figures["ratio_interval"]
    assert f"interval {low:.2f}-{high:.2f}" in row
    for method, other in figures["other_methods"].items():
        value = other["ratio"]
        assert f"`{method}: " + ("undefined" if value is None else f"ratio {value:.2f}") in row
    assert len(payload["sweeps"]["sersweep"]) >= 3


# how BENCHMARKS.md's table names each method
TABLE_NAMES = {
    "sersweep": "sersweep",
    "sersweep_asha": "sersweep with `--scheduler asha`",
    "random_full": "random_full",
}


def table_row(method: str, per_budget: dict, budgets: list[int]) -> str:
    """A method's row of BENCHMARKS.md's table: mean quality (interval), mean epochs."""
    cells = []
    for size in budgets:
        quality, epochs = per_budget[str(size)]["quality"], per_budget[str(size)]["epochs"]
        low, high = quality["interval"]
        cells.append(f"{quality['mean']:.3f} ({low:.3f}-{high:.3f}), {epochs['mean']:.0f} epochs")
    return f"| {TABLE_NAMES[method]} | " + " | ".join(cells) + " |"


def test_benchmarks_table_failure_share_and_landscape_are_the_replays(recording):
    if recording is None:
        pytest.skip("no search-efficiency recording")
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/search_efficiency.py")[1]
    payload, figures = recording
    for method, per_budget in figures["per_method"].items():
        assert table_row(method, per_budget, payload["budgets"]) in section
    shares = figures["second_half_failure_share"]
    for method in ("sersweep", "random_full"):
        low, high = shares[method]["interval"]
        assert f"{shares[method]['mean']:.3f} ({low:.3f}-{high:.3f})" in section
    ratio = figures["failure_share_ratio"]
    assert ("undefined" if ratio is None else f"ratio {ratio:.2f}") in section
    after = {
        m: f"{a['failures']} of {a['trials']}" for m, a in figures["failures_after_first"].items()
    }
    prose = " ".join(section.split())
    assert f"sersweep's trials failed {after['sersweep']} times" in prose
    assert f"random search's {after['random_full']};" in prose
    landscape = figures["seed_landscape"]
    assert (
        f"finds {landscape['close_pairs']} close pairs differing by "
        f"{landscape['close_pair_sd']:.3f} per run against a fresh-seed spread of "
        f"{landscape['fresh_seed_sd']:.3f} ({landscape['fresh_seed_configs']} configurations)"
    ) in " ".join(section.split())


def test_benchmarks_publishes_what_each_method_draws_by_trial_number(recording):
    if recording is None:
        pytest.skip("no search-efficiency recording")
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/search_efficiency.py")[1]
    for row in draws_rows(recording[1]["draws_by_trial_number"]):
        assert row in section


def draws_rows(draws: dict) -> list[str]:
    """BENCHMARKS.md's rows of what each method draws, per group of trial numbers."""
    rows = []
    for first, last in search_efficiency.DRAW_GROUPS:
        cells = []
        for method in TABLE_NAMES:
            group = draws[method][f"{first}-{last}"]
            quality = group["quality"]
            low, high = quality["interval"]
            cells.append(
                f"{quality['mean']:.3f} ({low:.3f}-{high:.3f}), "
                f"{group['whole_budget']} of {group['trials']}"
            )
        rows.append(f"| {first}-{last} | " + " | ".join(cells) + " |")
    return rows


def border_rows(border: dict) -> list[str]:
    """BENCHMARKS.md's rows of where each method draws and fails (``collapse_border``)."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = []
    for method, name in TABLE_NAMES.items():
        high, low = border[method]["high"], border[method]["low"]
        cells = [
            cell(high["drawn_share"]),
            cell(high["failure_share"]),
            cell(low["failure_share"]),
            f"{cell(high['quality'])} / {cell(low['quality'])}",
            cell(border[method]["best_tenth_high_share"]),
        ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def test_benchmarks_publishes_where_each_method_draws_and_fails(recording):
    if recording is None:
        pytest.skip("no search-efficiency recording")
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/search_efficiency.py")[1]
    border = recording[1]["collapse_border"]
    assert f"generator learning rate of {border['g_lr']}" in " ".join(section.split())
    for row in border_rows(border):
        assert row in section


@pytest.mark.parametrize(
    "name, heading",
    [
        ("ten_startup_trials", "**With 10 random start-up trials**"),
        ("without_redrawing", "**Without failure-risk redrawing**"),
    ],
)
def test_benchmarks_publishes_the_earlier_recordings(name, heading):
    """Each earlier recording (10 random start-up trials; 4 with TPE's every proposal taken)
    stays replayable beside today's, against the reference search of its own code: its
    table, ratio, failure share, draws by trial number and where they fail, as BENCHMARKS.md
    gives them."""
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/search_efficiency.py")[1]
    section = section.split(heading)[1].split("\n**")[0]
    runs, reference_file = search_efficiency.EARLIER[name]
    payload = json.loads(runs.read_text())
    earlier = search_efficiency.earlier_figures(name)
    reference = json.loads(reference_file.read_text())
    assert reference["code_hash"] == payload["code_hash"], "a reference of the same code"
    assert f"target was {earlier['target']:.3f}" in section
    for method, per_budget in earlier["per_method"].items():
        assert table_row(method, per_budget, payload["budgets"]) in section
    low, high = earlier["ratio_interval"]
    assert f"ratio {earlier['ratio']:.2f} ({low:.2f}-{high:.2f})" in section
    assert f"failure-share ratio {earlier['failure_share_ratio']:.2f}" in section
    for row in [
        *draws_rows(earlier["draws_by_trial_number"]),
        *border_rows(earlier["collapse_border"]),
    ]:
        assert row in section


def test_the_collapse_border_tells_where_a_method_draws_from_how_often_it_fails_there():
    budget = search_efficiency.load_space(search_efficiency.SPACE).max_epochs
    high, low = search_efficiency.HIGH_G_LR, search_efficiency.HIGH_G_LR / 10

    def trial(g_lr: float, settled: float, verdicts=(), epochs: int = budget) -> dict:
        return {
            "overrides": {"sgan.g_lr": g_lr, "sgan.d_lr": 1e-3},
            "verdicts": list(verdicts),
            "epochs": epochs,
            "val_uar": ([0.3] * (budget - 3) + [settled] * 3)[:epochs],
        }

    trials = [
        trial(high, 0.7),
        trial(high * 3, 0.0, ["mode_collapse"], epochs=2),  # stopped: no settled value
        *(trial(low, 0.4 + i / 100) for i in range(7)),
        trial(low, 0.5, ["d_overpowers"]),  # a label, not a failure under val UAR
    ]
    border = search_efficiency.collapse_border({"sweeps": {"m": [{"trials": trials}]}})
    assert border["g_lr"] == high
    assert border["m"]["high"] == {"drawn_share": 0.2, "failure_share": 0.5, "quality": 0.7}
    assert border["m"]["low"]["drawn_share"] == 0.8 and border["m"]["low"]["failure_share"] == 0
    assert border["m"]["low"]["quality"] == pytest.approx(
        (sum(0.4 + i / 100 for i in range(7)) + 0.5) / 8, abs=1e-4
    )
    # 9 whole runs: the best tenth is the one best, drawn at a high G learning rate
    assert border["m"]["best_tenth_high_share"] == 1.0


def test_draws_by_trial_number_leave_out_trials_without_a_whole_budget():
    budget = search_efficiency.load_space(search_efficiency.SPACE).max_epochs

    def trial(number: int, settled: float, epochs: int = budget) -> dict:
        return {"number": number, "val_uar": ([0.3] * (budget - 3) + [settled] * 3)[:epochs]}

    sweeps = [
        {"trials": [trial(0, 0.4), trial(1, 0.6), trial(2, 0.9, epochs=2), trial(10, 0.5)]},
        {"trials": [trial(0, 0.2), trial(12, 0.7)]},
    ]
    draws = search_efficiency.draws_by_trial_number(
        {"sweeps": {"m": sweeps}}, np.random.default_rng(0)
    )["m"]
    # per sweep the mean of its whole runs, then the mean over sweeps: (0.5 + 0.2) / 2
    assert draws["1-10"] == {
        "quality": {"mean": 0.35, "interval": [0.2, 0.5]},
        "whole_budget": 3,
        "trials": 4,
    }
    assert draws["11-16"]["quality"]["mean"] == pytest.approx(0.6)
    assert draws["17-32"] == {
        "quality": {"mean": None, "interval": None},
        "whole_budget": 0,
        "trials": 0,
    }


def test_benchmarks_publishes_what_one_shared_seed_did_to_the_search():
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/search_efficiency.py")[1]
    landscape = search_efficiency.seed_landscape(json.loads(search_efficiency.ONE_SEED.read_text()))
    assert f"finds {landscape['close_pairs']} pairs" in section
    assert f"differs by **{landscape['close_pair_sd']:.3f} per run**" in section
    assert f"({landscape['fresh_seed_configs']} configurations" in section
    assert f"differs by **{landscape['fresh_seed_sd']:.3f}**" in section
    effects = landscape["seed_effects"]
    assert f"seed 2000 scores {effects['2000']:.2f} above" in section
    assert f"seed 2002 {-effects['2002']:.2f} below" in section


def test_seed_landscape_tells_a_shared_seed_from_seed_noise():
    def trial(d_lr: float, settled: float) -> dict:
        overrides = {"sgan.d_lr": d_lr, "sgan.g_lr": d_lr, "sgan.latent_dim": 16}
        overrides["sgan.n_node"] = 32
        return {"overrides": overrides, "val_uar": [0.3, 0.3, 0.3] + [settled] * 3}

    def run(d_lr: float, seed: int, value: float) -> dict:
        return {**trial(d_lr, value), "seed": seed, "quality": value}

    payload = {
        # 1e-3 and 1.05e-3 are close; 2e-3 is no one's neighbour
        "sweeps": {"m": [{"trials": [trial(1e-3, 0.50), trial(1.05e-3, 0.52), trial(2e-3, 0.1)]}]},
        # seed 1 adds 0.1 to every configuration: that shared effect is not seed noise
        "seed_runs": [
            *(run(d_lr, 0, value) for d_lr, value in ((1e-3, 0.4), (2e-3, 0.2), (4e-3, 0.6))),
            *(run(d_lr, 1, value) for d_lr, value in ((1e-3, 0.5), (2e-3, 0.3), (4e-3, 0.7))),
            # a seed of one configuration: no shared effect to take out
            run(8e-3, 5, 0.3),
            run(8e-3, 6, 0.5),
        ],
    }
    landscape = search_efficiency.seed_landscape(payload)
    assert landscape["close_pairs"] == 1
    assert landscape["close_pair_sd"] == pytest.approx(0.02 / 2**0.5, abs=1e-4)
    assert landscape["fresh_seed_configs"] == 4
    # three configurations without seed noise, one whose two seeds are 0.2 apart
    assert landscape["fresh_seed_sd"] == pytest.approx((0.02 / 4) ** 0.5, abs=1e-4)
    assert landscape["seed_effects"] == {"0": -0.05, "1": 0.05}


def test_benchmarks_says_how_far_a_recording_under_way_has_got():
    if not search_efficiency.PARTIAL.is_file():
        pytest.skip("no search-efficiency recording under way")
    progress = json.loads(search_efficiency.PARTIAL.read_text())
    done = sum(len(sweeps) for sweeps in progress["sweeps"].values())
    section = (ROOT / "BENCHMARKS.md").read_text().split("## bench/search_efficiency.py")[1]
    assert f"{done} sweeps of {progress['trials']} trials" in section
    # the code changed under it: it cannot go on (finish it first, or remove it)
    assert progress["code_hash"] == record_reference.code_hash()


def test_a_recording_goes_on_from_its_saved_part_and_refuses_one_of_other_code(tmp_path):
    partial = tmp_path / "partial.json"
    progress = search_efficiency.load_progress(partial, 64, "code")
    assert progress["budgets"] == [8, 16, 32, 64] and progress["seed_runs"] == {}
    to_record = search_efficiency.sweeps_to_record(progress, seeds=2)
    methods = list(search_efficiency.METHODS)
    assert to_record == [(seed, method) for seed in (0, 1) for method in methods]
    # the first seed of every method recorded, then the recording stopped
    for method in methods:
        progress["sweeps"][method].append({"seed": 0, "trials": []})
    partial.write_text(json.dumps(progress))
    again = search_efficiency.load_progress(partial, 64, "code")
    assert search_efficiency.sweeps_to_record(again, seeds=2) == [(1, m) for m in methods]
    for other in ((32, "code"), (64, "new")):
        with pytest.raises(ValueError, match="remove it to start again"):
            search_efficiency.load_progress(partial, *other)


def test_the_reference_hash_follows_what_the_sweep_package_does_not_its_layout(tmp_path):
    from record_histories import package_definitions

    shutil.copytree(
        ROOT / "sweep", tmp_path / "sweep", ignore=shutil.ignore_patterns("__pycache__")
    )
    recorded = package_definitions("sweep", tmp_path)
    assert recorded == package_definitions("sweep", ROOT)

    search = tmp_path / "sweep" / "search.py"
    text = search.read_text()
    search.write_text(
        "# a comment\n"
        + text.replace('"""', '"""Worded otherwise. ', 1).replace(
            "group=True, constant_liar=True", "group=True,\n        constant_liar=True"
        )
    )
    assert package_definitions("sweep", tmp_path) == recorded  # comments, docstrings, layout
    search.write_text(text.replace("constant_liar=True", "constant_liar=False"))
    assert package_definitions("sweep", tmp_path) != recorded  # the sampler changed


def test_quality_at_equal_epochs_reads_each_curve_at_random_searchs_epochs():
    budgets = [8, 16]

    def curve(*points: tuple[float, float]) -> dict:
        return {
            size: {"epochs": e, "quality": q} for size, (e, q) in zip(budgets, points, strict=True)
        }

    table = {
        "random_full": [curve((50, 0.45), (100, 0.5))] * 3,
        "sersweep": [curve((80, 0.5), (150, 0.6))] * 3,
    }
    figures = search_efficiency.at_equal_epochs(table, budgets, np.random.default_rng(0))
    assert figures["16"]["epochs"] == 100
    assert figures["16"]["sersweep"]["quality"] == pytest.approx(0.5 + 20 / 70 * 0.1, abs=1e-4)
    assert figures["16"]["random_full"]["quality"] == 0.5
    # sersweep's curve starts at 80 epochs: at random search's 50 it has no value
    assert figures["8"]["sersweep"] == {"quality": None, "interval": None, "defined_share": 0}


def test_a_sweeps_failure_share_is_its_second_halfs():
    failed = [True, True, False, False, True, False, False, False]
    assert search_efficiency.second_half_share(failed) == 0.25


def test_failures_after_the_first_count_what_each_sweep_could_still_learn_from():
    def trial(verdicts=()) -> dict:
        return {"verdicts": list(verdicts)}

    fails = trial(["mode_collapse"])
    flagged_only = trial(["d_overpowers"])  # a label, not a verdict the sweep stops on
    payload = {
        "sweeps": {
            "sersweep": [
                {"trials": [trial(), fails, trial(), fails, flagged_only]},
                {"trials": [trial(), trial()]},  # no failure: nothing after one
            ],
            "random_full": [{"trials": [fails, fails, fails]}],
        }
    }
    assert search_efficiency.failures_after_first(payload) == {
        "sersweep": {"failures": 1, "trials": 3},
        "random_full": {"failures": 2, "trials": 2},
    }
