"""Record the SGAN training histories the detector benchmark replays, with a hash of the code
they were recorded with (``bench/histories/sgan_runs.json``).

Two sets, no (space, seed) pair in both:

* **calibration**: the ``demo`` space, seeds 0-1: where thresholds may be chosen;
* **evaluation**: every shipped SGAN space (``sgan_audio``, ``sgan_video``, ``sgan_av``,
  ``sgan_unsupervised``), seeds from 200: where the figures are reported (seeds 100-109,
  an earlier evaluation set, were seen while a definition was chosen, so they are retired).

Each set holds, per space and seed:

* *mechanism cases*: a known stable recipe (learning rates 1e-4 / 1e-3, instance noise and
  label smoothing 0.3, the demo space's network sizes) into which one failure is forced from
  epoch ``ONSET`` on, labelled by the mechanism alone: D's learning rate set to 0 (G must
  win: ``g_overpowers``), G's set to 0 (D must win: ``d_overpowers``), a NaN in a training
  row (``nan``), G's noise input cut (its first Dense kernel zeroed and its learning rate set
  to 0: one sample whatever the noise, ``mode_collapse``), both learning rates x 1e4
  (runaway learning rates: a failure, ``failed``, whose name the mechanism does not fix);
* *healthy controls*: the same recipe with nothing forced, one per mechanism (other seeds);
* *random draws* (evaluation only): configurations drawn at random from the space as shipped,
  trained for the whole budget with nothing stopped (the outcome evaluation).

Every run trains ``--epochs`` epochs (default 10; the shipped spaces allow 30, which CPU time
does not) on the demo corpus, on TensorFlow, with the run's own early stopping off.

    .venv/bin/python bench/record_histories.py [--epochs 10] [--draws 10] [--workers 2]

Takes about 40 minutes on a 2-core CPU; each run has its own process, so a run's history
depends only on its spec and the code. ``bench/detector_accuracy.py`` replays the file and
says when the code it was recorded with has changed since (``code_hash``).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from common import ROOT, emit

OUT = ROOT / "bench" / "histories" / "sgan_runs.json"
ONSET = 3  # the first epoch a forced failure acts on
NDB_SAMPLES = 640  # generated samples per epoch for the different-bins test
RECIPE = {
    "sgan.d_lr": 1.0e-4,
    "sgan.g_lr": 1.0e-3,
    "sgan.instance_noise": 0.3,
    "sgan.label_smoothing": 0.3,
    "sgan.depth_G": 3,
    "sgan.n_kernels_G": [16, 8, 1],
    "sgan.cnn_n_row_G": 3,
    "sgan.cnn_n_col_G": 3,
    "sgan.depth_D": 2,
    "sgan.n_kernels_D": [8, 16],
    "sgan.cnn_n_row_D": 3,
    "sgan.cnn_n_col_D": 3,
    "sgan.pool_n_row_D": [2, 2],
    "sgan.pool_n_col_D": [2, 2],
    "sgan.n_node": 64,
    "sgan.latent_dim": 64,
}
MECHANISMS = {  # name -> the failure mode it forces
    "freeze_d": "g_overpowers",
    "freeze_g": "d_overpowers",
    "nan_row": "nan",
    "cut_noise": "mode_collapse",
    "runaway_lr": "failed",
}
EVALUATED_SPACES = ["sgan_audio", "sgan_video", "sgan_av", "sgan_unsupervised"]
SETS = {"calibration": (["demo"], [0, 1]), "evaluation": (EVALUATED_SPACES, [200])}
KEPT = (
    "epoch",
    "d_loss",
    "d_loss_real",
    "d_loss_fake",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "class_acc",
    "d_grad_norm",
    "g_grad_norm",
    "diversity",
    "ndb",
    "nonfinite",
    "diversity_seconds",
    "epoch_seconds",
    "val_uar",
    "val_score",
    "train_rows",
)


# parts of the model library no recorded run executes: prediction and the source-option table
NOT_TRAINING = ("sermodels/inference", "sermodels/source_options.py")
# keys of a space that no recorded run trains differently by: how a sweep ranks its epochs
# (each run records its objective's metric) and the prose
NOT_TRAINED_KEYS = ("objective", "objectives", "description")


def model_code_hash(root: Path = ROOT) -> str:
    """What a recorded SGAN run trains with: every definition in the model library's
    training code as parsed (:func:`library_definitions`), and the shipped spaces as parsed,
    without the keys that change no run (YAML comments and ``NOT_TRAINED_KEYS``)."""
    import yaml

    digest = hashlib.sha256()
    for part in library_definitions(root):
        digest.update(part.encode())
    for path in sorted((root / "search_spaces").glob("*.yaml")):
        space = yaml.safe_load(path.read_text())
        trained = {k: v for k, v in space.items() if k not in NOT_TRAINED_KEYS}
        digest.update(path.name.encode())
        digest.update(json.dumps(trained, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def library_definitions(root: Path = ROOT) -> list[str]:
    """The model library's training code as what it defines (:func:`package_definitions`,
    without ``NOT_TRAINING``)."""
    return package_definitions("sermodels", root, leave_out=NOT_TRAINING)


def package_definitions(package: str, root: Path = ROOT, leave_out: tuple = ()) -> list[str]:
    """A package's code as what it defines: each top-level statement's syntax tree, sorted,
    after its sorted outside imports (files under ``leave_out`` not read). Left out, because
    no run trains differently by them: which module holds a definition, one module of the
    package importing another (wiring), ``TYPE_CHECKING`` blocks, ``__all__``, type hints,
    docstrings, comments and layout.
    So moving code between modules keeps the hash; changing what any of it does changes it."""
    paths = [
        path
        for path in (root / package).rglob("*.py")
        if not str(path.relative_to(root)).startswith(leave_out)
    ]
    return module_definitions(paths, package)


def module_definitions(paths: list[Path], package: str = "") -> list[str]:
    """What the modules at ``paths`` define, as :func:`package_definitions` reads them
    (imports of ``package`` being wiring)."""
    definitions, imports = [], set()
    for path in paths:
        for node in _without_wiring(ast.parse(path.read_text()), package).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                imports.add(ast.dump(node))
            else:
                definitions.append(ast.dump(node))
    return sorted(imports) + sorted(definitions)


def _without_wiring(tree: ast.Module, package: str) -> ast.Module:
    """``tree`` without ``package``-internal imports, ``TYPE_CHECKING`` blocks, ``__all__``
    and docstrings, at every depth."""
    documented = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    for node in ast.walk(tree):
        _drop_annotation(node)
        for name in ("body", "orelse", "finalbody"):
            statements = getattr(node, name, None)
            if not isinstance(statements, list):
                continue
            kept = [statement for statement in statements if not _wiring(statement, package)]
            if name == "body" and isinstance(node, documented) and kept and _docstring(kept[0]):
                kept = kept[1:]
            setattr(node, name, kept)
    return tree


def _drop_annotation(node: ast.AST) -> None:
    """Type hints change no run, so they are left out; an annotated class attribute keeps a
    placeholder, since a dataclass makes it a field."""
    if isinstance(node, ast.arg):
        node.annotation = None
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        node.returns = None
    elif isinstance(node, ast.AnnAssign):
        node.annotation = ast.Name("_")


def _wiring(statement: ast.stmt, package: str) -> bool:
    def inside(module: str) -> bool:
        return module == package or module.startswith(f"{package}.")

    if isinstance(statement, ast.ImportFrom):
        return statement.level > 0 or inside(statement.module or "")
    if isinstance(statement, ast.Import):
        return all(inside(alias.name) for alias in statement.names)
    if isinstance(statement, ast.If):
        return ast.unparse(statement.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
    if isinstance(statement, ast.Assign):
        return [ast.unparse(target) for target in statement.targets] == ["__all__"]
    return False


def _docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def function_definitions(functions: list[Callable]) -> list[str]:
    """What ``functions`` define, read as :func:`package_definitions` reads a module (not
    their layout, comments, docstrings or type hints)."""
    import inspect

    return [
        ast.dump(_without_wiring(ast.parse(textwrap.dedent(inspect.getsource(f))), ""))
        for f in functions
    ]


def code_hash(root: Path = ROOT) -> str:
    """What the histories depend on: :func:`model_code_hash` and what this recorder runs
    (its plan, recipe, mechanisms and recording code as definitions; not its command line or
    this hash)."""
    digest = hashlib.sha256(model_code_hash(root).encode())
    for definition in function_definitions([plan, random_overrides, force, record, _plain]):
        digest.update(definition.encode())
    constants = (ONSET, NDB_SAMPLES, RECIPE, MECHANISMS, SETS, KEPT, NOT_TRAINING)
    digest.update(json.dumps(constants, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def plan(draws: int) -> list[dict]:
    """Every run of both sets: set, space, seed, kind, mechanism and its label."""
    runs = []
    for set_name, (spaces, seeds) in SETS.items():
        for space in spaces:
            for seed in seeds:
                for index, (mechanism, label) in enumerate(MECHANISMS.items()):
                    runs.append(
                        {
                            "set": set_name,
                            "space": space,
                            "seed": seed,
                            "kind": "mechanism",
                            "mechanism": mechanism,
                            "label": label,
                            "onset": ONSET,
                        }
                    )
                    runs.append(
                        {
                            "set": set_name,
                            "space": space,
                            "seed": 10 * seed + 50 + index,
                            "kind": "control",
                            "mechanism": None,
                            "label": "healthy",
                            "onset": None,
                        }
                    )
                if set_name == "evaluation":
                    runs += [
                        {
                            "set": set_name,
                            "space": space,
                            "seed": seed + 10 + d,
                            "kind": "random",
                            "mechanism": None,
                            "label": None,
                            "onset": None,
                        }
                        for d in range(draws)
                    ]
    return runs


def random_overrides(space, seed: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space.suggest(study.ask())


def force(mechanism: str, run, corpus) -> None:
    """Switch ``mechanism`` on before the next epoch (called before every epoch >= ONSET)."""
    import keras
    import numpy as np

    gan = run.gan
    if mechanism == "freeze_d":
        gan.d_optimizer.learning_rate = 0.0
    elif mechanism == "freeze_g":
        gan.g_optimizer.learning_rate = 0.0
    elif mechanism == "runaway_lr" and run.epoch == ONSET - 1:
        gan.d_optimizer.learning_rate = RECIPE["sgan.d_lr"] * 1e4
        gan.g_optimizer.learning_rate = RECIPE["sgan.g_lr"] * 1e4
    elif mechanism == "nan_row" and run.epoch == ONSET - 1:
        features = {k: v.copy() for k, v in corpus.train.features.items()}
        for values in features.values():
            values[0] = np.nan
        labels = corpus.train.labels[:, run.task.column]
        labelled = corpus.train.labelled & (not gan.config.unsupervised)
        run.rows = gan.training_rows(features, labels, labelled)
    elif mechanism == "cut_noise" and run.epoch == ONSET - 1:
        # no noise reaches G's first layer, and G stops learning (else the kernel regrows
        # within an epoch and batch norm scales any variation back up): one sample for all z
        for generator in gan.generators:
            dense = next(la for la in generator.layers if isinstance(la, keras.layers.Dense))
            dense.kernel.assign(np.zeros(dense.kernel.shape, np.float32))
        gan.g_optimizer.learning_rate = 0.0


def record(run_spec: dict, epochs: int, data: str) -> dict:
    """Train one run and return its spec with its config and history."""
    from search_spaces import load_space
    from sermodels.backend import configure_threads
    from sermodels.config import config_from_dict
    from sermodels.data import load_run_corpus
    from sermodels.training.run import make_run

    configure_threads(1)
    space = load_space(run_spec["space"])
    if run_spec["kind"] == "random":
        overrides = random_overrides(space, run_spec["seed"])
    else:
        overrides = {
            k: v
            for k, v in RECIPE.items()
            if k in ("sgan.d_lr", "sgan.g_lr") or k.split(".")[1] not in space.base.get("sgan", {})
        }
    overrides["train.seed"] = run_spec["seed"]
    overrides["sgan.ndb_samples"] = NDB_SAMPLES  # off by default; recorded to compare it
    mapping = space.run_config(overrides, max_epochs=epochs)
    mapping["train"].update({"patience": 0, "save_img_interval": 0, "save_models": False})
    config = config_from_dict(mapping, run_spec["space"])
    corpus = load_run_corpus(config, data)
    started = time.perf_counter()
    run = make_run(config, corpus, None)
    history = []
    for _ in range(epochs):
        if run_spec["mechanism"] and run.epoch + 1 >= ONSET:
            force(run_spec["mechanism"], run, corpus)
        metrics = run.step_epoch()
        history.append({k: _plain(metrics[k]) for k in KEPT if k in metrics})
        if metrics.get("nonfinite"):
            break  # the sweep's runs stop themselves here too
    return {
        **run_spec,
        "objective": space.metric,
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
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN; read back with float()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--draws", type=int, default=10, help="random draws per space")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from sermodels.data.demo import write_demo_corpus

    runs = plan(args.draws)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = str(write_demo_corpus(Path(tmp) / "demo.h5", progress=False))
        context = get_context("spawn")
        # a fresh process per run: a worker reused across runs carried state from one run
        # into the next (a re-recording of the same code differed from epoch 1 on)
        with ProcessPoolExecutor(args.workers, mp_context=context, max_tasks_per_child=1) as pool:
            futures = [pool.submit(record, spec, args.epochs, data) for spec in runs]
            recorded = []
            for done, future in enumerate(futures, 1):
                recorded.append(future.result())
                last = recorded[-1]
                print(
                    f"[{done}/{len(runs)}] {last['set']} {last['space']} {last['kind']} "
                    f"{last['mechanism'] or ''} seed {last['seed']}: {last['seconds']} s",
                    file=sys.stderr,
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "code_hash": code_hash(),
        "recorded": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()}-core CPU",
        "epochs": args.epochs,
        "onset": ONSET,
        "seconds": round(time.perf_counter() - started),
        "runs": recorded,
    }
    args.out.write_text(json.dumps(payload, separators=(",", ":")))
    emit(
        {
            "recorded": len(recorded),
            "seconds": payload["seconds"],
            "code_hash": payload["code_hash"],
            "out": str(args.out),
        }
    )


if __name__ == "__main__":
    main()
