"""A training run, epoch by epoch: the loop every model shares (best-weights tracking,
early stopping, TensorBoard, outputs). Subclasses supply one epoch and an evaluation."""

from __future__ import annotations

import json
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from sermodels.backend import accelerator_peak_bytes, seed_everything
from sermodels.config import RunConfig, check_train_config
from sermodels.data import Corpus, Split
from sermodels.files import write_json
from sermodels.inference.manifest import ModelManifest
from sermodels.training.common import LossPatience, SourcePatience
from sermodels.training.tensorboard import TensorBoardLog

EpochHook = Callable[[dict], bool]  # gets an epoch's metrics; True asks the run to stop


class TrainingRun(ABC):
    """Train epoch by epoch, keep the best weights by validation score, stop early.

    Args:
        config: the whole run config.
        corpus: a validated split.
        out: output folder (TensorBoard in ``out/tb``, images, models, ``metrics.json``);
            ``None`` writes nothing.
    """

    evaluates_train = False  # the source's default for ``train.eval_train`` of this model

    def __init__(self, config: RunConfig, corpus: Corpus, out: Path | None = None) -> None:
        check_train_config(config.train)
        seed_everything(config.train.seed)
        self.config = config
        self.corpus = corpus
        self.out = out
        self.task = corpus.tasks[0]
        self.class_names = corpus.class_names(self.task)
        self.epoch = 0
        self.history: list[dict] = []
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_weights = None
        patience = SourcePatience if config.train.stop_on == "score" else LossPatience
        self.stopper = patience(config.train.patience)
        self.log = TensorBoardLog(out / "tb" if out else None)
        self.stop_reason = "budget"
        wanted = config.train.eval_train
        # streaming, the source's per-epoch pass over every training row is a pass over the
        # file: asked for only
        default = self.evaluates_train and not corpus.streaming
        self.eval_train = default if wanted is None else wanted
        self.labelled_train = corpus.train.select(np.flatnonzero(corpus.train.labelled))

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run (SER adds its adaptation phase)."""
        return self.config.train.epochs

    # ---- what a model supplies ----------------------------------------------------------
    @abstractmethod
    def train_one_epoch(self) -> dict:
        """Train one epoch; return its training signals."""

    @abstractmethod
    def evaluate(self, split: Split, prefix: str) -> dict:
        """Metrics of ``split``; must hold ``{prefix}_score`` (None when not defined)."""

    @abstractmethod
    def get_weights(self) -> list: ...

    @abstractmethod
    def set_weights(self, weights: list) -> None: ...

    @abstractmethod
    def save_models(self, directory: Path) -> list[str]: ...

    @abstractmethod
    def optimizers(self) -> list[tuple]:
        """``(optimizer, variables it updates)`` pairs, for checkpoints."""

    def save_images(self, epoch: int) -> None:  # noqa: B027 (optional hook, not abstract)
        """Write generated samples (models that generate override this)."""

    # ---- the loop -----------------------------------------------------------------------
    def step_epoch(self) -> dict:
        """Train and validate one epoch; returns its metrics (also kept in ``history``)."""
        started = time.perf_counter()
        self.epoch += 1
        metrics = {"epoch": self.epoch, **self.train_one_epoch()}
        if len(self.corpus.valid):  # no validation rows (final training): keep last weights
            metrics.update(self.evaluate(self.corpus.valid, "val"))
        if self.eval_train and len(self.labelled_train):
            metrics.update(self.evaluate(self.labelled_train, "train"))
        metrics["epoch_seconds"] = time.perf_counter() - started
        peak = accelerator_peak_bytes()
        if peak is not None:  # on a GPU: how much of it this run needs (sizing trial shares)
            metrics["gpu_peak_bytes"] = peak
        metrics["train_rows"] = len(self.corpus.train)  # for samples/s across runs
        score = metrics.get("val_score")
        if score is not None and math.isfinite(score) and score > self.best_score:
            self.best_score, self.best_epoch, self.best_weights = (
                score,
                self.epoch,
                self.get_weights(),
            )
        self.history.append(metrics)
        self.log.scalars(self.epoch, metrics)
        interval = self.config.train.save_img_interval
        if self.out and interval and self.epoch % interval == 0:
            self.save_images(self.epoch)
        return metrics

    def should_stop(self, metrics: dict) -> bool:
        watched = metrics.get("val_score" if self.config.train.stop_on == "score" else "val_loss")
        if metrics.get("nonfinite"):
            self.stop_reason = "nonfinite"
        elif watched is not None and self.stopper.update(watched):
            self.stop_reason = "patience"
        else:
            return False
        return True

    def fit(self, on_epoch: EpochHook | None = None) -> dict:
        """Run up to :attr:`total_epochs` epochs, then :meth:`finish`."""
        while self.epoch < self.total_epochs:
            metrics = self.step_epoch()
            if on_epoch and on_epoch(metrics):
                self.stop_reason = "hook"
                break
            if self.should_stop(metrics):
                break
        return self.finish()

    def finish(self) -> dict:
        """Restore the best weights, evaluate on test, save models and ``metrics.json``."""
        if self.best_weights is not None:
            self.set_weights(self.best_weights)
        test = self.evaluate(self.corpus.test, "test")
        last = self.history[-1] if self.history else {}
        best = self.history[self.best_epoch - 1] if self.best_epoch else last
        result = {
            "model": self.config.model,
            "task": self.task.name,
            "epochs": self.epoch,
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            "val_uar": best.get("val_uar"),
            "val_score": best.get("val_score"),
            "valid_is_test": self.corpus.valid_is_test,
            **test,
        }
        if self.corpus.data is not None:
            result["data_mode"] = self.corpus.data.mode
        if self.corpus.plan.skipped_folds:
            result["skipped_folds"] = self.corpus.plan.skipped_folds
        if self.eval_train and len(self.labelled_train):
            result.update(self.evaluate(self.labelled_train, "train"))
        result.setdefault("test_uar", None)  # a regression-only run has no UAR
        self.log.scalars(self.epoch, {k: v for k, v in result.items() if k.startswith("test_")})
        self.log.close()
        if self.out:
            if self.config.train.save_models:
                paths = self.save_models(self.out / "models")
                self.manifest([Path(p).name for p in paths]).save(self.out / "models")
                result["models"] = [str(Path(p).relative_to(self.out)) for p in paths]
            write_json(self.out / "history.json", self.history)
            write_json(self.out / "metrics.json", result)
        return result

    def manifest(self, files: list[str]) -> ModelManifest:
        """What predicting with the saved ``files`` needs (the classifier is the first)."""
        corpus = self.corpus
        return ModelManifest(
            model=self.config.model,
            classifier=files[0],
            features=corpus.train.keys,
            input_shapes={k: list(v) for k, v in corpus.input_shapes().items()},
            preprocessing=corpus.preprocessing.to_dict(),
            tasks=list(corpus.tasks),
            class_names=[[] if t.is_regression else corpus.class_names(t) for t in corpus.tasks],
            config=self.config.to_dict(),
            backend=keras.backend.backend(),
            extraction=corpus.extraction,
            elm_files=[f for f in files if f.endswith(".elm.npz")],
            corpus=str(corpus.source),
        )

    # ---- checkpoints --------------------------------------------------------------------
    def save_state(self, directory: Path) -> None:
        """Everything needed to continue after epoch ``self.epoch``: weights, optimizer
        slots, best weights and the loop's own state (``state.npz`` + ``state.json``)."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays = _numbered("w", keras.tree.flatten(self.get_weights()))
        for index, (optimizer, _) in enumerate(self.optimizers()):
            arrays.update(_numbered(f"o{index}_", [np.asarray(v) for v in optimizer.variables]))
        if self.best_weights is not None:
            arrays.update(_numbered("b", keras.tree.flatten(self.best_weights)))
        tmp = directory / "state.part.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, directory / "state.npz")
        write_json(
            directory / "state.json",
            {
                # a copy cut short (a killed driver mid-checkpoint) shows as a size mismatch
                "state_bytes": (directory / "state.npz").stat().st_size,
                "epoch": self.epoch,
                "history": self.history,
                "best_score": self.best_score,
                "best_epoch": self.best_epoch,
                "patience_history": self.stopper.history,
            },
        )

    def load_state(self, directory: Path) -> None:
        """Continue from :meth:`save_state`'s files (raises ``ValueError`` if they do not
        match this model)."""
        meta = json.loads((directory / "state.json").read_text())
        with np.load(directory / "state.npz") as stored:
            arrays = dict(stored)
        structure = self.get_weights()
        self.set_weights(_unflatten(structure, _series(arrays, "w")))
        for index, (optimizer, variables) in enumerate(self.optimizers()):
            if not optimizer.built:
                optimizer.build(variables)
            values = _series(arrays, f"o{index}_")
            if len(values) != len(optimizer.variables):
                raise ValueError("checkpoint optimizer state does not match the model")
            for variable, value in zip(optimizer.variables, values, strict=True):
                variable.assign(value)
        best = _series(arrays, "b")
        self.best_weights = _unflatten(structure, best) if best else None
        self.epoch, self.history = meta["epoch"], meta["history"]
        self.best_score, self.best_epoch = meta["best_score"], meta["best_epoch"]
        self.stopper.history = meta["patience_history"]


def _numbered(prefix: str, values: list) -> dict[str, np.ndarray]:
    return {f"{prefix}{i}": np.asarray(v) for i, v in enumerate(values)}


def _series(arrays: dict, prefix: str) -> list[np.ndarray]:
    count = sum(1 for k in arrays if k.startswith(prefix) and k[len(prefix) :].isdigit())
    return [arrays[f"{prefix}{i}"] for i in range(count)]


def _unflatten(structure, flat: list[np.ndarray]):
    if len(flat) != len(keras.tree.flatten(structure)):
        raise ValueError("checkpoint weights do not match the model")
    return keras.tree.pack_sequence_as(structure, flat)
