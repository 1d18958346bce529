"""How raw rows of a feature key become model inputs: laid out for the model (image or
sequence), cropped, and normalised with statistics of the training rows. Saved with the
models (:class:`Preprocessing`), so predictions see the same inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sermodels.config import DataConfig
from sermodels.errors import ConfigError, DataError

LAYOUTS = ("image", "sequence")
NORMALIZATIONS = ("auto", "minmax", "zscore", "none")


@dataclass
class Preprocessing:
    """How raw rows of each feature key become model inputs: the layout, the crop, and the
    normalisation with its statistics (from the training rows).

    Example:
        >>> prep.apply("a_feat", raw_rows)  # doctest: +SKIP
    """

    layout: str
    crops: dict[str, tuple[int, int]] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict] = field(default_factory=dict)

    def arrange(self, key: str, raw: np.ndarray) -> np.ndarray:
        """Layout and crop (no statistics needed)."""
        data = to_layout(np.asarray(raw, np.float32), self.layout)
        if self.layout == "image":
            rows, cols = self.crops[key]
            data = data[:, :rows, :cols, None]
        return data

    def fit(self, key: str, arranged: np.ndarray) -> None:
        """Statistics of ``key`` from arranged training rows."""
        method = self.methods[key]
        if method == "minmax":
            self.stats[key] = {"low": float(arranged.min()), "high": float(arranged.max())}
        elif method == "zscore":
            axes = tuple(range(arranged.ndim - 1))
            self.stats[key] = {
                "mean": arranged.mean(axis=axes, dtype=np.float64).tolist(),
                "std": (arranged.std(axis=axes, dtype=np.float64) + 1e-6).tolist(),
            }

    def normalize(self, key: str, arranged: np.ndarray) -> np.ndarray:
        method, stats = self.methods[key], self.stats.get(key)
        if method == "none" or not stats:
            return arranged
        if method == "minmax":
            scale = 2.0 / max(stats["high"] - stats["low"], 1e-8)
            scaled = (arranged - stats["low"]) * scale - 1.0
            return np.clip(scaled, -1.0, 1.0).astype(np.float32)
        mean = np.asarray(stats["mean"], np.float32)
        std = np.asarray(stats["std"], np.float32)
        return ((arranged - mean) / std).astype(np.float32)

    def apply(self, key: str, raw: np.ndarray) -> np.ndarray:
        """Raw rows of ``key`` (as the file holds them) -> model inputs."""
        return self.normalize(key, self.arrange(key, raw))

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "crops": {k: list(v) for k, v in self.crops.items()},
            "methods": self.methods,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, values: dict) -> Preprocessing:
        crops = {k: tuple(v) for k, v in values.get("crops", {}).items()}
        return cls(values["layout"], crops, dict(values["methods"]), dict(values["stats"]))


def to_layout(data: np.ndarray, layout: str) -> np.ndarray:
    """image: ``(n, rows, cols)`` with rows = flattened time; sequence: ``(n, time, context,
    dims)`` for 5-D rows, ``(n, time, dims)`` for 3-D rows and ``(n, 1, dims)`` for vectors."""
    if data.ndim == 2:
        return data[:, None, :]
    if data.ndim != 5:
        return data
    n, a, b, c, d = data.shape
    if layout == "image":
        return data.reshape(n, a * b * c, d)
    return data[:, :, 0] if b == 1 else data[:, 0]


def normalisation_method(normalize: str, layout: str) -> str:
    if normalize == "auto":
        return "minmax" if layout == "image" else "zscore"
    return normalize


def crop_of(config: DataConfig, index: int, shape: tuple, path: str, key: str) -> tuple[int, int]:
    rows, cols = shape[0] * shape[1] * shape[2], shape[3]
    n_row = _per_modality(config.r_nrow, index, rows, "r_nrow")
    n_col = _per_modality(config.r_ncol, index, cols, "r_ncol")
    if n_row > rows or n_col > cols:
        raise DataError(
            path,
            key,
            f"r_nrow x r_ncol = {n_row}x{n_col} exceeds the flattened image {rows}x{cols}",
        )
    return n_row, n_col


def _per_modality(value, index, default, name) -> int:
    if value is None:
        return default
    values = value if isinstance(value, list) else [value]
    if index >= len(values):
        raise ConfigError(f"data.{name}", f"give one value per feature key, got {values}")
    return int(values[index])
