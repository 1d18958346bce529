"""Malformed input, one test each, through the CLI's entry point: one ``error:`` line naming
what is wrong and where, exit code 2, no sweep folder and no rows in the study database.

The commands run in this process (``launch.main``) so that TensorFlow is imported once for
the whole table; ``tests/test_cli.py`` runs the same paths as subprocesses.
"""

from pathlib import Path

import h5py
import numpy as np
import optuna
import pytest
import yaml

import launch
from sweep.study_storage import open_storage
from tests import helpers

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them


GOOD_SPACE = """
base:
  model: ser
  data: {features: [a_feat], tasks: category:4:2, test_idx: "0", valid_idx: "1"}
  ser: {frame: [dnn], utterance: [dnn], n_node: 8}
params:
  ser.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""


@pytest.fixture(scope="module")
def good_h5(demo_corpus) -> Path:
    return demo_corpus(4, 6, seed=1)


@pytest.fixture(scope="module")
def good_space(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "good.yaml"
    path.write_text(GOOD_SPACE)
    return path


def rewrite(good: Path, path: Path, change) -> Path:
    """A copy of the good corpus with ``change(arrays)`` applied to its datasets."""
    with h5py.File(good, "r") as h5:
        arrays = {key: h5[key][()] for key in h5}
    change(arrays)
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            h5[key] = value
    return path


def _set(key, value):
    return lambda arrays: arrays.__setitem__(key, value(arrays[key]))


def _drop(key):
    return lambda arrays: arrays.pop(key)


def _poke(key, index, value):
    def change(arrays):
        arrays[key] = arrays[key].copy()
        arrays[key][index] = value

    return change


H5_CASES = {
    "missing feature key": (_drop("a_feat"), "a_feat: key not found"),
    "missing label key": (_drop("label"), "label: key not found"),
    "feature of wrong rank": (_set("a_feat", lambda a: a[:, :, 0]), "got shape (24, 10, 10, 64)"),
    "label of wrong rank": (_set("label", lambda a: a[:, 2]), "expected 2 dims"),
    "lengths disagree": (_set("a_feat", lambda a: a[:-3]), "has 21 rows but label has 24"),
    "NaN feature": (_poke("a_feat", (7, 0, 0, 0, 0), np.nan), "non-finite values"),
    "Inf feature": (_poke("a_feat", (2, 1, 0, 3, 9), np.inf), "non-finite values"),
    "label out of range": (_poke("label", (5, 2), 9), "holds 9; expected class ids 0..3"),
    "fractional class id": (_poke("label", (5, 2), 1.5), "expected class ids 0..3"),
    "label column missing": (_set("label", lambda a: a[:, :2]), "column 2 but label has 2"),
    "empty fold": (_poke("end_indice", 1, 6), "valid_idx names only empty folds [1]"),
    "fold beyond the rows": (_poke("end_indice", 3, 40), "not within"),
    "fold bounds disagree": (_set("end_indice", lambda a: a[:3]), "start_indice"),
    "too few folds": (_set("start_indice", lambda a: a[:1]), "start_indice"),
}


@pytest.mark.parametrize("case", H5_CASES)
def test_malformed_h5(case, good_h5, good_space, tmp_path, capsys):
    change, message = H5_CASES[case]
    bad = rewrite(good_h5, tmp_path / "bad.h5", change)
    argv = ["--data", bad, "--space", good_space]
    expect_clean_failure(argv, [str(bad), message], tmp_path, capsys)


def test_truncated_h5(good_h5, good_space, tmp_path, capsys):
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(good_h5.read_bytes()[:4096])
    expect_clean_failure(["--data", bad, "--space", good_space], [str(bad)], tmp_path, capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"a_feat,label\n1,2\n", "not an HDF5 file"), (b"", "not an HDF5 file")],
    ids=["text file", "empty file"],
)
def test_not_an_h5_file(content, message, good_space, tmp_path, capsys):
    bad = tmp_path / "corpus.h5"
    bad.write_bytes(content)
    argv = ["--data", bad, "--space", good_space]
    expect_clean_failure(argv, [str(bad), message], tmp_path, capsys)


SPACE_CASES = {
    "YAML syntax": ("params: {ser.lr: {type: float, low: 1, high: [}", "not valid YAML"),
    "unknown type": ("params: {ser.lr: {type: gaussian}}", "params.ser.lr.type"),
    "low above high": ("params: {ser.lr: {type: float, low: 0.1, high: 0.01}}", "> high"),
    "log of zero": ("params: {ser.lr: {type: float, low: 0, high: 1, log: true}}", "log scale"),
    "bound not a number": (
        "params: {ser.lr: {type: float, low: abc, high: 1}}",
        "expected a number",
    ),
    "unknown condition": (
        "params: {ser.lr: {type: float, low: 0.1, high: 0.2, when: {arch: cnn}}}",
        "unknown parameter 'arch'",
    ),
    "choice of wrong type": (
        "params: {ser.n_node: {type: categorical, choices: [many]}}",
        "expected int",
    ),
    "unknown config key": ("params: {ser.nodes: {type: int, low: 8, high: 16}}", "unknown key"),
    "unknown top-level key": ("speed: fast", "unknown key"),
    "bad objective mode": ("objective: {metric: val_uar, mode: best}", "objective.mode"),
    "unknown reduction": ("objective: {metric: val_uar, reduce: median}", "objective.reduce"),
    "reduction window 0": ('objective: {metric: val_uar, reduce: "mean_last:0"}', "mean_last:K"),
    "unknown objective metric": ("objective: {metric: speed}", "unknown objective metric"),
    "a cost first": (
        "objectives: [{metric: latency_ms, mode: min}, {metric: val_uar}]",
        "latency_ms is a cost",
    ),
    "task spec not n_classes": (
        "params: {data.tasks: {type: categorical, choices: [category:four:2]}}",
        "data.tasks",
    ),
}


@pytest.mark.parametrize("case", SPACE_CASES)
def test_malformed_space(case, good_h5, tmp_path, capsys):
    body, message = SPACE_CASES[case]
    space = tmp_path / "space.yaml"
    space.write_text(GOOD_SPACE.split("params:")[0] + body + "\n")
    argv = ["--data", good_h5, "--space", space]
    expect_clean_failure(argv, [str(space), message], tmp_path, capsys)


def test_empty_space_file(good_h5, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("")
    argv = ["--data", good_h5, "--space", space]
    expect_clean_failure(argv, [str(space)], tmp_path, capsys)


def test_space_base_with_bad_fold_ids(good_h5, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(GOOD_SPACE.replace('test_idx: "0"', 'test_idx: "0:x"'))
    argv = ["--data", good_h5, "--space", space]
    expect_clean_failure(argv, ["data.test_idx"], tmp_path, capsys)


def test_space_base_naming_a_fold_the_file_lacks(good_h5, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(GOOD_SPACE.replace('test_idx: "0"', 'test_idx: "9"'))
    argv = ["--data", good_h5, "--space", space]
    expect_clean_failure(argv, [str(good_h5), "names fold 9"], tmp_path, capsys)


CLI_CASES = {
    "missing data file": (["--data", "{tmp}/nowhere.h5"], ["nowhere.h5: file not found"]),
    "data is a folder": (["--data", "{tmp}"], ["{tmp}"]),
    "missing space file": (["--space", "{tmp}/nowhere.yaml"], ["nowhere.yaml"]),
    "unknown space name": (["--space", "no_such_space"], ["no such space", "demo"]),
    "zero samples": (["--samples", "0"], ["--samples", "positive integer"]),
    "negative samples": (["--samples", "-3"], ["--samples", "positive integer"]),
    "zero concurrency": (["--concurrency", "0"], ["--concurrency", "positive integer"]),
    "zero snapshot cadence": (["--snapshot-every", "0"], ["--snapshot-every", "positive integer"]),
    "zero max epochs": (["--max-epochs", "0"], ["--max-epochs", "positive integer"]),
    "unknown reduction": (["--reduce", "luckiest"], ["--reduce", "mean_last:K"]),
    "reduction without window": (["--reduce", "smoothed"], ["--reduce", "smoothed:K"]),
    "negative re-evaluation": (["--reeval-top", "-1"], ["--reeval-top", ">= 0"]),
    "no re-evaluation seeds": (["--reeval-seeds", "0"], ["--reeval-seeds", "positive"]),
    "zero CPUs per trial": (["--cpus-per-trial", "0"], ["--cpus-per-trial", "> 0"]),
    "negative GPUs per trial": (["--gpus-per-trial", "-1"], ["--gpus-per-trial", ">= 0"]),
    "GPU fraction above 1": (["--gpus-per-trial", "1.5"], ["--gpus-per-trial"]),
    "seed not a number": (["--seed", "x"], ["--seed", "invalid int"]),
    "unknown sampler": (["--sampler", "grid"], ["--sampler", "invalid choice"]),
    "no start-up trials": (["--startup-trials", "0"], ["--startup-trials", "positive integer"]),
    "failure risk above 1": (["--max-failure-risk", "1.5"], ["--max-failure-risk", "(0, 1]"]),
    "no failure risk": (["--max-failure-risk", "0"], ["--max-failure-risk", "(0, 1]"]),
    "unknown scheduler": (["--scheduler", "pbt"], ["--scheduler", "invalid choice"]),
    "unknown verdict": (["--stop-on", "sad"], ["--stop-on", "unknown verdicts"]),
    "detector without value": (["--detector", "patience"], ["--detector", "KEY=VALUE"]),
    "detector bad setting": (["--detector", "patience=0"], ["--detector", "patience"]),
    "unwritable output": (["--out", "{tmp}/a_file/sweep"], ["a_file/sweep", "cannot create"]),
    "study URL scheme": (["--study-url", "nodb://x"], ["nodb://x", "Optuna storage"]),
    "study in a missing folder": (
        ["--study-url", "sqlite:///{tmp}/no/dir/s.db"],
        ["no/dir/s.db", "Optuna storage"],
    ),
    "journal in a missing folder": (
        ["--study-url", "journal:{tmp}/no/dir/s.log"],
        ["no/dir/s.log", "journal file's folder does not exist"],
    ),
    "Ray storage scheme": (["--ray-storage", "nosuch://bucket/x"], ["--ray-storage"]),
    "address not HOST:PORT": (["--address", "nowhere"], ["--address nowhere", "HOST:PORT"]),
    "unreachable address": (["--address", "127.0.0.1:1"], ["--address 127.0.0.1:1", "within"]),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_malformed_command_line(case, good_h5, good_space, tmp_path, capsys):
    args, messages = CLI_CASES[case]
    (tmp_path / "a_file").write_text("a file, not a folder")
    fill = {"tmp": str(tmp_path)}
    args = [a.format(**fill) for a in args]
    if "--space" not in args:
        args += ["--space", good_space]
    if "--data" not in args:
        args += ["--data", good_h5]
    expect_clean_failure(args, [m.format(**fill) for m in messages], tmp_path, capsys)


def expect_clean_failure(args: list, messages: list[str], tmp_path: Path, capsys) -> None:
    """``launch.py sweep ARGS`` fails with one line holding every message, exit code 2, and
    leaves no sweep folder and no study in a database given by ``--study-url``."""
    args = [str(a) for a in args]
    out = tmp_path / "sweep"
    if "--out" not in args:
        args += ["--out", str(out)]
    database = tmp_path / "study.db"
    if "--study-url" not in args:
        args += ["--study-url", f"sqlite:///{database}"]
    try:
        code = launch.main(["sweep", *args])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    for message in messages:
        assert message in lines[0], f"{message!r} not in {lines[0]!r}"
    assert not out.exists() and not (tmp_path / "a_file" / "sweep").exists()
    if database.exists():  # the tables may exist; no study was created in them
        assert optuna.get_all_study_names(f"sqlite:///{database}") == []


SER_RUN = {
    "model": "ser",
    "data": {"features": ["a_feat"], "tasks": "category:4:2", "test_idx": "0", "valid_idx": "1"},
    "ser": {"frame": ["conv"], "utterance": ["dnn"], "n_node": 8},
    "train": {"epochs": 1, "batch_size": 8},
}
OPTION_CASES = {
    "per-layer list too short": (
        {"ser": {"conv_depth": 2, "n_filter": [4]}},
        "ser.n_filter",
        "2 values",
    ),
    "per-layer list not numbers": ({"ser": {"n_row": "2,x"}}, "ser.n_row", "integers"),
    "size below 1": ({"ser": {"pool_c": 0}}, "ser.pool_c", ">= 1"),
    "pool larger than the map": ({"ser": {"pool_r": 64}}, "ser.pool_r", "smaller pool"),
    "stride 0": ({"ser": {"stride": 0}}, "ser.stride", ">= 1"),
    "frame pooling": ({"ser": {"frame_pool": "max"}}, "ser.frame_pool", "flatten"),
    "input normalisation": ({"ser": {"input_norm": "layer"}}, "ser.input_norm", "batchnorm"),
    "negative clipvalue": ({"ser": {"clipvalue": -1.0}}, "ser.clipvalue", "> 0"),
    "class weight formula": (
        {"ser": {"class_weight_formula": "sqrt"}},
        "ser.class_weight_formula",
        "complement",
    ),
    "ELM without hidden units": ({"ser": {"elm_hidden": 0}}, "ser.elm_hidden", ">= 1"),
    "ELM on a regression task": (
        {"ser": {"post_elm": True}, "data": {"tasks": "a:1:6"}},
        "ser.post_elm",
        "classification",
    ),
    "stop on what": ({"train": {"stop_on": "accuracy"}}, "train.stop_on", "score"),
    "negative batch interval": (
        {"train": {"check_batch_interval": -1}},
        "train.check_batch_interval",
        ">= 0",
    ),
    "negative adaptation epochs": ({"train": {"adopt_epochs": -2}}, "train.adopt_epochs", ">= 0"),
    "adaptation folds overlap": ({"data": {"adopt_idx": "1"}}, "data.adopt_idx", "disjoint"),
    "unloaded layer spec": (
        {"ser": {"load_model": "{tmp}/none.keras", "unloaded": "-2"}},
        "ser.load_model",
        "not found",
    ),
    "SGAN stopping on loss": (
        {
            "model": "sgan",
            "train": {"stop_on": "loss"},
            "sgan": {
                "depth_G": 3,
                "n_kernels_G": [4, 4, 1],
                "depth_D": 1,
                "n_kernels_D": [4],
                "n_node": 8,
            },
        },
        "train.stop_on",
        "validation score",
    ),
}


@pytest.mark.parametrize("case", OPTION_CASES)
def test_bad_values_of_source_options(case, good_h5, tmp_path, capsys):
    import yaml

    change, key, message = OPTION_CASES[case]
    mapping = {k: dict(v) if isinstance(v, dict) else v for k, v in SER_RUN.items()}
    for section, values in change.items():
        if isinstance(values, dict):
            mapping.setdefault(section, {}).update(
                {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in values.items()}
            )
        else:
            mapping[section] = values
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(mapping))
    out = tmp_path / "out"
    code = launch.main(["train", str(config), "--data", str(good_h5), "--out", str(out)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert key in lines[0] and (message is None or message in lines[0]), lines[0]
    assert not out.exists() and not out.with_name("out.partial").exists()


@pytest.fixture(scope="module")
def command_folders(good_h5, good_space, tmp_path_factory) -> dict[str, Path]:
    """The folders the commands write (a finished sweep, its final/ and final/cv, a fold of
    that, a final model's run) and the ones a user may hand them by mistake: an empty
    folder, a half-written sweep (settings saved, nothing run), a sweep whose study has no
    completed trial, a sweep saved by a version that knew a verdict since dropped, and a
    path that does not exist."""
    import shutil

    root = tmp_path_factory.mktemp("folders")
    sweep = root / "sweep"
    for args in (
        [
            "sweep",
            "--space",
            str(good_space),
            "--data",
            str(good_h5),
            "--samples",
            "2",
            "--max-epochs",
            "1",
            "--num-cpus",
            "2",
            "--out",
            str(sweep),
        ],
        ["final", str(sweep), "--top", "1", "--seeds", "1"],
        ["final", str(sweep), "--top", "1", "--seeds", "1", "--cv", "2"],
    ):
        done = helpers.launch(*args)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (root / "empty").mkdir()
    half = root / "half"
    half.mkdir()
    shutil.copyfile(sweep / "sweep.yaml", half / "sweep.yaml")
    untrained = root / "untrained"  # a sweep whose study holds no completed trial
    untrained.mkdir()
    shutil.copyfile(sweep / "sweep.yaml", untrained / "sweep.yaml")
    name = yaml.safe_load((sweep / "sweep.yaml").read_text())["name"]
    storage = open_storage(f"sqlite:///{untrained / 'study.db'}")  # as a sweep opens it
    optuna.create_study(study_name=name, storage=storage)
    older = root / "older"
    shutil.copytree(sweep, older)
    settings = (older / "sweep.yaml").read_text()
    (older / "sweep.yaml").write_text(settings.replace("- nan\n", "- nan\n- diverging\n", 1))
    (rank1,) = (sweep / "final").glob("rank1_trial*")
    return {
        "sweep": sweep,
        "final": sweep / "final",
        "final model": rank1 / "seed0",
        "cv": sweep / "final" / "cv",
        "cv fold": next((sweep / "final" / "cv").glob("rank1_trial*/seed0/fold0")),
        "empty": root / "empty",
        "half-written": half,
        "untrained": untrained,
        "older": older,
        "nowhere": root / "nowhere",
    }


# (command, folder) -> what the one error line says; pairs not listed give a result
FOLDER_ERRORS = {
    **{
        (command, folder): "not a sweep folder"
        for command in ("best", "report", "final", "resume", "dashboard", "reeval")
        for folder in ("final", "final model", "cv", "cv fold", "empty", "nowhere")
    },
    **{(command, "final"): "inside the sweep folder" for command in ("best", "resume", "reeval")},
    **{
        (command, "half-written"): "no study named"
        for command in ("best", "report", "final", "reeval")
    },
    **{(command, "untrained"): "no completed trial" for command in ("best", "final", "reeval")},
    **{
        (command, "older"): "sweep.yaml (--stop-on): unknown verdicts ['diverging']"
        for command in ("best", "report", "final", "resume", "dashboard", "reeval")
    },
    ("predict", "cv"): "a cross-validation folder",
    ("predict", "cv fold"): "a run that kept no model",
    ("predict", "empty"): "expected a train run folder",
    ("predict", "half-written"): "expected a train run folder",
    ("predict", "untrained"): "expected a train run folder",
    ("predict", "nowhere"): "expected a train run folder",
}


def written(folder: Path) -> list[str] | None:
    """The files under ``folder``, less SQLite's write-ahead log and its index (they come and
    go as connections open and close)."""
    if not folder.exists():
        return None
    return sorted(p.name for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm")))


@pytest.mark.parametrize(("command", "folder"), sorted(FOLDER_ERRORS))
def test_a_command_on_another_commands_folder_fails_in_one_line(
    command, folder, command_folders, good_h5, tmp_path, capsys
):
    path = command_folders[folder]
    listing = written(path)
    args = [command, str(path)]
    if command == "predict":
        args += [str(good_h5), "--out", str(tmp_path / "p.csv")]
    code = launch.main(args)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert FOLDER_ERRORS[command, folder] in lines[0], lines[0]
    assert not (tmp_path / "p.csv").exists()
    assert written(path) == listing


@pytest.mark.parametrize("folder", ["sweep", "final", "final model"])
def test_predict_takes_a_sweep_its_final_folder_or_a_final_model(
    folder, command_folders, good_h5, tmp_path, capsys
):
    out = tmp_path / "p.csv"
    assert (
        launch.main(
            ["predict", str(command_folders[folder]), str(good_h5), "--out", str(out), "--quiet"]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) > 1
