"""The benchmarks' harness. Every script imports it first: it puts the repository on the
import path (once, here), and holds what each needs alike:

* :func:`emit`: the one JSON line a benchmark prints last (the contract every reader parses);
* :func:`stale` and ``STALE_NOTE``: the one check that calls a cache stale (saying so on
  stderr), and what BENCHMARKS.md says beside a stale cache's figures;
* :func:`spread`, :func:`bootstrap_spread`, :func:`wilson_interval`, :func:`finite`: spreads
  and intervals;
* :func:`epochs_to_quality`: where a method's mean quality curve over budgets reaches a
  level;
* :func:`run_child`: a child process run to its end, with the peak proportional set size
  (PSS) of its process tree sampled while it runs.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def emit(figures: dict) -> None:
    """Print a benchmark's result: one JSON object on one line, its output's last."""
    print(json.dumps(figures), flush=True)


# what a BENCHMARKS.md row says, beside its figures, when its cache is stale (a test holds
# each replayed row to it both ways)
STALE_NOTE = "recorded on earlier code"


def stale(recorded: str, current: str, what: str) -> bool:
    """Whether a cache recorded with code hashed ``recorded`` is stale against ``current``;
    a stale cache says so on stderr (its figures still replay)."""
    if recorded != current:
        print(
            f"note: {what} was recorded with other code ({recorded}, now {current}); "
            "record it again to measure today's",
            file=sys.stderr,
        )
        return True
    return False


def finite(value) -> bool:
    """Whether ``value`` is a finite number (a recorded NaN or ``None`` is not)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def spread(values: list[float]) -> dict:
    """Mean, SD, min and max of ``values`` with the values themselves."""
    return {
        "mean": round(statistics.fmean(values), 3),
        "sd": round(statistics.stdev(values), 3) if len(values) > 1 else None,
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "values": [round(v, 3) for v in values],
    }


def bootstrap_spread(values: list[float], rng, resamples: int = 2000) -> dict:
    """Mean of ``values`` and the 90 % bootstrap interval of that mean over ``resamples``
    resamples (non-finite values left out; ``None`` for both when none is left)."""
    import numpy as np

    values = [v for v in values if finite(v)]
    if not values:
        return {"mean": None, "interval": None}
    means = [statistics.fmean(rng.choice(values, len(values))) for _ in range(resamples)]
    return {
        "mean": round(statistics.fmean(values), 4),
        "interval": [round(float(q), 4) for q in np.percentile(means, [5, 95])],
    }


def wilson_interval(successes: int, trials: int, z: float = 1.645) -> list[float] | None:
    """The Wilson score interval of a proportion (``z`` 1.645: 90 %); ``None`` without
    trials. Unlike the normal approximation it stays inside [0, 1] at 0 or all successes.

    Example:
        >>> wilson_interval(4, 4)
        [0.5965, 1.0]
    """
    if not trials:
        return None
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    half /= 1 + z * z / trials
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def mean_curve(rows: list[dict], budgets: list[int]) -> list[tuple[float, float]]:
    """Per budget, the mean epochs and the mean quality over ``rows`` (one sweep's outcome
    per budget each)."""
    return [
        (
            statistics.fmean(r[size]["epochs"] for r in rows),
            statistics.fmean(r[size]["quality"] for r in rows),
        )
        for size in budgets
    ]


def epochs_to_quality(rows: list[dict], level: float, budgets: list[int]) -> float | None:
    """Mean epochs at which the mean quality over ``rows`` first reaches ``level``,
    interpolated linearly between budgets (``None``: not by the last budget)."""
    previous = None
    for epochs, value in mean_curve(rows, budgets):
        if value >= level:
            if previous is None or previous[1] >= value:
                return epochs
            share = (level - previous[1]) / (value - previous[1])
            return previous[0] + share * (epochs - previous[0])
        previous = (epochs, value)
    return None


def quality_at_epochs(rows: list[dict], epochs: float, budgets: list[int]) -> float | None:
    """The mean quality over ``rows`` at ``epochs`` mean epochs, interpolated linearly
    between budgets on the mean curve (``None``: outside the curve's epochs).

    Example:
        >>> rows = [{8: {"epochs": 50, "quality": 0.4}, 16: {"epochs": 100, "quality": 0.5}}]
        >>> round(quality_at_epochs(rows, 75, [8, 16]), 3)
        0.45
    """
    curve = mean_curve(rows, budgets)
    for (low_epochs, low), (high_epochs, high) in itertools.pairwise(curve):
        if low_epochs <= epochs <= high_epochs:
            share = (epochs - low_epochs) / (high_epochs - low_epochs or 1)
            return low + share * (high - low)
    return None


@dataclass
class ChildRun:
    """How a child process ended: its exit code, its output (stdout and stderr together), the
    peak PSS of its process tree in bytes (0 when not sampled) and its wall time."""

    returncode: int
    output: str
    peak_pss: int
    wall_s: float


def tree_pss(root) -> int:
    """The proportional set size of ``root`` (a ``psutil.Process``) and all its descendants:
    shared pages (Ray's object store, libraries) are counted once across the tree."""
    import psutil

    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # a worker that just ended
    return total


def run_child(command: list[str], sample_pss: bool = False, every: float = 0.25) -> ChildRun:
    """Run ``command`` to its end. Its output goes to a file, not a pipe: a pipe nobody reads
    while the child runs fills up and stalls the child. With ``sample_pss``, the tree's PSS
    is sampled every ``every`` seconds (reading it walks each process's page tables, which
    slows the child: leave it off for speed runs)."""
    import psutil

    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
        root, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            if sample_pss:
                peak = max(peak, tree_pss(root))
            time.sleep(every)
        wall = time.perf_counter() - started
        log.seek(0)
        return ChildRun(child.returncode, log.read(), peak, round(wall, 1))
