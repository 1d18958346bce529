"""Fractional GPUs: aggregate SGAN training samples/s with 1, 2 and 4 trials sharing one GPU
(``--gpus-per-trial 1``, ``0.5``, ``0.25``), the same enqueued trials each time, in one run,
with each trial's peak GPU memory.

The GPU is found through the active Keras backend (``--backend``, default
``$KERAS_BACKEND``, else TensorFlow): a JAX CUDA build or ``tensorflow[and-cuda]``. Without
one it says so and exits 0 with ``"skipped"`` in its JSON line.

Prints one JSON object on its last line: per packing, samples/s, wall time and the largest
trial's peak GPU memory; ``ratio_4`` = samples/s at 4 trials per GPU / at 1.

    .venv/bin/python bench/gpu_packing.py [--backend jax] [--trials 8] [--epochs 3]
        [--packings 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import emit
from sweeps import CASES, case_space, enqueued_sweep

from sermodels.backend import accelerators, load
from sweep.settings import SweepSettings


def run_packing(space: Path, args, per_gpu: int, out: Path) -> dict:
    cpus = os.cpu_count() or 1
    settings = SweepSettings(
        out=str(out),
        space=str(space),
        max_epochs=args.epochs,
        name="pack",
        concurrency=per_gpu,
        cpus_per_trial=max(1, cpus // per_gpu),
        gpus_per_trial=1 / per_gpu,
        stop_on_collapse=False,
        num_cpus=cpus,
        backend=args.backend,
        reeval_top=0,
    )
    started = time.perf_counter()
    enqueued_sweep(settings, [{"case": "healthy", "train.seed": s} for s in range(args.trials)])
    wall = time.perf_counter() - started
    from sweep.results import trial_curves

    curves = trial_curves(settings).values()
    rows = [row for curve in curves for row in curve]
    expected = args.trials * args.epochs
    assert len(rows) == expected, f"expected {expected} epochs, got {len(rows)}"
    peaks = [max(row.get("gpu_peak_bytes", 0) for row in curve) for curve in curves]
    return {
        "samples_per_s": round(sum(row["train_rows"] for row in rows) / wall, 1),
        "wall_s": round(wall, 1),
        "peak_gpu_mib_per_trial": round(max(peaks) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, choices=("tensorflow", "jax"))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--packings", default="1,2,4", help="trials per GPU, comma-separated")
    args = parser.parse_args()
    args.backend = load(args.backend)
    gpus = list(accelerators())
    if not gpus:
        message = f"no GPU visible to {args.backend}"
        print(f"gpu_packing: {message}; nothing to measure", file=sys.stderr)
        emit({"benchmark": "gpu_packing", "backend": args.backend, "skipped": message})
        return
    packings = [int(p) for p in args.packings.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        space = case_space(Path(tmp) / "cases.yaml", CASES, args.epochs)
        for per_gpu in packings:
            results[per_gpu] = run_packing(space, args, per_gpu, Path(tmp) / str(per_gpu))
            print(f"{per_gpu} per GPU: {results[per_gpu]}", file=sys.stderr, flush=True)
    figures = {
        "benchmark": "gpu_packing",
        "backend": args.backend,
        "gpus": gpus,
        "trials": args.trials,
        "epochs": args.epochs,
        "per_gpu": {str(k): v for k, v in results.items()},
    }
    if 1 in results:
        for per_gpu in packings:
            if per_gpu != 1:
                ratio = results[per_gpu]["samples_per_s"] / results[1]["samples_per_s"]
                figures[f"ratio_{per_gpu}"] = round(ratio, 2)
    emit(figures)


if __name__ == "__main__":
    main()
