"""The leaders of a sweep re-evaluated on fresh seeds.

One run per configuration cannot tell configurations apart whose gap is smaller than what a
seed moves (about 0.06 of an SGAN's validation UAR; BENCHMARKS.md, selection): the sweep's
winner is partly the luckiest seed. So when a sweep ends (and with ``launch.py reeval``) the
top ``K`` configurations by the sweep's objective are trained again on the training rows
with ``S`` fresh seeds each, as Ray tasks with a trial's resources, for the sweep's epoch
budget; each run's validation curve is reduced as the sweep reduced its trials'. The pick is
the configuration whose seed mean minus one standard error is best: a lower confidence bound,
which picked better than the plain mean on the selection benchmark's calibration corpus
(bench/selection.py). The test rows choose nothing.

Each run is written whole to ``SWEEP/reeval/trialN/seedS`` or not at all, so a re-evaluation
a kill cut short is finished by ``resume`` (or ``reeval`` again) without training a finished
run twice. The figures go onto the study (user attribute ``reeval``, by trial number),
into ``SWEEP/reeval/summary.json`` (a list, one object per configuration) and ``summary.md``;
``best``, ``final``, ``report`` and the dashboard's note read them from the study.

Example:
    >>> rows = run_reeval(load_settings("runs/sweeps/demo"), top=3, seeds=3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from search_spaces.objective import epoch_value
from sermodels.config import config_from_dict
from sermodels.data import Corpus
from sermodels.errors import ConfigError
from sermodels.files import write_json
from sweep.cluster import remote_task
from sweep.corpus import load_sweep_corpus
from sweep.results import REEVAL_ATTR, load_study, sweep_ranked, trial_run_config, trial_seed
from sweep.settings import SweepSettings, sweep_space

FOLDER = "reeval"
FRESH_SEED_OFFSET = 1000  # fresh seeds: the trial's own seed + 1000, + 1001, ...
MULTI_OBJECTIVE = (
    "a sweep with several objectives is not re-evaluated: its seed means would rank one "
    "objective; choose on its Pareto front (best/final --pareto or --pick)"
)
KEPT = ("val_mean", "val_std", "val_bound", "seeds", "rank", "pick")


def train_seed(corpus: Corpus, mapping: dict, out: str, seed: int, cpus: float) -> list[dict]:
    """One re-evaluation run (a Ray task): the trial's config with another seed, trained on
    the training rows for the sweep's budget, validated every epoch; returns its history."""
    from sermodels.backend import configure_threads
    from sermodels.training.run import train_on

    configure_threads(cpus)
    config = config_from_dict(mapping, out)
    config.train.seed, config.train.save_models = seed, False
    train_on(config, corpus, out, overwrite=True)
    return json.loads((Path(out) / "history.json").read_text())


def run_reeval(
    settings: SweepSettings, top: int, seeds: int, corpus: Corpus | None = None
) -> list[dict]:
    """Re-evaluate the sweep's ``top`` configurations on ``seeds`` fresh seeds each; returns
    (and writes) the summary rows, best first. Runs already written are read, not retrained.

    Args:
        settings: the sweep's saved settings.
        top: configurations, best by the sweep's objective first (>= 1).
        seeds: fresh seeds per configuration (>= 1).
        corpus: the sweep's corpus when the caller holds it (else it is read).
    """
    if top < 1 or seeds < 1:
        flag = "--top" if top < 1 else "--seeds"
        raise ConfigError(flag, f"expected a positive integer, got {min(top, seeds)}")
    space = sweep_space(settings)
    if space.others:
        raise ConfigError(str(settings.folder), MULTI_OBJECTIVE)
    study = load_study(settings)
    trials = sweep_ranked(study)[:top]
    if not trials:
        raise ConfigError(str(settings.folder), "no completed trial to re-evaluate")
    folder = settings.folder / FOLDER
    plans = []
    for trial in trials:
        mapping = trial_run_config(settings, space, trial)
        own_seed = trial_seed(mapping)
        runs = [
            (own_seed + FRESH_SEED_OFFSET + i, folder / f"trial{trial.number}" / f"seed{i}")
            for i in range(seeds)
        ]
        plans.append((trial, mapping, runs))
    pending = [(m, seed, out) for _, m, runs in plans for seed, out in runs if not _done(out)]
    if pending:
        corpus = corpus or load_sweep_corpus(space, settings)
        task = remote_task(train_seed, settings.resources)
        import ray

        corpus_ref = ray.put(corpus)
        ray.get(
            [
                task.remote(corpus_ref, mapping, str(out), seed, settings.cpus_per_trial)
                for mapping, seed, out in pending
            ]
        )
    rows = []
    for trial, _, runs in plans:
        values = []
        for _, out in runs:
            history = json.loads((out / "history.json").read_text())
            curve = [epoch_value(metrics, space.metric) for metrics in history]
            values.append(space.reduce.reduce(curve, space.mode)[0])
        rows.append(_row(trial, values, space.mode))
    rows = _ranked(rows, space.mode)
    _record(study, rows)
    write_json(folder / "summary.json", rows)
    (folder / "summary.md").write_text(markdown(rows, space.metric, str(space.reduce)))
    return rows


def _done(out: Path) -> bool:
    """A run is written whole (``train_on`` renames its finished folder into place)."""
    return (out / "history.json").is_file()


def confidence_bound(values: Sequence[float], mode: str = "max") -> float:
    """What the pick ranks a configuration by: the mean of its seeds' values less one standard
    error (``mode`` min: plus one), the finite values only; NaN when none is finite.

    Example:
        >>> round(confidence_bound([0.6, 0.7, 0.8]), 4)
        0.6423
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    error = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else 0.0
    return statistics.fmean(finite) - (error if mode == "max" else -error)


def _row(trial: FrozenTrial, values: list[float], mode: str) -> dict:
    finite = [v for v in values if math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else math.nan
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {
        "optuna_trial": trial.number,
        "ray_trial_id": trial.user_attrs.get("ray_trial_id"),
        "sweep_objective": trial.value,
        "val_mean": mean,
        "val_std": std,
        "val_bound": confidence_bound(values, mode),
        "seeds": values,
        "params": trial.params,
    }


def _ranked(rows: list[dict], mode: str) -> list[dict]:
    """Best :func:`confidence_bound` first, a configuration whose every seed diverged last;
    the first is the pick."""
    sign = 1 if mode == "max" else -1
    ranked = sorted(
        rows, key=lambda r: -sign * r["val_bound"] if math.isfinite(r["val_bound"]) else math.inf
    )
    for rank, row in enumerate(ranked, 1):
        row["rank"], row["pick"] = rank, rank == 1
    return ranked


def _record(study: optuna.Study, rows: list[dict]) -> None:
    """The figures onto the study (the sweep's record). Optuna refuses to change a finished
    trial's attributes, so the study carries them, by trial number: user attribute
    ``reeval`` (optuna-dashboard shows it beside the study)."""
    study.set_user_attr(
        REEVAL_ATTR, {str(row["optuna_trial"]): {key: row[key] for key in KEPT} for row in rows}
    )


def markdown(rows: list[dict], metric: str, reduce: str) -> str:
    lines = [
        f"# Re-evaluation on fresh seeds ({metric}, {reduce})",
        "",
        "The sweep's objective is one run; the re-evaluated mean is what the",
        "configuration scores on other seeds. The pick is the best mean less one",
        "standard error (a lower confidence bound).",
        "",
        "| pick | Optuna trial | sweep objective | re-evaluated mean ± std | seeds |",
        "|---|---:|---:|---|---|",
    ]
    for row in rows:
        seeds = ", ".join(f"{v:.4f}" for v in row["seeds"])
        lines.append(
            f"| {'yes' if row['pick'] else ''} | {row['optuna_trial']} | "
            f"{row['sweep_objective']:.4f} | {row['val_mean']:.4f} ± "
            f"{row['val_std']:.4f} | {seeds} |"
        )
    return "\n".join(lines) + "\n"
