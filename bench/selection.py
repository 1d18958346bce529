"""How well a sweep picks: each reduction of a trial's epochs, and the leaders re-evaluated on
fresh seeds, replayed on configurations whose quality is known from other seeds
(``bench/histories/selection_runs.json``, written by ``bench/record_selection.py``).

Every configuration was trained with several seeds (8 on the calibration corpus, 16 on the
evaluation corpus, whose truth is what is reported). In each of ``REPLICATES`` role draws (a
fixed random permutation of a configuration's seeds per draw), one seed plays the sweep's
trial, three play the re-evaluation's fresh seeds and the rest are held out. Ground truth
comes from the held-out seeds only, never from a run the selection read:

* **retrained quality** ``T(c)``: the mean over held-out seeds of the validation UAR of the
  last three epochs of the budget (where the configuration settles; a run that ended on a
  non-finite value counts at chance, 1/4).

The sweep's trial is judged as a sweep judges it (the shipped collapse detector replayed
epoch by epoch, the shipped stop list): a trial it would stop, or one that went NaN, cannot
be picked. Per method, over the configurations of one corpus:

* **gap** (winner's curse): the pick's own estimate (its single-run objective, or its
  re-evaluated mean) minus ``T(pick)``;
* **spearman**: rank correlation of the method's estimate with ``T`` over the pickable
  configurations (re-evaluation: the 3-seed mean of every configuration);
* **regret**: the best ``T`` among all configurations minus ``T(pick)``.

Beside them, three references: the shipped reduction and pick rule with ``K`` leaders
(``WIDER_TOP``) re-evaluated on 1 to 3 seeds each (``reeval:topKxS``: what more leaders or
seeds would buy); every configuration known by its 4 seeds outside the truth with the best
mean picked (``EVERY_CONFIG``: as good a pick as the table allows, so its regret shows how
much of any method's regret the truth's own noise makes); and, on a corpus with
``MORE_SEEDS_NEED`` seeds per configuration, the leaders re-evaluated on 1 to
``MORE_SEEDS`` seeds, all judged on one truth of the seeds left (``one_truth:topKxS``: more
seeds without a noisier truth).

Each figure is the mean over role draws with its 5-95 % interval. A sweep ships with the
leaders' re-evaluation on, so the shipped pair (reduction, re-evaluation pick rule: best
mean, or best mean - 1 SE) is the pair whose sweep-then-re-evaluation has the lowest mean
regret on the **calibration** corpus (ties: the higher Spearman); the **evaluation** corpus
(other configurations, another corpus seed) reports it, with the reduction's single-run
figures (re-evaluation off) beside and the targets: gap <= 0.02, Spearman >= 0.8,
regret <= 0.01.

Prints one JSON object on its last line; ``cache_stale`` is true when the code the runs were
recorded with has changed (rerun ``bench/record_selection.py``).

    .venv/bin/python bench/selection.py [--runs FILE] [--replicates 500]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np
from common import emit, stale
from record_selection import OUT, code_hash
from scipy.stats import spearmanr

from search_spaces.objective import DEFAULT_REDUCE, Reduction
from sweep.collapse import NAN, CollapseDetector, deciding_verdict
from sweep.settings import default_stop_verdicts

REDUCTIONS = ("best", "last", "mean_last:3", "smoothed:3")
PICK_RULES = ("mean", "mean_minus_se")
REEVAL_TOP, REEVAL_SEEDS = 3, 3
REPLICATES = 500
WIDER_TOP = (1, 3, 6, 12, 24)  # leaders re-evaluated, beside the shipped 3
# every configuration known by all the seeds outside the truth (the trial's and the
# re-evaluation's), the best mean picked: about as good a pick as this table can make, so its
# regret shows how much of every method's the truth's own noise makes
EVERY_CONFIG = "every_config_4_seeds"
# more re-evaluation seeds than the shipped 3, on a corpus recorded with enough seeds for them
# and a truth of 9 beside: the shipped 3 leaders, and every configuration re-evaluated
MORE_SEEDS, MORE_SEEDS_TOP = 6, (REEVAL_TOP, 24)
MORE_SEEDS_NEED = 1 + MORE_SEEDS + 9
CHANCE = 0.25  # 4 classes
SETTLED = 3  # epochs of the budget's end that make a run's quality
TARGETS = {"gap": 0.02, "spearman": 0.8, "regret": 0.01}


def load(path: Path) -> dict:
    payload = json.loads(path.read_text())
    configs: dict[str, dict[int, dict[int, dict]]] = {}
    for run in payload["runs"]:
        run["history"] = [{k: _number(v) for k, v in row.items()} for row in run["history"]]
        configs.setdefault(run["set"], {}).setdefault(run["config"], {})[run["seed"]] = run
    payload["by_set"] = configs
    return payload


def _number(value):
    return float(value) if isinstance(value, str) else value


def curve(run: dict) -> list[float]:
    return [row.get("val_uar", math.nan) for row in run["history"]]


def quality(run: dict, budget: int) -> float:
    """A held-out run's settled quality: mean val UAR of the budget's last epochs."""
    values = curve(run)
    if len(values) < budget or not all(math.isfinite(v) for v in values[-SETTLED:]):
        return CHANCE
    return statistics.fmean(values[-SETTLED:])


def stopped_at(run: dict, detector: CollapseDetector, stopping: tuple[str, ...]) -> int | None:
    """The epoch after which a sweep would end the run on a verdict of the stop list or NaN
    (the trial judges itself after every epoch); ``None`` when it never would."""
    history = run["history"]
    for epoch in range(1, len(history) + 1):
        verdict = deciding_verdict(detector.verdicts(history[:epoch]), stopping)
        if verdict.name in stopping or verdict.name == NAN:
            return epoch
    return None


def pickable(run: dict, detector: CollapseDetector, stopping: tuple[str, ...]) -> bool:
    """Whether a sweep would keep the run as a COMPLETE trial: never stopped by a verdict of
    the stop list, never NaN."""
    return stopped_at(run, detector, stopping) is None


def prepare(configs: dict[int, dict[int, dict]], budget: int) -> dict:
    """Per configuration and seed: its val UAR curve, settled quality and pickability."""
    detector = CollapseDetector()
    stopping = tuple(default_stop_verdicts("val_uar"))
    return {
        config: {
            seed: {
                "curve": curve(run),
                "quality": quality(run, budget),
                "pickable": pickable(run, detector, stopping),
            }
            for seed, run in seeds.items()
        }
        for config, seeds in configs.items()
    }


def replicate(runs: dict, rng: np.random.Generator) -> dict:
    """One role draw: per method, (gap, spearman, regret)."""
    orders = {config: list(rng.permutation(sorted(seeds))) for config, seeds in runs.items()}
    roles = {
        c: (order[0], order[1 : 1 + REEVAL_SEEDS], order[1 + REEVAL_SEEDS :])
        for c, order in orders.items()
    }
    truth = {c: statistics.fmean(runs[c][s]["quality"] for s in roles[c][2]) for c in runs}
    best_truth = max(truth.values())
    figures = {}
    for text in REDUCTIONS:
        reduction = Reduction.parse(text)
        estimate = {
            c: reduction.reduce(runs[c][roles[c][0]]["curve"])[0]
            for c in runs
            if runs[c][roles[c][0]]["pickable"]
        }
        estimate = {c: v for c, v in estimate.items() if math.isfinite(v)}
        if not estimate:
            continue
        pick = max(estimate, key=estimate.get)
        figures[text] = _figures(estimate, truth, pick, best_truth)
        leaders = sorted(estimate, key=estimate.get, reverse=True)[:REEVAL_TOP]
        means = {c: _seed_values(runs, roles, c, reduction) for c in runs}
        for rule in PICK_RULES:
            scores = {c: _score(means[c], rule) for c in leaders}
            chosen = max(scores, key=scores.get)
            mean_of = {c: statistics.fmean(v) if v else math.nan for c, v in means.items()}
            everyone = {c: v for c, v in mean_of.items() if math.isfinite(v)}
            figures[f"{text}+reeval:{rule}"] = {
                "gap": mean_of[chosen] - truth[chosen],
                "spearman": _spearman(everyone, truth),
                "regret": best_truth - truth[chosen],
            }
    figures.update(_wider_reevaluation(runs, roles, truth, best_truth))
    figures.update(_more_seeds_on_one_truth(runs, orders))
    every = {
        c: statistics.fmean(runs[c][s]["quality"] for s in (roles[c][0], *roles[c][1]))
        for c in runs
    }
    figures[EVERY_CONFIG] = _figures(every, truth, max(every, key=every.get), best_truth)
    return figures


def _wider_reevaluation(runs: dict, roles: dict, truth: dict, best_truth: float) -> dict:
    """The shipped reduction and pick rule with ``K`` leaders re-evaluated on ``S`` seeds
    each: what more leaders or more seeds would buy."""
    trials = {c: roles[c][0] for c in runs}
    fresh = {c: roles[c][1] for c in runs}
    return {
        f"reeval:top{top}x{seeds}": figures
        for (top, seeds), figures in _reevaluated_picks(
            runs, trials, fresh, truth, best_truth, WIDER_TOP, REEVAL_SEEDS
        ).items()
    }


def _more_seeds_on_one_truth(runs: dict, orders: dict) -> dict:
    """The shipped reduction and pick rule with ``K`` leaders re-evaluated on 1 to
    ``MORE_SEEDS`` seeds, every ``S`` judged on the same truth (a draw's seeds after its
    first ``1 + MORE_SEEDS``), so that more seeds are not paid for with a noisier truth; only
    on a corpus whose every configuration has ``MORE_SEEDS_NEED`` seeds."""
    if min(len(seeds) for seeds in runs.values()) < MORE_SEEDS_NEED:
        return {}
    truth = {
        c: statistics.fmean(runs[c][s]["quality"] for s in orders[c][1 + MORE_SEEDS :])
        for c in runs
    }
    trials = {c: orders[c][0] for c in runs}
    fresh = {c: orders[c][1 : 1 + MORE_SEEDS] for c in runs}
    return {
        f"one_truth:top{top}x{seeds}": figures
        for (top, seeds), figures in _reevaluated_picks(
            runs, trials, fresh, truth, max(truth.values()), MORE_SEEDS_TOP, MORE_SEEDS
        ).items()
    }


def _reevaluated_picks(
    runs: dict,
    trials: dict,
    fresh: dict,
    truth: dict,
    best_truth: float,
    tops: tuple[int, ...],
    most_seeds: int,
) -> dict:
    """Per (K, S): the leaders by the trial's shipped reduction, the top K re-evaluated on
    the first S of their ``fresh`` seeds, the best mean - 1 SE picked, judged on ``truth``."""
    reduction = Reduction.parse(DEFAULT_REDUCE)
    trial = {
        c: reduction.reduce(runs[c][trials[c]]["curve"])[0]
        for c in runs
        if runs[c][trials[c]]["pickable"]
    }
    ranked = sorted((c for c, v in trial.items() if math.isfinite(v)), key=trial.get, reverse=True)
    figures = {}
    for top in tops:
        for seeds in range(1, most_seeds + 1):
            values = {}
            for config in ranked[:top]:
                found = [
                    reduction.reduce(runs[config][s]["curve"])[0] for s in fresh[config][:seeds]
                ]
                values[config] = [v for v in found if math.isfinite(v)]
            scores = {c: _score(v, "mean_minus_se") for c, v in values.items()}
            if scores and values[chosen := max(scores, key=scores.get)]:
                figures[top, seeds] = {
                    "gap": statistics.fmean(values[chosen]) - truth[chosen],
                    "spearman": math.nan,
                    "regret": best_truth - truth[chosen],
                }
    return figures


def _seed_values(runs: dict, roles: dict, config: int, reduction: Reduction) -> list[float]:
    values = [reduction.reduce(runs[config][s]["curve"])[0] for s in roles[config][1]]
    return [v for v in values if math.isfinite(v)]


def _score(values: list[float], rule: str) -> float:
    if not values:
        return -math.inf
    mean = statistics.fmean(values)
    if rule == "mean" or len(values) < 2:
        return mean
    return mean - statistics.stdev(values) / math.sqrt(len(values))


def _figures(estimate: dict, truth: dict, pick: int, best_truth: float) -> dict:
    return {
        "gap": estimate[pick] - truth[pick],
        "spearman": _spearman(estimate, truth),
        "regret": best_truth - truth[pick],
    }


def _spearman(estimate: dict, truth: dict) -> float:
    configs = sorted(estimate)
    if len(configs) < 3:
        return math.nan
    return float(spearmanr([estimate[c] for c in configs], [truth[c] for c in configs])[0])


def summarise(runs: dict, replicates: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    draws = [replicate(runs, rng) for _ in range(replicates)]
    methods = sorted({m for d in draws for m in d})
    return {
        m: {k: spread_over_draws([d[m][k] for d in draws if m in d]) for k in TARGETS}
        for m in methods
    }


def spread_over_draws(values: list[float]) -> dict:
    """Mean and 5-95 % of a figure over role draws (non-finite values left out)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return {"mean": None, "p05": None, "p95": None}
    return {
        "mean": round(statistics.fmean(values), 4),
        "p05": round(float(np.percentile(values, 5)), 4),
        "p95": round(float(np.percentile(values, 95)), 4),
    }


def choose(calibration: dict) -> tuple[str, str]:
    """The (reduction, re-evaluation pick rule) pair with the lowest mean regret of the whole
    pick on the calibration corpus (ties: the higher Spearman)."""

    def key(pair: tuple[str, str]):
        figures = calibration.get(f"{pair[0]}+reeval:{pair[1]}")
        if figures is None:
            return (math.inf,)
        return (figures["regret"]["mean"], -(figures["spearman"]["mean"] or -1.0))

    return min(((r, rule) for r in REDUCTIONS for rule in PICK_RULES), key=key)


def met(figures: dict) -> dict:
    return {
        "gap": abs(figures["gap"]["mean"]) <= TARGETS["gap"],
        "spearman": figures["spearman"]["mean"] >= TARGETS["spearman"],
        "regret": figures["regret"]["mean"] <= TARGETS["regret"],
    }


def load_runs(path: Path = OUT) -> tuple[dict, int, bool]:
    """The recorded runs (by corpus in ``by_set``), their epoch budget, and whether the code
    they were recorded with has changed since (said on stderr)."""
    payload = load(path)
    is_stale = stale(
        payload["code_hash"], code_hash(), "the selection runs (rerun bench/record_selection.py)"
    )
    return payload, max(len(run["history"]) for run in payload["runs"]), is_stale


def replay(payload: dict, budget: int, replicates: int = REPLICATES) -> dict:
    """Every method's figures per corpus (the corpora in name order, each its own seed)."""
    return {
        name: summarise(prepare(configs, budget), replicates, seed=index)
        for index, (name, configs) in enumerate(sorted(payload["by_set"].items()))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=OUT)
    parser.add_argument("--replicates", type=int, default=REPLICATES)
    args = parser.parse_args()
    payload, budget, is_stale = load_runs(args.runs)
    sets = replay(payload, budget, args.replicates)
    reduction, rule = choose(sets["calibration"])
    shipped = f"{reduction}+reeval:{rule}"
    evaluation = sets["evaluation"]
    emit(
        {
            "cache_stale": is_stale,
            "code_hash": payload["code_hash"],
            "recorded": payload["recorded"],
            "configs": payload["configs"],
            "seeds": payload["seeds"],
            "replicates": args.replicates,
            "chosen_reduction": reduction,
            "chosen_pick_rule": rule,
            "evaluation_single_run": evaluation[reduction],
            "evaluation_shipped": evaluation[shipped],
            "targets": TARGETS,
            "targets_met": met(evaluation[shipped]),
            "by_set": sets,
        }
    )


if __name__ == "__main__":
    main()
