"""What the sweep benchmarks share: labelled SGAN cases on the demo corpus as a search space,
sweeps whose trials are enqueued (so compared variants train identical trials), and each
trial's parameters, value and rows read back."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml
from common import ROOT

from sweep.settings import SweepSettings

# Demo-space SGANs that end in a known state, each seen in two seeds of 10 epochs on the demo
# corpus (docs/collapse.md has the calibration). Label = the failure mode the case is built
# to produce ("healthy": none).
CASES = {
    "healthy": (
        "healthy",
        {
            "sgan.d_lr": 1.0e-4,
            "sgan.g_lr": 1.0e-3,
            "sgan.instance_noise": 0.3,
            "sgan.label_smoothing": 0.3,
        },
    ),
    "starved_d": ("g_overpowers", {"sgan.d_lr": 1.0e-7, "sgan.g_lr": 1.0e-2}),
    "huge_noise": ("nan", {"sgan.instance_noise": 1.0e38}),
    "starved_g": ("d_overpowers", {"sgan.d_lr": 1.0e-3, "sgan.g_lr": 1.0e-6}),
    "runaway_g": ("mode_collapse", {"sgan.d_lr": 1.0e-4, "sgan.g_lr": 1.0}),
}


def case_space(path: Path, cases: dict, max_epochs: int) -> Path:
    """A space file over ``cases``: a ``case`` choice whose fixed values set each case's
    config, and a ``train.seed``, on the demo space's base."""
    demo = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    params = {
        "case": {"type": "categorical", "choices": list(cases)},
        "train.seed": {"type": "int", "low": 0, "high": 1000},
    }
    for name, (_, overrides) in cases.items():
        for key, value in overrides.items():
            params[f"{name}_{key.split('.')[1]}"] = {
                "type": "fixed",
                "value": value,
                "sets": key,
                "when": {"case": name},
            }
    space = {
        "objective": demo["objective"],
        "max_epochs": max_epochs,
        "base": demo["base"],
        "params": params,
    }
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def enqueued_sweep(settings: SweepSettings, trials: list[dict]) -> dict:
    """Run ``settings`` with exactly ``trials`` (Optuna parameter dicts), in order."""
    from sweep.runner import start_sweep

    settings.samples = len(trials)
    settings.folder.mkdir(parents=True)
    study = optuna.create_study(
        study_name=settings.name, storage=settings.resolved_study_url, direction="maximize"
    )
    for params in trials:
        study.enqueue_trial(params)
    return start_sweep(settings)


def results_by_trial(settings: SweepSettings) -> list[dict]:
    """Per Optuna trial (in order of their numbers): its number, parameters, value, state,
    user attributes, when it finished and Ray's per-epoch rows."""
    from sweep.results import load_study, trial_curves

    curves = trial_curves(settings)
    return [
        {
            "number": t.number,
            "params": t.params,
            "value": t.value,
            "state": t.state.name,
            "attrs": t.user_attrs,
            "finished": t.datetime_complete.timestamp() if t.datetime_complete else None,
            "rows": curves.get(t.user_attrs.get("ray_trial_id"), []),
        }
        for t in load_study(settings).trials
    ]
