"""A sweep's settings: everything ``launch.py sweep`` was told, saved as ``sweep.yaml`` in
the sweep folder so ``resume``, ``best``, ``final`` and ``report`` need only the folder."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from search_spaces import SearchSpace, load_space
from search_spaces.objective import LEGACY_REDUCE, Reduction
from sermodels.backend import BACKENDS, DEFAULT
from sermodels.data.modes import DATA_MODES
from sermodels.errors import ConfigError
from sweep.collapse import FAILURES, CollapseDetector
from sweep.study_storage import normalise, password_to_environment

SETTINGS_FILE = "sweep.yaml"
# A discriminator that wins the game can still be the best classifier (Dai et al. 2017, "Good
# semi-supervised learning that requires a bad GAN"; on the demo corpus D-dominated SGANs
# reach the best val UAR, see BENCHMARKS.md): a sweep for a classifier metric labels
# d_overpowers without stopping the trial; a sweep for a generator metric stops every mode.
GENERATOR_METRICS = ("diversity_score",)
CLASSIFIER_STOPS = tuple(v for v in FAILURES if v != "d_overpowers")
SAMPLERS = ("tpe", "nsga2", "random")
# TPE's random draws before it models the finished trials (Optuna's own default is 10). In
# recorded demo sweeps TPE's modelled draws beat random ones from the first on; on a surrogate
# of the demo space fit on them (bench/sampler_surrogate.py), 4 start-up draws picked better
# than 10 at 8 trials and alike from 16 on, and as well as 2 within the noise
STARTUP_TRIALS = 4
LEGACY_STARTUP_TRIALS = 10  # what a sweep saved without the setting ran
# TPE's proposals whose estimated failure risk is above this are redrawn
# (sweep.failure_risk; chosen on a surrogate of the demo space, BENCHMARKS.md row 15)
MAX_FAILURE_RISK = 0.05
LEGACY_MAX_FAILURE_RISK = 1.0  # a sweep saved without the setting took every proposal
VALID_IS_TEST_REFUSED = (
    "a sweep selects hyperparameters on its validation data, so validation cannot be the "
    "test set; name validation folds (--valid-idx) or set r_valid"
)
SCHEDULERS = ("fifo", "asha")
# ASHA's rungs: a trial's first ranking after this many epochs, then after 3x as many, ...;
# the best third at each rung goes on (bench/fidelity.py measures them on the demo space)
ASHA_GRACE_PERIOD = 2
ASHA_REDUCTION_FACTOR = 3
# keys a sweep saved under older names: the Optuna study's URL and Ray Tune's storage
RENAMED_KEYS = {"storage": "study_url", "storage_path": "ray_storage"}


@dataclass(frozen=True)
class Resources:
    """Where work runs and what each piece of it gets: every trial of a sweep, and every
    final run, cross-validation fold and re-evaluation seed as a Ray task.

    Args:
        address: Ray cluster address (``None``: a local Ray on loopback).
        num_cpus: CPUs of the local Ray (``None``: all of this machine's).
        concurrency: trials at once (bounded by the CPUs, see
            :func:`sweep.cluster.trials_at_once`).
        cpus_per_trial / gpus_per_trial: each trial's or task's share (fractions allowed).
        max_failures: retries of a trial or task whose worker died.
        backend: the Keras backend of every worker.
        data_mode: how rows reach the work: ``resident``, ``stream`` or ``auto``.

    Example:
        >>> Resources(num_cpus=8, cpus_per_trial=2, gpus_per_trial=0.5)  # doctest: +SKIP
    """

    address: str | None = None
    num_cpus: int | None = None
    concurrency: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    backend: str = DEFAULT
    data_mode: str = "auto"


@dataclass
class SweepSettings:
    """What to search, on what data, with which resources.

    Args:
        out: the sweep folder (study, Ray results, TensorBoard logs, reports).
        space: path of the search-space YAML file (a copy is kept in ``out``).
        data: the h5 corpus (``None``: the built-in demo corpus).
        samples: number of trials.
        max_epochs: epoch budget per trial (``None``: the space's ``max_epochs``).
        name: study and experiment name.
        concurrency: trials running at once.
        cpus_per_trial / gpus_per_trial: Ray resources per trial (fractions allowed).
        study_url: the Optuna study's storage URL (default: ``sqlite:///OUT/study.db``), or
            ``journal:PATH`` (an Optuna journal file, no server); a PostgreSQL
            password is kept out of it (see :func:`password_to_environment`).
        scheduler: ``fifo`` or ``asha`` (asynchronous successive halving on the objective).
        sampler: Optuna sampler: ``tpe`` (multivariate TPE), ``nsga2`` (NSGA-II, for several
            objectives) or ``random``.
        seed: seed of the sampler.
        startup_trials: TPE's random draws before it models the finished trials (a warm
            start's inherited trials count among them; other samplers ignore it).
        max_failure_risk: TPE's proposals whose estimated failure risk (from the finished
            trials around them) is above it are redrawn, so the sweep draws less where GANs
            collapsed (:mod:`sweep.failure_risk`); 1 takes every proposal; other samplers
            ignore it. A sweep saved without the setting loads with 1.
        max_failures: retries of a trial whose worker died (from its last checkpoint).
        snapshot_every: Ray's experiment snapshot is forced after every ``snapshot_every``-th
            checkpoint of a trial, and that many checkpoints per trial are kept. Larger values
            spend less driver time per epoch on big sweeps; ``resume`` reads the checkpoints on
            Ray's storage (:mod:`sweep.recovery`), so it is exact either way.
        stop_on_collapse: stop trials the collapse detector condemns (else label only).
        stop_verdicts: the verdicts that stop a trial (``None``: by the space's objective,
            see :func:`default_stop_verdicts`; resolved when the sweep starts).
        detector: :class:`sweep.collapse.CollapseDetector` keyword arguments.
        address: Ray cluster address (``None``: start a local Ray instance).
        num_cpus: CPUs of the local Ray instance (``None``: all).
        ray_storage: where Ray Tune keeps trials (checkpoints, TensorBoard, results): a path
            every node mounts or a URI Ray's pyarrow filesystems take (``s3://bucket/dir``).
            Default: ``OUT/ray``.
        backend: the Keras backend of the driver and every trial (``tensorflow`` or ``jax``).
        data_mode: how trials get their rows: ``resident`` (read once by the driver, shared
            through Ray's object store, held by every trial), ``stream`` (the driver checks
            the file once; trials read batches from it) or ``auto`` (resident when the rows
            fit in half of a trial's memory; see :mod:`sermodels.data.modes`).
        reduce: how a trial's epochs reduce to its objective (see
            :mod:`search_spaces.objective`); ``None``: the space's own. Saved resolved when the
            sweep starts, so a sweep keeps its reduction; a sweep saved without one (older
            versions) optimised its best epoch and loads as ``best``.
        reeval_top / reeval_seeds: the leaders re-evaluated on fresh seeds when the sweep
            ends (see :mod:`sweep.reeval`); ``reeval_top`` 0 turns it off.
        warm_start: earlier sweep folders whose finished trials that fit the space enter the
            study before its first draw (see :mod:`sweep.warm_start`).
        base_settings: command-line changes to the space's base config (``{"data.test_idx":
            "0,1", "train.batch_size": 32}``; ``None`` clears a key): the data flags and
            ``--set`` of ``launch.py sweep``. Saved, so ``resume``, ``best``, ``final`` and
            ``report`` see the same base.
    """

    out: str
    space: str
    data: str | None = None
    samples: int = 8
    max_epochs: int | None = None
    name: str = "sweep"
    concurrency: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    study_url: str | None = None
    scheduler: str = "fifo"
    sampler: str = "tpe"
    seed: int = 0
    startup_trials: int = STARTUP_TRIALS
    max_failure_risk: float = MAX_FAILURE_RISK
    max_failures: int = 2
    snapshot_every: int = 1
    stop_on_collapse: bool = True
    stop_verdicts: list[str] | None = None
    detector: dict = field(default_factory=dict)
    address: str | None = None
    num_cpus: int | None = None
    ray_storage: str | None = None
    backend: str = DEFAULT
    data_mode: str = "auto"
    base_settings: dict = field(default_factory=dict)
    reduce: str | None = None
    reeval_top: int = 3
    reeval_seeds: int = 3
    warm_start: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.study_url = password_to_environment(self.study_url)
        if self.study_url:
            self.study_url = normalise(self.study_url)
        checks = (
            ("samples", self.samples >= 1, "a positive integer"),
            ("concurrency", self.concurrency >= 1, "a positive integer"),
            ("cpus_per_trial", self.cpus_per_trial > 0, "> 0"),
            ("gpus_per_trial", self.gpus_per_trial >= 0, ">= 0 (fractions share a GPU)"),
            ("max_failures", self.max_failures >= 0, ">= 0"),
            ("snapshot_every", self.snapshot_every >= 1, "a positive integer (checkpoints)"),
            ("scheduler", self.scheduler in SCHEDULERS, f"one of {SCHEDULERS}"),
            ("sampler", self.sampler in SAMPLERS, f"one of {SAMPLERS}"),
            ("startup_trials", self.startup_trials >= 1, "a positive integer"),
            ("max_failure_risk", 0 < self.max_failure_risk <= 1, "a number in (0, 1]"),
            ("backend", self.backend in BACKENDS, f"one of {BACKENDS}"),
            ("data_mode", self.data_mode in DATA_MODES, f"one of {DATA_MODES}"),
            ("reeval_top", self.reeval_top >= 0, ">= 0 (0: no re-evaluation)"),
            ("reeval_seeds", self.reeval_seeds >= 1, "a positive integer"),
        )
        for name, ok, expected in checks:
            if not ok:
                flag, value = f"--{name.replace('_', '-')}", getattr(self, name)
                raise ConfigError(flag, f"expected {expected}, got {value!r}")
        unknown = set(self.stop_verdicts or ()) - set(FAILURES)
        if unknown:
            raise ConfigError(
                "--stop-on", f"unknown verdicts {sorted(unknown)}; expected some of {FAILURES}"
            )
        try:
            CollapseDetector(**self.detector)
        except (TypeError, ValueError) as exc:
            raise ConfigError("--detector", str(exc)) from None
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ConfigError("--max-epochs", f"expected a positive integer, got {self.max_epochs}")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise ConfigError("--gpus-per-trial", "above 1, give a whole number of GPUs")
        if self.base_settings.get("data.valid_is_test"):
            raise ConfigError("--set data.valid_is_test", VALID_IS_TEST_REFUSED)
        if self.reduce is not None:
            self.reduce = str(Reduction.parse(self.reduce, "--reduce"))

    def resolve_stop_verdicts(self, metric: str) -> None:
        """Fill in the default stop verdicts for a sweep that optimises ``metric``."""
        if self.stop_verdicts is None:
            self.stop_verdicts = default_stop_verdicts(metric)

    @property
    def stopping(self) -> tuple[str, ...]:
        """The verdicts that end a trial early."""
        if self.stop_verdicts is None:
            raise RuntimeError("call resolve_stop_verdicts(metric) first")
        return tuple(self.stop_verdicts) if self.stop_on_collapse else ()

    @property
    def folder(self) -> Path:
        return Path(self.out)

    @property
    def resources(self) -> Resources:
        """The part of these settings that says where the sweep's work runs (its fields, under
        the same names)."""
        return Resources(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Resources)})

    @property
    def resolved_study_url(self) -> str:
        """The Optuna study's URL: ``study_url`` or the SQLite file in the sweep folder."""
        return self.study_url or f"sqlite:///{(self.folder / 'study.db').resolve()}"

    @property
    def ray_storage_root(self) -> str:
        """Ray Tune's storage: ``--ray-storage`` or ``OUT/ray`` (absolute)."""
        if self.ray_storage and "://" in self.ray_storage:
            path, sep, query = self.ray_storage.partition("?")
            return path.rstrip("/") + sep + query
        return str(Path(self.ray_storage or self.folder / "ray").resolve())

    @property
    def experiment_uri(self) -> str:
        """Ray Tune's experiment: ``STORAGE/NAME`` (a path or a URI; a URI's query, such as
        ``?endpoint_override=host:port`` for an S3-compatible server, stays at the end)."""
        path, sep, query = self.ray_storage_root.partition("?")
        return f"{path}/{self.name}{sep}{query}"

    @property
    def experiment_path(self) -> Path:
        """The experiment as a local path (only when Ray's storage is a filesystem path)."""
        if "://" in self.ray_storage_root:
            raise ConfigError(self.ray_storage_root, "is not a local path; use experiment_uri")
        return Path(self.experiment_uri)

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (SETTINGS_FILE + ".part")
        tmp.write_text(yaml.safe_dump(dataclasses.asdict(self), sort_keys=False))
        os.replace(tmp, self.folder / SETTINGS_FILE)


def default_stop_verdicts(metric: str) -> list[str]:
    """The verdicts that stop trials of a sweep that optimises ``metric``: every failure mode
    for a generator metric, all but ``d_overpowers`` for a classifier metric."""
    return list(FAILURES) if metric in GENERATOR_METRICS else list(CLASSIFIER_STOPS)


def sweep_space(settings: SweepSettings) -> SearchSpace:
    """The sweep's search space: its YAML file with the command-line ``base_settings`` over
    the base. A base that validates on the test folds is refused (see
    :data:`VALID_IS_TEST_REFUSED`)."""
    space = load_space(settings.space).with_settings(settings.base_settings)
    if space.base.get("data", {}).get("valid_is_test"):
        raise ConfigError(f"{space.path}: data.valid_is_test", VALID_IS_TEST_REFUSED)
    if settings.reduce is not None:
        space = dataclasses.replace(space, reduce=Reduction.parse(settings.reduce))
    return space


def load_settings(folder: str | Path) -> SweepSettings:
    """The settings a sweep folder was started with."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        above = [p for p in Path(folder).resolve().parents if (p / SETTINGS_FILE).is_file()]
        hint = f"; it lies inside the sweep folder {above[0]}" if above else ""
        raise ConfigError(str(folder), f"not a sweep folder (no {SETTINGS_FILE}){hint}")
    try:
        values = yaml.safe_load(path.read_text())
        values["out"] = str(Path(folder))  # the folder may have moved
        for old, new in RENAMED_KEYS.items():
            if old in values:
                values[new] = values.pop(old)
        values.setdefault("reduce", LEGACY_REDUCE)  # saved before sweeps had a reduction
        values.setdefault("startup_trials", LEGACY_STARTUP_TRIALS)
        values.setdefault("max_failure_risk", LEGACY_MAX_FAILURE_RISK)
        return SweepSettings(**values)
    except (yaml.YAMLError, TypeError, KeyError) as exc:
        raise ConfigError(str(path), f"unreadable sweep settings ({exc})") from None
    except ConfigError as exc:  # a value this version refuses (e.g. a verdict since dropped)
        raise ConfigError(f"{path} ({exc.where})", exc.problem) from None
