"""Weights of the source projects' Keras 2 models, read with h5py (never deserialised: a
Keras 2 model file or its ``.json`` architecture can carry Lambda layers, i.e. code).

Keras 2 wrote weights as HDF5: the root (or a ``model_weights`` group, in a whole-model
``.h5``) lists ``layer_names``; each layer's group lists its ``weight_names``, whose datasets
hold the arrays. The source SGAN saved ``NAME.hdf5`` + ``NAME.json``, the source trainer a
whole-model ``NAME.h5``.

Source and sersweep models name their layers differently (``a_feat_cnn_1`` vs
``a_feat_d_conv0``), so layers are matched by order: within each modality (a name prefix
the target's input names give) and each kind of layer (convolution, batch-norm, dense,
LSTM), the n-th source layer fills the n-th target layer; layers of the same name match
by name first.

The source trainer convolved in ``channels_first`` (its architecture says so: the
``.json`` beside the weights, or a whole-model file's ``model_config``, read as JSON data),
sersweep in ``channels_last``: kernels have the same shape either way, but flattening a
feature map orders its values differently, so the rows of the first layer after the flatten
are reordered to match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sermodels.errors import ConfigError
from sermodels.specs import select_layers

LEGACY_SUFFIXES = (".h5", ".hdf5")


@dataclass
class LegacyLayer:
    """One layer of a Keras 2 weights file: its name and weights in file order."""

    name: str
    weight_names: list[str]
    weights: list[np.ndarray]

    @property
    def kind(self) -> str:
        return weights_kind(self.weight_names, [w.shape for w in self.weights])


def weights_kind(names: list[str], shapes: list[tuple]) -> str:
    """What sort of layer holds these weights (the same answer for Keras 2 and Keras 3)."""
    short = [n.split("/")[-1].split(":")[0] for n in names]
    if "gamma" in short or "moving_mean" in short:
        return "batchnorm"
    if "recurrent_kernel" in short:
        return "lstm"
    kernel = next((s for n, s in zip(short, shapes, strict=True) if n == "kernel"), None)
    if kernel is None:
        return "other"
    return {2: "dense", 3: "conv1d", 4: "conv2d", 5: "conv3d"}.get(len(kernel), "other")


def legacy_path(path: str | Path) -> Path | None:
    """The Keras 2 weights file ``path`` names (a file, or the source SGAN's stem without
    ``.hdf5``), or ``None`` when it names something else."""
    path = Path(path)
    if path.suffix in LEGACY_SUFFIXES and path.is_file():
        return path
    stem = Path(f"{path}.hdf5")
    return stem if stem.is_file() else None


@dataclass
class LegacyModel:
    """A Keras 2 file's weighted layers, and whether its convolutions were channels-first
    (``"2d"`` or ``"3d"``; ``None``: channels-last, Keras' default, or not said)."""

    layers: list[LegacyLayer]
    channels_first: str | None = None


def read_legacy_weights(path: Path, where: str) -> LegacyModel:
    """The layers with weights of a Keras 2 HDF5 file, in the file's order."""
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise ConfigError(where, f"cannot read {path} as a Keras 2 HDF5 weights file") from None
    with h5:
        architecture = h5.attrs.get("model_config")
        if architecture is None and path.with_suffix(".json").is_file():
            architecture = path.with_suffix(".json").read_text()
        group = h5["model_weights"] if "model_weights" in h5 else h5
        if "layer_names" not in group.attrs:
            raise ConfigError(where, f"{path} has no layer_names: not a Keras 2 weights file")
        layers = []
        for name in map(_text, group.attrs["layer_names"]):
            weight_names = [_text(w) for w in group[name].attrs.get("weight_names", [])]
            if weight_names:
                weights = [np.asarray(group[name][w]) for w in weight_names]
                layers.append(LegacyLayer(name, weight_names, weights))
    return LegacyModel(layers, _channels_first(architecture))


def _channels_first(architecture) -> str | None:
    """``"3d"`` / ``"2d"`` when a convolution of the architecture (JSON, read as data only)
    ran channels-first."""
    if architecture is None:
        return None
    if isinstance(architecture, bytes):
        architecture = architecture.decode()
    found = set()

    def visit(node) -> None:
        if isinstance(node, dict):
            config = node.get("config")
            if (
                isinstance(config, dict)
                and config.get("data_format") == "channels_first"
                and "Conv" in str(node.get("class_name", ""))
            ):
                found.add("3d" if "3D" in node["class_name"] else "2d")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    try:
        visit(json.loads(architecture))
    except ValueError:
        return None
    return "3d" if "3d" in found else ("2d" if found else None)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def transfer_legacy(
    target, source: LegacyModel, unloaded, where: str, modalities: tuple[str, ...] = ()
) -> list[str]:
    """Copy ``source``'s layers into ``target`` (a Keras model); returns the target layers
    filled.

    Layers picked by ``unloaded`` (target indices, name globs, -1) keep their
    initialisation; a shape that differs is an error naming both layers.
    """
    layers = source.layers
    names = [layer.name for layer in target.layers]
    skipped = select_layers(names, unloaded, f"{where} (unloaded)")
    candidates = [
        (index, layer)
        for index, layer in enumerate(target.layers)
        if layer.weights and index not in skipped
    ]
    by_name = {layer.name: layer for layer in layers}
    queues: dict[tuple, list[LegacyLayer]] = {}
    for layer in layers:
        queues.setdefault((_modality(layer.name, modalities), layer.kind), []).append(layer)
    copied = []
    for index, layer in candidates:
        donor = by_name.get(layer.name)
        if donor is not None:
            queues[(_modality(donor.name, modalities), donor.kind)].remove(donor)
        else:
            kind = weights_kind([w.path for w in layer.weights], [w.shape for w in layer.weights])
            queue = queues.get((_modality(layer.name, modalities), kind))
            if not queue:
                continue
            donor = queue.pop(0)
        want = [tuple(w.shape) for w in layer.weights]
        have = [w.shape for w in donor.weights]
        if want != have:
            raise ConfigError(
                where,
                f"layer {index} {layer.name!r} has weights {want} but the Keras 2 layer "
                f"{donor.name!r} it takes by order has {have}; list it in unloaded "
                f"(e.g. '{index}:{index}')",
            )
        layer.set_weights(donor.weights)
        copied.append(layer.name)
    if candidates and not copied:  # (-1 in unloaded skips every layer on purpose)
        raise ConfigError(where, "no layer of the Keras 2 file fits this model")
    if source.channels_first:
        _reorder_after_flatten(target, set(copied), source.channels_first)
    return copied


def _reorder_after_flatten(target, copied: set[str], convolutions: str) -> None:
    """Rows of the first weighted layer after each flatten of a feature map, from the
    source's channels-first order to sersweep's channels-last order.

    Per long frame a (H, W, C) map becomes H*W*C features here and C*H*W there (2-D
    convolutions, and 3-D ones before a time-distributed flatten); a 3-D volume flattened
    whole is (T, H, W, C) here and (C, T, H, W) there.
    """
    layers = target.layers
    for index, layer in enumerate(layers):
        if not _is_frame_flatten(layer):
            continue
        steps, rows, cols, channels = layer.input.shape[1:]
        per_frame = np.arange(rows * cols * channels).reshape(channels, rows, cols)
        order = per_frame.transpose(1, 2, 0).ravel()
        if convolutions == "3d":
            whole = np.arange(steps * rows * cols * channels).reshape(channels, steps, rows, cols)
            whole_order = whole.transpose(1, 2, 3, 0).ravel()
        else:
            frames = np.arange(steps * rows * cols * channels).reshape(steps, channels, rows, cols)
            whole_order = frames.transpose(0, 2, 3, 1).ravel()
        following = next((x for x in layers[index + 1 :] if x.weights), None)
        if following is None or following.name not in copied:
            continue
        weights = following.get_weights()
        kernel = weights[0]
        if kernel.shape[0] == len(order):
            weights[0] = kernel[order]
        elif kernel.shape[0] == len(whole_order):
            weights[0] = kernel[whole_order]
        else:
            continue
        following.set_weights(weights)


def _is_frame_flatten(layer) -> bool:
    inner = getattr(layer, "layer", None)
    return (
        layer.__class__.__name__ == "TimeDistributed"
        and inner.__class__.__name__ == "Flatten"
        and len(layer.input.shape) == 5
    )


def _modality(name: str, modalities: tuple[str, ...]) -> str:
    """The modality a layer belongs to, from its name's prefix ('' for shared layers)."""
    return next((m for m in modalities if name.startswith(f"{m}_")), "")
