"""Collapse detection: a verdict on a GAN's health from its per-epoch signals.

Pure Python over the history a trial reports (``d_acc_real``, ``d_acc_fake``, ``d_loss``,
``g_loss``, ``d_grad_norm``, ``g_grad_norm``, ``diversity``, ``nonfinite``), so it can be
unit-tested on made-up histories and reused by any stopper. The defaults and why they were
chosen are in ``docs/collapse.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

HEALTHY = "healthy"
VERDICTS = (HEALTHY, "nan", "diverging", "mode_collapse", "d_overpowers", "g_overpowers")
FAILURES = VERDICTS[1:]
WATCHED = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "d_grad_norm", "g_grad_norm",
           "diversity")  # fmt: skip


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
    """Reads a history of epoch metrics and names the first failure mode it finds.

    Args:
        patience: consecutive epochs a failure condition must hold before the verdict.
        warmup: first epochs where only NaN is judged (G starts from noise and D from
            chance, so the first epochs of every run look lopsided).
        d_acc_high: D accuracy on real and on fake rows at or above which D "wins".
        d_acc_fooled: D accuracy on fake rows at or below which D is fooled.
        d_loss_stall: D is "no longer learning" when its loss over the window fell by less
            than this fraction, or its gradient norm is below ``dead_grad``.
        dead_grad: gradient norm under which a network is dead (saturated outputs).
        diversity_low: generated / real mean pairwise distance below which G has collapsed.
        diverge_factor: a loss or gradient norm this many times its post-warmup minimum.
        loss_limit: any loss above this is diverging at once.

    Example:
        >>> detector = CollapseDetector(patience=2, warmup=0)
        >>> history = [{"epoch": e, "nonfinite": 0.0, "d_loss": float("nan")} for e in (1, 2)]
        >>> detector.verdict(history).name
        'nan'
    """

    def __init__(self, patience: int = 3, warmup: int = 1, d_acc_high: float = 0.95,
                 d_acc_fooled: float = 0.05, d_loss_stall: float = 0.05,
                 dead_grad: float = 1e-6, diversity_low: float = 0.2,
                 diverge_factor: float = 50.0, loss_limit: float = 1e4) -> None:  # fmt: skip
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        for name, value in (("d_acc_high", d_acc_high), ("d_acc_fooled", d_acc_fooled),
                            ("d_loss_stall", d_loss_stall)):  # fmt: skip
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if diversity_low < 0 or dead_grad < 0:
            raise ValueError("diversity_low and dead_grad must be >= 0")
        if diverge_factor <= 1 or loss_limit <= 0:
            raise ValueError("diverge_factor must be > 1 and loss_limit > 0")
        self.patience, self.warmup = patience, warmup
        self.d_acc_high, self.d_acc_fooled = d_acc_high, d_acc_fooled
        self.d_loss_stall, self.dead_grad = d_loss_stall, dead_grad
        self.diversity_low = diversity_low
        self.diverge_factor, self.loss_limit = diverge_factor, loss_limit

    def settings(self) -> dict:
        return dict(vars(self))

    def verdict(self, history: list[dict]) -> Verdict:
        """The earliest failure in ``history`` (one dict per epoch, oldest first)."""
        found = [v for v in (self._nan(history), *self._windowed(history)) if v is not None]
        if not found:
            return Verdict()
        # earliest verdict wins; on a tie the order of VERDICTS decides (NaN first)
        return min(found, key=lambda v: (v.epoch, VERDICTS.index(v.name)))

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
                return self._found("nan", history, index, index)
        return None

    def _windowed(self, history: list[dict]):
        judged = range(self.warmup, len(history))
        yield self._first_run("diverging", history, judged, self._diverging(history))
        yield self._first_run("mode_collapse", history, judged, self._collapsed)
        yield self._first_run("d_overpowers", history, judged, self._d_wins)
        yield self._first_run("g_overpowers", history, judged, self._g_wins(history))

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

    def _diverging(self, history):
        def condition(history, index, _start) -> bool:
            for key in ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm"):
                value = _number(history[index], key)
                if value is None:
                    continue
                if value > self.loss_limit and key.endswith("loss"):
                    return True
                floor = min(
                    (v for h in history[self.warmup : index] if (v := _number(h, key)) is not None),
                    default=None,
                )
                # below 0.1 a loss or norm is "small", not a baseline: 0.002 -> 0.2 is a G
                # catching up, not growth without bound
                if floor is not None and value > self.diverge_factor * max(floor, 0.1):
                    return True
            return False

        return condition

    def _collapsed(self, history, index, _start) -> bool:
        diversity = _number(history[index], "diversity")
        return diversity is not None and diversity < self.diversity_low

    def _d_wins(self, history, index, start) -> bool:
        """D near-perfect on real and fake while G's loss does not come down."""
        metrics = history[index]
        real, fake = _number(metrics, "d_acc_real"), _number(metrics, "d_acc_fake")
        if real is None or fake is None or min(real, fake) < self.d_acc_high:
            return False
        g_now, g_then = (
            _number(metrics, "g_loss"),
            _number(history[index if start is None else start], "g_loss"),
        )
        return g_now is not None and g_then is not None and g_now >= 0.95 * g_then

    def _g_wins(self, history):
        def condition(history, index, start) -> bool:
            """D fooled on fakes (or dead: no gradient) and its loss no longer falling."""
            metrics = history[index]
            fake, grad = _number(metrics, "d_acc_fake"), _number(metrics, "d_grad_norm")
            dead = grad is not None and grad < self.dead_grad
            if not dead and (fake is None or fake > self.d_acc_fooled):
                return False
            d_now, d_then = (
                _number(metrics, "d_loss"),
                _number(history[index if start is None else start], "d_loss"),
            )
            stalled = d_now is not None and d_then is not None
            return dead or (stalled and d_now >= (1.0 - self.d_loss_stall) * d_then)

        return condition

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
