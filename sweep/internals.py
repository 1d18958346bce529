"""Every private Ray Tune and Optuna name sersweep relies on, in one place.

Each has no public equivalent that does the job (each function says why). The behaviour
relied on is pinned by ``tests/sweep/test_internals.py``, so an upgrade of Ray or Optuna
that changes one fails there, by name, and not somewhere in a sweep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch


def searcher_trials(searcher: OptunaSearch) -> dict[str, optuna.Trial]:
    """Ray trial id -> the live Optuna trial ``OptunaSearch`` asked for it. The searcher keeps
    this ask/tell bookkeeping to itself; sersweep labels those trials (Ray id, overrides,
    verdicts) and re-attaches trials a restored searcher state predates."""
    return searcher._ot_trials


def searcher_study(searcher: OptunaSearch) -> optuna.Study:
    """The study ``OptunaSearch`` asks and tells (it exposes none)."""
    return searcher._ot_study


def searcher_completed(searcher: OptunaSearch) -> set[str]:
    """Ray trial ids ``OptunaSearch`` has told: a trial told before a driver restart must not
    be told again."""
    return searcher._completed_trials


@contextmanager
def trial_cache_set_aside(study: optuna.Study) -> Iterator[None]:
    """While the block runs, the study's storage holds no cached trials. Optuna wraps every
    database storage in a cache of the study's trials that pickles with it, and Ray pickles
    the searcher, study included, at every experiment snapshot: with the cache, a snapshot
    costs time in proportion to the study's finished trials (BENCHMARKS.md, driver_scale).
    An unpickled storage without the cache reads the trials again when they are asked for."""
    storage = study._storage
    if not isinstance(storage, optuna.storages._CachedStorage):
        yield  # journal storage leaves its replayed trials out of its pickle itself
        return
    names = ("_studies", "_trial_id_to_study_id_and_number", "_study_id_and_number_to_trial_id")
    with storage._lock:
        cached = {name: getattr(storage, name) for name in names}
        for name in names:
            setattr(storage, name, {})
        try:
            yield
        finally:
            for name, value in cached.items():
                setattr(storage, name, value)


def live_trial(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """A live handle on a stored trial, e.g. one a killed driver left RUNNING. Optuna's public
    API hands out live trials only from ``ask()``; this one must be continued, not asked."""
    return optuna.Trial(study, frozen._trial_id)


def stored_state(study: optuna.Study, trial: optuna.Trial) -> TrialState:
    """The stored state of one trial, read from the storage (``study.get_trials()``, the
    public way, loads every trial of the study at each call)."""
    return study._storage.get_trial(trial._trial_id).state


def keep_local_ray_on_one_node() -> None:
    """Make a local Ray start in its single-node mode, where every server listens on
    loopback only. Ray reads the flag from the environment when it is imported, so a program
    that imported Ray first (a notebook, a test session) would get servers on every
    interface; there is no public setting after import."""
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def trial_storage(trainable) -> object | None:
    """The storage context Ray Tune gives a class trainable (``None`` outside Tune). Its
    artifacts are synced only when Tune saves a checkpoint; a trial stopped from outside
    (ASHA) must sync its last TensorBoard events itself: :func:`sync_artifacts`."""
    return getattr(trainable, "_storage", None)


def sync_artifacts(storage) -> None:
    """Upload the trial folder's artifacts to the sweep's storage now."""
    storage.persist_artifacts(force=True)


EXPERIMENT_STATE = "experiment_state-"  # Ray Tune's snapshot files: a prefix, a session, .json
SEARCH_STATE = "search_gen_state-"
FINISHED = ("TERMINATED", "ERROR")  # Ray trial statuses the concurrency limiter has let go


def _newest_snapshots(filesystem, folder: str) -> tuple[str | None, str | None]:
    """The newest experiment and search snapshot files in an experiment folder (Ray names
    them by the time their session started; it restores the newest)."""
    import pyarrow.fs

    names = [info.base_name for info in filesystem.get_file_info(pyarrow.fs.FileSelector(folder))]
    snapshots = [name for name in names if name.endswith(".json")]
    states = sorted(name for name in snapshots if name.startswith(EXPERIMENT_STATE))
    searches = sorted(name for name in snapshots if name.startswith(SEARCH_STATE))
    return (
        f"{folder}/{states[-1]}" if states else None,
        f"{folder}/{searches[-1]}" if searches else None,
    )


def _replace_file(filesystem, path: str, data: bytes) -> None:
    with filesystem.open_output_stream(path + ".part") as handle:
        handle.write(data)
    filesystem.move(path + ".part", path)


class ExperimentSnapshot:
    """Ray Tune's newest experiment snapshot on Ray's storage, changed before
    ``Tuner.restore`` through Ray's own (de)serialisation of its trials.

    Ray restores each trial from the checkpoint its snapshot names, and only the trials its
    snapshot lists. A driver killed while Ray copied the snapshot to Ray's storage (in a
    background thread, file by file) leaves a snapshot that lags Ray's storage: a trial's
    newer checkpoint is there and the one the snapshot names already deleted, or a trial that
    ran and checkpointed is missing. Ray has no public way to restore a trial from another
    checkpoint, or a trial it did not record; its snapshot holds ``Trial`` objects serialised
    by ``Trial.get_json_state``, each with a checkpoint manager in its run metadata.

    Args:
        experiment_uri: the experiment folder (a path or a URI pyarrow opens).
    """

    def __init__(self, experiment_uri: str) -> None:
        import pyarrow.fs

        self.filesystem, folder = pyarrow.fs.FileSystem.from_uri(experiment_uri)
        self.path, _ = _newest_snapshots(self.filesystem, folder)
        self._state: dict = {"trial_data": []}
        if self.path is not None:
            with self.filesystem.open_input_stream(self.path) as handle:
                self._state = json.loads(handle.readall())
        self._entries = {
            json.loads(entry[0])["trial_id"]: entry for entry in self._state["trial_data"]
        }
        self._changed = False

    def statuses(self) -> dict[str, str]:
        """Ray trial id -> the status the snapshot recorded (``RUNNING``, ``TERMINATED``...)."""
        return {
            trial_id: json.loads(entry[0])["status"] for trial_id, entry in self._entries.items()
        }

    def checkpoint(self, trial_id: str) -> str | None:
        """The folder name of the checkpoint Ray would restore ``trial_id`` from."""
        latest = self._trial(trial_id).run_metadata.checkpoint_manager.latest_checkpoint_result
        return latest.checkpoint.path.rsplit("/", 1)[-1] if latest else None

    def restore_from(self, trial_id: str, checkpoint: str | None, result: dict) -> None:
        """Ray restores ``trial_id`` from its folder's ``checkpoint`` (``None``: it starts
        over), with ``result`` (the row of the checkpoint's epoch) as its last result."""
        trial = self._trial(trial_id)
        self._set_checkpoint(trial, checkpoint, result)
        self._entries[trial_id] = list(trial.get_json_state())
        self._changed = True

    def add(self, trial_id: str, config: dict, checkpoint: str | None, result: dict) -> None:
        """Record a trial the snapshot lacks, with its ``config``, to continue from its
        ``checkpoint`` (``None``: from the start), as Ray records a trial it created."""
        from ray.tune.experiment import Trial

        template = self._trial(next(iter(self._entries)))
        manager = template.run_metadata.checkpoint_manager
        trial = Trial(
            template.trainable_name,
            config=config,
            trial_id=trial_id,
            storage=template.storage,
            evaluated_params={k: v for k, v in config.items() if not isinstance(v, dict)},
            experiment_tag=str(len(self._entries) + 1),
            stopping_criterion=template.stopping_criterion,
            checkpoint_config=manager.checkpoint_config,
            export_formats=template.export_formats,
            trial_name_creator=template.trial_name_creator,
            trial_dirname_creator=template.trial_dirname_creator,
            log_to_file=template.log_to_file,
            max_failures=template.max_failures,
            stub=True,  # the trainable is registered by ``Tuner.restore``, not yet
        )
        # as a trial Ray added and started: resources resolved (the trainable's own request,
        # as with ``tune.with_resources``), its folder named
        trial.placement_group_factory = template.placement_group_factory
        trial.relative_logdir = trial.custom_dirname
        trial.storage.trial_dir_name = trial.relative_logdir
        trial.status = Trial.PAUSED if checkpoint else Trial.PENDING
        self._set_checkpoint(trial, checkpoint, result)
        self._entries[trial_id] = list(trial.get_json_state())
        self._changed = True

    def save(self) -> bool:
        """Write the snapshot back if anything changed; returns whether it did."""
        if not self._changed:
            return False
        self._state["trial_data"] = list(self._entries.values())
        _replace_file(self.filesystem, self.path, json.dumps(self._state, indent=2).encode())
        self._changed = False
        return True

    def _trial(self, trial_id: str):
        from ray.tune.experiment import Trial

        trial_json, metadata_json = self._entries[trial_id]
        trial = Trial.from_json_state(trial_json, stub=True)
        trial.restore_run_metadata(metadata_json)
        return trial

    @staticmethod
    def _set_checkpoint(trial, checkpoint: str | None, result: dict) -> None:
        from ray.train._internal.checkpoint_manager import _CheckpointManager
        from ray.train._internal.session import _TrainingResult
        from ray.tune import Checkpoint

        metadata = trial.run_metadata
        # a manager of its own: registering in the old one would delete its checkpoints
        manager = _CheckpointManager(metadata.checkpoint_manager.checkpoint_config)
        if checkpoint:
            path = f"{trial.storage.trial_fs_path}/{checkpoint}"
            where = Checkpoint(path=path, filesystem=trial.storage.storage_filesystem)
            manager.register_checkpoint(_TrainingResult(checkpoint=where, metrics=result))
        metadata.checkpoint_manager = manager
        metadata.last_result = result
        trial.stub = False  # restored for real by ``Tuner.restore``
        trial.invalidate_json_state()


def align_search_state(experiment_uri: str) -> list[str]:
    """Make an experiment's newest search snapshot agree with its newest experiment state
    before ``Tuner.restore``; returns the ids of trials the searcher made that Ray never
    recorded.

    Ray writes both snapshots on the driver and copies them to Ray's storage in a
    background thread, file by file, so a driver killed mid-copy can leave a search snapshot
    from a later moment than the trial list beside it. Restored as they are, the search
    generator counts trials Ray never recorded (the sweep ends short of its samples) and the
    concurrency limiter keeps slots for them (fewer trials at once, or none). Both are in the
    generator's pickled state (its ``counter`` and the limiter's ``live_trials``), which Ray
    offers no public way to read or change.
    """
    import pyarrow.fs
    import ray.cloudpickle

    filesystem, folder = pyarrow.fs.FileSystem.from_uri(experiment_uri)
    state_file, search_file = _newest_snapshots(filesystem, folder)
    if state_file is None or search_file is None:
        return []
    with filesystem.open_input_stream(state_file) as handle:
        trials = [json.loads(entry[0]) for entry in json.loads(handle.readall())["trial_data"]]
    with filesystem.open_input_stream(search_file) as handle:
        search = ray.cloudpickle.loads(handle.readall())
    limiter = search.get("name:ConcurrencyLimiter", {})
    recorded = {trial["trial_id"] for trial in trials}
    running = {trial["trial_id"] for trial in trials if trial["status"] not in FINISHED}
    unrecorded = sorted(set(limiter.get("live_trials", ())) - recorded)
    if search["counter"] == len(trials) and limiter.get("live_trials", running) == running:
        return unrecorded
    search["counter"] = len(trials)
    if limiter:
        limiter["live_trials"] = running
        limiter["num_unfinished_live_trials"] = len(running)
    _replace_file(filesystem, search_file, ray.cloudpickle.dumps(search))
    return unrecorded
