"""Streaming at scale: peak memory and samples/s of a real sweep as the corpus grows 1x, 2x
and 4x, and streaming against resident rows at 1x, in one run.

Corpora at the source's shapes (10 x 1 x 10 x 256 audio + 48 x 48 faces, 111 KB a row):
the 1x corpus is ``launch.py demo-data`` output (12 speakers, about 1 GiB), the 2x and 4x
corpora repeat its rows under new speakers (24 and 48), so folds 0-3 (test and validation)
and the unlabelled folds 10-11 stay the same size while the training folds grow. They are
written once and kept in ``runs/bench/scale`` for later runs.

Each measurement is a sweep in a child process (its own local Ray, 2 CPUs), in two kinds.

Memory runs: two identical trials of the ``sgan_av`` space at once (its base: both feature
keys, cropped; demo-sized networks), each training a fixed ``train.steps_per_epoch`` for 3
epochs, so compute does not grow with the corpus; this process samples the proportional set
size (PSS) of the child's whole process tree (driver, Ray's servers, trial workers) every
0.5 s.

Speed runs, cold and whole: one such trial with both CPUs, two full epochs (every training
row read each epoch) at 1x streamed, 1x resident and 4x streamed, ``--repeats`` times each,
interleaved. While one runs, the corpus's pages are evicted from the page cache every 0.5 s
(``posix_fadvise(POSIX_FADV_DONTNEED)``, checked with ``mincore``: see ``page_cache.py``),
so streamed rows come from the disk, not from the memory of the machine that just wrote the
file. Speed runs are not observed otherwise (reading PSS walks each process's page tables
under its memory lock and slowed the trials' steps about tenfold). samples/s is real rows
trained per second of training steps (``train_seconds``) in epoch 2 (epoch 1 compiles);
the MB/s a trial consumes (samples/s x the file's bytes per row) stands beside the MB/s one
cold sequential read of the file delivers.

On a machine with an NVIDIA GPU the streaming memory runs also run at 1 and 4 trials per
GPU, reporting peak GPU memory per trial.

Prints one JSON object on its last line, with ``stream_mem_growth`` = peak at 4x / peak at
1x (target < 1.10) and ``stream_vs_resident`` = mean cold streamed samples/s / mean cold
resident samples/s at 1x (target >= 0.8), beside each repeat's paired ratio.

    .venv/bin/python bench/scale.py [--per-speaker 805] [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, emit, run_child, spread
from memory import av_space  # the same fixed sgan_av trials
from page_cache import Evicting, cold_read_mb_s

CACHE = ROOT / "runs" / "bench" / "scale"
SCALES = (1, 2, 4)
MEMORY_EPOCHS = 3
SPEED_EPOCHS = 2  # epoch 1 compiles the step; epoch 2 is the one timed
SPEED_RUNS = (("stream", 1), ("resident", 1), ("stream", 4))
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
    data: Path,
    mode: str,
    out: Path,
    steps: int,
    epochs: int,
    memory: bool,
    trials: int = 2,
    gpus: float = 0.0,
) -> dict:
    """One sweep in a child process: samples/s after epoch 1 (real rows trained per second of
    training steps), GPU peak per trial and, with ``memory``, the peak PSS of its tree.
    ``steps`` 0: full epochs."""
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--corpus",
        str(data),
        "--steps",
        str(steps),
        "--epochs",
        str(epochs),
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
    rates, gpu_peaks, steps_run = [], [], []
    for result in out.glob("ray/scale/trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        for row in rows[1:]:  # epoch 1 compiles the step
            rates.append(row["steps"] * (BATCH_SIZE // 2) / row["train_seconds"])
            steps_run.append(row["steps"])
        gpu_peaks += [row["gpu_peak_bytes"] for row in rows if "gpu_peak_bytes" in row]
    chosen = json.loads((out / "data.json").read_text())
    return {
        "peak_gib": round(child.peak_pss / 2**30, 3) if memory else None,
        "samples_per_s": round(sum(rates) / len(rates), 1),
        "gpu_peak_gib_per_trial": round(max(gpu_peaks) / 2**30, 3) if gpu_peaks else None,
        "mode": chosen["mode"],
        "train_rows": chosen["rows"]["train"],
        "rows_per_timed_epoch": max(steps_run) * (BATCH_SIZE // 2),
        "wall_s": child.wall_s,
    }


def child_sweep(
    mode: str, data: str, steps: int, epochs: int, trials: int, gpus: float, out: str
) -> None:
    """``trials`` identical trials at once through the real sweep (run in a child process)."""
    from sweep.runner import start_sweep
    from sweep.settings import SweepSettings

    space = av_space(Path(out).parent / f"{Path(out).name}.yaml")
    settings = SweepSettings(
        out=out,
        space=str(space),
        data=data,
        samples=trials,
        max_epochs=epochs,
        name="scale",
        concurrency=trials,
        cpus_per_trial=2 / trials,
        gpus_per_trial=gpus,
        stop_on_collapse=False,
        num_cpus=2,
        data_mode=mode,
        reeval_top=0,
        base_settings={
            "train.steps_per_epoch": steps,
            "train.batch_size": BATCH_SIZE,
            "train.save_img_interval": 0,
        },
    )
    start_sweep(settings)


def cold_speed_runs(corpora: dict[int, Path], work: Path, repeats: int) -> dict:
    """Every speed run of :data:`SPEED_RUNS`, ``repeats`` rounds, each run under eviction of
    its corpus; per run name, each repeat's figures in order."""
    runs: dict[str, list[dict]] = {f"{mode}_{scale}x": [] for mode, scale in SPEED_RUNS}
    for repeat in range(repeats):
        for mode, scale in SPEED_RUNS:
            name = f"{mode}_{scale}x"
            with Evicting(corpora[scale]) as evicting:
                run = measure(
                    corpora[scale],
                    mode,
                    work / f"s_{name}_{repeat}",
                    steps=0,
                    epochs=SPEED_EPOCHS,
                    memory=False,
                    trials=1,
                )
            run["cached_share_after_eviction"] = round(evicting.cached_after, 4)
            runs[name].append(run)
            print(name, repeat, run, flush=True)
    return runs


def has_gpu() -> bool:
    from sermodels.data.modes import gpu_memory_bytes

    return gpu_memory_bytes() is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-speaker", type=int, default=805, help="rows per speaker at 1x")
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch of memory runs")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of cold speed runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=MEMORY_EPOCHS, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_sweep(
            args.child, args.corpus, args.steps, args.epochs, args.trials, args.gpus, args.out
        )
        return
    if args.repeats < 2:
        parser.error(f"--repeats must be >= 2 (a spread needs two runs), got {args.repeats}")
    started = time.perf_counter()
    corpora = {scale: corpus(scale, args.per_speaker) for scale in SCALES}
    sizes = {scale: round(path.stat().st_size / 2**30, 2) for scale, path in corpora.items()}
    work = CACHE / "sweeps"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    memory = {
        f"stream_{s}x": measure(
            corpora[s], "stream", work / f"m_stream{s}", args.steps, MEMORY_EPOCHS, memory=True
        )
        for s in SCALES
    }
    memory["resident_1x"] = measure(
        corpora[1], "resident", work / "m_resident1", args.steps, MEMORY_EPOCHS, memory=True
    )
    for name, run in memory.items():
        print(name, run, flush=True)
    speed = cold_speed_runs(corpora, work, args.repeats)
    disk = [cold_read_mb_s(corpora[1]) for _ in range(args.repeats)]
    bytes_per_row = corpora[1].stat().st_size / rows_in(corpora[1])
    rates = {name: [run["samples_per_s"] for run in runs] for name, runs in speed.items()}
    paired = [s / r for s, r in zip(rates["stream_1x"], rates["resident_1x"], strict=True)]
    gpu = None
    if has_gpu():  # trials per GPU x corpus size, streaming; memory and speed together
        gpu = {
            f"{trials}_per_gpu_{s}x": measure(
                corpora[s],
                "stream",
                work / f"gpu{trials}_{s}",
                args.steps,
                MEMORY_EPOCHS,
                memory=True,
                trials=trials,
                gpus=1 / trials,
            )
            for trials in (1, 4)
            for s in (1, 4)
        }
    growth = memory["stream_4x"]["peak_gib"] / memory["stream_1x"]["peak_gib"]
    ratio = statistics.fmean(rates["stream_1x"]) / statistics.fmean(rates["resident_1x"])
    shutil.rmtree(work, ignore_errors=True)
    emit(
        {
            "benchmark": "scale",
            "file_gib": sizes,
            "memory_runs": {
                "steps_per_epoch": args.steps,
                "epochs": MEMORY_EPOCHS,
                "trials": 2,
                "runs": memory,
            },
            "speed_runs": {
                "epochs": SPEED_EPOCHS,
                "timed": "epoch 2, every training row",
                "trials": 1,
                "cache": "evicted every 0.5 s (posix_fadvise DONTNEED)",
                "repeats": args.repeats,
                "runs": speed,
                "samples_per_s": {name: spread(values) for name, values in rates.items()},
                "consumed_mb_s": {
                    name: spread([v * bytes_per_row / 1e6 for v in values])
                    for name, values in rates.items()
                    if name.startswith("stream")
                },
            },
            "cold_sequential_read_mb_s": spread(disk),
            "bytes_per_row": round(bytes_per_row),
            "gpu": gpu,
            "stream_mem_growth": round(growth, 3),
            "mem_target_met": growth < 1.10,
            "stream_vs_resident": round(ratio, 3),
            "stream_vs_resident_paired": spread(paired),
            "stream_4x_vs_resident_1x": round(
                statistics.fmean(rates["stream_4x"]) / statistics.fmean(rates["resident_1x"]), 3
            ),
            "speed_target_met": ratio >= 0.8,
            "seconds": round(time.perf_counter() - started),
            "cpus": os.cpu_count(),
        }
    )


def rows_in(path: Path) -> int:
    import h5py

    with h5py.File(path) as h5:
        return len(h5["label"])


if __name__ == "__main__":
    main()
