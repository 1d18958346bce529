"""The selection benchmark (it never trains here): ground truth comes only from held-out
seeds, the shipped pair is chosen on the calibration corpus alone, its pick rule is the one
``sweep.reeval`` ships, the shipped default is the chosen reduction, and the figures
BENCHMARKS.md publishes are what the committed runs replay to."""

import json
import math
import re
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import record_selection  # noqa: E402
import selection  # noqa: E402
from common import STALE_NOTE  # noqa: E402

from search_spaces.objective import DEFAULT_REDUCE  # noqa: E402
from sweep.reeval import confidence_bound  # noqa: E402


def flat_run(value: float, epochs: int = 6) -> dict:
    return {"curve": [value] * epochs, "quality": value, "pickable": True}


def test_ground_truth_comes_only_from_the_seeds_no_method_read():
    # each seed of each configuration scores its own value; a seed's curve is that value
    runs = {c: {s: flat_run(0.4 + 0.1 * c + 0.01 * s) for s in range(8)} for c in range(4)}
    figures = selection.replicate(runs, np.random.default_rng(0))
    rng = np.random.default_rng(0)  # the same role draw, done here by hand
    roles = {c: list(rng.permutation(range(8))) for c in range(4)}
    trial = {c: runs[c][roles[c][0]]["quality"] for c in runs}
    held_out = {c: statistics.fmean(runs[c][s]["quality"] for s in roles[c][4:]) for c in runs}
    assert len(roles[0][4:]) == 8 - 1 - selection.REEVAL_SEEDS
    pick = max(trial, key=trial.get)
    assert figures["last"]["gap"] == pytest.approx(trial[pick] - held_out[pick])
    assert figures["last"]["regret"] == pytest.approx(max(held_out.values()) - held_out[pick])


def test_the_shipped_pair_is_the_lowest_calibration_regret_of_the_whole_pick():
    def entry(regret: float, spearman: float) -> dict:
        return {"regret": {"mean": regret}, "spearman": {"mean": spearman}}

    calibration = {
        f"{r}+reeval:{rule}": entry(0.05, 0.5)
        for r in selection.REDUCTIONS
        for rule in selection.PICK_RULES
    }
    calibration["best"] = entry(0.0, 0.9)  # a single run's figures never choose
    calibration["last+reeval:mean"] = entry(0.01, 0.6)
    calibration["smoothed:3+reeval:mean_minus_se"] = entry(0.01, 0.7)  # tie: higher Spearman
    assert selection.choose(calibration) == ("smoothed:3", "mean_minus_se")


def test_the_benchmarks_mean_minus_se_is_the_pick_rule_the_re_evaluation_ships():
    for values in ([0.6, 0.7, 0.8], [0.5, 0.5, 0.9], [0.7]):
        assert selection._score(values, "mean_minus_se") == pytest.approx(confidence_bound(values))


def published_row() -> str:
    text = (ROOT / "BENCHMARKS.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| 12 | the pick")]
    return row


@pytest.fixture(scope="module")
def replayed() -> dict:
    payload, budget, _ = selection.load_runs()
    return selection.replay(payload, budget)


def test_the_published_figures_are_what_the_committed_runs_replay_to(replayed):
    sets = replayed
    *_, is_stale = selection.load_runs()
    assert (STALE_NOTE in published_row()) == is_stale, "row 12 must say whether it is stale"
    reduction, rule = selection.choose(sets["calibration"])
    assert reduction == DEFAULT_REDUCE and rule == "mean_minus_se"  # what ships is what won
    row = published_row()
    shipped = sets["evaluation"][f"{reduction}+reeval:{rule}"]
    before = sets["evaluation"]["best"]
    every = sets["evaluation"][selection.EVERY_CONFIG]
    for figures, label in (
        (shipped, "shipped"),
        (before, "before"),
        (every, "every configuration"),
    ):
        published = re.search(rf"{label}.*?: gap ([\d.]+), Spearman ([\d.]+), regret ([\d.]+)", row)
        assert published, f"no {label} figures in BENCHMARKS.md row 12"
        gap, spearman, regret = (float(v) for v in published.groups())
        assert gap == round(figures["gap"]["mean"], 3)
        assert spearman == round(figures["spearman"]["mean"], 3)
        assert regret == round(figures["regret"]["mean"], 3)
    assert not math.isnan(shipped["gap"]["mean"])
    # the trade-off's 3 leaders x 3 seeds is the shipped re-evaluation, reached another way
    for corpus in sets.values():
        wide = corpus[f"reeval:top{selection.REEVAL_TOP}x{selection.REEVAL_SEEDS}"]
        assert wide["regret"] == corpus[f"{reduction}+reeval:{rule}"]["regret"]


def test_the_committed_runs_are_the_recording_plan_once_each():
    payload = json.loads(selection.OUT.read_text())
    assert payload["seeds"]["calibration"] >= 8 and payload["seeds"]["evaluation"] >= 16
    planned = record_selection.plan(payload["configs"], payload["seeds"])
    assert sorted(map(spec_key, payload["runs"])) == sorted(map(spec_key, planned))
    assert sum(part["runs"] for part in payload["parts"]) == len(planned)


def spec_key(spec: dict) -> tuple:
    return spec["set"], spec["config"], spec["draw"], spec["seed"]


def test_each_corpus_gets_its_own_seeds_and_its_own_configurations():
    planned = record_selection.plan(2, {"calibration": 3, "evaluation": 5})
    assert Counter(spec["set"] for spec in planned) == {"calibration": 6, "evaluation": 10}
    draws = {
        name: {spec["draw"] for spec in planned if spec["set"] == name}
        for name in ("calibration", "evaluation")
    }
    assert len(draws["calibration"]) == len(draws["evaluation"]) == 2
    assert not draws["calibration"] & draws["evaluation"]


def recording(path: Path, runs: list[dict], code_hash: str) -> None:
    payload = {"code_hash": code_hash, "recorded": "2026-01-01", "machine": "2-core CPU"}
    path.write_text(json.dumps({**payload, "seconds": 10, "runs": runs}))


def test_a_recording_in_parts_keeps_the_planned_runs_and_says_how_its_parts_went(tmp_path):
    wanted = record_selection.plan(1, {"calibration": 2, "evaluation": 2})
    unplanned = {"set": "calibration", "config": 5, "draw": 505, "seed": 0}
    path = tmp_path / "runs.json"
    recording(
        path,
        [{**spec, "history": []} for spec in [*wanted[:3], unplanned]],
        record_selection.code_hash(),
    )
    runs, parts = record_selection.kept_runs(path, wanted)
    assert [spec_key(run) for run in runs] == [spec_key(spec) for spec in wanted[:3]]
    assert parts == [{"recorded": "2026-01-01", "machine": "2-core CPU", "runs": 4, "seconds": 10}]
    assert record_selection.kept_runs(tmp_path / "none.json", wanted) == ([], [])


def test_keeping_runs_of_other_code_ends_in_one_line_and_leaves_the_file(tmp_path):
    path = tmp_path / "runs.json"
    recording(path, [], "0" * 16)
    before = path.read_text()
    script = ROOT / "bench" / "record_selection.py"
    done = subprocess.run(
        [sys.executable, str(script), "--keep", "--out", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert str(path) in done.stderr and "other code" in done.stderr
    assert path.read_text() == before and not path.with_suffix(".part").exists()


def test_the_published_trade_off_of_leaders_and_seeds_is_what_the_runs_replay_to(replayed):
    sets = replayed
    rows = published_table("**Would more leaders or more seeds buy regret?**")
    assert len(rows) == len(selection.WIDER_TOP)
    for top, cells in zip(selection.WIDER_TOP, rows, strict=True):
        assert len(cells) == selection.REEVAL_SEEDS, cells
        for seeds, (evaluation, calibration) in enumerate(cells, start=1):
            method = f"reeval:top{top}x{seeds}"
            for corpus, published in (("evaluation", evaluation), ("calibration", calibration)):
                replayed = sets[corpus][method]["regret"]["mean"]
                assert float(published) == round(replayed, 3), (method, corpus)


def test_an_empty_plan_writes_a_recording_stamped_with_the_code_it_ran(tmp_path):
    path = tmp_path / "runs.json"
    script = ROOT / "bench" / "record_selection.py"
    done = subprocess.run(
        [sys.executable, str(script), "--configs", "0", "--out", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(path.read_text())
    assert payload["runs"] == [] and payload["code_hash"] == record_selection.code_hash()
    assert [part["runs"] for part in payload["parts"]] == [0]
    assert payload["seeds"] == {"calibration": 8, "evaluation": 16}


def test_more_seeds_are_judged_on_one_truth_the_same_for_every_seed_count():
    seeds = selection.MORE_SEEDS_NEED
    runs = {c: {s: flat_run(0.4 + 0.02 * c + 0.01 * s) for s in range(seeds)} for c in range(5)}
    figures = selection.replicate(runs, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # the same role draw, done here by hand
    orders = {c: list(rng.permutation(range(seeds))) for c in range(5)}
    truth = {
        c: statistics.fmean(runs[c][s]["quality"] for s in orders[c][1 + selection.MORE_SEEDS :])
        for c in runs
    }
    for count in range(1, selection.MORE_SEEDS + 1):
        known = {c: [runs[c][s]["quality"] for s in orders[c][1 : 1 + count]] for c in runs}
        pick = max(known, key=lambda c: confidence_bound(known[c]))
        regret = figures[f"one_truth:top24x{count}"]["regret"]
        assert regret == pytest.approx(max(truth.values()) - truth[pick])
    assert not any(
        m.startswith("one_truth")
        for m in selection.replicate(
            {c: dict(list(s.items())[: seeds - 1]) for c, s in runs.items()},
            np.random.default_rng(3),
        )
    )


def test_the_published_seeds_on_one_truth_are_what_the_runs_replay_to(replayed):
    rows = published_table("**More seeds per leader, on one truth.**")
    assert len(rows) == len(selection.MORE_SEEDS_TOP)
    for top, cells in zip(selection.MORE_SEEDS_TOP, rows, strict=True):
        assert len(cells) == selection.MORE_SEEDS, cells
        for count, (regret, gap) in enumerate(cells, start=1):
            figures = replayed["evaluation"][f"one_truth:top{top}x{count}"]
            assert float(regret) == round(figures["regret"]["mean"], 3), (top, count)
            assert float(gap) == round(figures["gap"]["mean"], 3), (top, count)
    assert not any(method.startswith("one_truth") for method in replayed["calibration"])


def published_table(heading: str) -> list[list[tuple[str, str]]]:
    """The cells ``value (value)`` of each row of the leaders table under ``heading`` in
    BENCHMARKS.md."""
    text = (ROOT / "BENCHMARKS.md").read_text()
    section = text[text.index(heading) :]
    section = section[: section.index("\n\n", section.index("| leaders K"))]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+", line)]
    return [re.findall(r"([\d.]+) \(([\d.]+)\)", line) for line in rows]
