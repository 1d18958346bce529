"""The collapse detector on made-up histories: one test per verdict, plus what must not fire."""

import math

import pytest

from sweep.collapse import FAILURES, CollapseDetector, Verdict, deciding_verdict
from sweep.settings import CLASSIFIER_STOPS
from tests.helpers import TINY_SGAN

HEALTHY_EPOCH = {
    "d_loss": 0.4,
    "d_loss_real": 0.35,
    "d_loss_fake": 0.45,
    "g_loss": 0.6,
    "d_acc_real": 0.8,
    "d_acc_fake": 0.7,
    "d_grad_norm": 2.0,
    "g_grad_norm": 3.0,
    "diversity": 1.2,
    "nonfinite": 0.0,
}


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
    rows = history(
        10,
        d_acc_real=after(4, 1.0, 0.8),
        d_acc_fake=after(4, 0.99, 0.7),
        g_loss=lambda e: 0.2 + 0.08 * e,
    )
    verdict = CollapseDetector(patience=3).verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("d_overpowers", 4, 6)
    assert verdict.signals["d_acc_real"] == 1.0


def test_a_d_unsure_of_real_rows_is_not_d_overpowers():
    # D sure of the fakes but calling most real rows fake (smoothed targets, noisy inputs):
    # a stable recipe's ordinary state, not D dominance
    rows = history(
        10, d_acc_real=0.3, d_acc_fake=after(4, 0.97, 0.8), g_loss=lambda e: 0.6 + 0.05 * e
    )
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_perfect_d_with_falling_g_loss_is_not_d_overpowers():
    rows = history(10, d_acc_real=1.0, d_acc_fake=0.99, g_loss=lambda e: 1.0 / e)
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_g_overpowers_when_d_is_fooled_and_stalled():
    rows = history(10, d_acc_fake=after(3, 0.0, 0.7), d_loss_fake=after(3, 1.4, 0.4))
    verdict = CollapseDetector(patience=3, warmup=2).verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("g_overpowers", 3, 5)


def test_fooled_but_learning_d_is_not_g_overpowers():
    rows = history(10, d_acc_fake=0.0, d_loss_fake=lambda e: 1.5 * 0.85**e)  # -15 % an epoch
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_a_class_head_that_learns_does_not_hide_a_lost_game():
    # D's total loss falls because its class head learns the real rows; on the fakes it is
    # fooled and its loss there is flat: the game is lost
    rows = history(
        10,
        d_acc_fake=after(3, 0.01, 0.7),
        d_loss=lambda e: 2.0 * 0.8**e,
        d_loss_fake=after(3, 0.5, 0.45),
    )
    assert CollapseDetector().verdict(rows).name == "g_overpowers"


def test_without_per_side_losses_g_overpowers_reads_d_loss():
    rows = history(10, d_acc_fake=after(3, 0.0, 0.7), d_loss=after(3, 1.4, 0.4))
    for row in rows:
        del row["d_loss_fake"], row["d_loss_real"]
    assert CollapseDetector(warmup=2).verdict(rows).name == "g_overpowers"


def test_a_low_first_value_does_not_hide_a_decline_after_it():
    # a dip at epoch 3, then D's fake loss falls 7 % an epoch: D is catching up. Measured
    # from the window's first value only, every later value would look "not falling".
    rows = history(
        10,
        d_acc_fake=after(3, 0.0, 0.7),
        d_loss_fake=lambda e: 0.5 if e == 3 else 0.9 * 0.93 ** (e - 4),
    )
    assert CollapseDetector(warmup=2).verdict(rows).name == "healthy"


def test_a_slow_steady_decline_is_falling():
    # 3 % an epoch: less than d_loss_stall per epoch, more than it over the window
    rows = history(10, d_acc_fake=0.0, d_loss_fake=lambda e: 0.97**e)
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_both_networks_dead_is_dead_not_g_overpowers():
    # the held-out case: gradients 0 from epoch 2, D calls every row fake, G's loss flat at 1
    rows = history(
        8,
        d_acc_real=after(2, 0.0, 0.6),
        d_acc_fake=after(2, 1.0, 0.5),
        g_loss=after(2, 1.0, 0.7),
        d_grad_norm=after(2, 0.0, 2.0),
        g_grad_norm=after(2, 0.0, 3.0),
    )
    verdict = CollapseDetector().verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("dead", 2, 4)
    assert "g_overpowers" not in {v.name for v in CollapseDetector().verdicts(rows)}


def test_a_dead_d_that_calls_fakes_real_is_dead_not_g_overpowers():
    rows = history(
        8,
        d_acc_real=1.0,
        d_acc_fake=after(2, 0.0, 0.5),
        d_loss_fake=1.0,
        d_grad_norm=after(2, 0.0, 2.0),
        g_grad_norm=after(2, 0.0, 3.0),
    )
    assert [v.name for v in CollapseDetector().verdicts(rows)] == ["dead"]


def test_a_d_saturated_by_being_right_is_d_overpowers_not_dead():
    rows = history(
        8,
        d_acc_real=1.0,
        d_acc_fake=after(2, 1.0, 0.5),
        g_loss=1.0,
        d_grad_norm=after(2, 0.0, 2.0),
        g_grad_norm=after(2, 0.0, 3.0),
    )
    assert [v.name for v in CollapseDetector().verdicts(rows)] == ["d_overpowers"]


def test_a_dead_d_with_a_live_g_gradient_is_not_dead():
    rows = history(8, d_grad_norm=after(3, 0.0, 2.0))
    assert CollapseDetector().verdict(rows).name == "healthy"


def test_mode_collapse_when_diversity_drops():
    rows = history(10, diversity=after(5, 0.01, 1.1))
    verdict = CollapseDetector(patience=2).verdict(rows)
    assert (verdict.name, verdict.onset, verdict.epoch) == ("mode_collapse", 5, 6)


def test_low_diversity_in_warmup_is_forgiven():
    rows = history(10, diversity=lambda e: 0.05 if e <= 2 else 1.0)
    assert CollapseDetector(warmup=2).verdict(rows).name == "healthy"


def test_a_short_blip_is_forgiven_by_patience():
    rows = history(10, diversity=lambda e: 0.01 if e in (4, 5) else 1.0)
    assert CollapseDetector(patience=3).verdict(rows).name == "healthy"


def test_the_earliest_failure_wins():
    rows = history(
        12,
        diversity=after(4, 0.01, 1.0),
        d_acc_fake=after(7, 0.0, 0.7),
        d_loss_fake=after(7, 1.5, 0.4),
    )
    assert CollapseDetector().verdict(rows).name == "mode_collapse"


def test_every_failure_reached_is_named_earliest_first():
    rows = history(
        12,
        diversity=after(4, 0.01, 1.0),
        d_acc_fake=after(7, 0.0, 0.7),
        d_loss_fake=after(7, 1.5, 0.4),
    )
    reached = CollapseDetector().verdicts(rows)
    assert [(v.name, v.onset, v.epoch) for v in reached] == [
        ("mode_collapse", 4, 6),
        ("g_overpowers", 7, 9),
    ]


def d_overpowers_then(**later) -> list[dict]:
    """D wins from epoch 2 (a label-only verdict in a classifier sweep), then ``later``."""
    return history(10, d_acc_real=1.0, d_acc_fake=after(2, 0.99, 0.7), g_loss=0.98, **later)


def test_a_label_only_verdict_does_not_mask_a_later_stopping_one():
    rows = d_overpowers_then(diversity=after(5, 0.01, 1.0))
    reached = CollapseDetector().verdicts(rows)
    assert [v.name for v in reached] == ["d_overpowers", "mode_collapse"]
    assert deciding_verdict(reached, CLASSIFIER_STOPS) == reached[1]
    # the trial reaches its stopping verdict at epoch 7: its history up to then decides
    reached_by_7 = CollapseDetector().verdicts(rows[:7])
    assert deciding_verdict(reached_by_7, CLASSIFIER_STOPS).epoch == 7
    assert deciding_verdict(CollapseDetector().verdicts(rows[:6]), CLASSIFIER_STOPS).name == (
        "d_overpowers"
    )  # labelled, running on


def test_a_later_nan_decides_even_when_nan_does_not_stop():
    rows = d_overpowers_then(nonfinite=after(8, 1.0, 0.0))
    reached = CollapseDetector().verdicts(rows)
    assert [v.name for v in reached] == ["d_overpowers", "nan"]
    assert deciding_verdict(reached, ()).name == "nan"  # --no-collapse-stop
    assert deciding_verdict(reached, ("g_overpowers",)).name == "nan"


def test_deciding_verdict_of_nothing_is_healthy():
    assert deciding_verdict([], CLASSIFIER_STOPS) == Verdict()
    label = Verdict("d_overpowers", 2, 4)
    assert deciding_verdict([label], CLASSIFIER_STOPS) == label  # the earliest label


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
    [
        {"patience": 0},
        {"warmup": -1},
        {"d_acc_high": 1.5},
        {"diversity_low": -0.1},
        {"dead_grad": -1.0},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CollapseDetector(**kwargs)


def test_every_failure_mode_has_a_test():
    assert set(FAILURES) == {"nan", "dead", "mode_collapse", "d_overpowers", "g_overpowers"}


def test_a_real_sgan_whose_networks_die_is_dead(tiny_corpus):
    # learning rates of 5.0 saturate D in its first epoch: from epoch 2 both gradient norms
    # are exactly 0 and D is wrong about real rows; nobody overpowers anybody
    from sermodels.config import config_from_dict
    from sermodels.data import load_run_corpus
    from sermodels.training.run import make_run

    config = config_from_dict(
        {
            "model": "sgan",
            "data": {
                "features": ["a_feat"],
                "tasks": "category:4:2",
                "test_idx": "0",
                "valid_idx": "1",
                "r_nrow": 32,
                "r_ncol": 16,
            },
            "sgan": {
                **TINY_SGAN,
                "d_lr": 5.0,
                "g_lr": 5.0,
            },
            "train": {"epochs": 5, "batch_size": 16, "patience": 0, "save_img_interval": 0},
        }
    )
    run = make_run(config, load_run_corpus(config, tiny_corpus), None)
    for _ in range(5):
        run.step_epoch()
    reached = CollapseDetector().verdicts(run.history)
    assert [v.name for v in reached] == ["dead"], run.history
    assert reached[0].signals["d_grad_norm"] == 0.0 == reached[0].signals["g_grad_norm"]
