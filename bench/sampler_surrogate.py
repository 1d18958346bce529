"""How many random start-up trials TPE should draw on the ``demo`` space, and above which
estimated failure risk its proposals are redrawn, chosen on a surrogate of the space before
any sweep is recorded with the choice.

Optuna's TPE draws its first ``n_startup_trials`` (10 by default) at random. In the
search-efficiency recording made with 10
(``bench/histories/search_efficiency_runs_10_startup.json``) its modelled draws score
0.05-0.11 better per run than random search's, and the 8-trial budget, where sersweep's ratio
is decided, is all start-up (BENCHMARKS.md, search efficiency). In the recording made with 4
its second-half failure share is 0.83 of random search's where the target is 1/2: half of
what it draws at high generator learning rates fails, beside its best trials.
:class:`sweep.failure_risk.FailureRiskSampler` redraws a proposal whose failure risk,
estimated from the finished trials around it, is above ``max_risk``. Recording
sweeps takes hours per setting, so both are chosen here, on a surrogate, and the
recorded comparison that follows the choice is its evaluation.

* **Surrogate**, fit on every run of that recording that trained the whole budget (the
  sweeps' trials, their re-evaluation and held-out seed runs): a random forest from a
  configuration (log learning rate, log G/D ratio, latent size, D width, the stabiliser and its
  strength) to its settled val UAR (the mean of the budget's last three epochs, a run that
  went non-finite at chance), and a second forest from a configuration to the chance that a
  verdict of the stop list ends it, fit on every trial (random search's trials ran to the end
  whatever their verdicts). A simulated run of a configuration scores the first forest's
  value plus normal noise with the recording's fresh-seed SD (``seed_landscape``), and fails
  with the second forest's chance.
* **Sweeps**, simulated as sersweep runs them: the space's own draws through Optuna's ask and
  tell, two trials running at once, sersweep's TPE (multivariate, grouped, constant liar) with
  each start-up count taking every proposal (``tpe:K``), and with the shipped count redrawing
  above each failure risk of ``RISKS`` (``tpe:K:R``), a failed trial told PRUNED and
  infeasible; against random search,
  which stops nothing and judges a run by its best epoch (the run's value plus a lift drawn
  from the recorded random-search runs' best epoch over their settled value). ``SWEEPS``
  sweeps of 64 trials per method, the same noise for every method's sweep of one index, cut
  at 8, 16, 32 and 64.
* **Pick and epochs**, as ``bench/search_efficiency.py`` counts them: sersweep's top 3 by
  their one run, each run again on 3 noisy seeds, the best mean less one SE picked, every
  trial and re-evaluation run costing the budget's epochs (a stopped trial its mean
  recorded epochs); random search picks its best run. A pick's **quality** is the first
  forest's value there: what the surrogate expects on any number of fresh seeds.

Figures per method: pick quality and epochs per budget (90 % intervals over sweeps), the
ratio of ``bench/search_efficiency.py`` (sersweep's epochs to random search's 64-trial
quality over random search's 64-trial epochs) and the share of each sweep's second half that
failed. The shipped start-up count is the largest one as good as the best within the noise
(:func:`choose`); the shipped failure risk the largest that meets both of row 8's targets
here (:func:`choose_risk`). Beside them, no surrogate: how the shipped risk estimate judges
the draws of the two recordings (:func:`recorded_risk`). The surrogate's own fit is reported
beside (out of bag: the quality forest's R², the failure forest's ROC AUC and the failure base
rate), and how far its figures for Optuna's count of 10 lie from the recording's.

    .venv/bin/python bench/sampler_surrogate.py [--record [--sweeps 30]]

``--record`` fits and simulates (about 15 minutes on a 2-core CPU: TPE's own time, no
training) and keeps every simulated sweep's picks in
``bench/histories/sampler_surrogate_runs.json``; without it the script replays that file
(``cache_stale``: the search-efficiency recording it was fit on, or the sampler code it
simulated, has changed since).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import time
import warnings
from collections.abc import Iterable

import numpy as np
from common import ROOT, bootstrap_spread, emit, stale
from record_histories import function_definitions, module_definitions
from search_efficiency import (
    BUDGETS,
    REEVAL_SEEDS,
    REEVAL_TOP,
    TEN_STARTUP,
    WITHOUT_REDRAWING,
    figures,
    ratio_with_spread,
    second_half_share,
    seed_landscape,
)
from seed_runs import curve_quality
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import roc_auc_score

from search_spaces import load_space
from sweep.failure_risk import FailureRisk
from sweep.reeval import confidence_bound
from sweep.search import COLLAPSE_CONSTRAINT, SAMPLERS
from sweep.settings import CLASSIFIER_STOPS, MAX_FAILURE_RISK, STARTUP_TRIALS

SPACE = "demo"
CACHE = ROOT / "bench" / "histories" / "sampler_surrogate_runs.json"
TRIALS = 64
CONCURRENCY = 2
SWEEPS = 30
STARTUPS = (2, 4, 6, 10)  # 10: Optuna's default
# TPE's proposals redrawn above these failure risks (sweep.failure_risk), with the shipped
# start-up count; 1 (no redrawing) is the start-up rows above
RISKS = (0.02, 0.03, 0.05, 0.1, 0.2)
STABILISERS = ("none", "label_smoothing", "instance_noise")


def features(overrides: dict) -> list[float]:
    """A configuration as the surrogate sees it (from a trial's config overrides)."""
    d_lr, g_lr = overrides["sgan.d_lr"], overrides["sgan.g_lr"]
    stabiliser = (
        "label_smoothing"
        if "sgan.label_smoothing" in overrides
        else "instance_noise"
        if "sgan.instance_noise" in overrides
        else "none"
    )
    return [
        math.log10(d_lr),
        math.log10(g_lr / d_lr),
        float(overrides["sgan.latent_dim"]),
        float(overrides["sgan.n_node"]),
        *(float(stabiliser == s) for s in STABILISERS),
        overrides.get("sgan.label_smoothing", 0.0),
        math.log10(overrides.get("sgan.instance_noise", 0.01)),
    ]


class Surrogate:
    """The demo space's settled val UAR and failure chance as forests of recorded runs.

    Args:
        payload: the search-efficiency recording.
        budget: the space's epoch budget.
    """

    def __init__(self, payload: dict, budget: int) -> None:
        trials = [t for sweeps in payload["sweeps"].values() for s in sweeps for t in s["trials"]]
        whole = [
            (t["overrides"], t["val_uar"])
            for t in [*trials, *payload["seed_runs"]]
            if len(t["val_uar"]) >= budget
        ]
        x = np.array([features(o) for o, _ in whole])
        y = np.array([curve_quality(v[:budget], budget) for _, v in whole])
        self.quality = RandomForestRegressor(
            n_estimators=200, min_samples_leaf=5, oob_score=True, random_state=0
        ).fit(x, y)
        stops = set(CLASSIFIER_STOPS)
        self.failed = [bool(stops & set(t["verdicts"])) for t in trials]
        self.failure = RandomForestClassifier(
            n_estimators=200, min_samples_leaf=5, oob_score=True, random_state=0
        ).fit(np.array([features(t["overrides"]) for t in trials]), np.array(self.failed))
        stopped = [
            t["epochs"]
            for t, failed in zip(trials, self.failed, strict=True)
            if failed and t["epochs"] < budget
        ]
        self.stopped_epochs = statistics.fmean(stopped) if stopped else budget
        self.noise = seed_landscape(payload)["fresh_seed_sd"]
        # random search judges a run by its best epoch: how far that lies above the run's
        # settled value, per recorded run of random search
        self.best_epoch_lifts = [
            t["value"] - curve_quality(t["val_uar"][:budget], budget)
            for s in payload["sweeps"]["random_full"]
            for t in s["trials"]
            if len(t["val_uar"]) >= budget and all(math.isfinite(v) for v in t["val_uar"])
        ]
        self.runs = len(whole)

    def fit_figures(self) -> dict:
        """How well the forests fit, out of bag: R² of the settled val UAR; for failure its
        base rate and ROC AUC (accuracy says little where about 1 run in 20 fails: always
        guessing "healthy" scores 0.95)."""
        failure_oob = self.failure.oob_decision_function_[:, 1]
        return {
            "runs": self.runs,
            "quality_oob_r2": round(float(self.quality.oob_score_), 3),
            "failure_base_rate": round(statistics.fmean(self.failed), 3),
            "failure_oob_auc": round(float(roc_auc_score(self.failed, failure_oob)), 3),
        }

    def mean(self, overrides: dict) -> float:
        return float(self.quality.predict([features(overrides)])[0])

    def failure_chance(self, overrides: dict) -> float:
        return float(self.failure.predict_proba([features(overrides)])[0][1])


def simulate(surrogate: Surrogate, sampler, rng, sersweep: bool, budget: int) -> list[dict]:
    """One sweep of ``TRIALS`` trials, ``CONCURRENCY`` at a time: per trial in completion
    order its overrides, one run's value (sersweep's settled value, random search's best
    epoch), whether it failed, whether it was stopped (sersweep stops a failed trial) and the
    epochs it spent."""
    import optuna

    space = load_space(SPACE)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    running, done = [], []
    while len(done) < TRIALS:
        while len(running) < CONCURRENCY and len(done) + len(running) < TRIALS:
            trial = study.ask()
            running.append((trial, space.suggest(trial)))
        trial, overrides = running.pop(0)
        mean = surrogate.mean(overrides)
        value = mean + rng.normal(0.0, surrogate.noise)
        if not sersweep:
            value += rng.choice(surrogate.best_epoch_lifts)
        failed = bool(rng.random() < surrogate.failure_chance(overrides))
        stopped = sersweep and failed
        trial.set_constraint(COLLAPSE_CONSTRAINT, 1.0 if failed else 0.0)
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        epochs = surrogate.stopped_epochs if stopped else budget
        done.append(
            {
                "overrides": overrides,
                "value": value,
                "failed": failed,
                "stopped": stopped,
                "epochs": epochs,
            }
        )
    return done


def pick(trials: list[dict], reevaluate: bool, surrogate: Surrogate, rng, budget: int) -> dict:
    """A method's pick from ``trials`` (its quality under the surrogate) and the epochs
    spent, re-evaluation included."""
    kept = [t for t in trials if not t["stopped"]]
    epochs = sum(t["epochs"] for t in trials)
    if not kept:
        return {"quality": math.nan, "epochs": epochs}
    if not reevaluate:
        best = max(kept, key=lambda t: t["value"])
        return {"quality": surrogate.mean(best["overrides"]), "epochs": epochs}
    leaders = sorted(kept, key=lambda t: t["value"], reverse=True)[:REEVAL_TOP]
    bounds = []
    for leader in leaders:
        mean = surrogate.mean(leader["overrides"])
        values = list(mean + rng.normal(0.0, surrogate.noise, REEVAL_SEEDS))
        bounds.append(confidence_bound(values))
    chosen = leaders[int(np.argmax(bounds))]
    epochs += len(leaders) * REEVAL_SEEDS * budget
    return {"quality": surrogate.mean(chosen["overrides"]), "epochs": epochs}


def method_rows(
    surrogate: Surrogate, method: str, sweeps: int, budget: int
) -> tuple[list[dict], list[float], float]:
    """Per simulated sweep of ``method`` (``random``, ``tpe:K``: K start-up draws, every
    proposal taken, or ``tpe:K:R``: proposals redrawn above failure risk R) its pick per
    budget and its second-half failure share; and the seconds the sampler took."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rows, shares, started = [], [], time.perf_counter()
    for index in range(sweeps):
        rng = np.random.default_rng(index)  # the same noise for every method's sweep
        if method == "random":
            sampler = SAMPLERS["random"](index)
        else:
            _, startup, *risk = method.split(":")
            sampler = SAMPLERS["tpe"](index, int(startup), float(risk[0]) if risk else 1.0)
        trials = simulate(surrogate, sampler, rng, sersweep=method != "random", budget=budget)
        rows.append(
            {
                size: pick(trials[:size], method != "random", surrogate, rng, budget)
                for size in BUDGETS
            }
        )
        shares.append(second_half_share([t["failed"] for t in trials]))
    return rows, shares, time.perf_counter() - started


def summary(rows: list[dict]) -> dict:
    rng = np.random.default_rng(0)
    return {
        str(size): {
            "quality": bootstrap_spread([r[size]["quality"] for r in rows], rng),
            "epochs": bootstrap_spread([r[size]["epochs"] for r in rows], rng),
        }
        for size in BUDGETS
    }


def startup_methods(methods: Iterable[str]) -> list[str]:
    """The methods that compare start-up counts (every proposal taken)."""
    return [m for m in methods if m.startswith("tpe:") and m.count(":") == 1]


def choose(ratios: dict[str, dict], per_method: dict[str, dict]) -> str:
    """The start-up count to ship: the largest one as good as the best within the noise (a
    one-standard-error rule: more random draws are the safer choice on spaces the surrogate
    never saw). As good: its ratio lies inside the 90 % interval of the lowest ratio, and its
    8-trial pick inside the 90 % interval of the best 8-trial pick (with a ratio undefined
    everywhere, on the 8-trial pick alone)."""
    first = str(BUDGETS[0])
    defined = {m: r for m, r in ratios.items() if r["ratio"] is not None}
    lowest = min(defined.values(), key=lambda r: r["ratio"]) if defined else None
    best = max(ratios, key=lambda m: per_method[m][first]["quality"]["mean"])
    low, high = per_method[best][first]["quality"]["interval"]

    def as_good(method: str) -> bool:
        ratio = ratios[method]["ratio"]
        if lowest is not None and (ratio is None or ratio > lowest["ratio_interval"][1]):
            return False
        return low <= per_method[method][first]["quality"]["mean"] <= high

    return max((m for m in ratios if as_good(m)), key=lambda m: int(m.split(":")[1]))


def choose_risk(ratios: dict[str, dict], shares: dict[str, dict]) -> float:
    """The failure risk to ship: the largest one (the least redrawing) whose method meets
    both of row 8's targets here, a second-half failure share at most half of random
    search's and a ratio at most 1/3; 1 (no redrawing) when none does.

    Args:
        ratios: per method its ratio (:func:`search_efficiency.ratio_with_spread`).
        shares: per method the mean second-half failure share (``random`` among them).
    """
    ceiling = shares["random"]["mean"] / 2
    meeting = [
        float(method.split(":")[2])
        for method in ratios
        if method.count(":") == 2
        and shares[method]["mean"] <= ceiling
        and ratios[method]["ratio"] is not None
        and ratios[method]["ratio"] <= 1 / 3
    ]
    return max(meeting, default=1.0)


def demo_params(overrides: dict) -> dict:
    """The Optuna parameters of the demo space a trial's config overrides came from (the
    inverse of its ``g_over_d_lr`` times ``sgan.d_lr`` and of its stabiliser choice)."""
    params = {
        "sgan.d_lr": overrides["sgan.d_lr"],
        "g_over_d_lr": overrides["sgan.g_lr"] / overrides["sgan.d_lr"],
        "sgan.latent_dim": overrides["sgan.latent_dim"],
        "sgan.n_node": overrides["sgan.n_node"],
        "stabiliser": "none",
    }
    for strength in ("label_smoothing", "instance_noise"):
        if f"sgan.{strength}" in overrides:
            params["stabiliser"] = strength
            params[f"sgan.{strength}"] = overrides[f"sgan.{strength}"]
    return params


def recorded_risk(payload: dict, max_risk: float) -> dict:
    """How the shipped failure-risk estimate judges the draws of recorded sweeps: per method,
    over every trial finished after its sweep's first failure, how many of the trials that
    failed and of those that did not it would have judged above ``max_risk`` (from the trials
    that finished before it, in completion order; a proposal judged so is redrawn). Shows,
    on real runs rather than the surrogate, whether the estimate sees the failures coming and
    how often it would have turned TPE away from a healthy draw."""
    import optuna
    from optuna.trial import TrialState, create_trial

    space = load_space(SPACE)
    stops = set(CLASSIFIER_STOPS)
    bandwidth = SAMPLERS["tpe"](0, STARTUP_TRIALS, max_risk).bandwidth  # the shipped kernel

    distributions_by_names: dict[tuple[str, ...], dict] = {}

    def distributions(params: dict) -> dict:
        """The space's own distributions for these parameters (one study per set of names:
        a conditional branch of the space, whose ranges do not depend on the values)."""
        names = tuple(sorted(params))
        if names not in distributions_by_names:
            study = optuna.create_study()
            study.enqueue_trial(params)
            space.suggest(study.ask())
            distributions_by_names[names] = study.trials[-1].distributions
        return distributions_by_names[names]

    def finished(trial: dict) -> tuple[optuna.trial.FrozenTrial, bool]:
        params = demo_params(trial["overrides"])
        failed = bool(stops & set(trial["verdicts"]))
        frozen = create_trial(
            params=params,
            distributions=distributions(params),
            value=None if failed else 0.0,
            state=TrialState.PRUNED if failed else TrialState.COMPLETE,
            system_attrs={},
        )
        frozen.set_constraint(COLLAPSE_CONSTRAINT, float(failed))
        return frozen, failed

    figures = {}
    for method in ("sersweep", "random_full"):
        counts = {"failed": [0, 0], "healthy": [0, 0]}  # judged risky, all
        for sweep in payload["sweeps"][method]:
            trials = [finished(t) for t in sweep["trials"]]
            for index, (trial, failed) in enumerate(trials):
                before = [t for t, _ in trials[:index]]
                if not any(f for _, f in trials[:index]):
                    continue
                risk = FailureRisk(before, trial.distributions, bandwidth)
                tally = counts["failed" if failed else "healthy"]
                tally[0] += risk(trial.params) > max_risk
                tally[1] += 1
        figures[method] = {kind: {"judged_risky": n, "of": m} for kind, (n, m) in counts.items()}
    return figures


def sampler_code_hash() -> str:
    """What the simulated sweeps depend on besides the recording they were fit on: sersweep's
    TPE and the failure-risk sampler, and what this script simulates (the surrogate, the
    sweeps, the picks and the methods), as definitions."""
    digest = hashlib.sha256()
    simulated = [features, Surrogate, simulate, pick, method_rows, SAMPLERS["tpe"]]
    for part in [
        *module_definitions([ROOT / "sweep" / "failure_risk.py"]),
        *function_definitions(simulated),
    ]:
        digest.update(part.encode())
    digest.update(json.dumps([TRIALS, CONCURRENCY, STARTUPS, RISKS]).encode())
    return digest.hexdigest()[:16]


def record(payload: dict, sweeps: int) -> dict:
    """Fit the surrogate on the recording and simulate every method's sweeps on it."""
    budget = load_space(SPACE).max_epochs
    surrogate = Surrogate(payload, budget)
    rows, shares, seconds = {}, {}, {}
    methods = (
        "random",
        *(f"tpe:{k}" for k in STARTUPS),
        *(f"tpe:{STARTUP_TRIALS}:{risk}" for risk in RISKS),
    )
    for method in methods:
        found, found_shares, seconds[method] = method_rows(surrogate, method, sweeps, budget)
        rows[method] = [
            {str(size): {k: round(v, 4) for k, v in row[size].items()} for size in BUDGETS}
            for row in found
        ]
        shares[method] = [round(share, 4) for share in found_shares]
    return {
        "recording_code_hash": payload["code_hash"],
        "sampler_code_hash": sampler_code_hash(),
        "recorded": time.strftime("%Y-%m-%d"),
        "sweeps": sweeps,
        "trials": TRIALS,
        "surrogate": {
            **surrogate.fit_figures(),
            "noise_sd": surrogate.noise,
            "stopped_epochs": round(surrogate.stopped_epochs, 2),
        },
        "sampler_seconds": {m: round(v, 1) for m, v in seconds.items()},
        "rows": rows,
        "failure_shares": shares,
    }


def replay(simulated: dict, payload: dict) -> dict:
    """The figures of a simulation: per method and budget, the ratio and second-half
    failure share per method, the start-up count and failure risk chosen, and the
    recording's own figures for the methods it holds."""
    rows = {
        method: [{int(size): v for size, v in row.items()} for row in found]
        for method, found in simulated["rows"].items()
    }
    per_method = {m: summary(r) for m, r in rows.items()}
    ratios = {
        m: ratio_with_spread(rows[m], rows["random"], list(BUDGETS), np.random.default_rng(0))
        for m in rows
        if m != "random"
    }
    rng = np.random.default_rng(0)
    shares = {m: bootstrap_spread(v, rng) for m, v in simulated["failure_shares"].items()}
    startups = startup_methods(ratios)
    recorded = figures(payload, target=math.nan)["per_method"]
    return {
        "chosen": choose({m: ratios[m] for m in startups}, per_method),
        "chosen_max_risk": choose_risk(ratios, shares),
        "ratios": ratios,
        "failure_shares": shares,
        "failure_share_ratios": {
            m: round(share["mean"] / shares["random"]["mean"], 2) for m, share in shares.items()
        },
        "per_method": per_method,
        # the recording's own picks (its date is the cache's "recorded")
        "recording_picks": {
            name: {size: recorded[method][size]["quality"]["mean"] for size in map(str, BUDGETS)}
            for name, method in (("tpe:10", "sersweep"), ("random", "random_full"))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="simulate the sweeps (minutes)")
    parser.add_argument("--sweeps", type=int, default=SWEEPS, help="sweeps per method (--record)")
    args = parser.parse_args()
    payload = json.loads(TEN_STARTUP.read_text())
    if args.record:
        CACHE.write_text(json.dumps(record(payload, args.sweeps)) + "\n")
    simulated = json.loads(CACHE.read_text())
    # the surrogate is only that recording's when it was fit on it, and its sweeps only
    # sersweep's when they drew with today's sampler
    what = "the surrogate's simulation (rerun bench/sampler_surrogate.py --record)"
    is_stale = stale(simulated["recording_code_hash"], payload["code_hash"], what) | stale(
        simulated["sampler_code_hash"], sampler_code_hash(), what
    )
    emit(
        {
            "benchmark": "sampler_surrogate",
            "space": SPACE,
            "cache_stale": is_stale,
            **{k: v for k, v in simulated.items() if k not in ("rows", "failure_shares")},
            **replay(simulated, payload),
            # the shipped risk estimate on the recorded sweeps with 4 and 10 start-up draws
            "recorded_risk": {
                "startup_4": recorded_risk(
                    json.loads(WITHOUT_REDRAWING.read_text()), MAX_FAILURE_RISK
                ),
                "startup_10": recorded_risk(payload, MAX_FAILURE_RISK),
            },
        }
    )


if __name__ == "__main__":
    main()
