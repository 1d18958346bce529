"""What a sweep found, read from its Optuna study (the record of every trial's parameters,
value, state and verdict) and its Ray Tune trial folders (per-epoch curves)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from search_spaces import SearchSpace
from search_spaces.objective import COST_METRICS
from sermodels.config import config_from_dict
from sermodels.errors import ConfigError
from sweep.settings import SweepSettings, sweep_space
from sweep.study_storage import holds_nothing_yet, mask_url, open_storage


def load_study(settings: SweepSettings) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if holds_nothing_yet(settings.resolved_study_url):
            raise KeyError(settings.name)
        storage = open_storage(settings.resolved_study_url)
        return optuna.load_study(study_name=settings.name, storage=storage)
    except KeyError:
        raise ConfigError(
            mask_url(settings.resolved_study_url),
            f"no study named {settings.name!r} (did the sweep start?)",
        ) from None


def verdict_of(trial: FrozenTrial) -> str:
    if trial.user_attrs.get("error"):
        return "error"
    if trial.user_attrs.get("orphaned"):
        return "orphaned"
    return trial.user_attrs.get("verdict", "unknown" if trial.state.is_finished() else "running")


def census_lines(trials: list[FrozenTrial]) -> list[str]:
    """The failure census as Markdown lines: a table of deciding verdicts, then every failure
    mode reached (a trial can reach several; the table counts the one that decided)."""
    deciding = Counter(verdict_of(t) for t in trials)
    reached = Counter(v["name"] for t in trials for v in t.user_attrs.get("verdicts", []))
    lines = ["| verdict | trials |", "|---|---:|"]
    lines += [f"| {verdict} | {n} |" for verdict, n in deciding.most_common()]
    if reached:
        modes = ", ".join(f"{name} {n}" for name, n in reached.most_common())
        lines += ["", f"Every failure mode reached (a trial counts once per mode): {modes}."]
    return lines


REEVAL_ATTR = "reeval"  # the study's record of its leaders re-evaluated (see sweep.reeval)
INHERITED_ATTR = "inherited"  # a trial an earlier sweep trained (see sweep.warm_start)


def is_inherited(trial: FrozenTrial) -> bool:
    """Whether ``trial`` came from an earlier sweep (a warm start): it teaches the sampler,
    and is never picked, re-evaluated or counted as one of the sweep's own trials."""
    return INHERITED_ATTR in trial.user_attrs


def own_trials(
    study: optuna.Study, states: tuple[TrialState, ...] | None = None
) -> list[FrozenTrial]:
    """The trials this sweep ran (inherited ones left out)."""
    return [t for t in study.get_trials(deepcopy=False, states=states) if not is_inherited(t)]


def sweep_ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The COMPLETE trials (healthy, or labelled by a verdict that does not stop), best by
    the sweep's objective first; with several objectives, the Pareto front first, each group
    by the first objective."""
    done = own_trials(study, (TrialState.COMPLETE,))
    sign = -1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1
    front = (
        {t.number for t in _front(done, study.directions)} if len(study.directions) > 1 else set()
    )
    return sorted(done, key=lambda t: (t.number not in front, sign * t.values[0]))


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """A sweep's Pareto front (its own COMPLETE trials no other of them beats on every
    objective), by the first objective."""
    if len(study.directions) < 2:
        raise ConfigError("--pareto", "this sweep has one objective: no Pareto front")
    front = {t.number for t in _front(own_trials(study, (TrialState.COMPLETE,)), study.directions)}
    return [t for t in sweep_ranked(study) if t.number in front]


def _front(trials: list[FrozenTrial], directions: list) -> list[FrozenTrial]:
    """The non-dominated ``trials`` (Optuna's ``best_trials`` would count inherited ones)."""
    signs = [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in directions]
    scored = [(t, [s * v for s, v in zip(signs, t.values, strict=True)]) for t in trials]

    def dominated(mine: list[float]) -> bool:
        return any(
            all(o >= m for o, m in zip(other, mine, strict=True)) and other != mine
            for _, other in scored
        )

    return [t for t, mine in scored if not dominated(mine)]


def pick_trade_off(study: optuna.Study, metrics: list[str], text: str) -> FrozenTrial:
    """The Pareto front's member a trade-off names: comma-separated bounds (``val_uar>=0.6``,
    ``params<=2e5``) and one ``min METRIC`` or ``max METRIC``, over the sweep's objectives
    ``metrics`` (in order). A trade-off no member meets is a one-line error."""
    where = f"--pick {text}"
    bounds, goal = [], None
    for clause in filter(None, (c.strip() for c in text.split(","))):
        match = re.fullmatch(r"(min|max)\s+(\S+)|(\S+?)\s*(>=|<=)\s*(\S+)", clause)
        if not match:
            raise ConfigError(
                where, f"{clause!r}: expected METRIC>=X, METRIC<=X, min METRIC or max METRIC"
            )
        metric = match.group(2) or match.group(3)
        if metric not in metrics:
            raise ConfigError(where, f"{metric!r} is not one of the sweep's objectives {metrics}")
        if match.group(1):
            if goal:
                raise ConfigError(where, "expected one min or max clause")
            goal = (match.group(1), metrics.index(metric))
            continue
        try:
            bound = float(match.group(5))
        except ValueError:
            raise ConfigError(where, f"{clause!r}: {match.group(5)!r} is not a number") from None
        bounds.append((metrics.index(metric), match.group(4), bound))
    if goal is None:
        raise ConfigError(where, "expected a min METRIC or max METRIC clause")

    def meets(trial: FrozenTrial) -> bool:
        return all(
            trial.values[i] >= b if op == ">=" else trial.values[i] <= b for i, op, b in bounds
        )

    kept = [t for t in pareto_front(study) if meets(t)]
    if not kept:
        raise ConfigError(where, "no member of the Pareto front meets it")
    direction, index = goal
    return (max if direction == "max" else min)(kept, key=lambda t: t.values[index])


def chosen_trials(
    settings: SweepSettings,
    space: SearchSpace,
    study: optuna.Study,
    top: int,
    pareto: bool = False,
    pick: str | None = None,
) -> list[FrozenTrial]:
    """What ``best`` and ``final`` work on: the trade-off ``pick`` names among the sweep's
    objectives (``space``'s), else the whole Pareto front (``pareto``), else the ``top``
    best."""
    if pick:
        metrics = [o.metric for o in space.objectives]
        return [pick_trade_off(study, metrics, pick)]
    if pareto:
        return pareto_front(study)
    return top_trials(settings, top, study)


def reevaluated(study: optuna.Study) -> dict[int, dict]:
    """Optuna trial number -> its re-evaluation on fresh seeds (``val_mean``, ``val_std``,
    ``seeds``, ``rank`` by seed mean, ``pick``: rank 1), for the trials one covered."""
    return {int(number): row for number, row in study.user_attrs.get(REEVAL_ATTR, {}).items()}


def top_trials(
    settings: SweepSettings, k: int, study: optuna.Study | None = None
) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE trials: those re-evaluated on fresh seeds first, in the order of
    their seed means (the pick first), then the others by the sweep's objective."""
    study = study or load_study(settings)
    ranked = sweep_ranked(study)
    order = {number: row["rank"] for number, row in reevaluated(study).items()}
    return sorted(ranked, key=lambda t: order.get(t.number, len(order)))[:k]


def trial_run_config(settings: SweepSettings, space: SearchSpace, trial: FrozenTrial) -> dict:
    """The full run config of a trial of the sweep (``space``: its search space, loaded once
    by the caller), as ``launch.py train`` reads it."""
    overrides = json.loads(trial.user_attrs["overrides"])
    data = str(Path(settings.data).resolve()) if settings.data else None
    return space.run_config(overrides, settings.max_epochs or space.max_epochs, data)


def trial_seed(mapping: dict) -> int:
    """The seed a trial's run config (:func:`trial_run_config`) trains with: its own (see
    :class:`sweep.search.DefineByRun`), or the one its space fixes."""
    return config_from_dict(mapping, "trial").train.seed


def write_best(
    settings: SweepSettings, k: int, pareto: bool = False, pick: str | None = None
) -> list[Path]:
    """The chosen configs (:func:`chosen_trials`) as ``OUT/best/rankN_trialM.yaml``."""
    study = load_study(settings)
    space = sweep_space(settings)
    trials = chosen_trials(settings, space, study, k, pareto, pick)
    if not trials:
        raise ConfigError(str(settings.folder), "no completed trial to choose from")
    folder = settings.folder / "best"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("rank*.yaml"):
        old.unlink()
    paths = []
    for rank, trial in enumerate(trials, 1):
        path = folder / f"rank{rank}_trial{trial.number}.yaml"
        figures = reevaluated(study).get(trial.number)
        reeval = (
            f", re-evaluated {figures['val_mean']:.4f} ± {figures['val_std']:.4f} over "
            f"{len(figures['seeds'])} fresh seeds"
            if figures
            else ""
        )
        header = (
            f"# sersweep {settings.name}: rank {rank}, Optuna trial {trial.number} "
            f"(Ray {trial.user_attrs.get('ray_trial_id')}), {objective_text(space, trial)} "
            f"(epoch {trial.user_attrs.get('objective_epoch')}){reeval}\n"
            f"# train it: python launch.py train {path}\n"
        )
        body = yaml.safe_dump(trial_run_config(settings, space, trial), sort_keys=False)
        path.write_text(header + body)
        paths.append(path)
    return paths


def objective_text(space, trial: FrozenTrial) -> str:
    """A trial's objective values as a user reads them: ``val_uar 0.6123 (mean_last:3)``,
    with several objectives ``val_uar 0.61 (mean_last:3), params 21,504`` (a cost is not
    reduced over epochs)."""
    parts = []
    for objective, value in zip(space.objectives, trial.values, strict=True):
        shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"
        reduced = f" ({objective.reduce})" if objective.metric not in COST_METRICS else ""
        parts.append(f"{objective.metric} {shown}{reduced}")
    return ", ".join(parts)


def summarize(settings: SweepSettings) -> dict:
    """Counts by state and verdict, the best trial, and where the logs are."""
    study = load_study(settings)
    trials = own_trials(study)
    best = top_trials(settings, 1, study)
    summary = {
        "sweep": str(settings.folder),
        "trials": len(trials),
        "inherited": len(study.get_trials(deepcopy=False)) - len(trials),
        "states": dict(Counter(t.state.name for t in trials)),
        "verdicts": dict(Counter(verdict_of(t) for t in trials)),
        "best": None,
        "tensorboard": f"tensorboard --logdir {settings.experiment_uri}",
        "study": mask_url(settings.resolved_study_url),
    }
    if best:
        trial = best[0]
        summary["best"] = {
            "optuna_trial": trial.number,
            "ray_trial_id": trial.user_attrs.get("ray_trial_id"),
            "objective": trial.values[0],
            "objectives": objective_text(sweep_space(settings), trial),
            "objective_epoch": trial.user_attrs.get("objective_epoch"),
            "best_epoch": trial.user_attrs.get("best_epoch"),
            "reeval": reevaluated(study).get(trial.number),
            "params": trial.params,
        }
    return summary


def trial_curves(settings: SweepSettings) -> dict[str, list[dict]]:
    """Per Ray trial id, the per-epoch results Ray Tune recorded (``result.json``)."""
    curves = {}
    for folder, text in _trial_files(settings, "result.json"):
        rows = []
        for line in text.splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        if rows:
            curves[rows[-1].get("trial_id", folder.removeprefix("trial_"))] = rows
    return curves


def trial_errors(settings: SweepSettings) -> dict[str, str]:
    """Per Ray trial id, the last line of what the trial raised (Ray's ``error.txt``)."""
    return {
        folder.removeprefix("trial_"): last_line(text)
        for folder, text in _trial_files(settings, "error.txt")
        if text.strip()
    }


def last_line(error_text: str) -> str:
    """The line of a Ray error file that says what went wrong: its last non-empty one."""
    lines = [line.strip() for line in error_text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _trial_files(settings: SweepSettings, name: str):
    """``(trial folder, text)`` of each trial's file ``name`` in the experiment storage (a
    local path or a pyarrow URI such as s3://)."""
    import pyarrow.fs

    filesystem, root = pyarrow.fs.FileSystem.from_uri(settings.experiment_uri)
    for entry in filesystem.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        if entry.type != pyarrow.fs.FileType.Directory:
            continue
        try:
            with filesystem.open_input_stream(f"{entry.path}/{name}") as stream:
                yield entry.base_name, stream.read().decode(errors="replace")
        except (FileNotFoundError, OSError):
            continue  # a trial folder without that file (yet)
