"""Peak memory of a whole sweep (driver, Ray's servers, trial workers) with 2 concurrent
trials vs 1, on a ~1 GB corpus of both modalities (audio and faces), in one run.

Each sweep runs in a child process (its own local Ray) training two identical trials of the
``sgan_av`` space (its base: both feature keys; fixed demo-sized networks) for one epoch;
this process samples the proportional set size (PSS: shared pages such as Ray's object store
divided among the processes that map them, so nothing is counted twice) of the child's
whole process tree every 0.25 s.

Prints one JSON object on its last line: ``ratio`` = peak PSS at concurrency 2 / at 1, and
``second_trial_gib`` = what the second concurrent trial adds (peak at 2 - peak at 1).

    .venv/bin/python bench/memory.py [--per-speaker 2520] [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import ROOT, emit, run_child

FIXED = {
    "sgan.d_lr": 2e-4,
    "sgan.g_lr": 4e-4,
    "sgan.latent_dim": 64,
    "sgan.n_node": 64,
    "sgan.depth_G": 3,
    "sgan.n_kernels_G": [16, 8, 1],
    "sgan.depth_D": 2,
    "sgan.n_kernels_D": [8, 16],
    "sgan.pool_n_row_D": [2, 2],
    "sgan.pool_n_col_D": [2, 2],
}


def av_space(path: Path) -> Path:
    """``sgan_av``'s base (audio and faces) with every searched value fixed: identical trials."""
    import yaml

    space = yaml.safe_load((ROOT / "search_spaces" / "sgan_av.yaml").read_text())
    space["params"] = {key: {"type": "fixed", "value": value} for key, value in FIXED.items()}
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def measure(corpus: Path, concurrency: int, epochs: int, out: Path) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(concurrency),
        "--corpus",
        str(corpus),
        "--epochs",
        str(epochs),
        "--out",
        str(out),
    ]
    child = run_child(command, sample_pss=True, every=0.25)
    if child.returncode != 0:
        raise SystemExit(f"sweep at concurrency {concurrency} failed:\n{child.output[-3000:]}")
    return {"peak_bytes": child.peak_pss, "wall_s": child.wall_s}


def child_sweep(concurrency: int, corpus: str, epochs: int, out: str) -> None:
    """Two identical enqueued trials through the real sweep (run in a child process)."""
    from sweep.runner import start_sweep
    from sweep.settings import SweepSettings

    space = av_space(Path(out).parent / f"av{concurrency}.yaml")
    settings = SweepSettings(
        out=out,
        space=str(space),
        data=corpus,
        samples=2,
        max_epochs=epochs,
        name="memory",
        concurrency=concurrency,
        cpus_per_trial=2 / concurrency,
        stop_on_collapse=False,
        num_cpus=2,
        reeval_top=0,
    )
    start_sweep(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-speaker", type=int, default=2520, help="rows per speaker (x12)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_sweep(args.child, args.corpus, args.epochs, args.out)
        return
    import h5py

    from sermodels.data.demo import write_demo_corpus

    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_demo_corpus(Path(tmp) / "big.h5", 12, args.per_speaker, seed=0)
        with h5py.File(corpus) as h5:  # the arrays' size; the file itself is compressed
            size = sum(h5[key].size * h5[key].dtype.itemsize for key in h5)
        file_size = corpus.stat().st_size
        one = measure(corpus, 1, args.epochs, Path(tmp) / "c1")
        two = measure(corpus, 2, args.epochs, Path(tmp) / "c2")
    print(f"concurrency 1: {one}\nconcurrency 2: {two}", flush=True)
    emit(
        {
            "benchmark": "memory",
            "corpus_gib": round(size / 2**30, 2),
            "file_gib": round(file_size / 2**30, 2),
            "epochs": args.epochs,
            "peak_gib_c1": round(one["peak_bytes"] / 2**30, 2),
            "peak_gib_c2": round(two["peak_bytes"] / 2**30, 2),
            "ratio": round(two["peak_bytes"] / one["peak_bytes"], 3),
            "second_trial_gib": round((two["peak_bytes"] - one["peak_bytes"]) / 2**30, 2),
            "wall_s_c1": one["wall_s"],
            "wall_s_c2": two["wall_s"],
            "cpus": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
