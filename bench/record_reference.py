"""Record the reference search that ``bench/search_efficiency.py`` takes its target from
(``bench/histories/reference_search.json``), with a hash of the code it was recorded with.

The target of a search-efficiency figure must not come from the methods it compares, and
must not move with validation noise. So this script:

* writes the **benchmark corpus**: the demo corpus's generator with 128 speakers instead of
  12. Speakers 0-11 are the demo corpus's own (same seed, same draws), so training (speakers
  4-9), test (0, 1) and unlabelled rows (10, 11) are the demo's; validation is speakers 2, 3
  and 12-127: 118 speakers, 4,720 rows, where the demo has 2 speakers and 80 rows;
* runs a **long reference search**: the ``demo`` space as shipped (its epoch budget),
  multivariate TPE seeded apart from every compared sweep, ``REFERENCE_TRIALS`` trials, each
  trained to the full budget with nothing stopped (no scheduler, no collapse stopping);
* retrains the reference's best configuration once, predicts the validation rows with the
  saved model and **bootstraps its val UAR over validation speakers** (speakers resampled
  with replacement): the spread one validation set of this size puts on a val UAR near the
  target. ``bench/search_efficiency.py`` prints it beside its margin.

    .venv/bin/python bench/record_reference.py [--trials 64]

Takes about 15 minutes on a 2-core CPU. ``bench/search_efficiency.py`` says when the code the
file was recorded with has changed since (``code_hash``: the model library's training code,
the demo space, the sweep package and this script).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, print_json, results_by_trial
from record_histories import NOT_TRAINING

from sweep.settings import SweepSettings

OUT = ROOT / "bench" / "histories" / "reference_search.json"
CORPUS_SPEAKERS = 128
PER_SPEAKER = 40
CORPUS_SEED = 0  # the demo corpus's seed: speakers 0-11 are the demo's own rows
VALID_FOLDS = "2,3,12:127"
SPACE = "demo"
REFERENCE_TRIALS = 64
REFERENCE_SEED = 1000  # the compared sweeps use seeds 0, 1, 2, ...
RESAMPLES = 2000


def code_hash() -> str:
    """What the reference depends on: the model library's training code, the demo space, the
    sweep package (sampler, trainable) and this script."""
    digest = hashlib.sha256()
    library = [
        path
        for path in (ROOT / "sermodels").rglob("*.py")
        if not str(path.relative_to(ROOT)).startswith(NOT_TRAINING)
    ]
    sweep = list((ROOT / "sweep").glob("*.py"))
    space = ROOT / "search_spaces" / f"{SPACE}.yaml"
    for path in sorted([*library, *sweep, space, Path(__file__).resolve()]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_bench_corpus(path: Path) -> Path:
    """The benchmark corpus (see the module docstring)."""
    from sermodels.data.demo import write_demo_corpus

    return write_demo_corpus(path, n_speakers=CORPUS_SPEAKERS, per_speaker=PER_SPEAKER,
                             seed=CORPUS_SEED)  # fmt: skip


def bench_settings(out: Path, corpus: Path, **search) -> SweepSettings:
    """A sweep of the demo space on the benchmark corpus, validated on ``VALID_FOLDS``."""
    return SweepSettings(out=str(out), space=SPACE, data=str(corpus), concurrency=2,
                         num_cpus=2, base_settings={"data.valid_idx": VALID_FOLDS},
                         **search)  # fmt: skip


def speaker_bootstrap(
    y_true: np.ndarray, y_pred: np.ndarray, speakers: np.ndarray, n_classes: int, seed: int = 0
) -> dict:
    """UAR of ``y_pred`` and its bootstrap SD over speakers: ``RESAMPLES`` draws of as many
    speakers as there are, with replacement, each drawn speaker's rows pooled."""
    from sermodels.metrics import uar

    rng = np.random.default_rng(seed)
    ids = np.unique(speakers)
    rows_of = {speaker: np.flatnonzero(speakers == speaker) for speaker in ids}
    draws = []
    for _ in range(RESAMPLES):
        rows = np.concatenate([rows_of[speaker] for speaker in rng.choice(ids, len(ids))])
        draws.append(uar(y_true[rows], y_pred[rows], n_classes))
    return {"val_uar": round(uar(y_true, y_pred, n_classes), 4),
            "bootstrap_sd": round(float(np.std(draws, ddof=1)), 4), "speakers": len(ids),
            "rows": len(y_true), "resamples": RESAMPLES}  # fmt: skip


def validation_spread(settings, corpus: Path, folder: Path) -> dict:
    """Retrain the reference's best config (``launch.py best`` + ``train``), predict the
    validation rows with its saved model and bootstrap the val UAR over speakers."""
    import h5py

    from sermodels.data.demo import CATEGORIES, LABEL_COLUMNS
    from sermodels.inference.predict import predict
    from sermodels.specs import parse_ids
    from sweep.results import write_best

    (config,) = write_best(settings, 1)
    run = folder / "best_run"
    launch = [sys.executable, str(ROOT / "launch.py")]
    subprocess.run([*launch, "train", str(config), "--data", str(corpus), "--out", str(run)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    predictions = folder / "valid.csv"
    predict(run, corpus, predictions, folds=parse_ids(VALID_FOLDS, "valid"), progress=False)
    with predictions.open() as handle:
        rows = list(csv.DictReader(handle))
    index = np.array([int(row["input"]) for row in rows])
    y_pred = np.array([CATEGORIES.index(row["category"]) for row in rows])
    with h5py.File(corpus) as h5:
        labels = h5["label"][:]
    y_true = labels[index, LABEL_COLUMNS.index("category")].astype(int)
    speakers = labels[index, LABEL_COLUMNS.index("speaker")].astype(int)
    return speaker_bootstrap(y_true, y_pred, speakers, len(CATEGORIES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=REFERENCE_TRIALS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from sweep.runner import start_sweep

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_bench_corpus(Path(tmp) / "bench.h5")
        settings = bench_settings(Path(tmp) / "reference", corpus, samples=args.trials,
                                  name="reference", seed=REFERENCE_SEED, sampler="tpe",
                                  scheduler="fifo", stop_on_collapse=False)  # fmt: skip
        start_sweep(settings)
        trials = [
            {"params": t["params"], "state": t["state"],
             "best": max((r["objective"] for r in t["rows"]), default=None),
             "val_uar": [round(r.get("val_uar", float("nan")), 4) for r in t["rows"]]}
            for t in results_by_trial(settings)
        ]  # fmt: skip
        spread = validation_spread(settings, corpus, Path(tmp))
    finished = [t["best"] for t in trials if t["best"] is not None]
    payload = {"code_hash": code_hash(), "recorded": time.strftime("%Y-%m-%d"),
               "seconds": round(time.time() - started), "space": SPACE,
               "corpus": {"speakers": CORPUS_SPEAKERS, "per_speaker": PER_SPEAKER,
                          "seed": CORPUS_SEED, "valid_idx": VALID_FOLDS},
               "sampler": "tpe", "seed": REFERENCE_SEED, "trials": len(trials),
               "best_val_uar": round(max(finished), 4), "best_validation": spread,
               "runs": trials}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print_json({key: payload[key] for key in ("code_hash", "seconds", "trials",
                                              "best_val_uar", "best_validation")})  # fmt: skip


if __name__ == "__main__":
    main()
