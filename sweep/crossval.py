"""Speaker-independent cross-validation as Ray tasks: ``launch.py final --cv K`` (the best
configs of a sweep, never tested on the folds the sweep selected them on) and
``launch.py train --cv K`` (one config). Reports per-fold and fold-pooled UAR / WA / F1 and
the pooled confusion matrix (pooled as the source trainer pooled its folds), with mean and
spread across seeds."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from sermodels.config import apply_overrides, config_from_dict
from sermodels.data import load_run_corpus
from sermodels.data.modes import memory_share
from sermodels.data.rotation import Rotation, plan_rotation
from sermodels.files import write_json
from sermodels.metrics import pooled_report
from sweep.cluster import remote_task, trials_at_once
from sweep.settings import Resources

METRICS = ("uar", "wa", "f1")


@dataclass
class Candidate:
    """One config to cross-validate: its name in the outputs and its run config."""

    name: str
    mapping: dict
    fixed_epochs: int | None = None  # None: the config's own stopping (validation folds)
    first_seed: int = 0  # its seeds: first_seed, first_seed + 1, ...


def train_fold(corpus, mapping: dict, out: str, seed: int, cpus: float) -> dict:
    """One rotation of one seed (a Ray task)."""
    from sermodels.backend import configure_threads
    from sermodels.training.run import train_on

    configure_threads(cpus)
    config = config_from_dict(mapping, out)
    config.train.seed, config.train.save_models = seed, False
    return train_on(config, corpus, out, overwrite=True)


def cross_validate(
    candidates: list[Candidate],
    data: str | None,
    k: int,
    seeds: int,
    folder: Path,
    resources: Resources,
    selected_on: list[int] | None,
    note: str | None = None,
) -> dict:
    """Run every candidate x seed x rotation as Ray tasks; write and return the summary.

    Args:
        candidates: the configs.
        data: the corpus (``None``: the config's ``data.path`` or the demo corpus).
        k: rotations.
        seeds: seeds per rotation.
        folder: where ``summary.json``, ``summary.md`` and each run's outputs go.
        resources: where the runs train (a sweep's, or ``train``'s own).
        selected_on: the folds a sweep selected the configs on (see
            :func:`sermodels.data.rotation.plan_rotation`); ``None`` for ``train --cv``.
        note: a caveat the summary states (e.g. why the estimate is optimistic).
    """
    share = memory_share(resources.gpus_per_trial, trials_at_once(resources))
    prepared = []
    for candidate in candidates:
        base = config_from_dict(candidate.mapping, candidate.name)
        path = data or base.data.path or _demo()
        rotation = plan_rotation(base.data, path, k, selected_on)
        corpora = []
        for selection in rotation.selections:
            mapping = apply_overrides(candidate.mapping, selection, "--cv")
            if candidate.fixed_epochs is not None:
                mapping = apply_overrides(
                    mapping, {"train.epochs": candidate.fixed_epochs, "train.patience": 0}
                )
            config = config_from_dict(mapping, candidate.name)
            corpus = load_run_corpus(config, path, resources.data_mode, share)
            if candidate.fixed_epochs is not None:
                corpus = corpus.for_final_training()
            corpora.append((mapping, corpus))
        prepared.append((candidate, rotation, corpora))
    task = remote_task(train_fold, resources)
    import ray

    jobs = []
    for candidate, _, corpora in prepared:
        for fold, (mapping, corpus) in enumerate(corpora):
            reference = ray.put(corpus)
            for index in range(seeds):
                out = folder / candidate.name / f"seed{index}" / f"fold{fold}"
                seed = candidate.first_seed + index
                ref = task.remote(reference, mapping, str(out), seed, resources.cpus_per_trial)
                jobs.append((candidate.name, seed, fold, ref))
    results = ray.get([ref for *_, ref in jobs])
    summary = {
        "folder": str(folder),
        "k": k,
        "seeds": seeds,
        "note": note,
        "configs": [
            _summarize(candidate, rotation, jobs, results) for candidate, rotation, _ in prepared
        ],
    }
    write_json(folder / "summary.json", summary)
    (folder / "summary.md").write_text(markdown(summary))
    return summary


def _summarize(candidate: Candidate, rotation: Rotation, jobs: list, results: list) -> dict:
    per_seed: dict[int, list[dict]] = {}
    for (name, seed, fold, _), result in zip(jobs, results, strict=True):
        if name == candidate.name:
            per_seed.setdefault(seed, []).append(
                {"seed": seed, "fold": fold, **_fold_metrics(result)}
            )
    folds = [row for rows in per_seed.values() for row in rows]
    pooled = []
    for rows in per_seed.values():
        matrices = [row["confusion"] for row in rows if row.get("confusion") is not None]
        if len(matrices) == len(rows):
            pooled.append(pooled_report(matrices))
    row = {
        "name": candidate.name,
        "rotating_folds": rotation.rotating,
        "held_out_folds": rotation.held_out,
        "test_groups": [s["data.test_idx"] for s in rotation.selections],
        "folds": folds,
    }
    for metric in METRICS:
        values = [f[metric] for f in folds if f.get(metric) is not None]
        row[f"fold_{metric}"] = _spread(values)
        row[f"pooled_{metric}"] = _spread([p[metric] for p in pooled])
    row["pooled_confusion"] = (
        pooled_report([f["confusion"] for f in folds if f.get("confusion") is not None])[
            "confusion"
        ]
        if pooled
        else None
    )
    return row


def _fold_metrics(result: dict) -> dict:
    return {
        "uar": result.get("test_uar"),
        "wa": result.get("test_wa"),
        "f1": result.get("test_f1"),
        "confusion": result.get("test_confusion"),
        "epochs": result.get("epochs"),
    }


def _spread(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else None  # no spread of one value
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def markdown(summary: dict) -> str:
    lines = [
        f"# Cross-validation ({summary['k']} speaker-independent rotations, "
        f"{summary['seeds']} seeds)",
        "",
    ]
    if summary.get("note"):
        lines += [f"**Note:** {summary['note']}", ""]
    for row in summary["configs"]:
        held = row["held_out_folds"]
        lines += [
            f"## {row['name']}",
            "",
            "Test groups (folds): "
            + "; ".join(f"{{{g}}}" for g in row["test_groups"])
            + "."
            + (f" Folds {held} selected the config and neither train nor test." if held else ""),
            "",
            "| mean ± std | UAR | WA | F1 |",
            "|---|---|---|---|",
        ]
        for kind in ("fold", "pooled"):
            cells = [_cell(row[f"{kind}_{m}"]) for m in METRICS]
            label = "per fold" if kind == "fold" else "folds pooled, over seeds"
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if row["pooled_confusion"] is not None:
            lines += ["", f"Pooled confusion (rows: true class): `{row['pooled_confusion']}`"]
        lines.append("")
    return "\n".join(lines)


def _cell(spread: dict) -> str:
    if spread["mean"] is None:
        return "undefined"
    if spread["std"] is None:
        return f"{spread['mean']:.4f} (one value)"
    return f"{spread['mean']:.4f} ± {spread['std']:.4f}"


def _demo() -> str:
    from sermodels.data import demo_corpus_path

    return str(demo_corpus_path())
