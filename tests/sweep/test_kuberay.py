"""``examples/cluster/kuberay/rayjob.yaml`` against the RayJob schema (the fields it uses, as
KubeRay's CRD types them), and against what a sersweep sweep on it needs: its entrypoint is
a command ``launch.py`` accepts, on the cluster the RayJob made, with a PostgreSQL study
whose password comes from a Secret; every Ray pod has token authentication and the shared
volume; the GPUs Ray is told of are the GPUs the pods ask for. It has not run on a
Kubernetes cluster here."""

import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

import launch

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "cluster" / "kuberay"


@pytest.fixture(scope="module")
def job() -> dict:
    return yaml.safe_load((FOLDER / "rayjob.yaml").read_text())


def pods(job: dict) -> list[tuple[dict, dict]]:
    cluster = job["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    return [
        (group, container)
        for group in groups
        for container in group["template"]["spec"]["containers"]
    ]


def test_the_manifest_is_a_valid_rayjob(job):
    schema = yaml.safe_load((FOLDER / "rayjob.schema.yaml").read_text())
    jsonschema.validate(job, schema)


def test_the_schema_refuses_what_the_crd_would(job):
    schema = yaml.safe_load((FOLDER / "rayjob.schema.yaml").read_text())
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["rayStartParams"]["num-gpus"] = 2
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        jsonschema.validate(broken, schema)  # rayStartParams values are strings
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replica"] = 4
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        jsonschema.validate(broken, schema)


def test_the_entrypoint_is_a_sweep_launch_py_accepts_on_this_cluster(job):
    words = shlex.split(job["spec"]["entrypoint"].replace("$(hostname -i)", "10.0.0.5"))
    assert words[:2] == ["python", "/app/launch.py"]
    args = launch.parser().parse_args(words[2:])
    assert args.handler is launch.sweep_command and args.address == "10.0.0.5:6379"
    assert args.study_url.startswith("postgresql://")
    assert ":" not in args.study_url.split("@")[0][13:]  # no password in the job
    assert str(args.out).startswith("/shared/") and str(args.data).startswith("/shared/")


def test_every_ray_pod_has_the_token_the_volume_and_the_gpus_it_tells_ray(job):
    for group, container in pods(job):
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert env["RAY_AUTH_TOKEN_PATH"]["value"].startswith(tuple(mounts))
        assert "/shared" in mounts
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
        gpus = int(container["resources"]["limits"].get("nvidia.com/gpu", 0))
        assert int(group["rayStartParams"].get("num-gpus", "0")) == gpus
        assert int(group["rayStartParams"]["num-cpus"]) <= int(
            container["resources"]["limits"]["cpu"]
        )
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert sum(int(w["rayStartParams"]["num-gpus"]) for w in workers) > 0  # GPU workers
