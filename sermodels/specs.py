"""Parsers for the source projects' compact specs: fold ids, index ranges and task specs."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

from sermodels.errors import ConfigError

CLASSIFICATION_LOSSES = (
    "categorical_crossentropy",
    "weighted_categorical_crossentropy",
    "categorical_focal_loss",
)
REGRESSION_LOSSES = ("mse", "ccc")
METRICS = ("uar", "accuracy", "f1", "precision", "ccc", "ccc_norm")
REGRESSION_METRICS = ("ccc", "ccc_norm")


def parse_ids(spec: str | int | list | None, where: str) -> list[int]:
    """Parse fold ids or layer indices: ``"0,1,2"``, ``"111:130"`` (inclusive, as the
    source SGAN), a mix ``"0,4:6"``, an int, or a list of those.

    Example:
        >>> parse_ids("0,4:6", "test_idx")
        [0, 4, 5, 6]
    """
    if spec is None or spec == "":
        return []
    if isinstance(spec, bool):
        raise ConfigError(where, f"expected fold ids like '0,1' or '3:7', got {spec!r}")
    if isinstance(spec, int):
        return _non_negative([spec], where)
    if isinstance(spec, list):
        return sorted({i for part in spec for i in parse_ids(part, where)})
    ids: list[int] = []
    for part in str(spec).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                low, high = (int(x) for x in part.split(":"))
                if low > high:
                    raise ConfigError(where, f"range {part!r} has start > end")
                ids.extend(range(low, high + 1))
            else:
                ids.append(int(part))
        except ValueError:
            raise ConfigError(
                where, f"expected ids like '0,1,2' or '111:130', got {spec!r}"
            ) from None
    return sorted(set(_non_negative(ids, where)))


def _non_negative(ids: list[int], where: str) -> list[int]:
    if any(i < 0 for i in ids):
        raise ConfigError(where, f"ids must be >= 0, got {ids}")
    return ids


def per_layer(value, depth: int, where: str) -> list[int]:
    """One size per layer from an int (every layer), a list or the source's ``"2,4"``; a
    longer list is cut to ``depth`` (as the source trainer read its lists).

    Example:
        >>> per_layer("2,4,8", 2, "ser.n_filter")
        [2, 4]
    """
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(where, f"expected integers like '2,4', got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * depth
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(where, f"expected an integer or one per layer, got {value!r}")
    if len(value) < depth:
        raise ConfigError(where, f"expected {depth} values (one per layer), got {value}")
    return value[:depth]


def select_layers(layer_names: list[str], spec: str | list | None, where: str) -> set[int]:
    """Layer indices picked by index ranges (``"0:8"``), name globs (``"a_feat_cnn_*"``) or
    ``-1`` (every layer, as the source)."""
    if spec is None or spec == "":
        return set()
    if str(spec).strip() == "-1" or spec == [-1]:
        return set(range(len(layer_names)))
    parts = spec if isinstance(spec, list) else str(spec).split(",")
    picked: set[int] = set()
    for part in (str(p).strip() for p in parts):
        if not part:
            continue
        if part.replace(":", "").isdigit():
            for index in parse_ids(part, where):
                if index >= len(layer_names):
                    raise ConfigError(
                        where, f"layer index {index} out of range: model has {len(layer_names)}"
                    )
                picked.add(index)
        else:
            hits = {i for i, name in enumerate(layer_names) if fnmatch.fnmatch(name, part)}
            if not hits:
                raise ConfigError(where, f"no layer matches {part!r}")
            picked |= hits
    return picked


@dataclass(frozen=True)
class TaskSpec:
    """One task: ``name:n_classes:column[:loss[:weight[:metric]]]``.

    ``n_classes == 1`` means a continuous target (regression, CCC metric). ``column`` is the
    label column's number, or its name in a file that names its columns (resolved to the
    number when the file is read).
    """

    name: str
    n_classes: int
    column: int | str
    loss: str
    weight: float
    metric: str

    @property
    def is_regression(self) -> bool:
        return self.n_classes == 1

    def on_column(self, column: int) -> TaskSpec:
        return replace(self, column=column)


def parse_tasks(spec: str, where: str = "tasks") -> list[TaskSpec]:
    """Parse ``arousal:3:4::,valence:3:5::`` into task specs.

    Example:
        >>> parse_tasks("category:4:2")[0].n_classes
        4
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(where, "expected tasks like 'category:4:2' (name:n_classes:column)")
    tasks = [_parse_task(part.strip(), where) for part in spec.split(",") if part.strip()]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(where, f"task names must be unique, got {names}")
    return tasks


def _parse_task(text: str, where: str) -> TaskSpec:
    fields = text.split(":") + [""] * 3
    if len(fields) - 3 < 3 or len(fields) - 3 > 6:
        raise ConfigError(
            where, f"task {text!r}: expected name:n_classes:column[:loss[:weight[:metric]]]"
        )
    name, n_classes, column, loss, weight, metric = fields[:6]
    if not name:
        raise ConfigError(where, f"task {text!r}: empty name")
    try:
        n = int(n_classes)
        col = int(column) if column.strip().lstrip("-").isdigit() else column.strip()
        w = float(weight) if weight else 1.0
    except ValueError:
        raise ConfigError(
            where, f"task {text!r}: n_classes must be an integer, weight a number"
        ) from None
    if not col and col != 0:
        raise ConfigError(where, f"task {text!r}: name the label column (number or name)")
    if n < 1 or (isinstance(col, int) and col < 0) or w < 0:
        raise ConfigError(where, f"task {text!r}: need n_classes >= 1, column >= 0, weight >= 0")
    allowed = REGRESSION_LOSSES if n == 1 else CLASSIFICATION_LOSSES
    loss = loss or allowed[0]
    if loss not in allowed:
        raise ConfigError(where, f"task {text!r}: loss {loss!r} not one of {allowed}")
    metric = metric or ("ccc" if n == 1 else "uar")
    if metric not in METRICS or (n == 1) != (metric in REGRESSION_METRICS):
        raise ConfigError(where, f"task {text!r}: metric {metric!r} does not fit this task")
    return TaskSpec(name, n, col, loss, w, metric)
