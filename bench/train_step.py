"""SGAN training samples/s: sersweep's fused step vs a source-style loop, same model and data.

The source-style loop is the source SGAN's per batch: generator ``predict`` on noise, D
``train_on_batch`` on a real half batch, again on a fake half batch, then the combined
(G -> frozen D) model's ``train_on_batch`` on a full batch of noise.

Prints one JSON object on its last line: ``ratio`` = fused / source-style samples/s.

    .venv/bin/python bench/train_step.py [--config examples/demo/demo_sgan.yaml] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from sermodels.config import load_config  # noqa: E402
from sermodels.data import load_run_corpus  # noqa: E402
from sermodels.training.gan import SGAN  # noqa: E402


def fused_rate(config, corpus, steps: int, batch: int) -> float:
    gan = SGAN(config.sgan, corpus.input_shapes(), corpus.tasks[0].n_classes)
    labels = corpus.train.labels[:, corpus.tasks[0].column]
    rows = np.resize(np.arange(len(labels)), steps * batch // 2)
    data = gan.training_data({k: v[rows] for k, v in corpus.train.features.items()},
                             labels[rows], corpus.train.labelled[rows])  # fmt: skip
    gan.train_epoch(data, batch)  # trace and warm up
    started = time.perf_counter()
    gan.train_epoch(data, batch)
    return steps * batch / (time.perf_counter() - started)


def source_rate(config, corpus, steps: int, batch: int) -> float:
    n_classes = corpus.tasks[0].n_classes
    gan = SGAN(config.sgan, corpus.input_shapes(), n_classes)
    generators, discriminator = gan.generators, gan.discriminator
    w_valid, w_class = config.sgan.task_weights
    discriminator.compile(keras.optimizers.Adam(config.sgan.d_lr, config.sgan.beta1),
                          loss=["mse", "categorical_crossentropy"],
                          loss_weights=[w_valid, w_class])  # fmt: skip
    noise = keras.Input((config.sgan.latent_dim,))
    validity = discriminator([g(noise) for g in generators])[0]
    combined = keras.Model(noise, validity)
    features = [corpus.train.features[m] for m in gan.modalities]
    labels = corpus.train.labels[:, corpus.tasks[0].column].astype(int)
    half, latent = batch // 2, config.sgan.latent_dim
    real_targets = keras.utils.to_categorical(labels, n_classes + 1)
    fake_targets = keras.utils.to_categorical(np.full(half, n_classes), n_classes + 1)
    ones, zeros = np.ones((half, 1)), np.zeros((half, 1))

    def step(i: int, first: bool) -> None:
        rows = np.arange(i * half, (i + 1) * half) % len(labels)
        fakes = [g.predict(np.random.normal(size=(half, latent)), verbose=0) for g in generators]
        discriminator.train_on_batch([x[rows] for x in features], [ones, real_targets[rows]])
        discriminator.train_on_batch(fakes, [zeros, fake_targets])
        if first:  # freeze D inside the combined model when its train function is traced
            discriminator.trainable = False
            combined.compile(keras.optimizers.Adam(config.sgan.g_lr, config.sgan.beta1), "mse")
        combined.train_on_batch(np.random.normal(size=(batch, latent)), np.ones((batch, 1)))

    step(0, first=True)
    for i in range(3):
        step(i, first=False)
    started = time.perf_counter()
    for i in range(steps):
        step(i, first=False)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/demo/demo_sgan.yaml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = load_config(args.config)
    corpus = load_run_corpus(config)
    fused, source = [], []
    for _ in range(args.repeats):  # interleaved, best of each: same machine state for both
        fused.append(fused_rate(config, corpus, args.steps, args.batch_size))
        source.append(source_rate(config, corpus, args.steps, args.batch_size))
        print(f"fused {fused[-1]:.0f}/s  source-style {source[-1]:.0f}/s", flush=True)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(json.dumps({
        "benchmark": "train_step", "config": args.config, "batch_size": args.batch_size,
        "steps": args.steps, "device": device, "cpus": os.cpu_count(),
        "fused_samples_per_s": round(max(fused), 1),
        "source_samples_per_s": round(max(source), 1),
        "ratio": round(max(fused) / max(source), 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
