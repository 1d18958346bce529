"""`tools/wheelhouse --dry-run`: the plan for an air-gapped GPU node keeps what sersweep needs
and leaves out what the node has (JAX's CUDA build and its numpy) or does not use."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def plan(*flags) -> dict:
    command = [sys.executable, str(ROOT / "tools/wheelhouse"), "/tmp/unused", "--dry-run", *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def names(requirements) -> set[str]:
    return {r.split("==")[0].split("[")[0].lower() for r in requirements}


def test_the_gpu_node_plan():
    steps = plan("--python", "3.12")
    kept = names(steps["kept"])
    assert {"keras", "ray", "optuna", "tensorboardx", "sqlalchemy"} <= kept
    assert not {"numpy", "jax", "tensorflow-cpu", "h5py", "pytest"} & kept
    assert {"numpy", "jax", "jaxlib"} <= set(steps["node_has"])  # removed also as dependencies
    command = steps["command"]
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--abi") + 1] == "cp312" and "--only-binary=:all:" in command


def test_tests_tools_only_when_asked():
    assert "pytest" in names(plan("--with-tests")["kept"])


def test_a_missing_list_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/wheelhouse"),
            str(tmp_path / "w"),
            "--node-has",
            str(tmp_path / "none.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "none.txt" in done.stderr
    assert not (tmp_path / "w").exists()


def test_rays_wheel_is_packed_again_without_the_parts_sersweep_never_imports(tmp_path):
    import importlib.machinery
    import importlib.util
    import tarfile
    import zipfile

    loader = importlib.machinery.SourceFileLoader("wheelhouse", str(ROOT / "tools/wheelhouse"))
    spec = importlib.util.spec_from_loader("wheelhouse", loader)
    wheelhouse = importlib.util.module_from_spec(spec)
    loader.exec_module(wheelhouse)
    wheel = tmp_path / "ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in (
            "ray/__init__.py",
            "ray/tune/__init__.py",
            "ray/jars/ray_dist.jar",
            "ray/rllib/__init__.py",
            "ray/serve/__init__.py",
            "ray-2.60.0.dist-info/METADATA",
        ):
            archive.writestr(path, "x")
    packed = wheelhouse.trim_ray(wheel)
    assert packed == tmp_path / "ray.tar.xz" and not wheel.exists()
    with tarfile.open(packed) as archive:
        files = {m.name for m in archive.getmembers() if m.isfile()}
    assert files == {"ray/__init__.py", "ray/tune/__init__.py", "ray-2.60.0.dist-info/METADATA"}
