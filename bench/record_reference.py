"""Record the reference search that ``bench/search_efficiency.py`` takes its target from
(``bench/histories/reference_search.json``), with a hash of the code it was recorded with.

The target of a search-efficiency figure must not come from the methods it compares, nor
from one lucky run. So this script:

* writes the **benchmark corpus**: the demo corpus's generator with 128 speakers instead of
  12. Speakers 0-11 are the demo corpus's own (same seed, same draws), so training (speakers
  4-9), test (0, 1) and unlabelled rows (10, 11) are the demo's; validation is speakers 2, 3
  and 12-127: 118 speakers, 4,720 rows, where the demo has 2 speakers and 80 rows;
* runs a **long reference search** as shipped: the ``demo`` space (its epoch budget and
  reduction), multivariate TPE seeded apart from every compared sweep, collapse stopping,
  ``REFERENCE_TRIALS`` trials, and the leaders re-evaluated on fresh seeds at the end;
* trains the reference's **pick** again on ``HELD_OUT`` seeds no selection saw; the target
  is their mean settled quality (``bench/seed_runs.py``: the mean val UAR of the budget's
  last three epochs), with its spread.

    .venv/bin/python bench/record_reference.py [--trials 64]

Takes about 20 minutes on a 2-core CPU. ``bench/search_efficiency.py`` says when the code the
file was recorded with has changed since (``code_hash``: what the model library's training
code, the sweep package and this script define, and the demo space).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, emit
from record_histories import library_definitions, module_definitions, package_definitions
from sweeps import results_by_trial

from search_spaces import load_space
from sweep.settings import SweepSettings

OUT = ROOT / "bench" / "histories" / "reference_search.json"
CORPUS_SPEAKERS = 128
PER_SPEAKER = 40
CORPUS_SEED = 0  # the demo corpus's seed: speakers 0-11 are the demo's own rows
VALID_FOLDS = "2,3,12:127"
SPACE = "demo"
REFERENCE_TRIALS = 64
REFERENCE_SEED = 1000  # the compared sweeps use seeds 0, 1, 2, ...
HELD_OUT = [2000, 2001, 2002]  # seeds no selection sees (re-evaluation uses the trial's + 1000..)


def code_hash() -> str:
    """What the reference and the sweeps compared with it run, as definitions
    (:func:`record_histories.package_definitions`: not layout, comments, docstrings or type
    hints): the model library's training code, the sweep package (sampler, trainable,
    verdicts, re-evaluation), this script, and the demo space as parsed (its description
    left out)."""
    import yaml

    digest = hashlib.sha256()
    parts = [
        *library_definitions(),
        *package_definitions("sweep"),
        *module_definitions([Path(__file__).resolve()]),
    ]
    for part in parts:
        digest.update(part.encode())
    space = yaml.safe_load((ROOT / "search_spaces" / f"{SPACE}.yaml").read_text())
    space.pop("description", None)
    digest.update(json.dumps(space, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def write_bench_corpus(path: Path, seed: int = CORPUS_SEED) -> Path:
    """The benchmark corpus (see the module docstring)."""
    from sermodels.data.demo import write_demo_corpus

    return write_demo_corpus(
        path, n_speakers=CORPUS_SPEAKERS, per_speaker=PER_SPEAKER, seed=seed, progress=False
    )


def bench_settings(out: Path, corpus: Path, **search) -> SweepSettings:
    """A sweep of the demo space on the benchmark corpus, validated on ``VALID_FOLDS``."""
    return SweepSettings(
        out=str(out),
        space=SPACE,
        data=str(corpus),
        concurrency=2,
        num_cpus=2,
        base_settings={"data.valid_idx": VALID_FOLDS},
        **search,
    )


def held_out_quality(corpus: Path, overrides: dict, seeds: list[int]) -> dict:
    """A configuration trained on ``seeds`` no selection saw: each seed's settled quality,
    their mean and SD."""
    from seed_runs import quality, train_histories

    histories = train_histories(
        str(corpus), [{"overrides": overrides, "seed": s} for s in seeds], VALID_FOLDS
    )
    budget = load_space(SPACE).max_epochs
    values = [round(quality(h, budget), 4) for h in histories]
    return {
        "seeds": seeds,
        "values": values,
        "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=REFERENCE_TRIALS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from sweep.results import load_study, reevaluated, top_trials
    from sweep.runner import start_sweep

    started = time.time()
    hashed = code_hash()  # the code the reference runs with, read before it runs
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_bench_corpus(Path(tmp) / "bench.h5")
        settings = bench_settings(
            Path(tmp) / "reference",
            corpus,
            samples=args.trials,
            name="reference",
            seed=REFERENCE_SEED,
        )
        start_sweep(settings)
        study = load_study(settings)
        (pick,) = top_trials(settings, 1, study)
        overrides = json.loads(pick.user_attrs["overrides"])
        held_out = held_out_quality(corpus, overrides, HELD_OUT)
        trials = [
            {
                "number": t["number"],
                "params": t["params"],
                "state": t["state"],
                "verdict": t["attrs"].get("verdict"),
                "objective": t["value"],
                "val_uar": [round(r.get("val_uar", float("nan")), 4) for r in t["rows"]],
            }
            for t in results_by_trial(settings)
        ]
        reeval = reevaluated(study)
    payload = {
        "code_hash": hashed,
        "recorded": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started),
        "space": SPACE,
        "reduce": str(load_space(SPACE).reduce),
        "corpus": {
            "speakers": CORPUS_SPEAKERS,
            "per_speaker": PER_SPEAKER,
            "seed": CORPUS_SEED,
            "valid_idx": VALID_FOLDS,
        },
        "sampler": "tpe",
        "seed": REFERENCE_SEED,
        "trials": len(trials),
        "pick": {
            "optuna_trial": pick.number,
            "sweep_objective": pick.value,
            "reeval": reeval.get(pick.number),
            "overrides": overrides,
            "held_out": held_out,
        },
        "target": held_out["mean"],
        "runs": trials,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    emit({key: payload[key] for key in ("code_hash", "seconds", "trials", "target")})


if __name__ == "__main__":
    main()
