"""The searcher's choices that need no Ray cluster: sampler, SQLite journal mode."""

import sqlite3

import optuna
import pytest

from search_spaces import load_space
from sweep.search import SweepOptunaSearch


@pytest.mark.parametrize(("name", "kind"), [("tpe", optuna.samplers.TPESampler),
                                            ("random", optuna.samplers.RandomSampler)])  # fmt: skip
def test_sampler_choice_and_wal_study(tmp_path, name, kind):
    path = tmp_path / "study.db"
    searcher = SweepOptunaSearch(load_space("demo"), f"sqlite:///{path}", "s", sampler=name)
    assert isinstance(searcher._sampler, kind)
    with sqlite3.connect(path) as connection:  # commits without a rollback journal
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unknown_sampler_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sampler must be one of"):
        SweepOptunaSearch(load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s",
                          sampler="grid")  # fmt: skip
