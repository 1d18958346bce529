"""`final` trains each config for the epochs its trial needed to reach its best value of the
sweep's objective: a classifier's best validation epoch, an unsupervised SGAN's best
diversity epoch (it has no validation score)."""

import optuna
import pytest

from sweep.final import final_epochs


@pytest.mark.parametrize(
    "attrs, epochs",
    [
        ({"objective_epoch": 7, "best_epoch": 7}, 7),
        ({"objective_epoch": 5, "best_epoch": 0}, 5),  # unsupervised: no val_score epoch
        ({"best_epoch": 4}, 4),  # a study recorded before objective_epoch existed
        ({}, 1),
    ],
)
def test_final_epochs_follow_the_objective(attrs, epochs):
    trial = optuna.trial.create_trial(value=0.5, user_attrs=attrs)
    assert final_epochs(trial) == epochs
