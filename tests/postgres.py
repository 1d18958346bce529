"""A real PostgreSQL server for tests: initdb in a fresh folder, listening on 127.0.0.1 only,
password authentication, stopped at the end. Debian's `postgresql` package provides the
binaries (`.ci/run` installs it when missing)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_port

USER, PASSWORD, DATABASE = "sersweep", "s3cret-pw", "sersweep"


def binaries() -> Path | None:
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (installed[-1] if installed else None)
    return Path(os.path.realpath(initdb)).parent if initdb else None


@contextmanager
def postgres_server():
    """Yields the server's SQLAlchemy URL (with its password)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries not found (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="sersweep-pg-"))
    folder.chmod(0o755)  # the server runs as `postgres` when we are root
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(folder, "postgres", "postgres")
    password_file = folder / "password"
    password_file.write_text(PASSWORD)
    if as_owner:
        shutil.chown(password_file, "postgres", "postgres")
    data, port = folder / "data", free_port()

    def run(*command):
        subprocess.run([*as_owner, *command], check=True, capture_output=True, timeout=120)

    run(
        bin_dir / "initdb",
        "-D",
        data,
        "-U",
        USER,
        "-A",
        "scram-sha-256",
        f"--pwfile={password_file}",
    )
    run(
        bin_dir / "pg_ctl",
        "-D",
        data,
        "-l",
        folder / "server.log",
        "-w",
        "start",
        "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
    )
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        createdb = [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", USER]
        subprocess.run([*createdb, DATABASE], check=True, capture_output=True, env=env, timeout=60)
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run(
            [*as_owner, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(folder, ignore_errors=True)
