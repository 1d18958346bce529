"""The source tutorial's audio+video SGAN at the source's sizes: seconds per training step
and samples/s of the fused step, and the seconds an epoch takes on a corpus of the source's
shapes (10x1x10x256 audio cropped to 100x128, 48x48 faces; ``demo-data --bins 256``).

On a CPU a full epoch takes too long to wait for: by default the script times ``--steps``
steps and *extrapolates* the epoch (``"epoch_s_extrapolated"``); ``--full-epoch`` times a
whole epoch (use it on a GPU: ``"epoch_s_measured"``).

Prints one JSON object on its last line.

    .venv/bin/python bench/source_size.py [--backend jax] [--config FILE] [--steps 3]
        [--speakers 12] [--per-speaker 40] [--full-epoch]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from common import ROOT, emit

from sermodels.backend import accelerators, configure_threads, load
from sermodels.config import load_config
from sermodels.data import load_run_corpus
from sermodels.data.demo import DemoShape, write_demo_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, choices=("tensorflow", "jax"))
    parser.add_argument("--config", default="examples/source/sgan_1_av.yaml")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (CPU)")
    parser.add_argument("--speakers", type=int, default=12)
    parser.add_argument("--per-speaker", type=int, default=40)
    parser.add_argument("--full-epoch", action="store_true", help="time a whole epoch")
    args = parser.parse_args()
    backend = load(args.backend)
    configure_threads(os.cpu_count() or 1)
    from sermodels.training.gan import SGAN

    config = load_config(ROOT / args.config)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_demo_corpus(
            Path(tmp) / "source.h5",
            args.speakers,
            args.per_speaker,
            0,
            DemoShape(bins=256),
            progress=False,
        )
        corpus = load_run_corpus(config, path)
    batch, half = config.train.batch_size, config.train.batch_size // 2
    labels = corpus.train.labels[:, corpus.tasks[0].column].astype(int)
    steps_per_epoch = math.ceil(len(labels) / half)
    gan = SGAN(config.sgan, corpus.input_shapes(), corpus.tasks[0].n_classes)

    def rows(count: int):
        chosen = [i % len(labels) for i in range(count)]
        features = {k: v[chosen] for k, v in corpus.train.features.items()}
        return gan.training_rows(features, labels[chosen], corpus.train.labelled[chosen])

    gan.train_epoch(rows(half), batch)  # compile
    steps = steps_per_epoch if args.full_epoch else args.steps
    timed = rows(steps * half) if not args.full_epoch else rows(len(labels))
    started = time.perf_counter()
    gan.train_epoch(timed, batch)
    seconds = time.perf_counter() - started
    per_step = seconds / steps
    figures = {
        "benchmark": "source_size",
        "config": args.config,
        "backend": backend,
        "device": "GPU" if accelerators() else "CPU",
        "gpus": list(accelerators()),
        "cpus": os.cpu_count(),
        "batch_size": batch,
        "train_rows": len(labels),
        "steps_timed": steps,
        "seconds_per_step": round(per_step, 3),
        "samples_per_s": round(batch / per_step, 1),
        "steps_per_epoch": steps_per_epoch,
    }
    key = "epoch_s_measured" if args.full_epoch else "epoch_s_extrapolated"
    figures[key] = round(seconds if args.full_epoch else per_step * steps_per_epoch, 1)
    emit(figures)


if __name__ == "__main__":
    main()
