"""Train one configuration end to end: validate data and config, build, fit, write outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from sermodels.config import RunConfig
from sermodels.data import Corpus, load_run_corpus
from sermodels.errors import ConfigError
from sermodels.training.loop import EpochHook, TrainingRun
from sermodels.training.ser_run import SERRun
from sermodels.training.sgan_run import SGANRun


def make_run(config: RunConfig, corpus: Corpus, out: Path | None) -> TrainingRun:
    return (SGANRun if config.model == "sgan" else SERRun)(config, corpus, out)


def train(
    config: RunConfig,
    data: str | Path | None = None,
    out: str | Path | None = None,
    on_epoch: EpochHook | None = None,
    overwrite: bool = False,
) -> dict:
    """Train ``config`` and return its metrics (also in ``out/metrics.json``).

    Output is built in ``out.partial`` and renamed to ``out`` only when complete, so a
    failed run leaves no half-written folder.
    """
    return train_on(config, load_run_corpus(config, data), out, on_epoch, overwrite)


def train_on(
    config: RunConfig,
    corpus: Corpus,
    out: str | Path | None = None,
    on_epoch: EpochHook | None = None,
    overwrite: bool = False,
) -> dict:
    """:func:`train` on a corpus already in memory (sweeps read it once)."""
    if out is None:
        return make_run(config, corpus, None).fit(on_epoch)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(str(out), "output folder exists and is not empty (pass --force)")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(str(out), f"cannot create ({exc.strerror or exc})") from None
    try:
        result = make_run(config, corpus, partial).fit(on_epoch)
        (partial / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return result
