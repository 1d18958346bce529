"""Training one configuration: the shared epoch loop with checkpoints, the SGAN game and its
compiled step per backend, SER training, TensorBoard logging."""

from sermodels.training.run import make_run, train, train_on

__all__ = ["make_run", "train", "train_on"]
