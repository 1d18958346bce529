"""The one loader: a search-space YAML file becomes Optuna define-by-run calls.

A space file holds a ``base`` run config (the format ``launch.py train`` reads), the
objective, and ``params``: one entry per searched value, in order. A parameter sets the
config key it is named after (``sgan.d_lr``) unless ``sets`` names another; a name without a
dot sets nothing and only steers others (``when``, ``times``). See ``search_spaces/README.md``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import yaml

from search_spaces.objective import (
    COST_METRICS,
    DEFAULT_REDUCE,
    Objective,
    Reduction,
    check_metric,
)
from sermodels.config import DATA_FLAGS, DataConfig, apply_overrides, config_from_dict
from sermodels.errors import ConfigError
from sermodels.specs import parse_tasks

SPACES_DIR = Path(__file__).resolve().parent
TYPES = ("float", "int", "categorical", "fixed")
SEARCHABLE_SECTIONS = ("sgan", "ser", "train")  # data is read once per sweep: not searched
TASKS_KEY = "data.tasks"  # except the task list: heads and loss weights over columns already read
KNOWN_FIELDS = {
    "type",
    "low",
    "high",
    "log",
    "step",
    "choices",
    "value",
    "sets",
    "times",
    "when",
    "per_modality",
    "per_layer",
}
TOP_LEVEL = {"description", "base", "objective", "objectives", "max_epochs", "params"}


@dataclass
class Param:
    """One searched (or fixed) value of a space; see the module docstring."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list = field(default_factory=list)
    value: Any = None
    sets: str | None = None
    times: str | None = None
    when: dict[str, list] = field(default_factory=dict)
    per_modality: bool = False
    per_layer: str | int | None = None

    def suggest_one(self, trial: optuna.Trial, name: str) -> Any:
        """One Optuna call under ``name`` (a per-modality / per-layer variant of ours)."""
        if self.type == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step or 1)
        if self.type == "categorical":
            labels = [_label(c) for c in self.choices]
            return self.choices[labels.index(trial.suggest_categorical(name, labels))]
        return copy.deepcopy(self.value)


@dataclass
class SearchSpace:
    """A loaded, validated search space.

    Example:
        >>> space = load_space("demo")
        >>> study = optuna.create_study()
        >>> overrides = space.suggest(study.ask())  # {"sgan.d_lr": 0.0003, ...}
        >>> config = space.run_config(overrides)  # a RunConfig ``launch.py train`` accepts
    """

    path: Path
    base: dict
    params: list[Param]
    metric: str = "val_uar"
    mode: str = "max"
    reduce: Reduction = Reduction.parse(DEFAULT_REDUCE)
    max_epochs: int = 10
    description: str = ""
    others: tuple[Objective, ...] = ()  # a Pareto sweep's objectives after the first

    @property
    def objectives(self) -> list[Objective]:
        """Every objective, the first (``metric``, ``mode``, ``reduce``) first."""
        return [Objective(self.metric, self.mode, self.reduce), *self.others]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def modalities(self) -> list[str]:
        return list(self.base.get("data", {}).get("features") or ["a_feat"])

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask ``trial`` for every active parameter; return config overrides by key path."""
        values: dict[str, Any] = {}
        overrides: dict[str, Any] = {}
        for param in self.params:
            if not _active(param, values):
                continue
            value = self._suggest_param(param, trial, values)
            values[param.name] = value
            if param.times:
                value = _scaled(value, values[param.times])
            if param.sets:
                overrides[param.sets] = value
        return overrides

    def _suggest_param(self, param: Param, trial: optuna.Trial, values: dict) -> Any:
        if not param.per_modality:
            return self._per_layer(param, trial, param.name, values, None)
        return [
            self._per_layer(param, trial, f"{param.name}@{m}", values, i)
            for i, m in enumerate(self.modalities)
        ]

    @staticmethod
    def _per_layer(param: Param, trial, name: str, values: dict, modality: int | None) -> Any:
        if param.per_layer is None:
            return param.suggest_one(trial, name)
        depth = param.per_layer
        if isinstance(depth, str):
            depth = values[depth]
            if isinstance(depth, list):  # the depth itself is per modality
                depth = depth[modality or 0]
        return [param.suggest_one(trial, f"{name}.{layer}") for layer in range(depth)]

    def with_settings(self, settings: dict[str, Any]) -> SearchSpace:
        """This space with its base changed by command-line settings (``{"data.test_idx":
        "0,1", ...}``: the data flags and ``--set``). A key the space searches cannot be set:
        that is an error naming the parameter."""
        if not settings:
            return self
        searched = {p.sets: p.name for p in self.params if p.sets}
        for key in settings:
            if key in searched:
                raise ConfigError(
                    setting_flag(key),
                    f"{self.path.name} searches {key} (parameter {searched[key]!r}); "
                    "change the space instead",
                )
        where = f"{self.path}: base with {', '.join(setting_flag(k) for k in settings)}"
        base = apply_overrides(self.base, settings, "--set")
        config_from_dict(base, where)
        space = replace(self, base=base)
        _check_one_sample(space, where)
        return space

    def run_config(
        self, overrides: dict[str, Any], max_epochs: int | None = None, data_path: str | None = None
    ) -> dict:
        """The base config with ``overrides`` applied, as a plain mapping."""
        mapping = copy.deepcopy(self.base)
        for path, value in overrides.items():
            section, key = path.split(".", 1)
            mapping.setdefault(section, {})[key] = value
        if max_epochs is not None:
            mapping.setdefault("train", {})["epochs"] = max_epochs
        if data_path is not None:
            mapping.setdefault("data", {})["path"] = str(data_path)
        return mapping


def setting_flag(key: str) -> str:
    """The command-line flag that sets ``key``: ``--test-idx`` for ``data.test_idx`` and the
    other data flags, ``--set KEY`` for the rest."""
    section, _, name = key.partition(".")
    if section == "data" and name in DATA_FLAGS:
        return "--" + name.replace("_", "-")
    return f"--set {key}"


def space_names() -> list[str]:
    """Names of the spaces shipped in ``search_spaces/``."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def resolve_space_path(name_or_path: str | Path) -> Path:
    """A shipped space's name (``sgan_audio``) or a YAML file's path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(str(path), "search space file not found")
        return path
    shipped = SPACES_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ConfigError(
            f"--space {name_or_path}", f"no such space file or shipped space {space_names()}"
        )
    return shipped


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Read and validate a space; every problem is a one-line :class:`ConfigError`."""
    path = resolve_space_path(name_or_path)
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(where, f"not valid YAML{line}") from None
    if not isinstance(raw, dict):
        raise ConfigError(where, "expected a mapping with keys base, params (and objective)")
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise ConfigError(
            f"{where}: {sorted(unknown)[0]}", f"unknown key (known: {sorted(TOP_LEVEL)})"
        )
    base = raw.get("base") or {}
    config_from_dict(base, f"{where}: base")  # the base alone must be a valid run config
    space = SearchSpace(
        path=path,
        base=base,
        params=_parse_params(raw.get("params"), where, base),
        description=str(raw.get("description", "")),
        max_epochs=_positive_int(raw.get("max_epochs", 10), f"{where}: max_epochs"),
        **_objectives(raw, where),
    )
    _check_one_sample(space, where)
    return space


def _objective(raw: Any, where: str) -> dict:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict) or set(raw) - {"metric", "mode", "reduce"}:
        raise ConfigError(
            f"{where}: objective", "expected {metric: NAME, mode: max|min, reduce: HOW}"
        )
    mode = raw.get("mode", "max")
    if mode not in ("max", "min"):
        raise ConfigError(f"{where}: objective.mode", f"expected max or min, got {mode!r}")
    reduce = Reduction.parse(raw.get("reduce", DEFAULT_REDUCE), f"{where}: objective.reduce")
    metric = check_metric(raw.get("metric", "val_uar"), f"{where}: objective.metric")
    return {"metric": metric, "mode": mode, "reduce": reduce}


def _objectives(raw: dict, where: str) -> dict:
    """``objective`` (one) or ``objectives`` (a Pareto sweep: two or more, the first the one
    ASHA ranks by)."""
    if "objectives" not in raw:
        single = _objective(raw.get("objective"), where)
        _check_first(single["metric"], f"{where}: objective")
        return single
    entries = raw["objectives"]
    if "objective" in raw:
        raise ConfigError(f"{where}: objectives", "give objective or objectives, not both")
    if not isinstance(entries, list) or len(entries) < 2:
        raise ConfigError(f"{where}: objectives", "expected a list of two or more objectives")
    parsed = [_objective(entry, f"{where}: objectives[{i}]") for i, entry in enumerate(entries)]
    _check_first(parsed[0]["metric"], f"{where}: objectives[0]")
    metrics = [p["metric"] for p in parsed]
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"{where}: objectives", f"a metric named twice in {metrics}")
    return {**parsed[0], "others": tuple(Objective(**p) for p in parsed[1:])}


def _check_first(metric: str, where: str) -> None:
    """The first objective is the one trials are ranked by while they run (ASHA, re-evaluation,
    the reduction's epoch): a cost is the same at every epoch and cannot be it."""
    if metric in COST_METRICS:
        raise ConfigError(
            where,
            f"{metric} is a cost, the same every epoch; the first objective must be a "
            f"per-epoch metric (list {metric} after it)",
        )


def _parse_params(raw: Any, where: str, base: dict) -> list[Param]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: params", "expected a mapping of parameter name -> spec")
    params: dict[str, Param] = {}
    for name, spec in raw.items():
        params[name] = _parse_param(str(name), spec, f"{where}: params.{name}", params, base)
    return list(params.values())


def _parse_param(name: str, spec: Any, where: str, earlier: dict[str, Param], base) -> Param:
    if not isinstance(spec, dict):
        spec = {"type": "fixed", "value": spec}  # `key: value` fixes a value
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise ConfigError(
            f"{where}.{sorted(unknown)[0]}", f"unknown field (known: {sorted(KNOWN_FIELDS)})"
        )
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type", f"expected one of {TYPES}, got {kind!r}")
    param = Param(
        name=name,
        type=kind,
        log=_bool(spec.get("log", False), f"{where}.log"),
        per_modality=_bool(spec.get("per_modality", False), f"{where}.per_modality"),
        sets=spec.get("sets", name if "." in name else None),
        times=spec.get("times"),
        value=spec.get("value"),
    )
    if kind in ("float", "int"):
        _parse_range(param, spec, where)
    elif kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices", "expected a non-empty list")
        param.choices = choices
    elif "value" not in spec:
        raise ConfigError(f"{where}.value", "a fixed parameter needs a value")
    _check_target(param, where)
    _check_references(param, spec, where, earlier)
    return param


def _parse_range(param: Param, spec: dict, where: str) -> None:
    number = int if param.type == "int" else (int, float)
    for key in ("low", "high"):
        value = _number(spec.get(key), f"{where}.{key}")
        if not isinstance(value, number):
            raise ConfigError(f"{where}.{key}", f"expected an {param.type}, got {value!r}")
        setattr(param, key, value)
    if param.low > param.high:
        raise ConfigError(f"{where}.low", f"low {param.low} > high {param.high}")
    if param.log and param.low <= 0:
        raise ConfigError(f"{where}.low", f"a log scale needs low > 0, got {param.low}")
    if spec.get("step") is not None:
        param.step = _number(spec["step"], f"{where}.step")
        if not isinstance(param.step, number) or param.step <= 0 or param.log:
            raise ConfigError(f"{where}.step", "expected a positive step (and no log scale)")


def _check_target(param: Param, where: str) -> None:
    if param.sets is None or param.sets == TASKS_KEY:
        return
    section, _, key = str(param.sets).partition(".")
    if section not in SEARCHABLE_SECTIONS or not key:
        raise ConfigError(
            f"{where}.sets",
            f"expected SECTION.KEY with SECTION in {SEARCHABLE_SECTIONS}, or {TASKS_KEY} (the "
            f"rest of data is fixed: the corpus is read once per sweep), got {param.sets!r}",
        )


def _check_references(param: Param, spec: dict, where: str, earlier: dict[str, Param]) -> None:
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise ConfigError(f"{where}.when", "expected {PARAM: value or [values]}")
    for other, allowed in when.items():
        if other not in earlier:
            raise ConfigError(
                f"{where}.when", f"names unknown parameter {other!r} (define it above)"
            )
        param.when[other] = allowed if isinstance(allowed, list) else [allowed]
    if param.times is not None:
        ref = earlier.get(param.times)
        if ref is None or ref.type not in ("float", "int") or ref.per_modality:
            raise ConfigError(
                f"{where}.times", f"expected a numeric parameter defined above, got {param.times!r}"
            )
        if param.type not in ("float", "int"):
            raise ConfigError(f"{where}.times", "only float or int parameters can be scaled")
    depth = spec.get("per_layer")
    if depth is not None:
        ref = earlier.get(depth) if isinstance(depth, str) else None
        fixed = isinstance(depth, int) and not isinstance(depth, bool) and depth > 0
        if not fixed and (ref is None or ref.type != "int" or ref.when or ref.per_layer):
            expected = "a positive integer or an unconditional int parameter defined above"
            raise ConfigError(f"{where}.per_layer", f"expected {expected}, got {depth!r}")
        param.per_layer = depth


def _check_one_sample(space: SearchSpace, where: str) -> None:
    """Draw one point and build its run config: a choice of the wrong type fails here."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    try:
        overrides = space.suggest(trial)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: params", f"cannot draw a value ({exc})") from None
    config_from_dict(space.run_config(overrides), f"{where}: a drawn config")
    for param in space.params:  # every choice of a plain categorical / fixed value, too
        plain = not (param.per_modality or param.per_layer or param.times)
        if param.sets and plain and param.type in ("categorical", "fixed"):
            for choice in param.choices if param.type == "categorical" else [param.value]:
                mapping = space.run_config({param.sets: choice})
                config_from_dict(mapping, f"{where}: params.{param.name}")
                if param.sets == TASKS_KEY:
                    check_task_choice(choice, space.base, f"{where}: params.{param.name}")


def check_task_choice(tasks: Any, base: dict, where: str) -> list:
    """A searched task list may only use label columns the base task list reads."""
    base_tasks = base.get("data", {}).get("tasks", DataConfig.tasks)
    base_columns = {t.column for t in parse_tasks(base_tasks, where)}
    chosen = parse_tasks(tasks, where)
    extra = {t.column for t in chosen} - base_columns
    if extra:
        raise ConfigError(
            where, f"uses label columns {sorted(extra)} that base.data.tasks does not read"
        )
    return chosen


def _active(param: Param, values: dict) -> bool:
    return all(name in values and values[name] in allowed for name, allowed in param.when.items())


def _scaled(value, factor):
    scaled = value * factor
    return float(scaled) if isinstance(scaled, float) else scaled


def _label(choice: Any) -> Any:
    """Optuna stores None/bool/int/float/str choices; lists and mappings travel as JSON."""
    if choice is None or isinstance(choice, (bool, int, float, str)):
        return choice
    return json.dumps(choice, separators=(",", ":"))


def _number(value: Any, where: str) -> int | float:
    """YAML 1.1 reads ``1e-5`` (no dot) as a string: accept it as a float."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(where, f"expected a number, got {value!r}") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(where, f"expected a finite number, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, f"expected true or false, got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(where, f"expected a positive integer, got {value!r}")
    return value
