"""Search efficiency: epochs a sweep trains until it first holds a trial within ``MARGIN`` of
a target no compared method defines for itself, for sersweep as shipped vs random search
with full budgets, several seeds per method, in one run.

* **Target**: ``(1 - MARGIN)`` x the best val UAR of a separate long reference search
  (``bench/histories/reference_search.json``, written by ``bench/record_reference.py``: 64
  TPE trials to the full budget, nothing stopped, seeded apart from these sweeps).
* **Corpus**: the demo corpus's generator with 118 validation speakers (the demo's training,
  test and unlabelled speakers), so one speaker's errors cannot move val UAR by the margin:
  the reference's bootstrap SD of val UAR over validation speakers is printed beside half
  the margin (``validation_ok``).
* **Methods**, each on the ``demo`` space with its shipped epoch budget and ``--trials``
  trials: ``sersweep`` (the defaults of ``launch.py sweep``: multivariate TPE, no scheduler,
  collapse stopping, which for a val UAR objective stops every failure mode but
  ``d_overpowers``), ``sersweep_asha`` (the same plus ``--scheduler asha``) and
  ``random_full`` (random search, every trial trained to the full budget).
* **Counting**: epochs in the order trials finished (Optuna's completion times): every epoch
  of each trial finished before the first trial to reach the target, plus that trial's
  epochs up to the one that got there. A sweep that never gets there spent all its epochs
  for nothing, so each method's figure is epochs per success (all epochs counted / sweeps
  that got there): stopping early is not rewarded unless the target is found.

Prints one JSON object on its last line: ``ratio`` = epochs per success of ``sersweep`` /
of ``random_full`` (``ratio_asha`` likewise) with a 90 % interval from resampling each
method's seeds. Where either side never reached the target the ratio is ``null``:
``reached`` says which, and ``baseline_budget`` how many epochs random search spent.
``reference_stale`` is true (and a line on stderr says so) when the reference was recorded
with other code.

    .venv/bin/python bench/search_efficiency.py [--trials 16] [--seeds 5] [--without-asha]

Takes about 31 minutes on a 2-core CPU (``--trials 32 --without-asha``: 41).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import print_json
from record_reference import (
    CORPUS_SEED,
    CORPUS_SPEAKERS,
    OUT,
    PER_SPEAKER,
    SPACE,
    VALID_FOLDS,
    bench_settings,
    code_hash,
    write_bench_corpus,
)

# The reference's best is the luckiest of its trial-epochs, and an SGAN's val UAR moves from
# epoch to epoch by far more than validation noise, so a 1-2 % margin is a draw few trials
# win; at 5 % the target is a level of quality (BENCHMARKS.md has the figures, and the JSON
# how many reference trials reached it).
MARGIN = 0.05
RESAMPLES = 2000
METHODS = {
    "sersweep": {},  # the defaults of launch.py sweep
    "sersweep_asha": {"scheduler": "asha"},
    "random_full": {"sampler": "random", "stop_on_collapse": False},
}


def run_sweep(method: str, seed: int, trials: int, corpus: Path, out: Path) -> list[dict]:
    """Per trial in completion order: its epochs, best objective after each, and state."""
    from sweep.results import load_study, trial_curves
    from sweep.runner import start_sweep

    settings = bench_settings(out, corpus, samples=trials, name=f"{method}{seed}", seed=seed,
                              **METHODS[method])  # fmt: skip
    start_sweep(settings)
    curves = trial_curves(settings)
    finished = sorted(
        (t for t in load_study(settings).trials if t.datetime_complete),
        key=lambda t: t.datetime_complete,
    )
    rows = []
    for trial in finished:
        curve = curves.get(trial.user_attrs.get("ray_trial_id"), [])
        best = [row.get("objective", float("nan")) for row in curve]
        rows.append({"epochs": len(curve), "best": best, "state": trial.state.name})
    return rows


def epochs_to(target: float, trials: list[dict]) -> tuple[int, bool]:
    """Epochs spent until a trial first reached ``target``, and whether one did."""
    spent = 0
    for trial in trials:
        for epoch, value in enumerate(trial["best"], 1):
            if value >= target:
                return spent + epoch, True
        spent += trial["epochs"]
    return spent, False


def epochs_per_success(rows: list[dict]) -> float | None:
    """All epochs of a method's sweeps (up to the target where reached) over the sweeps that
    reached it (``None``: none did)."""
    successes = sum(row["reached"] for row in rows)
    return sum(row["epochs"] for row in rows) / successes if successes else None


def ratio_with_spread(method: list[dict], baseline: list[dict], seed: int = 0) -> dict:
    """Epochs per success of ``method`` over ``baseline``, and its 5-95 % interval over
    resamples of each one's sweeps (with replacement); ``defined_share``: the share of
    resamples where both reached the target at least once."""
    ours = epochs_per_success(method)
    theirs = epochs_per_success(baseline)
    if ours is None or theirs is None:
        return {"ratio": None, "interval": None, "defined_share": None}
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(RESAMPLES):
        a = epochs_per_success([method[i] for i in rng.integers(len(method), size=len(method))])
        b = epochs_per_success(
            [baseline[i] for i in rng.integers(len(baseline), size=len(baseline))]
        )
        if a is not None and b is not None:
            draws.append(a / b)
    interval = [round(float(q), 3) for q in np.percentile(draws, [5, 95])] if draws else None
    return {"ratio": round(ours / theirs, 3), "interval": interval,
            "defined_share": round(len(draws) / RESAMPLES, 3)}  # fmt: skip


def load_reference(path: Path) -> tuple[dict, bool]:
    """The recorded reference search, and whether other code recorded it."""
    reference = json.loads(path.read_text())
    expected = {"speakers": CORPUS_SPEAKERS, "per_speaker": PER_SPEAKER, "seed": CORPUS_SEED,
                "valid_idx": VALID_FOLDS}  # fmt: skip
    if reference["corpus"] != expected or reference["space"] != SPACE:
        raise SystemExit(f"error: {path}: corpus/space: expected {expected} on {SPACE!r}, got "
                         f"{reference['corpus']} on {reference['space']!r}; rerun "
                         "bench/record_reference.py")  # fmt: skip
    stale = reference["code_hash"] != code_hash()
    if stale:
        print(f"reference search is stale: recorded with other code ({reference['code_hash']}, "
              f"now {code_hash()}): rerun bench/record_reference.py", file=sys.stderr)  # fmt: skip
    return reference, stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per sweep")
    parser.add_argument("--seeds", type=int, default=5, help="sweeps per method")
    parser.add_argument("--reference", type=Path, default=OUT)
    parser.add_argument(
        "--without-asha", action="store_true", help="only sersweep as shipped and random search"
    )
    args = parser.parse_args()
    reference, stale = load_reference(args.reference)
    target = (1 - MARGIN) * reference["best_val_uar"]
    spread = reference["best_validation"]
    started = time.time()
    methods = [m for m in METHODS if not (args.without_asha and m == "sersweep_asha")]
    table = {method: [] for method in methods}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_bench_corpus(Path(tmp) / "bench.h5")
        for seed in range(args.seeds):
            for method in methods:
                out = Path(tmp) / f"{method}{seed}"
                trials = run_sweep(method, seed, args.trials, corpus, out)
                epochs, reached = epochs_to(target, trials)
                best = max((v for t in trials for v in t["best"] if v == v), default=None)
                row = {"seed": seed, "epochs": epochs, "reached": reached,
                       "total_epochs": sum(t["epochs"] for t in trials),
                       "best": round(best, 4) if best is not None else None,
                       "failed": sum(t["state"] == "FAIL" for t in trials)}  # fmt: skip
                table[method].append(row)
                print(method, row, flush=True)
    baseline = table["random_full"]
    reached = {method: sum(row["reached"] for row in rows) for method, rows in table.items()}
    per_success = {method: epochs_per_success(rows) for method, rows in table.items()}
    figures = {
        "benchmark": "search_efficiency", "space": SPACE, "trials": args.trials,
        "seeds": args.seeds, "reference_best_val_uar": reference["best_val_uar"],
        "reference_trials": reference["trials"], "reference_stale": stale,
        "margin": MARGIN, "target": round(target, 4),
        "reference_trials_within_margin": sum(
            (r["best"] or 0) >= target for r in reference["runs"]
        ),
        "best_config_retrained_val_uar": spread["val_uar"],
        "validation_speakers": spread["speakers"], "validation_rows": spread["rows"],
        "val_uar_bootstrap_sd": spread["bootstrap_sd"],
        "half_margin": round(MARGIN * reference["best_val_uar"] / 2, 4),
        "validation_ok": spread["bootstrap_sd"] < MARGIN * reference["best_val_uar"] / 2,
        "reached": reached,
        "epochs_per_success": {m: round(v, 1) if v else None for m, v in per_success.items()},
        "baseline_budget": sum(row["total_epochs"] for row in baseline),
        **_ratio_fields("", table["sersweep"], baseline),
        **(_ratio_fields("_asha", table["sersweep_asha"], baseline) if "sersweep_asha" in table
           else {}),
        "runs": table, "minutes": round((time.time() - started) / 60, 1), "cpus": os.cpu_count(),
    }  # fmt: skip
    print_json(figures)


def _ratio_fields(suffix: str, method: list[dict], baseline: list[dict]) -> dict:
    spread = ratio_with_spread(method, baseline)
    return {f"ratio{suffix}": spread["ratio"], f"ratio{suffix}_interval": spread["interval"],
            f"ratio{suffix}_defined_share": spread["defined_share"]}  # fmt: skip


if __name__ == "__main__":
    main()
