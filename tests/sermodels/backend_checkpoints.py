"""Run by ``test_backend.py`` in a fresh process per backend: ``save DIR CORPUS`` trains one
epoch of a tiny SGAN and SER model and checkpoints them; ``load DIR CORPUS`` restores those
checkpoints, checks every weight and optimiser slot came back unchanged, and trains on."""

import json
import sys
from pathlib import Path

import keras
import numpy as np

from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.training.run import make_run
from tests.helpers import TINY_SGAN

CONFIGS = {
    "sgan": {
        "model": "sgan",
        "data": {
            "features": ["a_feat"],
            "test_idx": "0",
            "valid_idx": "1",
            "r_nrow": 32,
            "r_ncol": 16,
        },
        "sgan": dict(TINY_SGAN),
        "train": {"epochs": 2, "batch_size": 16, "patience": 0, "save_img_interval": 0},
    },
    "ser": {
        "model": "ser",
        "data": {"features": ["a_feat"], "test_idx": "0", "valid_idx": "1"},
        "ser": {
            "frame": ["conv"],
            "utterance": ["lstm", "dnn"],
            "n_node": 8,
            "cell": 8,
            "n_filter": 4,
        },
        "train": {"epochs": 2, "batch_size": 16, "patience": 0},
    },
}


def state_arrays(run) -> list[np.ndarray]:
    weights = keras.tree.flatten(run.get_weights())
    slots = [np.asarray(v) for optimizer, _ in run.optimizers() for v in optimizer.variables]
    return [np.asarray(w) for w in weights] + slots


def main(action: str, folder: Path, corpus: Path) -> None:
    report = {"backend": keras.backend.backend()}
    for name, mapping in CONFIGS.items():
        config = config_from_dict(mapping)
        run = make_run(config, load_run_corpus(config, corpus), None)
        if action == "save":
            run.step_epoch()
            run.save_state(folder / name)
            np.savez(folder / f"{name}_expected.npz", *state_arrays(run))
        else:
            run.load_state(folder / name)
            with np.load(folder / f"{name}_expected.npz") as stored:
                expected = [stored[f"arr_{i}"] for i in range(len(stored.files))]
            restored = state_arrays(run)
            report[f"{name}_arrays"] = len(restored)
            report[f"{name}_equal"] = len(restored) == len(expected) and all(
                np.array_equal(a, b) for a, b in zip(restored, expected, strict=True)
            )
            report[f"{name}_epoch"] = run.step_epoch()["epoch"]
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
