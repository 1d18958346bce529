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

from sermodels.errors import ConfigError

MODELS = ("sgan", "ser")


@dataclass
class DataConfig:
    """Which file, keys, tasks and folds to use.

    Args:
        path: the h5 corpus (``None``: the built-in demo corpus).
        features: feature keys, one per modality (``["a_feat", "v_feat"]``).
        tasks: task spec ``name:n_classes:column[:loss[:weight[:metric]]]``, comma-separated;
            the column by number or by the name the file gives it.
        test_idx / valid_idx / train_idx: fold ids (``"0,1"``, ``"111:130"``). Without
            ``start_indice`` in the file they name speaker ids of ``speaker_column``.
        unlabelled_idx: folds whose rows train the GAN without their labels.
        adopt_idx: folds an SER model adapts to after training (the source's ``-adopt_idx``).
        ignore_idx: folds left out of everything (the source's ``-ignore_idx``).
        valid_is_test: allow validation on the test folds (``launch.py train`` only).
        speaker_column: label column (number or name) holding speaker ids.
        r_valid / r_test: ratio split when the file has neither folds nor a speaker column;
            ``r_valid`` also carves validation speakers out of training.
        r_nrow / r_ncol: crop of the flattened time x feature image, per modality.
        normalize: ``minmax`` (to [-1, 1], for tanh generators), ``zscore``, ``none``, or
            ``auto`` (minmax for the SGAN, zscore for SER).
        seed: seed of the ratio and r_valid splits.
    """

    path: str | None = None
    features: list[str] = field(default_factory=lambda: ["a_feat"])
    tasks: str = "category:4:2"
    test_idx: str | int | list | None = "0"
    valid_idx: str | int | list | None = "1"
    train_idx: str | int | list | None = None
    unlabelled_idx: str | int | list | None = None
    adopt_idx: str | int | list | None = None
    ignore_idx: str | int | list | None = None
    valid_is_test: bool = False
    speaker_column: int | str | None = None
    r_valid: float = 0.0
    r_test: float = 0.0
    r_nrow: list[int] | int | None = None
    r_ncol: list[int] | int | None = None
    normalize: str = "auto"
    seed: int = 0


@dataclass
class TrainConfig:
    """How long and how to train.

    Args:
        epochs: the budget of epochs.
        batch_size: rows per step (SGAN: half real, half generated); 128 as the sources.
        patience: early stopping (0: never). On the validation score (``stop_on: score``,
            the source SGAN's rule: stop when the newest value is below the worst of the
            previous ``patience + 1``), or on the validation loss (``stop_on: loss``, the
            source trainer's Keras ``EarlyStopping``: no new best for ``patience`` epochs).
        stop_on: ``score`` or ``loss`` (see ``patience``).
        save_img_interval: save generated samples every this many epochs (0: never).
        save_models: write ``.keras`` models into ``OUT/models``.
        seed: seeds NumPy and Keras.
        check_batch_interval: print the running losses every this many steps (0: never;
            the source SGAN's progress lines).
        eval_train: also evaluate on the training rows, every epoch (``train_uar``) and at
            the end (``train_*``); ``None``: the source's choice, on for the SGAN, off for SER
            (off when streaming: it would read the whole corpus again every epoch).
        adopt_epochs: epochs of the adaptation phase on ``data.adopt_idx`` folds, after the
            training phase (0: as many as ``epochs``, the source trainer's choice).
        steps_per_epoch: training steps per epoch (0: one pass over the training rows). An
            epoch of a huge corpus can be a fixed slice of it: rows are drawn in a seeded
            order that continues into a fresh shuffle when one pass runs out.
    """

    epochs: int = 10
    batch_size: int = 128
    patience: int = 5
    stop_on: str = "score"
    save_img_interval: int = 1
    save_models: bool = True
    seed: int = 0
    check_batch_interval: int = 0
    eval_train: bool | None = None
    adopt_epochs: int = 0
    steps_per_epoch: int = 0


@dataclass
class SGANConfig:
    """Semi-supervised GAN (per-modality values: one per feature key, or one for all).

    Layer lists (``n_kernels_D`` and co.) are per layer, and per modality as a list of lists
    or the source's string form ``"2,4,6;2,4,6"``. Defaults are the source SGAN's parser
    defaults (GPU-sized; the shipped spaces and ``examples/demo`` set small models).
    """

    latent_dim: int = 100
    depth_G: Any = 4
    n_kernels_G: Any = field(default_factory=lambda: [128, 64, 32, 1])
    cnn_n_row_G: Any = 4
    cnn_n_col_G: Any = 4
    depth_D: Any = 4
    n_kernels_D: Any = field(default_factory=lambda: [16, 32, 64, 128])
    cnn_n_row_D: Any = 4
    cnn_n_col_D: Any = 4
    pool_n_row_D: Any = 2
    pool_n_col_D: Any = 2
    dropout: float = 0.0
    depth_a_v_D: int = 1
    n_node: int = 512
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
    ndb_samples: int = 0
    load_G: Any = None
    load_D: Any = None
    unloaded_G: Any = None
    unloaded_D: Any = None
    frozen_G: Any = None
    frozen_D: Any = None


@dataclass
class SERConfig:
    """Frame-level then utterance-level stacks, multi-task heads, imbalance handling (the
    source trainer's flags; ``sermodels/models/ser.py`` builds them).

    Args:
        frame: frame-level blocks in order: convolutions ``conv``, ``r_conv`` (residual),
            ``conv_hw`` (highway) per long frame (or over time for 1-D inputs), ``conv_3d``,
            ``r_conv_3d``, ``conv_hw_3d`` over the time x context x dims volume; then
            ``dnn``, ``highway``, ``residual`` per frame, or ``lstm`` (two LSTMs over the
            long frames, the source's ``--f_lstm``).
        utterance: sequence blocks ``lstm`` (two LSTMs), ``g_lstm`` (two LSTMs, mean over
            time), ``attention``, ``g_pool`` (with ``lstm``: the mean of the LSTM's input
            next to its output), then vector blocks ``dnn``, ``highway``, ``residual``.
        conv_depth: convolution layers (the source's ``-dnn_depth`` for conv blocks).
        n_filter, n_row, n_col, n_time, pool_t, pool_r, pool_c, l_filter, pool: per-layer
            sizes (one value, a list, or ``"2,4"``); ``l_filter`` / ``pool`` for 1-D inputs.
        stride: convolution stride (the source's ``-stride``).
        frame_pool: how frame blocks become the utterance vector when no sequence block
            follows: ``flatten`` (the source) or ``mean``.
        input_norm: ``none`` (inputs z-scored by ``data.normalize``) or ``batchnorm`` (the
            source's time-distributed batch normalisation inside the model).
        clipvalue: Adam gradient clipping (the source: 0.5).
        class_weight: ``none``, ``auto`` (by ``class_weight_formula``) or per task
            ``"category:1.0:2.0:2.0:2.0"``.
        class_weight_formula: ``inverse`` (n / (K count), the default: equal expected weight
            per class) or ``complement`` (1 - frequency, the source's ``-cw auto``); also the
            weights of ``weighted_categorical_crossentropy``.
        smote_enn: resample training rows with SMOTE-ENN (single task only).
        post_elm: classify frames, then the utterance with an extreme learning machine on
            statistics of the frame outputs (the source's ``--post_elm``); ``elm_hidden``
            random hidden units.
        load_model / unloaded / frozen: pretrained model (``.keras``, or a Keras 2 ``.h5``
            by layer order), layers not copied / not updated (index ranges, name globs, -1).
    """

    frame: list[str] = field(default_factory=lambda: ["conv"])
    utterance: list[str] = field(default_factory=lambda: ["lstm", "dnn"])
    f_dnn_depth: int = 1
    dnn_depth: int = 1
    n_node: int = 64
    cell: int = 32
    conv_depth: int = 1
    n_filter: Any = 8
    n_row: Any = 3
    n_col: Any = 3
    n_time: Any = 3
    pool_t: Any = 1
    pool_r: Any = 2
    pool_c: Any = 2
    l_filter: Any = 3
    pool: Any = 2
    stride: int = 1
    frame_pool: str = "flatten"
    input_norm: str = "none"
    dropout: float = 0.2
    l2: float = 0.0
    lr: float = 1e-3
    clipvalue: float | None = None
    class_weight: str = "none"
    class_weight_formula: str = "inverse"
    focal_gamma: float = 2.0
    smote_enn: bool = False
    post_elm: bool = False
    elm_hidden: int = 50
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


STOP_ON = ("score", "loss")


def check_train_config(train: TrainConfig) -> None:
    """Bad values of the ``train`` section, as one-line errors naming the key."""
    checks = (
        ("epochs", train.epochs >= 1, "a positive integer"),
        ("batch_size", train.batch_size >= 2, "an integer >= 2"),
        ("patience", train.patience >= 0, "an integer >= 0"),
        ("stop_on", train.stop_on in STOP_ON, f"one of {STOP_ON}"),
        ("save_img_interval", train.save_img_interval >= 0, "an integer >= 0"),
        ("check_batch_interval", train.check_batch_interval >= 0, "an integer >= 0"),
        ("adopt_epochs", train.adopt_epochs >= 0, "an integer >= 0"),
        ("steps_per_epoch", train.steps_per_epoch >= 0, "an integer >= 0 (0: one pass)"),
    )
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"train.{key}", f"expected {expected}, got {getattr(train, key)!r}")


def load_config(path: str | Path, settings: dict[str, Any] | None = None) -> RunConfig:
    """Read a run config YAML file (safe loading), with command-line ``settings``
    (``{"data.test_idx": "0,1"}``, see :func:`apply_overrides`) over it."""
    path = Path(path)
    try:
        mapping = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), f"not valid YAML{line}") from None
    if settings and isinstance(mapping, dict):
        mapping = apply_overrides(mapping, settings)
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


SECTIONS = {"data": DataConfig, "train": TrainConfig, "sgan": SGANConfig, "ser": SERConfig}
DATA_FLAGS = ("test_idx", "valid_idx", "unlabelled_idx", "train_idx", "tasks")


def apply_overrides(mapping: dict, overrides: dict[str, Any], where: str = "--set") -> dict:
    """A copy of a run config mapping with ``{"section.key": value}`` set (``None`` clears a
    key back to its default). Unknown sections or keys are errors naming the key.

    Example:
        >>> apply_overrides({"data": {"test_idx": "0"}}, {"data.test_idx": "1,2"})["data"]
        {'test_idx': '1,2'}
    """
    result = {k: dict(v) if isinstance(v, dict) else v for k, v in mapping.items()}
    for path, value in overrides.items():
        section, _, key = path.partition(".")
        if path == "model":
            result["model"] = value
            continue
        if section not in SECTIONS or not key:
            raise ConfigError(
                f"{where} {path}", f"expected SECTION.KEY with SECTION in {sorted(SECTIONS)}"
            )
        known = {f.name for f in dataclasses.fields(SECTIONS[section])}
        if key not in known:
            raise ConfigError(f"{where} {path}", f"unknown key (known: {sorted(known)})")
        values = result.setdefault(section, {})
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return result


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as YAML (``0.5``, ``[1, 2]``, ``true``, ``abc``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--set", f"expected SECTION.KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {key.strip()}", f"cannot read the value {value!r}") from None


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
