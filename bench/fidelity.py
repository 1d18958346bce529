"""Multi-fidelity on the demo space, replayed: how well a trial's first epochs rank
configurations by their retrained quality, and what the shipped ASHA buys over training every
trial for the whole budget at equal epochs (``bench/histories/selection_runs.json``, the
selection benchmark's runs; nothing trains here).

The runs are 24 configurations drawn at random from the ``demo`` space on two corpora, 8
seeds each on the calibration corpus and 16 on the evaluation corpus. In each of
``REPLICATES`` draws the configurations are put in a random order, and each one's seeds get
the roles of the selection benchmark (``bench/selection.py``): one seed is the sweep's trial,
3 re-evaluate the leaders, and the rest (4, or 12 on the evaluation corpus) are held out and
give the truth ``T`` (mean val UAR of the budget's last 3 epochs). Nothing a method reads is
part of ``T``.

* **Rung correlation**: per epoch r, Spearman between a trial's objective on its first r
  epochs (the shipped reduction: what ASHA ranks trials by at a rung at epoch r) and ``T``.
  The last epoch's is the most one run per configuration can give.
* **At equal epochs**: at each search budget B (epochs), a sweep as shipped (collapse
  stopping, the shipped reduction, the top 3 re-evaluated on 3 fresh seeds, the best mean -
  1 SE picked) with one of two schedulers:

  - ``full`` (FIFO, the default): the first B // E configurations each train the whole
    budget E (a trial the collapse detector stops ends at its verdict, as in a sweep);
  - ``halving:G``: the first n configurations start, n the most whose cost fits B; at each
    rung G, 3G, ... below E the best third by objective goes on and the rest stop
    (synchronous successive halving on the rungs of ``--scheduler asha``, whose grace
    period is ``ASHA_GRACE_PERIOD``; graces 1 and 3 beside it). Every trial, stopped or
    not, competes for re-evaluation by its objective, as in a sweep.

  The table holds 24 configurations: an arm that would start more stays at 24 and spends
  less than B (its epochs say so).

Figures per corpus: the rung correlations; per arm and budget the pick's ``T`` (mean and
5-95 % over draws), the epochs in all (re-evaluation included) and the search's, and the
paired difference halving - full; and ``ratio``: the epochs halving needs to reach
``full``'s mean quality at ``REFERENCE_BUDGET`` over ``full``'s epochs there (interpolated
between budgets on the mean curves; ``null`` with ``beyond`` when it never gets there),
``search_ratio`` the same on the search's epochs alone. The shipped grace's ratio carries a
5-95 % interval from resampling the configurations. Nothing is chosen here: both corpora
report the shipped settings.

Prints one JSON object on its last line; ``cache_stale`` as in ``bench/selection.py``.

    .venv/bin/python bench/fidelity.py [--replicates 400] [--resamples 100]
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import emit, epochs_to_quality
from record_selection import OUT
from scipy.stats import spearmanr
from selection import (
    CHANCE,
    REEVAL_SEEDS,
    REEVAL_TOP,
    curve,
    load_runs,
    quality,
    spread_over_draws,
    stopped_at,
)

from search_spaces.objective import DEFAULT_REDUCE, Reduction
from sweep.collapse import CollapseDetector
from sweep.reeval import confidence_bound
from sweep.settings import ASHA_GRACE_PERIOD, ASHA_REDUCTION_FACTOR, default_stop_verdicts

REPLICATES = 400
RESAMPLES = 100  # configuration resamples behind the ratio's interval
DRAWS_PER_RESAMPLE = 50
GRACES = (1, 2, 3)  # ASHA_GRACE_PERIOD among them
# search epochs: 6 of the 24 configurations trained in full. Halving with grace 1 has started
# all 24 by 46 search epochs, so a reference past that could not be reached for want of
# configurations rather than of quality
REFERENCE_BUDGET = 36
LARGEST_BUDGET = 96  # search epochs: 16 configurations trained in full


@dataclass(frozen=True)
class Run:
    """One seed of one configuration: its objective after each epoch (the shipped
    reduction of the epochs so far), the epoch whose verdict stops it (``None``: never) and
    its settled quality as a held-out seed."""

    objective: tuple[float, ...]
    stopped_at: int | None
    quality: float


def prepare(configs: dict[int, dict[int, dict]], budget: int) -> dict[int, dict[int, Run]]:
    reduction = Reduction.parse(DEFAULT_REDUCE)
    detector = CollapseDetector()
    stopping = tuple(default_stop_verdicts("val_uar"))
    table = {}
    for config, seeds in configs.items():
        table[config] = {}
        for seed, run in seeds.items():
            values = curve(run)
            objective = tuple(reduction.reduce(values[:epoch])[0] for epoch in range(1, budget + 1))
            table[config][seed] = Run(
                objective, stopped_at(run, detector, stopping), quality(run, budget)
            )
    return table


def rungs(grace: int | None, budget: int) -> list[int]:
    """ASHA's rungs below the budget (``grace`` None: no halving)."""
    found, rung = [], grace
    while rung is not None and rung < budget:
        found.append(rung)
        rung *= ASHA_REDUCTION_FACTOR
    return found


@functools.cache
def nominal_cost(starts: int, grace: int | None, budget: int) -> int:
    """Search epochs of ``starts`` trials under halving when no verdict stops any."""
    alive, spent, previous = starts, 0, 0
    for rung in [*rungs(grace, budget), budget]:
        spent += alive * (rung - previous)
        alive, previous = math.ceil(alive / ASHA_REDUCTION_FACTOR), rung
    return spent


def starts_within(search_epochs: int, grace: int | None, budget: int, available: int) -> int:
    starts = 0
    while starts < available and nominal_cost(starts + 1, grace, budget) <= search_epochs:
        starts += 1
    return starts


def search(table: dict, roles: dict, configs: list[int], grace: int | None, budget: int):
    """One sweep over ``configs`` (their trial seeds): every competing trial's objective and
    the epochs spent."""
    competing, spent, previous, alive = {}, 0, 0, list(configs)
    for rung in [*rungs(grace, budget), budget]:
        reached = []
        for config in alive:
            run = table[config][roles[config][0]]
            if run.stopped_at is not None and run.stopped_at <= rung:
                spent += run.stopped_at - previous  # ended on a verdict: never picked
                competing.pop(config, None)
                continue
            spent += rung - previous
            reached.append(config)
            competing[config] = run.objective[rung - 1]
        ranked = sorted(reached, key=lambda c: _rank_value(competing[c]), reverse=True)
        alive, previous = ranked[: math.ceil(len(reached) / ASHA_REDUCTION_FACTOR)], rung
    return {c: v for c, v in competing.items() if math.isfinite(v)}, spent


def _rank_value(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def reeval_scores(table: dict, roles: dict) -> dict[int, float]:
    """Each configuration's re-evaluation score (mean - 1 SE over its re-evaluation seeds),
    were it a leader."""
    scores = {}
    for config in table:
        values = [table[config][s].objective[-1] for s in roles[config][1]]
        values = [v for v in values if math.isfinite(v)]
        scores[config] = confidence_bound(values) if values else -math.inf
    return scores


def pick(scores: dict, competing: dict, budget: int) -> tuple[int | None, int]:
    """The re-evaluation's pick among the leaders and the epochs it trained."""
    leaders = sorted(competing, key=competing.get, reverse=True)[:REEVAL_TOP]
    if not leaders:
        return None, 0
    return max(leaders, key=scores.get), len(leaders) * REEVAL_SEEDS * budget


ARMS = {"full": None, **{f"halving:{grace}": grace for grace in GRACES}}
SHIPPED = f"halving:{ASHA_GRACE_PERIOD}"


def replicate(
    table: dict,
    rng: np.random.Generator,
    budgets: list[int],
    budget: int,
    arms: tuple[str, ...] = tuple(ARMS),
    correlate: bool = True,
) -> dict:
    """One draw: per arm and search budget, the pick's truth and the epochs spent (the
    search's and in all); with ``correlate``, the rung correlations."""
    roles = {}
    for config, seeds in table.items():
        order = list(rng.permutation(sorted(seeds)))
        roles[config] = (order[0], order[1 : 1 + REEVAL_SEEDS], order[1 + REEVAL_SEEDS :])
    truth = {c: statistics.fmean(table[c][s].quality for s in roles[c][2]) for c in table}
    order = [int(c) for c in rng.permutation(sorted(table))]
    scores = reeval_scores(table, roles)
    outcome = {}
    for arm in arms:
        outcome[arm] = {}
        for search_epochs in budgets:
            starts = starts_within(search_epochs, ARMS[arm], budget, len(order))
            competing, spent = search(table, roles, order[:starts], ARMS[arm], budget)
            chosen, reeval_epochs = pick(scores, competing, budget)
            outcome[arm][search_epochs] = {
                "quality": truth[chosen] if chosen is not None else CHANCE,
                "epochs": spent + reeval_epochs,
                "search_epochs": spent,
                "starts": starts,
            }
    correlation = {}
    for epoch in range(1, budget + 1 if correlate else 1):
        values = {c: table[c][roles[c][0]].objective[epoch - 1] for c in table}
        configs = [c for c in sorted(values) if math.isfinite(values[c])]
        correlation[epoch] = float(
            spearmanr([values[c] for c in configs], [truth[c] for c in configs])[0]
        )
    return {"arms": outcome, "rung_correlation": correlation}


def ratio(draws: list[dict], arm: str, budgets: list[int], spent: str = "epochs") -> float | None:
    """The ``spent`` epochs (``epochs``: in all; ``search_epochs``: the search's) ``arm``
    needs for ``full``'s mean quality at the reference budget, over ``full``'s there."""
    full = [d["arms"]["full"] for d in draws]
    level = statistics.fmean(r[REFERENCE_BUDGET]["quality"] for r in full)
    rows = [
        {b: {"epochs": r[b][spent], "quality": r[b]["quality"]} for b in budgets}
        for r in (d["arms"][arm] for d in draws)
    ]
    needed = epochs_to_quality(rows, level, budgets)
    if needed is None:
        return None
    return needed / statistics.fmean(r[REFERENCE_BUDGET][spent] for r in full)


def resampled_ratios(
    table: dict, budgets: list[int], budget: int, rng: np.random.Generator, resamples: int
) -> list[float | None]:
    """The shipped grace's ratio on tables of configurations drawn with replacement from
    ``table``: the spread a table of other configurations would give."""
    configs, found = sorted(table), []
    for _ in range(resamples):
        drawn = rng.choice(configs, size=len(configs))
        resampled = {index: table[int(config)] for index, config in enumerate(drawn)}
        draws = [
            replicate(resampled, rng, budgets, budget, ("full", SHIPPED), correlate=False)
            for _ in range(DRAWS_PER_RESAMPLE)
        ]
        found.append(ratio(draws, SHIPPED, budgets))
    return found


def summarise(table: dict, replicates: int, resamples: int, seed: int, budget: int) -> dict:
    budgets = sorted({*range(2 * budget, LARGEST_BUDGET + 1, budget), REFERENCE_BUDGET})
    rng = np.random.default_rng(seed)
    draws = [replicate(table, rng, budgets, budget) for _ in range(replicates)]
    per_arm = {}
    for arm in ARMS:
        rows = [d["arms"][arm] for d in draws]
        per_arm[arm] = {
            "budgets": {
                str(b): {
                    "quality": spread_over_draws([r[b]["quality"] for r in rows]),
                    "epochs": _mean([r[b]["epochs"] for r in rows]),
                    "search_epochs": _mean([r[b]["search_epochs"] for r in rows]),
                    "starts": _mean([r[b]["starts"] for r in rows]),
                }
                for b in budgets
            },
        }
        if arm == "full":
            continue
        per_arm[arm]["minus_full"] = {
            str(b): spread_over_draws(
                [d["arms"][arm][b]["quality"] - d["arms"]["full"][b]["quality"] for d in draws]
            )
            for b in budgets
        }
        for key, spent in (("ratio", "epochs"), ("search_ratio", "search_epochs")):
            value = ratio(draws, arm, budgets, spent)
            per_arm[arm][key] = round(value, 3) if value is not None else None
    shipped = per_arm[SHIPPED]
    shipped["beyond"] = shipped["ratio"] is None
    spread = resampled_ratios(table, budgets, budget, rng, resamples)
    defined = [r for r in spread if r is not None]
    shipped["ratio_interval"] = (
        [round(float(q), 3) for q in np.percentile(defined, [5, 95])] if defined else None
    )
    shipped["ratio_defined_share"] = round(len(defined) / max(1, resamples), 3)
    correlation = {
        str(e): spread_over_draws([d["rung_correlation"][e] for d in draws])
        for e in range(1, budget + 1)
    }
    return {"rung_correlation": correlation, "arms": per_arm}


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 1)


def headline(sets: dict) -> dict:
    """The shipped ASHA against training every trial in full, per corpus: the rung
    correlation at the shipped grace and at the budget's end, the ratios, and the paired
    quality difference at the reference budget."""
    found = {}
    for name, figures in sets.items():
        shipped = figures["arms"][SHIPPED]
        correlation = figures["rung_correlation"]
        found[name] = {
            "rung_correlation": correlation[str(ASHA_GRACE_PERIOD)]["mean"],
            "final_correlation": correlation[str(max(map(int, correlation)))]["mean"],
            "ratio": shipped["ratio"],
            "ratio_interval": shipped["ratio_interval"],
            "search_ratio": shipped["search_ratio"],
            "minus_full": shipped["minus_full"][str(REFERENCE_BUDGET)],
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=OUT)
    parser.add_argument("--replicates", type=int, default=REPLICATES)
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    args = parser.parse_args()
    payload, budget, is_stale = load_runs(args.runs)
    sets = {
        name: summarise(prepare(configs, budget), args.replicates, args.resamples, index, budget)
        for index, (name, configs) in enumerate(sorted(payload["by_set"].items()))
    }
    emit(
        {
            "benchmark": "fidelity",
            "cache_stale": is_stale,
            "code_hash": payload["code_hash"],
            "recorded": payload["recorded"],
            "configs": payload["configs"],
            "seeds": payload["seeds"],
            "budget": budget,
            "reduce": DEFAULT_REDUCE,
            "grace_period": ASHA_GRACE_PERIOD,
            "reduction_factor": ASHA_REDUCTION_FACTOR,
            "reference_budget": REFERENCE_BUDGET,
            "replicates": args.replicates,
            "resamples": args.resamples,
            "headline": headline(sets),
            "by_set": sets,
        }
    )


if __name__ == "__main__":
    main()
