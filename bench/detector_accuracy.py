"""How right the collapse detector is: a labelled set of SGAN runs on the demo corpus (the
cases of ``bench/common.py``, each built to end healthy or in one failure mode), several
seeds, full budgets, judged by the detector as the sweep judges them (epoch by epoch).

Ground truth is an oracle with hindsight, independent of the detector's warm-up and
patience: a mode is present when its defining signal holds from some epoch (its onset) to
the end of the run -- a non-finite loss (NaN: from its first epoch); D's accuracy on fakes
<= 0.05 or a dead D gradient (g_overpowers); D >= 0.95 accurate on real and fake
(d_overpowers); sample diversity < 0.2 (mode_collapse); a loss > 1e4 (diverging). The true
mode is the case's design label when present, else the present mode with the earliest
onset, else healthy. Delay = verdict epoch - true onset, for runs called correctly.

Random draws of the demo space (full budgets, no design label: the oracle's label) widen the
set of healthy and failing runs the detector must get right.

Prints one JSON object on its last line: overall ``precision`` (runs called failed that
failed in the called mode), ``recall`` (failing runs called in their mode), mean
``delay_epochs``, ``per_mode`` precision / recall / delay, how often a case's design label
was what happened (``design_label_held``), and the same figures for other detector settings
replayed on the same runs (``alternative_settings``).

    .venv/bin/python bench/detector_accuracy.py [--epochs 12] [--seeds 3] [--random 8]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

from common import CASES, case_space, enqueued_sweep, print_json, results_by_trial

from sweep.collapse import FAILURES, CollapseDetector
from sweep.runner import start_sweep
from sweep.settings import SweepSettings

# replayed on the same runs beside the defaults (patience 3, warmup 1): the first default
# (warmup 2), and shorter windows that answer sooner -- do they call healthy runs failed?
ALTERNATIVES = ({"warmup": 2}, {"patience": 2}, {"warmup": 0}, {"patience": 2, "warmup": 0})


def _value(row: dict, key: str) -> float:
    value = row.get(key)
    return value if isinstance(value, (int, float)) else math.nan


SIGNALS = {
    "nan": lambda r: bool(r.get("nonfinite")) or not all(
        math.isfinite(_value(r, k)) for k in ("d_loss", "g_loss")),
    "g_overpowers": lambda r: _value(r, "d_acc_fake") <= 0.05 or _value(r, "d_grad_norm") < 1e-6,
    "d_overpowers": lambda r: min(_value(r, "d_acc_real"), _value(r, "d_acc_fake")) >= 0.95,
    "mode_collapse": lambda r: _value(r, "diversity") < 0.2,
    "diverging": lambda r: max(_value(r, "d_loss"), _value(r, "g_loss")) > 1e4,
}  # fmt: skip


def onset(mode: str, rows: list[dict]) -> int | None:
    """First epoch from which ``mode``'s signal holds to the end (NaN: first NaN epoch)."""
    holds = [SIGNALS[mode](row) for row in rows]
    if mode == "nan":
        return rows[holds.index(True)]["epoch"] if any(holds) else None
    start = None
    for row, held in zip(rows, holds, strict=True):
        start = (start or row["epoch"]) if held else None
    return start


def truth(design: str, rows: list[dict]) -> tuple[str, int | None]:
    """The oracle's mode and onset for one run (see the module docstring)."""
    onsets = {mode: onset(mode, rows) for mode in SIGNALS}
    if onsets.get(design):
        return design, onsets[design]
    present = sorted((epoch, mode) for mode, epoch in onsets.items() if epoch)
    return (present[0][1], present[0][0]) if present else ("healthy", None)


def judge(runs: list[tuple[str, list[dict]]], settings: dict) -> list[dict]:
    """Each ``(design label, rows)`` run judged by ``CollapseDetector(**settings)`` epoch by
    epoch (replayed on the recorded signals: the verdict a sweep's trial reaches)."""
    detector, judged = CollapseDetector(**settings), []
    for design, rows in runs:
        label, true_onset = truth(design, rows)
        verdict = detector.verdict(rows)
        right = verdict.name == label != "healthy"
        judged.append({"design": design, "label": label, "called": verdict.name,
                       "true_onset": true_onset, "verdict_epoch": verdict.epoch or None,
                       "delay": verdict.epoch - true_onset if right else None})  # fmt: skip
    return judged


def score(judged: list[dict]) -> dict:
    """Overall and per-mode precision, recall and delay of judged runs."""
    per_mode = {}
    for mode in FAILURES:
        labelled = [j for j in judged if j["label"] == mode]
        called = [j for j in judged if j["called"] == mode]
        delays = [j["delay"] for j in labelled if j["delay"] is not None]
        per_mode[mode] = {
            "runs": len(labelled), "called": len(called),
            "precision": _share(sum(j["label"] == mode for j in called), len(called)),
            "recall": _share(len(delays), len(labelled)),
            "delay_epochs": round(sum(delays) / len(delays), 2) if delays else None,
        }  # fmt: skip
    called_failed = [j for j in judged if j["called"] != "healthy"]
    failing = [j for j in judged if j["label"] != "healthy"]
    delays = [j["delay"] for j in judged if j["delay"] is not None]
    return {
        "precision": _share(sum(j["called"] == j["label"] for j in called_failed),
                            len(called_failed)),
        "recall": _share(sum(j["called"] == j["label"] for j in failing), len(failing)),
        "delay_epochs": round(sum(delays) / len(delays), 2) if delays else None,
        "healthy_called_failed": sum(j["label"] == "healthy" != j["called"] for j in judged),
        "per_mode": per_mode,
    }  # fmt: skip


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def sweep_runs(args, tmp: Path) -> tuple[list[tuple[str, list[dict]]], list[str]]:
    """The labelled cases x seeds, then random draws of the demo space (label: the oracle's),
    all with full budgets; and the verdict each trial reported."""
    trials = [{"case": c, "train.seed": 100 + s} for c in CASES for s in range(args.seeds)]
    space = case_space(tmp / "cases.yaml", CASES, args.epochs)
    settings = SweepSettings(out=str(tmp / "cases"), space=str(space), max_epochs=args.epochs,
                             name="detector", concurrency=2, num_cpus=2,
                             stop_on_collapse=False)  # fmt: skip
    enqueued_sweep(settings, trials)
    results = results_by_trial(settings)
    runs = [(CASES[r["params"]["case"]][0], r["rows"]) for r in results]
    if args.random:
        settings = SweepSettings(out=str(tmp / "random"), space="demo", max_epochs=args.epochs,
                                 name="random", samples=args.random, sampler="random",
                                 concurrency=2, num_cpus=2, stop_on_collapse=False)  # fmt: skip
        start_sweep(settings)
        drawn = results_by_trial(settings)
        runs += [("unlabelled", r["rows"]) for r in drawn]
        results += drawn
    return runs, [r["attrs"].get("verdict", "healthy") for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--random", type=int, default=8, help="random demo-space draws")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs, reported = sweep_runs(args, Path(tmp))
    judged = judge(runs, {})
    for row in judged:
        print(row, flush=True)
    designed = [j for j in judged if j["design"] != "unlabelled"]
    drawn = [j for j in judged if j["design"] == "unlabelled"]
    alternatives = {}
    for settings in ALTERNATIVES:
        replayed = judge(runs, settings)
        name = ",".join(f"{k}={v}" for k, v in settings.items())
        alternatives[name] = {
            "labelled_set": _headline(score(replayed[: len(designed)])),
            "random_draws": _headline(score(replayed[len(designed) :])),
        }
    print_json({
        "benchmark": "detector_accuracy", "epochs": args.epochs, "seeds": args.seeds,
        "runs": len(designed), **score(designed),
        "replay_mismatches": sum(j["called"] != v for j, v in zip(judged, reported, strict=True)),
        "design_label_held": sum(j["design"] == j["label"] for j in designed),
        "modes_without_cases": [m for m in FAILURES if m not in {CASES[c][0] for c in CASES}],
        "random_draws": {"runs": len(drawn), **_headline(score(drawn))},
        "random_draw_labels": dict(Counter(f"{j['label']}->{j['called']}" for j in drawn)),
        "alternative_settings": alternatives, "cpus": os.cpu_count(),
    })  # fmt: skip


def _headline(figures: dict) -> dict:
    keys = ("precision", "recall", "delay_epochs", "healthy_called_failed")
    return {k: figures[k] for k in keys}


if __name__ == "__main__":
    main()
