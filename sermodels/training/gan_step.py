"""The SGAN's compiled training step, one per Keras backend behind one interface.

Both run the game of :class:`sermodels.training.gan.SGAN` (losses and signals written once
in ``keras.ops``) and differ only where Keras leaves it to the backend: how gradients are
taken and how state is kept.

* TensorFlow: a ``tf.function`` over stateful Keras calls, a persistent ``GradientTape`` for
  D's and G's gradients, signals summed in a variable on the device.
* JAX: ``jax.jit`` over ``stateless_call``; one forward pass, and ``jax.vjp`` pulls D's and
  G's gradients from it; the state (weights, batch-norm statistics, dropout seeds,
  optimiser slots, signal sums) is threaded through the steps of an epoch and written back
  to the Keras variables at its end.

Each step draws its noise from ``(epoch seed, step)``, so an epoch is a function of its
seed and rows, not of an RNG's history.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from sermodels.data.stream import prefetched
from sermodels.training.gan_values import HEALTH_SIGNALS, Game, Play, StreamedRows, TrainingRows

DRAWS_PER_STEP = 64  # seed space of one step: noise, instance noise, extra D steps
Report = Callable[[int, np.ndarray], None]  # (steps done, signal sums so far)
Rows = TrainingRows | StreamedRows


def _batches(rows: Rows, order: np.ndarray, starts: list[int], half: int):
    """What each step gets: the start of its slice of ``order`` (resident rows, gathered on
    the device), or its batch of real rows, read ahead from the file (streamed rows)."""
    if isinstance(rows, StreamedRows):
        return prefetched(rows.batch(order[start : start + half]) for start in starts)
    return iter(starts)


def _due(done: int, total: int, every: int) -> bool:
    """Whether the sums are reported after step ``done`` (a device round-trip each time)."""
    return every > 0 and (done % every == 0 or done == total)


def game_step(gan: Game):
    """The compiled step for the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return TensorFlowStep(gan)
    if backend == "jax":
        return JaxStep(gan)
    raise RuntimeError(f"the SGAN step supports tensorflow and jax, not {backend}")


class TensorFlowStep:
    """``tf.function`` + ``GradientTape`` over the stateful models."""

    def __init__(self, gan: Game) -> None:
        import tensorflow as tf

        self.gan = gan
        self.sums = tf.Variable(tf.zeros(len(HEALTH_SIGNALS) + 1), trainable=False)
        self._resident = tf.function(self._resident_step)
        self._streamed = tf.function(self._train)

    def epoch(
        self,
        rows: Rows,
        order: np.ndarray,
        starts: list[int],
        half: int,
        seed: int,
        report: Report | None = None,
        every: int = 0,
    ) -> np.ndarray:
        """Train one epoch; returns the summed signal vector (``report`` gets it every
        ``every`` steps)."""
        import tensorflow as tf

        self.sums.assign(tf.zeros_like(self.sums))
        device_order = tf.constant(order)
        for done, batch in enumerate(_batches(rows, order, starts, half), 1):
            step_seed = tf.constant([seed % 2**31, done * DRAWS_PER_STEP], tf.int32)
            if isinstance(rows, StreamedRows):
                real, targets, mask = batch
                self._streamed(
                    [tf.constant(x) for x in real],
                    tf.constant(targets),
                    tf.constant(mask),
                    step_seed,
                )
            else:
                self._resident(
                    rows.features,
                    rows.targets,
                    rows.labelled,
                    device_order,
                    tf.constant(batch),
                    step_seed,
                    half,
                )
            if report and _due(done, len(starts), every):
                report(done, self.sums.numpy())
        return self.sums.numpy()

    def _resident_step(self, features, targets, labelled, order, start, seed, half: int) -> None:
        """Gather one batch of real rows on the device (no host copy per step), then train."""
        from keras import ops

        rows = ops.slice(order, [start], [half])
        real = [ops.take(x, rows, axis=0) for x in features]
        self._train(real, ops.take(targets, rows, axis=0), ops.take(labelled, rows, axis=0), seed)

    def _train(self, real: list, targets, mask, seed) -> None:
        import tensorflow as tf

        gan = self.gan

        def draw(shape, k):
            return tf.random.stateless_normal(shape, seed=seed + tf.constant([0, k]))

        def discriminate(images):
            return gan.discriminator(images, training=True)

        d_vars = gan.discriminator.trainable_variables
        if not gan.generators:
            with tf.GradientTape() as tape:
                play = gan.play_d_only(real, targets, mask, discriminate)
            # the validity head gets no gradient without fakes: leave it out of the update
            pairs = [
                (g, v)
                for g, v in zip(tape.gradient(play.d_loss, d_vars), d_vars, strict=True)
                if g is not None
            ]
            gan.d_optimizer.apply_gradients(pairs)
            self.sums.assign_add(gan.signals(play, targets, mask, [g for g, _ in pairs], []))
            return
        half = real[0].shape[0]
        for extra in range(1, gan.config.d_steps):  # extra D-only updates (WGAN-style n_critic)

            def extra_draw(shape, k, extra=extra):
                return draw(shape, 8 * extra + k)

            noise = gan.noise(half, extra_draw)
            fake = [tf.stop_gradient(g(noise, training=True)) for g in gan.generators]
            with tf.GradientTape() as tape:
                play = gan.play(real, targets, mask, fake, discriminate, extra_draw)
            grads = tape.gradient(play.d_loss, d_vars)
            gan.d_optimizer.apply_gradients(zip(grads, d_vars, strict=True))
        g_vars = gan.g_variables
        with tf.GradientTape(persistent=True) as tape:
            noise = gan.noise(half, draw)
            fake = [g(noise, training=True) for g in gan.generators]
            play = gan.play(real, targets, mask, fake, discriminate, draw)
        d_grads = tape.gradient(play.d_loss, d_vars)
        g_grads = tape.gradient(play.g_loss, g_vars)
        del tape
        gan.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
        if g_vars:  # every generator layer frozen: nothing to update
            gan.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))
        self.sums.assign_add(gan.signals(play, targets, mask, d_grads, g_grads))


class JaxStep:
    """``jax.jit`` over stateless calls; the epoch's state is threaded through its steps."""

    def __init__(self, gan: Game) -> None:
        import jax

        self.gan = gan
        self._g_counts = [len(g.trainable_variables) for g in gan.generators]
        self._resident = jax.jit(
            self._resident_step, static_argnames=("half",), donate_argnums=(0,)
        )
        self._streamed = jax.jit(self._streamed_step, donate_argnums=(0,))

    # ---- state: Keras variables <-> arrays -----------------------------------------------
    def _read_state(self) -> dict:
        gan = self.gan

        def values(variables):
            return [v.value for v in variables]

        return {
            "d": values(gan.discriminator.trainable_variables),
            "d_fixed": values(gan.discriminator.non_trainable_variables),
            "g": values(gan.g_variables),
            "g_fixed": [values(g.non_trainable_variables) for g in gan.generators],
            "d_opt": values(gan.d_optimizer.variables),
            "g_opt": values(gan.g_optimizer.variables),
            "sums": keras.ops.zeros(len(HEALTH_SIGNALS) + 1),
        }

    def _write_state(self, state: dict) -> None:
        gan = self.gan
        pairs = [
            (gan.discriminator.trainable_variables, state["d"]),
            (gan.discriminator.non_trainable_variables, state["d_fixed"]),
            (gan.g_variables, state["g"]),
            (gan.d_optimizer.variables, state["d_opt"]),
            (gan.g_optimizer.variables, state["g_opt"]),
            *zip(
                (g.non_trainable_variables for g in gan.generators), state["g_fixed"], strict=True
            ),
        ]
        for variables, values in pairs:
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)

    # ---- the epoch ------------------------------------------------------------------------
    def epoch(
        self,
        rows: Rows,
        order: np.ndarray,
        starts: list[int],
        half: int,
        seed: int,
        report: Report | None = None,
        every: int = 0,
    ) -> np.ndarray:
        """Train one epoch; returns the summed signal vector (``report`` gets it every
        ``every`` steps)."""
        import jax

        state = self._read_state()
        device_order = jax.numpy.asarray(order)
        key = jax.random.PRNGKey(seed % 2**31)
        for done, batch in enumerate(_batches(rows, order, starts, half), 1):
            if isinstance(rows, StreamedRows):
                real, targets, mask = batch
                state = self._streamed(state, list(real), targets, mask, key, done)
            else:
                state = self._resident(
                    state,
                    rows.features,
                    rows.targets,
                    rows.labelled,
                    device_order,
                    batch,
                    key,
                    done,
                    half=half,
                )
            if report and _due(done, len(starts), every):
                report(done, np.asarray(state["sums"]))
        self._write_state(state)
        return np.asarray(state["sums"])

    def _resident_step(
        self, state, features, targets, labelled, order, start, key, step, half: int
    ):
        import jax
        from keras import ops

        rows = ops.slice(order, [start], [half])
        real = [ops.take(x, rows, axis=0) for x in features]
        step_key = jax.random.fold_in(key, step)
        return self._train(
            state, real, ops.take(targets, rows, axis=0), ops.take(labelled, rows, axis=0), step_key
        )

    def _streamed_step(self, state, real: list, targets, mask, key, step):
        import jax

        return self._train(state, real, targets, mask, jax.random.fold_in(key, step))

    def _train(self, state: dict, real: list, targets, mask, key) -> dict:
        import jax

        gan = self.gan
        state = dict(state)

        def draw(shape, k):
            return jax.random.normal(jax.random.fold_in(key, k), shape)

        if not gan.generators:

            def d_only_loss(d_vars):
                discriminate, fixed = self._discriminator(d_vars, state["d_fixed"])
                play = gan.play_d_only(real, targets, mask, discriminate)
                return play.d_loss, (fixed["d"], play.as_tuple())

            grad = jax.grad(d_only_loss, has_aux=True)
            d_grads, (state["d_fixed"], play) = grad(state["d"])
            state["d"], state["d_opt"] = gan.d_optimizer.stateless_apply(
                state["d_opt"], d_grads, state["d"]
            )
            return self._accumulate(state, play, targets, mask, d_grads, [])
        half = real[0].shape[0]
        for extra in range(1, gan.config.d_steps):  # extra D-only updates (WGAN-style n_critic)

            def extra_draw(shape, k, extra=extra):
                return draw(shape, 8 * extra + k)

            fake, state["g_fixed"] = self._generate(state["g"], state["g_fixed"], half, extra_draw)
            fake = [jax.lax.stop_gradient(x) for x in fake]

            def d_loss(d_vars, fake=fake, extra_draw=extra_draw):
                discriminate, fixed = self._discriminator(d_vars, state["d_fixed"])
                play = gan.play(real, targets, mask, fake, discriminate, extra_draw)
                return play.d_loss, fixed["d"]

            d_grads, state["d_fixed"] = jax.grad(d_loss, has_aux=True)(state["d"])
            state["d"], state["d_opt"] = gan.d_optimizer.stateless_apply(
                state["d_opt"], d_grads, state["d"]
            )

        def game(d_vars, g_vars):
            fake, g_fixed = self._generate(g_vars, state["g_fixed"], half, draw)
            discriminate, fixed = self._discriminator(d_vars, state["d_fixed"])
            play = gan.play(real, targets, mask, fake, discriminate, draw)
            return (play.d_loss, play.g_loss), (fixed["d"], g_fixed, play.as_tuple())

        # one forward pass; D's gradient from d_loss, G's from g_loss (as a persistent tape)
        _, pullback, aux = jax.vjp(game, state["d"], state["g"], has_aux=True)
        state["d_fixed"], state["g_fixed"], play = aux
        one, zero = jax.numpy.ones(()), jax.numpy.zeros(())
        d_grads, _ = pullback((one, zero))
        _, g_grads = pullback((zero, one))
        state["d"], state["d_opt"] = gan.d_optimizer.stateless_apply(
            state["d_opt"], d_grads, state["d"]
        )
        if state["g"]:  # every generator layer frozen: nothing to update
            state["g"], state["g_opt"] = gan.g_optimizer.stateless_apply(
                state["g_opt"], g_grads, state["g"]
            )
        return self._accumulate(state, play, targets, mask, d_grads, g_grads)

    def _discriminator(self, d_vars: list, d_fixed: list):
        """A stateless D call, and where the batch-norm statistics and dropout seeds it
        updates end up (``fixed["d"]``)."""
        fixed = {"d": d_fixed}

        def discriminate(images):
            outputs, fixed["d"] = self.gan.discriminator.stateless_call(
                d_vars, d_fixed, images, training=True
            )
            return outputs

        return discriminate, fixed

    def _generate(self, g_vars: list, g_fixed: list, count: int, draw) -> tuple[list, list]:
        """Every modality's generator on the same noise, statelessly."""
        noise = self.gan.noise(count, draw)
        fakes, updated, offset = [], [], 0
        for generator, fixed, size in zip(
            self.gan.generators, g_fixed, self._g_counts, strict=True
        ):
            image, fixed = generator.stateless_call(
                g_vars[offset : offset + size], fixed, noise, training=True
            )
            fakes.append(image)
            updated.append(fixed)
            offset += size
        return fakes, updated

    def _accumulate(self, state: dict, play: tuple, targets, mask, d_grads, g_grads) -> dict:
        signals = self.gan.signals(Play(*play), targets, mask, list(d_grads), list(g_grads))
        state["sums"] = state["sums"] + signals
        return state
