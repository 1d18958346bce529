"""Ray as sersweep uses it: a local instance on loopback or an existing cluster, the checks
made before Ray starts (a cluster that answers, a storage Ray can write), how many trials
share this machine, and the one way work other than trials (final runs, cross-validation
rotations, re-evaluation seeds) becomes Ray tasks with a trial's resources."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from sermodels.backend import worker_environment
from sermodels.errors import ConfigError
from sweep.settings import Resources
from sweep.study_storage import mask_url

ROOT = Path(__file__).resolve().parent.parent


def trials_at_once(resources: Resources) -> int:
    """Trials that may share this machine: the concurrency, bounded by its CPUs."""
    cpus = resources.num_cpus or os.cpu_count() or 1
    return max(1, min(resources.concurrency, int(cpus // resources.cpus_per_trial) or 1))


def check_address(address: str | None, timeout: float = 10.0) -> None:
    """A Ray cluster must answer at ``HOST:PORT`` (its GCS port) within ``timeout`` seconds;
    `ray.init` itself would wait minutes before giving up."""
    if not address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}", "expected HOST:PORT of the head's GCS")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"--address {address}",
            f"no Ray cluster answers within {timeout:.0f} s ({problem}); is `ray start --head` "
            "running there?",
        ) from None


def check_ray_storage(root: str) -> None:
    """Ray Tune's storage must be a filesystem pyarrow can open (local path, s3://, gs://)
    and reach; an object store's bucket must exist (Ray does not create buckets)."""
    import pyarrow.fs

    where = f"--ray-storage {mask_url(root)}"
    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(root)
    except (pyarrow.ArrowInvalid, ValueError, OSError) as exc:
        raise ConfigError(where, f"not a usable filesystem ({exc})") from None
    if filesystem.type_name == "local":
        return
    bucket = path.split("/")[0]
    try:
        found = filesystem.get_file_info(bucket).type != pyarrow.fs.FileType.NotFound
    except OSError as exc:
        problem = str(exc).splitlines()[0][:200]
        raise ConfigError(where, f"cannot reach the object store ({problem})") from None
    if not found:
        raise ConfigError(where, f"bucket {bucket!r} does not exist; create it first")


# Ray's single-node mode (its default on macOS and Windows): a local instance advertises and
# binds 127.0.0.1 only. Without it, `ray.init` resolves even 127.0.0.1 to the machine's
# network address and its servers listen on every interface. Read when Ray is imported.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def init_ray(resources: Resources) -> None:
    """Connect to ``resources.address``, or start a local Ray that listens on loopback only,
    without dashboard."""
    if not resources.address:
        for key, value in LOOPBACK_ONLY.items():
            os.environ.setdefault(key, value)
    import ray

    from sweep.internals import keep_local_ray_on_one_node

    if ray.is_initialized():
        return
    if not resources.address:  # Ray read the flag when it was imported, maybe before us
        keep_local_ray_on_one_node()
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        # every trial and final run on the sweep's backend, with its share of a GPU bounded
        **worker_environment(resources.backend, resources.cpus_per_trial, resources.gpus_per_trial),
    }
    kwargs = {"include_dashboard": False, "log_to_driver": False, "runtime_env": {"env_vars": env}}
    if resources.address:
        ray.init(address=resources.address, **kwargs)
    else:
        env.update(LOOPBACK_ONLY)
        # "local": a Ray of its own, even where `ray start` left a cluster address behind
        # on this machine (ray.init() alone would join that cluster)
        ray.init(address="local", num_cpus=resources.num_cpus, **kwargs)


def remote_task(function: Callable, resources: Resources):
    """``function`` as a Ray task with one trial's resources (CPUs, GPU share) and its
    retries; Ray is started (or joined) first."""
    init_ray(resources)
    import ray

    return ray.remote(function).options(
        num_cpus=resources.cpus_per_trial,
        num_gpus=resources.gpus_per_trial,
        max_retries=resources.max_failures,
    )
