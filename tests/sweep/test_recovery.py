"""Where a trial continues after a driver kill (``sweep/recovery.py``): its newest *complete*
checkpoint of its own whose epoch its results record, and its results trimmed to that epoch,
on real files through pyarrow's local filesystem (the same calls reach an S3 bucket)."""

import json

import numpy as np
import pyarrow.fs

from sweep.recovery import RECOVERED, complete_epoch, keep_rows_until, restore_point

LOCAL = pyarrow.fs.LocalFileSystem()


def write_checkpoint(
    folder, epoch: int, cut_short: bool = False, trial: str = "a", rows: list[int] | None = None
):
    """A checkpoint of ``trial`` at ``epoch``; ``rows``: the epochs whose result rows it
    carries (none: a checkpoint written without them)."""
    folder.mkdir(parents=True)
    if rows is not None:
        copies = [{"epoch": e, "training_iteration": e, "val_uar": e / 10} for e in rows]
        (folder / "rows.json").write_text(json.dumps(copies))
    (folder / "owner.json").write_text(json.dumps({"trial_id": trial}))
    np.savez(folder / "state.npz", w0=np.arange(1000, dtype=np.float32))
    size = (folder / "state.npz").stat().st_size
    (folder / "state.json").write_text(json.dumps({"state_bytes": size, "epoch": epoch}))
    if cut_short:
        with open(folder / "state.npz", "r+b") as state:
            state.truncate(size // 2)
    return folder


def write_rows(folder, epochs, tail: str = "") -> None:
    rows = [{"epoch": e, "training_iteration": e} for e in epochs]
    (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def point(folder, trial: str = "a"):
    return restore_point(LOCAL, str(folder), trial)


def test_the_newest_complete_checkpoint_whose_epoch_is_recorded_is_chosen(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000000", 1)
    write_checkpoint(tmp_path / "checkpoint_000001", 2)
    write_rows(tmp_path, [1, 2])
    chosen = point(tmp_path)
    assert (chosen.checkpoint, chosen.epoch) == ("checkpoint_000001", 2)
    assert chosen.result == {"epoch": 2, "training_iteration": 2}


def test_a_checkpoint_cut_short_or_empty_is_passed_over(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000000", 1)
    write_checkpoint(tmp_path / "checkpoint_000001", 2, cut_short=True)
    (tmp_path / "checkpoint_000002").mkdir()  # Ray had not copied anything yet
    write_rows(tmp_path, [1, 2, 3])
    assert point(tmp_path).checkpoint == "checkpoint_000000"
    assert complete_epoch(LOCAL, str(tmp_path / "checkpoint_000001"), "a") is None


def test_another_trials_checkpoint_is_passed_over(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000000", 1)
    write_checkpoint(tmp_path / "checkpoint_000001", 5, trial="b")
    write_rows(tmp_path, [1, 2, 3, 4, 5])
    assert point(tmp_path).checkpoint == "checkpoint_000000"


def test_a_checkpoint_whose_result_row_was_not_recorded_gives_way_to_an_older_one(tmp_path):
    # the kill landed after epoch 3's checkpoint but before its row reached the storage path:
    # epoch 3 is trained again, and recorded
    write_checkpoint(tmp_path / "checkpoint_000001", 2)
    write_checkpoint(tmp_path / "checkpoint_000002", 3)
    write_rows(tmp_path, [1, 2], tail='{"ep')
    assert point(tmp_path).checkpoint == "checkpoint_000001"
    # with the older one deleted (Ray keeps one), the newer one is better than starting over
    for path in (tmp_path / "checkpoint_000001").iterdir():
        path.unlink()
    (tmp_path / "checkpoint_000001").rmdir()
    chosen = point(tmp_path)
    assert (chosen.checkpoint, chosen.epoch) == ("checkpoint_000002", 3)
    assert chosen.result == {"training_iteration": 3}


def test_rows_the_kill_kept_from_the_results_come_back_from_the_checkpoints_copy(tmp_path):
    # the kill landed after epoch 1's checkpoint, before any row reached result.json: the
    # trial continues after epoch 1 and its row is written back, not lost or trained again
    write_checkpoint(tmp_path / "checkpoint_000000", 1, rows=[1])
    chosen = point(tmp_path)
    assert (chosen.checkpoint, chosen.epoch) == ("checkpoint_000000", 1)
    assert chosen.missing == [{"epoch": 1, "training_iteration": 1, "val_uar": 0.1, RECOVERED: 1}]
    assert chosen.result == chosen.missing[-1]
    assert keep_rows_until(LOCAL, str(tmp_path), chosen.epoch, chosen.missing) == 0
    lines = (tmp_path / "result.json").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]


def test_rows_recorded_are_kept_and_only_the_missing_ones_are_written_back(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000001", 2, rows=[1, 2])
    write_checkpoint(tmp_path / "checkpoint_000002", 4, rows=[1, 2, 3, 4])
    write_rows(tmp_path, [1, 2], tail='{"epoch": 3, "d_lo')
    chosen = point(tmp_path)
    assert (chosen.checkpoint, chosen.epoch) == ("checkpoint_000002", 4)
    assert [row["epoch"] for row in chosen.missing] == [3, 4]
    assert keep_rows_until(LOCAL, str(tmp_path), chosen.epoch, chosen.missing) == 0
    rows = [json.loads(line) for line in (tmp_path / "result.json").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert [RECOVERED in row for row in rows] == [False, False, True, True]


def test_a_checkpoint_whose_copy_lacks_a_missing_row_gives_way_to_an_older_one(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000001", 2, rows=[1, 2])
    write_checkpoint(tmp_path / "checkpoint_000002", 4, rows=[1, 2, 4])  # epoch 3's row lost
    write_rows(tmp_path, [1, 2])
    chosen = point(tmp_path)
    assert (chosen.checkpoint, chosen.epoch, chosen.missing) == ("checkpoint_000001", 2, [])


def test_only_unreadable_checkpoints_are_still_named_so_the_trial_fails_saying_so(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000000", 1, cut_short=True)
    write_checkpoint(tmp_path / "checkpoint_000001", 2, cut_short=True)
    write_rows(tmp_path, [1, 2])
    assert (point(tmp_path).checkpoint, point(tmp_path).epoch) == ("checkpoint_000001", 2)


def test_no_checkpoint_starts_over_and_no_folder_too(tmp_path):
    write_rows(tmp_path, [1])
    assert (point(tmp_path).checkpoint, point(tmp_path).epoch) == (None, 0)
    assert point(tmp_path / "never-started").checkpoint is None


def test_rows_after_the_checkpoint_and_a_row_cut_short_are_dropped(tmp_path):
    write_rows(tmp_path, [1, 2, 3], tail='{"epoch": 4, "d_lo')
    assert keep_rows_until(LOCAL, str(tmp_path), 2) == 1
    lines = (tmp_path / "result.json").read_text().splitlines(keepends=True)
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert all(line.endswith("\n") for line in lines)
    assert keep_rows_until(LOCAL, str(tmp_path), 2) == 0  # nothing more to drop
    assert keep_rows_until(LOCAL, str(tmp_path), 0) == 2  # starting over: none kept
    assert (tmp_path / "result.json").read_text() == ""
    assert keep_rows_until(LOCAL, str(tmp_path / "absent"), 0) == 0
