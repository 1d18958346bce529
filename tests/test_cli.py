"""The CLI as a user runs it: exit codes, one-line errors, nothing half-written."""

import json

import pytest

from tests.helpers import ROOT, launch

TINY = """model: ser
data: {features: [a_feat], tasks: "category:4:2", test_idx: "0", valid_idx: "1"}
ser: {frame: [dnn], utterance: [dnn], n_node: 8}
train: {epochs: 1, batch_size: 16}
"""


def error_line(result):
    """The whole of stderr is one ``error:`` line (TensorFlow's start-up chatter included)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.e2e  # the demo corpus written and a run trained, from the command line
def test_demo_data_then_train_writes_metrics(tmp_path):
    data = tmp_path / "demo.h5"
    made = launch("demo-data", data, "--speakers", 4, "--per-speaker", 6)
    assert made.returncode == 0 and data.exists()
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    result = launch("train", config, "--data", data, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"val_uar", "test_uar", "epochs"} <= set(metrics) and metrics["epochs"] == 1
    assert json.loads(result.stdout.splitlines()[-2])["test_uar"] == metrics["test_uar"]
    assert result.stdout.startswith("data: resident (") and metrics["data_mode"] == "resident"
    again = launch("train", config, "--data", data, "--out", tmp_path / "out")
    assert "exists" in error_line(again)
    # the same run streamed from the file: the mode is printed and kept with the metrics
    streamed = launch(
        "train", config, "--data", data, "--out", tmp_path / "streamed", "--data-mode", "stream"
    )
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert streamed.stdout.startswith("data: stream (stream as asked (")
    assert json.loads((tmp_path / "streamed" / "metrics.json").read_text())["data_mode"] == "stream"


@pytest.mark.parametrize(
    "config_text,args,message",
    [
        (TINY, ["--data", "missing.h5"], "missing.h5: file not found"),
        ("model: [unclosed", [], "not valid YAML"),
        (TINY.replace("category:4:2", "category:four:2"), [], "data.tasks"),
        (TINY.replace('test_idx: "0"', 'test_idx: "0:x"'), [], "data.test_idx"),
        (TINY.replace('test_idx: "0"', 'test_idx: "40"'), [], "names fold 40"),
        (TINY.replace("a_feat", "z_feat"), [], "z_feat: key not found"),
        (TINY.replace("epochs: 1", "epochs: one"), [], "train.epochs"),
        (TINY.replace("n_node: 8", "n_nodes: 8"), [], "unknown key"),
        (TINY.replace("model: ser", "model: gan"), [], "expected one of"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, config_text, args, message):
    data = tmp_path / "demo.h5"
    launch("demo-data", data, "--speakers", 4, "--per-speaker", 4)
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    out = tmp_path / "out"
    args = [a if a != "missing.h5" else tmp_path / a for a in args] or ["--data", data]
    result = launch("train", config, *args, "--out", out)
    assert message in error_line(result)
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_missing_config_and_bad_counts(tmp_path):
    assert "config file not found" in error_line(launch("train", tmp_path / "nope.yaml"))
    result = launch("demo-data", tmp_path / "d.h5", "--speakers", 0)
    assert "--speakers: expected a positive integer" in error_line(result)
    assert "is a folder" in error_line(launch("demo-data", tmp_path))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "no_such_space"], "no such space"),
        (["--space", "{bad}"], "bad.yaml: not valid YAML"),
        (["--space", "demo", "--data", "missing.h5"], "missing.h5: file not found"),
        (["--space", "demo", "--gpus-per-trial", "1.5"], "--gpus-per-trial"),
        (["--space", "demo", "--detector", "patience=0"], "--detector: patience must be >= 1"),
        (["--space", "demo", "--study-url", "nodb://x"], "cannot open the Optuna storage"),
        (["--space", "demo", "--storage", "nodb://x"], "cannot open the Optuna storage"),
        (["--space", "demo", "--address", "127.0.0.1:1"], "no Ray cluster answers"),
        (["--space", "demo", "--address", "nowhere"], "expected HOST:PORT"),
        (["--space", "demo", "--ray-storage", "nosuch://bucket/x"], "not a usable filesystem"),
        (["--space", "demo", "--storage-path", "nosuch://bucket/x"], "not a usable filesystem"),
    ],
)
def test_sweep_input_errors_stop_before_ray_and_write_nothing(tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("params: {sgan.d_lr: [unclosed\n")
    args = [str(tmp_path / "bad.yaml") if a == "{bad}" else a for a in args]
    result = launch("sweep", *args, "--out", tmp_path / "sweep", cwd=tmp_path)
    assert message in error_line(result)
    assert "Started a local Ray" not in result.stderr  # failed before Ray started
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_an_output_folder_that_cannot_be_made(tmp_path, command):
    (tmp_path / "file").write_text("not a folder")
    args = (
        ["--space", "demo"]
        if command == "sweep"
        else [ROOT / "examples" / "demo" / "ser_basic_fcn.yaml"]
    )
    result = launch(command, *args, "--out", tmp_path / "file" / "out")
    assert "cannot create" in error_line(result)


def test_sweep_counts_must_be_positive(tmp_path):
    result = launch("sweep", "--space", "demo", "--samples", "0", "--out", tmp_path / "s")
    assert result.returncode == 2 and "positive integer" in result.stderr


def test_storage_passwords_never_printed(tmp_path):
    url = "postgresql://alice:s3cret@127.0.0.1:1/study"
    result = launch("sweep", "--space", "demo", "--study-url", url, "--out", tmp_path / "s")
    line = error_line(result)
    assert "alice@127.0.0.1" in line and "s3cret" not in result.stderr + result.stdout
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["resume", "best", "final", "report"])
def test_commands_on_a_folder_that_is_not_a_sweep(tmp_path, command):
    assert "not a sweep folder" in error_line(launch(command, tmp_path))


@pytest.mark.parametrize(
    "args, message",
    [(["{tmp}/none"], "not a sweep folder"), (["{tmp}", "--port", "99999"], "port number")],
)
def test_dashboard_input_errors_are_one_line(tmp_path, args, message):
    result = launch("dashboard", *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2 and message in error_line(result)
