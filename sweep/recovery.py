"""What ``resume`` mends before Ray Tune restores a sweep whose driver was killed.

Ray restores each trial from the checkpoint its experiment snapshot names, and only the
trials that snapshot lists; it copies the snapshot to Ray's storage in the background, so
a kill can leave it behind Ray's storage. Here every unfinished trial is pointed at the
newest complete checkpoint it has there, a trial the study was running that the snapshot
missed is recorded again under its Optuna trial, and each trial's ``result.json`` holds the
epochs up to the one it continues from: rows of later epochs go (they are trained again), and
rows the kill kept from reaching it come back from the checkpoint's own copy of them, so no
epoch is lost, trained again needlessly or recorded twice.

Example:
    >>> recovery = prepare_resume(settings.experiment_uri, study_configs)  # doctest: +SKIP
    >>> print(recovery.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow.fs

from sweep.internals import FINISHED, ExperimentSnapshot, align_search_state

CHECKPOINT_PREFIX = "checkpoint_"
OWNER = "owner.json"  # the trial a checkpoint belongs to, written beside its state
STATE = "state.json"  # the epoch and the byte count of ``state.npz`` (see TrainingRun)
ROWS = "rows.json"  # the trial's result rows up to the checkpoint's epoch, beside its state
RESULTS = "result.json"
RECOVERED = "recovered"  # marks a result row written back from a checkpoint's copy


def trial_folder_name(trial_id: str) -> str:
    """A trial's folder in the experiment (short: its parameters live in the study)."""
    return f"trial_{trial_id}"


@dataclass(frozen=True)
class RestorePoint:
    """Where a trial continues: its checkpoint folder (``None``: from the start), the epoch
    that checkpoint holds, the result row of that epoch, and the rows up to it that
    ``result.json`` lacks (taken from the checkpoint's copy)."""

    checkpoint: str | None
    epoch: int
    result: dict
    missing: list[dict] = field(default_factory=list)


@dataclass
class Recovery:
    """What :func:`prepare_resume` changed: trials pointed at a newer checkpoint than the
    snapshot named, trials recorded again, result rows dropped (epochs that will be trained
    again), and trials the searcher made that neither Ray nor the study could give back."""

    repointed: list[str] = field(default_factory=list)
    readded: list[str] = field(default_factory=list)
    rows_dropped: int = 0
    rows_recovered: int = 0
    unrecorded: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        if self.readded:
            lines.append(
                f"resume: {len(self.readded)} trial(s) Ray's snapshot missed continue "
                "under their Optuna trial"
            )
        if self.repointed:
            lines.append(
                f"resume: {len(self.repointed)} trial(s) continue from a newer "
                "checkpoint than Ray's snapshot names"
            )
        if self.rows_dropped:
            lines.append(
                f"resume: {self.rows_dropped} result row(s) of epochs no checkpoint "
                "holds are trained again"
            )
        if self.rows_recovered:
            lines.append(
                f"resume: {self.rows_recovered} result row(s) the kill kept from "
                "result.json are written back from their checkpoint"
            )
        if self.unrecorded:
            lines.append(
                f"resume: {len(self.unrecorded)} trial(s) started as the driver died "
                "were never recorded by Ray; new trials take their place"
            )
        return "\n".join(lines)


def prepare_resume(experiment_uri: str, running: Mapping[str, dict]) -> Recovery:
    """Make Ray's newest snapshot of ``experiment_uri`` agree with its Ray storage.

    Args:
        experiment_uri: the experiment folder (a path or a URI pyarrow opens).
        running: Ray trial id -> config of every trial the Optuna study holds as running;
            those the snapshot lacks are recorded again with that config.
    """
    recovery = Recovery()
    snapshot = ExperimentSnapshot(experiment_uri)
    filesystem, folder = pyarrow.fs.FileSystem.from_uri(experiment_uri)
    statuses = snapshot.statuses()
    for trial_id, status in statuses.items():
        if status in FINISHED:
            continue
        trial_folder = f"{folder}/{trial_folder_name(trial_id)}"
        point = restore_point(filesystem, trial_folder, trial_id)
        if point.checkpoint != snapshot.checkpoint(trial_id):
            snapshot.restore_from(trial_id, point.checkpoint, point.result)
            recovery.repointed.append(trial_id)
        _mend_rows(recovery, filesystem, trial_folder, point)
    for trial_id, config in running.items():
        if trial_id in statuses or not statuses:  # with no trial recorded, Ray starts afresh
            continue
        trial_folder = f"{folder}/{trial_folder_name(trial_id)}"
        point = restore_point(filesystem, trial_folder, trial_id)
        snapshot.add(trial_id, config, point.checkpoint, point.result)
        recovery.readded.append(trial_id)
        _mend_rows(recovery, filesystem, trial_folder, point)
    snapshot.save()
    recovery.unrecorded = align_search_state(experiment_uri)
    return recovery


def restore_point(
    filesystem: pyarrow.fs.FileSystem, trial_folder: str, trial_id: str
) -> RestorePoint:
    """The newest complete checkpoint of ``trial_id`` in ``trial_folder`` whose epochs the
    trial's ``result.json`` records or the checkpoint's own copy of the rows supplies; a newer
    one with rows missing from both is passed over (its epochs are trained again and
    recorded). With no such checkpoint, the newest complete one; with none complete, the
    newest there is (loading it fails the trial with a message naming it, rather than
    training its epochs again unasked); with none, the start."""
    rows = result_rows(filesystem, trial_folder)
    recorded = {row["epoch"]: row for row in rows}
    complete, existing = [], []
    for name in _checkpoint_names(filesystem, trial_folder):
        existing.append(name)
        epoch = complete_epoch(filesystem, f"{trial_folder}/{name}", trial_id)
        if epoch is not None:
            complete.append((epoch, name))
    for epoch, name in sorted(complete, reverse=True):
        missing = _missing_rows(filesystem, f"{trial_folder}/{name}", epoch, recorded)
        if missing is not None:
            result = recorded[epoch] if epoch in recorded else missing[-1]
            return RestorePoint(name, epoch, result, missing)
    if complete:
        epoch, name = max(complete)
        return RestorePoint(name, epoch, {"training_iteration": epoch})
    if existing:
        newest = max(existing)
        last = rows[-1]["epoch"] if rows else 0
        return RestorePoint(newest, last, recorded.get(last, {}))
    return RestorePoint(None, 0, {})


def _missing_rows(
    filesystem: pyarrow.fs.FileSystem, checkpoint: str, epoch: int, recorded: Mapping[int, dict]
) -> list[dict] | None:
    """The rows of the epochs after the last recorded one up to ``epoch``, from the
    checkpoint's copy (marked as recovered); ``None`` when that copy lacks some."""
    last = max((e for e in recorded if e <= epoch), default=0)
    wanted = range(last + 1, epoch + 1)
    if not wanted:
        return []
    try:
        copies = json.loads(_read(filesystem, f"{checkpoint}/{ROWS}"))
        copies = {row["epoch"]: row for row in copies}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a checkpoint written without its rows, or cut short
    if any(e not in copies for e in wanted):
        return None
    return [{**copies[e], RECOVERED: 1} for e in wanted]


def complete_epoch(filesystem: pyarrow.fs.FileSystem, checkpoint: str, trial_id: str) -> int | None:
    """The epoch a checkpoint folder holds, or ``None`` when it is not a whole checkpoint of
    ``trial_id`` (its state file cut short by a kill, or its files not all there)."""
    try:
        owner = json.loads(_read(filesystem, f"{checkpoint}/{OWNER}"))["trial_id"]
        state = json.loads(_read(filesystem, f"{checkpoint}/{STATE}"))
        size = filesystem.get_file_info(f"{checkpoint}/state.npz").size
    except (OSError, ValueError, KeyError):
        return None
    if owner != trial_id or size != state.get("state_bytes"):
        return None
    return state.get("epoch")


def result_rows(filesystem: pyarrow.fs.FileSystem, trial_folder: str) -> list[dict]:
    """The whole rows of a trial's ``result.json`` (a row the kill cut short is left out)."""
    return _whole_rows(_result_text(filesystem, trial_folder))


def _result_text(filesystem: pyarrow.fs.FileSystem, trial_folder: str) -> str:
    try:
        return _read(filesystem, f"{trial_folder}/{RESULTS}").decode()
    except OSError:
        return ""


def _whole_rows(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines(keepends=True):
        try:
            row = json.loads(line) if line.endswith("\n") else None
        except ValueError:
            row = None
        if isinstance(row, dict) and "epoch" in row:
            rows.append(row)
    return rows


def keep_rows_until(
    filesystem: pyarrow.fs.FileSystem, trial_folder: str, epoch: int, missing: Sequence[dict] = ()
) -> int:
    """Drop the rows of ``result.json`` after ``epoch`` (the trial trains them again) and any
    row cut short, and put the ``missing`` rows of epochs up to it in their place, in epoch
    order; returns how many rows went."""
    text = _result_text(filesystem, trial_folder)
    rows = _whole_rows(text)
    kept = sorted(
        [row for row in rows if row["epoch"] <= epoch] + list(missing), key=lambda row: row["epoch"]
    )
    cut_short = not text.endswith("\n") and text != ""
    if len(kept) == len(rows) and not cut_short:
        return 0
    data = "".join(json.dumps(row) + "\n" for row in kept).encode()
    with filesystem.open_output_stream(f"{trial_folder}/{RESULTS}.part") as handle:
        handle.write(data)
    filesystem.move(f"{trial_folder}/{RESULTS}.part", f"{trial_folder}/{RESULTS}")
    return len(rows) + len(missing) - len(kept)


def _mend_rows(
    recovery: Recovery, filesystem: pyarrow.fs.FileSystem, trial_folder: str, point: RestorePoint
) -> None:
    recovery.rows_dropped += keep_rows_until(filesystem, trial_folder, point.epoch, point.missing)
    recovery.rows_recovered += len(point.missing)


def _checkpoint_names(filesystem: pyarrow.fs.FileSystem, trial_folder: str) -> list[str]:
    try:
        infos = filesystem.get_file_info(pyarrow.fs.FileSelector(trial_folder))
    except (OSError, FileNotFoundError):
        return []
    return sorted(
        info.base_name
        for info in infos
        if info.type == pyarrow.fs.FileType.Directory
        and info.base_name.startswith(CHECKPOINT_PREFIX)
    )


def _read(filesystem: pyarrow.fs.FileSystem, path: str) -> bytes:
    with filesystem.open_input_stream(path) as handle:
        return handle.readall()
