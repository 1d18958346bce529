"""Training run of an SER architecture: Keras ``fit`` one epoch at a time, multi-task heads,
class-imbalance handling and pretrained loading."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from sermodels.config import RunConfig, SERConfig
from sermodels.data import Corpus, Split
from sermodels.errors import ConfigError
from sermodels.models.losses import inverse_frequency_weights, task_loss
from sermodels.models.ser import build_ser_model
from sermodels.models.transfer import freeze_layers, load_keras_model, transfer_weights
from sermodels.specs import TaskSpec
from sermodels.training.common import evaluate_task, scalars_of
from sermodels.training.loop import TrainingRun


class SERRun(TrainingRun):
    """One SER model on every task of the corpus; the first task's score drives selection.

    Example:
        >>> result = SERRun(config, corpus, Path("runs/ser")).fit()  # doctest: +SKIP
    """

    def __init__(self, config: RunConfig, corpus: Corpus, out: Path | None = None) -> None:
        super().__init__(config, corpus, out)
        ser = config.ser
        if len(corpus.train.features) != 1:
            raise ConfigError("data.features", "SER models take one feature key")
        self.key = next(iter(corpus.train.features))
        train = corpus.train.select(np.flatnonzero(corpus.train.labelled))
        if ser.smote_enn:
            train = _smote_enn(train, self.key, corpus.tasks, config.train.seed)
        self.x = train.features[self.key]
        self.y = [_targets(t, train.labels) for t in corpus.tasks]  # in output order
        self.sample_weight = _sample_weights(ser, corpus.tasks, train.labels)
        self.model = build_ser_model(ser, self.x.shape[1:], corpus.tasks)
        if ser.load_model:
            source = load_keras_model(ser.load_model, "ser.load_model")
            self.loaded = transfer_weights(self.model, source, ser.unloaded, "ser.load_model")
        freeze_layers(self.model, ser.frozen, "ser.frozen")
        self.model.compile(
            optimizer=keras.optimizers.Adam(ser.lr),
            loss=[task_loss(t, self._class_ids(t, train), ser.focal_gamma) for t in corpus.tasks],
            loss_weights=[t.weight for t in corpus.tasks],
            steps_per_execution=8,  # fewer host round-trips per epoch
        )
        self.model.optimizer.build(self.model.trainable_variables)  # checkpoints restore early

    @staticmethod
    def _class_ids(task: TaskSpec, split: Split):
        return None if task.is_regression else split.labels[:, task.column].astype(int)

    def train_one_epoch(self) -> dict:
        history = self.model.fit(
            self.x, self.y, sample_weight=self.sample_weight,
            batch_size=self.config.train.batch_size, epochs=self.epoch,
            initial_epoch=self.epoch - 1, shuffle=True, verbose=0,
        )  # fmt: skip
        signals = {f"train_{k}": float(v[-1]) for k, v in history.history.items()}
        signals["nonfinite"] = float(not np.isfinite(list(signals.values())).all())
        return signals

    def evaluate(self, split: Split, prefix: str) -> dict:
        outputs = self.model.predict(split.features[self.key], batch_size=256, verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        result = {}
        for index, (task, output) in enumerate(zip(self.corpus.tasks, outputs, strict=True)):
            report = evaluate_task(task, output, split.labels)
            scalars = scalars_of(f"{prefix}_{task.name}", report)
            result.update(scalars)
            if index == 0:  # the first task is the headline
                result.update(scalars_of(prefix, report))
                result.setdefault(f"{prefix}_score", report.get("ccc"))
                if prefix == "test" and "confusion" in report:
                    result["test_confusion"] = report["confusion"]
        return result

    def get_weights(self) -> list:
        return self.model.get_weights()

    def set_weights(self, weights: list) -> None:
        self.model.set_weights(weights)

    def optimizers(self) -> list[tuple]:
        return [(self.model.optimizer, self.model.trainable_variables)]

    def save_models(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "ser.keras"
        self.model.save(path)
        return [str(path)]


def _targets(task: TaskSpec, labels: np.ndarray) -> np.ndarray:
    values = labels[:, task.column]
    if task.is_regression:
        return values.astype(np.float32)[:, None]
    return keras.utils.to_categorical(values.astype(int), task.n_classes)


def _sample_weights(config: SERConfig, tasks: list[TaskSpec], labels: np.ndarray):
    """``class_weight``: ``none``, ``auto`` or ``"task:w0:w1:..."`` (comma-separated)."""
    if config.class_weight in ("none", "", None):
        return None
    explicit = {}
    if config.class_weight != "auto":
        for part in config.class_weight.split(","):
            name, *weights = part.split(":")
            try:
                explicit[name] = np.array([float(w) for w in weights], np.float32)
            except ValueError:
                raise ConfigError("ser.class_weight", f"bad weights in {part!r}") from None
    weights = []
    for task in tasks:
        ids = None if task.is_regression else labels[:, task.column].astype(int)
        if ids is None:
            weights.append(np.ones(len(labels), np.float32))
            continue
        per_class = explicit.get(task.name)
        if per_class is None:
            per_class = inverse_frequency_weights(ids, task.n_classes)
        elif len(per_class) != task.n_classes:
            raise ConfigError(
                "ser.class_weight",
                f"{task.name}: expected {task.n_classes} weights, got {len(per_class)}",
            )
        weights.append(per_class[ids])
    return weights


def _smote_enn(train: Split, key: str, tasks: list[TaskSpec], seed: int) -> Split:
    """Oversample minority classes with SMOTE, then clean with edited nearest neighbours."""
    from imblearn.combine import SMOTEENN
    from imblearn.over_sampling import SMOTE

    if len(tasks) != 1 or tasks[0].is_regression:
        raise ConfigError("ser.smote_enn", "SMOTE-ENN needs a single classification task")
    features = train.features[key]
    ids = train.labels[:, tasks[0].column].astype(int)
    neighbours = max(1, min(5, np.bincount(ids)[np.bincount(ids) > 0].min() - 1))
    sampler = SMOTEENN(smote=SMOTE(k_neighbors=neighbours, random_state=seed), random_state=seed)
    flat, new_ids = sampler.fit_resample(features.reshape(len(features), -1), ids)
    labels = np.zeros((len(new_ids), train.labels.shape[1]), np.float32)
    labels[:, tasks[0].column] = new_ids
    return Split(
        {key: flat.reshape(-1, *features.shape[1:]).astype(np.float32)},
        labels,
        np.ones(len(new_ids), bool),
    )
