"""Sweeps on a real local Ray instance with real TensorFlow trials at tiny sizes."""

import json
import textwrap

import h5py
import numpy as np
import optuna
import pytest
import ray  # imported before init_ray on purpose: see the loopback test
import ray.cloudpickle
import yaml
from optuna.trial import TrialState
from optuna_dashboard import get_note
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from search_spaces.objective import DEFAULT_REDUCE, Reduction
from sweep.cluster import init_ray
from sweep.final import run_final, run_final_cv
from sweep.internals import ExperimentSnapshot, align_search_state
from sweep.report import write_report
from sweep.results import (
    load_study,
    reevaluated,
    sweep_ranked,
    top_trials,
    trial_curves,
    write_best,
)
from sweep.runner import start_sweep
from sweep.settings import Resources, SweepSettings, load_settings
from tests.helpers import launch
from tests.sweep.helpers import SER_BASE

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them


@pytest.fixture(scope="module")
def ray_cluster():
    init_ray(Resources(num_cpus=2))
    yield

    ray.shutdown()


@pytest.fixture(scope="module")
def small_corpus(demo_corpus):
    return demo_corpus(12, 12, seed=2)


@pytest.fixture(scope="module")
def finished_sweep(ray_cluster, small_corpus, tmp_path_factory):
    # streamed (the other sweeps here are resident): trials, best, final and report read
    # their rows from the file
    settings = SweepSettings(
        out=str(tmp_path_factory.mktemp("sweeps") / "demo"),
        space="demo",
        data=str(small_corpus),
        samples=3,
        max_epochs=3,
        name="e2e",
        concurrency=2,
        num_cpus=2,
        data_mode="stream",
        reeval_seeds=2,
    )
    return settings, start_sweep(settings)


def test_a_local_sweep_listens_on_loopback_only(ray_cluster):
    import psutil

    # this module imported Ray before init_ray ran: the loopback setting must hold anyway
    assert ray.is_initialized()
    ours = psutil.Process().children(recursive=True)  # this Ray, not others on the machine
    listening = [
        (process.name(), connection.laddr.ip)
        for process in ours
        for connection in _connections(process)
        if connection.status == psutil.CONN_LISTEN
    ]
    ray_sockets = [(name, ip) for name, ip in listening if "ray" in name or "gcs" in name]
    assert ray_sockets  # the raylet and the GCS at least
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for _, ip in ray_sockets), ray_sockets


def test_a_search_snapshot_ahead_of_the_trial_list_is_brought_back_to_it(finished_sweep, tmp_path):
    """What a driver killed while Ray copied its snapshots can leave (the search state of a
    later moment beside an older trial list), in the files of a real sweep."""
    settings, _ = finished_sweep
    for snapshot in settings.experiment_path.glob("*_state-*.json"):
        (tmp_path / snapshot.name).write_bytes(snapshot.read_bytes())
    (search_file,) = tmp_path.glob("search_gen_state-*.json")
    untouched = search_file.read_bytes()
    assert align_search_state(str(tmp_path)) == []  # a clean finish: nothing to align
    assert search_file.read_bytes() == untouched
    state = ray.cloudpickle.loads(untouched)
    assert state["counter"] == 3 and state["name:ConcurrencyLimiter"]["live_trials"] == set()
    state["counter"] += 2
    state["name:ConcurrencyLimiter"]["live_trials"] = {"never-recorded-1", "never-recorded-2"}
    search_file.write_bytes(ray.cloudpickle.dumps(state))
    assert align_search_state(str(tmp_path)) == ["never-recorded-1", "never-recorded-2"]
    aligned = ray.cloudpickle.loads(search_file.read_bytes())
    assert aligned["counter"] == 3
    assert aligned["name:ConcurrencyLimiter"]["live_trials"] == set()
    assert aligned["name:ConcurrencyLimiter"]["num_unfinished_live_trials"] == 0


def test_a_snapshot_trial_is_pointed_elsewhere_and_a_missing_one_recorded_again(
    finished_sweep, tmp_path
):
    """What ``resume`` changes in Ray's experiment snapshot (``internals.ExperimentSnapshot``),
    on a real sweep's files, read back by Ray's own ``Trial.from_json_state``."""
    from ray.tune.experiment import Trial

    settings, _ = finished_sweep
    for snapshot in settings.experiment_path.glob("*_state-*.json"):
        (tmp_path / snapshot.name).write_bytes(snapshot.read_bytes())
    (state_file,) = tmp_path.glob("experiment_state-*.json")
    state = json.loads(state_file.read_text())
    first, gone = state["trial_data"][0], state["trial_data"][1]
    gone_trial = Trial.from_json_state(gone[0], stub=True)
    state["trial_data"] = [e for e in state["trial_data"] if e is not gone]
    state_file.write_text(json.dumps(state))

    snapshot = ExperimentSnapshot(str(tmp_path))
    assert set(snapshot.statuses().values()) == {"TERMINATED"} and len(snapshot.statuses()) == 2
    first_id = json.loads(first[0])["trial_id"]
    assert snapshot.checkpoint(first_id).startswith("checkpoint_")
    assert not snapshot.save()  # nothing changed: nothing written
    snapshot.restore_from(first_id, "checkpoint_000000", {"epoch": 1, "training_iteration": 1})
    snapshot.add(
        gone_trial.trial_id,
        gone_trial.config,
        "checkpoint_000001",
        {"epoch": 2, "training_iteration": 2},
    )
    assert snapshot.save()

    rewritten = json.loads(state_file.read_text())["trial_data"]
    entries = {json.loads(trial)["trial_id"]: (trial, meta) for trial, meta in rewritten}
    assert len(entries) == 3
    expected = [(first_id, "checkpoint_000000", 1), (gone_trial.trial_id, "checkpoint_000001", 2)]
    for trial_id, checkpoint, iteration in expected:
        trial = Trial.from_json_state(entries[trial_id][0], stub=True)
        trial.restore_run_metadata(entries[trial_id][1])
        latest = trial.run_metadata.checkpoint_manager.latest_checkpoint_result
        assert latest.checkpoint.path == f"{trial.storage.trial_fs_path}/{checkpoint}"
        assert latest.metrics["training_iteration"] == iteration
        assert trial.placement_group_factory and not json.loads(entries[trial_id][0])["stub"]
    added = Trial.from_json_state(entries[gone_trial.trial_id][0], stub=True)
    assert added.status == Trial.PAUSED and added.config == gone_trial.config
    assert added.relative_logdir == added.storage.trial_dir_name == f"trial_{added.trial_id}"
    assert added.placement_group_factory == gone_trial.placement_group_factory


def _connections(process):
    try:
        return process.net_connections(kind="inet")
    except Exception:  # a process that ended or is not ours to inspect
        return []


def ray_results(settings) -> dict[str, list[dict]]:
    return {
        path.parent.name.removeprefix("trial_"): [
            json.loads(line) for line in path.read_text().splitlines()
        ]
        for path in settings.experiment_path.glob("trial_*/result.json")
    }


def test_sweep_runs_every_trial_and_the_study_agrees_with_ray(finished_sweep):
    settings, summary = finished_sweep
    study = load_study(settings)
    results = ray_results(settings)
    assert len(study.trials) == 3 and len(results) == 3
    assert {t.user_attrs["ray_trial_id"] for t in study.trials} == set(results)
    # the demo space optimises val UAR: d_overpowers labels, the sweep keeps what it resolved
    saved = load_settings(settings.folder).stop_verdicts
    assert saved == ["nan", "dead", "mode_collapse", "g_overpowers"]
    # streamed as asked; the normalisation the driver's pass fitted is saved with the sweep
    data = json.loads((settings.folder / "data.json").read_text())
    assert data["mode"] == "stream" and "as asked" in data["reason"]
    assert set(data["preprocessing"]["stats"]["a_feat"]) == {"low", "high"}
    for trial in study.trials:
        rows = results[trial.user_attrs["ray_trial_id"]]
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))  # no epoch twice
        # where the trial's time went: one build, then epochs one after another
        setups = {r["trial_setup_seconds"] for r in rows}
        assert len(setups) == 1 and min(setups) > 0
        for row, following in zip(rows, rows[1:], strict=False):
            ended = row["epoch_started_at"] + row["time_this_iter_s"]
            assert row["epoch_started_at"] < ended <= following["epoch_started_at"]
        assert trial.user_attrs["verdict"] == rows[-1]["verdict"]
        # each trial trained with its own seed, its Optuna number, kept with its overrides
        overrides = json.loads(trial.user_attrs["overrides"])
        assert rows[-1]["config"]["overrides"]["train.seed"] == overrides["train.seed"]
        assert overrides["train.seed"] == trial.number
        # every verdict reached, on the study as in the results
        assert trial.user_attrs.get("verdicts", []) == json.loads(rows[-1]["verdicts"])
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(rows[-1]["objective"])
            # the shipped reduction of the epochs' val UAR, and the epoch final trains to
            expected = Reduction.parse(DEFAULT_REDUCE).reduce([r["val_uar"] for r in rows])
            assert (trial.value, trial.user_attrs["objective_epoch"]) == pytest.approx(expected)
        # the verdicts the sweep stops on make a trial infeasible for TPE, and only those
        failed = trial.user_attrs["verdict"] in load_settings(settings.folder).stop_verdicts
        assert trial.constraints == {"collapse": 1.0 if failed else 0.0}
    assert summary["trials"] == 3 and load_settings(settings.folder).reduce == DEFAULT_REDUCE


def test_the_leaders_are_re_evaluated_and_best_and_final_follow_them(finished_sweep):
    settings, summary = finished_sweep
    study = load_study(settings)
    completed = sweep_ranked(study)
    rows = json.loads((settings.folder / "reeval" / "summary.json").read_text())
    assert len(rows) == min(3, len(completed)) >= 1
    assert {r["optuna_trial"] for r in rows} == {t.number for t in completed[:3]}
    assert [r["pick"] for r in rows].count(True) == 1 and rows[0]["pick"]
    bounds = [r["val_bound"] for r in rows]  # ranked by mean less one standard error
    assert bounds == sorted(bounds, reverse=True)
    for row in rows:  # two fresh seeds each, reduced as the sweep reduces its trials
        assert len(row["seeds"]) == 2 and row["val_mean"] == pytest.approx(np.mean(row["seeds"]))
        error = np.std(row["seeds"], ddof=1) / np.sqrt(2)
        assert row["val_bound"] == pytest.approx(row["val_mean"] - error)
        runs = sorted((settings.folder / "reeval" / f"trial{row['optuna_trial']}").glob("seed*"))
        assert len(runs) == 2
        for run, value in zip(runs, row["seeds"], strict=True):
            curve = [e["val_uar"] for e in json.loads((run / "history.json").read_text())]
            assert value == pytest.approx(Reduction.parse(DEFAULT_REDUCE).reduce(curve)[0])
    assert reevaluated(study)[rows[0]["optuna_trial"]]["pick"] is True
    assert summary["best"]["optuna_trial"] == rows[0]["optuna_trial"]  # the pick, not one run
    assert top_trials(settings, 1)[0].number == rows[0]["optuna_trial"]
    note = get_note(study)
    assert "Re-evaluation on fresh seeds" in note


def test_each_trial_has_checkpoints_and_tensorboard(finished_sweep):
    settings, _ = finished_sweep
    for trial_dir in settings.experiment_path.glob("trial_*"):
        assert list(trial_dir.glob("checkpoint_*/state.npz"))
        accumulator = EventAccumulator(str(trial_dir / "tb"), size_guidance={"scalars": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        assert {"d_loss", "g_loss", "d_acc_real", "diversity", "val_uar"} <= set(tags["scalars"])
        assert "_hparams_/session_start_info" in accumulator.PluginTagToContent("hparams")
        assert "verdict/text_summary" in tags["tensors"]
        epochs = len(accumulator.Scalars("val_uar"))
        if epochs >= 3:  # the demo space saves generated spectrograms every 3 epochs
            assert "generated/a_feat" in tags["images"]
            assert list(trial_dir.glob("images/a_feat_epoch003.png"))


def test_best_configs_train_unchanged(finished_sweep, tmp_path):
    settings, _ = finished_sweep
    paths = write_best(settings, 2)
    assert paths and all(p.parent == settings.folder / "best" for p in paths)
    done = launch("train", paths[0], "--epochs", 1, "--out", tmp_path / "retrain", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "retrain" / "metrics.json").read_text())["epochs"] == 1


def test_final_retrains_the_best_with_seeds_as_ray_tasks(finished_sweep):
    settings, _ = finished_sweep
    summary = run_final(settings, top=1, seeds=2)
    row = summary["configs"][0]
    # the sweep's figure, the re-evaluated one and the test one side by side
    pick = reevaluated(load_study(settings))[row["optuna_trial"]]
    assert pick["pick"] and row["reeval_val_mean"] == pytest.approx(pick["val_mean"])
    assert row["seeds"] == 2 and 0.0 <= row["test_uar_mean"] <= 1.0
    seeds = sorted((settings.folder / "final").glob("rank1_*/seed*/metrics.json"))
    assert len(seeds) == 2
    assert all(json.loads(p.read_text())["data_mode"] == "stream" for p in seeds)
    # seeds neither the sweep nor the re-evaluation trained: the trial's own + 2000, + 2001
    trained = [yaml.safe_load((p.parent / "config.yaml").read_text()) for p in seeds]
    assert [c["train"]["seed"] for c in trained] == [row["optuna_trial"] + 2000 + i for i in (0, 1)]
    assert "\n| 1 | " in (settings.folder / "final" / "summary.md").read_text()


def test_final_cross_validates_on_folds_the_sweep_did_not_select_on(finished_sweep):
    settings, _ = finished_sweep
    summary = run_final_cv(settings, top=1, seeds=2, k=3)
    (row,) = summary["configs"]
    # the demo space tests on 0,1, validates on 2,3 and leaves 10,11 unlabelled
    assert row["held_out_folds"] == [0, 1, 2, 3]
    assert row["test_groups"] == ["4,7", "5,8", "6,9"]
    assert len(row["folds"]) == 3 * 2 and row["pooled_uar"]["n"] == 2
    with h5py.File(settings.data) as h5:
        starts, ends = h5["start_indice"][:], h5["end_indice"][:]
    rotating_rows = int(sum(ends[f] - starts[f] for f in range(4, 10)))
    assert np.sum(row["pooled_confusion"]) == 2 * rotating_rows  # every rotating row, per seed
    # seeds the sweep did not train: the trial's own + 2000, + 2001
    number = int(row["name"].rsplit("trial", 1)[1])
    assert sorted({f["seed"] for f in row["folds"]}) == [number + 2000, number + 2001]
    uars = []  # pooled as the source: one confusion matrix over a seed's folds
    for seed in (number + 2000, number + 2001):
        matrix = np.sum([f["confusion"] for f in row["folds"] if f["seed"] == seed], axis=0)
        present = matrix.sum(axis=1) > 0
        uars.append(np.mean(np.diag(matrix)[present] / matrix.sum(axis=1)[present]))
    assert row["pooled_uar"]["mean"] == pytest.approx(np.mean(uars), abs=1e-12)
    assert "{4,7}; {5,8}; {6,9}" in (settings.folder / "final/cv/summary.md").read_text()


def test_report_has_census_and_plots(finished_sweep):
    settings, _ = finished_sweep
    report = write_report(settings)
    text = report.read_text()
    assert "## Failure census" in text and "## Top trials" in text
    for image in ("history.png", "slice.png", "failure_modes.png"):
        assert f"({image})" in text and (report.parent / image).stat().st_size > 1000


def test_asha_sweep_with_labels_only_on_separate_storage(ray_cluster, small_corpus, tmp_path):
    settings = SweepSettings(
        out=str(tmp_path / "asha"),
        space="demo",
        data=str(small_corpus),
        samples=4,
        max_epochs=3,
        name="asha",
        scheduler="asha",
        stop_on_collapse=False,
        num_cpus=2,
        snapshot_every=2,
        ray_storage=str(tmp_path / "shared"),
        reeval_top=0,
    )
    summary = start_sweep(settings)
    study = load_study(settings)
    assert summary["trials"] == 4 and all(t.state.is_finished() for t in study.trials)
    results = ray_results(settings)
    # ASHA may end trials at its rungs (epoch 2 of 3), never past the budget
    assert all(1 <= len(rows) <= 3 for rows in results.values())
    assert all(t.state != TrialState.PRUNED for t in study.trials)  # labels only: none pruned
    assert settings.experiment_path.parent == tmp_path / "shared"  # trials live there
    assert not (settings.folder / "ray").exists()
    assert len(trial_curves(settings)) == 4  # read back through pyarrow's filesystem
    # a snapshot every 2 checkpoints keeps 2 per trial (ASHA's grace period is 2 epochs)
    kept = [
        len(list(folder.glob("checkpoint_*")))
        for folder in settings.experiment_path.glob("trial_*")
    ]
    assert len(kept) == 4 and max(kept) == 2


COLLAPSE_BASE = """
base:
  model: sgan
  data: {features: [a_feat], tasks: category:4:2, test_idx: "0,1", valid_idx: "2,3",
         unlabelled_idx: "10:11", r_nrow: 96, r_ncol: 64}
  sgan: {latent_dim: 100, depth_G: 3, n_kernels_G: [32, 16, 1], depth_D: 2, n_kernels_D: [16, 32],
         cnn_n_row_D: [5, 3],
         cnn_n_col_D: [5, 3], pool_n_row_D: [2, 2], pool_n_col_D: [2, 2]}
  train: {batch_size: 64, patience: 0, save_img_interval: 0}
"""


@pytest.fixture(scope="module")
def demo_size_corpus(demo_corpus):
    return demo_corpus(12, 40, seed=0)


def one_trial_sweep(tmp_path, corpus, params: str, epochs: int):
    space = tmp_path / "space.yaml"
    space.write_text(COLLAPSE_BASE + textwrap.dedent(params))
    settings = SweepSettings(
        out=str(tmp_path / "sweep"),
        space=str(space),
        data=str(corpus),
        samples=1,
        max_epochs=epochs,
        name="one",
        num_cpus=2,
        reeval_top=0,
    )
    start_sweep(settings)
    (trial,) = load_study(settings).trials
    (rows,) = ray_results(settings).values()
    return trial, rows


def test_a_config_the_models_reject_is_labelled_not_retried(ray_cluster, small_corpus, tmp_path):
    # depth_G 8 with the base's three n_kernels_G: the model builder refuses it
    trial, rows = one_trial_sweep(tmp_path, small_corpus, "params: {sgan.depth_G: 8}", epochs=3)
    assert trial.state == TrialState.FAIL
    assert "sgan.n_kernels_G" in trial.user_attrs["invalid"] and len(rows) == 1
    assert rows[0]["verdict"] == "invalid_config" and rows[0]["training_iteration"] == 1


def test_a_collapsing_sgan_is_stopped_and_labelled(ray_cluster, demo_size_corpus, tmp_path):
    # G's learning rate 1e5 x D's: G fools a D that cannot learn to catch it
    params = "params: {sgan.d_lr: 1.0e-7, sgan.g_lr: 1.0e-2}"
    trial, rows = one_trial_sweep(tmp_path, demo_size_corpus, params, epochs=10)
    assert trial.user_attrs["verdict"] == "g_overpowers"
    assert trial.state == TrialState.PRUNED
    assert len(rows) < 10  # stopped early, within the patience window of the onset
    assert len(rows) == trial.user_attrs["verdict_epoch"]
    assert trial.user_attrs["verdict_epoch"] - trial.user_attrs["verdict_onset"] <= 2
    assert trial.user_attrs["verdict_signals"]["d_acc_fake"] <= 0.05


def test_a_healthy_sgan_runs_its_budget(ray_cluster, demo_size_corpus, tmp_path):
    trial, rows = one_trial_sweep(
        tmp_path,
        demo_size_corpus,
        """
        params: {sgan.d_lr: 1.0e-4, sgan.g_lr: 1.0e-3, sgan.instance_noise: 0.3,
                 sgan.label_smoothing: 0.3}
        """,
        epochs=8,
    )
    assert trial.user_attrs["verdict"] == "healthy"
    assert trial.state == TrialState.COMPLETE
    assert len(rows) == 8


FAILING_SPACE = (
    SER_BASE
    + """
params:
  case: {type: categorical, choices: [ok, nan, invalid]}
  huge_lr: {type: fixed, value: 1.0e30, sets: ser.lr, when: {case: nan}}
  no_nodes: {type: fixed, value: 0, sets: ser.n_node, when: {case: invalid}}
"""
)


def test_failing_trials_end_on_their_own(ray_cluster, small_corpus, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(FAILING_SPACE)
    settings = SweepSettings(
        out=str(tmp_path / "sweep"),
        space=str(space),
        data=str(small_corpus),
        samples=3,
        max_epochs=2,
        name="fail",
        num_cpus=2,
        reeval_top=0,
    )
    settings.folder.mkdir()
    queued = optuna.create_study(
        study_name="fail", storage=settings.resolved_study_url, direction="maximize"
    )
    for case in ("ok", "nan", "invalid"):
        queued.enqueue_trial({"case": case})
    start_sweep(settings)
    trials = {t.params["case"]: t for t in load_study(settings).trials}
    assert trials["ok"].state == TrialState.COMPLETE
    # NaN: infeasible for TPE (which ignores FAIL trials), never picked
    assert trials["nan"].state == TrialState.PRUNED and trials["nan"].user_attrs["verdict"] == "nan"
    assert trials["nan"].constraints == {"collapse": 1.0}
    assert trials["ok"].constraints == {"collapse": 0.0}
    assert trials["invalid"].state == TrialState.FAIL
    assert "ser.n_node: must be >= 1" in trials["invalid"].user_attrs["invalid"]
    rows = ray_results(settings)[trials["ok"].user_attrs["ray_trial_id"]]
    assert [r["epoch"] for r in rows] == [1, 2]  # the healthy trial ran its budget
