"""Peak memory of a whole sweep (driver, Ray's servers, trial workers) with 2 concurrent
trials vs 1, on a ~1 GB corpus, in one run.

Each sweep runs in a child process (its own local Ray) training the same two enqueued demo
configurations for one epoch; this process samples the proportional set size (PSS: shared
pages such as Ray's object store divided among the processes that map them, so nothing is
counted twice) of the child's whole process tree every 0.25 s.

Prints one JSON object on its last line: ``ratio`` = peak PSS at concurrency 2 / at 1.

    .venv/bin/python bench/memory.py [--per-speaker 2520] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PARAMS = {"sgan.d_lr": 2e-4, "g_over_d_lr": 2.0, "sgan.latent_dim": 64, "sgan.n_node": 64,
          "stabiliser": "none"}  # fmt: skip


def tree_pss(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # a worker that just ended
    return total


def measure(corpus: Path, concurrency: int, epochs: int, out: Path) -> dict:
    command = [sys.executable, __file__, "--child", str(concurrency), "--corpus", str(corpus),
               "--epochs", str(epochs), "--out", str(out)]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root, peak, started = psutil.Process(child.pid), 0, time.perf_counter()
    while child.poll() is None:
        peak = max(peak, tree_pss(root))
        time.sleep(0.25)
    output = child.stdout.read()
    if child.returncode != 0:
        raise SystemExit(f"sweep at concurrency {concurrency} failed:\n{output[-3000:]}")
    return {"peak_bytes": peak, "wall_s": round(time.perf_counter() - started, 1)}


def child_sweep(concurrency: int, corpus: str, epochs: int, out: str) -> None:
    """Two identical enqueued trials through the real sweep (run in a child process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sys.path.insert(0, str(ROOT))
    import optuna

    from sweep.runner import start_sweep
    from sweep.settings import SweepSettings

    settings = SweepSettings(out=out, space="demo", data=corpus, samples=2, max_epochs=epochs,
                             name="memory", concurrency=concurrency,
                             cpus_per_trial=2 / concurrency, stop_on_collapse=False,
                             num_cpus=2)  # fmt: skip
    Path(out).mkdir(parents=True)
    study = optuna.create_study(study_name="memory", storage=settings.storage_url,
                                direction="maximize")  # fmt: skip
    for _ in range(2):
        study.enqueue_trial(PARAMS)
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
    sys.path.insert(0, str(ROOT))
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
    print(json.dumps({
        "benchmark": "memory", "corpus_gib": round(size / 2**30, 2),
        "file_gib": round(file_size / 2**30, 2), "epochs": args.epochs,
        "peak_gib_c1": round(one["peak_bytes"] / 2**30, 2),
        "peak_gib_c2": round(two["peak_bytes"] / 2**30, 2),
        "ratio": round(two["peak_bytes"] / one["peak_bytes"], 3),
        "wall_s_c1": one["wall_s"], "wall_s_c2": two["wall_s"], "cpus": os.cpu_count(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
