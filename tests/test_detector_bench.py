"""The detector benchmark replays the recorded SGAN histories (it never trains): the sets are
disjoint, every figure it reports is defined, and it says when the histories were recorded
with other model code."""

import ast
import json
import shutil
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
    pairs = {
        name: {(r["space"], r["seed"]) for r in runs if r["set"] == name}
        for name in ("calibration", "evaluation")
    }
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
    for block in ("game", "by_construction"):
        figures_of = evaluation[block]
        assert figures_of["controls"] == mechanism["controls"]
        assert (
            figures_of["precision_90"][0]
            <= figures_of["precision"]
            <= figures_of["precision_90"][1]
        )
        assert figures_of["recall_90"][0] <= figures_of["recall"] <= figures_of["recall_90"][1]
    assert (
        evaluation["game"]["forced"] + evaluation["by_construction"]["forced"]
        == mechanism["forced"]
    )


def test_the_histories_were_recorded_with_the_code_that_trains_today():
    """The replayed figures stand for today's detector only while the histories' training
    code is today's: any change to what a recorded run trains fails here until
    ``bench/record_histories.py`` records them again."""
    done = replay()
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["cache_stale"] is False, done.stderr


def published(block: dict) -> str:
    """A block of the replay as BENCHMARKS.md and docs/collapse.md write it."""

    def interval(bounds):
        return f"{bounds[0]:.2f}–{bounds[1]:.2f}"

    return (
        f"precision {block['precision']:.2f} ({interval(block['precision_90'])}), "
        f"recall {block['recall']:.2f} ({interval(block['recall_90'])}), "
        f"median delay {block['median_delay']:g}"
    )


def test_the_published_detector_figures_are_the_replays():
    done = replay()
    assert done.returncode == 0, done.stderr[-2000:]
    evaluation = json.loads(done.stdout.splitlines()[-1])["evaluation"]
    benchmarks = (ROOT / "BENCHMARKS.md").read_text()
    (row,) = [
        line
        for line in benchmarks.splitlines()
        if line.startswith("| 7 | collapse detector, **out of sample**")
    ]
    docs = " ".join((ROOT / "docs" / "collapse.md").read_text().split())  # lines rewrapped
    for block in ("game", "by_construction", "mechanism"):
        assert published(evaluation[block]) in row, block
        assert published(evaluation[block]) in docs, block
    controls = evaluation["mechanism"]
    called = f"{controls['controls_called_failed']} of {controls['controls']} controls"
    assert called in row and called in docs
    outcome = evaluation["outcome"]
    (outcome_row,) = [
        line
        for line in benchmarks.splitlines()
        if line.startswith("| 7 | collapse detector, outcome evaluation")
    ]
    stopped = f"{outcome['top_10pct_stopped']} of {outcome['top_10pct_draws']} top draws stopped"
    saved = f"{100 * outcome['worse_half_epochs_saved']:.1f} % of the worse half's epochs saved"
    for text in (outcome_row, docs):
        assert stopped in text and saved in text


def test_histories_of_other_code_are_called_stale(tmp_path):
    payload = json.loads(HISTORIES.read_text())
    payload["code_hash"] = "0" * 16
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(payload))
    done = replay("--histories", stale)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["cache_stale"] is True
    assert "rerun bench/record_histories.py" in done.stderr


def test_the_oracle_calibration_replays_to_its_published_figures():
    command = [sys.executable, str(ROOT / "bench" / "oracle_calibration.py")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["cache_stale"] is False  # recorded with today's model code and oracle
    (row,) = [
        line
        for line in (ROOT / "BENCHMARKS.md").read_text().splitlines()
        if line.startswith("| 7 | collapse detector, oracle calibration")
    ]
    docs = " ".join((ROOT / "docs" / "collapse.md").read_text().split())
    coverage = figures["controls_last3"]["coverage"]["median"]
    published = [
        f"AUC {figures['best_sample_auc']:.2f}",
        f"reaches {figures['chance_auc_90']:.2f}",
        f"cover {coverage:.2f} of held-out rows",
        f"KID {figures['kid_over_real']} times",
        f"at {figures['best_val_uar_auc']:.2f}",
    ]
    for text in published:
        assert text in row, text
    assert f"is {figures['best_sample_auc']:.2f}, where random scores reach" in docs
    assert f"cover a median {coverage:.2f} of the" in docs
    assert f"reaches {figures['best_val_uar_auc']:.2f}" in docs


def test_the_history_hash_follows_what_the_library_does_not_where_it_lives(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from record_histories import model_code_hash

    for part in ("sermodels", "search_spaces"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    recorded = model_code_hash(tmp_path)
    assert recorded == model_code_hash(ROOT)

    home = tmp_path / "sermodels" / "training" / "diversity.py"
    text = home.read_text()
    tree = ast.parse(text)
    moved = [node for node in tree.body if isinstance(node, ast.FunctionDef)][-1]
    lines = text.splitlines(keepends=True)
    imports = [
        ast.get_source_segment(text, n)
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    body = "".join(lines[moved.lineno - 1 - len(moved.decorator_list) : moved.end_lineno])
    (home.parent / "moved.py").write_text(
        '"""Moved here."""\n' + "\n".join(imports) + "\n\n\n" + body
    )
    rest = lines[: moved.lineno - 1 - len(moved.decorator_list)] + lines[moved.end_lineno :]
    home.write_text(
        f"from sermodels.training.moved import {moved.name}  # wiring\n" + "".join(rest)
    )
    assert model_code_hash(tmp_path) == recorded  # a definition moved between modules

    home.write_text(home.read_text() + "\nNEW_CONSTANT = 1\n")
    assert model_code_hash(tmp_path) != recorded  # a definition added
    home.write_text(home.read_text().replace("NEW_CONSTANT = 1", ""))
    assert model_code_hash(tmp_path) == recorded
    (home.parent / "moved.py").write_text(
        (home.parent / "moved.py").read_text().replace("    ", "    x = 0\n    ", 1)
    )
    assert model_code_hash(tmp_path) != recorded  # a moved definition changed


def test_a_recorders_own_code_is_hashed_as_definitions_not_layout(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import importlib.util

    from record_histories import function_definitions

    def definitions_of(source: str) -> list[str]:
        path = tmp_path / f"recorder_{abs(hash(source))}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return function_definitions([module.record])

    recorded = definitions_of("def record(seed: int) -> dict:\n    return {'seed': seed}\n")
    assert (
        definitions_of(
            'def record(seed):\n    """Worded."""\n    # a comment\n    return {\n'
            "        'seed': seed,\n    }\n"
        )
        == recorded
    )  # type hints, docstring, comment and layout
    assert definitions_of("def record(seed):\n    return {'seed': seed + 1}\n") != recorded
