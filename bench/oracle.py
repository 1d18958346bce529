"""The oracle that labels recorded SGAN runs for the detector benchmark: evidence about a
generator that the detector never reads (docs/collapse.md, *Judged by an oracle*).

The detector judges a run from its game signals (D's accuracies and losses, gradient norms,
the spread of G's samples against random training rows). The oracle instead fits, once per
corpus and feature set, a fixed embedding of **real** rows (standardised, then PCA) and a
fixed classifier on it, and asks of G's samples at each epoch:

* ``coverage`` (Naeem et al. 2020, *Reliable fidelity and diversity metrics for generative
  models*): the share of held-out real rows (the validation speakers, which the GAN never
  trains on) whose k-nearest-neighbour ball in the embedding holds a generated sample;
* ``density``: how many such balls hold each generated sample, over k (1 for samples spread
  like the real rows, near 0 for samples far from all of them);
* ``recognised``: the fixed classifier's mean top-class probability on G's samples (chance
  is one over the number of classes).

``real_coverage`` is the coverage an independent sample of real training rows of the same
size reaches: the scale the oracle's threshold is a share of.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real, fake = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    >>> 0.8 < density_coverage(real, fake, k=5)["coverage"] <= 1.0
    True
    >>> density_coverage(real, np.zeros((200, 4)), k=5)["coverage"] < 0.2
    True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors

NEIGHBOURS = 5  # k of the k-NN balls, as Naeem et al. recommend
DIMENSIONS = 32  # PCA components per modality
SAMPLES = 256  # generated samples, held-out real rows and independent real rows per epoch


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS) -> dict:
    """Density and coverage of ``fake`` against ``real`` (rows: samples; both embedded).

    Args:
        real: reference rows, shape ``(n, d)`` with ``n > k``.
        fake: rows to judge, shape ``(m, d)``.
        k: neighbours that set each real row's ball radius.
    """
    if len(real) <= k:
        raise ValueError(f"density_coverage: {len(real)} real rows, need more than k={k}")
    if len(fake) == 0:
        raise ValueError("density_coverage: no rows to judge")
    # each real row's radius: the distance to its k-th nearest other real row
    radii = NearestNeighbors(n_neighbors=k + 1).fit(real).kneighbors(real)[0][:, -1]
    distances = np.linalg.norm(fake[:, None, :] - real[None, :, :], axis=-1)  # (m, n)
    inside = distances < radii[None, :]
    return {
        "density": float(inside.sum() / (k * len(fake))),
        "coverage": float(inside.any(axis=0).mean()),
    }


class Oracle:
    """A fixed embedding of real rows and a fixed classifier on it, fitted once.

    Args:
        train: real training rows per modality (``{key: (n, ...)}``), all of them labelled
            or not.
        labels: class index per training row, ``-1`` where unlabelled.
        seed: PCA's and the classifier's seed.

    Example:
        >>> oracle = Oracle(corpus_rows, labels, seed=0)  # doctest: +SKIP
        >>> oracle.judge(gan.generate(256), held_out)  # doctest: +SKIP
    """

    def __init__(self, train: Mapping[str, np.ndarray], labels: np.ndarray, seed: int = 0):
        self.keys = sorted(train)
        self._scales = {}
        self._pcas = {}
        for key in self.keys:
            flat = _flat(train[key])
            mean, std = flat.mean(axis=0), flat.std(axis=0) + 1e-6
            components = min(DIMENSIONS, flat.shape[0] - 1, flat.shape[1])
            self._scales[key] = (mean, std)
            self._pcas[key] = PCA(components, random_state=seed).fit((flat - mean) / std)
        embedded = self.embed(train)
        labelled = labels >= 0
        self.classes = int(labels[labelled].max()) + 1
        self._classifier = LogisticRegression(max_iter=2000, random_state=seed)
        self._classifier.fit(embedded[labelled], labels[labelled])

    def embed(self, rows: Mapping[str, np.ndarray]) -> np.ndarray:
        """Rows per modality -> one embedded row each (the modalities side by side)."""
        parts = []
        for key in self.keys:
            mean, std = self._scales[key]
            parts.append(self._pcas[key].transform((_flat(rows[key]) - mean) / std))
        return np.concatenate(parts, axis=1)

    def judge(self, generated: Mapping[str, np.ndarray], held_out: np.ndarray) -> dict:
        """Coverage, density and recognisability of ``generated`` (rows per modality, raw)
        against ``held_out`` (real rows, already embedded)."""
        if not all(np.all(np.isfinite(generated[key])) for key in self.keys):
            # a generator gone non-finite covers nothing
            return {"coverage": 0.0, "density": 0.0, "kid": float("inf"), "recognised": None}
        embedded = self.embed(generated)
        figures = density_coverage(held_out, embedded)
        figures["kid"] = kernel_distance(held_out, embedded)
        probabilities = self._classifier.predict_proba(embedded)
        figures["recognised"] = float(probabilities.max(axis=1).mean())
        return figures


def _flat(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values.reshape(len(values), -1)


def kernel_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Kernel inception distance (Bińkowski et al. 2018) on embedded rows: the unbiased MMD²
    with the cubic polynomial kernel ``(x·y / d + 1)³``; 0 for samples from the real rows'
    distribution, larger the further G's samples are from them."""
    d = real.shape[1]

    def kernel(a, b):
        return (a @ b.T / d + 1.0) ** 3

    n, m = len(real), len(fake)
    k_rr, k_ff, k_rf = kernel(real, real), kernel(fake, fake), kernel(real, fake)
    within_real = (k_rr.sum() - np.trace(k_rr)) / (n * (n - 1))
    within_fake = (k_ff.sum() - np.trace(k_ff)) / (m * (m - 1))
    return float(within_real + within_fake - 2 * k_rf.mean())
