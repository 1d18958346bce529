"""A restored trial continues from its newest *complete* checkpoint of its own: one whose state
file was cut short (a driver killed while Ray copied it), or another trial's restored beside it
(remote storage), is passed over."""

import json

import numpy as np

from sweep.trainable import newest_checkpoint


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


def test_a_later_complete_checkpoint_is_preferred(tmp_path):
    given = write_checkpoint(tmp_path / "checkpoint_000000", 1)
    later = write_checkpoint(tmp_path / "checkpoint_000001", 2)
    assert newest_checkpoint(given, "a") == later


def test_a_later_checkpoint_cut_short_is_passed_over(tmp_path):
    given = write_checkpoint(tmp_path / "checkpoint_000000", 1)
    write_checkpoint(tmp_path / "checkpoint_000001", 2, cut_short=True)
    (tmp_path / "checkpoint_000002").mkdir()  # Ray had not copied anything yet
    assert newest_checkpoint(given, "a") == given


def test_another_trials_checkpoint_beside_it_is_passed_over(tmp_path):
    given = write_checkpoint(tmp_path / "checkpoint_tmp1", 1)
    write_checkpoint(tmp_path / "checkpoint_tmp2", 5, trial="b")
    assert newest_checkpoint(given, "a") == given


def test_a_checkpoint_whose_result_row_was_not_recorded_is_passed_over(tmp_path):
    # the kill landed after epoch 3's checkpoint but before its result row: rerun epoch 3
    given = write_checkpoint(tmp_path / "checkpoint_000001", 2)
    write_checkpoint(tmp_path / "checkpoint_000002", 3)
    rows = [{"epoch": 1}, {"epoch": 2}]
    (tmp_path / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"ep')
    assert newest_checkpoint(given, "a") == given
    (tmp_path / "result.json").write_text(json.dumps({"epoch": 3}) + "\n")
    assert newest_checkpoint(given, "a") == tmp_path / "checkpoint_000002"
