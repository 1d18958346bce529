"""Ray Tune's Stopper seam: stop a trial once the collapse detector has condemned it."""

from __future__ import annotations

from ray import tune

from sweep.collapse import HEALTHY, VERDICTS


class CollapseStopper(tune.Stopper):
    """Stop trials whose latest result carries a failure verdict.

    The verdict is computed inside the trial from its checkpointed history, so it survives a
    trial moving to another node or a driver restart; this stopper only acts on it.

    Args:
        verdicts: the verdicts that stop a trial (default: every failure mode).

    Example:
        >>> stopper = CollapseStopper()
        >>> stopper("t1", {"verdict": "mode_collapse"})
        True
    """

    def __init__(self, verdicts: tuple[str, ...] | None = None) -> None:
        verdicts = tuple(v for v in VERDICTS if v != HEALTHY) if verdicts is None else verdicts
        unknown = set(verdicts) - set(VERDICTS)
        if unknown:
            raise ValueError(f"unknown verdicts {sorted(unknown)}; expected some of {VERDICTS}")
        self.verdicts = frozenset(verdicts)

    def __call__(self, trial_id: str, result: dict) -> bool:
        return result.get("verdict", HEALTHY) in self.verdicts

    def stop_all(self) -> bool:
        return False
