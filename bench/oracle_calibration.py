"""Can the oracle tell a failed SGAN game from a healthy one at the budgets a 2-core CPU
gives? Measured on the calibration space only (docs/collapse.md, *Judged by an oracle*).

Each seed draws one configuration from the space (Optuna's random sampler, that seed) and
trains it as drawn (the *control*) and with one game failure forced on the same draw and
seed (the *cases*): G frozen from the start, D frozen from epoch ``ONSET``, or one side's
learning rate divided by 10, 30 or 100 from ``ONSET`` on (the other side then wins). After
every epoch the oracle (``bench/oracle.py``) judges 256 generated samples against held-out
real rows, beside the run's own validation UAR; nothing the detector reads is used.

The figures: for each oracle measure, how well its mean over the last three epochs separates
the cases from the controls (ROC AUC; 0.5 is chance), the same for validation UAR, and the
reference an independent sample of real rows reaches; plus the oracle's cost per epoch.

    .venv/bin/python bench/oracle_calibration.py            # replay the recorded runs
    .venv/bin/python bench/oracle_calibration.py --record   # train them (10-18 min, 2-core CPU)

Prints one JSON object on its last line; ``cache_stale`` says the recorded runs came from
other code (``bench/record_histories.py``'s hash of the model code plus this script and the
oracle).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from common import ROOT, emit, stale

OUT = ROOT / "bench" / "histories" / "oracle_calibration.json"
ONSET = 3  # the first epoch a forced failure acts on (G frozen from the start: epoch 1)
EPOCHS = 10
MEASURES = ("coverage", "density", "kid", "recognised")
CASES = {  # name -> (optimizer whose learning rate changes, factor, first epoch)
    "control": (None, 1.0, None),
    "freeze_g_start": ("g", 0.0, 1),
    "freeze_d_after": ("d", 0.0, ONSET),
    "slow_g_10": ("g", 0.1, ONSET),
    "slow_g_30": ("g", 1 / 30, ONSET),
    "slow_g_100": ("g", 0.01, ONSET),
    "slow_d_10": ("d", 0.1, ONSET),
    "slow_d_30": ("d", 1 / 30, ONSET),
    "slow_d_100": ("d", 0.01, ONSET),
}
CALIBRATION_CASES = ("control", "freeze_g_start", "freeze_d_after", "slow_g_100", "slow_d_100")


def code_hash() -> str:
    """What the recorded runs depend on: the model code (``record_histories.model_code_hash``),
    the oracle, and what this script trains (its cases and recording code; not the figures
    it computes from them), each as definitions (not layout, comments or docstrings)."""
    from record_histories import function_definitions, model_code_hash, module_definitions

    digest = hashlib.sha256(model_code_hash().encode())
    oracle = module_definitions([ROOT / "bench" / "oracle.py"])
    for definition in [*oracle, *function_definitions([record, _plain])]:
        digest.update(definition.encode())
    digest.update(json.dumps([CASES, EPOCHS, ONSET], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def record(spec: dict, data: str) -> dict:
    """Train one run of ``spec`` (space, seed, case) and judge it with the oracle each epoch."""
    import numpy as np
    from oracle import SAMPLES, Oracle, density_coverage, kernel_distance
    from record_histories import random_overrides

    from search_spaces import load_space
    from sermodels.backend import configure_threads
    from sermodels.config import config_from_dict
    from sermodels.data import load_run_corpus
    from sermodels.errors import SersweepError
    from sermodels.training.run import make_run

    configure_threads(1)
    space = load_space(spec["space"])
    overrides = random_overrides(space, spec["seed"])
    overrides["train.seed"] = spec["seed"]
    mapping = space.run_config(overrides, max_epochs=EPOCHS)
    mapping["train"].update({"patience": 0, "save_img_interval": 0, "save_models": False})
    try:
        config = config_from_dict(mapping, spec["space"])
        corpus = load_run_corpus(config, data)
        run = make_run(config, corpus, None)
    except SersweepError as exc:  # a drawn combination the models reject, as in a sweep
        return {**spec, "invalid": str(exc), "reference": None, "history": []}
    train, valid = corpus.train, corpus.valid
    labels = train.labels[:, run.task.column].astype(int)
    labels[~train.labelled] = -1
    oracle = Oracle(train.features, labels, seed=0)
    rng = np.random.default_rng(0)
    held = rng.choice(len(valid), min(SAMPLES, len(valid)), replace=False)
    held_out = oracle.embed({k: v[np.sort(held)] for k, v in valid.features.items()})
    other = rng.choice(len(train), min(SAMPLES, len(train)), replace=False)
    real = oracle.embed({k: v[np.sort(other)] for k, v in train.features.items()})
    reference = {**density_coverage(held_out, real), "kid": kernel_distance(held_out, real)}
    side, factor, first = CASES[spec["case"]]
    history = []
    for epoch in range(1, EPOCHS + 1):
        if side and epoch == first:
            optimizer = run.gan.g_optimizer if side == "g" else run.gan.d_optimizer
            optimizer.learning_rate = float(np.asarray(optimizer.learning_rate)) * factor
        metrics = run.step_epoch()
        started = time.perf_counter()
        judged = oracle.judge(run.gan.generate(SAMPLES, seed=1), held_out)
        judged["oracle_seconds"] = time.perf_counter() - started
        judged["val_uar"] = metrics.get("val_uar")
        judged["epoch_seconds"] = metrics.get("epoch_seconds")
        history.append({k: _plain(v) for k, v in judged.items()})
        if metrics.get("nonfinite"):
            break
    return {**spec, "reference": reference, "history": history}


def figures(payload: dict) -> dict:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    runs = [run for run in payload["runs"] if run["history"]]
    out = {
        "benchmark": "oracle_calibration",
        "space": payload["space"],
        "seeds": payload["seeds"],
        "epochs": payload["epochs"],
    }
    last3 = {m: {} for m in (*MEASURES, "val_uar")}
    for run in runs:
        for measure in last3:
            values = [row[measure] for row in run["history"][-3:]]
            values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            last3[measure][(run["case"], run["seed"])] = statistics.mean(values) if values else None
    separation = {}
    for case in sorted({r["case"] for r in runs} - {"control"}):
        separation[case] = {}
        for measure, values in last3.items():
            pairs = [
                (values[(case, s)], values[("control", s)])
                for s in payload["seeds"]
                if values.get((case, s)) is not None and values.get(("control", s)) is not None
            ]
            if not pairs:
                separation[case][measure] = None
                continue
            scores = [p[0] for p in pairs] + [p[1] for p in pairs]
            truth = [1] * len(pairs) + [0] * len(pairs)
            auc = roc_auc_score(truth, scores) if len(set(scores)) > 1 else 0.5
            separation[case][measure] = round(max(auc, 1 - auc), 3)  # either direction
    out["separation_auc"] = separation
    # what max(AUC, 1 - AUC) reaches by chance with as many pairs: its 90th percentile over
    # random scores (the separation above counts either direction, so chance is above 0.5)
    pairs = len(payload["seeds"])
    rng = np.random.default_rng(0)
    chance = []
    for _ in range(2000):
        auc = roc_auc_score([1] * pairs + [0] * pairs, rng.random(2 * pairs))
        chance.append(max(auc, 1 - auc))
    out["chance_auc_90"] = round(float(np.percentile(chance, 90)), 3)
    out["controls_last3"] = {
        m: _spread([v for (c, _), v in vals.items() if c == "control"]) for m, vals in last3.items()
    }
    out["real_reference"] = {
        m: _spread([r["reference"][m] for r in runs]) for m in ("coverage", "density", "kid")
    }
    by_case = separation.values()
    out["best_sample_auc"] = max(
        v for case in by_case for m, v in case.items() if m in MEASURES and v is not None
    )
    out["best_val_uar_auc"] = max(case["val_uar"] for case in by_case if case["val_uar"])
    out["kid_over_real"] = round(
        out["controls_last3"]["kid"]["median"] / out["real_reference"]["kid"]["median"]
    )
    costs = [
        row["oracle_seconds"] / row["epoch_seconds"]
        for r in runs
        for row in r["history"]
        if row.get("epoch_seconds")
    ]
    out["oracle_cost_share"] = round(statistics.median(costs), 3) if costs else None
    out["oracle_seconds"] = round(
        statistics.median(row["oracle_seconds"] for r in runs for row in r["history"]), 3
    )
    return out


def _spread(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="train the runs (else replay)")
    parser.add_argument("--space", default="demo")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--cases", default=",".join(CALIBRATION_CASES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.record:
        unknown = set(args.cases.split(",")) - set(CASES)
        if unknown:
            print(
                f"error: --cases: unknown {sorted(unknown)}; known: {sorted(CASES)}",
                file=sys.stderr,
            )
            sys.exit(2)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from sermodels.data.demo import write_demo_corpus

        specs = [
            {"space": args.space, "seed": seed, "case": case}
            for seed in range(args.seeds)
            for case in args.cases.split(",")
        ]
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            data = str(write_demo_corpus(Path(tmp) / "demo.h5", progress=False))
            context = get_context("spawn")
            with ProcessPoolExecutor(
                args.workers, mp_context=context, max_tasks_per_child=1
            ) as pool:
                runs = list(pool.map(record, specs, [data] * len(specs)))
        payload = {
            "code_hash": code_hash(),
            "recorded": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()}-core CPU",
            "space": args.space,
            "seeds": list(range(args.seeds)),
            "epochs": EPOCHS,
            "seconds": round(time.perf_counter() - started),
            "runs": runs,
        }
        args.out.write_text(json.dumps(payload, separators=(",", ":")))
    if not args.out.is_file():
        print(f"error: {args.out}: not recorded; run with --record", file=sys.stderr)
        sys.exit(2)
    payload = json.loads(args.out.read_text())
    is_stale = stale(payload["code_hash"], code_hash(), f"{args.out.name} (rerun with --record)")
    result = {
        **figures(payload),
        "cache_stale": is_stale,
        "recorded": payload["recorded"],
        "record_seconds": payload["seconds"],
    }
    emit(result)


if __name__ == "__main__":
    main()
