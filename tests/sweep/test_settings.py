"""A sweep's settings: which verdicts stop trials (by the space's objective unless the user
says), the saved file under older key names and without newer keys, and the resources
part."""

import pytest
import yaml

from sweep.cluster import trials_at_once
from sweep.collapse import FAILURES
from sweep.settings import (
    LEGACY_MAX_FAILURE_RISK,
    LEGACY_STARTUP_TRIALS,
    MAX_FAILURE_RISK,
    SETTINGS_FILE,
    STARTUP_TRIALS,
    Resources,
    SweepSettings,
    default_stop_verdicts,
    load_settings,
)


def test_a_classifier_objective_labels_d_overpowers_without_stopping():
    assert default_stop_verdicts("val_uar") == ["nan", "dead", "mode_collapse", "g_overpowers"]
    assert default_stop_verdicts("diversity_score") == list(FAILURES)


def test_stop_verdicts_are_resolved_once_and_a_user_choice_is_kept(tmp_path):
    settings = SweepSettings(out=str(tmp_path), space="demo")
    with pytest.raises(RuntimeError, match="resolve_stop_verdicts"):
        assert settings.stopping
    settings.resolve_stop_verdicts("val_uar")
    assert "d_overpowers" not in settings.stopping
    chosen = SweepSettings(out=str(tmp_path), space="demo", stop_verdicts=["d_overpowers"])
    chosen.resolve_stop_verdicts("val_uar")
    assert chosen.stopping == ("d_overpowers",)
    chosen.stop_on_collapse = False
    assert chosen.stopping == ()


def test_a_sweep_saved_under_the_older_key_names_loads(tmp_path):
    settings = SweepSettings(
        out=str(tmp_path),
        space="demo",
        study_url="journal:/x/study.log",
        ray_storage="s3://bucket/dir",
    )
    settings.save()
    saved = yaml.safe_load((tmp_path / SETTINGS_FILE).read_text())
    assert saved["study_url"] == "journal:/x/study.log" and "storage" not in saved
    saved["storage"], saved["storage_path"] = saved.pop("study_url"), saved.pop("ray_storage")
    (tmp_path / SETTINGS_FILE).write_text(yaml.safe_dump(saved))
    loaded = load_settings(tmp_path)
    assert loaded.study_url == "journal:/x/study.log"
    assert loaded.ray_storage_root == "s3://bucket/dir"
    assert loaded.resources == settings.resources


def test_a_sweep_saved_before_the_start_up_setting_keeps_optunas_start_up(tmp_path):
    SweepSettings(out=str(tmp_path), space="demo").save()
    assert load_settings(tmp_path).startup_trials == STARTUP_TRIALS
    saved = yaml.safe_load((tmp_path / SETTINGS_FILE).read_text())
    del saved["startup_trials"]
    (tmp_path / SETTINGS_FILE).write_text(yaml.safe_dump(saved))
    assert load_settings(tmp_path).startup_trials == LEGACY_STARTUP_TRIALS == 10


def test_a_sweep_saved_before_the_failure_risk_setting_takes_every_proposal(tmp_path):
    SweepSettings(out=str(tmp_path), space="demo").save()
    assert load_settings(tmp_path).max_failure_risk == MAX_FAILURE_RISK < 1
    saved = yaml.safe_load((tmp_path / SETTINGS_FILE).read_text())
    del saved["max_failure_risk"]
    (tmp_path / SETTINGS_FILE).write_text(yaml.safe_dump(saved))
    assert load_settings(tmp_path).max_failure_risk == LEGACY_MAX_FAILURE_RISK == 1


def test_the_command_line_states_the_defaults_it_gets(capsys):
    import launch

    with pytest.raises(SystemExit):
        launch.main(["sweep", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {STARTUP_TRIALS};" in help_text
    assert f"(default {MAX_FAILURE_RISK};" in help_text


def test_resources_are_the_part_of_the_settings_that_says_where_work_runs(tmp_path):
    settings = SweepSettings(
        out=str(tmp_path),
        space="demo",
        concurrency=4,
        cpus_per_trial=2,
        gpus_per_trial=0.5,
        num_cpus=3,
        backend="jax",
    )
    resources = settings.resources
    assert (resources.concurrency, resources.cpus_per_trial, resources.gpus_per_trial) == (
        4,
        2,
        0.5,
    )
    assert resources.backend == "jax" and trials_at_once(resources) == 1  # 3 CPUs, 2 a trial
    assert trials_at_once(Resources(num_cpus=8, cpus_per_trial=2, concurrency=3)) == 3
