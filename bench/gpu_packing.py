"""Fractional GPUs: aggregate SGAN training samples/s with 4 trials sharing one GPU
(``--gpus-per-trial 0.25``) vs 1 trial holding it, the same enqueued trials, in one run.

Needs a GPU that TensorFlow sees (install ``tensorflow[and-cuda]``); without one it says so
and exits 0 with ``"skipped"`` in its JSON line.

Prints one JSON object on its last line: ``ratio`` = samples/s with 4 trials per GPU / with 1.

    .venv/bin/python bench/gpu_packing.py [--trials 8] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import CASES, case_space, enqueued_sweep, print_json

from sweep.settings import SweepSettings


def gpus_seen() -> list[str]:
    import tensorflow as tf

    return [gpu.name for gpu in tf.config.list_physical_devices("GPU")]


def samples_per_second(space: Path, trials: int, epochs: int, per_gpu: int, out: Path):
    cpus = os.cpu_count() or 1
    settings = SweepSettings(out=str(out), space=str(space), max_epochs=epochs, name="pack",
                             concurrency=per_gpu, cpus_per_trial=max(1, cpus // per_gpu),
                             gpus_per_trial=1 / per_gpu, stop_on_collapse=False,
                             num_cpus=cpus)  # fmt: skip
    started = time.perf_counter()
    enqueued_sweep(settings, [{"case": "healthy", "train.seed": s} for s in range(trials)])
    wall = time.perf_counter() - started
    from sweep.results import trial_curves

    rows = [row for curve in trial_curves(settings).values() for row in curve]
    assert len(rows) == trials * epochs, f"expected {trials * epochs} epochs, got {len(rows)}"
    return sum(row["train_rows"] for row in rows) / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    gpus = gpus_seen()
    if not gpus:
        print("gpu_packing: no GPU visible to TensorFlow; nothing to measure", file=sys.stderr)
        print_json({"benchmark": "gpu_packing", "skipped": "no GPU visible to TensorFlow"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        space = case_space(Path(tmp) / "cases.yaml", CASES, args.epochs)
        one, wall_one = samples_per_second(space, args.trials, args.epochs, 1, Path(tmp) / "1")
        four, wall_four = samples_per_second(space, args.trials, args.epochs, 4, Path(tmp) / "4")
    print_json({
        "benchmark": "gpu_packing", "gpus": gpus, "trials": args.trials, "epochs": args.epochs,
        "samples_per_s_1_per_gpu": round(one, 1), "samples_per_s_4_per_gpu": round(four, 1),
        "wall_s_1": round(wall_one, 1), "wall_s_4": round(wall_four, 1),
        "ratio": round(four / one, 2),
    })  # fmt: skip


if __name__ == "__main__":
    main()
