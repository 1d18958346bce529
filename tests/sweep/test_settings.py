"""Which verdicts stop trials: by the space's objective unless the user says."""

import pytest

from sweep.collapse import FAILURES
from sweep.settings import SweepSettings, default_stop_verdicts


def test_a_classifier_objective_labels_d_overpowers_without_stopping():
    assert default_stop_verdicts("val_uar") == ["nan", "dead", "mode_collapse", "g_overpowers"]
    assert default_stop_verdicts("diversity_score") == list(FAILURES)


def test_stop_verdicts_are_resolved_once_and_a_user_choice_is_kept(tmp_path):
    settings = SweepSettings(out=str(tmp_path), space="demo")
    with pytest.raises(RuntimeError, match="resolve_stop_verdicts"):
        assert settings.stopping
    settings.resolve_stop_verdicts("val_uar")
    assert "d_overpowers" not in settings.stopping
    chosen = SweepSettings(out=str(tmp_path), space="demo", stop_verdicts=["d_overpowers"])
    chosen.resolve_stop_verdicts("val_uar")
    assert chosen.stopping == ("d_overpowers",)
    chosen.stop_on_collapse = False
    assert chosen.stopping == ()
