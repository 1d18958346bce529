"""The Optuna study's storage, from the URL a sweep is given: a database (SQLite, in
write-ahead-log mode; PostgreSQL; any SQLAlchemy URL) or an Optuna journal file
(``journal:PATH``), for many-worker studies without a database server.

Example:
    >>> storage = open_storage("journal:/tmp/sweep/study.log")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import optuna
from sqlalchemy import event

JOURNAL = "journal:"


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL)


def normalise(url: str) -> str:
    """``journal:PATH`` with an absolute path (the sweep saves it; ``resume`` may run from
    another folder); other URLs unchanged."""
    if not is_journal(url):
        return url
    return JOURNAL + str(Path(url[len(JOURNAL) :]).expanduser().resolve())


def holds_nothing_yet(url: str) -> bool:
    """Whether a file-backed study (SQLite or journal) has no file yet: opening it would
    create one, which a command that only reads a study must not leave behind."""
    if is_journal(url):
        return not Path(url[len(JOURNAL) :]).exists()
    if url.startswith("sqlite:///"):
        return not Path(url[len("sqlite:///") :]).exists()
    return False


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage behind ``url``. A journal file appends every change to the study as one
    line under a file lock, so it needs no server; a SQLite study commits to a write-ahead
    log, synced at its checkpoints (see :func:`_sqlite_pragmas` and BENCHMARKS.md)."""
    if is_journal(url):
        path = url[len(JOURNAL) :]
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite:"):
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # the connections opened before the listener go
    return storage


def _sqlite_pragmas(connection, _record) -> None:
    """Write-ahead log, synced at its checkpoints rather than at every commit: a killed
    driver loses nothing it committed (the log survives the process); only a power loss or
    an operating-system crash can lose the last commits, never the database's consistency."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
