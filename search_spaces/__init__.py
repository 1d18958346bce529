"""Search spaces as YAML files, and the one loader that turns them into Optuna calls."""

from search_spaces.loader import SPACES_DIR, Param, SearchSpace, load_space, space_names

__all__ = ["SPACES_DIR", "Param", "SearchSpace", "load_space", "space_names"]
