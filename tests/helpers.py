"""What many tests do the same way: run ``launch.py`` as a user would, find a free loopback
port, wait for something that another process makes happen, and train the smallest SGAN."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the smallest SGAN the tests train (a run's ``sgan`` section): a few seconds an epoch on a CPU
TINY_SGAN = {
    "latent_dim": 8,
    "depth_G": 3,
    "n_kernels_G": [4, 4, 1],
    "depth_D": 1,
    "n_kernels_D": [4],
    "pool_n_row_D": [2],
    "pool_n_col_D": [2],
    "n_node": 8,
}


def launch_command(*args: object) -> list[str]:
    """The command line of ``python launch.py ARGS`` (this interpreter, this checkout)."""
    return [sys.executable, str(ROOT / "launch.py"), *map(str, args)]


def launch(
    *args: object, timeout: float = 600, env: dict | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """``launch.py ARGS`` run to its end, its output captured as text."""
    return subprocess.run(
        launch_command(*args), capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


def start_driver(command: list[str], log: Path) -> subprocess.Popen:
    """``command`` started in a session of its own (so a test can kill it and every process it
    started), its output and errors written to ``log``."""
    with open(log, "w") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def ended_early(driver: subprocess.Popen, log: Path) -> str:
    """The message of a test whose driver ended before the test could kill it: its exit
    status and the end of what it wrote."""
    return (
        f"the sweep ended (exit status {driver.poll()}) before it could be killed:\n"
        f"{log.read_text()[-3000:]}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def poll[Value](
    condition: Callable[[], Value],
    seconds: float,
    every: float = 0.5,
    alongside: subprocess.Popen | None = None,
) -> Value | None:
    """``condition()`` asked every ``every`` seconds until it returns something true, which is
    returned; ``None`` once ``seconds`` have passed or the process ``alongside`` has ended
    (what the condition waits for cannot happen then)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (alongside is None or alongside.poll() is None):
        value = condition()
        if value:
            return value
        time.sleep(every)
    return None


def wait_for[Value](condition: Callable[[], Value], seconds: float, what: str) -> Value:
    """As :func:`poll`, failing the test when ``what`` has not happened within ``seconds``."""
    value = poll(condition, seconds)
    if not value:
        raise AssertionError(f"{what} within {seconds} s")
    return value
