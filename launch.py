"""sersweep command line: sweeps, resume, best configs, final training, reports, one run.

Every user error prints one line ``error: ...`` to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parent
DEMO_SPACE = "demo"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from sermodels.errors import SersweepError

    try:
        return args.handler(args)
    except SersweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class OneLineErrors(argparse.ArgumentParser):
    """Usage mistakes as one ``error: ...`` line and exit code 2, like every other error
    (``--help`` still shows the usage)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {self.prog}: {message}\n")


# ---- argument types: argparse calls them, and a bad value is one line and exit 2 ----------
def _integer(text: str, expected: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive(text: str) -> int:
    return _integer(text, "a positive integer", 1)


def non_negative(text: str) -> int:
    return _integer(text, "an integer >= 0", 0)


def port_number(text: str) -> int:
    return _integer(text, "a port number 1-65535", 1, 65535)


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def probability(text: str) -> float:
    value = _float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def verdict_list(text: str) -> list[str]:
    from sweep.collapse import FAILURES

    verdicts = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(verdicts) - set(FAILURES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown verdicts {unknown}; expected some of {FAILURES}")
    return verdicts


def folder_list(text: str) -> list[str]:
    """``DIR[,DIR...]``: sweep folders (each is checked when the sweep starts)."""
    folders = [f.strip() for f in text.split(",") if f.strip()]
    if not folders:
        raise argparse.ArgumentTypeError("expected one or more sweep folders, comma-separated")
    return folders


def detector_settings(text: str) -> dict:
    """``patience=4,diversity_low=0.1`` -> keyword arguments of the collapse detector."""
    settings = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        try:
            settings[key.strip()] = int(value) if value.strip().isdigit() else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key}: expected a number, got {value!r}") from None
    return settings


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per row of :data:`COMMANDS`."""
    top = OneLineErrors(prog="launch.py", description=__doc__.splitlines()[0])
    top.set_defaults(handler=run_demo)
    commands = top.add_subparsers(title="commands")
    for name, help_text, add_arguments, handler in COMMANDS:
        command = commands.add_parser(name, help=help_text)
        add_arguments(command)
        command.set_defaults(handler=handler)
    top.command_parsers = commands.choices  # each command's parser, by name (docs and tests)
    return top


# ---- each command's arguments ------------------------------------------------------------
def demo_data_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("out", type=Path, help="output .h5 file")
    command.add_argument("--speakers", type=positive, default=12, help="one fold each (>= 2)")
    command.add_argument("--per-speaker", type=positive, default=40, help="utterances per speaker")
    command.add_argument("--bins", type=positive, default=64, help="frequency bins of the audio")
    command.add_argument("--long-frames", type=positive, default=10)
    command.add_argument("--short-frames", type=positive, default=10)
    command.add_argument("--audio-key", default="a_feat", help="the audio's feature key")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def train_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("config", type=Path, help="run config YAML (see examples/)")
    command.add_argument("--data", type=Path, help="h5 corpus (default: the demo corpus)")
    command.add_argument("--out", type=Path, help="output folder (default: runs/train-TIME)")
    command.add_argument("--epochs", type=positive, help="override train.epochs")
    command.add_argument("--seed", type=int, help="override train.seed")
    command.add_argument("--force", action="store_true", help="replace an existing --out")
    add_selection_options(command)
    command.add_argument(
        "--cv",
        type=positive,
        metavar="K",
        help="K speaker-independent rotations of the test folds over the test and "
        "training folds, as Ray tasks (OUT/summary.md)",
    )
    command.add_argument("--seeds", type=positive, default=1, help="seeds per rotation (--cv)")
    command.add_argument("--num-cpus", type=positive, help="CPUs of the local Ray (--cv)")
    command.add_argument(
        "--valid-is-test",
        action="store_true",
        help="validate on the test folds (the source SGAN's setup; recorded in "
        "the metrics, refused by sweep, best and final)",
    )
    add_data_mode_option(command)
    add_backend_option(command)


def extract_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("wav_dir", type=Path, help="folder the sheet's file names are under")
    command.add_argument(
        "labels", type=Path, help="CSV: file, speaker[, category, arousal, valence, gender, corpus]"
    )
    command.add_argument("out", type=Path, help="output .h5 file")
    command.add_argument("--sample-rate", type=positive, help="Hz (16000)")
    command.add_argument(
        "--no-resample", action="store_true", help="a file at another sample rate is an error"
    )
    command.add_argument("--window-ms", type=positive_float, help="STFT window (25)")
    command.add_argument("--hop-ms", type=positive_float, help="STFT hop (10)")
    command.add_argument("--bins", type=positive, help="frequency bins (256)")
    command.add_argument("--long-frames", type=positive, help="frames per window row (10)")
    command.add_argument("--short-frames", type=positive, help="window rows (10)")
    command.add_argument("--step", type=positive, help="frames between windows (half a window)")
    command.add_argument("--categories", help="category names in id order, comma-separated")
    command.add_argument(
        "--preset",
        choices=("default", "source"),
        default="default",
        help="source: the source extractor's log spectrogram (16 kHz, 512-point "
        "FFT, 32 ms Hann window, 8 ms hop, dB, 257 bins); flags given override "
        "it",
    )
    command.add_argument(
        "--label-columns",
        metavar="NAMES",
        help="label columns in order (default: arousal,valence,category,"
        "speaker,corpus,gender,utterance)",
    )
    command.add_argument("--workers", type=positive, help="parallel processes (CPUs - 1)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def sweep_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--space", required=True, help="shipped space name or YAML file")
    command.add_argument("--data", type=Path, help="h5 corpus (default: the demo corpus)")
    command.add_argument("--samples", type=positive, default=8, help="number of trials")
    command.add_argument("--max-epochs", type=positive, help="epochs per trial (default: space's)")
    command.add_argument("--out", type=Path, help="sweep folder (default: runs/sweeps/NAME)")
    command.add_argument("--name", default=None, help="study / experiment name")
    command.add_argument("--concurrency", type=positive, default=2)
    command.add_argument("--cpus-per-trial", type=positive_float, default=1.0)
    command.add_argument(
        "--gpus-per-trial",
        type=non_negative_float,
        default=0.0,
        help="fractions share a GPU, e.g. 0.25",
    )
    command.add_argument(
        "--study-url",
        "--storage",
        dest="study_url",
        metavar="URL",
        help="the Optuna study's URL (default: sqlite in the folder)",
    )
    command.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo")
    command.add_argument(
        "--sampler",
        choices=("tpe", "nsga2", "random"),
        default="tpe",
        help="Optuna sampler (nsga2: for several objectives; random: a baseline)",
    )
    command.add_argument("--seed", type=int, default=0, help="sampler seed")
    command.add_argument(
        "--startup-trials",
        type=positive,
        metavar="N",
        # the number is sweep.settings.STARTUP_TRIALS (a test holds them equal): importing it
        # here would load the sweep package for every command's --help
        help="TPE's random draws before it models the finished trials (default 4; Optuna's "
        "own is 10)",
    )
    command.add_argument(
        "--max-failure-risk",
        type=probability,
        metavar="R",
        # the number is sweep.settings.MAX_FAILURE_RISK (a test holds them equal), as above
        help="TPE's proposals whose estimated failure risk (from the finished trials around "
        "them) is above R are redrawn, so the sweep draws less where GANs collapsed "
        "(default 0.05; 1: never)",
    )
    command.add_argument("--max-failures", type=int, default=2, help="retries per trial")
    command.add_argument(
        "--snapshot-every",
        type=int,
        default=1,
        metavar="N",
        help="Ray's experiment snapshot every N checkpoints of a trial, keeping "
        "N (more: less driver time per epoch)",
    )
    command.add_argument(
        "--no-collapse-stop",
        action="store_true",
        help="label collapsing trials but let them run their budget",
    )
    command.add_argument(
        "--stop-on",
        type=verdict_list,
        help="verdicts that stop a trial, comma-separated "
        "(default: all but d_overpowers for a classifier objective, all for diversity_score)",
    )
    command.add_argument(
        "--detector",
        type=detector_settings,
        default={},
        help="collapse detector, e.g. patience=4,diversity_low=0.1",
    )
    add_selection_options(command)
    command.add_argument("--address", help="existing Ray cluster (default: a local Ray)")
    command.add_argument("--num-cpus", type=positive, help="CPUs of the local Ray")
    command.add_argument(
        "--ray-storage",
        "--storage-path",
        dest="ray_storage",
        metavar="PATH",
        help="Ray Tune's storage all nodes reach: a shared path or "
        "s3://bucket/dir (default: OUT/ray)",
    )
    add_data_mode_option(command, "auto; saved with the sweep")
    command.add_argument(
        "--warm-start",
        type=folder_list,
        default=[],
        metavar="DIR[,DIR...]",
        help="earlier sweeps whose finished trials that fit this space enter "
        "the study before the first draw",
    )
    add_backend_option(command)
    command.add_argument(
        "--reduce",
        metavar="HOW",
        help="how a trial's epochs reduce to its objective: best, last, "
        "mean_last:K, smoothed:K (default: the space's)",
    )
    add_reeval_options(command, "when the sweep ends", top=3)


def reeval_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("folder", type=Path)
    command.add_argument("--top", type=positive, default=3)
    command.add_argument("--seeds", type=positive, default=3)


def resume_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("folder", type=Path)
    command.add_argument(
        "--study-url",
        "--storage",
        dest="study_url",
        metavar="URL",
        help="the study's URL again, with its password (or set PGPASSWORD / ~/.pgpass)",
    )
    command.add_argument(
        "--address",
        help="the Ray cluster to continue on, when it is not the "
        "one the sweep started on (a new Slurm job's head)",
    )


def best_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("folder", type=Path)
    command.add_argument("--top", type=positive, default=3)
    add_trade_off_options(command)


def final_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("folder", type=Path)
    command.add_argument("--top", type=positive, default=3)
    command.add_argument("--seeds", type=positive, default=3)
    add_trade_off_options(command)
    command.add_argument(
        "--cv",
        type=positive,
        metavar="K",
        help="instead, K speaker-independent rotations over the folds the sweep "
        "did not select on (FOLDER/final/cv)",
    )
    add_selection_options(command)
    add_data_mode_option(command, "the sweep's")
    add_backend_option(command, "the sweep's")


def predict_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("model", type=Path, help="a train run folder or a sweep's final/ folder")
    command.add_argument("input", type=Path, help="an h5 corpus or a folder of WAV files")
    command.add_argument(
        "--out", type=Path, required=True, help="per-window CSV (and NAME.utterances.csv)"
    )
    command.add_argument("--folds", metavar="FOLDS", help="only these folds of an h5 (e.g. 0,1)")
    command.add_argument("--seed", type=int, help="which seed of a final/ folder (its first)")
    command.add_argument(
        "--features", metavar="LAYER", help="write LAYER's activations to --out (.h5) instead"
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    add_backend_option(command)


def report_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("folder", type=Path)


def dashboard_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("folder", type=Path)
    command.add_argument("--port", type=port_number, default=8080)
    command.add_argument(
        "--study-url",
        "--storage",
        dest="study_url",
        metavar="URL",
        help="the study's URL again, with its password",
    )


def add_trade_off_options(command: argparse.ArgumentParser) -> None:
    choice = command.add_mutually_exclusive_group()
    choice.add_argument(
        "--pareto",
        action="store_true",
        help="a sweep with several objectives: every member of its Pareto "
        "front instead of the top K",
    )
    choice.add_argument(
        "--pick",
        metavar="TRADE-OFF",
        help="one member of the Pareto front, e.g. 'val_uar>=0.6,min params'",
    )


def add_reeval_options(command: argparse.ArgumentParser, when: str, top: int) -> None:
    command.add_argument(
        "--reeval-top",
        type=non_negative,
        default=top,
        metavar="K",
        help=f"re-evaluate the top K configs on fresh seeds {when} (0: none)",
    )
    command.add_argument(
        "--reeval-seeds",
        type=positive,
        default=3,
        metavar="S",
        help="fresh seeds per re-evaluated config",
    )


def add_backend_option(command: argparse.ArgumentParser, default: str = "") -> None:
    from sermodels.backend import BACKENDS

    default = default or "$KERAS_BACKEND, else tensorflow"
    command.add_argument(
        "--backend", choices=BACKENDS, help=f"Keras backend of this run and its workers ({default})"
    )


def add_data_mode_option(command: argparse.ArgumentParser, default: str = "auto") -> None:
    from sermodels.data import DATA_MODES

    command.add_argument(
        "--data-mode",
        choices=DATA_MODES,
        help="resident: every row in memory (fast); stream: batches read from the h5 file "
        f"(memory stays flat); auto: resident when the rows fit in half a trial's memory "
        f"({default})",
    )


def add_selection_options(command: argparse.ArgumentParser) -> None:
    """The data selection over a config's or space's base: which folds test, validate, train
    and are unlabelled, which tasks, and ``--set KEY=VALUE`` for any other key."""
    group = command.add_argument_group(
        "data selection (over the config's base; an empty value clears the base's choice)"
    )
    group.add_argument("--test-idx", metavar="FOLDS", help="test folds, e.g. 0,1 or 0:2")
    group.add_argument("--valid-idx", metavar="FOLDS", help="validation folds")
    group.add_argument("--unlabelled-idx", metavar="FOLDS", help="folds used without labels")
    group.add_argument("--train-idx", metavar="FOLDS", help="training folds (default: the rest)")
    group.add_argument("--tasks", help="tasks, e.g. category:4:category,arousal:1:arousal")
    group.add_argument(
        "--set",
        dest="settings",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="any base key, e.g. --set train.batch_size=32 (repeatable; VALUE is read as YAML)",
    )


def selection_settings(args) -> dict:
    """``{"data.test_idx": "0,1", ...}`` from the selection flags (``None`` where a flag
    was given empty: the key is cleared back to its default)."""
    from sermodels.config import DATA_FLAGS, parse_setting

    settings = dict(parse_setting(text) for text in args.settings)
    for name in DATA_FLAGS:
        value = getattr(args, name)
        if value is not None:
            settings[f"data.{name}"] = value.strip() or None
    if getattr(args, "valid_is_test", False):
        settings["data.valid_is_test"] = True
    return settings


# ---- the commands' handlers ----------------------------------------------------------------
def demo_data(args) -> int:
    from sermodels.data.demo import DemoShape, write_demo_corpus
    from sermodels.errors import ConfigError

    if args.out.exists() and args.out.is_dir():
        raise ConfigError(str(args.out), "is a folder; give a file name such as demo.h5")
    if args.speakers < 2:
        raise ConfigError("--speakers", f"expected at least 2, got {args.speakers}")
    shape = DemoShape(args.bins, args.long_frames, args.short_frames, args.audio_key)
    try:
        path = write_demo_corpus(
            args.out, args.speakers, args.per_speaker, args.seed, shape, progress=not args.quiet
        )
    except OSError as exc:
        raise ConfigError(str(args.out), f"cannot write ({exc.strerror or exc})") from None
    audio = f"{shape.long_frames} x 1 x {shape.short_frames} x {shape.bins}"
    print(
        f"wrote {path} ({args.speakers} speakers x {args.per_speaker} rows; {shape.audio_key} "
        f"{audio}, v_feat 48 x 48)"
    )
    return 0


def train_command(args) -> int:
    from sermodels.backend import load
    from sermodels.config import load_config
    from sermodels.data import load_run_corpus
    from sermodels.data.modes import memory_share

    settings = selection_settings(args)
    if args.epochs:
        settings["train.epochs"] = args.epochs
    if args.seed is not None:
        settings["train.seed"] = args.seed
    out = args.out or ROOT / "runs" / time.strftime("train-%Y%m%d-%H%M%S")
    if args.cv:
        return train_cross_validation(args, settings, out)
    config = load_config(args.config, settings)
    share = memory_share(gpus_per_trial=1.0)  # the whole machine (its GPU, when it has one)
    # bad data fails before Keras starts
    corpus = load_run_corpus(config, args.data, args.data_mode or "auto", share)
    print(f"data: {corpus.data.mode} ({corpus.data.reason})", flush=True)
    load(args.backend)
    from sermodels.training.run import train_on  # Keras, on the backend just loaded

    result = train_on(config, corpus, out, on_epoch=print_epoch, overwrite=args.force)
    print_result(result, out)
    return 0


def train_cross_validation(args, settings: dict, out: Path) -> int:
    import yaml

    from sermodels.backend import requested
    from sermodels.config import apply_overrides, load_config
    from sermodels.errors import ConfigError
    from sweep.crossval import Candidate, cross_validate
    from sweep.settings import Resources

    load_config(args.config, settings)  # checks the file and the settings
    mapping = apply_overrides(yaml.safe_load(args.config.read_text()), settings)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ConfigError(str(out), "output folder exists and is not empty (pass --force)")
    resources = Resources(
        num_cpus=args.num_cpus, backend=requested(args.backend), data_mode=args.data_mode or "auto"
    )
    data = str(args.data) if args.data else None
    candidate = Candidate(args.config.stem, mapping)
    summary = cross_validate([candidate], data, args.cv, args.seeds, out, resources, None)
    print_cross_validation(summary)
    return 0


def print_cross_validation(summary: dict) -> None:
    for row in summary["configs"]:
        parts = []
        for metric in ("uar", "wa", "f1"):
            pooled = row[f"pooled_{metric}"]
            if pooled["mean"] is not None:  # a spread only over two seeds or more
                spread = f" +/- {pooled['std']:.4f}" if pooled["std"] is not None else ""
                parts.append(f"{metric.upper()} {pooled['mean']:.4f}{spread}")
        print(
            f"{row['name']}: {summary['k']} rotations (test folds {row['test_groups']}), "
            f"pooled " + ", ".join(parts or ["undefined (no classification task)"])
        )
    print(f"details: {summary['folder']}/summary.md")


def print_epoch(metrics: dict) -> bool:
    shown = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "diversity", "val_uar", "val_ccc")
    parts = [f"{k}={metrics[k]:.3f}" for k in shown if isinstance(metrics.get(k), float)]
    print(f"epoch {metrics['epoch']:3d}  " + "  ".join(parts), flush=True)
    return False


def print_result(result: dict, out: Path) -> None:
    keys = (
        "model",
        "task",
        "epochs",
        "best_epoch",
        "stop_reason",
        "val_uar",
        "test_uar",
        "test_wa",
        "test_f1",
        "test_ccc",
    )
    print(json.dumps({k: result[k] for k in keys if k in result}))
    print(f"outputs: {out}  (tensorboard --logdir {out / 'tb'})")


def extract_command(args) -> int:
    from sermodels.data.extract import SOURCE_PRESET, ExtractConfig, extract
    from sermodels.errors import ConfigError

    options = dict(SOURCE_PRESET) if args.preset == "source" else {}
    names = (
        "sample_rate",
        "window_ms",
        "hop_ms",
        "bins",
        "long_frames",
        "short_frames",
        "step",
        "workers",
    )
    given = {name: getattr(args, name) for name in names}
    options.update({k: v for k, v in given.items() if v is not None})
    options["resample"] = not args.no_resample
    if args.categories:
        options["categories"] = tuple(c.strip().lower() for c in args.categories.split(","))
    if args.label_columns:
        options["label_columns"] = tuple(c.strip() for c in args.label_columns.split(","))
    if args.out.is_dir():
        raise ConfigError(str(args.out), "is a folder; give a file name such as corpus.h5")
    summary = extract(
        args.wav_dir, args.labels, args.out, ExtractConfig(**options), progress=not args.quiet
    )
    print(
        f"wrote {summary['out']}: {summary['windows']} windows of {summary['shape']} from "
        f"{summary['files']} files, {summary['speakers']} speakers (one fold each)"
    )
    return 0


def sweep_command(args) -> int:
    from sermodels.backend import requested
    from sweep.runner import start_sweep
    from sweep.settings import SweepSettings

    name = args.name or Path(args.space).stem
    settings = SweepSettings(
        out=str(args.out or ROOT / "runs" / "sweeps" / time.strftime(f"{name}-%Y%m%d-%H%M%S")),
        space=args.space,
        data=str(args.data) if args.data else None,
        samples=args.samples,
        max_epochs=args.max_epochs,
        name=name,
        concurrency=args.concurrency,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        study_url=args.study_url,
        scheduler=args.scheduler,
        sampler=args.sampler,
        seed=args.seed,
        max_failures=args.max_failures,
        snapshot_every=args.snapshot_every,
        stop_on_collapse=not args.no_collapse_stop,
        address=args.address,
        num_cpus=args.num_cpus,
        detector=args.detector,
        ray_storage=args.ray_storage,
        stop_verdicts=args.stop_on,
        backend=requested(args.backend),
        base_settings=selection_settings(args),
        data_mode=args.data_mode or "auto",
        reduce=args.reduce,
        reeval_top=args.reeval_top,
        reeval_seeds=args.reeval_seeds,
        warm_start=args.warm_start,
        **({"startup_trials": args.startup_trials} if args.startup_trials else {}),
        **({"max_failure_risk": args.max_failure_risk} if args.max_failure_risk else {}),
    )
    print_summary(start_sweep(settings))
    return 0


def resume_command(args) -> int:
    from sermodels.backend import load
    from sweep.settings import load_settings

    settings = load_settings(args.folder)
    load(settings.backend)  # the saved one, before Ray Tune's side imports Keras
    from sweep.runner import resume_sweep

    print_summary(resume_sweep(settings, args.study_url, args.address))
    return 0


def reeval_command(args) -> int:
    from sweep.reeval import run_reeval
    from sweep.settings import load_settings

    rows = run_reeval(load_settings(args.folder), args.top, args.seeds)
    for row in rows:
        print(
            f"{'pick ' if row['pick'] else '     '}Optuna trial {row['optuna_trial']}: "
            f"{row['val_mean']:.4f} ± {row['val_std']:.4f} over {len(row['seeds'])} seeds "
            f"(sweep objective {row['sweep_objective']:.4f})"
        )
    print(f"details: {Path(args.folder) / 'reeval' / 'summary.md'}")
    return 0


def best_command(args) -> int:
    from sweep.results import write_best
    from sweep.settings import load_settings

    for path in write_best(load_settings(args.folder), args.top, args.pareto, args.pick):
        print(path)
    return 0


def final_command(args) -> int:
    from sweep.final import run_final
    from sweep.settings import load_settings

    settings = load_settings(args.folder)
    settings.backend = args.backend or settings.backend  # for this command, not saved
    settings.data_mode = args.data_mode or settings.data_mode
    settings.base_settings = {**settings.base_settings, **selection_settings(args)}
    if args.cv:
        from sweep.final import run_final_cv

        print_cross_validation(
            run_final_cv(settings, args.top, args.seeds, args.cv, args.pareto, args.pick)
        )
        return 0
    summary = run_final(settings, args.top, args.seeds, args.pareto, args.pick)
    for row in summary["configs"]:
        uar = f"{row['test_uar_mean']:.4f} +/- {row['test_uar_std']:.4f}"
        print(
            f"rank {row['rank']} (trial {row['optuna_trial']}): test UAR {uar} "
            f"over {row['seeds']} seeds"
        )
    print(f"details: {summary['folder']}")
    return 0


def predict_command(args) -> int:
    from sermodels.backend import load
    from sermodels.specs import parse_ids

    folds = parse_ids(args.folds, "--folds") if args.folds else None
    load(args.backend)
    from sermodels.inference.predict import predict

    summary = predict(
        args.model, args.input, args.out, folds, args.seed, args.features, progress=not args.quiet
    )
    for key in ("windows_csv", "utterances_csv", "features_h5"):
        if key in summary:
            print(f"wrote {summary[key]}")
    return 0


def dashboard_command(args) -> int:
    from sweep.dashboard import serve
    from sweep.results import load_study
    from sweep.settings import load_settings
    from sweep.study_storage import normalise, password_to_environment

    settings = load_settings(args.folder)
    if args.study_url:
        settings.study_url = normalise(password_to_environment(args.study_url))
    load_study(settings)  # a missing study is a one-line error before the server starts
    print(f"optuna-dashboard: http://127.0.0.1:{args.port}/dashboard (Ctrl-C stops it)", flush=True)
    serve(settings, args.port)
    return 0


def report_command(args) -> int:
    from sweep.report import write_report
    from sweep.settings import load_settings

    print(write_report(load_settings(args.folder)))
    return 0


def print_summary(summary: dict) -> None:
    best = summary["best"]
    print(f"\nsweep: {summary['sweep']}  ({summary['trials']} trials)")
    print("failure modes: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["verdicts"].items())))
    if best:
        print(
            f"best: {best['objectives']} (Optuna trial {best['optuna_trial']}, Ray "
            f"{best['ray_trial_id']}, epoch {best['objective_epoch']})"
        )
        if best["reeval"]:
            figures = best["reeval"]
            print(
                f"  re-evaluated on {len(figures['seeds'])} fresh seeds: "
                f"{figures['val_mean']:.4f} ± {figures['val_std']:.4f}"
            )
        for key, value in sorted(best["params"].items()):
            print(f"  {key}: {value}")
    else:
        print("best: no trial completed (every finished trial was stopped by a verdict)")
    print(f"study: {summary['study']}")
    print(f"TensorBoard: {summary['tensorboard']}")
    print(f"next: python launch.py best {summary['sweep']}  |  report  |  final")


def run_demo(args) -> int:
    """No arguments: a small sweep of the demo space on the demo corpus, local Ray."""
    from sermodels.backend import requested
    from sermodels.data import demo_corpus_path
    from sweep.runner import start_sweep
    from sweep.settings import SweepSettings

    print(f"demo corpus: {demo_corpus_path()}")
    out = ROOT / "runs" / "sweeps" / time.strftime("demo-%Y%m%d-%H%M%S")
    settings = SweepSettings(
        out=str(out),
        space=DEMO_SPACE,
        samples=12,
        name="demo",
        concurrency=2,
        num_cpus=2,
        backend=requested(),
    )
    print_summary(start_sweep(settings))
    return 0


# ---- the commands: name, help, arguments, handler ------------------------------------
COMMANDS = [
    ("demo-data", "write the synthetic demo corpus (h5)", demo_data_arguments, demo_data),
    ("train", "train one SGAN or SER configuration", train_arguments, train_command),
    ("extract", "WAV files + label sheet -> h5 corpus", extract_arguments, extract_command),
    ("sweep", "search a space with Ray Tune + Optuna", sweep_arguments, sweep_command),
    (
        "reeval",
        "re-evaluate a sweep's top-K configs on S fresh seeds each",
        reeval_arguments,
        reeval_command,
    ),
    ("resume", "continue an interrupted sweep", resume_arguments, resume_command),
    ("best", "write the top-K configs as train-ready YAML", best_arguments, best_command),
    ("final", "retrain the top-K on train+valid, S seeds each", final_arguments, final_command),
    ("predict", "predictions of a trained model on new data", predict_arguments, predict_command),
    ("report", "Markdown report with plots in FOLDER/report", report_arguments, report_command),
    (
        "dashboard",
        "serve the sweep's study in optuna-dashboard on 127.0.0.1",
        dashboard_arguments,
        dashboard_command,
    ),
]


if __name__ == "__main__":
    sys.exit(main())
