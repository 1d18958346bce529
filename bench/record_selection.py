"""Record the runs ``bench/selection.py`` measures how well a sweep picks from
(``bench/histories/selection_runs.json``), with a hash of the code they were recorded with.

A sweep's pick is only as good as one run of each configuration can tell them apart. To
measure it, each configuration must be known far better than one run knows it: this script
trains ``CONFIGS`` configurations drawn at random from the ``demo`` space as shipped, each
with several seeds, for the space's epoch budget, and keeps every epoch's metrics (so any
reduction of a trial's epochs, and the collapse detector, can be replayed on them).

Two corpora, one choice each way:

* **calibration** (corpus seed 0, ``--seeds`` seeds per configuration): where
  ``bench/selection.py`` chooses the shipped reduction and how the re-evaluated leaders are
  picked;
* **evaluation** (corpus seed 1, its own configurations, ``--evaluation-seeds`` seeds): where
  it reports, after the choice. It has more seeds because only its truth is reported: the
  seeds no method reads are what tells configurations a seed's spread apart.

Each corpus is the benchmark corpus of ``bench/record_reference.py`` (the demo generator
with 128 speakers; validation on speakers 2, 3 and 12-127: 118 speakers, 4,720 rows).

    .venv/bin/python bench/record_selection.py [--configs 24] [--seeds 8]
        [--evaluation-seeds 16] [--workers 2] [--keep]

A run's history depends only on its spec (corpus, configuration draw, seed) and the code:
each run has its own process. So ``--keep`` records in parts: it keeps the runs of ``--out``
(when recorded with the current code) that the plan still names and records only the rest.
A recording during which the code changed writes nothing. On an idle 2-core CPU, 2 workers
record about 5 runs a minute (384 runs: 72 minutes; the 192 added evaluation seeds: 37).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from common import ROOT, emit
from record_histories import function_definitions, library_definitions

OUT = ROOT / "bench" / "histories" / "selection_runs.json"
SPACE = "demo"
CORPORA = {"calibration": 0, "evaluation": 1}  # corpus seed (the demo corpus's own is 0)
CONFIG_DRAWS = {"calibration": 500, "evaluation": 600}  # seeds of the random draws
SPEAKERS, PER_SPEAKER, VALID_FOLDS = 128, 40, "2,3,12:127"
KEPT = (
    "epoch",
    "d_loss",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "class_acc",
    "d_grad_norm",
    "g_grad_norm",
    "diversity",
    "nonfinite",
    "val_uar",
    "val_score",
    "epoch_seconds",
)


def code_hash() -> str:
    """What the runs read: the model library's training code (its definitions, wherever they
    live: :func:`record_histories.library_definitions`), the demo space's base, params and
    budget (not its objective: the reductions are replayed, never trained on), and what this
    script trains and keeps (its corpora, draws and recording code as definitions; not its
    plan, command line or this hash)."""
    import yaml

    digest = hashlib.sha256()
    for part in library_definitions():
        digest.update(part.encode())
    for part in function_definitions([write_corpora, drawn_overrides, record, _plain]):
        digest.update(part.encode())
    constants = (CORPORA, CONFIG_DRAWS, SPEAKERS, PER_SPEAKER, VALID_FOLDS, KEPT)
    digest.update(json.dumps(constants, sort_keys=True).encode())

    space = yaml.safe_load((ROOT / "search_spaces" / f"{SPACE}.yaml").read_text())
    trained = {key: space.get(key) for key in ("base", "params", "max_epochs")}
    digest.update(json.dumps(trained, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def plan(configs: int, seeds: dict[str, int]) -> list[dict]:
    """Every run: per corpus, ``configs`` draws x ``seeds[corpus]`` seeds."""
    return [
        {"set": name, "config": index, "draw": CONFIG_DRAWS[name] + index, "seed": seed}
        for name in CORPORA
        for index in range(configs)
        for seed in range(seeds[name])
    ]


def write_corpora(folder: Path) -> dict[str, str]:
    """Both benchmark corpora, as h5 files in ``folder``: corpus name -> path."""
    from sermodels.data.demo import write_demo_corpus

    return {
        name: str(
            write_demo_corpus(
                folder / f"{name}.h5",
                n_speakers=SPEAKERS,
                per_speaker=PER_SPEAKER,
                seed=seed,
                progress=False,
            )
        )
        for name, seed in CORPORA.items()
    }


def kept_runs(path: Path, wanted: list[dict]) -> tuple[list[dict], list[dict]]:
    """The runs recorded in ``path`` that ``wanted`` names, and the parts they were recorded
    in; none when there is no such file.

    Raises:
        ValueError: ``path`` was recorded with other code (keeping its runs would mix two
            codes' histories).
    """
    if not path.exists():
        return [], []
    payload = json.loads(path.read_text())
    if payload["code_hash"] != code_hash():
        raise ValueError(
            f"{path}: recorded with other code ({payload['code_hash']}, now {code_hash()}); "
            "record it again without --keep"
        )
    names = {_spec_key(spec) for spec in wanted}
    runs = [run for run in payload["runs"] if _spec_key(run) in names]
    parts = payload.get("parts") or [
        {
            "recorded": payload["recorded"],
            "machine": payload["machine"],
            "runs": len(payload["runs"]),
            "seconds": payload["seconds"],
        }
    ]
    return runs, parts


def _spec_key(spec: dict) -> tuple:
    return spec["set"], spec["config"], spec["draw"], spec["seed"]


def drawn_overrides(draw: int) -> dict:
    """One configuration drawn at random from the space as shipped."""
    import optuna

    from search_spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=draw))
    return load_space(SPACE).suggest(study.ask())


def record(spec: dict, corpora: dict[str, str]) -> dict:
    """Train one run; its spec with its overrides and every epoch's kept metrics."""
    from search_spaces import load_space
    from sermodels.backend import configure_threads
    from sermodels.config import config_from_dict
    from sermodels.data import load_run_corpus
    from sermodels.training.run import make_run

    configure_threads(1)
    space = load_space(SPACE)
    overrides = drawn_overrides(spec["draw"])
    mapping = space.run_config({**overrides, "train.seed": spec["seed"]})
    mapping["data"]["valid_idx"] = VALID_FOLDS
    mapping["train"].update({"patience": 0, "save_img_interval": 0, "save_models": False})
    config = config_from_dict(mapping, SPACE)
    corpus = load_run_corpus(config, corpora[spec["set"]])
    started = time.perf_counter()
    run = make_run(config, corpus, None)
    history = []
    for _ in range(space.max_epochs):
        metrics = run.step_epoch()
        history.append({k: _plain(metrics[k]) for k in KEPT if k in metrics})
        if metrics.get("nonfinite"):
            break  # a sweep's trial ends here too
    return {
        **spec,
        "overrides": _plain(overrides),
        "seconds": round(time.perf_counter() - started, 1),
        "history": history,
    }


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=8, help="per calibration configuration")
    parser.add_argument("--evaluation-seeds", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--keep", action="store_true", help="keep --out's runs, record only the missing ones"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    seeds = {"calibration": args.seeds, "evaluation": args.evaluation_seeds}
    runs = plan(args.configs, seeds)
    try:
        recorded, parts = kept_runs(args.out, runs) if args.keep else ([], [])
    except ValueError as error:
        parser.exit(2, f"{error}\n")
    done_before = {_spec_key(run) for run in recorded}
    missing = [spec for spec in runs if _spec_key(spec) not in done_before]
    recorded_with = code_hash()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        corpora = write_corpora(Path(tmp)) if missing else {}
        context = get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=context, max_tasks_per_child=1) as pool:
            futures = [pool.submit(record, spec, corpora) for spec in missing]
            for done, future in enumerate(futures, 1):
                recorded.append(future.result())
                last = recorded[-1]
                print(
                    f"[{done}/{len(missing)}] {last['set']} config {last['config']} seed "
                    f"{last['seed']}: {last['seconds']} s",
                    file=sys.stderr,
                    flush=True,
                )
            # a worker reads the code afresh, as each run's worker did; this process's
            # source lines no longer match its loaded code once a file was edited
            finished_with = pool.submit(code_hash).result()
    if finished_with != recorded_with:
        parser.exit(
            2,
            f"{args.out}: the code changed while recording ({recorded_with} at the start, "
            f"{finished_with} at the end); nothing written\n",
        )
    order = {_spec_key(spec): index for index, spec in enumerate(runs)}
    recorded.sort(key=lambda run: order[_spec_key(run)])
    seconds, today = round(time.perf_counter() - started), time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()}-core CPU"
    payload = {
        "code_hash": recorded_with,
        "recorded": today,
        "machine": machine,
        "space": SPACE,
        "corpora": {
            name: {
                "seed": seed,
                "speakers": SPEAKERS,
                "per_speaker": PER_SPEAKER,
                "valid_idx": VALID_FOLDS,
            }
            for name, seed in CORPORA.items()
        },
        "configs": args.configs,
        "seeds": seeds,
        "seconds": sum(part["seconds"] for part in parts) + seconds,
        "parts": [
            *parts,
            {"recorded": today, "machine": machine, "runs": len(missing), "seconds": seconds},
        ],
        "runs": recorded,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    written = args.out.with_suffix(".part")  # a killed recording leaves --out as it was
    written.write_text(json.dumps(payload, separators=(",", ":")))
    written.replace(args.out)
    emit(
        {
            "recorded": len(missing),
            "kept": len(done_before),
            "seconds": seconds,
            "code_hash": payload["code_hash"],
            "out": str(args.out),
        }
    )


if __name__ == "__main__":
    main()
