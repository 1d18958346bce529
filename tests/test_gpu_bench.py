"""``bench/gpu.sh``, the one prepared call that measures every GPU row: its install step
unpacks a real local bundle (a wheel and a tar.xz, as the GPU-node bundle holds) with pip
and no package index, and its arguments are checked before anything runs. The rows
themselves need a GPU and are not run here."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu.sh"


def gpu_sh(*args, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable, **env}
    command = ["bash", str(SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)


def write_wheel(folder: Path, name: str) -> Path:
    """A pure-Python wheel of package ``name`` (version 1.0), written as the format asks."""
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}-1.0.dist-info/RECORD,,")
    files[f"{name}-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def test_the_install_step_unpacks_a_local_bundle_without_a_package_index(tmp_path):
    bundle, site = tmp_path / "bundle", tmp_path / "site"
    bundle.mkdir()
    write_wheel(bundle, "bundled_wheel")
    package = tmp_path / "tarred" / "bundled_tar"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 7\n")
    with tarfile.open(bundle / "ray.tar.xz", "w:xz") as archive:
        archive.add(package, arcname="bundled_tar")
    done = gpu_sh(
        "--install-only", "--force-install", "--bundle", bundle, "--site", site, PIP_NO_INDEX="1"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"installed": str(bundle), "site": str(site)}
    code = "import bundled_wheel, bundled_tar; print(bundled_wheel.VALUE + bundled_tar.VALUE)"
    imported = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert imported.stdout.strip() == "49", imported.stderr


def test_a_machine_that_has_ray_keras_and_optuna_installs_nothing(tmp_path):
    done = gpu_sh("--dry-run", "--bundle", tmp_path / "absent")
    assert done.returncode == 0, done.stderr
    plan, *rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert plan["install"] is False  # this interpreter has them
    assert [row["row"] for row in rows] == ["1", "6", "9", "10", "11"]
    assert sum(row["limit_s"] for row in rows) <= 480  # eight minutes together
    assert all(Path(ROOT, row["command"].split()[1]).is_file() for row in rows)


def test_bad_arguments_and_a_missing_bundle_are_one_line_and_exit_2(tmp_path):
    cases = {
        ("--frob",): "unknown argument '--frob'",
        ("--rows", "1,7"): "--rows: unknown row '7'",
        ("--bundle",): "--bundle needs a value",
        ("--force-install", "--bundle", tmp_path / "absent"): f"{tmp_path / 'absent'}: no bundle",
    }
    for args, message in cases.items():
        done = gpu_sh(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, args
    empty = tmp_path / "empty"
    empty.mkdir()
    done = gpu_sh("--force-install", "--install-only", "--bundle", empty, "--site", tmp_path / "s")
    assert done.returncode == 2 and "holds no wheels and no ray.tar.xz" in done.stderr
