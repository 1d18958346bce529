"""Reading a sweep's per-trial results while (or after) processes write them, and holding a
trial still mid-run so that a kill finds it there."""

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import launch_command

# a small SER base: fast epochs on the demo corpus, two test and two validation speakers
SER_BASE = """
base:
  model: ser
  data: {features: [a_feat], tasks: category:4:2, test_idx: "0,1", valid_idx: "2,3"}
  ser: {frame: [dnn], utterance: [g_pool, dnn], n_node: 16}
  train: {batch_size: 32, patience: 0}
"""


def sweep_command(corpus: Path, out: Path, name: str, *options) -> list[str]:
    """``launch.py sweep`` on ``corpus`` into ``out`` (the demo space unless ``options``
    name a ``--space``; no re-evaluation unless they name ``--reeval-top``)."""
    space = [] if "--space" in options else ["--space", "demo"]
    # the leaders' re-evaluation is tested on its own; elsewhere it only costs time
    reeval = [] if "--reeval-top" in options else ["--reeval-top", "0"]
    return launch_command("sweep", *space, "--data", corpus, "--out", out, "--name", name,
                          *reeval, *options)  # fmt: skip


def trial_results(experiment: Path) -> dict[str, list[dict]]:
    """Per trial folder (``trial_<id>``), the complete result lines of ``result.json``: a line
    a running or killed writer has not finished is left out."""
    runs = {}
    for path in experiment.glob("trial_*/result.json"):
        lines = path.read_text().splitlines(keepends=True)
        runs[path.parent.name] = [json.loads(line) for line in lines if line.endswith("\n")]
    return runs


def freeze_a_trial_midway(results: Callable[[], dict[str, list[dict]]],
                          checkpointed: Callable[[str], bool]) -> str | None:  # fmt: skip
    """Stop (SIGSTOP) the process of a trial that has checkpointed and not finished, so that it
    is still unfinished when the driver is killed; returns its folder, or ``None`` when no
    trial is there yet. ``results`` reads every trial folder's result rows; ``checkpointed``
    says whether a folder holds a complete checkpoint. A result the process sent before it
    stopped can still land: a trial whose last row then says done is let go again."""
    for folder, rows in results().items():
        if not rows or rows[-1]["done"] or not checkpointed(folder):
            continue
        pid = rows[-1]["pid"]
        os.kill(pid, signal.SIGSTOP)
        time.sleep(1.0)  # the driver writes a result it already had
        if not results()[folder][-1]["done"]:
            return folder
        os.kill(pid, signal.SIGCONT)
    return None
