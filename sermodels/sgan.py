"""The semi-supervised GAN: generators per modality, one merged discriminator, and a fused
training step that updates D and G together and measures the health of the game.

One step (``batch_size`` = B): B/2 real rows and B/2 generated rows, through D in one pass.
D learns validity (real 1, fake 0) and classes (K real classes, class K = "fake"); G learns
to make D call its samples real. The B/2 generated rows serve both updates, so G runs once
per step (the source ran it twice, through ``predict`` and the combined model).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from sermodels.config import SGANConfig
from sermodels.errors import ConfigError
from sermodels.sgan_layers import build_discriminator, build_generator, modality_shapes
from sermodels.transfer import freeze_layers, load_keras_model, transfer_weights

HEALTH_SIGNALS = (
    "d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_acc_real", "d_acc_fake",
    "class_acc", "d_grad_norm", "g_grad_norm",
)  # fmt: skip
VALIDITY_LOSSES = ("mse", "bce")


@dataclass
class TrainingData:
    """Training rows resident on the device: features per modality, one-hot labels with the
    extra "fake" column, and a 0/1 mask of rows whose labels may be used."""

    features: tuple[tf.Tensor, ...]
    targets: tf.Tensor
    labelled: tf.Tensor

    @property
    def size(self) -> int:
        return int(self.targets.shape[0])


class SGAN:
    """Builds the models from an :class:`SGANConfig` and trains them.

    Args:
        config: the SGAN section of a run config.
        input_shapes: ``{feature_key: (rows, cols, 1)}`` in modality order.
        n_classes: K, the number of emotion classes of the first task.

    Example:
        >>> gan = SGAN(SGANConfig(), {"a_feat": (96, 64, 1)}, n_classes=4)  # doctest: +SKIP
        >>> signals = gan.train_epoch(data, batch_size=64)  # doctest: +SKIP
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
        self.g_optimizer.build([v for g in self.generators for v in g.trainable_variables])
        self._sums = tf.Variable(tf.zeros(len(HEALTH_SIGNALS) + 1), trainable=False)
        self._step = tf.function(self._train_step if self.generators else self._d_only_step)
        # evaluation batches vary in size: let one trace serve them all
        self._predict = tf.function(
            lambda x: self.discriminator(x, training=False), reduce_retracing=True
        )

    # ---- set-up -------------------------------------------------------------------------
    def _load_pretrained(self) -> list[str]:
        config, copied = self.config, []
        for path, unloaded in _paired(config.load_D, config.unloaded_D, "sgan.load_D"):
            source = load_keras_model(path, "sgan.load_D")
            copied += transfer_weights(self.discriminator, source, unloaded, "sgan.load_D")
        g_paths = _paired(config.load_G, config.unloaded_G, "sgan.load_G")
        if g_paths and len(g_paths) != len(self.generators):
            raise ConfigError(
                "sgan.load_G",
                f"give one generator per modality ({len(self.generators)}), got {len(g_paths)}",
            )
        for generator, (path, unloaded) in zip(self.generators, g_paths, strict=False):
            if path:
                source = load_keras_model(path, "sgan.load_G")
                copied += transfer_weights(generator, source, unloaded, "sgan.load_G")
        return copied

    def training_data(self, features: dict, labels: np.ndarray, labelled: np.ndarray):
        """Move training rows onto the device once (class ids in ``labels``)."""
        targets = np.zeros((len(labels), self.n_classes + 1), np.float32)
        ids = np.where(labelled, labels, 0).astype(int)
        targets[np.arange(len(labels)), ids] = 1.0
        return TrainingData(
            tuple(tf.constant(features[m]) for m in self.modalities),
            tf.constant(targets),
            tf.constant(labelled.astype(np.float32)),
        )

    # ---- losses -------------------------------------------------------------------------
    def _validity_loss(self, target: float, validity: tf.Tensor) -> tf.Tensor:
        if self.config.validity_loss == "mse":
            return tf.reduce_mean(tf.square(target - validity))
        targets = tf.fill(tf.shape(validity), target)
        return tf.reduce_mean(keras.losses.binary_crossentropy(targets, validity))

    def _heads(self, outputs):
        """``(validity, classes)`` from D's outputs; classes is None when unsupervised."""
        if self.config.unsupervised:
            return outputs[0] if isinstance(outputs, (list, tuple)) else outputs, None
        return outputs

    def _discriminate(self, images):
        return self._heads(self.discriminator(list(images), training=True))

    def _noisy(self, images):
        if not self.config.instance_noise:
            return images
        return [
            x + tf.random.normal(tf.shape(x), stddev=self.config.instance_noise) for x in images
        ]

    def _d_losses(self, real, fake, targets, mask):
        """D losses on real and fake halves, plus outputs the health signals need."""
        w_valid, w_class = self.config.task_weights
        # One D pass over real and fake rows together: batch-norm then normalises real rows
        # with the same real+fake statistics its moving averages hold at inference. Separate
        # passes (the source) normalise real rows differently in training and evaluation,
        # which cost the class head most of its validation UAR on the demo corpus.
        n_real = tf.shape(real[0])[0]
        images = [tf.concat([r, f], 0) for r, f in zip(real, fake, strict=True)]
        validity, classes = self._discriminate(self._noisy(images))
        v_real, v_fake = validity[:n_real], validity[n_real:]
        c_real, c_fake = (None, None) if classes is None else (classes[:n_real], classes[n_real:])
        real_target = 1.0 - self.config.label_smoothing  # one-sided smoothing (Salimans 2016)
        loss_real = w_valid * self._validity_loss(real_target, v_real)
        loss_fake = w_valid * self._validity_loss(0.0, v_fake)
        if c_real is not None:
            ce = keras.losses.categorical_crossentropy(targets, c_real)
            loss_real += w_class * tf.reduce_sum(ce * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
            fake_ids = tf.fill(tf.shape(v_fake)[:1], self.n_classes)
            fake_targets = tf.one_hot(fake_ids, self.n_classes + 1)
            loss_fake += w_class * tf.reduce_mean(
                keras.losses.categorical_crossentropy(fake_targets, c_fake)
            )
        return loss_real, loss_fake, v_real, v_fake, c_real

    # ---- the fused step -----------------------------------------------------------------
    def _generate(self, count, training):
        noise = tf.random.normal((count, self.config.latent_dim))
        return [g(noise, training=training) for g in self.generators]

    @staticmethod
    def _batch(features, targets, labelled, order, start, half):
        """Gather one batch of real rows on the device: no host copy per step."""
        rows = order[start : start + half]
        real = [tf.gather(x, rows) for x in features]
        return real, tf.gather(targets, rows), tf.gather(labelled, rows)

    def _train_step(self, features, targets, labelled, order, start, half: int) -> None:
        real, targets, mask = self._batch(features, targets, labelled, order, start, half)
        d_vars = self.discriminator.trainable_variables
        for _ in range(self.config.d_steps - 1):  # extra D-only updates (WGAN-style n_critic)
            fake = [tf.stop_gradient(x) for x in self._generate(half, training=True)]
            with tf.GradientTape() as tape:
                loss_real, loss_fake, *_ = self._d_losses(real, fake, targets, mask)
                d_loss = 0.5 * (loss_real + loss_fake)
            grads = tape.gradient(d_loss, d_vars)
            self.d_optimizer.apply_gradients(zip(grads, d_vars, strict=True))
        g_vars = [v for g in self.generators for v in g.trainable_variables]
        with tf.GradientTape(persistent=True) as tape:
            fake = self._generate(half, training=True)
            loss_real, loss_fake, v_real, v_fake, c_real = self._d_losses(real, fake, targets, mask)
            d_loss = 0.5 * (loss_real + loss_fake)
            g_loss = self._validity_loss(1.0, v_fake)
        d_grads = tape.gradient(d_loss, d_vars)
        g_grads = tape.gradient(g_loss, g_vars)
        del tape
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=False))
        if g_vars:
            self.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=False))
        self._accumulate(d_loss, loss_real, loss_fake, g_loss, v_real, v_fake, c_real, targets,
                         mask, d_grads, g_grads)  # fmt: skip

    def _d_only_step(self, features, targets, labelled, order, start, half: int) -> None:
        """``generator: false`` (the source's ``--turn_off_G``): D learns classes of real rows."""
        real, targets, mask = self._batch(features, targets, labelled, order, start, half)
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            v_real, c_real = self._discriminate(real)
            ce = keras.losses.categorical_crossentropy(targets, c_real)
            d_loss = tf.reduce_sum(ce * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        d_grads = tape.gradient(d_loss, d_vars)
        # the validity head gets no gradient without fakes: leave it out of the update
        pairs = [(g, v) for g, v in zip(d_grads, d_vars, strict=True) if g is not None]
        self.d_optimizer.apply_gradients(pairs)
        d_grads = [g for g, _ in pairs]
        zero, no_fakes = tf.zeros(()), tf.ones_like(v_real)  # no fakes: d_acc_fake reads 0
        self._accumulate(d_loss, d_loss, zero, zero, v_real, no_fakes, c_real, targets, mask,
                         d_grads, [])  # fmt: skip

    def _accumulate(self, d_loss, loss_real, loss_fake, g_loss, v_real, v_fake, c_real,
                    targets, mask, d_grads, g_grads) -> None:  # fmt: skip
        """Add this step's health signals to on-device sums: no host round-trip per step."""
        if c_real is None:
            class_acc = tf.zeros(())
        else:
            hits = tf.cast(
                tf.argmax(c_real[:, : self.n_classes], 1) == tf.argmax(targets, 1), tf.float32
            )
            class_acc = tf.reduce_sum(hits * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        signals = tf.stack([
            d_loss, loss_real, loss_fake, g_loss,
            tf.reduce_mean(tf.cast(v_real > 0.5, tf.float32)),
            tf.reduce_mean(tf.cast(v_fake < 0.5, tf.float32)),
            class_acc,
            tf.linalg.global_norm(d_grads),
            tf.linalg.global_norm(g_grads) if g_grads else tf.zeros(()),
        ])  # fmt: skip
        self._sums.assign_add(tf.concat([signals, tf.ones(1)], 0))

    # ---- epochs and evaluation ----------------------------------------------------------
    def train_epoch(self, data: TrainingData, batch_size: int, seed: int | None = None) -> dict:
        """One pass over the training rows in ``batch_size // 2`` real rows per step.

        Returns:
            The mean of every health signal over the epoch, plus ``nonfinite`` (1.0 when a
            loss or gradient norm went NaN/Inf) and ``steps``.
        """
        half = max(1, min(batch_size // 2, data.size))
        order = tf.random.shuffle(tf.range(data.size), seed=seed)
        self._sums.assign(tf.zeros_like(self._sums))
        for start in range(0, data.size - half + 1, half):
            self._step(data.features, data.targets, data.labelled, order, tf.constant(start), half)
        sums = self._sums.numpy()
        steps = max(float(sums[-1]), 1.0)
        means = sums[: len(HEALTH_SIGNALS)] / steps
        signals = {n: float(v) for n, v in zip(HEALTH_SIGNALS, means, strict=True)}
        signals["nonfinite"] = float(not np.isfinite(sums).all())
        signals["steps"] = int(sums[-1])
        return signals

    def predict_classes(self, features: dict, batch_size: int = 256) -> np.ndarray | None:
        """Class probabilities over the K real classes (the "fake" column dropped)."""
        if self.config.unsupervised:
            return None
        outputs = []
        n = len(next(iter(features.values())))
        for start in range(0, n, batch_size):
            batch = [tf.constant(features[m][start : start + batch_size]) for m in self.modalities]
            outputs.append(self._predict(batch)[1].numpy()[:, : self.n_classes])
        return np.concatenate(outputs) if outputs else np.zeros((0, self.n_classes))

    def validity(self, features: dict, limit: int = 512) -> float:
        """Mean validity D gives real rows (a realism anchor for unsupervised runs)."""
        batch = [tf.constant(features[m][:limit]) for m in self.modalities]
        validity, _ = self._heads(self._predict(batch))
        return float(tf.reduce_mean(validity))

    def generate(self, count: int, seed: int = 0) -> dict[str, np.ndarray]:
        """``count`` samples per modality from fixed noise (for images and diversity)."""
        noise = tf.random.stateless_normal((count, self.config.latent_dim), seed=(seed, 0))
        return {
            m: g(noise, training=False).numpy()
            for m, g in zip(self.modalities, self.generators, strict=True)
        }

    def diversity(self, real: dict, count: int = 64) -> float:
        """Mean pairwise distance of generated samples over that of real rows (1: as diverse
        as the data; near 0: mode collapse), averaged over modalities."""
        if not self.generators:
            return float("nan")
        fakes = self.generate(count)
        ratios = [
            _mean_pairwise_distance(fakes[m]) / max(_mean_pairwise_distance(real[m][:count]), 1e-8)
            for m in self.modalities
        ]
        return float(np.mean(ratios))

    def save(self, directory) -> list[str]:
        """Write ``discriminator.keras`` and ``<modality>.generator.keras``."""
        paths = [f"{directory}/discriminator.keras"]
        self.discriminator.save(paths[0])
        for modality, generator in zip(self.modalities, self.generators, strict=False):
            paths.append(f"{directory}/{modality}.generator.keras")
            generator.save(paths[-1])
        return paths

    def weights(self) -> list:
        return [m.get_weights() for m in (self.discriminator, *self.generators)]

    def set_weights(self, weights: list) -> None:
        for model, values in zip((self.discriminator, *self.generators), weights, strict=True):
            model.set_weights(values)


def _mean_pairwise_distance(samples: np.ndarray) -> float:
    flat = samples.reshape(len(samples), -1).astype(np.float64)
    squared = (flat**2).sum(1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0))
    n = len(flat)
    return float(distances.sum() / max(n * (n - 1), 1))


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
    if not config.generator and config.unsupervised:
        raise ConfigError("sgan.generator", "an unsupervised SGAN needs its generator")
