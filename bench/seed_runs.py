"""Configurations trained again on other seeds, outside any sweep: the benchmarks' way to
know how good a picked configuration is (a fresh process per run, so a run's history
depends only on its spec and the code).

    histories = train_histories(corpus, [{"overrides": {...}, "seed": 2000}], valid_idx)
"""

from __future__ import annotations

import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

SPACE = "demo"
KEPT = ("epoch", "val_uar", "nonfinite", "d_acc_real", "d_acc_fake", "diversity")
SETTLED = 3  # the budget's last epochs that make a run's quality
CHANCE = 0.25  # the demo corpus's 4 classes: what a run that went NaN is worth


def train_histories(
    corpus: str, specs: list[dict], valid_idx: str, workers: int = 2
) -> list[list[dict]]:
    """Each spec's (``overrides``, ``seed``) trained on ``corpus`` for the demo space's
    budget, validated on ``valid_idx``; its kept per-epoch metrics, in the order given."""
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_train, corpus, spec, valid_idx) for spec in specs]
        return [future.result() for future in futures]


def _train(corpus_path: str, spec: dict, valid_idx: str) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from search_spaces import load_space
    from sermodels.backend import configure_threads
    from sermodels.config import config_from_dict
    from sermodels.data import load_run_corpus
    from sermodels.training.run import make_run

    configure_threads(1)
    space = load_space(SPACE)
    mapping = space.run_config({**spec["overrides"], "train.seed": spec["seed"]})
    mapping["data"]["valid_idx"] = valid_idx
    mapping["train"].update({"patience": 0, "save_img_interval": 0, "save_models": False})
    config = config_from_dict(mapping, SPACE)
    run = make_run(config, load_run_corpus(config, corpus_path), None)
    started, history = time.perf_counter(), []
    for _ in range(space.max_epochs):
        metrics = run.step_epoch()
        history.append({k: float(metrics[k]) for k in KEPT if k in metrics})
        if metrics.get("nonfinite"):
            break
    history[-1]["seconds"] = round(time.perf_counter() - started, 1)
    return history


def quality(history: list[dict], budget: int) -> float:
    """A run's settled quality: the mean val UAR of the budget's last ``SETTLED`` epochs
    (a run that ended early, on a non-finite value, counts at chance)."""
    return curve_quality([row.get("val_uar", math.nan) for row in history], budget)


def curve_quality(val_uar: list[float], budget: int) -> float:
    """:func:`quality` of a run kept as its val UAR per epoch."""
    if len(val_uar) < budget or not all(math.isfinite(v) for v in val_uar[-SETTLED:]):
        return CHANCE
    return statistics.fmean(val_uar[-SETTLED:])
