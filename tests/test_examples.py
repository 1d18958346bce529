"""Every demo example (the CPU-sized twin of each source experiment, and a few more) trains
at tiny size and leaves a model that says what it is; pretrained-loading examples first
train the examples they load from, whichever order the tests run in."""

import json
import re
from pathlib import Path

import pytest

from sermodels.config import load_config
from sermodels.inference.manifest import ModelManifest
from sermodels.training.run import train

DEMO = Path(__file__).parent.parent / "examples" / "demo"
EXAMPLES = sorted(DEMO.glob("*.yaml"))
DEPENDENCY = re.compile(r"runs/examples/demo/([a-z0-9_\-]+)/")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("examples")


def out_folder(workdir: Path, name: str) -> Path:
    return workdir / "runs" / "examples" / "demo" / name


def run_example(path: Path, data: Path, workdir: Path) -> dict:
    """Train ``path`` at tiny size, after each example it loads from that is not yet trained
    in ``workdir`` (a finished run leaves its ``metrics.json``)."""
    for dependency in sorted(set(DEPENDENCY.findall(path.read_text()))):
        if not (out_folder(workdir, dependency) / "metrics.json").exists():
            run_example(path.parent / f"{dependency}.yaml", data, workdir)
    config = load_config(path)
    config.train.epochs, config.train.batch_size, config.train.adopt_epochs = 1, 16, 1
    for key in ("load_G", "load_D"):
        value = getattr(config.sgan, key)
        if value:
            setattr(config.sgan, key, value.replace("runs/", f"{workdir}/runs/"))
    if config.ser.load_model:
        config.ser.load_model = config.ser.load_model.replace("runs/", f"{workdir}/runs/")
    return train(config, data, out_folder(workdir, path.stem), overwrite=True)


@pytest.mark.e2e  # every shipped example, trained from its file
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_trains(path, tiny_corpus, workdir):
    config = load_config(path)
    result = run_example(path, tiny_corpus, workdir)
    out = out_folder(workdir, path.stem)
    assert result["epochs"] == 1  # the one epoch asked for, trained to its end
    if result["test_uar"] is not None:
        assert 0 <= result["test_uar"] <= 1
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    manifest = ModelManifest.load(out / "models")
    assert manifest.model == config.model
    assert manifest.features == config.data.features
    assert (out / "models" / manifest.classifier).is_file()
    assert [task.name for task in manifest.tasks] == [
        t.split(":")[0] for t in config.data.tasks.split(",")
    ]
