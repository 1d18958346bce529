"""Every demo example (the CPU-sized twin of each source experiment, and a few more) trains
at tiny size; pretrained-loading examples first train the examples they load from."""

import re
from pathlib import Path

import pytest

from sermodels.config import load_config
from sermodels.training.run import train

DEMO = Path(__file__).parent.parent / "examples" / "demo"
EXAMPLES = sorted(DEMO.glob("*.yaml"))
DEPENDENCY = re.compile(r"runs/examples/demo/([a-z0-9_\-]+)/")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def done():
    """Names of the examples trained so far in this module (loaders reuse them)."""
    return set()


def run_example(path: Path, data: Path, workdir: Path, done: set) -> dict:
    for dependency in sorted(set(DEPENDENCY.findall(path.read_text()))):
        if dependency not in done:
            run_example(path.parent / f"{dependency}.yaml", data, workdir, done)
    config = load_config(path)
    config.train.epochs, config.train.batch_size, config.train.adopt_epochs = 1, 16, 1
    for key in ("load_G", "load_D"):
        value = getattr(config.sgan, key)
        if value:
            setattr(config.sgan, key, value.replace("runs/", f"{workdir}/runs/"))
    if config.ser.load_model:
        config.ser.load_model = config.ser.load_model.replace("runs/", f"{workdir}/runs/")
    out = workdir / "runs" / "examples" / "demo" / path.stem
    result = train(config, data, out, overwrite=True)
    done.add(path.stem)
    return result


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_trains(path, tiny_corpus, workdir, done):
    result = run_example(path, tiny_corpus, workdir, done)
    assert result["epochs"] >= 1
    if result["test_uar"] is not None:
        assert 0 <= result["test_uar"] <= 1
    assert (workdir / "runs" / "examples" / "demo" / path.stem / "metrics.json").exists()
