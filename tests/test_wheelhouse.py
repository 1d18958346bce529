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
    done = subprocess.run([sys.executable, str(ROOT / "tools/wheelhouse"), str(tmp_path / "w"),
                           "--node-has", str(tmp_path / "none.txt")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "none.txt" in done.stderr
    assert not (tmp_path / "w").exists()
