"""Pretrained loading: copy weights layer by layer (by name from sersweep's ``.keras`` models,
by order from the source projects' Keras 2 files), skip and freeze layer ranges."""

from __future__ import annotations

from pathlib import Path

import keras

from sermodels.errors import ConfigError
from sermodels.models.legacy import legacy_path, read_legacy_weights, transfer_legacy
from sermodels.specs import select_layers


def copy_pretrained(
    target: keras.Model, path: str | Path, unloaded, where: str, modalities: tuple[str, ...] = ()
) -> list[str]:
    """Fill ``target`` from a pretrained model: a ``.keras`` file (layers by name), or a
    Keras 2 weights file of the source projects (``.h5`` / ``.hdf5``, or the source SGAN's
    path without suffix; layers by order per modality and kind). Returns the layers filled."""
    legacy = None if str(path).endswith(".keras") else legacy_path(path)
    if legacy is not None:
        source = read_legacy_weights(legacy, where)
        return transfer_legacy(target, source, unloaded, where, modalities)
    return transfer_weights(target, load_keras_model(path, where), unloaded, where)


def load_keras_model(path: str | Path, where: str) -> keras.Model:
    """Load a ``.keras`` model saved by sersweep (no custom objects, no compile state)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(where, f"pretrained model {path} not found")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise ConfigError(where, f"cannot load {path}: {exc.__class__.__name__}") from None


def transfer_weights(
    target: keras.Model, source: keras.Model, unloaded=None, where: str = "load"
) -> list[str]:
    """Copy weights of every ``target`` layer that ``source`` has under the same name.

    Layer names carry the modality (``a_feat_d_conv1``), so an audio-only discriminator
    fills the audio branch of an audio+video one. Layers picked by ``unloaded`` (index
    ranges over ``target.layers`` like ``"33:38"``, or name globs like ``"d_dense*"``) are
    left as initialised; any other shape mismatch is an error that says so.

    Returns:
        The names of the layers copied.
    """
    names = [layer.name for layer in target.layers]
    skipped = select_layers(names, unloaded, f"{where} (unloaded)")
    by_name = {layer.name: layer for layer in source.layers}
    copied = []
    for index, layer in enumerate(target.layers):
        donor = by_name.get(layer.name)
        if index in skipped or donor is None or not layer.weights:
            continue
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(w.shape) for w in donor.weights]
        if want != have:
            raise ConfigError(
                where,
                f"layer {index} {layer.name!r} has weights {have} in {source.name} but "
                f"{want} here; list it in unloaded (e.g. '{index}:{index}')",
            )
        layer.set_weights(donor.get_weights())
        copied.append(layer.name)
    if not copied and len(skipped) < len(names):  # (-1 in unloaded skips every layer on purpose)
        raise ConfigError(where, f"no layer of {source.name} matches this model by name")
    return copied


def freeze_layers(model: keras.Model, frozen, where: str = "frozen") -> list[str]:
    """Mark layers (index ranges such as ``"0:8"`` or name globs) as not trainable."""
    picked = select_layers([layer.name for layer in model.layers], frozen, where)
    for index in picked:
        model.layers[index].trainable = False
    return [model.layers[i].name for i in sorted(picked)]
