"""Search efficiency on the demo corpus: epochs trained until a sweep first holds a trial
within 1 % of the best validation UAR known, for sersweep's search (TPE + ASHA + collapse
stopping) vs random search with full budgets, several seeds, in one run.

Best known = the best objective any trial of any sweep in this run reached. Epochs are
counted in the order trials finished (Optuna's completion times): the epochs of every trial
finished before the first trial within 1 % of it, plus that trial's epochs up to the epoch
that got there. A sweep that never gets there counts all its epochs (and is reported).

Prints one JSON object on its last line: ``ratio`` = mean epochs (TPE + ASHA + collapse) /
mean epochs (random, full budgets).

    .venv/bin/python bench/search_efficiency.py [--trials 16] [--epochs 12] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import print_json

from sweep.results import load_study, trial_curves
from sweep.runner import start_sweep
from sweep.settings import SweepSettings

METHODS = {
    "sersweep": {"sampler": "tpe", "scheduler": "asha", "stop_on_collapse": True},
    "random_full": {"sampler": "random", "scheduler": "fifo", "stop_on_collapse": False},
}


def run_sweep(method: str, seed: int, args, out: Path) -> list[tuple[int, list[float]]]:
    """Per trial in completion order: ``(epochs trained, best objective after each epoch)``."""
    settings = SweepSettings(out=str(out), space="demo", samples=args.trials,
                             max_epochs=args.epochs, name=f"{method}{seed}", seed=seed,
                             concurrency=2, num_cpus=2, **METHODS[method])  # fmt: skip
    start_sweep(settings)
    curves = trial_curves(settings)
    finished = sorted(
        (t for t in load_study(settings).trials if t.datetime_complete),
        key=lambda t: t.datetime_complete,
    )
    trials = []
    for trial in finished:
        rows = curves.get(trial.user_attrs.get("ray_trial_id"), [])
        trials.append((len(rows), [row.get("objective", float("nan")) for row in rows]))
    return trials


def epochs_to(target: float, trials: list[tuple[int, list[float]]]) -> tuple[int, bool]:
    spent = 0
    for epochs, best in trials:
        for epoch, value in enumerate(best, 1):
            if value >= target:
                return spent + epoch, True
        spent += epochs
    return spent, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for method in METHODS:
                runs[method, seed] = run_sweep(method, seed, args, Path(tmp) / f"{method}{seed}")
    best_known = max(v for trials in runs.values() for _, best in trials for v in best if v == v)
    target = 0.99 * best_known
    table = {method: [] for method in METHODS}
    for (method, seed), trials in runs.items():
        epochs, reached = epochs_to(target, trials)
        best = max((v for _, b in trials for v in b if v == v), default=float("nan"))
        table[method].append({"seed": seed, "epochs": epochs, "reached": reached,
                              "total_epochs": sum(e for e, _ in trials), "best": best})  # fmt: skip
        print(method, table[method][-1], flush=True)

    def mean_epochs(method: str) -> float:
        return sum(r["epochs"] for r in table[method]) / len(table[method])

    print_json({
        "benchmark": "search_efficiency", "trials": args.trials, "epochs": args.epochs,
        "seeds": args.seeds, "best_known_val_uar": round(best_known, 4),
        "target": round(target, 4), "epochs_sersweep": mean_epochs("sersweep"),
        "epochs_random_full": mean_epochs("random_full"),
        "reached_sersweep": sum(r["reached"] for r in table["sersweep"]),
        "reached_random_full": sum(r["reached"] for r in table["random_full"]),
        "ratio": round(mean_epochs("sersweep") / mean_epochs("random_full"), 3),
        "runs": table, "cpus": os.cpu_count(),
    })  # fmt: skip


if __name__ == "__main__":
    main()
