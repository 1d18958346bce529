"""The one place sermodels uses a private Keras name (``tests/sermodels/test_backend.py``
pins the behaviour relied on, so a Keras upgrade that changes it fails there).

``keras.utils.set_random_seed`` resets Keras' global seed and also imports TensorFlow to seed
it whenever TensorFlow is installed; a JAX process must neither need nor load TensorFlow.
"""

from __future__ import annotations

from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils import rng_utils


def set_keras_seed(seed: int) -> None:
    """Reset Keras' global seed (initialisers, dropout, ``keras.random`` without a seed) as
    ``keras.utils.set_random_seed`` does, without touching TensorFlow."""
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
