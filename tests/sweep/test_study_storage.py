"""The Optuna study's storage: a new database opened by several processes at the same
moment (a starting sweep's driver and a reader, array jobs sharing one study)."""

import subprocess
import sys
import time

from tests.helpers import ROOT

OPEN_AT = """
import sys, time
sys.path.insert(0, {root!r})
from sweep.study_storage import open_storage
for when, url in {schedule!r}:
    while time.time() < when:
        pass
    open_storage(url)
"""


def test_processes_opening_one_new_database_at_once_all_get_the_study_storage(tmp_path):
    # Optuna adds a new schema's version rows after checking they are absent: opened raw,
    # about one in eight such openings fails on the rows another process added
    start = time.time() + 4  # after every process has imported what it needs
    schedule = [
        (start + round_, f"sqlite:///{tmp_path / f'round{round_}.db'}") for round_ in range(8)
    ]
    code = OPEN_AT.format(root=str(ROOT), schedule=schedule)
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert all(process.returncode == 0 for process in processes), "\n".join(errors)[-3000:]
