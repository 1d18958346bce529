"""The detector benchmark's oracle (``bench/oracle.py``): density and coverage (Naeem et al.
2020) and the kernel distance behave as defined on known distributions, and the oracle fitted
on a real demo corpus tells held-out real rows from noise and from one repeated row."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from oracle import Oracle, density_coverage, kernel_distance  # noqa: E402


def test_samples_of_the_real_distribution_cover_it_and_a_collapsed_one_does_not():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 6))
    same = density_coverage(real, rng.normal(size=(300, 6)))
    assert same["coverage"] > 0.9 and 0.7 < same["density"] < 1.3
    collapsed = density_coverage(real, np.repeat(real[:1], 300, axis=0))
    assert collapsed["coverage"] < 0.05  # one point sits in a few balls only
    far = density_coverage(real, rng.normal(loc=10.0, size=(300, 6)))
    assert far == {"coverage": 0.0, "density": 0.0}


def test_density_coverage_refuses_too_few_rows_with_a_message():
    with pytest.raises(ValueError, match="3 real rows, need more than k=5"):
        density_coverage(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="no rows to judge"):
        density_coverage(np.zeros((10, 2)), np.zeros((0, 2)))


def test_the_kernel_distance_is_near_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 8))
    same = kernel_distance(real, rng.normal(size=(200, 8)))
    shifted = [kernel_distance(real, rng.normal(loc=s, size=(200, 8))) for s in (0.5, 2.0)]
    assert abs(same) < 0.2 * shifted[0] and shifted[0] < shifted[1]


def test_the_oracle_fitted_on_a_real_corpus_tells_held_out_rows_from_noise(tmp_path):
    import h5py

    from sermodels.data.demo import write_demo_corpus

    path = write_demo_corpus(tmp_path / "demo.h5", n_speakers=6, per_speaker=40, seed=2)
    with h5py.File(path) as h5:
        features = np.asarray(h5["a_feat"], np.float32)
        labels = np.asarray(h5["label"])[:, 2].astype(int)  # the 4-class category column
        first_held_out = int(h5["start_indice"][4])  # speakers 4 and 5
    train = np.arange(len(features)) < first_held_out
    held = ~train
    known = labels.copy()
    known[::3] = -1  # some rows unlabelled, as in a semi-supervised corpus
    oracle = Oracle({"a_feat": features[train]}, known[train], seed=0)
    reference = oracle.embed({"a_feat": features[held]})
    own = oracle.judge({"a_feat": features[train][:80]}, reference)
    rng = np.random.default_rng(0)
    noise = oracle.judge({"a_feat": rng.normal(size=(80, *features.shape[1:]))}, reference)
    one_row = oracle.judge({"a_feat": np.repeat(features[train][:1], 80, axis=0)}, reference)
    assert own["coverage"] > 0.5 > noise["coverage"] and own["coverage"] > one_row["coverage"]
    assert own["kid"] < noise["kid"]
    assert 1 / oracle.classes <= own["recognised"] <= 1.0
    broken = oracle.judge({"a_feat": np.full((80, *features.shape[1:]), np.nan)}, reference)
    assert broken["coverage"] == 0.0  # a generator gone non-finite covers nothing
