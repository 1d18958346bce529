"""The values the SGAN's game and its compiled step share: the health signals, the training
rows (resident or streamed), what one pass of the game computed, and the game as the step
sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import keras
import numpy as np
from keras import ops

from sermodels.config import SGANConfig
from sermodels.data.stream import StreamSplit

HEALTH_SIGNALS = (
    "d_loss",
    "d_loss_real",
    "d_loss_fake",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "class_acc",
    "d_grad_norm",
    "g_grad_norm",
)
# draw(shape, k): the k-th standard normal draw of a step, from the step's own seed, so the
# same epoch seed gives the same noise whichever way the rows arrive
Draw = Callable[[tuple, int], object]


@dataclass
class TrainingRows:
    """Training rows resident on the device: features per modality, one-hot labels with the
    extra "fake" column, and a 0/1 mask of rows whose labels may be used."""

    features: tuple
    targets: object
    labelled: object
    size: int


@dataclass
class StreamedRows:
    """Training rows left in the h5 file (a streaming split): each step's batch is read when
    the step is near, with the same one-hot targets and mask as :class:`TrainingRows`."""

    split: StreamSplit
    modalities: list[str]
    targets: np.ndarray
    labelled: np.ndarray
    size: int

    def batch(self, positions: np.ndarray) -> tuple:
        """``(features per modality, targets, mask)`` of the rows at ``positions``."""
        features = self.split.read(positions)
        real = tuple(features[m] for m in self.modalities)
        return real, self.targets[positions], self.labelled[positions]


@dataclass
class Play:
    """What one pass of the game computed: both players' losses and what the health signals
    need."""

    d_loss: object
    g_loss: object
    loss_real: object
    loss_fake: object
    v_real: object
    v_fake: object
    c_real: object | None

    def as_tuple(self) -> tuple:
        """The fields in order (a plain tuple crosses ``jax.jit`` boundaries)."""
        return tuple(vars(self).values())


class Game(Protocol):
    """What a compiled step needs of the game it plays (:class:`sermodels.training.gan.SGAN`)."""

    config: SGANConfig
    discriminator: keras.Model
    generators: list[keras.Model]
    d_optimizer: keras.optimizers.Optimizer
    g_optimizer: keras.optimizers.Optimizer

    @property
    def g_variables(self) -> list: ...

    def noise(self, count: int, draw: Draw) -> list: ...

    def play(self, real: list, targets, mask, fake: list, discriminate, draw: Draw) -> Play: ...

    def play_d_only(self, real: list, targets, mask, discriminate) -> Play: ...

    def signals(self, play: Play, targets, mask, d_grads: list, g_grads: list): ...


def masked_mean(values, mask):
    """Mean of ``values`` over rows whose ``mask`` is 1 (0 when none is)."""
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def global_norm(tensors: list):
    """The global L2 norm of a list of gradients (0 for an empty list)."""
    if not tensors:
        return ops.zeros(())
    return ops.sqrt(sum(ops.sum(ops.square(t)) for t in tensors))


def means(sums: np.ndarray) -> dict:
    """Per-signal means from the summed signal vector (its last entry counts the steps)."""
    steps = max(float(sums[-1]), 1.0)
    signals = {n: float(v) / steps for n, v in zip(HEALTH_SIGNALS, sums, strict=False)}
    signals["nonfinite"] = float(not np.isfinite(sums).all())
    signals["steps"] = int(sums[-1])
    return signals
