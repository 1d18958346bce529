"""``examples/cluster/slurm/sersweep.sbatch`` on a real single-node Slurm that the tests start
on this machine (Debian's slurm-wlm and munge: munged, slurmctld and slurmd on loopback, 2
CPUs): a submitted sweep runs to its end; a job cancelled mid-sweep and submitted again
resumes it with no trial lost; run outside an allocation, the script refuses in one line."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import optuna
import psutil
import pytest
import yaml

from sweep.study_storage import open_storage
from tests.helpers import ROOT, free_port, poll, wait_for
from tests.sweep.helpers import trial_results

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

SCRIPT = ROOT / "examples" / "cluster" / "slurm" / "sersweep.sbatch"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch")


@pytest.fixture(scope="module")
def slurm():
    """A Slurm cluster of this machine alone, its files in a temporary folder; yields the
    environment its commands need (``SLURM_CONF``)."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    reason = (
        f"Slurm cannot start here: {', '.join(missing)} missing (apt-get install slurm-wlm munge)"
        if missing
        else None
    )
    if not missing and os.geteuid() != 0:
        reason = "Slurm cannot start here: its daemons run as root in this test"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run should have installed it")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="slurm"))
    for sub in ("state", "spool", "log"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    socket_path = folder / "munge.sock"
    subprocess.run(
        [
            "munged",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={folder / 'munged.pid'}",
            f"--seed-file={folder / 'munge.seed'}",
            f"--log-file={folder / 'log/munged.log'}",
            "--force",
        ],
        check=True,
        timeout=30,
    )
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(f"""ClusterName=sersweeptest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "log/slurmctld.log"}
SlurmdLogFile={folder / "log/slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=5
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env, timeout=30)
    subprocess.run(["slurmd", "-f", str(conf)], check=True, env=env, timeout=30)

    def idle() -> bool:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
        return done.stdout.strip() == "idle"

    try:
        wait_for(idle, 60, "the Slurm node is idle")
        yield env
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, timeout=30)
        for name in ("slurmd", "slurmctld", "munged"):
            try:
                pid = int((folder / f"{name}.pid").read_text())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            # a daemon writes its last files as it exits (munged its seed): gone first
            poll(lambda pid=pid: not psutil.pid_exists(pid), 30)
        shutil.rmtree(folder, ignore_errors=True)


def submit(slurm: dict, out: Path, log: Path, *options, wait: bool = True):
    """``sbatch`` the script for the sweep folder ``out``: waits for the job to end (its exit
    code returned), or returns the job id."""
    env_list = f"ALL,SERSWEEP_ROOT={ROOT},RAY_PORT={free_port()},NODE_IP=127.0.0.1"
    waiting = ["--wait"] if wait else []
    command = [
        "sbatch",
        f"--output={log}",
        f"--export={env_list}",
        "--parsable",
        *waiting,
        str(SCRIPT),
        str(out),
        *map(str, options),
    ]
    done = subprocess.run(command, env=slurm, capture_output=True, text=True, timeout=600)
    if wait:
        return done.returncode
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def finished_trials(out: Path) -> list:
    try:
        study = optuna.load_study(
            study_name="slurm", storage=open_storage(f"journal:{out / 'study.log'}")
        )
    except (KeyError, FileNotFoundError):
        return []
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def test_a_submitted_sweep_runs_to_its_end(slurm, demo_corpus, tmp_path):
    corpus = demo_corpus(12, 12, seed=3)
    out, log = tmp_path / "sweep", tmp_path / "job.log"
    code = submit(
        slurm,
        out,
        log,
        "--space",
        "demo",
        "--data",
        corpus,
        "--samples",
        2,
        "--max-epochs",
        2,
        "--name",
        "slurm",
        "--reeval-top",
        0,
    )
    assert code == 0, log.read_text()[-3000:]
    settings = yaml.safe_load((out / "sweep.yaml").read_text())
    assert settings["address"].startswith("127.0.0.1:")  # the job's own Ray head
    assert settings["study_url"] == f"journal:{out / 'study.log'}"
    assert len(finished_trials(out)) == 2
    runs = trial_results(out / "ray" / "slurm")
    assert len(runs) == 2 and all(rows[-1]["done"] for rows in runs.values())
    assert (out / ".ray_auth_token").stat().st_mode & 0o777 == 0o600


def test_a_cancelled_job_submitted_again_finishes_the_sweep_with_no_trial_lost(
    slurm, demo_corpus, tmp_path
):
    corpus = demo_corpus(12, 12, seed=3)
    out = tmp_path / "sweep"
    options = [
        "--space",
        "demo",
        "--data",
        corpus,
        "--samples",
        4,
        "--max-epochs",
        4,
        "--name",
        "slurm",
        "--reeval-top",
        0,
    ]
    job = submit(slurm, out, tmp_path / "first.log", *options, wait=False)
    wait_for(lambda: len(finished_trials(out)) >= 1, 300, "a trial finished")
    subprocess.run(["scancel", job], env=slurm, check=True, timeout=30)

    def gone() -> bool:
        queue = subprocess.run(
            ["squeue", "-h", "-j", job], env=slurm, capture_output=True, text=True
        )
        return job not in queue.stdout

    wait_for(gone, 120, "the cancelled job left the queue")
    before = len(finished_trials(out))
    assert 1 <= before < 4  # exactly what the test stands on: cancelled mid-sweep

    code = submit(slurm, out, tmp_path / "second.log", *options)
    log = (tmp_path / "second.log").read_text()
    assert code == 0, log[-3000:]
    assert "holds a sweep: resuming it" in log
    study = optuna.load_study(
        study_name="slurm", storage=open_storage(f"journal:{out / 'study.log'}")
    )
    kept = [t for t in study.trials if not t.user_attrs.get("orphaned")]
    assert len(kept) == 4 and all(t.state.is_finished() for t in kept)
    runs = trial_results(out / "ray" / "slurm")
    assert len(runs) == 4
    for rows in runs.values():  # resumed from checkpoints, never an epoch twice
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))


def test_outside_an_allocation_the_script_refuses_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "sweep"), "--space", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "not inside a Slurm allocation" in lines[0]
    assert not (tmp_path / "sweep").exists()
