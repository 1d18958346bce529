"""Predictions of a saved model on new data: an h5 in the data contract or a folder of WAV
files (extracted as the training corpus was). Writes one CSV row per window and, beside it,
one per utterance (``NAME.utterances.csv``: window probabilities averaged); or, with
``layer``, that layer's activations to an h5 (the source trainer's bottleneck features).

Example:
    >>> predict("runs/train-1", "new.h5", "preds.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sermodels.errors import ConfigError, DataError
from sermodels.inference.manifest import MANIFEST, ModelManifest

CHUNK_ROWS = 512
CROSS_VALIDATION = (
    "a cross-validation folder: its rotations estimate a config's quality and keep no model; "
    "predict with `launch.py final SWEEP` then `launch.py predict SWEEP/final`, or a train run"
)
NO_MODEL_KEPT = (
    "a run that kept no model (cross-validation folds and sweep trials do not); predict with "
    "a sweep's final/ folder or a run trained with train.save_models true"
)


def model_folder(path: str | Path, seed: int | None = None) -> Path:
    """The ``models`` folder of a ``train`` run, or of a sweep's ``final/`` folder (its
    rank-1 config, ranked by the sweep's objective when ``final`` ran; seed ``seed`` or the
    first)."""
    path = Path(path)
    for candidate in (path, path / "models"):
        if (candidate / MANIFEST).is_file():
            if seed is not None:
                raise ConfigError("--seed", f"{path} is one trained model, not a final/ folder")
            return candidate
    final = path if (path / "summary.json").is_file() else path / "final"
    if not (final / "summary.json").is_file():
        if (path / "metrics.json").is_file():  # a run that kept no model
            raise ConfigError(str(path), NO_MODEL_KEPT)
        raise ConfigError(str(path), "expected a train run folder or a sweep's final/ folder")
    summary = json.loads((final / "summary.json").read_text())
    if "k" in summary:  # the rotations of `final --cv` / `train --cv`
        raise ConfigError(str(path), CROSS_VALIDATION)
    configs = summary["configs"]
    rank1 = final / f"rank1_trial{configs[0]['optuna_trial']}"
    seeds = sorted(rank1.glob("seed*"), key=lambda p: int(p.name[4:]))
    chosen = rank1 / f"seed{seed}" if seed is not None else (seeds[0] if seeds else None)
    if chosen is None or not (chosen / "models" / MANIFEST).is_file():
        found = [p.name for p in seeds]
        raise ConfigError("--seed" if seed is not None else str(rank1), f"no model; has {found}")
    return chosen / "models"


@dataclass
class Windows:
    """A chunk of input rows: model-ready features and where each row came from."""

    features: dict[str, np.ndarray]
    ids: list  # the row number (h5) or the file (WAV folder)
    windows: list[int]  # the window's number within its utterance
    utterances: list  # the utterance a row belongs to


class Predictor:
    """A saved model, ready to predict.

    Args:
        folder: the ``models`` folder (see :func:`model_folder`).
    """

    def __init__(self, folder: str | Path) -> None:
        import keras

        import sermodels.models  # noqa: F401 (registers the custom losses and layers)

        self.folder = Path(folder)
        self.manifest = ModelManifest.load(self.folder)
        self.prep = self.manifest.prep
        self.model = keras.saving.load_model(self.folder / self.manifest.classifier, compile=False)
        self.elms = []
        if self.manifest.elm_files:
            from sermodels.models.elm import ExtremeLearningMachine

            for name in self.manifest.elm_files:
                with np.load(self.folder / name) as arrays:
                    self.elms.append(ExtremeLearningMachine.from_arrays(dict(arrays)))
        if self.manifest.model == "sgan" and self.manifest.config["sgan"].get("unsupervised"):
            self.classifies = False
        else:
            self.classifies = True

    def inputs(self, raw: dict[str, np.ndarray], where: str) -> list[np.ndarray]:
        """Raw rows per key -> the model's inputs (shapes checked against training)."""
        arrays = []
        for key in self.manifest.features:
            data = self.prep.apply(key, raw[key])
            expected = tuple(self.manifest.input_shapes[key])
            if data.shape[1:] != expected:
                raise DataError(
                    where,
                    key,
                    f"rows of shape {data.shape[1:]} after preprocessing; the model "
                    f"was trained on {expected}",
                )
            arrays.append(data)
        return arrays

    def task_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Per task, class probabilities ``(n, classes)`` or values ``(n, 1)``."""
        outputs = self.model.predict(
            inputs if len(inputs) > 1 else inputs[0], batch_size=256, verbose=0
        )
        outputs = outputs if isinstance(outputs, list) else [outputs]
        if self.manifest.model == "sgan":  # validity, then K real classes + "fake"
            n_classes = self.manifest.tasks[0].n_classes
            real = np.asarray(outputs[1])[:, :n_classes]
            return [real / np.maximum(real.sum(axis=1, keepdims=True), 1e-12)]
        outputs = [np.asarray(o) for o in outputs]
        if self.elms:
            from sermodels.models.elm import utterance_statistics

            features = utterance_statistics(outputs)
            return [elm.predict(features) for elm in self.elms]
        return outputs


def predict(
    model_dir: str | Path,
    source: str | Path,
    out: str | Path,
    folds: list[int] | None = None,
    seed: int | None = None,
    layer: str | None = None,
    progress: bool = True,
) -> dict:
    """Predict ``source`` (h5 or WAV folder) with the model in ``model_dir``; returns a
    summary (rows, utterances, files written). Outputs are written whole or not at all."""
    from tqdm import tqdm

    predictor = Predictor(model_folder(model_dir, seed))
    source, out = Path(source), Path(out)
    if not source.exists():
        raise ConfigError(str(source), "input not found (an h5 file or a folder of WAV files)")
    if layer is None and not predictor.classifies:
        raise ConfigError(str(model_dir), "an unsupervised SGAN has no classifier; use --features")
    if layer is not None and out.suffix not in (".h5", ".hdf5"):
        raise ConfigError("--out", "with --features, name an .h5 file")
    chunks, total = _chunks(predictor, source, folds, progress)
    writer = LayerWriter(predictor, layer, out) if layer else CsvWriter(predictor, out)
    with tqdm(total=total, unit="row", desc="predict", disable=not progress) as bar:
        try:
            for chunk in chunks:
                writer.add(chunk)
                bar.update(len(chunk.ids))
            summary = writer.close()
        except BaseException:
            writer.discard()
            raise
    return {"rows": total, **summary}


def _chunks(predictor: Predictor, source: Path, folds: list[int] | None, progress: bool):
    if source.is_dir():
        if folds:
            raise ConfigError("--folds", "folds are for an h5 input, not a WAV folder")
        return _wav_chunks(predictor, source, progress)
    return _h5_chunks(predictor, source, folds)


def _h5_chunks(predictor: Predictor, path: Path, folds: list[int] | None):
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise DataError(str(path), None, "not an h5 file") from None
    with h5:
        missing = [k for k in predictor.manifest.features if k not in h5]
        if missing:
            raise DataError(
                str(path), missing[0], f"missing; the model reads {predictor.manifest.features}"
            )
        n_rows = h5[predictor.manifest.features[0]].shape[0]
        rows = _fold_rows(h5, path, folds, n_rows)
        utterance_column = _utterance_column(h5)
    if not len(rows):
        raise DataError(str(path), "start_indice", f"folds {folds} hold no rows")

    def chunks() -> Iterator[Windows]:
        with h5py.File(path, "r") as h5:
            labels = h5["label"] if utterance_column is not None else None
            for start in range(0, len(rows), CHUNK_ROWS):
                chosen = rows[start : start + CHUNK_ROWS]
                raw = {k: h5[k][chosen] for k in predictor.manifest.features}
                inputs = predictor.inputs(raw, str(path))
                ids = [int(r) for r in chosen]
                if labels is not None:
                    utterances = [int(u) for u in labels[chosen, utterance_column]]
                else:
                    utterances = ids
                windows = _window_numbers(utterances)
                yield Windows(
                    dict(zip(predictor.manifest.features, inputs, strict=True)),
                    ids,
                    windows,
                    utterances,
                )

    return chunks(), len(rows)


def _window_numbers(utterances: list) -> list[int]:
    numbers, previous, count = [], None, 0
    for utterance in utterances:
        count = count + 1 if utterance == previous else 0
        numbers.append(count)
        previous = utterance
    return numbers


def _fold_rows(h5: h5py.File, path: Path, folds: list[int] | None, n_rows: int) -> np.ndarray:
    if not folds:
        return np.arange(n_rows)
    if "start_indice" not in h5 or "end_indice" not in h5:
        raise DataError(str(path), "start_indice", "missing; --folds needs the file's folds")
    starts, ends = h5["start_indice"][:], h5["end_indice"][:]
    bad = [f for f in folds if not 0 <= f < len(starts)]
    if bad:
        raise ConfigError("--folds", f"fold {bad[0]} not in the file's 0..{len(starts) - 1}")
    return np.unique(np.concatenate([np.arange(starts[f], ends[f]) for f in folds]))


def _utterance_column(h5: h5py.File) -> int | None:
    from sermodels.data.contract import attribute_list

    if "label" not in h5:
        return None
    names = attribute_list(h5["label"].attrs.get("columns"))
    return names.index("utterance") if names and "utterance" in names else None


def _wav_chunks(predictor: Predictor, folder: Path, progress: bool):
    from sermodels.data.extract import ExtractConfig, Utterance, _parallel

    extraction = predictor.manifest.extraction
    if extraction is None:
        raise ConfigError(
            str(folder),
            "the model's corpus was not written by `launch.py extract`, so WAV files cannot "
            "be turned into its features; give an h5",
        )
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise DataError(str(folder), None, "no .wav files found (searched subfolders too)")
    config = ExtractConfig.from_parameters(extraction)
    key = predictor.manifest.features[0]
    if len(predictor.manifest.features) != 1:
        raise ConfigError(str(folder), "WAV input needs a model with one (audio) input")
    utterances = [Utterance(i, p, "", {}) for i, p in enumerate(files)]
    total = 0
    blocks = []
    for utterance, block in zip(utterances, _parallel(utterances, config, progress), strict=True):
        blocks.append((utterance.path.relative_to(folder).as_posix(), block))
        total += len(block)

    def chunks() -> Iterator[Windows]:
        for name, block in blocks:
            for start in range(0, len(block), CHUNK_ROWS):
                part = block[start : start + CHUNK_ROWS]
                (inputs,) = predictor.inputs({key: part}, name)
                count = len(part)
                yield Windows(
                    {key: inputs}, [name] * count, list(range(start, start + count)), [name] * count
                )

    return chunks(), total


class CsvWriter:
    """Per-window rows to ``out``; per-utterance means to ``out``'s ``.utterances.csv``."""

    def __init__(self, predictor: Predictor, out: Path) -> None:
        self.predictor, self.out = predictor, out
        self.utterance_out = out.with_name(out.stem + ".utterances.csv")
        self.partials = [p.with_name(p.name + ".partial") for p in (out, self.utterance_out)]
        self.names = _column_names(predictor.manifest)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.partials[0], "w", newline="")  # noqa: SIM115 (closed in close)
        except OSError as exc:
            raise ConfigError(str(out), f"cannot write ({exc.strerror or exc})") from None
        self.rows = csv.writer(self.file)
        self.rows.writerow(["input", "window", "utterance", *self.names])
        self.sums: dict = {}  # utterance -> (windows, summed outputs per task)

    def add(self, chunk: Windows) -> None:
        inputs = [chunk.features[k] for k in self.predictor.manifest.features]
        outputs = self.predictor.task_outputs(inputs)
        for i, (row, window, utterance) in enumerate(
            zip(chunk.ids, chunk.windows, chunk.utterances, strict=True)
        ):
            values = [o[i] for o in outputs]
            self.rows.writerow([row, window, utterance, *_cells(self.predictor.manifest, values)])
            count, sums = self.sums.get(utterance, (0, None))
            sums = values if sums is None else [s + v for s, v in zip(sums, values, strict=True)]
            self.sums[utterance] = (count + 1, sums)

    def close(self) -> dict:
        self.file.close()
        with open(self.partials[1], "w", newline="") as file:
            rows = csv.writer(file)
            rows.writerow(["utterance", "windows", *self.names])
            for utterance, (count, sums) in self.sums.items():
                means = [s / count for s in sums]
                rows.writerow([utterance, count, *_cells(self.predictor.manifest, means)])
        for partial, final in zip(self.partials, (self.out, self.utterance_out), strict=True):
            os.replace(partial, final)
        return {
            "windows_csv": str(self.out),
            "utterances_csv": str(self.utterance_out),
            "utterances": len(self.sums),
        }

    def discard(self) -> None:
        self.file.close()
        for partial in self.partials:
            partial.unlink(missing_ok=True)


def _column_names(manifest: ModelManifest) -> list[str]:
    names = []
    for task, classes in zip(manifest.tasks, manifest.class_names, strict=True):
        names.append(task.name)
        if not task.is_regression:
            names += [f"{task.name}_p_{c}" for c in classes]
    return names


def _cells(manifest: ModelManifest, values: list[np.ndarray]) -> list:
    cells = []
    for task, classes, value in zip(manifest.tasks, manifest.class_names, values, strict=True):
        if task.is_regression:
            cells.append(f"{float(np.ravel(value)[0]):.6g}")
        else:
            cells.append(classes[int(np.argmax(value))])
            cells += [f"{float(p):.6g}" for p in value]
    return cells


class LayerWriter:
    """A layer's activations per window to an h5: ``features`` ``(rows, ...)``, ``input``
    (row number or file) and ``window``."""

    def __init__(self, predictor: Predictor, layer: str, out: Path) -> None:
        import keras

        model = predictor.model
        names = [layer_.name for layer_ in model.layers]
        if layer not in names:
            raise ConfigError(f"--features {layer}", f"no such layer; the model has {names}")
        self.predictor = predictor
        self.extractor = keras.Model(model.inputs, model.get_layer(layer).output)
        self.out, self.partial = out, out.with_name(out.name + ".partial")
        self.blocks: list[np.ndarray] = []
        self.ids: list[str] = []
        self.windows: list[int] = []

    def add(self, chunk: Windows) -> None:
        inputs = [chunk.features[k] for k in self.predictor.manifest.features]
        values = self.extractor.predict(
            inputs if len(inputs) > 1 else inputs[0], batch_size=256, verbose=0
        )
        self.blocks.append(np.asarray(values, np.float32))
        self.ids += [str(i) for i in chunk.ids]
        self.windows += chunk.windows

    def close(self) -> dict:
        features = np.concatenate(self.blocks)
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(self.partial, "w") as h5:
                h5.create_dataset("features", data=features)
                h5.create_dataset("input", data=np.asarray(self.ids, dtype="S"))
                h5.create_dataset("window", data=np.asarray(self.windows, np.int64))
        except OSError as exc:
            self.discard()
            raise ConfigError(str(self.out), f"cannot write ({exc.strerror or exc})") from None
        os.replace(self.partial, self.out)
        return {"features_h5": str(self.out), "shape": list(features.shape)}

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)
