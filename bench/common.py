"""What the sweep benchmarks share: labelled SGAN cases on the demo corpus as a search space,
and sweeps whose trials are enqueued (so compared variants train identical trials)."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
import yaml  # noqa: E402

from sweep.settings import SweepSettings  # noqa: E402

# Demo-space SGANs that end in a known state, each seen in two seeds of 10 epochs on the demo
# corpus (docs/collapse.md has the calibration). Label = the failure mode the case is built
# to produce ("healthy": none).
CASES = {
    "healthy": ("healthy", {"sgan.d_lr": 1.0e-4, "sgan.g_lr": 1.0e-3,
                            "sgan.instance_noise": 0.3, "sgan.label_smoothing": 0.3}),
    "starved_d": ("g_overpowers", {"sgan.d_lr": 1.0e-7, "sgan.g_lr": 1.0e-2}),
    "huge_noise": ("nan", {"sgan.instance_noise": 1.0e38}),
    "starved_g": ("d_overpowers", {"sgan.d_lr": 1.0e-3, "sgan.g_lr": 1.0e-6}),
    "runaway_g": ("mode_collapse", {"sgan.d_lr": 1.0e-4, "sgan.g_lr": 1.0}),
}  # fmt: skip


def case_space(path: Path, cases: dict, max_epochs: int) -> Path:
    """A space file over ``cases``: a ``case`` choice whose fixed values set each case's
    config, and a ``train.seed``, on the demo space's base."""
    demo = yaml.safe_load((Path(__file__).parent.parent / "search_spaces/demo.yaml").read_text())
    params = {"case": {"type": "categorical", "choices": list(cases)},
              "train.seed": {"type": "int", "low": 0, "high": 1000}}  # fmt: skip
    for name, (_, overrides) in cases.items():
        for key, value in overrides.items():
            params[f"{name}_{key.split('.')[1]}"] = {
                "type": "fixed", "value": value, "sets": key, "when": {"case": name}
            }  # fmt: skip
    space = {"objective": demo["objective"], "max_epochs": max_epochs, "base": demo["base"],
             "params": params}  # fmt: skip
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def enqueued_sweep(settings: SweepSettings, trials: list[dict]) -> dict:
    """Run ``settings`` with exactly ``trials`` (Optuna parameter dicts), in order."""
    from sweep.runner import start_sweep

    settings.samples = len(trials)
    settings.folder.mkdir(parents=True)
    study = optuna.create_study(study_name=settings.name, storage=settings.resolved_study_url,
                                direction="maximize")  # fmt: skip
    for params in trials:
        study.enqueue_trial(params)
    return start_sweep(settings)


def results_by_trial(settings: SweepSettings) -> list[dict]:
    """Per Optuna trial (in order of their numbers): its number, parameters, value, state,
    user attributes, when it finished and Ray's per-epoch rows."""
    from sweep.results import load_study, trial_curves

    curves = trial_curves(settings)
    return [
        {"number": t.number, "params": t.params, "value": t.value, "state": t.state.name,
         "attrs": t.user_attrs, "finished": t.datetime_complete.timestamp()
         if t.datetime_complete else None,
         "rows": curves.get(t.user_attrs.get("ray_trial_id"), [])}
        for t in load_study(settings).trials
    ]  # fmt: skip


def print_json(figures: dict) -> None:
    print(json.dumps(figures))


def finite(value) -> bool:
    """Whether ``value`` is a finite number (a recorded NaN or ``None`` is not)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def bootstrap_spread(values: list[float], rng, resamples: int = 2000) -> dict:
    """Mean of ``values`` and the 90 % bootstrap interval of that mean over ``resamples``
    resamples (non-finite values left out; ``None`` for both when none is left)."""
    import numpy as np

    values = [v for v in values if finite(v)]
    if not values:
        return {"mean": None, "interval": None}
    means = [statistics.fmean(rng.choice(values, len(values))) for _ in range(resamples)]
    return {"mean": round(statistics.fmean(values), 4),
            "interval": [round(float(q), 4) for q in np.percentile(means, [5, 95])]}  # fmt: skip


def wilson_interval(successes: int, trials: int, z: float = 1.645) -> list[float] | None:
    """The Wilson score interval of a proportion (``z`` 1.645: 90 %); ``None`` without
    trials. Unlike the normal approximation it stays inside [0, 1] at 0 or all successes.

    Example:
        >>> wilson_interval(4, 4)
        [0.5965, 1.0]
    """
    if not trials:
        return None
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    half /= 1 + z * z / trials
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]
