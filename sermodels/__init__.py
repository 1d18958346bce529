"""Shared SER / SGAN model library: data contract, models, training and metrics.

Keras 3 on TensorFlow or JAX (``sermodels.backend``); never imports Ray or Optuna. Grouped by
concern: ``data`` (h5 contract, demo corpus, WAV extraction), ``models`` (Keras models and
losses), ``training`` (epoch loop, SGAN step, SER training, logging).
"""

from sermodels.errors import ConfigError, DataError, SersweepError

__all__ = ["ConfigError", "DataError", "SersweepError"]
