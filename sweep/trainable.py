"""The Ray Tune trainable: a trial is one :class:`sermodels.training.loop.TrainingRun`, one
epoch per ``step``, a checkpoint per epoch, and the collapse verdicts in every result: every
failure mode the trial reached (``verdicts``), and the one it is known by (``verdict``).

Actors are reused between trials (``reset_config``), so Keras and its backend are imported
once per worker, not once per trial. The corpus arrives from Ray's object store, read once
per sweep.

Every result also says where the trial's time went: ``trial_setup_seconds`` (clearing the
previous trial's state and building this trial's models) and ``epoch_started_at`` (when the
epoch's step began, Unix seconds); with Ray's ``time_this_iter_s`` they place every epoch
on the sweep's timeline (``bench/sweep_overhead.py`` reads them).
"""

from __future__ import annotations

import gc
import json
import math
import os
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import ray
from ray import tune

from search_spaces import SearchSpace
from search_spaces.loader import TASKS_KEY, check_task_choice
from search_spaces.objective import (
    DIVERSITY_SCORE,
    LATENCY_MS,
    PARAMS,
    Objective,
    diversity_score,
    epoch_value,
)
from sermodels.backend import configure_threads
from sermodels.config import config_from_dict
from sermodels.data import Corpus
from sermodels.data.stream import check_readable
from sermodels.errors import SersweepError
from sermodels.training.diversity import real_sample
from sermodels.training.run import make_run
from sweep.collapse import CollapseDetector, Verdict, deciding_verdict
from sweep.internals import sync_artifacts, trial_storage
from sweep.recovery import OWNER, ROWS
from sweep.settings import SweepSettings

OBJECTIVE = "objective"  # the space's reduction of its metric so far: what Optuna, ASHA see
LATENCY_CALLS = 30  # timed batch-1 calls whose median is a trial's latency_ms (after warm-up)
INVALID = "invalid_config"  # the verdict of a drawn config the models reject
REPLAYED = "replayed"  # a finished trial restored after a driver kill re-reports its end
TRIAL_SETUP_SECONDS = "trial_setup_seconds"
EPOCH_STARTED_AT = "epoch_started_at"


class SweepTrainable(tune.Trainable):
    """One trial. Built with ``tune.with_parameters(SweepTrainable, corpus=..., space=...,
    settings=...)``; the trial config holds the Optuna parameters and ``overrides``."""

    def setup(
        self, config: dict, corpus: Corpus, space: SearchSpace, settings: SweepSettings
    ) -> None:
        self.corpus, self.space, self.settings = corpus, space, settings
        if corpus.streaming:  # a node without the file fails here, not mid-epoch
            check_readable(corpus.source)
        self.max_epochs = settings.max_epochs or space.max_epochs
        self.detector = CollapseDetector(**settings.detector)
        configure_threads(settings.cpus_per_trial)
        # Each trial starts with `clear_session`, whose garbage collection would otherwise
        # walk every object the imports and the corpus made (~0.25 s per trial with
        # TensorFlow): they live as long as the actor, so they leave the collector's view
        gc.collect()
        gc.freeze()
        self._start(config)

    def _start(self, config: dict) -> None:
        started = time.perf_counter()
        keras.backend.clear_session()  # drop the previous trial's graphs (reused actor)
        self.params = {k: v for k, v in config.items() if k != "overrides"}
        self.closed = False
        self.reached: list[Verdict] = []  # every failure mode reached, earliest first
        self.verdict = Verdict()  # the one that decides the trial's fate (see `_judge`)
        # every epoch's result so far: each checkpoint carries them, so a row the driver died
        # before recording can be written back at resume (see sweep.recovery)
        self.rows: list[dict] = []
        # this trial's storage: on actor reuse, Ray swaps in the next trial's before reset
        self.trial_storage = trial_storage(self)
        self.run, self.invalid = None, None
        self.latency_ms: float | None = None  # measured once, when an objective names it
        try:
            self._build(config)
        except SersweepError as exc:  # a drawn combination the models reject: no retries
            self.invalid = str(exc)
        self.setup_seconds = time.perf_counter() - started

    def _build(self, config: dict) -> None:
        mapping = self.space.run_config(config["overrides"], max_epochs=self.max_epochs)
        mapping["train"]["save_models"] = False  # `launch.py final` saves the chosen ones
        run_config = config_from_dict(mapping, f"trial {self.trial_id}")
        self.is_gan = run_config.model == "sgan" and run_config.sgan.generator
        corpus = self.corpus
        if TASKS_KEY in config["overrides"]:  # searched heads / loss weights
            tasks = check_task_choice(run_config.data.tasks, self.space.base, "data.tasks")
            corpus = corpus.with_tasks(tasks)
        self.run = make_run(run_config, corpus, Path(self.logdir))
        self.weights = weight_count(self.run.get_weights())

    def step(self) -> dict:
        if self.invalid:
            return {
                OBJECTIVE: math.nan,
                "verdict": INVALID,
                "invalid": self.invalid,
                "collapsed": 0,
                tune.result.DONE: True,
            }
        if self.run.epoch >= self.run.total_epochs or self.verdict.name in self.settings.stopping:
            # restored from its final checkpoint: end at once, without training again
            return {**self._result(self.run.history[-1]), REPLAYED: 1, tune.result.DONE: True}
        started_at = time.time()
        metrics = self.run.step_epoch()
        self._judge()
        result = {**self._result(metrics), EPOCH_STARTED_AT: started_at}
        done = self.run.epoch >= self.run.total_epochs or self.run.should_stop(metrics)
        if done or self.verdict.name in self.settings.stopping:
            self._close()  # the last result: the CollapseStopper ends a condemned trial
        self.rows.append(
            {
                **result,
                tune.result.DONE: done,
                "trial_id": self.trial_id,
                "training_iteration": self.run.epoch,
                "pid": os.getpid(),
                "timestamp": int(time.time()),
            }
        )
        return {**result, tune.result.DONE: done}

    def _judge(self) -> None:
        """Every verdict the history reached (GANs: every failure mode; other models, with
        no G and so no game: only ``nan``), and the deciding one: the first that stops the
        trial, whatever label-only verdicts came before it."""
        if self.is_gan:
            self.reached = self.detector.verdicts(self.run.history)
        else:
            nan = self.detector.nan_verdict(self.run.history)
            self.reached = [nan] if nan.failed else []
        self.verdict = deciding_verdict(self.reached, self.settings.stopping)

    def _result(self, metrics: dict) -> dict:
        result = {k: v for k, v in metrics.items() if _is_number(v)}
        score = diversity_score(metrics)
        if math.isfinite(score):
            result[DIVERSITY_SCORE] = score
        objective, objective_epoch = self._objective()
        for other in self.space.others:  # a Pareto sweep's other objectives
            result[other.key] = self._value(other)
        verdict = self.verdict
        result.update(
            {
                OBJECTIVE: objective,
                "verdict": verdict.name,
                "verdict_onset": verdict.onset,
                "verdict_epoch": verdict.epoch,
                "verdict_signals": verdict.signals,
                "verdicts": json.dumps([v.to_dict() for v in self.reached]),
                "collapsed": int(verdict.failed),
                "best_epoch": self.run.best_epoch,
                "objective_epoch": objective_epoch,
                "stop_reason": self.run.stop_reason,
                "node_id": ray.get_runtime_context().get_node_id(),  # where this epoch ran
                "keras_backend": keras.backend.backend(),
                TRIAL_SETUP_SECONDS: self.setup_seconds,
            }
        )
        return result

    def _objective(self) -> tuple[float, int | None]:
        """The space's reduction of the metric over the epochs so far, and the epoch it points
        at (``final`` trains that long)."""
        values = [epoch_value(metrics, self.space.metric) for metrics in self.run.history]
        return self.space.reduce.reduce(values, self.space.mode)

    def _value(self, objective: Objective) -> float:
        if objective.metric == PARAMS:  # the run's size: every weight it trains
            return float(self.weights)
        if objective.metric == LATENCY_MS:  # the architecture's, so measured once per trial
            if self.latency_ms is None:
                self.latency_ms = classifier_latency_ms(self.run, self.run.corpus.train)
            return self.latency_ms
        values = [epoch_value(metrics, objective.metric) for metrics in self.run.history]
        return objective.reduce.reduce(values, objective.mode)[0]

    def _close(self) -> None:
        """Write the HParams summary (parameters, verdict, final metrics) once per trial."""
        if self.closed or self.run is None:
            return
        self.closed = True
        log = self.run.log
        hparams = {**self.params, "verdict": self.verdict.name}
        log.hparams(
            hparams,
            {
                "hparams/objective": self._objective()[0],
                "hparams/epochs": self.run.epoch,
                "hparams/collapsed": float(self.verdict.failed),
            },
        )
        log.text(self.run.epoch, "verdict", self._verdict_text())
        self.run.log.close()
        if self.trial_storage is not None:  # trials stopped from outside (ASHA) sync here
            sync_artifacts(self.trial_storage)

    def _verdict_text(self) -> str:
        if not self.reached:
            return f"healthy after {self.run.epoch} epochs"
        lines = []
        for verdict in self.reached:
            signals = ", ".join(f"{k}={v:.4g}" for k, v in verdict.signals.items())
            deciding = " (decides the trial)" if verdict == self.verdict else ""
            lines.append(
                f"{verdict.name}{deciding}: onset epoch {verdict.onset}, verdict at "
                f"{verdict.epoch} ({signals})"
            )
        return "\n\n".join(lines)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.run is not None:
            self.run.save_state(Path(checkpoint_dir))
            (Path(checkpoint_dir) / ROWS).write_text(json.dumps(self.rows, default=_plain))
            (Path(checkpoint_dir) / OWNER).write_text(json.dumps({"trial_id": self.trial_id}))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """Continue from ``checkpoint_dir``; after a driver kill, ``resume`` has pointed Ray
        at the newest complete checkpoint (see :mod:`sweep.recovery`)."""
        if self.run is None:
            return
        checkpoint = Path(checkpoint_dir)
        try:
            self.run.load_state(checkpoint)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise CorruptCheckpoint(f"{checkpoint}: unreadable checkpoint ({exc})") from None
        rows = checkpoint / ROWS  # absent in a checkpoint written before rows were kept
        self.rows = json.loads(rows.read_text()) if rows.exists() else []
        self._judge()

    def reset_config(self, new_config: dict) -> bool:
        self._close()
        self._start(new_config)
        return True

    def cleanup(self) -> None:
        self._close()


class CorruptCheckpoint(RuntimeError):
    """A trial's checkpoint cannot be loaded: the trial ends in error with this message."""


def _plain(value):
    """A value JSON cannot write as it is (a NumPy scalar in a verdict's signals) as one it can."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def classifier_latency_ms(run, rows, calls: int = LATENCY_CALLS) -> float:
    """Median milliseconds the run's classifier (an SGAN's discriminator, whose class head
    classifies) takes for one row of ``rows`` (batch 1, inference mode) on the device the
    trial runs on, over ``calls`` calls after three untimed ones (compilation, caches); each
    call's result is copied to the host, so an asynchronous device is timed to the end."""
    row = real_sample(rows, seed=0, count=1)
    if hasattr(run, "gan"):
        model, inputs = run.gan.discriminator, [row[m] for m in run.gan.modalities]
    else:
        model, inputs = run.model, row[run.key]
    times = []
    for call in range(3 + calls):
        started = time.perf_counter()
        keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=False))
        if call >= 3:
            times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 4)


def weight_count(weights: list) -> int:
    """How many values a run's weights hold: the ``params`` cost objective. An SGAN's weights
    are one list per model (discriminator, then generators), a classifier's one flat list."""
    if isinstance(weights, (list, tuple)):
        return sum(weight_count(w) for w in weights)
    return int(np.size(weights))
