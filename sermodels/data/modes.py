"""Resident or streaming: how a run's rows reach the model, chosen from the corpus size and
the memory a trial may use.

*resident* reads every row once, keeps it in memory (and the SGAN's training rows on its
device) and gathers batches inside the compiled step: the fast path. *stream* keeps only
row ids and labels and reads each batch from the h5 file, a read-ahead thread overlapping
the step: memory stays flat whatever the corpus size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from sermodels.errors import ConfigError

DATA_MODES = ("auto", "resident", "stream")
# Resident rows may take this share of a trial's memory; the rest is the model, its
# activations and optimiser, the framework, and (for sweeps) Ray's copy in its object store.
RESIDENT_FRACTION = 0.5
GIB = 2**30


@dataclass(frozen=True)
class MemoryShare:
    """What one trial may hold: ``size`` bytes, and where that figure comes from."""

    size: int
    source: str


@dataclass(frozen=True)
class DataChoice:
    """The mode a run uses and why (printed, and saved with a sweep)."""

    mode: str
    reason: str
    corpus_bytes: int

    def to_dict(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "corpus_bytes": self.corpus_bytes}


def check_mode(mode: str, where: str = "--data-mode") -> str:
    if mode not in DATA_MODES:
        raise ConfigError(where, f"expected one of {DATA_MODES}, got {mode!r}")
    return mode


def memory_share(gpus_per_trial: float = 0.0, trials_at_once: int = 1) -> MemoryShare:
    """A trial's memory: its fraction of this machine's GPU memory when it has one, else
    this machine's memory over the trials that run at once."""
    if gpus_per_trial > 0:
        gpu = gpu_memory_bytes()
        if gpu:
            share = int(gpu * min(gpus_per_trial, 1.0))
            return MemoryShare(share, f"{gpus_per_trial:g} of a {gpu / GIB:.0f} GiB GPU")
    host = host_memory_bytes()
    trials = max(1, trials_at_once)
    if trials == 1:
        return MemoryShare(host, f"this machine's {host / GIB:.0f} GiB")
    return MemoryShare(host // trials, f"1/{trials} of this machine's {host / GIB:.0f} GiB")


def choose_mode(requested: str, corpus_bytes: int, share: MemoryShare | None) -> DataChoice:
    """``requested`` as given, or for ``auto``: resident when the prepared rows take at most
    ``RESIDENT_FRACTION`` of ``share``, else streaming.

    Example:
        >>> choose_mode("auto", 3 * GIB, MemoryShare(4 * GIB, "a 4 GiB share")).mode
        'stream'
    """
    check_mode(requested)
    size = f"{corpus_bytes / GIB:.2f} GiB of prepared rows"
    if requested != "auto":
        return DataChoice(requested, f"{requested} as asked ({size})", corpus_bytes)
    share = share or memory_share()
    limit = RESIDENT_FRACTION * share.size
    if corpus_bytes <= limit:
        reason = f"{size} fit in half of a trial's memory ({share.source})"
        return DataChoice("resident", reason, corpus_bytes)
    reason = f"{size} exceed half of a trial's memory ({share.source})"
    return DataChoice("stream", reason, corpus_bytes)


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gpu_memory_bytes() -> int | None:
    """Memory of this machine's first NVIDIA GPU (``nvidia-smi``), ``None`` without one."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        listing = subprocess.run(
            [tool, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(float(listing.split()[0]) * 2**20)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
