"""SGAN training samples/s: sersweep's fused step against the source's loop and against a
keras-io style ``train_step`` run by ``fit``, same models and data, per Keras backend.

Variants (each builds the same :class:`sermodels.training.gan.SGAN` models):

* *fused*: ``SGAN.train_epoch``, one compiled step per batch (``tf.function`` or ``jax.jit``)
  in which the generated half batch goes through D once with the real half and serves both
  players' updates.
* *source-style*: the source SGAN's loop per batch: G ``predict`` on noise, D
  ``train_on_batch`` on the real half, again on the fake half, then the combined
  (G -> frozen D) model's ``train_on_batch`` on a full batch of noise.
* *source-style, predict_on_batch*: the same with ``predict_on_batch`` (no per-call
  ``predict`` machinery), so the comparison separates arithmetic from call overhead.
* *keras-io fit* (TensorFlow only): the keras-io DCGAN's ``train_step`` (D on real and
  generated rows, then G through D, two ``GradientTape`` passes) run by ``fit``. keras-io's
  GAN examples are TensorFlow-only, and Keras 3's JAX trainer threads one optimizer's state
  through ``fit``, so a two-optimizer GAN has no ``fit`` path there.

Each backend runs in its own process (Keras picks its backend once per process). Samples
are counted as ``steps x batch`` for every variant. Prints one JSON object on its last line:
per backend the samples/s and ratios, and ``jax_vs_tensorflow``: JAX fused / TensorFlow
fused samples/s.

    .venv/bin/python bench/train_step.py [--backends tensorflow,jax] [--config FILE]
        [--data FILE] [--steps 40] [--batch-size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import ROOT, emit


def fused_rate(config, corpus, steps: int, batch: int) -> float:
    from sermodels.training.gan import SGAN

    gan = SGAN(config.sgan, corpus.input_shapes(), corpus.tasks[0].n_classes)
    rows = _rows(corpus, steps * batch // 2)
    training = gan.training_rows(*rows)
    gan.train_epoch(training, batch)  # trace and warm up
    started = time.perf_counter()
    gan.train_epoch(training, batch)
    return steps * batch / (time.perf_counter() - started)


def _rows(corpus, count: int):
    import numpy as np

    labels = corpus.train.labels[:, corpus.tasks[0].column].astype(int)
    chosen = np.resize(np.arange(len(labels)), count)
    features = {k: v[chosen] for k, v in corpus.train.features.items()}
    return features, labels[chosen], np.ones(count, bool)


def source_rate(config, corpus, steps: int, batch: int, on_batch: bool) -> float:
    import keras
    import numpy as np

    from sermodels.training.gan import SGAN

    n_classes = corpus.tasks[0].n_classes
    gan = SGAN(config.sgan, corpus.input_shapes(), n_classes)
    generators, discriminator = gan.generators, gan.discriminator
    w_valid, w_class = config.sgan.task_weights
    discriminator.compile(
        keras.optimizers.Adam(config.sgan.d_lr, config.sgan.beta1),
        loss=["mse", "categorical_crossentropy"],
        loss_weights=[w_valid, w_class],
    )
    noise = keras.Input((config.sgan.latent_dim,))
    combined = keras.Model(noise, discriminator([g(noise) for g in generators])[0])
    features, labels, _ = _rows(corpus, len(corpus.train.labels))
    features = [features[m] for m in gan.modalities]
    half, latent = batch // 2, config.sgan.latent_dim
    real_targets = keras.utils.to_categorical(labels, n_classes + 1)
    fake_targets = keras.utils.to_categorical(np.full(half, n_classes), n_classes + 1)
    ones, zeros = np.ones((half, 1)), np.zeros((half, 1))
    rng = np.random.default_rng(0)

    def generate(g, z):
        return g.predict_on_batch(z) if on_batch else g.predict(z, verbose=0)

    def step(i: int, first: bool) -> None:
        rows = np.arange(i * half, (i + 1) * half) % len(labels)
        fakes = [generate(g, rng.normal(size=(half, latent))) for g in generators]
        # Keras 3 reads `trainable` at every call (Keras 2 froze it at compile): D learns in
        # its own updates and is frozen inside the combined model
        discriminator.trainable = True
        discriminator.train_on_batch([x[rows] for x in features], [ones, real_targets[rows]])
        discriminator.train_on_batch(fakes, [zeros, fake_targets])
        discriminator.trainable = False
        if first:
            combined.compile(keras.optimizers.Adam(config.sgan.g_lr, config.sgan.beta1), "mse")
        combined.train_on_batch(rng.normal(size=(batch, latent)), np.ones((batch, 1)))

    step(0, first=True)
    for i in range(3):
        step(i, first=False)
    started = time.perf_counter()
    for i in range(steps):
        step(i, first=False)
    return steps * batch / (time.perf_counter() - started)


def keras_io_fit_rate(config, corpus, steps: int, batch: int) -> float:
    """The keras-io DCGAN's ``train_step`` (TensorFlow), with the SGAN's losses."""
    import keras
    import tensorflow as tf

    from sermodels.training.gan import SGAN

    n_classes = corpus.tasks[0].n_classes
    gan = SGAN(config.sgan, corpus.input_shapes(), n_classes)
    w_valid, w_class = config.sgan.task_weights
    latent = config.sgan.latent_dim

    class KerasIoGAN(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.discriminator, self.generators = gan.discriminator, gan.generators

        def compile(self) -> None:
            super().compile()
            self.d_optimizer = keras.optimizers.Adam(config.sgan.d_lr, config.sgan.beta1)
            self.g_optimizer = keras.optimizers.Adam(config.sgan.g_lr, config.sgan.beta1)

        def train_step(self, data):
            real, targets = data
            size = tf.shape(targets)[0]
            fakes = [g(tf.random.normal((size, latent))) for g in self.generators]
            inputs = [tf.concat([r, f], 0) for r, f in zip(real, fakes, strict=True)]
            fake_class = tf.one_hot(tf.fill([size], n_classes), n_classes + 1)
            validity_target = tf.concat([tf.ones((size, 1)), tf.zeros((size, 1))], 0)
            class_target = tf.concat([targets, fake_class], 0)
            with tf.GradientTape() as tape:
                validity, classes = self.discriminator(inputs, training=True)
                d_loss = w_valid * keras.losses.mean_squared_error(
                    validity_target, validity
                ) + w_class * keras.losses.categorical_crossentropy(class_target, classes)
                d_loss = tf.reduce_mean(d_loss)
            weights = self.discriminator.trainable_weights
            self.d_optimizer.apply(tape.gradient(d_loss, weights), weights)
            noise = tf.random.normal((2 * size, latent))
            with tf.GradientTape() as tape:
                validity, _ = self.discriminator([g(noise) for g in self.generators])
                g_loss = tf.reduce_mean(
                    keras.losses.mean_squared_error(tf.ones_like(validity), validity)
                )
            weights = [w for g in self.generators for w in g.trainable_weights]
            self.g_optimizer.apply(tape.gradient(g_loss, weights), weights)
            return {"d_loss": d_loss, "g_loss": g_loss}

    model = KerasIoGAN()
    model.compile()
    features, labels, _ = _rows(corpus, steps * batch // 2)
    real = tuple(features[m] for m in gan.modalities)
    targets = keras.utils.to_categorical(labels, n_classes + 1)
    half = batch // 2
    model.fit(real, targets, batch_size=half, steps_per_epoch=4, epochs=1, verbose=0)  # trace
    started = time.perf_counter()
    model.fit(real, targets, batch_size=half, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - started)


def device_name() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].platform.upper()
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def measure(args) -> dict:
    """One backend (this process's), every variant interleaved, best of ``repeats``."""
    import keras

    from sermodels.backend import configure_threads
    from sermodels.config import load_config
    from sermodels.data import load_run_corpus

    configure_threads(os.cpu_count() or 1)
    config = load_config(args.config)
    corpus = load_run_corpus(config, args.data)
    backend = keras.backend.backend()
    variants = {
        "fused": lambda: fused_rate(config, corpus, args.steps, args.batch_size),
        "source_style": lambda: source_rate(config, corpus, args.steps, args.batch_size, False),
        "source_style_predict_on_batch": lambda: source_rate(
            config, corpus, args.steps, args.batch_size, True
        ),
    }
    if backend == "tensorflow":
        variants["keras_io_fit"] = lambda: keras_io_fit_rate(
            config, corpus, args.steps, args.batch_size
        )
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved: the same machine state for every variant
        for name, run in variants.items():
            rates[name].append(run())
        shown = "  ".join(f"{name} {values[-1]:.0f}/s" for name, values in rates.items())
        print(f"{backend}: {shown}", file=sys.stderr, flush=True)
    best = {name: round(max(values), 1) for name, values in rates.items()}
    result = {"backend": backend, "device": device_name(), "samples_per_s": best}
    for name in best:
        if name != "fused":
            result[f"fused_vs_{name}"] = round(best["fused"] / best[name], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--config", default="examples/demo/demo_sgan.yaml")
    parser.add_argument("--data", help="h5 corpus (default: the config's, else the demo)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        emit(measure(args))
        return
    results = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--config",
            args.config,
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--repeats",
            str(args.repeats),
        ]
        command += ["--data", args.data] if args.data else []
        environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(
            command, env=environment, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=False
        )
        if done.returncode != 0:
            results[backend] = {"error": f"exit code {done.returncode}"}
            continue
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    summary = {
        "benchmark": "train_step",
        "config": args.config,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "cpus": os.cpu_count(),
        "backends": results,
    }
    fused = {b: r["samples_per_s"]["fused"] for b, r in results.items() if "samples_per_s" in r}
    if {"tensorflow", "jax"} <= set(fused):
        summary["jax_vs_tensorflow"] = round(fused["jax"] / fused["tensorflow"], 2)
    emit(summary)


if __name__ == "__main__":
    main()
