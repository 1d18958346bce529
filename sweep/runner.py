"""Start or resume a sweep: check everything before Ray starts, then hand the search to Ray
Tune (OptunaSearch + ConcurrencyLimiter, optional ASHA, collapse stopper, checkpoints)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from search_spaces import SearchSpace
from sermodels.backend import load as load_backend
from sermodels.data import Corpus
from sermodels.errors import ConfigError
from sweep.cluster import check_address, check_ray_storage, init_ray
from sweep.corpus import load_sweep_corpus, save_data_choice
from sweep.results import summarize
from sweep.settings import (
    ASHA_GRACE_PERIOD,
    ASHA_REDUCTION_FACTOR,
    SETTINGS_FILE,
    SweepSettings,
    sweep_space,
)
from sweep.study_storage import check_study_storage, mask_url, password_to_environment

ROOT = Path(__file__).resolve().parent.parent
SPACE_COPY = "space.yaml"


def start_sweep(settings: SweepSettings) -> dict:
    """A new sweep in ``settings.out``; returns :func:`sweep.results.summarize`."""
    space = sweep_space(settings)
    if (settings.folder / SETTINGS_FILE).exists():
        raise ConfigError(str(settings.folder), "already holds a sweep; use `launch.py resume`")
    inherited = None
    if settings.warm_start:  # checked, like everything else, before the folder is made
        load_backend(settings.backend)  # before Ray's import, which would import it loudly
        from sweep.warm_start import plan_warm_start

        inherited = plan_warm_start(space, settings.warm_start)
    corpus = load_sweep_corpus(space, settings)
    check_address(settings.address)
    check_ray_storage(settings.ray_storage_root)
    settings.resolve_stop_verdicts(space.metric)  # saved resolved: resume stops the same
    settings.reduce = str(space.reduce)  # and reduces the same
    try:
        settings.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(str(settings.folder), f"cannot create ({exc.strerror or exc})") from None
    try:
        check_study_storage(settings.resolved_study_url)
    except ConfigError:
        if not any(settings.folder.iterdir()):
            settings.folder.rmdir()  # nothing half-written
        raise
    copy = settings.folder / SPACE_COPY  # the sweep keeps the space it started with
    shutil.copyfile(space.path, copy)
    settings.space = str(copy.resolve())
    settings.save()
    save_data_choice(settings, corpus)
    if inherited is not None:
        inherited.add_to(settings.resolved_study_url, settings.name, space)
        print(inherited.summary(), flush=True)
    return _run(settings, sweep_space(settings), corpus, restore=False)


def resume_sweep(
    settings: SweepSettings, study_url: str | None = None, address: str | None = None
) -> dict:
    """Continue an interrupted sweep: finished trials stay finished, unfinished ones resume
    from their last checkpoint, and the Optuna study continues where it stopped.

    ``settings`` are the sweep's saved ones (:func:`sweep.settings.load_settings`: the caller
    reads them first, to load the saved Keras backend before Ray Tune's side imports Keras);
    ``study_url`` gives the study's URL again (with a password that was not saved); ``address``
    a Ray cluster other than the one the sweep started on (saved: later commands use it)."""
    if address:
        check_address(address)
        settings.address = address
        settings.save()
    check_address(settings.address)
    if study_url:
        url = password_to_environment(study_url)
        if url != settings.resolved_study_url:
            where = mask_url(settings.resolved_study_url)
            raise ConfigError(mask_url(url), f"this sweep's study is at {where}")
    space = sweep_space(settings)
    corpus = load_sweep_corpus(space, settings)
    save_data_choice(settings, corpus)
    from ray import tune

    from sweep.recovery import prepare_resume
    from sweep.search import running_trial_configs

    restore = tune.Tuner.can_restore(settings.experiment_uri)
    if restore:
        running = running_trial_configs(settings.resolved_study_url, settings.name)
        report = prepare_resume(settings.experiment_uri, running).summary()
        if report:
            print(report, flush=True)
    return _run(settings, space, corpus, restore=restore)


def _run(settings: SweepSettings, space: SearchSpace, corpus: Corpus, restore: bool) -> dict:
    load_backend(settings.backend)  # the driver unpickles what the trials report
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # our own TensorBoard
    # a snapshot per checkpoint is what makes resume exact; Ray warns about it by default
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    init_ray(settings.resources)
    from ray import tune

    from sweep.dashboard import write_census_note
    from sweep.search import reconcile_study
    from sweep.trainable import SweepTrainable

    trainable = tune.with_resources(
        tune.with_parameters(SweepTrainable, corpus=corpus, space=space, settings=settings),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    if restore:
        tuner = tune.Tuner.restore(
            settings.experiment_uri, trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = new_tuner(settings, space, trainable)
    results = tuner.fit()
    # Ray trials still unfinished (an interrupted fit) resume later; any other RUNNING Optuna
    # trial was asked for by a driver that died before Ray recorded it
    unfinished = {
        r.metrics.get("trial_id")
        for r in results
        if r.error is None and not (r.metrics or {}).get("done")
    }
    reconcile_study(settings.resolved_study_url, settings.name, known_trial_ids=unfinished)
    if settings.reeval_top and not unfinished:
        reevaluate_leaders(settings, corpus)
    write_census_note(settings)  # the study's note in optuna-dashboard
    return summarize(settings)


def reevaluate_leaders(settings: SweepSettings, corpus: Corpus) -> None:
    """The sweep's leaders on fresh seeds (:mod:`sweep.reeval`), when it has completed
    trials; the pick is printed."""
    from sweep.reeval import MULTI_OBJECTIVE, run_reeval
    from sweep.results import load_study, sweep_ranked

    if sweep_space(settings).others:
        print(f"reeval: {MULTI_OBJECTIVE}", flush=True)
        return
    if not sweep_ranked(load_study(settings)):
        print("reeval: no completed trial to re-evaluate", flush=True)
        return
    print(
        f"reeval: the top {settings.reeval_top} configurations on {settings.reeval_seeds} "
        "fresh seeds each",
        flush=True,
    )
    rows = run_reeval(settings, settings.reeval_top, settings.reeval_seeds, corpus)
    pick = rows[0]
    print(
        f"reeval: pick Optuna trial {pick['optuna_trial']}: {pick['val_mean']:.4f} ± "
        f"{pick['val_std']:.4f} over {len(pick['seeds'])} seeds (sweep objective "
        f"{pick['sweep_objective']:.4f})",
        flush=True,
    )


def new_tuner(settings: SweepSettings, space: SearchSpace, trainable):
    """The sweep's ``tune.Tuner`` around any trainable: Optuna searcher, concurrency limit,
    scheduler, collapse stopper, callbacks, checkpoint/sync/failure policy (benchmarks time
    this machinery with a trivial trainable)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter

    from sweep.dashboard import TrialImages
    from sweep.loggers import CsvResults, JsonResults
    from sweep.progress import ProgressCallback
    from sweep.search import SweepOptunaSearch
    from sweep.stopper import CollapseStopper
    from sweep.trainable import OBJECTIVE

    settings.resolve_stop_verdicts(space.metric)
    max_epochs = settings.max_epochs or space.max_epochs
    images = TrialImages(settings.folder, settings.experiment_uri)  # for optuna-dashboard
    searcher = SweepOptunaSearch(
        space,
        settings.resolved_study_url,
        settings.name,
        settings.seed,
        settings.stopping,
        settings.sampler,
        images,
        settings.startup_trials,
        settings.max_failure_risk,
    )
    scheduler = None
    if settings.scheduler == "asha":
        scheduler = ASHAScheduler(
            metric=OBJECTIVE,
            mode=space.mode,
            max_t=max_epochs,
            grace_period=min(ASHA_GRACE_PERIOD, max_epochs),
            reduction_factor=ASHA_REDUCTION_FACTOR,
        )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=settings.concurrency),
            scheduler=scheduler,
            num_samples=settings.samples,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.ray_storage_root,
            stop=CollapseStopper(settings.stopping) if settings.stopping else None,
            callbacks=[
                ProgressCallback(
                    space.metric, space.mode, total=settings.samples, stopping=settings.stopping
                ),
                JsonResults(),
                CsvResults(),
            ],
            # Ray forces its experiment snapshot after every num_to_keep-th checkpoint of a
            # trial: at 1, Ray's record never lags what the study was told by over one epoch
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=settings.snapshot_every, checkpoint_frequency=1
            ),
            # TensorBoard logs and images travel with checkpoints to the storage path
            sync_config=tune.SyncConfig(sync_period=30, sync_artifacts=True),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,
        ),
    )


def trial_dirname(trial) -> str:
    """Ray Tune's name for a trial's folder: :func:`sweep.recovery.trial_folder_name`."""
    from sweep.recovery import trial_folder_name

    return trial_folder_name(trial.trial_id)
