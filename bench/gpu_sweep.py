"""A sweep of the audio-visual SGAN at the source projects' input size on one GPU
(BENCHMARKS.md row 10): wall time, trials per hour and the failure census, through the
commands a user runs (``launch.py demo-data``, then ``launch.py sweep`` with four trials
sharing the GPU and collapse stopping on).

Without a GPU visible to JAX it says so and exits 0 with ``"skipped"`` in its JSON line.

    python bench/gpu_sweep.py [--trials 16] [--epochs 3] [--per-gpu 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, emit

from sermodels.backend import accelerators, load
from sweep.results import summarize
from sweep.settings import load_settings

# the source projects' audio (100 x 128 log-power) and video (48 x 48) input sizes
SOURCE_SIZE = ["--set", "data.r_nrow=[100, 48]", "--set", "data.r_ncol=[128, 48]"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-gpu", type=int, default=4, help="trials sharing the GPU")
    args = parser.parse_args()
    backend = load("jax")
    gpus = list(accelerators())
    if not gpus:
        message = f"no GPU visible to {backend}"
        print(f"gpu_sweep: {message}; nothing to measure", file=sys.stderr)
        emit({"benchmark": "gpu_sweep", "backend": backend, "skipped": message})
        return
    launch = [sys.executable, str(ROOT / "launch.py")]
    with tempfile.TemporaryDirectory() as tmp:
        corpus, out = Path(tmp) / "lspec.h5", Path(tmp) / "sweep"
        subprocess.run(
            [
                *launch,
                "demo-data",
                str(corpus),
                "--bins",
                "256",
                "--speakers",
                "12",
                "--per-speaker",
                "200",
            ],
            check=True,
        )
        started = time.perf_counter()
        subprocess.run(
            [
                *launch,
                "sweep",
                "--backend",
                "jax",
                "--space",
                "sgan_av",
                "--data",
                str(corpus),
                "--test-idx",
                "0",
                "--valid-idx",
                "1",
                "--unlabelled-idx",
                "",
                *SOURCE_SIZE,
                "--samples",
                str(args.trials),
                "--max-epochs",
                str(args.epochs),
                "--gpus-per-trial",
                str(1 / args.per_gpu),
                "--concurrency",
                str(args.per_gpu),
                "--reeval-top",
                "0",
                "--out",
                str(out),
            ],
            check=True,
        )
        wall = time.perf_counter() - started
        summary = summarize(load_settings(out))
    emit(
        {
            "benchmark": "gpu_sweep",
            "backend": backend,
            "gpus": gpus,
            "trials": args.trials,
            "epochs": args.epochs,
            "per_gpu": args.per_gpu,
            "wall_s": round(wall, 1),
            "trials_per_hour": round(3600 * args.trials / wall, 1),
            "states": summary["states"],
            "verdicts": summary["verdicts"],
            "cpus": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
