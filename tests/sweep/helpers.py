"""Reading a sweep's per-trial results while (or after) processes write them."""

import json
from pathlib import Path


def trial_results(experiment: Path) -> dict[str, list[dict]]:
    """Per trial folder (``trial_<id>``), the complete result lines of ``result.json``: a line
    a running or killed writer has not finished is left out."""
    runs = {}
    for path in experiment.glob("trial_*/result.json"):
        lines = path.read_text().splitlines(keepends=True)
        runs[path.parent.name] = [json.loads(line) for line in lines if line.endswith("\n")]
    return runs
