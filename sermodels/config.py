"""One YAML file describes one training run: ``model``, ``data``, ``train`` and the model's
own section (``sgan`` or ``ser``). Unknown keys and wrong types are reported by name."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sermodels.data import DataConfig
from sermodels.errors import ConfigError

MODELS = ("sgan", "ser")


@dataclass
class TrainConfig:
    """How long and how to train.

    Args:
        epochs: the budget of epochs.
        batch_size: rows per step (SGAN: half real, half generated).
        patience: early stopping on validation UAR with the source SGAN's semantics: stop when
            the newest value is below the worst of the previous ``patience`` (0: never).
        save_img_interval: save generated samples every this many epochs (0: never).
        save_models: write ``.keras`` models into ``OUT/models``.
        seed: seeds NumPy, TensorFlow and Keras.
    """

    epochs: int = 10
    batch_size: int = 64
    patience: int = 5
    save_img_interval: int = 1
    save_models: bool = True
    seed: int = 0


@dataclass
class SGANConfig:
    """Semi-supervised GAN (per-modality values: one per feature key, or one for all).

    Layer lists (``n_kernels_D`` and co.) are per layer, and per modality as a list of lists
    or the source's string form ``"2,4,6;2,4,6"``.
    """

    latent_dim: int = 100
    depth_G: Any = 3
    n_kernels_G: Any = field(default_factory=lambda: [32, 16, 1])
    cnn_n_row_G: Any = 3
    cnn_n_col_G: Any = 3
    depth_D: Any = 2
    n_kernels_D: Any = field(default_factory=lambda: [8, 16])
    cnn_n_row_D: Any = 3
    cnn_n_col_D: Any = 3
    pool_n_row_D: Any = field(default_factory=lambda: [1, 2])
    pool_n_col_D: Any = field(default_factory=lambda: [1, 2])
    dropout: float = 0.25
    depth_a_v_D: int = 1
    n_node: int = 64
    validity_loss: str = "mse"
    task_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])
    d_lr: float = 2e-4
    g_lr: float = 4e-4
    beta1: float = 0.5
    unsupervised: bool = False
    generator: bool = True
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    d_steps: int = 1
    load_G: Any = None
    load_D: Any = None
    unloaded_G: Any = None
    unloaded_D: Any = None
    frozen_G: Any = None
    frozen_D: Any = None


@dataclass
class SERConfig:
    """Frame-level then utterance-level stacks, multi-task heads, imbalance handling.

    Args:
        frame: frame-level blocks in order: ``dnn``, ``highway``, ``residual``, ``lstm``,
            ``conv``, ``r_conv``, ``conv_hw``, ``conv_3d``.
        utterance: utterance-level blocks: sequence blocks ``lstm``, ``g_lstm``,
            ``attention``, ``g_pool`` first, then vector blocks ``dnn``, ``highway``,
            ``residual`` (a mean pooling is added when no sequence block pools).
        class_weight: ``none``, ``auto`` (inverse frequency) or per task
            ``"category:1.0:2.0:2.0:2.0"``.
        smote_enn: resample training rows with SMOTE-ENN (single task only).
        load_model / unloaded / frozen: pretrained ``.keras`` model, layers not copied,
            layers not updated (index ranges ``0:7`` or name globs).
    """

    frame: list[str] = field(default_factory=lambda: ["conv"])
    utterance: list[str] = field(default_factory=lambda: ["lstm", "dnn"])
    f_dnn_depth: int = 1
    dnn_depth: int = 1
    n_node: int = 64
    cell: int = 32
    n_filter: int = 8
    n_row: int = 3
    n_col: int = 3
    n_time: int = 3
    conv_depth: int = 1
    pool_r: int = 2
    pool_c: int = 2
    dropout: float = 0.2
    l2: float = 0.0
    lr: float = 1e-3
    class_weight: str = "none"
    focal_gamma: float = 2.0
    smote_enn: bool = False
    load_model: str | None = None
    unloaded: Any = None
    frozen: Any = None


@dataclass
class RunConfig:
    """A whole training run."""

    model: str
    data: DataConfig
    train: TrainConfig
    sgan: SGANConfig
    ser: SERConfig

    def to_dict(self) -> dict:
        sections = {"model": self.model, "data": self.data, "train": self.train}
        sections[self.model] = getattr(self, self.model)
        return {k: v if isinstance(v, str) else dataclasses.asdict(v) for k, v in sections.items()}


def load_config(path: str | Path) -> RunConfig:
    """Read a run config YAML file (safe loading)."""
    path = Path(path)
    try:
        mapping = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), f"not valid YAML{line}") from None
    return config_from_dict(mapping, str(path))


def config_from_dict(mapping: Any, where: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from a nested dict, naming ``where`` in every error."""
    if not isinstance(mapping, dict):
        raise ConfigError(where, "expected a mapping with keys model, data, train, sgan|ser")
    unknown = set(mapping) - {"model", "data", "train", "sgan", "ser"}
    if unknown:
        raise ConfigError(where, f"unknown section(s) {sorted(unknown)}")
    model = mapping.get("model", "sgan")
    if model not in MODELS:
        raise ConfigError(f"{where}: model", f"expected one of {MODELS}, got {model!r}")
    return RunConfig(
        model=model,
        data=_section(DataConfig, mapping.get("data"), f"{where}: data"),
        train=_section(TrainConfig, mapping.get("train"), f"{where}: train"),
        sgan=_section(SGANConfig, mapping.get("sgan"), f"{where}: sgan"),
        ser=_section(SERConfig, mapping.get("ser"), f"{where}: ser"),
    )


def _section(cls, values: Any, where: str):
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ConfigError(where, "expected a mapping")
    hints = typing.get_type_hints(cls)
    unknown = set(values) - set(hints)
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", f"unknown key (known: {sorted(hints)})")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()})


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check scalar types; YAML 1.1 reads ``5e-6`` as a string, so numbers are parsed."""
    allowed = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
    if Any in allowed or (value is None and type(None) in allowed):
        return value
    if bool in allowed:
        if isinstance(value, bool):
            return value
        raise ConfigError(where, f"expected true or false, got {value!r}")
    if float in allowed and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if str in allowed and isinstance(value, str):
        return value
    origins = {typing.get_origin(a) for a in allowed}
    if list in origins and isinstance(value, list):
        return value
    names = " or ".join(sorted(getattr(a, "__name__", str(a)) for a in allowed))
    raise ConfigError(where, f"expected {names}, got {value!r}")
