"""Streaming at scale: peak memory and samples/s of a real sweep as the corpus grows 1x, 2x
and 4x, and streaming against resident rows at 1x, in one run.

Corpora at the source's shapes (10 x 1 x 10 x 256 audio + 48 x 48 faces, 111 KB a row):
the 1x corpus is ``launch.py demo-data`` output (12 speakers, about 1 GiB), the 2x and 4x
corpora repeat its rows under new speakers (24 and 48), so folds 0-3 (test and validation)
and the unlabelled folds 10-11 stay the same size while the training folds grow. They are
written once and kept in ``runs/bench/scale`` for later runs.

Each measurement is a sweep in a child process (its own local Ray, 2 CPUs): two identical
trials of the ``sgan_av`` space at once (its base: both feature keys, cropped; demo-sized
networks), each training a fixed ``train.steps_per_epoch`` for 3 epochs, so compute does not
grow with the corpus. Memory sweeps: this process samples the proportional set size (PSS) of
the child's whole process tree (driver, Ray's servers, trial workers) every 0.5 s. Speed
sweeps run unobserved, because reading PSS walks each process's page tables under its
memory lock and slowed the trials' steps about tenfold: samples/s is real rows trained per
second of training steps (``train_seconds``), epochs 2-3 (epoch 1 compiles).

On a machine with an NVIDIA GPU the streaming sweeps also run at 1 and 4 trials per GPU,
reporting peak GPU memory per trial.

Prints one JSON object on its last line, with ``stream_mem_growth`` = peak at 4x / peak at
1x (target < 1.10) and ``stream_vs_resident`` = streaming samples/s / resident samples/s at
1x (target >= 0.8).

    .venv/bin/python bench/scale.py [--per-speaker 805] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, emit, run_child
from memory import av_space  # the same fixed sgan_av trials

CACHE = ROOT / "runs" / "bench" / "scale"
SCALES = (1, 2, 4)
EPOCHS = 3
BATCH_SIZE = 64


def corpus(scale: int, per_speaker: int) -> Path:
    """The corpus at ``scale`` (written on first use, then reused)."""
    path = CACHE / f"x{scale}_{per_speaker}.h5"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    if scale == 1:
        from sermodels.data.demo import DemoShape, write_demo_corpus

        return write_demo_corpus(
            path, 12, per_speaker, seed=0, shape=DemoShape(bins=256), progress=True
        )
    repeat(corpus(1, per_speaker), path, scale)
    return path


def repeat(source: Path, path: Path, times: int) -> None:
    """``source``'s speakers ``times`` over, speaker ids and folds renumbered, one speaker's
    rows at a time (written to a part file, renamed when complete)."""
    import h5py

    part = path.with_suffix(".part")
    with h5py.File(source) as src, h5py.File(part, "w") as dst:
        starts, ends = src["start_indice"][:], src["end_indice"][:]
        speakers, rows = len(starts), len(src["label"])
        columns = src["label"].attrs["columns"]
        columns = columns.decode() if isinstance(columns, bytes) else columns
        speaker_column = columns.split(",").index("speaker")
        for key in ("a_feat", "v_feat", "label"):
            data = src[key]
            dst.create_dataset(key, (rows * times, *data.shape[1:]), data.dtype, chunks=data.chunks)
            for name, value in data.attrs.items():
                dst[key].attrs[name] = value
        for name, value in src.attrs.items():
            dst.attrs[name] = value
        dst["start_indice"] = np.concatenate([starts + k * rows for k in range(times)])
        dst["end_indice"] = np.concatenate([ends + k * rows for k in range(times)])
        for copy in range(times):
            for speaker in range(speakers):
                block = slice(int(starts[speaker]), int(ends[speaker]))
                target = slice(block.start + copy * rows, block.stop + copy * rows)
                dst["a_feat"][target] = src["a_feat"][block]
                dst["v_feat"][target] = src["v_feat"][block]
                labels = src["label"][block]
                labels[:, speaker_column] = copy * speakers + speaker
                dst["label"][target] = labels
    os.replace(part, path)


def measure(
    data: Path, mode: str, steps: int, out: Path, memory: bool, trials: int = 2, gpus: float = 0.0
) -> dict:
    """One sweep in a child process: samples/s, GPU peak per trial and, with ``memory``, the
    peak PSS of its tree."""
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--corpus",
        str(data),
        "--steps",
        str(steps),
        "--trials",
        str(trials),
        "--gpus",
        str(gpus),
        "--out",
        str(out),
    ]
    child = run_child(command, sample_pss=memory, every=0.5)
    if child.returncode != 0:
        raise SystemExit(f"{mode} sweep on {data.name} failed:\n{child.output[-3000:]}")
    rates, gpu_peaks = [], []
    for result in out.glob("ray/scale/trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        for row in rows[1:]:  # epoch 1 compiles the step
            rates.append(row["steps"] * (BATCH_SIZE // 2) / row["train_seconds"])
        gpu_peaks += [row["gpu_peak_bytes"] for row in rows if "gpu_peak_bytes" in row]
    chosen = json.loads((out / "data.json").read_text())
    return {
        "peak_gib": round(child.peak_pss / 2**30, 3) if memory else None,
        "samples_per_s": round(sum(rates) / len(rates), 1),
        "gpu_peak_gib_per_trial": round(max(gpu_peaks) / 2**30, 3) if gpu_peaks else None,
        "mode": chosen["mode"],
        "train_rows": chosen["rows"]["train"],
        "wall_s": child.wall_s,
    }


def child_sweep(mode: str, data: str, steps: int, trials: int, gpus: float, out: str) -> None:
    """``trials`` identical trials at once through the real sweep (run in a child process)."""
    from sweep.runner import start_sweep
    from sweep.settings import SweepSettings

    space = av_space(Path(out).parent / f"{Path(out).name}.yaml")
    settings = SweepSettings(
        out=out,
        space=str(space),
        data=data,
        samples=trials,
        max_epochs=EPOCHS,
        name="scale",
        concurrency=trials,
        cpus_per_trial=2 / trials,
        gpus_per_trial=gpus,
        stop_on_collapse=False,
        num_cpus=2,
        data_mode=mode,
        base_settings={
            "train.steps_per_epoch": steps,
            "train.batch_size": BATCH_SIZE,
            "train.save_img_interval": 0,
        },
    )
    start_sweep(settings)


def has_gpu() -> bool:
    from sermodels.data.modes import gpu_memory_bytes

    return gpu_memory_bytes() is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-speaker", type=int, default=805, help="rows per speaker at 1x")
    parser.add_argument("--steps", type=int, default=40, help="train.steps_per_epoch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_sweep(args.child, args.corpus, args.steps, args.trials, args.gpus, args.out)
        return
    started = time.perf_counter()
    corpora = {scale: corpus(scale, args.per_speaker) for scale in SCALES}
    sizes = {scale: round(path.stat().st_size / 2**30, 2) for scale, path in corpora.items()}
    work = CACHE / "sweeps"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    memory = {
        f"stream_{s}x": measure(
            corpora[s], "stream", args.steps, work / f"m_stream{s}", memory=True
        )
        for s in SCALES
    }
    memory["resident_1x"] = measure(
        corpora[1], "resident", args.steps, work / "m_resident1", memory=True
    )
    speed = {
        mode: measure(corpora[1], mode, args.steps, work / f"s_{mode}1", memory=False)
        for mode in ("stream", "resident")
    }
    for name, run in [*memory.items(), *speed.items()]:
        print(name, run, flush=True)
    gpu = None
    if has_gpu():  # trials per GPU x corpus size, streaming; memory and speed together
        gpu = {
            f"{trials}_per_gpu_{s}x": measure(
                corpora[s],
                "stream",
                args.steps,
                work / f"gpu{trials}_{s}",
                memory=True,
                trials=trials,
                gpus=1 / trials,
            )
            for trials in (1, 4)
            for s in (1, 4)
        }
    growth = memory["stream_4x"]["peak_gib"] / memory["stream_1x"]["peak_gib"]
    ratio = speed["stream"]["samples_per_s"] / speed["resident"]["samples_per_s"]
    shutil.rmtree(work, ignore_errors=True)
    emit(
        {
            "benchmark": "scale",
            "file_gib": sizes,
            "steps_per_epoch": args.steps,
            "epochs": EPOCHS,
            "trials": 2,
            "memory_runs": memory,
            "speed_runs_1x": speed,
            "gpu": gpu,
            "stream_mem_growth": round(growth, 3),
            "mem_target_met": growth < 1.10,
            "stream_vs_resident": round(ratio, 3),
            "speed_target_met": ratio >= 0.8,
            "seconds": round(time.perf_counter() - started),
            "cpus": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
