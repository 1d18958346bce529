"""A restored trial continues from its newest *complete* checkpoint: one whose state file was
cut short (a driver killed while Ray copied it) is passed over."""

import json

import numpy as np

from sweep.trainable import newest_checkpoint


def write_checkpoint(folder, epoch: int, cut_short: bool = False):
    folder.mkdir(parents=True)
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
    assert newest_checkpoint(given) == later


def test_a_later_checkpoint_cut_short_is_passed_over(tmp_path):
    given = write_checkpoint(tmp_path / "checkpoint_000000", 1)
    write_checkpoint(tmp_path / "checkpoint_000001", 2, cut_short=True)
    (tmp_path / "checkpoint_000002").mkdir()  # Ray had not copied anything yet
    assert newest_checkpoint(given) == given
