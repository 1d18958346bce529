"""The semi-supervised GAN game: generators per modality, one merged discriminator, their
optimisers, the losses of one step, and the health signals that say how the game goes.

One step (``batch_size`` = B): B/2 real rows and B/2 generated rows go through D in one pass.
D learns validity (real 1, fake 0) and classes (K real classes, class K = "fake"); G learns
to make D call its samples real. The B/2 generated rows serve both updates, so G runs once
per step (the source ran it twice, through ``predict`` and the combined model). The losses
are written once, in ``keras.ops``; :mod:`sermodels.training.gan_step` compiles the step for
the active backend (``tf.function`` + ``GradientTape``, or ``jax.jit`` over stateless calls).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from sermodels.config import SGANConfig
from sermodels.data.stream import prefetched
from sermodels.errors import ConfigError
from sermodels.models.sgan import build_discriminator, build_generator, modality_shapes
from sermodels.models.transfer import copy_pretrained, freeze_layers
from sermodels.training.common import epoch_order
from sermodels.training.gan_step import game_step
from sermodels.training.gan_values import (
    Draw,
    Play,
    StreamedRows,
    TrainingRows,
    global_norm,
    masked_mean,
    means,
)

VALIDITY_LOSSES = ("mse", "bce")
PREDICT_BATCH = 256
BatchHook = Callable[[int, int, dict], None]  # (steps done, steps in the epoch, running means)


class SGAN:
    """Builds the models from an :class:`SGANConfig` and trains them.

    Args:
        config: the SGAN section of a run config.
        input_shapes: ``{feature_key: (rows, cols, 1)}`` in modality order.
        n_classes: K, the number of emotion classes of the first task.

    Example:
        >>> gan = SGAN(SGANConfig(), {"a_feat": (96, 64, 1)}, n_classes=4)  # doctest: +SKIP
        >>> signals = gan.train_epoch(gan.training_rows(features, labels, mask), 64, seed=0)
    """

    def __init__(self, config: SGANConfig, input_shapes: dict, n_classes: int) -> None:
        _check_config(config)
        self.config, self.n_classes = config, n_classes
        self.modalities = list(input_shapes)
        shapes = modality_shapes(config, input_shapes)
        self.generators = (
            [build_generator(s, config.latent_dim) for s in shapes] if config.generator else []
        )
        self.discriminator = build_discriminator(shapes, config, n_classes)
        self.loaded = self._load_pretrained()
        freeze_layers(self.discriminator, config.frozen_D, "sgan.frozen_D")
        for generator in self.generators:
            freeze_layers(generator, config.frozen_G, "sgan.frozen_G")
        self.d_optimizer = keras.optimizers.Adam(config.d_lr, beta_1=config.beta1)
        self.g_optimizer = keras.optimizers.Adam(config.g_lr, beta_1=config.beta1)
        # built now, so a checkpoint can be restored before the first step
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.g_variables)
        self.step = game_step(self)

    @property
    def g_variables(self) -> list:
        return [v for g in self.generators for v in g.trainable_variables]

    # ---- set-up -------------------------------------------------------------------------
    def _load_pretrained(self) -> list[str]:
        config = self.config
        copied = []
        modalities = tuple(self.modalities)
        for path, unloaded in _paired(config.load_D, config.unloaded_D, "sgan.load_D"):
            copied += copy_pretrained(self.discriminator, path, unloaded, "sgan.load_D", modalities)
        g_paths = _paired(config.load_G, config.unloaded_G, "sgan.load_G")
        if g_paths and len(g_paths) != len(self.generators):
            raise ConfigError(
                "sgan.load_G",
                f"give one generator per modality ({len(self.generators)}), got {len(g_paths)}",
            )
        for generator, (path, unloaded) in zip(self.generators, g_paths, strict=False):
            if path:
                copied += copy_pretrained(generator, path, unloaded, "sgan.load_G", modalities)
        return copied

    def training_rows(self, features: dict, labels: np.ndarray, labelled: np.ndarray):
        """Move training rows onto the device once (class ids in ``labels``)."""
        return TrainingRows(
            tuple(ops.convert_to_tensor(features[m]) for m in self.modalities),
            ops.convert_to_tensor(self.targets(labels, labelled)),
            ops.convert_to_tensor(labelled.astype(np.float32)),
            len(labels),
        )

    def streamed_rows(self, split, labels: np.ndarray, labelled: np.ndarray) -> StreamedRows:
        """Training rows of a streaming split: only targets and mask are held."""
        targets = self.targets(labels, labelled)
        return StreamedRows(
            split, self.modalities, targets, labelled.astype(np.float32), len(labels)
        )

    def targets(self, labels: np.ndarray, labelled: np.ndarray) -> np.ndarray:
        """One-hot class targets with the extra "fake" column (unlabelled rows: class 0,
        masked out of the class loss)."""
        targets = np.zeros((len(labels), self.n_classes + 1), np.float32)
        ids = np.where(labelled, labels, 0).astype(int)
        targets[np.arange(len(labels)), ids] = 1.0
        return targets

    # ---- one pass of the game, in keras.ops (both backends) -----------------------------
    def play(self, real: list, targets, mask, fake: list, discriminate, draw: Draw) -> Play:
        """D judges real and generated rows in one pass; returns both players' losses.

        ``discriminate(images)`` runs D in training mode (statefully, or statelessly under
        JAX); ``fake`` are the generated rows (their gradient path reaches G).
        """
        w_valid, w_class = self.config.task_weights
        # One D pass over real and fake rows together: batch-norm then normalises real rows
        # with the same real+fake statistics its moving averages hold at inference. Separate
        # passes (the source) normalise real rows differently in training and evaluation,
        # which cost the class head most of its validation UAR on the demo corpus.
        n_real = ops.shape(real[0])[0]
        images = [ops.concatenate([r, f], axis=0) for r, f in zip(real, fake, strict=True)]
        validity, classes = self.heads(discriminate(self.noisy(images, draw)))
        v_real, v_fake = validity[:n_real], validity[n_real:]
        real_target = 1.0 - self.config.label_smoothing  # one-sided smoothing (Salimans 2016)
        loss_real = w_valid * self.validity_loss(real_target, v_real)
        loss_fake = w_valid * self.validity_loss(0.0, v_fake)
        c_real = None
        if classes is not None:
            c_real, c_fake = classes[:n_real], classes[n_real:]
            class_loss = keras.losses.categorical_crossentropy(targets, c_real)
            loss_real = loss_real + w_class * masked_mean(class_loss, mask)
            fake_ids = ops.full((ops.shape(fake[0])[0],), self.n_classes, dtype="int32")
            fake_targets = ops.one_hot(fake_ids, self.n_classes + 1)
            loss_fake = loss_fake + w_class * ops.mean(
                keras.losses.categorical_crossentropy(fake_targets, c_fake)
            )
        g_loss = self.validity_loss(1.0, v_fake)
        d_loss = 0.5 * (loss_real + loss_fake)
        return Play(d_loss, g_loss, loss_real, loss_fake, v_real, v_fake, c_real)

    def play_d_only(self, real: list, targets, mask, discriminate) -> Play:
        """``generator: false`` (the source's ``--turn_off_G``): D learns classes of real rows;
        its validity head gets no gradient (there are no fakes)."""
        v_real, c_real = self.heads(discriminate(real))
        d_loss = masked_mean(keras.losses.categorical_crossentropy(targets, c_real), mask)
        zero = ops.zeros(())
        return Play(d_loss, zero, d_loss, zero, v_real, ops.ones_like(v_real), c_real)

    def heads(self, outputs):
        """``(validity, classes)`` from D's outputs; classes is None when unsupervised."""
        if self.config.unsupervised:
            return (outputs[0] if isinstance(outputs, (list, tuple)) else outputs), None
        return outputs[0], outputs[1]

    def validity_loss(self, target: float, validity):
        if self.config.validity_loss == "mse":
            return ops.mean(ops.square(target - validity))
        targets = ops.full(ops.shape(validity), target)
        return ops.mean(keras.losses.binary_crossentropy(targets, validity))

    def noise(self, count: int, draw: Draw):
        """Latent noise for ``count`` samples (draw 0 of the step)."""
        return draw((count, self.config.latent_dim), 0)

    def noisy(self, images: list, draw: Draw) -> list:
        """Instance noise on D's inputs (Sønderby et al. 2016), when configured (draws 1..)."""
        if not self.config.instance_noise:
            return images
        return [
            x + self.config.instance_noise * draw(ops.shape(x), 1 + i) for i, x in enumerate(images)
        ]

    def signals(self, play: Play, targets, mask, d_grads: list, g_grads: list):
        """This step's health signals, as one vector (summed on the device over an epoch)."""
        if play.c_real is None:
            class_acc = ops.zeros(())
        else:
            predicted = ops.argmax(play.c_real[:, : self.n_classes], axis=1)
            hits = ops.cast(predicted == ops.argmax(targets, axis=1), "float32")
            class_acc = masked_mean(hits, mask)
        return ops.stack(
            [
                play.d_loss,
                play.loss_real,
                play.loss_fake,
                play.g_loss,
                ops.mean(ops.cast(play.v_real > 0.5, "float32")),
                ops.mean(ops.cast(play.v_fake < 0.5, "float32")),
                class_acc,
                global_norm(d_grads),
                global_norm(g_grads),
                ops.ones(()),
            ]
        )

    # ---- epochs and evaluation ----------------------------------------------------------
    def train_epoch(
        self,
        rows: TrainingRows | StreamedRows,
        batch_size: int,
        seed: int = 0,
        on_batch: BatchHook | None = None,
        every: int = 0,
        steps: int = 0,
    ) -> dict:
        """One pass over the training rows in ``batch_size // 2`` real rows per step, in an
        order drawn from ``seed``.

        Args:
            rows: the training rows, on the device (:meth:`training_rows`) or in the file
                (:meth:`streamed_rows`); the same seed gives the same batches either way.
            batch_size: B; each step takes B/2 real rows and generates B/2.
            seed: the epoch's seed (row order and noise).
            on_batch: called every ``every`` steps with the running means so far (reading
                them is a device round-trip, so it is off by default).
            steps: train this many steps instead of one pass (``train.steps_per_epoch``).

        Returns:
            The mean of every health signal over the epoch, plus ``nonfinite`` (1.0 when a
            loss or gradient norm went NaN/Inf) and ``steps``.
        """
        half = max(1, min(batch_size // 2, rows.size))
        order = epoch_order(rows.size, seed, steps * half).astype(np.int32)
        starts = list(range(0, len(order) - half + 1, half))
        report = None
        if on_batch:

            def report(done: int, sums: np.ndarray) -> None:
                on_batch(done, len(starts), means(sums))

        sums = self.step.epoch(rows, order, starts, half, seed, report, every)
        return means(sums)

    def predict(self, features: dict) -> list[np.ndarray]:
        """D's outputs (validity, and class probabilities over K + 1) in inference mode."""
        inputs = [features[m] for m in self.modalities]
        return _in_fixed_batches(self.discriminator, inputs)

    def predict_split(self, split) -> list[np.ndarray]:
        """:meth:`predict` over a split, resident or streamed, ``PREDICT_BATCH`` rows at a
        time (a streamed split is read ahead of the model)."""
        parts = [self.predict(chunk) for chunk in prefetched(split.chunks(PREDICT_BATCH))]
        if not parts:
            empty = {m: np.zeros((0, *split.shapes[m]), np.float32) for m in self.modalities}
            return self.predict(empty)
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    def predict_classes(self, features: dict) -> np.ndarray | None:
        """Class probabilities over the K real classes (the "fake" column dropped)."""
        if self.config.unsupervised:
            return None
        if not len(next(iter(features.values()))):
            return np.zeros((0, self.n_classes), np.float32)
        return self.predict(features)[1][:, : self.n_classes]

    def validity(self, features: dict, limit: int = 512) -> float:
        """Mean validity D gives real rows (a realism anchor for unsupervised runs)."""
        sample = {m: features[m][:limit] for m in self.modalities}
        return float(np.mean(self.predict(sample)[0]))

    def generate(self, count: int, seed: int = 0) -> dict[str, np.ndarray]:
        """``count`` samples per modality from fixed noise (for images and diversity; the
        first ``n`` of ``count`` samples are the ``n`` samples of ``generate(n, seed)``)."""
        noise = np.random.default_rng(seed).standard_normal((count, self.config.latent_dim))
        noise = noise.astype(np.float32)
        return {
            m: _in_fixed_batches(g, [noise])[0]
            for m, g in zip(self.modalities, self.generators, strict=True)
        }

    def save(self, directory) -> list[str]:
        """Write ``discriminator.keras``, ``<modality>.generator.keras`` and, with generators,
        ``combined.keras`` (noise -> generators -> D: the source's adversarial model)."""
        paths = [f"{directory}/discriminator.keras"]
        self.discriminator.save(paths[0])
        for modality, generator in zip(self.modalities, self.generators, strict=False):
            paths.append(f"{directory}/{modality}.generator.keras")
            generator.save(paths[-1])
        if self.generators:
            noise = keras.Input((self.config.latent_dim,), name="noise")
            judged = self.discriminator([g(noise) for g in self.generators])
            paths.append(f"{directory}/combined.keras")
            keras.Model(noise, judged, name="combined").save(paths[-1])
        return paths

    def weights(self) -> list:
        return [m.get_weights() for m in (self.discriminator, *self.generators)]

    def set_weights(self, weights: list) -> None:
        for model, values in zip((self.discriminator, *self.generators), weights, strict=True):
            model.set_weights(values)


def _in_fixed_batches(model: keras.Model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """``model``'s outputs on ``inputs``, run in batches of one fixed size (the last one
    padded): one compiled predict function serves every call, whatever the row count."""
    n = len(inputs[0])
    outputs = []
    for start in range(0, n, PREDICT_BATCH):
        batch = [x[start : start + PREDICT_BATCH] for x in inputs]
        rows = len(batch[0])
        batch = [
            np.concatenate([b, np.zeros((PREDICT_BATCH - rows, *b.shape[1:]), b.dtype)])
            for b in batch
        ]
        result = model.predict_on_batch(batch if isinstance(model.input, list) else batch[0])
        result = result if isinstance(result, list) else [result]
        outputs.append([np.asarray(r)[:rows] for r in result])
    if not outputs:
        return [np.zeros((0, *o.shape[1:]), np.float32) for o in model.outputs]
    return [np.concatenate(parts) for parts in zip(*outputs, strict=True)]


def _paired(paths, unloaded, where) -> list[tuple[str | None, object]]:
    """``"a.keras;v.keras"`` or a list, each with its own ``unloaded`` spec (or one for all)."""
    if not paths:
        return []
    paths = paths.split(";") if isinstance(paths, str) else list(paths)
    if isinstance(unloaded, str) and ";" in unloaded:
        unloaded = unloaded.split(";")
    specs = unloaded if isinstance(unloaded, list) and len(paths) > 1 else [unloaded] * len(paths)
    if len(specs) != len(paths):
        raise ConfigError(where, f"{len(paths)} models but {len(specs)} unloaded specs")
    return [(p or None, s) for p, s in zip(paths, specs, strict=True)]


def _check_config(config: SGANConfig) -> None:
    if config.validity_loss not in VALIDITY_LOSSES:
        raise ConfigError(
            "sgan.validity_loss", f"expected one of {VALIDITY_LOSSES}, got {config.validity_loss!r}"
        )
    if len(config.task_weights) != 2 or min(config.task_weights) < 0:
        raise ConfigError(
            "sgan.task_weights", f"expected [validity, class] >= 0, got {config.task_weights}"
        )
    for name in ("d_lr", "g_lr", "latent_dim", "n_node", "d_steps"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"sgan.{name}", f"must be > 0, got {getattr(config, name)}")
    if not 0 <= config.dropout < 1 or not 0 <= config.label_smoothing < 0.5:
        raise ConfigError("sgan.dropout", "need 0 <= dropout < 1 and 0 <= label_smoothing < 0.5")
    if not 0 <= config.beta1 < 1 or config.instance_noise < 0:
        raise ConfigError("sgan.beta1", "need 0 <= beta1 < 1 and instance_noise >= 0")
    if config.ndb_samples < 0:
        raise ConfigError("sgan.ndb_samples", f"must be >= 0 (0: off), got {config.ndb_samples}")
    if not config.generator and config.unsupervised:
        raise ConfigError("sgan.generator", "an unsupervised SGAN needs its generator")
