"""The Optuna study's storage and its URL, the one home of both: a database (SQLite, in
write-ahead-log mode; PostgreSQL; any SQLAlchemy URL) or an Optuna journal file
(``journal:PATH``), for many-worker studies without a database server. Here a URL is opened,
checked, shown with its password masked, and its password moved to the environment.

Not to be confused with Ray Tune's storage (``--ray-storage``: where trial folders and
checkpoints go), which :mod:`sweep.cluster` checks.

Example:
    >>> url = password_to_environment("postgresql://me:secret@db/sweeps")  # doctest: +SKIP
    >>> mask_url("postgresql://me:secret@db/sweeps")
    'postgresql://me:***@db/sweeps'
    >>> storage = open_storage("journal:/tmp/sweep/study.log")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import optuna
from sqlalchemy import event, exc

from sermodels.errors import ConfigError

JOURNAL = "journal:"
# Optuna creates a new database's schema by checking for its tables and version rows, then
# adding them: of two processes opening the same new database at once (a sweep's driver and
# a dashboard or a reader, array jobs sharing one study) the slower fails on a row the faster
# added. Opened again, it finds them.
SCHEMA_RACE_TRIES = 5


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


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)


def password_to_environment(url: str | None) -> str | None:
    """A PostgreSQL URL's password moves to ``PGPASSWORD`` (libpq reads it there) and the URL
    without it is returned: settings, Ray's pickled searcher state and every message then
    hold no secret. Other URLs are returned unchanged."""
    if not url or not url.startswith(("postgresql", "postgres:")):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    os.environ["PGPASSWORD"] = unquote(parts.password)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_study_storage(url: str) -> None:
    """Open the Optuna study's storage once in the driver: a bad URL fails before Ray
    starts, in one line naming the URL (its password masked)."""
    if is_journal(url) and not Path(url[len(JOURNAL) :]).parent.is_dir():
        raise ConfigError(url, "the journal file's folder does not exist")
    try:
        open_storage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds; all mean "cannot use this URL"
        problem = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ConfigError(
            mask_url(url), f"cannot open the Optuna storage ({mask_url(problem)})"
        ) from None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage behind ``url``. A journal file appends every change to the study as one
    line under a file lock, so it needs no server; a SQLite study commits to a write-ahead
    log, synced at its checkpoints (see :func:`_sqlite_pragmas` and BENCHMARKS.md)."""
    if is_journal(url):
        path = url[len(JOURNAL) :]
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    storage = _rdb_storage(url)
    if url.startswith("sqlite:"):
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # the connections opened before the listener go
    return storage


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """``RDBStorage(url)``, opened again when another process created the same new schema at
    the same moment (see ``SCHEMA_RACE_TRIES``); any other error, or the race's error on the
    last try, is raised."""
    for attempt in range(1, SCHEMA_RACE_TRIES + 1):
        try:
            return optuna.storages.RDBStorage(url)
        except (exc.IntegrityError, exc.OperationalError, exc.ProgrammingError) as error:
            created_beside = isinstance(error, exc.IntegrityError) or "already exists" in str(error)
            if not created_beside or attempt == SCHEMA_RACE_TRIES:
                raise
            time.sleep(0.05 * attempt)


def _sqlite_pragmas(connection, _record) -> None:
    """Write-ahead log, synced at its checkpoints rather than at every commit: a killed
    driver loses nothing it committed (the log survives the process); only a power loss or
    an operating-system crash can lose the last commits, never the database's consistency."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
