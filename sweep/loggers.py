"""Ray Tune's JSON and CSV result loggers, minus replayed results: a trial restored after a
driver kill re-reports its last epoch to end cleanly, and that is not a new epoch."""

from __future__ import annotations

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from sweep.trainable import REPLAYED


class _SkipReplays:
    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if not result.get(REPLAYED):
            super().log_trial_result(iteration, trial, result)


class JsonResults(_SkipReplays, JsonLoggerCallback):
    """``result.json`` per trial: one line per epoch trained."""


class CsvResults(_SkipReplays, CSVLoggerCallback):
    """``progress.csv`` per trial: one row per epoch trained."""
