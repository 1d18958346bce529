"""Collapse detection: a verdict on a GAN's health from its per-epoch signals.

Pure Python over the history a trial reports (``d_acc_real``, ``d_acc_fake``,
``d_loss_real``, ``d_loss_fake``, ``g_loss``, ``d_grad_norm``, ``g_grad_norm``,
``diversity``, ``nonfinite``), so it can be unit-tested on recorded histories and reused by
any stopper. A history can reach several failure modes, one after another: the detector
names every one it reached (:meth:`CollapseDetector.verdicts`), and
:func:`deciding_verdict` picks the one a trial is known by given the verdicts that stop it.
The definitions and why the defaults were chosen are in ``docs/collapse.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

HEALTHY = "healthy"
NAN = "nan"
# no "diverging": the validity and class losses are bounded, and runaway learning rates end
# as one of these in real runs, never as growth (docs/collapse.md)
VERDICTS = (HEALTHY, NAN, "dead", "mode_collapse", "d_overpowers", "g_overpowers")
FAILURES = VERDICTS[1:]
WATCHED = (
    "d_loss",
    "d_loss_real",
    "d_loss_fake",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "d_grad_norm",
    "g_grad_norm",
    "diversity",
)


@dataclass(frozen=True)
class Verdict:
    """What the detector concluded.

    Args:
        name: one of :data:`VERDICTS`.
        onset: first epoch of the failure (0 when healthy).
        epoch: epoch at which the verdict was reached (onset + patience - 1, or onset for NaN).
        signals: the watched signals at ``epoch``.
    """

    name: str = HEALTHY
    onset: int = 0
    epoch: int = 0
    signals: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.name != HEALTHY

    def to_dict(self) -> dict:
        return asdict(self)


class CollapseDetector:
    """Reads a history of epoch metrics and names the failure modes it reached.

    Args:
        patience: consecutive epochs a failure condition must hold before the verdict.
        warmup: first epochs where only NaN is judged (G starts from noise and D from
            chance, so the first epochs of every run look lopsided).
        d_acc_high: D accuracy on real and on fake rows at or above which D "wins".
        d_acc_fooled: D accuracy on fake rows at or below which D is fooled.
        d_loss_stall: a loss "does not fall" while its newest value is at least
            ``1 - d_loss_stall`` times every earlier value of the window.
        dead_grad: gradient norm under which a network is dead (saturated outputs).
        diversity_low: generated / real mean pairwise distance below which G has collapsed.

    Example:
        >>> detector = CollapseDetector(patience=2, warmup=0)
        >>> history = [{"epoch": e, "nonfinite": 0.0, "d_loss": float("nan")} for e in (1, 2)]
        >>> detector.verdict(history).name
        'nan'
        >>> deciding_verdict(detector.verdicts(history), stopping=()).name
        'nan'
    """

    def __init__(
        self,
        patience: int = 3,
        warmup: int = 1,
        d_acc_high: float = 0.95,
        d_acc_fooled: float = 0.05,
        d_loss_stall: float = 0.05,
        dead_grad: float = 1e-6,
        diversity_low: float = 0.2,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        for name, value in (
            ("d_acc_high", d_acc_high),
            ("d_acc_fooled", d_acc_fooled),
            ("d_loss_stall", d_loss_stall),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if diversity_low < 0 or dead_grad < 0:
            raise ValueError("diversity_low and dead_grad must be >= 0")
        self.patience, self.warmup = patience, warmup
        self.d_acc_high, self.d_acc_fooled = d_acc_high, d_acc_fooled
        self.d_loss_stall, self.dead_grad = d_loss_stall, dead_grad
        self.diversity_low = diversity_low

    def settings(self) -> dict:
        return dict(vars(self))

    def verdicts(self, history: list[dict]) -> list[Verdict]:
        """Every failure mode ``history`` (one dict per epoch, oldest first) reached, each at
        its first window, earliest first (ties: the order of :data:`VERDICTS`)."""
        found = [v for v in (self._nan(history), *self._windowed(history)) if v is not None]
        return sorted(found, key=lambda v: (v.epoch, VERDICTS.index(v.name)))

    def verdict(self, history: list[dict]) -> Verdict:
        """The earliest failure in ``history``, or healthy."""
        found = self.verdicts(history)
        return found[0] if found else Verdict()

    def nan_verdict(self, history: list[dict]) -> Verdict:
        """Only the ``nan`` verdict (for models without a generator: no game to judge)."""
        return self._nan(history) or Verdict()

    # ---- failure modes ------------------------------------------------------------------
    def _nan(self, history: list[dict]) -> Verdict | None:
        for index, metrics in enumerate(history):
            values = [metrics.get(k) for k in ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm")]
            if metrics.get("nonfinite") or any(
                isinstance(v, float) and not math.isfinite(v) for v in values
            ):
                return self._found(NAN, history, index, index)
        return None

    def _windowed(self, history: list[dict]):
        judged = range(self.warmup, len(history))
        yield self._first_run("dead", history, judged, self._dead)
        yield self._first_run("mode_collapse", history, judged, self._collapsed)
        yield self._first_run("d_overpowers", history, judged, self._d_wins)
        yield self._first_run("g_overpowers", history, judged, self._g_wins)

    def _first_run(self, name, history, judged, condition) -> Verdict | None:
        """First window of ``patience`` consecutive judged epochs where ``condition`` holds."""
        run_start = None
        for index in judged:
            if not condition(history, index, run_start):
                run_start = None
                continue
            run_start = index if run_start is None else run_start
            if index - run_start + 1 >= self.patience:
                return self._found(name, history, run_start, index)
        return None

    def _dead(self, history, index, _start) -> bool:
        """D's gradient has vanished and so has G's, which flows through D, while D is not
        right about both halves: D's outputs saturated on the wrong side and nothing learns
        any more. (A D that saturates by being right on both halves is ``d_overpowers``.)"""
        metrics = history[index]
        d_grad = _number(metrics, "d_grad_norm")
        g_grad = _number(metrics, "g_grad_norm")
        if d_grad is None or d_grad >= self.dead_grad:
            return False
        if g_grad is not None and g_grad >= self.dead_grad:
            return False
        return not self._d_right_on_both_halves(metrics)

    def _d_right_on_both_halves(self, metrics: dict) -> bool:
        real = _number(metrics, "d_acc_real")
        fake = _number(metrics, "d_acc_fake")
        return real is not None and fake is not None and min(real, fake) >= self.d_acc_high

    def _collapsed(self, history, index, _start) -> bool:
        diversity = _number(history[index], "diversity")
        return diversity is not None and diversity < self.diversity_low

    def _d_wins(self, history, index, start) -> bool:
        """D right about nearly every real and every generated row while G's loss does not
        fall: G cannot catch up."""
        if not self._d_right_on_both_halves(history[index]) or self._dead(history, index, start):
            return False
        return self._not_falling(history, "g_loss", start, index)

    def _g_wins(self, history, index, start) -> bool:
        """D fooled by the fakes (calls them real) and its loss on the fake rows does not
        fall: D has lost the game rather than being on its way to learn it. Judged on
        ``d_loss_fake``, not D's total loss, which the class head's learning on real rows
        keeps lowering while the game is lost."""
        fake = _number(history[index], "d_acc_fake")
        if fake is None or fake > self.d_acc_fooled or self._dead(history, index, start):
            return False  # a dead G is not winning: see `dead`
        key = "d_loss_fake" if _number(history[index], "d_loss_fake") is not None else "d_loss"
        return self._not_falling(history, key, start, index)

    def _not_falling(self, history, key: str, start: int | None, index: int) -> bool:
        """``key``'s newest value has not fallen by ``d_loss_stall`` from any earlier value
        of the window (its highest), so a low first value cannot hide a decline after it; a
        window that starts now has nothing to fall from."""
        now = _number(history[index], key)
        if now is None:
            return False
        earlier = [_number(h, key) for h in history[index if start is None else start : index]]
        earlier = [v for v in earlier if v is not None]
        return not earlier or now >= (1.0 - self.d_loss_stall) * max(earlier)

    def _found(self, name: str, history: list[dict], onset: int, index: int) -> Verdict:
        signals = {k: history[index][k] for k in WATCHED if k in history[index]}
        return Verdict(name, _epoch(history, onset), _epoch(history, index), signals)


def _epoch(history: list[dict], index: int) -> int:
    return int(history[index].get("epoch", index + 1))


def _number(metrics: dict, key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def deciding_verdict(reached: list[Verdict], stopping: tuple[str, ...] | frozenset) -> Verdict:
    """The verdict a trial is known by, from every verdict it ``reached`` (earliest first).

    The first verdict that ``stopping`` lists (it ends the trial, whatever labels came
    before); else ``nan`` when reached (the run failed, whether or not ``nan`` stops); else
    the earliest label; else healthy.

    Example:
        >>> labelled, collapsed = Verdict("d_overpowers", 2, 4), Verdict("mode_collapse", 5, 7)
        >>> deciding_verdict([labelled, collapsed], stopping=("mode_collapse",)).name
        'mode_collapse'
    """
    for verdict in reached:
        if verdict.name in stopping:
            return verdict
    for verdict in reached:
        if verdict.name == NAN:
            return verdict
    return reached[0] if reached else Verdict()
