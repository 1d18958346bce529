"""Reading a sweep's per-trial results while (or after) processes write them."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# a small SER base: fast epochs on the demo corpus, two test and two validation speakers
SER_BASE = """
base:
  model: ser
  data: {features: [a_feat], tasks: category:4:2, test_idx: "0,1", valid_idx: "2,3"}
  ser: {frame: [dnn], utterance: [g_pool, dnn], n_node: 16}
  train: {batch_size: 32, patience: 0}
"""


def sweep_command(corpus: Path, out: Path, name: str, *options) -> list[str]:
    """``launch.py sweep`` on ``corpus`` into ``out`` (the demo space unless ``options``
    name a ``--space``)."""
    space = [] if "--space" in options else ["--space", "demo"]
    return [sys.executable, str(ROOT / "launch.py"), "sweep", *space, "--data", str(corpus),
            "--out", str(out), "--name", name, *map(str, options)]  # fmt: skip


def trial_results(experiment: Path) -> dict[str, list[dict]]:
    """Per trial folder (``trial_<id>``), the complete result lines of ``result.json``: a line
    a running or killed writer has not finished is left out."""
    runs = {}
    for path in experiment.glob("trial_*/result.json"):
        lines = path.read_text().splitlines(keepends=True)
        runs[path.parent.name] = [json.loads(line) for line in lines if line.endswith("\n")]
    return runs
