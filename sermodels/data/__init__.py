"""The data side: the h5 contract and its splits, the synthetic demo corpus, WAV extraction."""

from __future__ import annotations

from pathlib import Path

from sermodels.config import RunConfig
from sermodels.data.corpus import load_corpus
from sermodels.data.demo import demo_corpus_path
from sermodels.data.modes import DATA_MODES, DataChoice, MemoryShare
from sermodels.data.splits import Corpus, Split

__all__ = [
    "DATA_MODES",
    "Corpus",
    "DataChoice",
    "MemoryShare",
    "Split",
    "demo_corpus_path",
    "load_corpus",
    "load_run_corpus",
]


def load_run_corpus(
    config: RunConfig,
    data: str | Path | None = None,
    mode: str = "resident",
    share: MemoryShare | None = None,
) -> Corpus:
    """The corpus a run config asks for (``data`` overrides ``data.path``; the demo corpus
    when neither), in the layout its model takes, resident or streamed (``mode``, see
    :func:`sermodels.data.corpus.load_corpus`)."""
    path = data or config.data.path or demo_corpus_path()
    layout = "image" if config.model == "sgan" else "sequence"
    return load_corpus(config.data, str(path), layout, mode, share)
