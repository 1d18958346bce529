"""Shared fixtures: demo corpora (real h5, real shapes), each written once per session and
only read by the tests that share it. Helper functions live in ``tests/helpers.py``.

Under ``KERAS_BACKEND=jax`` TensorFlow is made unimportable for this process and everything
it starts (subprocesses, Ray workers), so the JAX path is tested as it runs on a machine
without TensorFlow.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
WITHOUT_TENSORFLOW = Path(__file__).parent / "without_tensorflow"
# JAX's compilation cache for this run alone (hermetic; every JAX process of the run shares it),
# removed when the run that made it ends
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
if os.environ.get("KERAS_BACKEND") == "jax":
    sys.path.insert(0, str(WITHOUT_TENSORFLOW))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(WITHOUT_TENSORFLOW), os.environ.get("PYTHONPATH")])
    )

from collections.abc import Callable  # noqa: E402

import pytest  # noqa: E402

from sermodels.data.demo import write_demo_corpus  # noqa: E402


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Callable[..., Path]:
    """``demo_corpus(n_speakers, per_speaker, seed)``: the path of that demo corpus, written on
    the first request and shared by every later one (tests read it, never write it)."""
    written: dict[tuple[int, int, int], Path] = {}

    def corpus(n_speakers: int = 12, per_speaker: int = 12, seed: int = 3) -> Path:
        key = (n_speakers, per_speaker, seed)
        if key not in written:
            folder = tmp_path_factory.mktemp(f"demo-{n_speakers}x{per_speaker}-seed{seed}")
            written[key] = write_demo_corpus(
                folder / "small.h5", n_speakers, per_speaker, seed=seed, progress=False
            )
        return written[key]

    return corpus


@pytest.fixture(scope="session")
def tiny_corpus(demo_corpus) -> Path:
    """12 speakers x 6 rows: folds 0-11, speakers 10-11 usable as unlabelled."""
    return demo_corpus(12, 6, seed=1)
