"""How right the collapse detector is, out of sample: the shipped defaults replayed, epoch by
epoch as a sweep's trial judges itself, on recorded SGAN histories
(``bench/histories/sgan_runs.json``, written by ``bench/record_histories.py``).

Figures are reported on the **evaluation** set (every shipped SGAN space, seeds the
thresholds never saw) with the **calibration** set's (the demo space) beside them. Ground
truth never comes from the detector's signals:

* *mechanism cases*: the failure was forced from a known epoch (the onset) and the mechanism
  names its mode; healthy controls had nothing forced. The figures come for all cases
  (``mechanism``), for the game failures the detector has to judge (``game``: a side's
  learning rate set to 0) and for those whose signal the mechanism writes itself
  (``by_construction``: a NaN row, G's noise cut, rates x 1e4), each beside every control,
  with 90 % Wilson intervals for precision and recall. A run's *call* is its deciding
  verdict under the space's shipped stop list (what a sweep names it; ``healthy`` when it
  reached none). Precision: runs called failed in their mechanism's mode / runs called
  failed; recall: mechanism runs called in their mode / mechanism runs (runaway learning
  rates force a failure without fixing its name: any failure verdict is right for them);
  delay: verdict epoch - onset (median). ``reached`` counts a mode as found when it is among
  every verdict the run reached, not only the deciding one.
* *outcome evaluation*: random draws from each space trained to their whole budget with
  nothing stopped; their ground truth is the full-budget objective. Replaying the shipped
  defaults on them gives (a) how many of the best 10 % of draws (per space) the sweep would
  have stopped, (b) the share of epochs saved on the worse half (per space), (c) regret: the
  best objective among the draws a sweep keeps (neither stopped nor non-finite) against the
  best of all.

Also: how well the two diversity measures separate a generator that cannot vary from
healthy ones (ROC AUC over epochs from the onset on, calibration set), and what they cost
(``diversity_seconds`` / ``epoch_seconds``, median over every recorded epoch).

Prints one JSON object on its last line; ``cache_stale`` is true (and a line on stderr says
so) when the model code, the spaces or the recorder changed since the histories were
recorded: rerun ``bench/record_histories.py`` (about 35 minutes on a 2-core CPU).

    .venv/bin/python bench/detector_accuracy.py [--histories FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

from common import emit, stale, wilson_interval
from record_histories import OUT, code_hash
from sklearn.metrics import roc_auc_score

from sweep.collapse import FAILURES, HEALTHY, NAN, CollapseDetector, deciding_verdict
from sweep.settings import default_stop_verdicts

ANY_FAILURE = "failed"
ALTERNATIVES = {
    "shipped": {},
    "warmup=2": {"warmup": 2},
    "patience=2": {"patience": 2},
    "patience=4": {"patience": 4},
}
# the failures the detector has to judge: one side of the game stops learning
GAME = ("freeze_d", "freeze_g")
# failures whose signal the mechanism writes itself (a NaN row, a zeroed noise input, rates
# that zero every gradient): right by construction, so never in the headline
BY_CONSTRUCTION = ("nan_row", "cut_noise", "runaway_lr")


def load_runs(path: Path) -> dict:
    payload = json.loads(path.read_text())
    for run in payload["runs"]:
        run["history"] = [{k: _number(v) for k, v in row.items()} for row in run["history"]]
    return payload


def _number(value):
    return float(value) if isinstance(value, str) else value  # NaN / inf are stored as text


def replay(run: dict, detector: CollapseDetector) -> dict:
    """The run judged as a sweep's trial would judge itself after every epoch: the epoch it
    would stop at (None: never), its deciding verdict then, and every verdict it reached."""
    stopping = tuple(default_stop_verdicts(run["objective"]))
    history = run["history"]
    for epoch in range(1, len(history) + 1):
        reached = detector.verdicts(history[:epoch])
        verdict = deciding_verdict(reached, stopping)
        if verdict.name in stopping:
            return {"stop_epoch": epoch, "verdict": verdict, "reached": reached}
    reached = detector.verdicts(history)
    return {"stop_epoch": None, "verdict": deciding_verdict(reached, stopping), "reached": reached}


def mechanism_figures(runs: list[dict], detector: CollapseDetector) -> dict:
    judged = []
    for run in runs:
        outcome = replay(run, detector)
        called = outcome["verdict"].name
        label = run["label"]
        right = called != HEALTHY and (called == label or label == ANY_FAILURE)
        found = [v for v in outcome["reached"] if v.name == label or label == ANY_FAILURE]
        judged.append(
            {
                "space": run["space"],
                "mechanism": run["mechanism"] or "control",
                "label": label,
                "called": called,
                "reached": [v.name for v in outcome["reached"]],
                "right": right,
                "found": bool(found),
                "delay": outcome["verdict"].epoch - run["onset"] if right else None,
                "reached_delay": found[0].epoch - run["onset"] if found else None,
            }
        )
    called_failed = [j for j in judged if j["called"] != HEALTHY]
    forced = [j for j in judged if j["label"] != HEALTHY]
    right_calls = sum(j["right"] for j in called_failed)
    caught = sum(j["right"] for j in forced)
    per_mode = {}
    for mode in (*FAILURES, ANY_FAILURE):
        labelled = [j for j in forced if j["label"] == mode]
        called = [j for j in called_failed if j["called"] == mode]
        if not labelled and not called:
            continue
        per_mode[mode] = {
            "runs": len(labelled),
            "recall": _share(sum(j["right"] for j in labelled), len(labelled)),
            # a run whose forced failure has no fixed name is right in any failure mode
            "precision": _share(sum(j["label"] in (mode, ANY_FAILURE) for j in called), len(called))
            if mode != ANY_FAILURE
            else None,
            "median_delay": _median([j["delay"] for j in labelled]),
            "recall_reached": _share(sum(j["found"] for j in labelled), len(labelled)),
        }
    return {
        "runs": len(judged),
        "forced": len(forced),
        "controls": len(judged) - len(forced),
        "precision": _share(right_calls, len(called_failed)),
        "precision_90": wilson_interval(right_calls, len(called_failed)),
        "recall": _share(caught, len(forced)),
        "recall_90": wilson_interval(caught, len(forced)),
        "median_delay": _median([j["delay"] for j in forced]),
        "controls_called_failed": sum(j["label"] == HEALTHY != j["called"] for j in judged),
        "per_mode": per_mode,
        "calls": dict(Counter(f"{j['mechanism']}->{j['called']}" for j in judged)),
    }


def outcome_figures(runs: list[dict], detector: CollapseDetector) -> dict:
    """Random draws per space: what replaying the shipped defaults keeps and saves."""
    by_space: dict[str, list] = {}
    for run in runs:
        outcome = replay(run, detector)
        values = [_objective(run["objective"], row) for row in run["history"]]
        finite = [v for v in values if math.isfinite(v)]
        went_nan = any(v.name == NAN for v in outcome["reached"])
        by_space.setdefault(run["space"], []).append(
            {
                "full": max(finite) if finite and not went_nan else -math.inf,
                "epochs": len(run["history"]),
                "stop_epoch": outcome["stop_epoch"],
                "kept": outcome["stop_epoch"] is None and not went_nan,
                "verdict": outcome["verdict"].name,
            }
        )
    top_stopped = 0
    top_count = 0
    saved = 0
    worse_epochs = 0
    regrets = {}
    for space, draws in by_space.items():
        ranked = sorted(draws, key=lambda d: d["full"], reverse=True)
        top = ranked[: max(1, math.ceil(0.1 * len(ranked)))]
        top_count += len(top)
        top_stopped += sum(d["stop_epoch"] is not None for d in top)
        for draw in ranked[len(ranked) - len(ranked) // 2 :]:  # the worse half
            worse_epochs += draw["epochs"]
            if draw["stop_epoch"] is not None:
                saved += draw["epochs"] - draw["stop_epoch"]
        kept = [d["full"] for d in draws if d["kept"]]
        best = ranked[0]["full"]
        regrets[space] = round(best - max(kept), 4) if kept and math.isfinite(best) else None
    return {
        "draws": len(runs),
        "top_10pct_stopped": top_stopped,
        "top_10pct_draws": top_count,
        "worse_half_epochs_saved": _share(saved, worse_epochs),
        "regret_per_space": regrets,
        "verdicts": dict(Counter(d["verdict"] for ds in by_space.values() for d in ds)),
        "stopped": sum(d["stop_epoch"] is not None for ds in by_space.values() for d in ds),
    }


def diversity_auc(runs: list[dict], onset: int) -> dict:
    """ROC AUC of each diversity measure for "G cannot vary" against healthy controls, over
    every epoch from the onset on (higher: the measure separates them better)."""
    labels, ratio_scores, ndb_scores = [], [], []
    for run in runs:
        if run["mechanism"] not in ("cut_noise", None) or run["kind"] == "random":
            continue
        for row in run["history"][onset - 1 :]:
            ratio, ndb = row.get("diversity"), row.get("ndb")
            if not all(isinstance(v, float) and math.isfinite(v) for v in (ratio, ndb)):
                continue
            labels.append(int(run["mechanism"] == "cut_noise"))
            ratio_scores.append(-ratio)  # low ratio: collapsed
            ndb_scores.append(ndb)  # many different bins: collapsed
    if len(set(labels)) < 2:
        return {"distance_ratio": None, "ndb": None, "epochs": len(labels)}
    return {
        "distance_ratio": round(roc_auc_score(labels, ratio_scores), 3),
        "ndb": round(roc_auc_score(labels, ndb_scores), 3),
        "epochs": len(labels),
    }


def diversity_cost(runs: list[dict]) -> float | None:
    rows = [row for run in runs for row in run["history"]]
    shares = [
        r["diversity_seconds"] / r["epoch_seconds"]
        for r in rows
        if r.get("diversity_seconds") and r.get("epoch_seconds")
    ]
    return round(statistics.median(shares), 3) if shares else None


def alternatives(runs: list[dict]) -> dict:
    """The shipped detector beside one setting changed at a time, on the calibration set's
    cases (where settings may be chosen): the headline figures and how many controls each
    calls failed."""
    cases = [r for r in runs if r["set"] == "calibration" and r["kind"] != "random"]
    compared = {}
    for name, settings in ALTERNATIVES.items():
        judged = mechanism_figures(cases, CollapseDetector(**settings))
        kept = ("precision", "recall", "median_delay", "controls_called_failed")
        compared[name] = {key: judged[key] for key in kept}
    return compared


def _objective(metric: str, row: dict) -> float:
    if metric == "diversity_score":  # as the trainable computes it
        diversity = row.get("diversity")
        ok = isinstance(diversity, float) and math.isfinite(diversity) and diversity > 0
        return min(diversity, 1.0 / diversity) if ok else -math.inf
    value = row.get(metric)
    return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None  # undefined, not 0, without cases


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=Path, default=OUT)
    args = parser.parse_args()
    if not args.histories.is_file():
        print(
            f"error: {args.histories}: no recorded histories; run bench/record_histories.py",
            file=sys.stderr,
        )
        sys.exit(2)
    payload = load_runs(args.histories)
    is_stale = stale(
        payload["code_hash"],
        code_hash(),
        f"{args.histories.name} (rerun bench/record_histories.py)",
    )
    detector = CollapseDetector()
    figures = {
        "benchmark": "detector_accuracy",
        "cache_stale": is_stale,
        "recorded": payload["recorded"],
        "epochs": payload["epochs"],
    }
    for set_name in ("evaluation", "calibration"):
        runs = [r for r in payload["runs"] if r["set"] == set_name]
        cases = [r for r in runs if r["kind"] in ("mechanism", "control")]
        controls = [r for r in cases if r["kind"] == "control"]
        figures[set_name] = {
            "spaces": sorted({r["space"] for r in runs}),
            "mechanism": mechanism_figures(cases, detector),
            "game": mechanism_figures(
                [r for r in cases if r["mechanism"] in GAME] + controls, detector
            ),
            "by_construction": mechanism_figures(
                [r for r in cases if r["mechanism"] in BY_CONSTRUCTION] + controls, detector
            ),
            "diversity_auc": diversity_auc(runs, payload["onset"]),
        }
        drawn = [r for r in runs if r["kind"] == "random"]
        if drawn:
            figures[set_name]["outcome"] = outcome_figures(drawn, detector)
    figures["diversity_cost_share"] = diversity_cost(payload["runs"])
    figures["alternatives"] = alternatives(payload["runs"])
    emit(figures)


if __name__ == "__main__":
    main()
