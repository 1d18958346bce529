"""Search efficiency on retrained quality: what a sweep's pick is worth when trained again on
seeds no selection saw, for sersweep as shipped against random search, at 16, 32 and 64
trials per sweep, several sweeps per method.

* **Corpus**: the benchmark corpus of ``bench/record_reference.py`` (118 validation
  speakers).
* **Methods** on the ``demo`` space with its epoch budget: ``sersweep`` (the defaults of
  ``launch.py sweep``: multivariate TPE, collapse stopping with failed GANs infeasible for
  TPE, the space's reduction, the top 3 re-evaluated on 3 fresh seeds and the best mean
  less one standard error picked), ``sersweep_asha`` (the same with ``--scheduler asha``;
  its ratio and failure share against random search under ``other_methods``) and
  ``random_full`` (what a user gets without sersweep: random search, every trial to the full
  budget, the best epoch picked).
* **Budgets**: the first 8, 16, 32 and 64 trials (in the order they finished) of each
  64-trial sweep; at each, the method picks as it would had the sweep ended there (sersweep
  re-evaluates that budget's leaders).
* **Quality** of a pick: the mean over ``HELD_OUT`` seeds of its settled quality
  (``bench/seed_runs.py``: mean val UAR of the budget's last three epochs), the seeds the
  reference's target was measured on. **Epochs**: every epoch the sweep trained up to the
  budget, plus its re-evaluation's.
* **Target**: the reference search's pick, measured the same way
  (``bench/histories/reference_search.json``).

Figures: per method and budget the mean quality and epochs, with 5-95 % intervals from
resampling each method's sweeps; the budget each needs to come within 1 % of the target;
``ratio``: the epochs sersweep needs to reach random search's 64-trial quality over random
search's 64-trial epochs (the smallest budget whose mean quality reaches it, interpolated
linearly between budgets; ``null`` with ``beyond`` when none does); ``at_equal_epochs``:
each method's quality at random search's epochs at each budget (its mean curve interpolated
there); the share of each sweep's second half that ended in a failure verdict (a verdict
of the val UAR stop list, NaN included), sersweep against random search;
``draws_by_trial_number``: how good the configurations each method draws are by when it draws
them (TPE's random start-up trials against its modelled ones); and ``collapse_border``: where
each method draws and how often its draws fail there, on either side of a generator learning
rate of ``HIGH_G_LR``, where the space's best and its collapsing configurations lie together.

Every sweep's trials and every seed run are kept in
``bench/histories/search_efficiency_runs.json``; without ``--record`` the script replays
that file (``cache_stale`` says whether the code changed since).

    .venv/bin/python bench/search_efficiency.py [--record [--seeds 5]]

Recording takes about an hour at ``--trials 32 --seeds 3`` on a 2-core CPU and about three
and a half hours at the defaults; the replay about 10 seconds. It records in parts: each
finished sweep and its seed runs are kept in
``bench/histories/search_efficiency_runs.partial.json``, and ``--record`` with the same
``--trials`` on the same code goes on from there after a stop.

``seed_landscape`` says how alike nearby trials of the recorded sweeps are against one
configuration's seeds; ``one_seed_landscape`` says the same of the recording made while every
trial of a sweep trained with seed 0 (``search_efficiency_runs_one_seed.json``).
``ten_startup_trials`` replays the recording made while TPE drew Optuna's 10 random start-up
trials (``search_efficiency_runs_10_startup.json``; sersweep draws 4) against the reference
search of that code (``reference_search_10_startup.json``); ``without_redrawing`` the one made
with 4 while sersweep took every proposal of TPE's, before failure-risk redrawing
(``search_efficiency_runs_without_redrawing.json``, ``reference_search_without_redrawing.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    ROOT,
    bootstrap_spread,
    emit,
    epochs_to_quality,
    finite,
    quality_at_epochs,
    stale,
)
from record_reference import (
    HELD_OUT,
    OUT,
    SPACE,
    VALID_FOLDS,
    bench_settings,
    code_hash,
    write_bench_corpus,
)
from seed_runs import SETTLED, curve_quality, quality, train_histories
from sweeps import results_by_trial

from search_spaces import load_space
from search_spaces.objective import Reduction
from sweep.reeval import FRESH_SEED_OFFSET, confidence_bound
from sweep.search import TRIAL_SEED
from sweep.settings import CLASSIFIER_STOPS

RUNS = ROOT / "bench" / "histories" / "search_efficiency_runs.json"
PARTIAL = RUNS.with_name("search_efficiency_runs.partial.json")  # a recording under way
# the 5 x 64 recording made while every trial of a sweep trained with seed 0: kept for what
# one shared seed does to a search (its `seed_landscape`)
ONE_SEED = RUNS.with_name("search_efficiency_runs_one_seed.json")
# the 5 x 64 recording made while TPE drew 10 random start-up trials, and the reference search
# of its code: kept to show what 4 changed
TEN_STARTUP = RUNS.with_name("search_efficiency_runs_10_startup.json")
TEN_STARTUP_REFERENCE = OUT.with_name("reference_search_10_startup.json")
# the same with 4 start-up trials while sersweep took every proposal of TPE's (no failure-risk
# redrawing), and its reference search: kept to show what redrawing changed
WITHOUT_REDRAWING = RUNS.with_name("search_efficiency_runs_without_redrawing.json")
WITHOUT_REDRAWING_REFERENCE = OUT.with_name("reference_search_without_redrawing.json")
# the earlier recordings the replay gives beside today's: (recording, its reference search)
EARLIER = {
    "ten_startup_trials": (TEN_STARTUP, TEN_STARTUP_REFERENCE),
    "without_redrawing": (WITHOUT_REDRAWING, WITHOUT_REDRAWING_REFERENCE),
}
# generator learning rates from here up are where the demo space's best and its collapsing
# configurations lie together (set on the 10-start-up recording, where 8 % of random
# search's draws land there, a third of its best tenth and 6 of its 11 failures)
HIGH_G_LR = 0.1
SHARED_SEED_CONFIGS = 3  # configurations a seed trained before its shared effect is taken out
TRIALS = 64
# 8 as well as the 16, 32 and 64 compared: a ratio of 1/3 of random search's 64-trial epochs
# lies below what a 16-trial sweep and its re-evaluation spend
BUDGETS = (8, 16, 32, 64)
WITHIN = 0.01
REEVAL_TOP, REEVAL_SEEDS = 3, 3
RESAMPLES = 2000
# trial numbers (from 1) grouped for what each method draws when: the recorded sweeps' TPE drew
# its first 10 trials at random (Optuna's default `n_startup_trials`, which they ran), and
# modelled the trials before it after
DRAW_GROUPS = ((1, 10), (11, 16), (17, 32), (33, 64))
METHODS = {
    "sersweep": {"reeval_top": 0},  # the defaults; its re-evaluation is replayed per budget
    # the same with ASHA (`--scheduler asha`): multi-fidelity, the lever bench/fidelity.py
    # measures on recorded runs, here in real sweeps
    "sersweep_asha": {"reeval_top": 0, "scheduler": "asha"},
    "random_full": {
        "sampler": "random",
        "stop_on_collapse": False,
        "reduce": "best",
        "reeval_top": 0,
    },
}


# -- recording ---------------------------------------------------------------------------


def run_sweep(method: str, seed: int, corpus: Path, out: Path, trials: int) -> list[dict]:
    """One sweep of ``trials`` trials; its trials in the order they finished."""
    from sweep.runner import start_sweep

    settings = bench_settings(
        out, corpus, samples=trials, name=f"{method}{seed}", seed=seed, **METHODS[method]
    )
    start_sweep(settings)
    trials = [t for t in results_by_trial(settings) if t["finished"] is not None]
    return [
        {
            "number": t["number"],
            "state": t["state"],
            "value": t["value"],
            "epochs": len(t["rows"]),
            "overrides": json.loads(t["attrs"]["overrides"]),
            "verdicts": [v["name"] for v in t["attrs"].get("verdicts", [])],
            "val_uar": [round(r.get("val_uar", math.nan), 4) for r in t["rows"]],
        }
        for t in sorted(trials, key=lambda t: t["finished"])
    ]


def record(progress: dict, seeds: int) -> dict:
    """Record ``seeds`` sweeps per method, in parts: after each sweep and its seed runs the
    progress (from :func:`load_progress`) is written to ``PARTIAL``, from where a later call
    goes on. The whole recording replaces ``RUNS`` and ``PARTIAL`` goes."""
    max_epochs = load_space(SPACE).max_epochs
    trials, budgets = progress["trials"], progress["budgets"]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_bench_corpus(Path(tmp) / "bench.h5")
        for seed, method in sweeps_to_record(progress, seeds):
            started = time.time()
            done = run_sweep(method, seed, corpus, Path(tmp) / f"{method}{seed}", trials)
            if len(done) < trials:  # stopped (Ray Tune ends a run on SIGINT) or failing
                sys.exit(
                    f"search efficiency: {method} seed {seed} ended with {len(done)} of {trials} "
                    f"trials finished; not kept (the recording so far is in {PARTIAL.name})"
                )
            sweep = {"seed": seed, "trials": done}
            record_seed_runs(method, sweep, budgets, corpus, max_epochs, progress["seed_runs"])
            progress["sweeps"][method].append(sweep)
            progress["seconds"] += round(time.time() - started)
            # whole or not at all: a stop while it is written keeps the last part
            written = PARTIAL.with_suffix(".writing")
            written.write_text(json.dumps(progress, separators=(",", ":")))
            written.replace(PARTIAL)
            print(
                f"{method} seed {seed}: {len(done)} trials ({PARTIAL.name} saved)",
                file=sys.stderr,
                flush=True,
            )
    payload = {
        **progress,
        "recorded": time.strftime("%Y-%m-%d"),
        "seed_runs": list(progress["seed_runs"].values()),
    }
    RUNS.write_text(json.dumps(payload, separators=(",", ":")))
    PARTIAL.unlink()
    return payload


def load_progress(path: Path, trials: int, hashed: str) -> dict:
    """A recording's progress so far: ``path``'s when it was recorded with ``trials`` per
    sweep on the code hashed ``hashed``, a new one when there is no such file. (The sweeps do
    not read the reference: it only gives the target, when the runs are replayed.)

    Raises:
        ValueError: ``path`` holds a recording of other trials or code, which would mix.
    """
    if not path.is_file():
        return {
            "code_hash": hashed,
            "trials": trials,
            "budgets": [size for size in BUDGETS if size <= trials],
            "seconds": 0,
            "sweeps": {method: [] for method in METHODS},
            "seed_runs": {},
        }
    progress = json.loads(path.read_text())
    mine = {"trials": trials, "code_hash": hashed}
    other = {key: progress[key] for key, value in mine.items() if progress[key] != value}
    if other:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        recorded = ", ".join(f"{key} {value}" for key, value in other.items())
        raise ValueError(
            f"{shown} is a recording of other {recorded}; record with those, or "
            "remove it to start again"
        )
    return progress


def sweeps_to_record(progress: dict, seeds: int) -> list[tuple[int, str]]:
    """The (seed, method) sweeps ``progress`` lacks for ``seeds`` sweeps per method, seed by
    seed, so that a recording stopped early still holds every method's first sweeps."""
    return [
        (seed, method)
        for seed in range(seeds)
        for method in METHODS
        if seed not in {s["seed"] for s in progress["sweeps"][method]}
    ]


def record_seed_runs(
    method: str, sweep: dict, budgets: list[int], corpus: Path, max_epochs: int, seed_runs: dict
) -> None:
    """Train the seed runs a sweep's picks need at each budget into ``seed_runs``: first the
    leaders' fresh seeds (and random search's picks), then the picks they choose on the
    held-out seeds; a run another sweep already needed is not trained again."""
    for known in (None, seed_runs):
        wanted = {
            _key(spec): spec
            for size in budgets
            for spec in needed_runs(method, sweep["trials"][:size], known)
        }
        specs = [spec for key, spec in wanted.items() if key not in seed_runs]
        for spec, history in zip(
            specs, train_histories(str(corpus), specs, VALID_FOLDS), strict=True
        ):
            seed_runs[_key(spec)] = {
                **spec,
                "quality": round(quality(history, max_epochs), 4),
                "val_uar": [round(r.get("val_uar", math.nan), 4) for r in history],
                "epochs": len(history),
            }


def needed_runs(method: str, trials: list[dict], runs: dict | None) -> list[dict]:
    """The seed runs a method's pick at this budget needs: random search's pick on the
    held-out seeds; sersweep's leaders on fresh seeds, and (once ``runs`` holds those) the
    leader they pick on the held-out seeds."""
    if method == "random_full":
        pick = _best(trials)
        return [] if pick is None else [_spec(pick, s) for s in HELD_OUT]
    leaders = _leaders(trials)
    fresh = [_fresh(t, i) for t in leaders for i in range(REEVAL_SEEDS)]
    if runs is None:
        return fresh
    pick = reeval_pick(leaders, runs)
    return fresh + ([_spec(pick, s) for s in HELD_OUT] if pick else [])


def _spec(trial: dict, seed: int) -> dict:
    return {"overrides": trial["overrides"], "seed": seed}


def _fresh(trial: dict, index: int) -> dict:
    """The ``index``-th fresh seed run of a leader, as ``sweep.reeval`` seeds it (the trial's
    own seed plus :data:`~sweep.reeval.FRESH_SEED_OFFSET`)."""
    return _spec(trial, trial["overrides"][TRIAL_SEED] + FRESH_SEED_OFFSET + index)


def _key(spec: dict) -> str:
    return json.dumps([spec["overrides"], spec["seed"]], sort_keys=True)


# -- the methods' picks ------------------------------------------------------------------


def _complete(trials: list[dict]) -> list[dict]:
    return [t for t in trials if t["state"] == "COMPLETE" and finite(t["value"])]


def _best(trials: list[dict]) -> dict | None:
    complete = _complete(trials)
    return max(complete, key=lambda t: t["value"]) if complete else None


def _leaders(trials: list[dict]) -> list[dict]:
    return sorted(_complete(trials), key=lambda t: t["value"], reverse=True)[:REEVAL_TOP]


def reeval_pick(leaders: list[dict], runs: dict) -> dict | None:
    """sersweep's pick: the leader whose fresh seeds' values under the shipped reduction have
    the best :func:`~sweep.reeval.confidence_bound` (as ``sweep.reeval`` picks)."""
    reduction = load_space(SPACE).reduce

    def bound(trial: dict) -> float:
        values = [
            reduction.reduce(runs[_key(_fresh(trial, i))]["val_uar"])[0]
            for i in range(REEVAL_SEEDS)
        ]
        value = confidence_bound(values)
        return value if finite(value) else -math.inf

    return max(leaders, key=bound) if leaders else None


def outcome(method: str, trials: list[dict], runs: dict) -> dict:
    """A method's pick at one budget: its held-out quality and the epochs spent."""
    pick = _best(trials) if method == "random_full" else reeval_pick(_leaders(trials), runs)
    epochs = sum(t["epochs"] for t in trials)
    if method != "random_full":
        epochs += sum(
            runs[_key(_fresh(t, i))]["epochs"]
            for t in _leaders(trials)
            for i in range(REEVAL_SEEDS)
        )
    held = [runs[_key(_spec(pick, s))]["quality"] for s in HELD_OUT] if pick else []
    return {"quality": statistics.fmean(held) if held else math.nan, "epochs": epochs}


def failed(trial: dict) -> bool:
    """Whether a recorded trial ended in a failure verdict (one of the val UAR stop list)."""
    return bool(set(CLASSIFIER_STOPS) & set(trial["verdicts"]))


def failure_share(trials: list[dict]) -> float:
    """The share of a sweep's second half (by completion) that ended in a failure verdict."""
    return second_half_share([failed(t) for t in trials])


def second_half_share(outcomes: list[bool]) -> float:
    """The share of a sweep's second half (by completion) that failed, from each trial's
    outcome (true where it failed) in completion order."""
    second = outcomes[len(outcomes) // 2 :]
    return sum(second) / len(second)


def collapse_border(payload: dict) -> dict:
    """Where each method draws and where its draws fail, on either side of a generator
    learning rate of ``HIGH_G_LR``: per method and side, the share of its trials drawn there,
    the share of those that ended in a failure verdict, and the mean settled quality of those
    that ran the whole budget; and the share of the method's best tenth of whole runs (by
    settled quality, all its sweeps together) drawn at or above that rate. A failure share is
    where a method draws times how often it fails there: this tells the two apart."""
    budget = load_space(SPACE).max_epochs
    figures = {"g_lr": HIGH_G_LR}
    for method, sweeps in payload["sweeps"].items():
        # each trial with its settled quality where it ran the whole budget (else None)
        runs = [
            (t, curve_quality(t["val_uar"], budget) if t["epochs"] >= budget else None)
            for sweep in sweeps
            for t in sweep["trials"]
        ]
        per_side = {}
        for side, high in (("high", True), ("low", False)):
            drawn = [t for t, _ in runs if _high_g_lr(t) == high]
            whole = [q for t, q in runs if _high_g_lr(t) == high and q is not None]
            per_side[side] = {
                "drawn_share": round(len(drawn) / len(runs), 3),
                "failure_share": round(sum(map(failed, drawn)) / len(drawn), 3) if drawn else None,
                "quality": round(statistics.fmean(whole), 4) if whole else None,
            }
        whole = sorted(
            (run for run in runs if run[1] is not None), key=lambda run: run[1], reverse=True
        )
        best = whole[: max(1, len(whole) // 10)]
        high = sum(_high_g_lr(t) for t, _ in best)
        figures[method] = {**per_side, "best_tenth_high_share": round(high / len(best), 3)}
    return figures


def _high_g_lr(trial: dict) -> bool:
    return trial["overrides"]["sgan.g_lr"] >= HIGH_G_LR


def seed_landscape(payload: dict) -> dict:
    """How alike two runs are when only their configuration differs a little, against one
    configuration trained on different seeds.

    ``close_pairs``: pairs of full-length sweep trials with the same choices and learning
    rates, label smoothing and instance noise within about 12 % (0.05 in log10; 0.03 of
    smoothing) of each other; ``close_pair_sd``: the root mean square of their settled values'
    difference (each pair's order being arbitrary) over the square root of two (one run's
    share). ``fresh_seed_sd``: the pooled SD of a configuration's settled value over its fresh
    and held-out seed runs, the effect of each seed that trained several configurations taken
    out first.
    Where every trial of a sweep shares one seed, close pairs differ far less than seeds do:
    the sweep sees that seed's landscape."""
    budget, settled = load_space(SPACE).max_epochs, {}
    for sweeps in payload["sweeps"].values():
        for sweep in sweeps:
            for trial in sweep["trials"]:
                values = trial.get("val_uar", [])
                if len(values) == budget and all(finite(v) for v in values):
                    settled[json.dumps(trial["overrides"], sort_keys=True)] = statistics.fmean(
                        values[-SETTLED:]
                    )
    # only trials with the same choices can be close: pair within those groups
    groups: dict[tuple, list[tuple[tuple, float]]] = {}
    for key, value in settled.items():
        choices, position = _position(json.loads(key))
        groups.setdefault(choices, []).append((position, value))
    differences = [
        a[1] - b[1]
        for members in groups.values()
        for a, b in itertools.combinations(members, 2)
        if _close(a[0], b[0])
    ]

    runs = [(run["overrides"], run["seed"], run["quality"]) for run in payload["seed_runs"]]
    by_seed: dict[int, list[float]] = {}
    by_config: dict[str, list[tuple[int, float]]] = {}
    for overrides, seed, value in runs:
        key = json.dumps({k: v for k, v in overrides.items() if k != TRIAL_SEED}, sort_keys=True)
        by_config.setdefault(key, []).append((seed, value))
    for group in by_config.values():
        mean = statistics.fmean(v for _, v in group)
        for seed, value in group:
            by_seed.setdefault(seed, []).append(value - mean)
    # only a seed that trained several configurations has an effect to tell apart (with a
    # seed per trial, most fresh seeds train one)
    shared = {
        seed: statistics.fmean(values)
        for seed, values in by_seed.items()
        if len(values) >= SHARED_SEED_CONFIGS
    }
    variances = [
        statistics.variance([v - shared.get(s, 0.0) for s, v in group])
        for group in by_config.values()
        if len(group) > 1
    ]
    return {
        "close_pairs": len(differences),
        "close_pair_sd": round(math.sqrt(statistics.fmean(d * d for d in differences) / 2), 4)
        if differences
        else None,
        "fresh_seed_configs": len(variances),
        "fresh_seed_sd": round(math.sqrt(statistics.fmean(variances)), 4) if variances else None,
        # each seed's effect shared by every configuration it trained (what was taken out)
        "seed_effects": {str(seed): round(effect, 4) for seed, effect in sorted(shared.items())},
    }


def _position(overrides: dict) -> tuple[tuple, tuple]:
    """A demo trial's categorical choices, and where it lies in the numeric parameters (the
    rates and instance noise in log10, label smoothing as drawn)."""
    d_lr, g_lr = overrides["sgan.d_lr"], overrides["sgan.g_lr"]
    noise = overrides.get("sgan.instance_noise")
    choices = (
        overrides["sgan.latent_dim"],
        overrides["sgan.n_node"],
        "sgan.label_smoothing" in overrides,
        noise is not None,
    )
    logs = (math.log10(d_lr), math.log10(g_lr / d_lr), math.log10(noise) if noise else 0.0)
    return choices, (logs, overrides.get("sgan.label_smoothing", 0.0))


def _close(a: tuple, b: tuple) -> bool:
    """Whether two positions of :func:`_position` lie within about 12 % of each other."""
    (logs_a, smoothing_a), (logs_b, smoothing_b) = a, b
    near = all(abs(x - y) < 0.05 for x, y in zip(logs_a, logs_b, strict=True))
    return near and abs(smoothing_a - smoothing_b) < 0.03


# -- figures -----------------------------------------------------------------------------


def failures_after_first(payload: dict) -> dict:
    """Per method, the trials that finished after their sweep's first failure (by completion)
    and how many of them failed, over all its sweeps: where learning from failures can act at
    all (a sweep's first failure teaches it only after the fact)."""
    figures = {}
    for method, sweeps in payload["sweeps"].items():
        failures = trials = 0
        for sweep in sweeps:
            outcomes = [failed(t) for t in sweep["trials"]]
            after = outcomes[outcomes.index(True) + 1 :] if True in outcomes else []
            failures += sum(after)
            trials += len(after)
        figures[method] = {"failures": failures, "trials": trials}
    return figures


def figures(payload: dict, target: float) -> dict:
    runs = {_key(run): run for run in payload["seed_runs"]}
    budgets = payload["budgets"]
    table = {
        method: [
            {size: outcome(method, sweep["trials"][:size], runs) for size in budgets}
            for sweep in sweeps
        ]
        for method, sweeps in payload["sweeps"].items()
    }
    rng = np.random.default_rng(0)
    per_method = {}
    for method, rows in table.items():
        per_method[method] = {
            str(size): {
                "quality": bootstrap_spread([r[size]["quality"] for r in rows], rng),
                "epochs": bootstrap_spread([r[size]["epochs"] for r in rows], rng),
            }
            for size in budgets
        }
        level = (1 - WITHIN) * target
        reached = [s for s in budgets if per_method[method][str(s)]["quality"]["mean"] >= level]
        per_method[method]["budget_within_1pct"] = reached[0] if reached else None
    ratio = ratio_with_spread(table["sersweep"], table["random_full"], budgets, rng)
    shares = {
        method: bootstrap_spread([failure_share(s["trials"]) for s in sweeps], rng)
        for method, sweeps in payload["sweeps"].items()
    }
    others = {
        method: {
            **ratio_with_spread(table[method], table["random_full"], budgets, rng),
            "failure_share_ratio": _ratio(shares[method]["mean"], shares["random_full"]["mean"]),
        }
        for method in table
        if method not in ("sersweep", "random_full")
    }
    # its own generator, so that adding it moved none of the figures above
    equal = at_equal_epochs(table, budgets, np.random.default_rng(1))
    return {
        "per_method": per_method,
        **ratio,
        "at_equal_epochs": equal,
        "second_half_failure_share": shares,
        "other_methods": others,
        "failure_share_ratio": _ratio(shares["sersweep"]["mean"], shares["random_full"]["mean"]),
        "failures_after_first": failures_after_first(payload),
        "seed_landscape": seed_landscape(payload),
        "collapse_border": collapse_border(payload),
        "draws_by_trial_number": draws_by_trial_number(payload, np.random.default_rng(2)),
        "runs": {
            m: [{str(k): v for k, v in row.items()} for row in rows] for m, rows in table.items()
        },
    }


def draws_by_trial_number(payload: dict, rng) -> dict:
    """How good the configurations each method draws are, by when it draws them: per group of
    trial numbers (:data:`DRAW_GROUPS`), the mean single-run settled quality (as the seed runs
    measure it) of the trials that ran the whole budget, its 90 % interval from resampling the
    method's sweeps, and how many of the group's trials ran the whole budget (a trial stopped
    on a verdict, or at an ASHA rung, has no settled quality and is left out)."""
    budget = load_space(SPACE).max_epochs
    figures = {}
    for method, sweeps in payload["sweeps"].items():
        per_group = {}
        for first, last in DRAW_GROUPS:
            per_sweep, ran, drawn = [], 0, 0
            for sweep in sweeps:
                group = [t for t in sweep["trials"] if first <= t["number"] + 1 <= last]
                whole = [t for t in group if len(t["val_uar"]) >= budget]
                drawn, ran = drawn + len(group), ran + len(whole)
                if whole:
                    per_sweep.append(
                        statistics.fmean(
                            curve_quality(t["val_uar"][:budget], budget) for t in whole
                        )
                    )
            per_group[f"{first}-{last}"] = {
                "quality": bootstrap_spread(per_sweep, rng),
                "whole_budget": ran,
                "trials": drawn,
            }
        figures[method] = per_group
    return figures


def at_equal_epochs(table: dict[str, list[dict]], budgets: list[int], rng) -> dict:
    """Per budget, random search's mean epochs there and each method's mean quality at those
    epochs (its mean curve interpolated between its budgets; ``None`` where the curve does not
    span them), with a 90 % interval from resampling that method's sweeps and the share of
    resamples whose curve spans them."""
    figures = {}
    for size in budgets:
        epochs = statistics.fmean(row[size]["epochs"] for row in table["random_full"])
        figures[str(size)] = {"epochs": round(epochs)}
        for method, rows in table.items():
            value = quality_at_epochs(rows, epochs, budgets)
            draws = [
                quality_at_epochs(
                    [rows[i] for i in rng.integers(len(rows), size=len(rows))], epochs, budgets
                )
                for _ in range(RESAMPLES)
            ]
            defined = [draw for draw in draws if draw is not None]
            figures[str(size)][method] = {
                "quality": None if value is None else round(value, 4),
                "interval": (
                    [round(float(q), 4) for q in np.percentile(defined, [5, 95])]
                    if value is not None and defined
                    else None
                ),
                "defined_share": round(len(defined) / RESAMPLES, 3),
            }
    return figures


def ratio_with_spread(ours: list[dict], random: list[dict], budgets: list[int], rng) -> dict:
    def ratio(a: list[dict], b: list[dict]) -> float | None:
        level = statistics.fmean(r[budgets[-1]]["quality"] for r in b)
        spent = epochs_to_quality(a, level, budgets)
        return (
            None if spent is None else spent / statistics.fmean(r[budgets[-1]]["epochs"] for r in b)
        )

    draws = []
    for _ in range(RESAMPLES):
        a = [ours[i] for i in rng.integers(len(ours), size=len(ours))]
        b = [random[i] for i in rng.integers(len(random), size=len(random))]
        draws.append(ratio(a, b))
    defined = [d for d in draws if d is not None]
    value = ratio(ours, random)
    return {
        "ratio": round(value, 3) if value is not None else None,
        "ratio_interval": [round(float(q), 3) for q in np.percentile(defined, [5, 95])]
        if defined
        else None,
        "ratio_defined_share": round(len(defined) / RESAMPLES, 3),
        "beyond": value is None,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def earlier_figures(name: str) -> dict:
    """:func:`figures` of the earlier recording ``name`` (a key of :data:`EARLIER`) against
    the reference search of its own code (its target), less the landscape and the per-sweep
    runs."""
    runs, reference = EARLIER[name]
    target = json.loads(reference.read_text())["target"]
    earlier = figures(json.loads(runs.read_text()), target)
    for key in ("seed_landscape", "runs"):
        del earlier[key]
    return {"target": target, **earlier}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="run the sweeps (hours)")
    parser.add_argument("--seeds", type=int, default=5, help="sweeps per method (--record)")
    parser.add_argument("--trials", type=int, default=TRIALS, help="trials per sweep (--record)")
    args = parser.parse_args()
    reference = json.loads(OUT.read_text())
    if not args.record and not RUNS.is_file():
        print(
            f"search efficiency: no recorded sweeps ({RUNS.relative_to(ROOT)}); record them "
            "with --record",
            file=sys.stderr,
        )
        emit({"benchmark": "search_efficiency", "recorded": None, "target": reference["target"]})
        return
    if args.record:
        try:
            progress = load_progress(PARTIAL, args.trials, code_hash())
        except ValueError as error:
            print(f"search efficiency: {error}", file=sys.stderr)
            sys.exit(2)
        payload = record(progress, args.seeds)
    else:
        payload = json.loads(RUNS.read_text())
    is_stale = stale(
        payload["code_hash"],
        code_hash(),
        "the search-efficiency runs (rerun bench/search_efficiency.py --record)",
    )
    # the target is only comparable when the reference ran the code the runs ran
    reference_stale = stale(
        reference["code_hash"],
        payload["code_hash"],
        "the reference search the runs compare with (rerun bench/record_reference.py on the "
        "runs' code)",
    )
    target = reference["target"]
    emit(
        {
            "benchmark": "search_efficiency",
            "space": SPACE,
            "reduce": str(Reduction.parse(reference["reduce"])),
            "trials": payload["trials"],
            "budgets": payload["budgets"],
            "seeds": len(payload["sweeps"]["sersweep"]),
            "cache_stale": is_stale,
            "reference_stale": reference_stale,
            "recorded": payload["recorded"],
            "target": target,
            "target_held_out": reference["pick"]["held_out"],
            **figures(payload, target),
            "one_seed_landscape": seed_landscape(json.loads(ONE_SEED.read_text())),
            **{name: earlier_figures(name) for name in EARLIER},
        }
    )


if __name__ == "__main__":
    main()
