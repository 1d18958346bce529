"""Reading a sweep's per-trial results while (or after) processes write them, and holding a
trial still mid-run so that a kill finds it there."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs

from sweep.recovery import CHECKPOINT_PREFIX, ROWS, complete_epoch
from tests.helpers import launch_command

LOCAL = pyarrow.fs.LocalFileSystem()

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
    return launch_command(
        "sweep", *space, "--data", corpus, "--out", out, "--name", name, *reeval, *options
    )


def trial_results(experiment: Path) -> dict[str, list[dict]]:
    """Per trial folder (``trial_<id>``), the complete result lines of ``result.json``: a line
    a running or killed writer has not finished is left out."""
    runs = {}
    for path in experiment.glob("trial_*/result.json"):
        lines = path.read_text().splitlines(keepends=True)
        runs[path.parent.name] = [json.loads(line) for line in lines if line.endswith("\n")]
    return runs


def freeze_a_trial_midway(
    results: Callable[[], dict[str, list[dict]]], checkpointed: Callable[[str], bool]
) -> str | None:
    """Stop (SIGSTOP) the process of a trial that has checkpointed and not finished, so that it
    is still unfinished when the driver is killed; returns its folder, or ``None`` when no
    trial is there yet. ``results`` reads every trial folder's result rows; ``checkpointed``
    says whether a folder holds the checkpoint a test needs. The process can still write a
    checkpoint, and a result it sent can still land, between the look and the stop: both are
    looked at again once it is stopped, and a trial that no longer qualifies is let go."""
    for folder, rows in results().items():
        if not rows or rows[-1]["done"] or not checkpointed(folder):
            continue
        pid = rows[-1]["pid"]
        os.kill(pid, signal.SIGSTOP)
        time.sleep(1.0)  # the driver writes a result it already had
        if not results()[folder][-1]["done"] and checkpointed(folder):
            return folder
        os.kill(pid, signal.SIGCONT)
    return None


def kill_held_then_driver(held_pid: int | None, driver: subprocess.Popen) -> None:
    """SIGKILL a held (stopped) trial process (if one was held), then the driver and the Ray
    it started, in that order. A Ray worker leads its own process group, whose parent is its
    raylet: once the raylet dies the group is orphaned, and the kernel wakes a stopped member
    (SIGHUP, which a trial's worker ignores, then SIGCONT), which then finishes what it was
    already asked to do (a checkpoint) before it notices. Killed first, the held process
    writes nothing more."""
    if held_pid is not None:
        os.kill(held_pid, signal.SIGKILL)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


def newest_checkpoint(
    filesystem: pyarrow.fs.FileSystem, trial_folder: str, trial_id: str
) -> tuple[int, dict] | None:
    """The epoch of a trial's newest complete checkpoint and that epoch's result row, from the
    checkpoint's own copy of the rows (``None``: no complete checkpoint yet). Read from what
    the trial writes itself, not from the rows the driver copies later."""
    selector = pyarrow.fs.FileSelector(trial_folder, allow_not_found=True)
    epochs = {
        complete_epoch(filesystem, info.path, trial_id): info.path
        for info in filesystem.get_file_info(selector)
        if info.base_name.startswith(CHECKPOINT_PREFIX)
    }
    epochs.pop(None, None)
    if not epochs:
        return None
    with filesystem.open_input_stream(f"{epochs[max(epochs)]}/{ROWS}") as handle:
        return max(epochs), json.loads(handle.readall())[-1]


def leaves_epochs(newest: tuple[int, dict] | None, max_epochs: int) -> bool:
    """Whether a trial whose newest checkpoint is ``newest`` (see :func:`newest_checkpoint`)
    has epochs left to train. Of a held (stopped) process, that says it is still in that trial
    (it checkpoints every epoch before it moves on), and that a resume continues the trial in
    a new process: a trial whose newest checkpoint holds its last epoch, or an epoch at which
    it ended itself or was condemned, is only written back from it and never trains again."""
    if newest is None:
        return False
    epoch, row = newest
    return epoch < max_epochs and not row["done"] and not row["collapsed"]


def leaves_epochs_to_train(experiment: Path, max_epochs: int) -> Callable[[str], bool]:
    """Whether a trial folder of a local ``experiment`` has epochs left to train (see
    :func:`leaves_epochs`)."""

    def newest_checkpoint_leaves_epochs(folder: str) -> bool:
        trial_id = folder.removeprefix("trial_")
        return leaves_epochs(
            newest_checkpoint(LOCAL, str(experiment / folder), trial_id), max_epochs
        )

    return newest_checkpoint_leaves_epochs
