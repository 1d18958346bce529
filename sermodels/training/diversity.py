"""How varied a generator's samples are, against real rows: the mean pairwise-distance ratio
(``diversity``) and the number of statistically different bins (``ndb``).

Both compare generated samples with real training rows drawn at random with the run's seed:
rows are stored speaker by speaker, so the first rows of a corpus are one or two speakers.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import norm
from sklearn.cluster import KMeans


def real_sample(rows, seed: int, count: int) -> dict:
    """``count`` real rows per feature key (all of them when there are fewer), drawn at random
    with ``seed`` and kept in corpus order. ``rows``: a split (resident or streamed: only the
    drawn rows are read) or a dict of arrays."""
    n_rows = len(next(iter(rows.values()))) if isinstance(rows, dict) else len(rows)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n_rows, size=min(count, n_rows), replace=False))
    if isinstance(rows, dict):
        return {key: values[chosen] for key, values in rows.items()}
    return rows.read(chosen)


def mean_pairwise_distance(samples: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows."""
    flat = np.asarray(samples, np.float64).reshape(len(samples), -1)
    return float(pdist(flat).mean()) if len(flat) > 1 else 0.0


def distance_ratio(generated: np.ndarray, real: np.ndarray) -> float:
    """Mean pairwise distance of generated samples over that of real rows: 1 when G spreads
    like the data, near 0 when its samples are one sample (mode collapse)."""
    return mean_pairwise_distance(generated) / max(mean_pairwise_distance(real), 1e-8)


class DifferentBins:
    """The number of statistically different bins (NDB, Richardson & Weiss 2018, *On GANs
    and GMMs*), as a share of the bins.

    Real rows are clustered into ``bins`` by k-means once; each evaluation assigns generated
    samples to the nearest centre and counts the bins whose share of generated samples
    differs from their share of real rows by a two-proportion z-test at level ``alpha``. A
    generator that covers the data scores near 0; one that collapses onto a few modes near 1
    (every bin it left is empty, the few it fills are overfull).

    Args:
        real: real rows, one per row (any shape after the first axis).
        bins: k-means clusters (at most half the rows).
        alpha: the test's significance level (two-sided).
        seed: k-means' seed.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> real = rng.normal(size=(2000, 8))
        >>> ndb = DifferentBins(real, bins=20)
        >>> ndb.share(rng.normal(size=(640, 8))) < 0.3, ndb.share(np.zeros((640, 8)))
        (True, 1.0)
    """

    def __init__(self, real: np.ndarray, bins: int, alpha: float = 0.05, seed: int = 0) -> None:
        rows = np.asarray(real, np.float32).reshape(len(real), -1)
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if len(rows) < 2 * bins:
            raise ValueError(f"{len(rows)} real rows are too few for {bins} bins")
        self.bins = bins
        kmeans = KMeans(self.bins, n_init=1, random_state=seed).fit(rows)
        self.centres = kmeans.cluster_centers_.astype(np.float32)
        self.real_counts = np.bincount(kmeans.labels_, minlength=self.bins)
        self.critical = float(norm.ppf(1.0 - alpha / 2.0))

    def assign(self, samples: np.ndarray) -> np.ndarray:
        """The nearest centre of each sample."""
        flat = np.asarray(samples, np.float32).reshape(len(samples), -1)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every centre
        scores = flat @ self.centres.T * -2.0 + np.sum(self.centres**2, axis=1)
        return np.argmin(scores, axis=1)

    def share(self, samples: np.ndarray) -> float:
        """NDB / bins for ``samples``."""
        counts = np.bincount(self.assign(samples), minlength=self.bins)
        n_real, n_gen = self.real_counts.sum(), counts.sum()
        p_real, p_gen = self.real_counts / n_real, counts / n_gen
        pooled = (self.real_counts + counts) / (n_real + n_gen)
        error = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_real + 1.0 / n_gen))
        z = np.abs(p_gen - p_real) / np.maximum(error, 1e-12)
        return float(np.mean(z > self.critical))
