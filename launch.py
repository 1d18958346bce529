"""sersweep command line: demo data, one training run (and, as they land, sweeps).

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
DEMO_CONFIG = ROOT / "examples" / "demo_sgan.yaml"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from sermodels.errors import SersweepError

    try:
        return args.handler(args)
    except SersweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="launch.py", description=__doc__.splitlines()[0])
    top.set_defaults(handler=run_demo)
    commands = top.add_subparsers(title="commands")

    demo = commands.add_parser("demo-data", help="write the synthetic demo corpus (h5)")
    demo.add_argument("out", type=Path, help="output .h5 file")
    demo.add_argument("--speakers", type=positive, default=12)
    demo.add_argument("--per-speaker", type=positive, default=40)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=demo_data)

    train = commands.add_parser("train", help="train one SGAN or SER configuration")
    train.add_argument("config", type=Path, help="run config YAML (see examples/)")
    train.add_argument("--data", type=Path, help="h5 corpus (default: the demo corpus)")
    train.add_argument("--out", type=Path, help="output folder (default: runs/train-TIME)")
    train.add_argument("--epochs", type=positive, help="override train.epochs")
    train.add_argument("--seed", type=int, help="override train.seed")
    train.add_argument("--force", action="store_true", help="replace an existing --out")
    train.set_defaults(handler=train_command)
    return top


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def demo_data(args) -> int:
    from sermodels.demo import write_demo_corpus
    from sermodels.errors import ConfigError

    if args.out.exists() and args.out.is_dir():
        raise ConfigError(str(args.out), "is a folder; give a file name such as demo.h5")
    try:
        path = write_demo_corpus(args.out, args.speakers, args.per_speaker, args.seed)
    except OSError as exc:
        raise ConfigError(str(args.out), f"cannot write ({exc.strerror or exc})") from None
    print(f"wrote {path} ({args.speakers} speakers x {args.per_speaker} rows)")
    return 0


def train_command(args) -> int:
    from sermodels.config import load_config
    from sermodels.run import train

    config = load_config(args.config)
    if args.epochs:
        config.train.epochs = args.epochs
    if args.seed is not None:
        config.train.seed = args.seed
    out = args.out or ROOT / "runs" / time.strftime("train-%Y%m%d-%H%M%S")
    result = train(config, args.data, out, on_epoch=print_epoch, overwrite=args.force)
    print_result(result, out)
    return 0


def print_epoch(metrics: dict) -> bool:
    shown = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "diversity", "val_uar", "val_ccc")
    parts = [f"{k}={metrics[k]:.3f}" for k in shown if isinstance(metrics.get(k), float)]
    print(f"epoch {metrics['epoch']:3d}  " + "  ".join(parts), flush=True)
    return False


def print_result(result: dict, out: Path) -> None:
    keys = ("model", "task", "epochs", "best_epoch", "stop_reason", "val_uar", "test_uar",
            "test_wa", "test_f1", "test_ccc")  # fmt: skip
    print(json.dumps({k: result[k] for k in keys if k in result}))
    print(f"outputs: {out}  (tensorboard --logdir {out / 'tb'})")


def run_demo(args) -> int:
    """No arguments: the demo corpus and one SGAN training run on it."""
    from sermodels.config import load_config
    from sermodels.run import demo_corpus_path, train

    data = demo_corpus_path()
    print(f"demo corpus: {data}")
    out = ROOT / "runs" / time.strftime("demo-%Y%m%d-%H%M%S")
    result = train(load_config(DEMO_CONFIG), data, out, on_epoch=print_epoch)
    print_result(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
