"""Warm starts against cold starts: a demo sweep warm-started from a finished sweep of another
corpus, and the same sweep started cold, same budget, several seeds each.

* **Source**: one ``SOURCE_TRIALS``-trial sweep of the ``demo`` space as shipped on the
  benchmark corpus of ``bench/record_reference.py`` drawn with corpus seed 1 (other rows,
  other speakers than the compared sweeps'), sampler seed 100.
* **Compared**: for each seed 0-4, a ``TRIALS``-trial sweep on the benchmark corpus with
  corpus seed 0, ``cold`` (the shipped defaults) and ``warm`` (the same, with
  ``--warm-start`` from the source), sampler seed alike. Re-evaluation is off in both (it
  would re-evaluate the same way in both; this measures the search).
* **Quality of the pick**: the sweep's top trial by its objective, trained again on the
  held-out seeds of ``bench/record_reference.py`` (2000-2002); its mean settled quality
  (``bench/seed_runs.py``). **Failures among the first 8 trials**: trials stopped by a
  failure verdict or ended NaN (what TPE is told is infeasible), and trials labelled by any
  failure verdict, ``d_overpowers`` included.

Figures: per arm the mean with a 90 % bootstrap interval over seeds, and the paired
difference warm - cold (seed by seed) with its interval. Every sweep's trials and every
held-out run are kept in ``bench/histories/warm_start_runs.json``; without ``--record`` the
script replays that file (``cache_stale`` says whether the code changed since).

    .venv/bin/python bench/warm_start.py [--record [--seeds 5]]

Recording takes about 30 minutes on an idle 2-core CPU (about an hour beside other work); the
replay takes a second.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, bootstrap_spread, emit, finite, stale
from record_reference import HELD_OUT, bench_settings, code_hash, held_out_quality
from record_reference import write_bench_corpus as bench_corpus
from sweeps import results_by_trial

from sweep.settings import CLASSIFIER_STOPS

RUNS = ROOT / "bench" / "histories" / "warm_start_runs.json"
SOURCE_TRIALS, SOURCE_SEED, SOURCE_CORPUS = 24, 100, 1
TRIALS, FIRST = 12, 8
ARMS = ("cold", "warm")
FAILURES = (*CLASSIFIER_STOPS, "nan", "d_overpowers")


def run_sweep(
    out: Path, corpus: Path, name: str, samples: int, seed: int, warm_start: list[str]
) -> list[dict]:
    """One sweep; its own trials in the order they finished."""
    from sweep.runner import start_sweep

    settings = bench_settings(
        out, corpus, samples=samples, name=name, seed=seed, reeval_top=0, warm_start=warm_start
    )
    start_sweep(settings)
    trials = [
        t
        for t in results_by_trial(settings)
        if t["finished"] is not None and "inherited" not in t["attrs"]
    ]
    return [
        {
            "number": t["number"],
            "state": t["state"],
            "value": t["value"],
            "verdicts": [v["name"] for v in t["attrs"].get("verdicts", [])],
            "overrides": json.loads(t["attrs"]["overrides"]),
        }
        for t in sorted(trials, key=lambda t: t["finished"])
    ]


def record(seeds: int) -> dict:
    started, hashed = time.time(), code_hash()
    sweeps: dict[str, list] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        source_corpus = bench_corpus(Path(tmp) / "source.h5", seed=SOURCE_CORPUS)
        corpus = bench_corpus(Path(tmp) / "bench.h5")
        source = Path(tmp) / "source"
        source_trials = run_sweep(source, source_corpus, "source", SOURCE_TRIALS, SOURCE_SEED, [])
        print(f"source: {len(source_trials)} trials", file=sys.stderr, flush=True)
        for seed in range(seeds):
            for arm in ARMS:
                warm = [str(source)] if arm == "warm" else []
                trials = run_sweep(
                    Path(tmp) / f"{arm}{seed}", corpus, f"{arm}{seed}", TRIALS, seed, warm
                )
                pick = _pick(trials)
                held = held_out_quality(corpus, pick["overrides"], HELD_OUT) if pick else None
                sweeps[arm].append({"seed": seed, "trials": trials, "pick": pick, "held_out": held})
                print(
                    f"{arm} seed {seed}: pick {held and held['mean']}", file=sys.stderr, flush=True
                )
    payload = {
        "code_hash": hashed,
        "recorded": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started),
        "source_trials": source_trials,
        "trials": TRIALS,
        "sweeps": sweeps,
    }
    RUNS.write_text(json.dumps(payload, separators=(",", ":")))
    return payload


def _pick(trials: list[dict]) -> dict | None:
    complete = [t for t in trials if t["state"] == "COMPLETE" and finite(t["value"])]
    return max(complete, key=lambda t: t["value"]) if complete else None


def failures(trials: list[dict], verdicts: tuple[str, ...]) -> int:
    """How many of the first ``FIRST`` trials (by completion) reached one of ``verdicts``."""
    return sum(bool(set(t["verdicts"]) & set(verdicts)) for t in trials[:FIRST])


def figures(payload: dict) -> dict:
    rng = np.random.default_rng(0)
    per_seed = {
        arm: [
            {
                "seed": s["seed"],
                "quality": s["held_out"]["mean"] if s["held_out"] else math.nan,
                "stopped_first8": failures(s["trials"], (*CLASSIFIER_STOPS, "nan")),
                "labelled_first8": failures(s["trials"], FAILURES),
            }
            for s in payload["sweeps"][arm]
        ]
        for arm in ARMS
    }
    result = {}
    for key in ("quality", "stopped_first8", "labelled_first8"):
        cold = [row[key] for row in per_seed["cold"]]
        warm = [row[key] for row in per_seed["warm"]]
        paired = [w - c for w, c in zip(warm, cold, strict=True)]
        result[key] = {
            "cold": bootstrap_spread(cold, rng),
            "warm": bootstrap_spread(warm, rng),
            "warm_minus_cold": bootstrap_spread(paired, rng),
        }
    return {**result, "per_seed": per_seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="run the sweeps (about an hour)")
    parser.add_argument("--seeds", type=int, default=5, help="sweeps per arm (--record)")
    args = parser.parse_args()
    payload = record(args.seeds) if args.record else json.loads(RUNS.read_text())
    is_stale = stale(
        payload["code_hash"],
        code_hash(),
        "the warm-start runs (rerun bench/warm_start.py --record)",
    )
    inherited = sum(t["state"] in ("COMPLETE", "PRUNED") for t in payload["source_trials"])
    emit(
        {
            "benchmark": "warm_start",
            "cache_stale": is_stale,
            "recorded": payload["recorded"],
            "source_trials": len(payload["source_trials"]),
            "inherited": inherited,
            "trials": payload["trials"],
            "seeds": len(payload["sweeps"]["cold"]),
            **figures(payload),
        }
    )


if __name__ == "__main__":
    main()
