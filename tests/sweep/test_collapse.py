"""The collapse detector on made-up histories: one test per verdict, plus what must not fire."""

import math

import pytest

from sweep.collapse import FAILURES, CollapseDetector

HEALTHY_EPOCH = {"d_loss": 0.4, "g_loss": 0.6, "d_acc_real": 0.8, "d_acc_fake": 0.7,
                 "d_grad_norm": 2.0, "g_grad_norm": 3.0, "diversity": 1.2,
                 "nonfinite": 0.0}  # fmt: skip


def history(n: int, **changes) -> list[dict]:
    """``n`` healthy epochs; ``changes`` maps a signal to a value or a function of the epoch."""
    rows = []
    for epoch in range(1, n + 1):
        row = {"epoch": epoch, **HEALTHY_EPOCH}
        for key, value in changes.items():
            row[key] = value(epoch) if callable(value) else value
        rows.append(row)
    return rows


def after(start: int, value, before=None):
    """A signal that takes ``value`` from epoch ``start`` on (healthy value before)."""
    return lambda epoch: value if epoch >= start else before


def test_a_healthy_game_is_healthy():
    verdict = CollapseDetector().verdict(history(20))
    assert verdict.name == "healthy" and not verdict.failed


def test_nan_is_judged_at_once_even_in_warmup():
    verdict = CollapseDetector(warmup=3).verdict(history(5, g_loss=after(2, math.nan, 0.6)))
    assert (verdict.name, verdict.onset, verdict.epoch) == ("nan", 2, 2)


def test_nonfinite_flag_is_nan():
    verdict = CollapseDetector().verdict(history(4, nonfinite=after(3, 1.0, 0.0)))
    assert (verdict.name, verdict.epoch) == ("nan", 3)


def test_d_overpowers_when_d_is_perfect_and_g_loss_climbs():
    rows = history(10, d_acc_real=after(4, 1.0, 0.8), d_acc_fake=after(4, 0.99, 0.7),
                   g_loss=lambda e: 0.2 + 0.08 * e)  # fmt: skip
    verdict = CollapseDetector(patience=3).verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("d_overpowers", 4, 6)
    assert verdict.signals["d_acc_real"] == 1.0


def test_perfect_d_with_falling_g_loss_is_not_d_overpowers():
    rows = history(10, d_acc_real=1.0, d_acc_fake=0.99, g_loss=lambda e: 1.0 / e)
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_g_overpowers_when_d_is_fooled_and_stalled():
    rows = history(10, d_acc_fake=after(3, 0.0, 0.7), d_loss=after(3, 1.4, 0.4))
    verdict = CollapseDetector(patience=3, warmup=2).verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("g_overpowers", 3, 5)


def test_fooled_but_learning_d_is_not_g_overpowers():
    rows = history(10, d_acc_fake=0.0, d_loss=lambda e: 1.5 * 0.85**e)  # falls 15% an epoch
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_a_dead_discriminator_is_g_overpowers():
    rows = history(8, d_acc_real=0.0, d_acc_fake=after(3, 1.0, 0.7), d_grad_norm=after(3, 0.0, 2.0))
    assert CollapseDetector().verdict(rows).name == "g_overpowers"


def test_mode_collapse_when_diversity_drops():
    rows = history(10, diversity=after(5, 0.01, 1.1))
    verdict = CollapseDetector(patience=2).verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("mode_collapse", 5, 6)


def test_low_diversity_in_warmup_is_forgiven():
    rows = history(10, diversity=lambda e: 0.05 if e <= 2 else 1.0)
    assert CollapseDetector(warmup=2).verdict(rows).name == "healthy"


def test_diverging_losses():
    rows = history(10, g_loss=lambda e: 0.5 * 10**e)
    verdict = CollapseDetector(patience=2, diverge_factor=50).verdict(rows)
    assert verdict.name == "diverging"
    assert verdict.epoch <= 6


def test_a_loss_over_the_limit_is_diverging():
    rows = history(6, d_loss=after(3, 1e6, 0.4))
    assert CollapseDetector(patience=1, warmup=0).verdict(rows).name == "diverging"


def test_a_short_blip_is_forgiven_by_patience():
    rows = history(10, diversity=lambda e: 0.01 if e in (4, 5) else 1.0)
    assert CollapseDetector(patience=3).verdict(rows).name == "healthy"


def test_the_earliest_failure_wins():
    rows = history(12, diversity=after(4, 0.01, 1.0), d_acc_fake=after(7, 0.0, 0.7),
                   d_loss=after(7, 1.5, 0.4))  # fmt: skip
    assert CollapseDetector().verdict(rows).name == "mode_collapse"


def test_nan_verdict_judges_only_non_finite_losses():
    rows = history(8, d_acc_fake=0.0, d_loss=1.4)  # would be g_overpowers for a GAN
    assert CollapseDetector().nan_verdict(rows).name == "healthy"
    rows[5]["nonfinite"] = 1.0
    assert CollapseDetector().nan_verdict(rows).name == "nan"


def test_missing_signals_are_ignored():
    rows = [{"epoch": e, "val_uar": 0.5} for e in range(1, 8)]  # a SER run: no GAN signals
    assert CollapseDetector().verdict(rows).name == "healthy"


@pytest.mark.parametrize(
    "kwargs",
    [{"patience": 0}, {"warmup": -1}, {"d_acc_high": 1.5}, {"diversity_low": -0.1},
     {"diverge_factor": 1.0}],
)  # fmt: skip
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CollapseDetector(**kwargs)


def test_every_failure_mode_has_a_test():
    assert set(FAILURES) == {"nan", "diverging", "mode_collapse", "d_overpowers", "g_overpowers"}
