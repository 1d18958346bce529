"""A user's own corpus, as the README's walkthrough runs it: TTS speech through `extract`, the
shipped spaces with only command-line data flags, `final`, and `predict` on the test folds
(whose per-window UAR, computed here from the CSV, is `final`'s test UAR) and on the WAV
folder. Real espeak-ng audio, real h5 files, real Ray and Keras."""

import csv
import importlib.util
import json
import shlex
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import ray

import launch
from sweep.cluster import init_ray
from sweep.settings import Resources

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- own-corpus:begin -->", "<!-- own-corpus:end -->"
QUICK = {"--samples": "1", "--max-epochs": "1", "--seeds": "1"}  # the test's budget


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    lines = [line for line in block.splitlines() if line.startswith("python ")]
    return [shlex.split(line)[1:] for line in lines]


def in_folder(args: list[str], folder: Path) -> list[str]:
    """The command with ``runs/own`` moved to ``folder`` and the budget cut to :data:`QUICK`."""
    args = [a.replace("runs/own", str(folder)) for a in args]
    return [QUICK.get(args[i - 1], a) if i else a for i, a in enumerate(args)]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = launch.main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng missing (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("own")
    spec = importlib.util.spec_from_file_location("tts", ROOT / "examples/tts/tts_corpus.py")
    tts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tts)
    commands = readme_commands()
    assert commands[0][0] == "examples/tts/tts_corpus.py"
    tts.synthesize(folder, speakers=4, sentences=1)
    extract = in_folder(commands[1][1:], folder)  # every test below reads the corpus
    assert extract[0] == "extract" and launch.main([*extract, "--quiet"]) == 0
    init_ray(Resources(num_cpus=2))
    assert all(args[0] == "launch.py" for args in commands[1:])
    yield folder, [args[1:] for args in commands[1:]]
    ray.shutdown()


def test_the_readme_walkthrough_from_wav_files_to_predictions(own, capsys):
    folder, commands = own
    for args in commands:
        code, out, err = run(
            in_folder(args, folder) + (["--quiet"] if args[0] in ("extract", "predict") else []),
            capsys,
        )
        assert code == 0, f"{args}: {err[-2000:]}"
    summary = json.loads((folder / "sweep/final/summary.json").read_text())
    final_uar = summary["configs"][0]["test_uar"][0]
    with open(folder / "test_folds.csv") as handle:
        rows = list(csv.DictReader(handle))
    with h5py.File(folder / "own.h5") as h5:
        columns = h5["label"].attrs["columns"].split(",")
        labels = h5["label"][:, columns.index("category")].astype(int)
        categories = h5.attrs["categories"].split(",")
        fold_rows = np.arange(h5["start_indice"][0], h5["end_indice"][0])
    assert [int(r["input"]) for r in rows] == list(fold_rows)
    truth = labels[fold_rows]
    predicted = np.array([categories.index(r["category"]) for r in rows])
    recalls = [np.mean(predicted[truth == c] == c) for c in np.unique(truth)]
    assert np.mean(recalls) == pytest.approx(final_uar, abs=1e-9)
    with open(folder / "wav_predictions.utterances.csv") as handle:
        utterances = list(csv.DictReader(handle))
    assert len(utterances) == 16  # every WAV under the folder, no sheet needed
    probabilities = [float(v) for k, v in utterances[0].items() if k.startswith("category_p_")]
    assert len(probabilities) == 4 and sum(probabilities) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "space, flags",
    [
        ("demo", ["--test-idx", "0", "--valid-idx", "1", "--unlabelled-idx", ""]),
        ("sgan_unsupervised", ["--test-idx", "0", "--valid-idx", "1"]),
        ("ser_archs", ["--test-idx", "0", "--valid-idx", "1", "--set", "train.patience=2"]),
    ],
)
def test_each_shipped_audio_space_runs_on_the_corpus_with_flags_only(own, space, flags, capsys):
    folder, _ = own
    out = folder / f"sweep_{space}"
    args = [
        "sweep",
        "--space",
        space,
        "--data",
        folder / "own.h5",
        "--samples",
        1,
        "--max-epochs",
        1,
        "--out",
        out,
        *flags,
    ]
    code, stdout, err = run(args, capsys)
    assert code == 0, err[-2000:]
    assert "(1 trials)" in stdout and "invalid_config" not in stdout  # the trial trained
    saved = (out / "sweep.yaml").read_text()
    assert "data.test_idx: '0'" in saved  # resume, best, final and report see the same base


def expect_error(args: list, capsys, *messages: str) -> str:
    code, _, err = run(args, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for message in messages:
        assert message in lines[0], lines[0]
    return lines[0]


def test_a_corpus_whose_folds_do_not_fit_names_the_flags(own, capsys):
    folder, _ = own
    args = ["sweep", "--space", "sgan_audio", "--data", folder / "own.h5", "--out", folder / "x"]
    expect_error(args, capsys, "fold 10", "--test-idx", "--unlabelled-idx")
    assert not (folder / "x").exists()


def test_ser_mtl_on_a_corpus_without_its_columns_is_a_column_error(own, capsys):
    folder, _ = own
    args = [
        "sweep",
        "--space",
        "ser_mtl",
        "--data",
        folder / "own.h5",
        "--test-idx",
        "0",
        "--valid-idx",
        "1",
        "--out",
        folder / "mtl",
    ]
    expect_error(args, capsys, "arousal_continuous")


@pytest.mark.parametrize(
    "space, flags, messages",
    [
        ("ser_mtl", ["--tasks", "category:4:category"], ["--tasks", "searches data.tasks"]),
        ("ser_mtl", ["--set", "ser.lr=0.1"], ["--set ser.lr", "parameter 'ser.lr'"]),
        ("ser_mtl", ["--set", "ser.nonsense=1"], ["--set ser.nonsense", "unknown key"]),
        ("ser_archs", ["--set", "data.valid_is_test=true"], ["validation cannot be the test"]),
        ("ser_archs", ["--test-idx", "0", "--valid-idx", "1", "--train-idx", "0,2"], ["also in"]),
    ],
)
def test_bad_selection_flags(own, space, flags, messages, capsys):
    folder, _ = own
    args = ["sweep", "--space", space, "--data", folder / "own.h5", "--out", folder / "bad", *flags]
    expect_error(args, capsys, *messages)
    assert not (folder / "bad").exists()


def test_predict_bad_input_is_one_line_and_writes_nothing(own, tmp_path, capsys):
    folder, _ = own
    final = folder / "sweep" / "final"
    if not final.exists():
        pytest.skip("needs the walkthrough's final models")
    out = tmp_path / "p.csv"
    expect_error(["predict", tmp_path, folder / "own.h5", "--out", out], capsys, "final/ folder")
    expect_error(["predict", final, tmp_path / "none.h5", "--out", out], capsys, "not found")
    expect_error(
        ["predict", final, folder / "own.h5", "--folds", "9", "--out", out],
        capsys,
        "--folds",
        "fold 9",
    )
    expect_error(
        ["predict", final, folder / "own.h5", "--features", "nope", "--out", tmp_path / "f.h5"],
        capsys,
        "no such layer",
    )
    expect_error(
        ["predict", final, folder / "own.h5", "--seed", "7", "--out", out], capsys, "--seed"
    )
    assert not list(tmp_path.iterdir())


def test_predict_writes_a_layers_activations(own, tmp_path, capsys):
    folder, _ = own
    final = folder / "sweep" / "final"
    if not final.exists():
        pytest.skip("needs the walkthrough's final models")
    import keras

    models = next(final.glob("rank1_*/seed0/models"))
    layer = keras.saving.load_model(models / "discriminator.keras", compile=False).layers[-3]
    out = tmp_path / "features.h5"
    code, _, err = run(
        [
            "predict",
            final,
            folder / "own.h5",
            "--folds",
            "0",
            "--features",
            layer.name,
            "--out",
            out,
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    with h5py.File(out) as h5, h5py.File(folder / "own.h5") as corpus:
        rows = corpus["end_indice"][0] - corpus["start_indice"][0]
        assert h5["features"].shape[0] == rows and np.isfinite(h5["features"][:]).all()


def test_train_cv_rotates_test_and_training_folds(own, capsys):
    folder, _ = own
    out = folder / "cv"
    args = [
        "train",
        ROOT / "examples/demo/ser_basic_fcn.yaml",
        "--data",
        folder / "own.h5",
        "--tasks",
        "category:4:category",
        "--test-idx",
        "0",
        "--valid-idx",
        "1",
        "--set",
        "data.r_valid=0",
        "--epochs",
        "1",
        "--cv",
        "2",
        "--out",
        out,
    ]
    code, stdout, err = run(args, capsys)
    assert code == 0, err[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["configs"]
    assert row["rotating_folds"] == [0, 2, 3] and row["test_groups"] == ["0,3", "2"]
    with h5py.File(folder / "own.h5") as h5:
        rows = sum(h5["end_indice"][f] - h5["start_indice"][f] for f in (0, 2, 3))
    assert np.sum(row["pooled_confusion"]) == rows
    assert "pooled UAR" in stdout


def test_train_validates_on_the_test_folds_only_when_told(own, capsys):
    folder, _ = own
    args = [
        "train",
        ROOT / "examples/demo/ser_basic_fcn.yaml",
        "--data",
        folder / "own.h5",
        "--tasks",
        "category:4:category",
        "--test-idx",
        "0",
        "--valid-idx",
        "0",
        "--set",
        "data.r_valid=0",
        "--epochs",
        "1",
        "--out",
        folder / "vt",
    ]
    expect_error(args, capsys, "validation would be the test set", "--valid-is-test")
    assert not (folder / "vt").exists()
    code, _, err = run([*args, "--valid-is-test"], capsys)
    assert code == 0, err[-2000:]
    metrics = json.loads((folder / "vt" / "metrics.json").read_text())
    assert metrics["valid_is_test"] is True
    # an SER run's models predict its test folds with its own test UAR
    code, _, err = run(
        [
            "predict",
            folder / "vt",
            folder / "own.h5",
            "--folds",
            "0",
            "--out",
            folder / "vt.csv",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    with open(folder / "vt.csv") as handle:
        rows = list(csv.DictReader(handle))
    with h5py.File(folder / "own.h5") as h5:
        columns = h5["label"].attrs["columns"].split(",")
        categories = h5.attrs["categories"].split(",")
        truth = h5["label"][:, columns.index("category")].astype(int)[
            [int(r["input"]) for r in rows]
        ]
    predicted = np.array([categories.index(r["category"]) for r in rows])
    recalls = [np.mean(predicted[truth == c] == c) for c in np.unique(truth)]
    assert np.mean(recalls) == pytest.approx(metrics["test_uar"], abs=1e-9)
