"""A real two-node Ray cluster on loopback (token authentication on): a sweep spreads over
both nodes, and killing the second node's raylet mid-sweep loses no trial; the trials it
ran resume from their last checkpoint on the head."""

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from functools import partial
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from tests.helpers import free_port, poll
from tests.sweep.helpers import (
    freeze_a_trial_midway,
    leaves_epochs_to_train,
    sweep_command,
    trial_results,
)

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

TWO_NODE_EPOCHS = 6
RAY = str(Path(sys.executable).parent / "ray")
# the cluster's own token file: `ray start` needs one and never creates it, and the tests
# must not depend on (or write) the user's ~/.ray/auth_token
TOKEN_DIR = tempfile.mkdtemp(prefix="raytoken")
atexit.register(shutil.rmtree, TOKEN_DIR, ignore_errors=True)
TOKEN = Path(TOKEN_DIR) / "auth_token"
ENV = {
    **os.environ,
    "RAY_AUTH_MODE": "token",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_TOKEN_PATH": str(TOKEN),
}


def ray_start(*args):
    subprocess.run(
        [RAY, "start", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
        check=True,
        capture_output=True,
        env=ENV,
        timeout=180,
    )


@pytest.fixture
def two_nodes():
    # its own short temp dir (Ray's socket paths must stay short): the teardown stops this
    # cluster's processes only, never another Ray on the machine (`ray stop` would)
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    TOKEN.write_text(secrets.token_hex(32))
    TOKEN.chmod(0o600)
    port, worker_port = free_port(), free_port()
    ray_start(
        "--head",
        f"--port={port}",
        "--num-cpus=1",
        "--include-dashboard=false",
        f"--temp-dir={temp_dir}",
    )
    ray_start(f"--address=127.0.0.1:{port}", "--num-cpus=1", f"--node-manager-port={worker_port}")
    yield f"127.0.0.1:{port}", worker_port
    stop_processes_of(temp_dir)
    shutil.rmtree(temp_dir, ignore_errors=True)


def stop_processes_of(temp_dir: str) -> None:
    """Kill every process whose command line names ``temp_dir`` (one cluster's processes)."""
    ours = []
    for process in psutil.process_iter(["cmdline"]):
        if temp_dir in " ".join(process.info["cmdline"] or []):
            ours.append(process)
    for process in ours:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(ours, timeout=30)


def worker_raylet(node_manager_port: int) -> psutil.Process:
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if (
            "raylet" in (process.info["name"] or "")
            and f"--node_manager_port={node_manager_port}" in cmdline
        ):
            return process
    raise AssertionError("the second node's raylet is not running")


def results_on(experiment: Path, node_id: str) -> dict[str, list[dict]]:
    """The result rows of the trials whose last epoch ran on ``node_id``."""
    runs = trial_results(experiment)
    return {
        folder: rows for folder, rows in runs.items() if rows and rows[-1]["node_id"] == node_id
    }


def hold_a_trial_on(raylet: psutil.Process, experiment: Path) -> str | None:
    """Hold still a trial running on the node of ``raylet`` whose newest checkpoint leaves
    epochs to train (so that the node is lost with the trial mid-run); its folder, or
    ``None`` while there is none."""
    node = node_of(raylet, trial_results(experiment))
    if node is None:
        return None
    return freeze_a_trial_midway(
        partial(results_on, experiment, node), leaves_epochs_to_train(experiment, TWO_NODE_EPOCHS)
    )


def node_of(raylet: psutil.Process, runs: dict[str, list[dict]]) -> str | None:
    """The Ray node id of the node whose raylet is ``raylet``, once one of its workers has
    reported (a worker's parent is its raylet)."""
    for rows in runs.values():
        for row in rows:
            try:
                if psutil.Process(row["pid"]).ppid() == raylet.pid:
                    return row["node_id"]
            except psutil.NoSuchProcess:
                continue
    return None


def test_sweep_spreads_over_two_nodes_and_survives_losing_one(two_nodes, demo_corpus, tmp_path):
    address, worker_port = two_nodes
    corpus = demo_corpus(12, 16, seed=4)
    out = tmp_path / "sweep"
    # streaming: each trial reads its batches from the file, on whichever node it runs
    command = sweep_command(
        corpus,
        out,
        "two",
        "--samples",
        4,
        "--max-epochs",
        TWO_NODE_EPOCHS,
        "--address",
        address,
        "--concurrency",
        2,
        "--no-collapse-stop",
        "--data-mode",
        "stream",
    )
    experiment = out / "ray" / "two"
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=ENV)
        raylet = worker_raylet(worker_port)
        # once the second node runs a trial, hold it still (SIGSTOP) after a checkpoint, so
        # that the node is lost with the trial mid-run
        held = poll(partial(hold_a_trial_on, raylet, experiment), 300, alongside=driver)
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        assert held, "no trial ran on the second node"
        last = trial_results(experiment)[held][-1]
        worker_node, held_pid = last["node_id"], last["pid"]
        # its worker goes with the node; first, or the raylet's death would wake it (see
        # kill_held_then_driver)
        os.kill(held_pid, signal.SIGKILL)
        raylet.send_signal(signal.SIGKILL)
        assert driver.wait(timeout=600) == 0, (tmp_path / "driver.log").read_text()[-3000:]

    assert json.loads((out / "data.json").read_text())["mode"] == "stream"
    study = optuna.load_study(study_name="two", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    runs = trial_results(out / "ray" / "two")
    assert len(runs) == 4
    assert len({r["node_id"] for rows in runs.values() for r in rows}) == 2  # both nodes used
    for rows in runs.values():
        epochs = [r["epoch"] for r in rows]
        assert sorted(set(epochs)) == list(range(1, TWO_NODE_EPOCHS + 1))  # the whole budget
        assert max(Counter(epochs).values()) <= 2  # at most the interrupted epoch redone
    rows = runs[held]  # resumed on the head, from its checkpoint, not from scratch
    first_on_head = next(i for i, r in enumerate(rows) if r["node_id"] != worker_node)
    assert first_on_head >= 1 and rows[first_on_head]["epoch"] > 1
    assert all(r["node_id"] != worker_node for r in rows[first_on_head:])


def test_a_local_sweep_starts_its_own_ray_beside_a_running_cluster(
    two_nodes, demo_corpus, tmp_path
):
    """`ray start` leaves its cluster's address on the machine; a sweep without --address
    must still start a Ray of its own (ray.init() alone would join that cluster)."""
    corpus = demo_corpus(12, 12, seed=4)
    out = tmp_path / "sweep"
    command = sweep_command(
        corpus, out, "local", "--samples", 1, "--max-epochs", 1, "--num-cpus", 1
    )
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Connecting to existing Ray cluster" not in done.stderr
    (rows,) = trial_results(out / "ray" / "local").values()
    assert rows[-1]["node_ip"] == "127.0.0.1"
