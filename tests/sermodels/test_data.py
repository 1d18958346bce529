"""The h5 contract on real files: splits, layouts, and every kind of bad data."""

import h5py
import numpy as np
import pytest

from sermodels.config import DataConfig
from sermodels.data import load_corpus
from sermodels.errors import ConfigError, DataError
from sermodels.specs import parse_tasks


def write(path, n=12, a_shape=(2, 1, 3, 8), labels=None, folds=((0, 6), (6, 9), (9, 12)), **extra):
    with h5py.File(path, "w") as h5:
        rng = np.random.default_rng(0)
        h5["a_feat"] = extra.pop("a_feat", rng.normal(size=(n, *a_shape)).astype("f4"))
        if labels is None:
            labels = np.stack([np.arange(n) % 3, np.arange(n) % 2], 1).astype("f4")
        h5["label"] = labels
        if folds is not None:
            h5["start_indice"] = [s for s, _ in folds]
            h5["end_indice"] = [e for _, e in folds]
        for key, value in extra.items():
            h5[key] = value
    return str(path)


def config(**kw):
    base = dict(features=["a_feat"], tasks="emotion:3:0", test_idx="1", valid_idx="2")
    return DataConfig(**{**base, **kw})


def test_fold_split_and_image_layout(tmp_path):
    corpus = load_corpus(config(normalize="none"), write(tmp_path / "d.h5"))
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (6, 3, 3)
    assert corpus.input_shapes() == {"a_feat": (6, 8, 1)}  # 2 long x 3 short frames, 8 dims
    with h5py.File(tmp_path / "d.h5") as h5:
        expected = h5["a_feat"][6:9].reshape(3, 6, 8)
    np.testing.assert_allclose(corpus.test.features["a_feat"][..., 0], expected)


def test_sequence_layout_2d_and_3d(tmp_path):
    two_d = load_corpus(config(), write(tmp_path / "a.h5"), layout="sequence")
    assert two_d.input_shapes() == {"a_feat": (2, 3, 8)}
    three_d = load_corpus(config(), write(tmp_path / "b.h5", a_shape=(1, 5, 3, 8)), "sequence")
    assert three_d.input_shapes() == {"a_feat": (5, 3, 8)}


def test_validation_on_the_test_folds_needs_to_be_asked_for(tmp_path):
    path = write(tmp_path / "d.h5")
    for same in (dict(valid_idx=None), dict(valid_idx="1")):  # no valid fold, or the test folds
        with pytest.raises(ConfigError, match="validation would be the test set"):
            load_corpus(config(**same), path)
        corpus = load_corpus(config(**same, valid_is_test=True), path)
        assert corpus.valid_is_test and len(corpus.train) == 9 and len(corpus.valid) == 3


def test_overlapping_folds_are_an_error_naming_them(tmp_path):
    path = write(tmp_path / "d.h5", folds=((0, 3), (3, 6), (6, 9), (9, 12)))
    overlaps = (
        ({"valid_idx": "1,2"}, "valid_idx"),
        ({"unlabelled_idx": "2"}, "unlabelled"),
        ({"train_idx": "0,1"}, "train_idx"),
        ({"ignore_idx": "1"}, "ignore_idx"),
    )
    for overlap, key in overlaps:
        with pytest.raises(ConfigError, match=rf"{key}.*fold\(s\) \[[12]\] also in") as info:
            load_corpus(config(**{"test_idx": "1", "valid_idx": "2", **overlap}), path)
        assert "\n" not in str(info.value)


def test_empty_folds_are_skipped_as_the_source_did(tmp_path):
    path = write(tmp_path / "d.h5", folds=((0, 6), (6, 6), (6, 9), (9, 12)))
    corpus = load_corpus(config(test_idx="1:2", valid_idx="3"), path)  # fold 1 is empty
    assert len(corpus.test) == 3 and corpus.plan.skipped_folds == [1]
    with pytest.raises(DataError, match=r"test_idx names only empty folds \[1\]"):
        load_corpus(config(test_idx="1", valid_idx="3"), path)


def test_train_idx_ranges_ignored_adopted_and_unlabelled_folds(tmp_path):
    path = write(tmp_path / "d.h5", n=15, folds=((0, 3), (3, 6), (6, 9), (9, 12), (12, 15)))
    corpus = load_corpus(config(train_idx="0:0", unlabelled_idx="3", valid_idx="2"), path)
    assert len(corpus.train) == 6 and corpus.train.labelled.sum() == 3
    corpus = load_corpus(config(ignore_idx="0", adopt_idx="4", valid_idx="2"), path)
    assert sorted(corpus.train.rows) == [9, 10, 11] and sorted(corpus.adopt.rows) == [12, 13, 14]


def test_r_valid_takes_whole_speakers_out_of_training(tmp_path):
    n = 24
    labels = np.stack([np.arange(n) % 3, np.arange(n) // 4], 1).astype("f4")  # 6 speakers
    path = write(tmp_path / "s.h5", n=n, labels=labels, folds=((0, 4), (4, 24)))
    with h5py.File(path, "a") as h5:
        h5["label"].attrs["columns"], h5["label"].attrs["kinds"] = "emotion,speaker", "class,id"
    corpus = load_corpus(config(test_idx="0", valid_idx=None, r_valid=0.25), path)
    train_speakers = set(corpus.train.labels[:, 1])
    valid_speakers = set(corpus.valid.labels[:, 1])
    assert valid_speakers and not train_speakers & valid_speakers
    assert len(corpus.train) + len(corpus.valid) == 20


def test_crop_to_r_nrow_r_ncol(tmp_path):
    corpus = load_corpus(config(r_nrow=4, r_ncol=5), write(tmp_path / "d.h5"))
    assert corpus.input_shapes() == {"a_feat": (4, 5, 1)}
    with pytest.raises(DataError, match="exceeds"):
        load_corpus(config(r_nrow=7), write(tmp_path / "e.h5"))


def test_minmax_normalisation_uses_training_rows(tmp_path):
    corpus = load_corpus(config(), write(tmp_path / "d.h5"))
    train = corpus.train.features["a_feat"]
    assert train.min() == pytest.approx(-1) and train.max() == pytest.approx(1)


def test_speaker_and_ratio_splits_without_folds(tmp_path):
    labels = np.stack([np.arange(12) % 3, np.arange(12) // 4], 1).astype("f4")
    path = write(tmp_path / "s.h5", labels=labels, folds=None)
    by_speaker = load_corpus(config(speaker_column=1, test_idx="0", valid_idx="1"), path)
    assert (len(by_speaker.train), len(by_speaker.test)) == (4, 4)
    assert set(by_speaker.test.labels[:, 1]) == {0}
    ratio = load_corpus(config(test_idx=None, valid_idx=None, r_test=0.25, r_valid=0.25), path)
    assert not set(ratio.train.rows) & set(ratio.valid.rows)
    assert (len(ratio.train), len(ratio.valid), len(ratio.test)) == (6, 3, 3)


def test_reads_only_selected_rows(tmp_path):
    """Rows outside the chosen folds may even be unreadable garbage: they are never read."""
    features = np.random.default_rng(0).normal(size=(12, 2, 1, 3, 8)).astype("f4")
    features[9:] = np.nan  # fold 2 holds NaNs; a corpus without fold 2 must still load
    path = write(tmp_path / "d.h5", a_feat=features)
    corpus = load_corpus(
        config(test_idx="1", valid_idx=None, train_idx="0", valid_is_test=True), path
    )
    assert len(corpus.train) == 6


BAD_DATA = {
    "missing key": (dict(), dict(features=["v_feat"]), "v_feat: key not found"),
    "wrong rank": (dict(a_feat=np.zeros((12, 2, 6, 8), "f4")), {}, "expected 5 dims"),
    "rows disagree": (
        dict(
            a_feat=np.zeros((11, 2, 1, 3, 8), "f4"),
            n=11,
            labels=np.zeros((12, 2), "f4"),
            folds=((0, 6), (6, 9), (9, 11)),
        ),
        {},
        "has 11 rows but label has 12",
    ),
    "nan features": (dict(a_feat=np.full((12, 2, 1, 3, 8), np.nan, "f4")), {}, "non-finite"),
    "label column": (dict(), dict(tasks="emotion:3:7"), "column 7 but label has 2 columns"),
    "class id too big": (dict(), dict(tasks="emotion:2:0"), "expected class ids 0..1"),
    "empty fold": (dict(folds=((0, 6), (6, 6), (6, 12))), {}, "names only empty folds"),
    "fold out of range": (dict(), dict(test_idx="7"), "the file has 3 folds"),
    "fold range": (dict(folds=((0, 6), (6, 20))), {}, "not within"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_gets_one_line_error_naming_file_and_key(tmp_path, case):
    file_kw, config_kw, message = BAD_DATA[case]
    path = write(tmp_path / "bad.h5", **file_kw)
    with pytest.raises(DataError, match=message) as info:
        load_corpus(config(**config_kw), path)
    assert str(info.value).startswith(path) and "\n" not in str(info.value)


def test_truncated_and_non_h5_files(tmp_path):
    good = write(tmp_path / "good.h5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(open(good, "rb").read()[:2000])
    text = tmp_path / "notes.h5"
    text.write_text("not an h5 file")
    for path in (truncated, text, tmp_path / "missing.h5"):
        with pytest.raises(DataError, match=str(path)):
            load_corpus(config(), str(path))


def test_bad_task_spec_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.tasks"):
        load_corpus(config(tasks="emotion:three:0"), write(tmp_path / "d.h5"))


def test_other_heads_on_the_same_rows_are_checked_like_a_load(tmp_path):
    corpus = load_corpus(config(tasks="emotion:3:0,sex:2:1"), write(tmp_path / "d.h5"))
    (fewer,) = parse_tasks("emotion:2:0", "data.tasks")
    with pytest.raises(DataError, match="holds 2; expected class ids 0..1"):
        corpus.with_tasks([fewer])
    (sex,) = parse_tasks("sex:2:1", "data.tasks")
    assert corpus.with_tasks([sex]).tasks == [sex] and corpus.tasks[0].name == "emotion"


def named(path, names="emotion,sex", kinds="class,class"):
    with h5py.File(path, "a") as h5:
        h5["label"].attrs["columns"], h5["label"].attrs["kinds"] = names, kinds
    return path


def test_tasks_name_their_columns_and_a_wrong_use_is_an_error(tmp_path):
    path = named(write(tmp_path / "d.h5"))
    corpus = load_corpus(config(tasks="emotion:3:emotion,sex:2:sex"), path)
    assert [t.column for t in corpus.tasks] == [0, 1]
    with pytest.raises(DataError, match="names column 'mood'; the file has emotion, sex"):
        load_corpus(config(tasks="mood:3:mood"), path)
    named(path, kinds="continuous,id")
    message = r"classify \(3 classes\) column 0 'emotion' which holds continuous"
    with pytest.raises(DataError, match=message):
        load_corpus(config(tasks="emotion:3:emotion"), path)
    with pytest.raises(DataError, match="regress column 1 'sex' which holds id values"):
        load_corpus(config(tasks="sex:1:1"), path)
    unnamed = write(tmp_path / "u.h5")
    with pytest.raises(DataError, match="no column names; use its number"):
        load_corpus(config(tasks="emotion:3:emotion"), unnamed)
    assert load_corpus(config(), unnamed).tasks[0].column == 0  # numbers work as before


def test_one_d_and_vector_inputs_for_sequence_models(tmp_path):
    sequence = write(tmp_path / "t.h5", a_feat=np.ones((12, 7, 8), "f4"))
    assert load_corpus(config(), sequence, "sequence").input_shapes() == {"a_feat": (7, 8)}
    vectors = write(tmp_path / "v.h5", a_feat=np.ones((12, 8), "f4"))
    assert load_corpus(config(), vectors, "sequence").input_shapes() == {"a_feat": (1, 8)}
    with pytest.raises(DataError, match="expected 5 dims"):
        load_corpus(config(), sequence, "image")


@pytest.mark.parametrize("layout,normalize", [("image", "minmax"), ("sequence", "zscore")])
def test_preprocessing_applied_to_raw_rows_gives_the_prepared_rows(tmp_path, layout, normalize):
    """What predictions use (the saved statistics on raw rows) equals what training saw."""
    path = write(tmp_path / "d.h5")
    corpus = load_corpus(config(normalize=normalize, r_nrow=4), path, layout)
    with h5py.File(path) as h5:
        raw = h5["a_feat"][6:9]
    restored = type(corpus.preprocessing).from_dict(corpus.preprocessing.to_dict())
    prepared = restored.apply("a_feat", raw)
    np.testing.assert_allclose(prepared, corpus.test.features["a_feat"], rtol=1e-6, atol=1e-6)
