"""Shared fixtures: a tiny demo corpus written once per session (real h5, real shapes)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402

from sermodels.demo import write_demo_corpus  # noqa: E402


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """12 speakers x 6 rows: folds 0-11, speakers 10-11 usable as unlabelled."""
    return write_demo_corpus(tmp_path_factory.mktemp("data") / "tiny.h5", 12, 6, seed=1)
