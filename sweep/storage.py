"""The Optuna study's storage, from the URL a sweep is given: a database (SQLite, in
write-ahead-log mode; PostgreSQL; any SQLAlchemy URL) or an Optuna journal file
(``journal:PATH``), for many-worker studies without a database server.

Example:
    >>> storage = open_storage("journal:/tmp/sweep/study.log")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import optuna

JOURNAL = "journal:"


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL)


def normalise(url: str) -> str:
    """``journal:PATH`` with an absolute path (the sweep saves it; ``resume`` may run from
    another folder); other URLs unchanged."""
    if not is_journal(url):
        return url
    return JOURNAL + str(Path(url[len(JOURNAL) :]).expanduser().resolve())


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage behind ``url``. A journal file appends every change to the study as one
    line under a file lock, so it needs no server; a SQLite study commits without a rollback
    journal (write-ahead log: about a fifth of the searcher's time per trial, see
    BENCHMARKS.md)."""
    if is_journal(url):
        path = url[len(JOURNAL) :]
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite:"):
        with storage.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    return storage
