"""Training run of an SER architecture: Keras ``fit`` one epoch at a time, multi-task heads,
class-imbalance handling, pretrained loading, adaptation folds and the ELM post-classifier
(the source trainer's options)."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from sermodels.config import RunConfig, SERConfig
from sermodels.data import Corpus, Split
from sermodels.data.stream import PREFETCH_DEPTH
from sermodels.errors import ConfigError
from sermodels.models.elm import ExtremeLearningMachine, utterance_statistics
from sermodels.models.losses import class_weights, task_loss
from sermodels.models.ser import build_ser_model
from sermodels.models.transfer import copy_pretrained, freeze_layers
from sermodels.specs import TaskSpec
from sermodels.training.common import epoch_order, evaluate_task, scalars_of
from sermodels.training.loop import TrainingRun


class SERRun(TrainingRun):
    """One SER model on every task of the corpus; the first task's score drives selection.

    With ``data.adopt_idx`` the run trains on the training folds for ``train.epochs``, then
    adapts to the adaptation folds for ``train.adopt_epochs`` (as many by default); the best
    epoch is then chosen within the adaptation phase, so the model kept is adapted.

    Example:
        >>> result = SERRun(config, corpus, Path("runs/ser")).fit()  # doctest: +SKIP
    """

    def __init__(self, config: RunConfig, corpus: Corpus, out: Path | None = None) -> None:
        super().__init__(config, corpus, out)
        ser = config.ser
        if len(corpus.train.keys) != 1:
            raise ConfigError("data.features", "SER models take one feature key")
        if ser.post_elm and any(t.is_regression for t in corpus.tasks):
            raise ConfigError("ser.post_elm", "the ELM post-classifier needs classification tasks")
        self.key = corpus.train.keys[0]
        train = self.labelled_train
        if ser.smote_enn:
            if corpus.streaming:
                raise ConfigError(
                    "ser.smote_enn",
                    "SMOTE-ENN resamples every training row at once, which a streamed corpus "
                    "does not hold; run with --data-mode resident",
                )
            train = _smote_enn(train, self.key, corpus.tasks, config.train.seed)
        self.model = build_ser_model(ser, train.shapes[self.key], corpus.tasks)
        self.frame_steps = self.model.outputs[0].shape[1] if ser.post_elm else None
        self.phases = [train]
        if corpus.adopt is not None:
            self.phases.append(corpus.adopt)
        self.loaded = []
        if ser.load_model:
            self.loaded = copy_pretrained(
                self.model, ser.load_model, ser.unloaded, "ser.load_model"
            )
        freeze_layers(self.model, ser.frozen, "ser.frozen")
        optimizer = keras.optimizers.Adam(ser.lr, clipvalue=ser.clipvalue)
        self.model.compile(
            optimizer=optimizer,
            loss=[task_loss(t, _class_ids(t, train), ser) for t in corpus.tasks],
            loss_weights=[t.weight for t in corpus.tasks],
            steps_per_execution=8,  # fewer host round-trips per epoch
        )
        self.model.optimizer.build(self.model.trainable_variables)  # checkpoints restore early
        self.elms: list[ExtremeLearningMachine] = []

    @property
    def total_epochs(self) -> int:
        train = self.config.train
        adopt = (train.adopt_epochs or train.epochs) if len(self.phases) > 1 else 0
        return train.epochs + adopt

    def _phase(self) -> Split:
        """The rows this epoch trains on: training folds, then the adaptation folds."""
        adapting = len(self.phases) > 1 and self.epoch > self.config.train.epochs
        if adapting and self.epoch == self.config.train.epochs + 1:
            self.best_score = -np.inf  # the model kept must be an adapted one
            self.best_epoch = 0
        return self.phases[1 if adapting else 0]

    def train_one_epoch(self) -> dict:
        rows = self._phase()
        train = self.config.train
        weights = _sample_weights(self.config.ser, self.corpus.tasks, rows.labels)
        if weights is not None and self.frame_steps is not None:  # a weight per time step
            weights = [np.repeat(w[:, None], self.frame_steps, axis=1) for w in weights]
        targets = [self._targets(t, rows.labels) for t in self.corpus.tasks]
        if rows.resident and not train.steps_per_epoch:  # Keras shuffles arrays in memory
            data = {
                "x": rows.features[self.key],
                "y": targets,
                "sample_weight": weights,
                "batch_size": train.batch_size,
                "shuffle": True,
            }
        else:  # batches in a seeded order, read from the split (and the file, streaming)
            seed = train.seed * 100_003 + self.epoch
            order = epoch_order(len(rows), seed, train.steps_per_epoch * train.batch_size)
            data = {"x": Batches(rows, self.key, train.batch_size, order, targets, weights)}
        started = time.perf_counter()
        history = self.model.fit(**data, epochs=self.epoch, initial_epoch=self.epoch - 1, verbose=0)
        signals = {f"train_{k}": float(v[-1]) for k, v in history.history.items()}
        signals["nonfinite"] = float(not np.isfinite(list(signals.values())).all())
        signals["train_seconds"] = time.perf_counter() - started  # the steps alone: samples/s
        if self.config.ser.post_elm:
            self._fit_elms()
        return signals

    def _targets(self, task: TaskSpec, labels: np.ndarray) -> np.ndarray:
        """Utterance targets, repeated on every time step for a frame-level model."""
        values = labels[:, task.column]
        if task.is_regression:
            targets = values.astype(np.float32)[:, None]
        else:
            targets = keras.utils.to_categorical(values.astype(int), task.n_classes)
        if self.frame_steps is None:
            return targets
        return np.repeat(targets[:, None, :], self.frame_steps, axis=1)

    def _fit_elms(self) -> None:
        """One ELM per task on the utterance statistics of the training rows."""
        rows = self.phases[-1] if self.epoch > self.config.train.epochs else self.phases[0]
        features = utterance_statistics(self._outputs(rows))
        self.elms = []
        for task in self.corpus.tasks:
            targets = keras.utils.to_categorical(rows.labels[:, task.column], task.n_classes)
            elm = ExtremeLearningMachine(self.config.ser.elm_hidden, self.config.train.seed)
            self.elms.append(elm.fit(features, targets))

    def _outputs(self, split: Split) -> list[np.ndarray]:
        if split.resident:
            outputs = self.model.predict(split.features[self.key], batch_size=256, verbose=0)
        else:
            outputs = self.model.predict(Batches(split, self.key, 256), verbose=0)
        return outputs if isinstance(outputs, list) else [outputs]

    def task_outputs(self, split: Split) -> list[np.ndarray]:
        """Per task, the utterance-level outputs (after the ELM under ``post_elm``)."""
        outputs = self._outputs(split)
        if not self.config.ser.post_elm:
            return outputs
        features = utterance_statistics(outputs)
        return [elm.predict(features) for elm in self.elms]

    def evaluate(self, split: Split, prefix: str) -> dict:
        result = {}
        for index, (task, output) in enumerate(
            zip(self.corpus.tasks, self.task_outputs(split), strict=True)
        ):
            report = evaluate_task(task, output, split.labels)
            scalars = scalars_of(f"{prefix}_{task.name}", report)
            result.update(scalars)
            if index == 0:  # the first task is the headline
                result.update(scalars_of(prefix, report))
                if prefix == "test" and "confusion" in report:
                    result["test_confusion"] = report["confusion"]
        if prefix == "val" and self.config.train.stop_on == "loss":
            targets = [self._targets(t, split.labels) for t in self.corpus.tasks]
            if split.resident:
                data = {"x": split.features[self.key], "y": targets}
            else:
                data = {"x": Batches(split, self.key, 256, targets=targets)}
            losses = self.model.evaluate(**data, verbose=0, return_dict=True)
            result["val_loss"] = float(losses["loss"])
        return result

    def get_weights(self) -> list:
        return self.model.get_weights()

    def set_weights(self, weights: list) -> None:
        self.model.set_weights(weights)
        if self.config.ser.post_elm:
            self._fit_elms()  # the ELMs read the restored model's outputs

    def optimizers(self) -> list[tuple]:
        return [(self.model.optimizer, self.model.trainable_variables)]

    def save_models(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / "ser.keras"]
        self.model.save(paths[0])
        for task, elm in zip(self.corpus.tasks, self.elms, strict=False):
            paths.append(directory / f"{task.name}.elm.npz")
            np.savez(paths[-1], **elm.arrays())
        return [str(p) for p in paths]


class Batches(keras.utils.PyDataset):
    """Batches of a split (resident or streamed) for Keras ``fit``, ``predict`` and
    ``evaluate``, in a given order, read ahead by two threads.

    Args:
        split: the rows.
        key: the feature key the model takes.
        batch_size: rows per batch (the last one may be short).
        order: row positions in the order to serve them (default: split order).
        targets / weights: per-output arrays over the split's rows (``None``: inputs only).
    """

    def __init__(
        self,
        split,
        key: str,
        batch_size: int,
        order: np.ndarray | None = None,
        targets: list | None = None,
        weights: list | None = None,
    ) -> None:
        super().__init__(workers=2, max_queue_size=PREFETCH_DEPTH)
        self.split, self.key, self.batch_size = split, key, batch_size
        self.order = np.arange(len(split)) if order is None else np.asarray(order)
        self.targets, self.weights = targets, weights

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, index: int) -> tuple:
        positions = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        inputs = self.split.read(positions)[self.key]
        if self.targets is None:
            return (inputs,)
        targets = tuple(t[positions] for t in self.targets)  # tf.data takes tuples, not lists
        if self.weights is None:
            return inputs, targets
        return inputs, targets, tuple(w[positions] for w in self.weights)


def _class_ids(task: TaskSpec, split: Split):
    return None if task.is_regression else split.labels[:, task.column].astype(int)


def _sample_weights(config: SERConfig, tasks: list[TaskSpec], labels: np.ndarray):
    """``class_weight``: ``none``, ``auto`` (by ``class_weight_formula``) or
    ``"task:w0:w1:..."`` (comma-separated)."""
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
        if task.is_regression:
            weights.append(np.ones(len(labels), np.float32))
            continue
        ids = labels[:, task.column].astype(int)
        per_class = explicit.get(task.name)
        if per_class is None:
            per_class = class_weights(ids, task.n_classes, config.class_weight_formula)
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
        np.full(len(new_ids), -1, np.int64),  # synthetic rows have no file row
        {key: flat.reshape(-1, *features.shape[1:]).astype(np.float32)},
        labels,
        np.ones(len(new_ids), bool),
    )
