"""Resident and streaming rows behind one interface: the same training, the checks of the
driver's streaming pass, and the errors of what streaming cannot do."""

import pickle
import threading

import h5py
import numpy as np
import pytest

from sermodels.config import config_from_dict
from sermodels.data import load_run_corpus
from sermodels.data.modes import GIB, MemoryShare, choose_mode
from sermodels.data.stream import StreamSplit, check_readable, prefetched
from sermodels.errors import ConfigError, DataError
from sermodels.training.run import make_run
from tests.helpers import TINY_SGAN

# the different-bins test's samples at the tiny size
SGAN = {**TINY_SGAN, "ndb_samples": 640}
AV = dict(
    features=["a_feat", "v_feat"],
    tasks="category:4:2",
    test_idx="0",
    valid_idx="1",
    r_nrow=[32, 48],
    r_ncol=[16, 48],
    unlabelled_idx="10:11",
)
SER_DATA = dict(features=["a_feat"], tasks="category:4:2", test_idx="0,1", valid_idx="2,3")
SMALL_SER = dict(n_node=8, cell=8, f_dnn_depth=1, dnn_depth=1, frame=["dnn"], utterance=["lstm"])


def sgan_config(**train):
    return config_from_dict(
        {
            "model": "sgan",
            "data": AV,
            "sgan": SGAN,
            "train": {
                "epochs": 2,
                "batch_size": 16,
                "patience": 0,
                "save_img_interval": 0,
                "eval_train": True,
                **train,
            },
        }
    )


def ser_config(ser=None, **train):
    return config_from_dict(
        {
            "model": "ser",
            "data": SER_DATA,
            "ser": {**SMALL_SER, **(ser or {})},
            "train": {"epochs": 3, "batch_size": 16, "patience": 0, **train},
        }
    )


def histories(config, corpus_path):
    """Per mode, the per-epoch metrics and the final result of one run."""
    runs = {}
    for mode in ("resident", "stream"):
        corpus = load_run_corpus(config, corpus_path, mode)
        assert corpus.data.mode == mode and corpus.streaming == (mode == "stream")
        run = make_run(config, corpus, None)
        result = run.fit()
        runs[mode] = (run.history, result)
    return runs


def numbers(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, float) and not k.endswith("seconds")}


@pytest.mark.backends
@pytest.mark.parametrize("steps", [0, 9])
def test_sgan_trains_the_same_resident_or_streamed(tiny_corpus, steps):
    # the same seeded batch order and step noise: only where the rows come from differs
    runs = histories(sgan_config(steps_per_epoch=steps), tiny_corpus)
    (resident, resident_result), (streamed, streamed_result) = runs["resident"], runs["stream"]
    assert len(resident) == len(streamed) == 2
    if steps:
        assert [m["steps"] for m in streamed] == [steps, steps]
    for kept, read in zip(resident, streamed, strict=True):
        assert numbers(kept).keys() == numbers(read).keys()
        for key, value in numbers(kept).items():
            assert read[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert streamed_result["test_uar"] == pytest.approx(resident_result["test_uar"], abs=1e-9)
    assert streamed_result["data_mode"] == "stream"


def test_ser_streamed_differs_only_by_batch_order(tiny_corpus):
    # resident SER lets Keras shuffle its arrays; streaming draws the order itself, so the
    # epochs see other batches: the same model learns, not the same numbers
    runs = histories(ser_config(), tiny_corpus)
    for kept, read in zip(runs["resident"][0], runs["stream"][0], strict=True):
        assert read["train_loss"] == pytest.approx(kept["train_loss"], rel=0.1)
        assert abs(read["val_uar"] - kept["val_uar"]) <= 0.25
    # with train.steps_per_epoch both draw their batches alike: the same numbers again
    runs = histories(ser_config(steps_per_epoch=5), tiny_corpus)
    for kept, read in zip(runs["resident"][0], runs["stream"][0], strict=True):
        for key in ("train_loss", "val_uar"):
            assert read[key] == pytest.approx(kept[key], rel=1e-4, abs=1e-6), key


@pytest.mark.parametrize("model,normalize", [("sgan", "minmax"), ("ser", "zscore")])
def test_the_streaming_pass_fits_the_same_statistics(tiny_corpus, model, normalize):
    config = sgan_config() if model == "sgan" else ser_config()
    config.data.normalize = normalize
    resident = load_run_corpus(config, tiny_corpus, "resident")
    streamed = load_run_corpus(config, tiny_corpus, "stream")
    for key, stats in resident.preprocessing.stats.items():
        for name, value in stats.items():
            assert np.allclose(streamed.preprocessing.stats[key][name], value, rtol=1e-9)
    assert streamed.input_shapes() == resident.input_shapes()
    positions = np.array([5, 0, 3, 3])  # any order, repeats allowed
    for key, rows in streamed.valid.read(positions).items():
        assert np.allclose(rows, resident.valid.features[key][positions], atol=1e-6)
    # what a streaming sweep hands its trials: row ids and labels, not the rows
    assert len(pickle.dumps(streamed)) * 20 < len(pickle.dumps(resident))


def test_the_streaming_pass_finds_non_finite_rows_in_any_split(tmp_path, tiny_corpus):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(tiny_corpus.read_bytes())
    with h5py.File(broken, "a") as h5:
        row = int(h5["start_indice"][1]) + 2  # a validation row
        h5["v_feat"][row, 0, 0, 5, 5] = np.inf
    with pytest.raises(DataError, match=rf"broken.h5:v_feat: non-finite .* in row {row}$"):
        load_run_corpus(sgan_config(), broken, "stream")


def test_smote_enn_needs_resident_rows(tiny_corpus):
    config = ser_config({"smote_enn": True})
    corpus = load_run_corpus(config, tiny_corpus, "stream")
    with pytest.raises(ConfigError, match="ser.smote_enn: .*--data-mode resident"):
        make_run(config, corpus, None)


def test_a_node_without_the_file_fails_with_one_line(tmp_path):
    missing = str(tmp_path / "elsewhere.h5")
    with pytest.raises(DataError, match=rf"^{missing}: cannot be read on node \S+ \(.*\); "):
        check_readable(missing)
    split = StreamSplit(missing, np.arange(3), np.zeros((3, 2)), np.ones(3, bool), None)
    with pytest.raises(OSError):
        split.read(np.arange(2))


def test_auto_keeps_rows_resident_only_when_they_fit_half_a_share():
    share = MemoryShare(8 * GIB, "1/2 of this machine's 16 GiB")
    fits = choose_mode("auto", 3 * GIB, share)
    assert fits.mode == "resident" and "3.00 GiB" in fits.reason and "1/2 of" in fits.reason
    too_big = choose_mode("auto", 5 * GIB, share)
    assert too_big.mode == "stream" and "exceed half" in too_big.reason
    assert choose_mode("resident", 5 * GIB, share).mode == "resident"  # as asked
    with pytest.raises(ConfigError, match="--data-mode: expected one of"):
        choose_mode("disk", 1, share)


def test_prefetch_reads_ahead_and_hands_over_errors():
    started = threading.Event()

    def items():
        for value in range(3):
            started.set()
            yield value
        raise OSError("disk gone")

    consumed = prefetched(items(), depth=2)
    assert next(consumed) == 0 and started.is_set()
    assert [next(consumed), next(consumed)] == [1, 2]
    with pytest.raises(OSError, match="disk gone"):
        next(consumed)
    # a consumer that stops early leaves no producer thread behind
    early = prefetched(iter(range(100)), depth=2)
    assert next(early) == 0
    early.close()
    assert not [t for t in threading.enumerate() if t.name == "sersweep-prefetch"]
