"""``launch.py final``: retrain the top-K configurations on train + valid rows with several
seeds (one Ray task each), for the epochs each trial needed, and report test UAR mean ± std."""

from __future__ import annotations

import statistics
from pathlib import Path

from sermodels.backend import load as load_backend
from sermodels.config import config_from_dict
from sermodels.data import Corpus
from sermodels.errors import ConfigError
from sermodels.files import write_json
from sermodels.specs import parse_ids
from sweep.cluster import remote_task
from sweep.corpus import load_sweep_corpus
from sweep.results import chosen_trials, load_study, reevaluated, trial_run_config, trial_seed
from sweep.settings import SweepSettings, sweep_space

# seeds neither the sweep nor the re-evaluation trained: the trial's own seed + 2000, + 2001, ...
# (the re-evaluation's are its own + 1000, ...)
FINAL_SEED_OFFSET = 2000


def train_final(corpus: Corpus, mapping: dict, out: str, seed: int, cpus: float) -> dict:
    """One final run (a Ray task): fixed epochs, no validation, models saved."""
    from sermodels.backend import configure_threads
    from sermodels.training.run import train_on

    configure_threads(cpus)
    config = config_from_dict(mapping, out)
    config.train.seed, config.train.patience, config.train.save_models = seed, 0, True
    return train_on(config, corpus, out, overwrite=True)


def run_final(
    settings: SweepSettings, top: int, seeds: int, pareto: bool = False, pick: str | None = None
) -> dict:
    """Train ``top`` configs x ``seeds`` seeds; returns (and writes) the summary: per config,
    the sweep's objective (one run), its re-evaluated validation mean ± std (fresh seeds,
    where a re-evaluation ran) and the test UAR mean ± std, side by side, so the gap from
    the sweep's figure to the retrained one is in view."""
    study = load_study(settings)
    space = sweep_space(settings)
    trials = chosen_trials(settings, space, study, top, pareto, pick)
    if not trials:
        raise ConfigError(str(settings.folder), "no completed trial to retrain")
    corpus = load_sweep_corpus(space, settings).for_final_training()
    load_backend(settings.backend)
    task = remote_task(train_final, settings.resources)
    import ray

    corpus_ref = ray.put(corpus)
    folder = settings.folder / "final"
    jobs = []
    for rank, trial in enumerate(trials, 1):
        mapping = trial_run_config(settings, space, trial)
        mapping["train"]["epochs"] = final_epochs(trial)
        first = trial_seed(mapping) + FINAL_SEED_OFFSET
        for index in range(seeds):
            out = folder / f"rank{rank}_trial{trial.number}" / f"seed{index}"
            seed = first + index
            ref = task.remote(corpus_ref, mapping, str(out), seed, settings.cpus_per_trial)
            jobs.append((rank, trial, seed, ref))
    results = ray.get([ref for *_, ref in jobs])
    rows = _aggregate(jobs, results, reevaluated(study))
    summary = {"folder": str(folder), "reduce": str(space.reduce), "configs": rows}
    write_json(folder / "summary.json", summary)
    _write_markdown(folder / "summary.md", summary)
    return summary


def run_final_cv(
    settings: SweepSettings,
    top: int,
    seeds: int,
    k: int,
    pareto: bool = False,
    pick: str | None = None,
) -> dict:
    """Cross-validate the ``top`` configs: ``k`` speaker-independent rotations over the folds
    the sweep did not select them on, ``seeds`` seeds each (see :mod:`sweep.crossval`)."""
    from sweep.crossval import Candidate, cross_validate

    space = sweep_space(settings)
    trials = chosen_trials(settings, space, load_study(settings), top, pareto, pick)
    if not trials:
        raise ConfigError(str(settings.folder), "no completed trial to cross-validate")
    candidates = []
    for rank, trial in enumerate(trials, 1):
        mapping = trial_run_config(settings, space, trial)
        candidates.append(
            Candidate(
                f"rank{rank}_trial{trial.number}",
                mapping,
                final_epochs(trial),
                first_seed=trial_seed(mapping) + FINAL_SEED_OFFSET,
            )
        )
    data = config_from_dict(candidates[0].mapping, str(settings.folder)).data
    selected_on = parse_ids(data.test_idx, "data.test_idx") + parse_ids(
        data.valid_idx, "data.valid_idx"
    )
    note = None
    if data.r_valid > 0:
        note = (
            "optimistic: the sweep validated on rows carved from its training folds (r_valid), "
            "and those speakers rotate into the test groups here"
        )
    folder = settings.folder / "final" / "cv"
    resources = settings.resources
    return cross_validate(candidates, settings.data, k, seeds, folder, resources, selected_on, note)


def final_epochs(trial) -> int:
    """The epochs a trial needed to reach its best value of the sweep's objective (a
    classifier's best validation epoch; an unsupervised SGAN's best diversity epoch)."""
    attrs = trial.user_attrs
    epoch = attrs.get("objective_epoch") or attrs.get("best_epoch")
    return max(1, int(epoch or 1))


def _aggregate(jobs: list, results: list[dict], figures: dict[int, dict]) -> list[dict]:
    rows: dict[int, dict] = {}
    for (rank, trial, _seed, _), result in zip(jobs, results, strict=True):
        reeval = figures.get(trial.number, {})
        row = rows.setdefault(
            rank,
            {
                "rank": rank,
                "optuna_trial": trial.number,
                "sweep_val_objective": trial.values[0],
                "sweep_objectives": trial.values,
                "reeval_val_mean": reeval.get("val_mean"),
                "reeval_val_std": reeval.get("val_std"),
                "epochs": result["epochs"],
                "test_uar": [],
                "test_wa": [],
            },
        )
        row["test_uar"].append(result.get("test_uar"))
        row["test_wa"].append(result.get("test_wa"))
    for row in rows.values():
        uars = [u for u in row["test_uar"] if u is not None]
        row["seeds"] = len(row["test_uar"])
        row["test_uar_mean"] = statistics.fmean(uars) if uars else float("nan")
        row["test_uar_std"] = statistics.stdev(uars) if len(uars) > 1 else 0.0
    return [rows[rank] for rank in sorted(rows)]


def _write_markdown(path: Path, summary: dict) -> None:
    lines = [
        "# Final training",
        "",
        f"The sweep's objective ({summary['reduce']}) is one run on the validation rows; "
        "the re-evaluated mean is the same configuration on fresh seeds (validation); "
        "the test UAR is the final models' (trained on train + valid).",
        "",
        "| rank | Optuna trial | sweep val objective | re-evaluated val mean ± std | "
        "epochs | seeds | test UAR mean ± std |",
        "|---:|---:|---:|---|---:|---:|---|",
    ]
    for row in summary["configs"]:
        reeval = "not re-evaluated"
        if row["reeval_val_mean"] is not None:
            reeval = f"{row['reeval_val_mean']:.4f} ± {row['reeval_val_std']:.4f}"
        lines.append(
            f"| {row['rank']} | {row['optuna_trial']} | {row['sweep_val_objective']:.4f} | "
            f"{reeval} | {row['epochs']} | {row['seeds']} | "
            f"{row['test_uar_mean']:.4f} ± {row['test_uar_std']:.4f} |"
        )
    path.write_text("\n".join(lines) + "\n")
