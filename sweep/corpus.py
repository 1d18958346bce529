"""The corpus a sweep's trials share: checked once in the driver, before Ray starts, and its
data mode recorded beside the sweep."""

from __future__ import annotations

from search_spaces import SearchSpace
from sermodels.config import config_from_dict
from sermodels.data import Corpus, load_run_corpus
from sermodels.data.modes import memory_share
from sermodels.files import write_json
from sweep.cluster import trials_at_once
from sweep.settings import SweepSettings

DATA_FILE = "data.json"  # the data mode chosen, why, and the normalisation it fitted


def load_sweep_corpus(space: SearchSpace, settings: SweepSettings) -> Corpus:
    """Check the corpus once, in the driver (errors surface before Ray starts): resident, it
    is read whole (and shared through Ray's object store); streaming, every row is checked
    in one pass and only row ids and labels are kept. The mode and its reason are printed."""
    base = config_from_dict(space.run_config({}), f"{space.path}: base")
    resources = settings.resources
    share = memory_share(resources.gpus_per_trial, trials_at_once(resources))
    corpus = load_run_corpus(base, settings.data, resources.data_mode, share)
    print(f"data: {corpus.data.mode} ({corpus.data.reason})", flush=True)
    return corpus


def save_data_choice(settings: SweepSettings, corpus: Corpus) -> None:
    """``OUT/data.json``: the mode, its reason and the normalisation statistics the trials
    use (streaming: fitted in the driver's pass over the training rows)."""
    write_json(
        settings.folder / DATA_FILE,
        {
            **corpus.data.to_dict(),
            "corpus": corpus.source,
            "rows": {
                "train": len(corpus.train),
                "valid": len(corpus.valid),
                "test": len(corpus.test),
            },
            "preprocessing": corpus.preprocessing.to_dict(),
        },
    )
