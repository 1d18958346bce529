"""What a saved model needs to predict, written beside it as ``models/manifest.json``: the
input keys and shapes, the preprocessing with its training statistics, the extraction
parameters (when ``launch.py extract`` wrote the corpus), the tasks with their class names
and the run config.

Example:
    >>> manifest = ModelManifest.load("runs/train-1/models")  # doctest: +SKIP
    >>> manifest.tasks[0].name  # doctest: +SKIP
    'category'
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from sermodels.data.preprocessing import Preprocessing
from sermodels.errors import ConfigError
from sermodels.files import write_json
from sermodels.specs import TaskSpec

MANIFEST = "manifest.json"
FORMAT = 1


@dataclass
class ModelManifest:
    """A saved model's description.

    Args:
        model: ``sgan`` or ``ser``.
        classifier: the Keras file that classifies (``discriminator.keras``, ``ser.keras``).
        features: the h5 feature keys, in the model's input order.
        input_shapes: each key's model input shape (after preprocessing).
        preprocessing: :meth:`sermodels.data.preprocessing.Preprocessing.to_dict` of the
            training rows.
        tasks: the heads, in output order.
        class_names: per task, its class names (empty for a continuous task).
        config: the run config (:meth:`sermodels.config.RunConfig.to_dict`).
        backend: the Keras backend that trained it.
        extraction: ``launch.py extract``'s parameters, or ``None``.
        elm_files: per task, the ELM post-classifier's file (``ser.post_elm``).
        corpus: the training corpus's path.
    """

    model: str
    classifier: str
    features: list[str]
    input_shapes: dict[str, list[int]]
    preprocessing: dict
    tasks: list[TaskSpec]
    class_names: list[list[str]]
    config: dict
    backend: str
    extraction: dict | None = None
    elm_files: list[str] = field(default_factory=list)
    corpus: str = ""

    @property
    def prep(self) -> Preprocessing:
        return Preprocessing.from_dict(self.preprocessing)

    def save(self, directory: str | Path) -> Path:
        values = dataclasses.asdict(self)
        values["format"] = FORMAT
        path = Path(directory) / MANIFEST
        write_json(path, values)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ModelManifest:
        path = Path(directory) / MANIFEST
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(str(directory), f"no {MANIFEST}: not a saved model") from None
        except ValueError:
            raise ConfigError(str(path), "not valid JSON") from None
        if values.pop("format", None) != FORMAT:
            raise ConfigError(str(path), f"expected manifest format {FORMAT}")
        values["tasks"] = [TaskSpec(**task) for task in values["tasks"]]
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(path), f"unreadable manifest ({exc})") from None
