"""Collapse-aware stopping vs the full budget: epochs spent on SGAN configurations that
reliably fail on the demo corpus, and whether any healthy configuration was stopped.

The same enqueued trials (each case of ``bench/sweeps.py`` x seeds) run twice in one run:
a sweep with the shipped defaults (the demo space optimises val UAR, so every failure mode
stops a trial but ``d_overpowers``, which only labels it), and one that only labels and
trains every trial its full budget. The ``starved_g`` case fails as ``d_overpowers``: the
shipped default runs it to the end, and its epochs count against the ratio.

Prints one JSON object on its last line: ``ratio`` = epochs the failing trials trained with
stopping / with the full budget; ``healthy_stopped`` = healthy trials stopped (target 0);
``labels_agree`` = trials whose verdict is the same in both sweeps.

    .venv/bin/python bench/collapse_savings.py [--epochs 20] [--seeds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import emit
from sweeps import CASES, case_space, enqueued_sweep, results_by_trial

from sweep.settings import SweepSettings


def sweep(space: Path, trials: list[dict], epochs: int, stop: bool, out: Path) -> list[dict]:
    settings = SweepSettings(
        out=str(out),
        space=str(space),
        max_epochs=epochs,
        name="savings",
        concurrency=2,
        num_cpus=2,
        stop_on_collapse=stop,
        reeval_top=0,
    )
    enqueued_sweep(settings, trials)
    return results_by_trial(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="budget per trial")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    trials = [{"case": case, "train.seed": seed} for case in CASES for seed in range(args.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        space = case_space(Path(tmp) / "cases.yaml", CASES, args.epochs)
        stopped = sweep(space, trials, args.epochs, True, Path(tmp) / "stop")
        full = sweep(space, trials, args.epochs, False, Path(tmp) / "full")
    failing = {case for case, (label, _) in CASES.items() if label != "healthy"}
    rows = []
    for with_stop, without in zip(stopped, full, strict=True):
        case = with_stop["params"]["case"]
        rows.append(
            {
                "case": case,
                "seed": with_stop["params"]["train.seed"],
                "expected": CASES[case][0],
                "verdict_stop": with_stop["attrs"].get("verdict"),
                "verdict_full": without["attrs"].get("verdict"),
                "epochs_stop": len(with_stop["rows"]),
                "epochs_full": len(without["rows"]),
            }
        )
        print(rows[-1], flush=True)
    spent = sum(r["epochs_stop"] for r in rows if r["case"] in failing)
    budget = sum(r["epochs_full"] for r in rows if r["case"] in failing)
    healthy = [r for r in rows if r["case"] not in failing]
    emit(
        {
            "benchmark": "collapse_savings",
            "stop_verdicts": "shipped defaults",
            "epochs_budget": args.epochs,
            "seeds": args.seeds,
            "failing_trials": len(rows) - len(healthy),
            "healthy_trials": len(healthy),
            "failing_epochs_with_stopping": spent,
            "failing_epochs_full_budget": budget,
            "ratio": round(spent / budget, 3),
            "healthy_stopped": sum(r["epochs_stop"] < args.epochs for r in healthy),
            "labels_agree": sum(r["verdict_stop"] == r["verdict_full"] for r in rows),
            "trials": len(rows),
            "cpus": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
