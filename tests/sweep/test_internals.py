"""What sersweep relies on in Ray Tune's and Optuna's private names (``sweep/internals.py``):
an upgrade that changes one of them fails here, by name."""

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces import load_space
from sweep import internals
from sweep.search import SweepOptunaSearch, reconcile_study

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def searcher(tmp_path):
    return SweepOptunaSearch(load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s")


def test_optuna_search_keeps_its_trials_study_and_told_ids(searcher):
    searcher.suggest("ray-1")
    trials = internals.searcher_trials(searcher)
    study = internals.searcher_study(searcher)
    assert isinstance(trials["ray-1"], optuna.Trial) and isinstance(study, optuna.Study)
    assert internals.stored_state(study, trials["ray-1"]) == TrialState.RUNNING
    searcher.on_trial_complete("ray-1", {"objective": 0.5})
    assert "ray-1" in internals.searcher_completed(searcher)
    assert internals.stored_state(study, trials["ray-1"]) == TrialState.COMPLETE


def test_a_stored_running_trial_gets_a_live_handle_that_writes(searcher):
    searcher.suggest("ray-1")
    study = internals.searcher_study(searcher)
    (frozen,) = study.get_trials(states=(TrialState.RUNNING,))
    internals.live_trial(study, frozen).set_user_attr("seen", True)
    assert study.trials[0].user_attrs["seen"] is True


def test_orphans_are_failed_and_labelled_through_the_live_handle(searcher, tmp_path):
    searcher.suggest("ray-known")
    searcher.suggest("ray-orphan")
    assert reconcile_study(f"sqlite:///{tmp_path / 's.db'}", "s", {"ray-known"}) == 1
    study = internals.searcher_study(searcher)
    states = {
        t.user_attrs["ray_trial_id"]: (t.state, t.user_attrs.get("orphaned"))
        for t in study.get_trials()
    }
    assert states == {
        "ray-known": (TrialState.RUNNING, None),
        "ray-orphan": (TrialState.FAIL, True),
    }


def test_a_saved_searcher_leaves_the_cached_trials_out_and_a_restored_one_reads_them(
    searcher, tmp_path
):
    study = internals.searcher_study(searcher)
    searcher.suggest("ray-1")
    searcher.on_trial_complete("ray-1", {"objective": 0.5})
    searcher.save(str(tmp_path / "small.pkl"))
    told = study.trials[0]
    study.add_trials([told] * 500)  # finished trials the storage now caches (read below)
    assert len(study.get_trials(deepcopy=False)) == 501
    searcher.save(str(tmp_path / "large.pkl"))
    small, large = (tmp_path / "small.pkl").stat().st_size, (tmp_path / "large.pkl").stat().st_size
    assert large < small + 5_000, (small, large)  # not ~500 pickled trials
    assert len(study.get_trials(deepcopy=False)) == 501  # the live cache is back
    restored = SweepOptunaSearch(load_space("demo"), f"sqlite:///{tmp_path / 's.db'}", "s")
    restored.restore(str(tmp_path / "large.pkl"))
    trials = internals.searcher_study(restored).get_trials(deepcopy=False)
    assert len(trials) == 501 and trials[0].user_attrs["ray_trial_id"] == "ray-1"


def test_ray_has_its_single_node_flag():
    from ray._private import ray_constants

    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)


SYNCS_ON_DEMAND = """
import json, sys
from pathlib import Path
from ray import tune
from sweep import internals
from sweep.cluster import init_ray
from sweep.settings import Resources

class WritesAnArtifact(tune.Trainable):
    def step(self):
        storage = internals.trial_storage(self)
        Path("artifact.txt").write_text("written")  # Tune runs a trial in its working folder
        stored = Path(storage.trial_fs_path) / "artifact.txt"
        before = stored.is_file()
        internals.sync_artifacts(storage)
        return {"before": before, "after": stored.is_file(), "done": True}

init_ray(Resources(num_cpus=1))
sync = tune.SyncConfig(sync_period=30, sync_artifacts=True)  # as a sweep syncs
config = tune.RunConfig(storage_path=sys.argv[1], name="syncs", verbose=0, sync_config=sync)
metrics = tune.Tuner(WritesAnArtifact, run_config=config).fit()[0].metrics
print(json.dumps({"before": metrics["before"], "after": metrics["after"]}))
"""


@pytest.mark.e2e  # a real Tune run, in a process of its own
def test_a_class_trainable_keeps_a_storage_context_that_syncs_on_demand(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SYNCS_ON_DEMAND, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    synced = json.loads(done.stdout.splitlines()[-1])
    # the artifact reaches the sweep's storage only when the trial asks, not before
    assert synced == {"before": False, "after": True}
    assert internals.trial_storage(object()) is None  # outside Tune: nothing to sync
