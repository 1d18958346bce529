"""Where a trial continues after a driver kill (``sweep/recovery.py``): its newest *complete*
checkpoint of its own whose epoch its results record, and its results trimmed to that epoch,
on real files through pyarrow's local filesystem (the same calls reach an S3 bucket)."""

import json

import numpy as np
import pyarrow.fs

from sweep.recovery import complete_epoch, keep_rows_until, restore_point

LOCAL = pyarrow.fs.LocalFileSystem()


def write_checkpoint(folder, epoch: int, cut_short: bool = False, trial: str = "a"):
    folder.mkdir(parents=True)
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
