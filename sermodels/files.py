"""Writing result files so that a reader never sees half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: Path, value) -> None:
    """Write JSON atomically (a temporary file renamed over ``path``); arrays and NumPy
    scalars are written as lists and numbers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(value, indent=2, default=_plain))
    os.replace(tmp, path)


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
