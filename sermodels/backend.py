"""Which Keras backend runs the models (TensorFlow or JAX), and how a process is set up for it.

Keras reads ``KERAS_BACKEND`` once, when it is first imported: :func:`select` sets it before
that happens (the CLI calls it from ``--backend``), and :func:`worker_environment` gives the
variables every Ray worker of a sweep starts with, so driver and trials agree. Nothing here
imports TensorFlow on the JAX path: a JAX process runs where TensorFlow is not installed.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from sermodels.errors import ConfigError

BACKENDS = ("tensorflow", "jax")
DEFAULT = "tensorflow"
# JAX compiles each new shape; its persistent cache lets trials (and later runs) of the same
# shapes skip the compile: half the time of a first JAX epoch on the demo SGAN
JAX_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sersweep" / "jax"
# A share of a GPU leaves this much of it for the CUDA context and the allocator's slack.
GPU_HEADROOM = 0.9

logger = logging.getLogger(__name__)


def requested(name: str | None = None) -> str:
    """The backend asked for: ``name``, else ``KERAS_BACKEND``, else TensorFlow.

    Example:
        >>> requested("jax")
        'jax'
    """
    chosen = name or os.environ.get("KERAS_BACKEND") or DEFAULT
    if chosen not in BACKENDS:
        raise ConfigError("--backend", f"expected one of {BACKENDS}, got {chosen!r}")
    return chosen


def select(name: str | None = None) -> str:
    """Make ``name`` (or the requested default) this process's Keras backend.

    Must run before Keras is imported; if Keras already runs on another backend, that is an
    error rather than a silent mix.
    """
    chosen = requested(name)
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != chosen:
        raise ConfigError(
            "--backend", f"Keras already runs on {keras.backend.backend()} in this process"
        )
    os.environ["KERAS_BACKEND"] = chosen
    if chosen == "jax":
        for key, value in jax_cache_environment().items():
            os.environ.setdefault(key, value)  # read by JAX when it is imported
    return chosen


def jax_cache_environment() -> dict[str, str]:
    """JAX's persistent compilation cache: ``JAX_COMPILATION_CACHE_DIR`` if set, else
    ``~/.cache/sersweep/jax``; compiles over 0.1 s are kept."""
    return {
        "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR", str(JAX_CACHE)),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": os.environ.get(
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1"
        ),
    }


def load(name: str | None = None) -> str:
    """:func:`select` the backend, then import Keras on it. TensorFlow prints C++ start-up
    chatter before its logging is set up (``TF_CPP_MIN_LOG_LEVEL`` cannot hide it): it is
    kept off stderr, and shown if the import fails."""
    chosen = select(name)
    if chosen == "tensorflow" and "tensorflow" not in sys.modules:
        _import_quietly("tensorflow")
    import keras  # noqa: F401

    return chosen


def _import_quietly(module: str) -> None:
    saved = os.dup(2)
    with tempfile.TemporaryFile() as chatter:
        os.dup2(chatter.fileno(), 2)
        try:
            __import__(module)
        except BaseException:
            os.dup2(saved, 2)
            chatter.seek(0)
            sys.stderr.write(chatter.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def active() -> str:
    """The backend Keras runs on in this process (imports Keras)."""
    import keras

    return keras.backend.backend()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and Keras (weight initialisers, dropout) from one number."""
    random.seed(seed)
    np.random.seed(seed)
    if active() == "tensorflow":
        import keras

        keras.utils.set_random_seed(seed)  # also TensorFlow's own global seed
    else:
        from sermodels.keras_adapter import set_keras_seed

        set_keras_seed(seed)  # what set_random_seed does, without importing TensorFlow


def configure_threads(cpus: float) -> None:
    """Give TensorFlow the threads of the trial's CPUs (JAX reads its thread setting from
    ``XLA_FLAGS`` at start-up: :func:`worker_environment`). A setting that cannot change any
    more is reported, not hidden."""
    if active() != "tensorflow":
        return
    import tensorflow as tf

    threads = max(1, round(cpus))
    wanted = {"intra_op": threads, "inter_op": min(2, threads)}
    current = {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    if current == wanted:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(wanted["intra_op"])
        tf.config.threading.set_inter_op_parallelism_threads(wanted["inter_op"])
    except RuntimeError as exc:  # TensorFlow already started its thread pools
        logger.warning(
            "TensorFlow threads stay at %s (wanted %s for %s CPUs): %s", current, wanted, cpus, exc
        )


def worker_environment(backend: str, cpus: float, gpus: float) -> dict[str, str]:
    """Environment variables a process training with ``cpus`` CPUs and a ``gpus`` share of
    the GPUs must start with.

    On a GPU shared by several trials each must take a bounded share of its memory: JAX
    pre-allocates 75 % of a GPU by default, so a share ``s < 1`` becomes
    ``XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 s``; TensorFlow grows its memory on demand.

    Example:
        >>> worker_environment("jax", 1, 0.25)["XLA_PYTHON_CLIENT_MEM_FRACTION"]
        '0.225'
    """
    environment = {"KERAS_BACKEND": requested(backend)}
    if backend == "jax":
        environment.update(jax_cache_environment())
        if 0 < gpus < 1:
            environment["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{GPU_HEADROOM * gpus:.3g}"
        if cpus < 2:
            # XLA's CPU backend otherwise runs each op on every core of the machine, and
            # trials sharing the cores slow each other down
            single = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            environment["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), single]))
    else:
        environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return environment


@functools.cache
def accelerators() -> tuple[str, ...]:
    """The GPUs the active backend sees (empty on a CPU-only machine)."""
    if active() == "jax":
        import jax

        return tuple(str(d) for d in jax.devices() if d.platform == "gpu")
    import tensorflow as tf

    return tuple(d.name for d in tf.config.list_physical_devices("GPU"))


def accelerator_peak_bytes() -> int | None:
    """Peak memory the active backend has allocated on its first GPU, or ``None`` without a
    GPU (or where the backend does not report it)."""
    if not accelerators():
        return None
    if active() == "jax":
        import jax

        gpu = next(d for d in jax.devices() if d.platform == "gpu")
        stats = gpu.memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    import tensorflow as tf

    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
