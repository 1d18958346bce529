"""Where runaway learning rates lead an SGAN: the demo recipe of
``bench/record_histories.py`` with D's and / or G's learning rate multiplied from epoch 3
on, trained 10 epochs on the demo corpus, and the verdicts the shipped detector reaches.

The evidence behind docs/collapse.md's "No diverging verdict": whether any loss or gradient
norm grows without bound before the run saturates (``dead``) or overflows (``nan``).

Prints, per multiplier pair, the verdicts and the largest gradient norm after the onset
relative to the last one before it; JSON last.

    .venv/bin/python bench/runaway_rates.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import record_histories
from common import emit

from sweep.collapse import CollapseDetector

ONSET = record_histories.ONSET
MULTIPLIERS = [(10, 10), (100, 100), (1000, 1000), (1, 1000), (1000, 1), (100, 1)]  # (D, G)
SEED = 7
EPOCHS = 10


def runaway(d_times: float, g_times: float):
    """A ``force`` for :func:`record_histories.record`: both rates multiplied at the onset."""

    def force(_mechanism, run, _corpus) -> None:
        if run.epoch == record_histories.ONSET - 1:
            run.gan.d_optimizer.learning_rate = record_histories.RECIPE["sgan.d_lr"] * d_times
            run.gan.g_optimizer.learning_rate = record_histories.RECIPE["sgan.g_lr"] * g_times

    return force


def growth(history: list[dict], key: str) -> float | None:
    """Largest value of ``key`` from the onset on / its value just before the onset."""
    before = history[record_histories.ONSET - 2].get(key)
    after = [row[key] for row in history[record_histories.ONSET - 1 :] if row.get(key) is not None]
    if not before or not after:
        return None
    return round(float(max(after)) / float(before), 3)


def main() -> None:
    from sermodels.data.demo import write_demo_corpus

    detector = CollapseDetector()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(write_demo_corpus(Path(tmp) / "demo.h5", progress=False))
        for d_times, g_times in MULTIPLIERS:
            record_histories.force = runaway(d_times, g_times)
            spec = {
                "set": "runaway",
                "space": "demo",
                "seed": SEED,
                "kind": "mechanism",
                "mechanism": "runaway",
                "label": None,
                "onset": ONSET,
            }
            history = record_histories.record(spec, EPOCHS, data)["history"]
            rows.append(
                {
                    "d_lr_times": d_times,
                    "g_lr_times": g_times,
                    "verdicts": [(v.name, v.epoch) for v in detector.verdicts(history)],
                    "d_grad_growth": growth(history, "d_grad_norm"),
                    "g_grad_growth": growth(history, "g_grad_norm"),
                    "max_d_loss": max(float(row["d_loss"]) for row in history),
                }
            )
            print(rows[-1], flush=True)
    emit(
        {
            "benchmark": "runaway_rates",
            "seed": SEED,
            "epochs": EPOCHS,
            "onset": record_histories.ONSET,
            "runs": rows,
            "any_growth_over_50x": any(
                (r["d_grad_growth"] or 0) > 50 or (r["g_grad_growth"] or 0) > 50 for r in rows
            ),
        }
    )


if __name__ == "__main__":
    main()
