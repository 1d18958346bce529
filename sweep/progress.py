"""A live one-line progress view of a sweep, through Ray Tune's Callback seam."""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

from ray import tune

from sweep.results import last_line
from sweep.trainable import OBJECTIVE


class ProgressCallback(tune.Callback):
    """Print trials running / done / stopped by verdict / errored and the best trial so far
    that no verdict stopped (the one Optuna and ``launch.py best`` would pick).

    Args:
        metric: the objective's name as the user knows it (``val_uar``).
        mode: ``max`` or ``min``.
        interval: seconds between lines while nothing finishes.
        total: the number of trials the sweep will run.
        stopping: the verdicts that stop trials; other failure verdicts are counted as
            labelled (the trial ran on).
    """

    def __init__(
        self,
        metric: str,
        mode: str,
        interval: float = 15.0,
        total: int = 0,
        stopping: tuple[str, ...] = (),
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric, self.mode, self.interval, self.total = metric, mode, interval, total
        self.stopping = tuple(stopping)
        self._last = 0.0
        self._started = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._print(trials)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        # Ray wrote the error to the trial's driver-side folder; storage gets it at next sync
        error = Path(trial.error_file) if trial.error_file else None
        text = error.read_text(errors="replace") if error and error.is_file() else ""
        print(
            f"trial {trial.trial_id} raised: {last_line(text)} (details: {trial.path}/error.txt)",
            flush=True,
        )
        self._print(trials)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if time.monotonic() - self._last >= self.interval:
            self._print(trials)

    def on_experiment_end(self, trials: list, **info) -> None:
        self._print(trials)

    def line(self, trials: list) -> str:
        status = Counter(t.status for t in trials)
        verdicts = Counter(
            (t.last_result or {}).get("verdict", "healthy")
            for t in trials
            if t.status == "TERMINATED"
        )
        stopped = {v: n for v, n in sorted(verdicts.items()) if v in self.stopping}
        labelled = {v: n for v, n in sorted(verdicts.items()) if v not in self.stopping}
        labelled.pop("healthy", None)
        elapsed = time.monotonic() - self._started
        text = (
            f"[{elapsed / 60:4.1f} min] {status['RUNNING']} running, {status['PENDING']} pending, "
            f"{status['TERMINATED']}/{self.total or len(trials)} done "
            f"({_counts(stopped, 'stopped by verdict')}"
            + (f"; {_counts(labelled, 'labelled, ran on')}" if labelled else "")
            + f"), {status['ERROR']} errored"
        )
        best = self.best(trials)
        if best:
            text += f" | best {self.metric} {best[0]:.4f} ({best[1]})"
        return text

    def best(self, trials: list) -> tuple[float, str] | None:
        scored = [
            (t.last_result[OBJECTIVE], t.trial_id)
            for t in trials
            if t.last_result
            and math.isfinite(t.last_result.get(OBJECTIVE, math.nan))
            and t.last_result.get("verdict", "healthy") not in (*self.stopping, "nan")
        ]  # the trials Optuna is told COMPLETE: healthy, or labelled but not stopped
        if not scored:
            return None
        return max(scored) if self.mode == "max" else min(scored)

    def _print(self, trials: list) -> None:
        self._last = time.monotonic()
        print(self.line(trials), flush=True)


def _counts(verdicts: dict[str, int], what: str) -> str:
    """``3 stopped by verdict: nan 1, g_overpowers 2``."""
    detail = ", ".join(f"{v} {n}" for v, n in verdicts.items())
    return f"{sum(verdicts.values())} {what}{': ' + detail if detail else ''}"
