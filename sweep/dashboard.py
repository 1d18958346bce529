"""A sweep in optuna-dashboard: ``launch.py dashboard DIR`` serves the sweep's study on
loopback, while the sweep runs or after it.

What the dashboard shows besides Optuna's own views: every trial's verdicts, onset and
config overrides (user attributes the searcher sets), the generated images of each trial's
last logged epoch (Optuna artifacts, attached by the searcher as each trial ends: Optuna
takes artifacts only on running trials), and the failure census (the study's note, written
when the sweep ends and when the dashboard starts).

Example:
    >>> serve(load_settings("runs/sweeps/demo-20261122-234020"), port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

HOST = "127.0.0.1"  # the dashboard can edit the study: never on another interface
IMAGE = re.compile(r"(?P<modality>.+)_epoch(?P<epoch>\d+)\.png$")


class TrialImages:
    """Attaches a trial's last generated images to its Optuna trial (picklable: Ray saves
    the searcher that holds it).

    Args:
        folder: the sweep folder (artifacts go to ``folder/artifacts``).
        experiment_uri: Ray Tune's experiment (a path or a pyarrow URI), where each
            ``trial_<id>/images/<modality>_epochNNN.png`` lands with the trial's checkpoints.
    """

    def __init__(self, folder: Path, experiment_uri: str) -> None:
        self.folder = Path(folder)
        self.experiment_uri = experiment_uri

    def store(self) -> FileSystemArtifactStore:
        return artifact_store(self.folder)

    def attach(self, trial: optuna.Trial, ray_trial_id: str) -> int:
        """Upload the images of the trial's last logged epoch; returns how many."""
        images = last_images(self.experiment_uri, ray_trial_id)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in images:
                path = Path(tmp) / name
                path.write_bytes(data)
                upload_artifact(
                    artifact_store=self.store(),
                    file_path=str(path),
                    study_or_trial=trial,
                    mimetype="image/png",
                )
        return len(images)


def artifact_store(folder: Path) -> FileSystemArtifactStore:
    (Path(folder) / "artifacts").mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(Path(folder) / "artifacts"))


def last_images(experiment_uri: str, ray_trial_id: str) -> list[tuple[str, bytes]]:
    """``(file name, PNG bytes)`` of a trial's last logged epoch, one per modality."""
    import pyarrow.fs

    filesystem, root = pyarrow.fs.FileSystem.from_uri(experiment_uri)
    selector = pyarrow.fs.FileSelector(f"{root}/trial_{ray_trial_id}/images", allow_not_found=True)
    latest: dict[str, tuple[int, str]] = {}
    for entry in filesystem.get_file_info(selector):
        match = IMAGE.match(entry.base_name)
        if match and int(match["epoch"]) > latest.get(match["modality"], (-1, ""))[0]:
            latest[match["modality"]] = (int(match["epoch"]), entry.path)
    images = []
    for _, path in sorted(latest.values(), key=lambda kept: kept[1]):
        with filesystem.open_input_stream(path) as stream:
            images.append((path.rsplit("/", 1)[-1], stream.read()))
    return images


def census_note(trials: list[optuna.trial.FrozenTrial]) -> str:
    """The failure census in Markdown: deciding verdicts, and every failure mode reached."""
    from sweep.results import census_lines

    lines = ["# Failure census", "", f"{len(trials)} finished trials.", ""]
    return "\n".join(lines + census_lines(trials)) + "\n"


def write_census_note(settings) -> None:
    """The study's note: its failure census so far, and its leaders re-evaluated on fresh
    seeds where that ran."""
    from optuna_dashboard import save_note

    from sweep.reeval import markdown
    from sweep.results import load_study, own_trials, reevaluated
    from sweep.settings import sweep_space

    study = load_study(settings)
    note = census_note([t for t in own_trials(study) if t.state.is_finished()])
    inherited = len(study.get_trials(deepcopy=False)) - len(own_trials(study))
    if inherited:
        note += (
            f"\n{inherited} trials inherited from earlier sweeps (warm start; user "
            "attribute `inherited`): they taught the sampler and are never picked.\n"
        )
    figures = reevaluated(study)
    if figures:
        space = sweep_space(settings)
        rows = sorted(
            (
                {"optuna_trial": n, "sweep_objective": study.trials[n].value, **f}
                for n, f in figures.items()
            ),
            key=lambda r: r["rank"],
        )
        note += "\n" + markdown(rows, space.metric, str(space.reduce))
    save_note(study, note)


def serve(settings, port: int) -> None:
    """Serve the sweep's study at ``http://127.0.0.1:PORT/dashboard`` until interrupted."""
    from optuna_dashboard import run_server

    from sweep.study_storage import open_storage

    write_census_note(settings)
    run_server(
        open_storage(settings.resolved_study_url),
        host=HOST,
        port=port,
        artifact_store=artifact_store(settings.folder),
    )
