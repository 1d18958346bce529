"""The source trainer's post-classifier (``--post_elm``): an extreme learning machine over
utterance statistics of a frame-level model's outputs.

Each utterance becomes, per task and class, the maximum, minimum and mean of the frame-level
probabilities and the share of frames above 0.3 weighted by the mean (the source's
"high-level features"); an extreme learning machine (Huang et al. 2006: a fixed random
hidden layer, output weights in closed form) classifies those.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.3  # the source's frame-probability threshold for the "portion" statistic


def utterance_statistics(frame_outputs: list[np.ndarray]) -> np.ndarray:
    """``(n, time, classes)`` probabilities per task -> ``(n, 4 * sum(classes))`` features."""
    parts = []
    for outputs in frame_outputs:
        mean = outputs.mean(axis=1)
        over = (outputs > THRESHOLD).sum(axis=1)
        portion = over * mean / (outputs.sum(axis=1) + 1e-6)
        parts += [outputs.max(axis=1), outputs.min(axis=1), mean, portion]
    return np.concatenate(parts, axis=1).astype(np.float64)


class ExtremeLearningMachine:
    """A random linear hidden layer (as the source) and ridge-regularised output weights.

    Args:
        hidden: hidden units (the source's ``-elm_hidden``, default 50).
        seed: seed of the random hidden layer.
        omega: inverse ridge strength (the source's 1.0).

    Example:
        >>> elm = ExtremeLearningMachine(8, seed=0)
        >>> elm.fit(np.eye(4), np.eye(4)).predict(np.eye(4)).shape
        (4, 4)
    """

    def __init__(self, hidden: int = 50, seed: int = 0, omega: float = 1.0) -> None:
        if hidden < 1 or omega <= 0:
            raise ValueError(f"need hidden >= 1 and omega > 0, got {hidden}, {omega}")
        self.hidden = hidden
        self.seed = seed
        self.omega = omega
        self.weights: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self.beta: np.ndarray | None = None

    def fit(self, features: np.ndarray, targets: np.ndarray) -> ExtremeLearningMachine:
        """Draw the hidden layer and solve for the output weights (one-hot ``targets``)."""
        rng = np.random.default_rng(self.seed)
        self.weights = rng.standard_normal((features.shape[1], self.hidden))
        self.bias = rng.standard_normal(self.hidden)
        hidden = self._hidden(features)
        ridge = np.eye(self.hidden) / self.omega
        self.beta = np.linalg.solve(hidden.T @ hidden + ridge, hidden.T @ targets)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class scores (argmax: the predicted class)."""
        if self.beta is None:
            raise RuntimeError("fit the ELM first")
        return self._hidden(features) @ self.beta

    def _hidden(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights + self.bias

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "bias": self.bias, "beta": self.beta}

    @classmethod
    def from_arrays(cls, arrays: dict, seed: int = 0) -> ExtremeLearningMachine:
        elm = cls(arrays["weights"].shape[1], seed)
        elm.weights, elm.bias, elm.beta = arrays["weights"], arrays["bias"], arrays["beta"]
        return elm
