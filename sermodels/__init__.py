"""Shared SER / SGAN model library: data contract, models, train steps and metrics.

Pure TensorFlow/Keras; never imports Ray or Optuna.
"""

from sermodels.errors import ConfigError, DataError, SersweepError

__all__ = ["ConfigError", "DataError", "SersweepError"]
