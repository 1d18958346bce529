"""``launch.py report``: a Markdown report with PNG plots in ``OUT/report/``: optimisation
history, parameter importances and objective by parameter (Optuna's own matplotlib plots),
and what Optuna has no plot for: failure modes by hyperparameter, learning curves."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
from optuna.distributions import CategoricalDistribution  # noqa: E402
from optuna.importance import FanovaImportanceEvaluator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from optuna.visualization.matplotlib import (  # noqa: E402
    plot_optimization_history,
    plot_param_importances,
    plot_pareto_front,
    plot_slice,
)

from sweep.results import (  # noqa: E402
    INHERITED_ATTR,
    census_lines,
    is_inherited,
    load_study,
    objective_text,
    own_trials,
    pareto_front,
    reevaluated,
    summarize,
    top_trials,
    trial_curves,
    trial_errors,
    verdict_of,
)
from sweep.settings import SweepSettings, sweep_space  # noqa: E402

COLOURS = {
    "healthy": "tab:green",
    "nan": "black",
    "dead": "tab:gray",
    "mode_collapse": "tab:orange",
    "d_overpowers": "tab:red",
    "g_overpowers": "tab:blue",
}


def write_report(settings: SweepSettings) -> Path:
    """Write ``report.md`` and its plots; returns the Markdown file's path."""
    study = load_study(settings)
    space = sweep_space(settings)
    metric = space.metric
    folder = settings.folder / "report"
    folder.mkdir(parents=True, exist_ok=True)
    trials = [t for t in own_trials(study) if t.state.is_finished()]
    plots = {}
    if space.others:  # several objectives: the front first; the other plots show the first
        metrics = [o.metric for o in space.objectives]
        plots["Pareto front"] = _save_plot(pareto_plot(study, metrics), folder / "pareto.png")
    plots |= {
        "Optimisation history": _save_plot(history_plot(study, metric), folder / "history.png"),
        "Parameter importances": _save_plot(importance_plot(study), folder / "importances.png"),
        "Objective by hyperparameter": _save_plot(slice_plot(study, metric), folder / "slice.png"),
        "Failure modes by hyperparameter": _census(trials, folder / "failure_modes.png"),
        "Learning curves of the top trials": _curves(settings, metric, folder / "curves.png"),
    }
    (folder / "report.md").write_text(_markdown(settings, trials, metric, plots))
    return folder / "report.md"


def _first(study: optuna.Study):
    """Optuna's plots of one objective take a target with several: the first's value."""
    return (lambda t: t.values[0]) if len(study.directions) > 1 else None


def pareto_plot(study: optuna.Study, metrics: list[str]) -> Axes | None:
    """Optuna's Pareto-front plot of a sweep with several objectives (two or three shown)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    with _quiet():
        return plot_pareto_front(
            study,
            target_names=metrics[:3],
            targets=(lambda t: t.values[:3]) if len(metrics) > 3 else None,
        )


def history_plot(study: optuna.Study, metric: str) -> Axes | None:
    """Optuna's optimisation history of the COMPLETE trials (objective and best so far)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    with _quiet():
        return plot_optimization_history(study, target=_first(study), target_name=metric)


def importance_plot(study: optuna.Study) -> Axes | None:
    """Optuna's fANOVA parameter importances over the COMPLETE trials (seeded, so a report
    written twice agrees with itself); ``None`` while too few trials share parameters."""
    try:
        with _quiet():
            ax = plot_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=0), target=_first(study)
            )
    except (RuntimeError, ValueError):  # too few completed trials, or no shared parameters
        return None
    return ax if ax.patches else None


def slice_plot(study: optuna.Study, metric: str) -> Axes | np.ndarray | None:
    """Optuna's slice plot: each parameter's values against the objective."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not any(t.params for t in complete):
        return None
    with _quiet():
        return plot_slice(study, target=_first(study), target_name=metric)


@contextmanager
def _quiet():
    """Optuna's matplotlib plots are marked experimental, and fANOVA warns on few trials."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _save_plot(axes, path: Path) -> str | None:
    """Save one of Optuna's plots (its colour bars do not take ``tight_layout``)."""
    if axes is None:
        return None
    figure = (axes if isinstance(axes, Axes) else np.ravel(axes)[0]).figure
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path.name


def _census(trials, path: Path) -> str | None:
    """One panel per numeric parameter: value vs verdict, so collapsing regions stand out."""
    numeric = sorted(
        {
            name
            for t in trials
            for name, dist in t.distributions.items()
            if not isinstance(dist, CategoricalDistribution)
        }
    )[:9]
    if not numeric:
        return None
    verdicts = sorted({verdict_of(t) for t in trials})
    columns = min(3, len(numeric))
    rows = math.ceil(len(numeric) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, numeric, strict=False):
        for row, verdict in enumerate(verdicts):
            xs = [t.params[name] for t in trials if name in t.params and verdict_of(t) == verdict]
            ax.scatter(xs, [row] * len(xs), c=COLOURS.get(verdict, "gray"), alpha=0.7)
        dist = next(t.distributions[name] for t in trials if name in t.distributions)
        if getattr(dist, "log", False):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short axes
        ax.set_yticks(range(len(verdicts)), verdicts)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(numeric) :]:
        ax.axis("off")
    fig.suptitle("Verdict by hyperparameter value")
    return _save(fig, path)


def _curves(settings: SweepSettings, metric: str, path: Path) -> str | None:
    curves = trial_curves(settings)
    top = [t for t in top_trials(settings, 5) if t.user_attrs.get("ray_trial_id") in curves]
    if not top:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for trial in top:
        rows = curves[trial.user_attrs["ray_trial_id"]]
        points = [(r["epoch"], r[metric]) for r in rows if r.get(metric) is not None]
        ax.plot(*zip(*points, strict=True), marker="o", label=f"trial {trial.number}")
    ax.set(xlabel="epoch", ylabel=metric, title="Learning curves of the top trials")
    ax.legend()
    return _save(fig, path)


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def _markdown(settings: SweepSettings, trials, metric: str, plots: dict) -> str:
    summary = summarize(settings)
    lines = [
        f"# Sweep report: {settings.name}",
        "",
        f"{len(trials)} finished trials · study `{summary['study']}` · `{summary['tensorboard']}`",
        "",
        "## Failure census",
        "",
    ]
    lines += census_lines(trials)
    space = sweep_space(settings)
    study = load_study(settings)
    figures = reevaluated(study)
    if space.others:
        ranked, what = pareto_front(study), "Pareto front (by the first objective)"
    else:
        ranked, what = top_trials(settings, 5, study), "Top trials"
    lines += [
        "",
        f"## {what}",
        "",
        f"Objective: {metric}, {space.reduce} of a trial's epochs (one run). Re-evaluated: "
        "the same configuration on fresh seeds, mean ± std; the ranking follows it where "
        "it exists (the pick first).",
        "",
        "| rank | Optuna trial | objectives | epoch | re-evaluated | parameters |",
        "|---:|---:|---|---:|---|---|",
    ]
    for rank, trial in enumerate(ranked, 1):
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(trial.params.items()))
        row = figures.get(trial.number)
        reeval = f"{row['val_mean']:.4f} ± {row['val_std']:.4f}" if row else ""
        epoch = trial.user_attrs.get("objective_epoch")
        lines.append(
            f"| {rank} | {trial.number} | {objective_text(space, trial)} | {epoch} | "
            f"{reeval} | {params} |"
        )
    inherited = [t for t in study.get_trials(deepcopy=False) if is_inherited(t)]
    if inherited:
        lines += [
            "",
            "## Inherited trials (warm start)",
            "",
            f"{len(inherited)} trials of earlier sweeps entered the study before its first "
            "draw: they taught the sampler (and are in the plots, before this sweep's own "
            "trials) and are never picked.",
            "",
            "| Optuna trial | from sweep | its trial | state | verdict |",
            "|---:|---|---:|---|---|",
        ]
        for trial in inherited:
            source = trial.user_attrs[INHERITED_ATTR]
            lines.append(
                f"| {trial.number} | {source['sweep']} | {source['optuna_trial']} | "
                f"{trial.state.name} | {verdict_of(trial)} |"
            )
    errors = trial_errors(settings)
    if errors:
        lines += ["", "## Trials that raised", "", "| Ray trial | error |", "|---|---|"]
        lines += [f"| {rid} | {text.replace('|', '/')} |" for rid, text in sorted(errors.items())]
    for title, image in plots.items():
        lines += ["", f"## {title}", ""]
        lines.append(f"![{title}]({image})" if image else "_not enough finished trials yet_")
    return "\n".join(lines) + "\n"


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
