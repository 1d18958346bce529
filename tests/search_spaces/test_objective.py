"""How a trial's epochs reduce to its objective (``search_spaces/objective.py``), how a space
names the reduction, and how a saved sweep keeps it."""

import math

import pytest
import yaml

from search_spaces import load_space
from search_spaces.objective import DEFAULT_REDUCE, Reduction, epoch_value
from sermodels.errors import ConfigError
from sweep.settings import SweepSettings, load_settings, sweep_space

CURVE = [0.40, 0.70, 0.45, 0.50, 0.55]


@pytest.mark.parametrize(
    ("text", "mode", "value", "epoch"),
    [
        ("best", "max", 0.70, 2),  # the lucky epoch
        ("best", "min", 0.40, 1),
        ("last", "max", 0.55, 5),
        ("mean_last:3", "max", 0.50, 5),
        ("mean_last:10", "max", 0.52, 5),  # fewer epochs than the window: all of them
        ("smoothed:3", "max", 0.55, 4),  # windows 1-3, 2-4, 3-5: 0.517, 0.55, 0.50
        ("smoothed:2", "min", 0.475, 4),
    ],
)
def test_each_reduction_and_the_epoch_it_points_at(text, mode, value, epoch):
    reduced, at = Reduction.parse(text).reduce(CURVE, mode)
    assert reduced == pytest.approx(value) and at == epoch


def test_non_finite_epochs_are_left_out_and_none_left_is_nan():
    assert Reduction.parse("mean_last:2").reduce([0.5, math.nan, 0.7]) == (pytest.approx(0.6), 3)
    value, epoch = Reduction.parse("best").reduce([math.nan, None, math.inf])
    assert math.isnan(value) and epoch is None


def test_the_value_so_far_is_what_asha_sees_at_each_rung():
    reduction = Reduction.parse("mean_last:3")
    assert [round(reduction.reduce(CURVE[:n])[0], 4) for n in range(1, 6)] == [
        0.4,
        0.55,
        0.5167,
        0.55,
        0.5,
    ]


@pytest.mark.parametrize("text", ["median", "mean_last", "mean_last:0", "best:3", "smoothed:x", ""])
def test_a_reduction_it_does_not_know_is_one_line_naming_where(text):
    with pytest.raises(ConfigError, match="here: expected best, last, mean_last:K or smoothed:K"):
        Reduction.parse(text, "here")


def test_diversity_score_is_read_as_the_trainable_reports_it():
    assert epoch_value({"diversity": 2.0}, "diversity_score") == 0.5
    assert math.isnan(epoch_value({}, "diversity_score"))
    assert epoch_value({"val_uar": 0.6}, "val_uar") == 0.6


def test_a_space_names_its_reduction_and_the_shipped_default_applies_without_one(tmp_path):
    assert str(load_space("demo").reduce) == DEFAULT_REDUCE
    space = tmp_path / "space.yaml"
    demo = yaml.safe_load(load_space("demo").path.read_text())
    demo["objective"] = {"metric": "val_uar", "mode": "max", "reduce": "smoothed:2"}
    space.write_text(yaml.safe_dump(demo, sort_keys=False))
    assert str(load_space(space).reduce) == "smoothed:2"
    del demo["objective"]["reduce"]
    space.write_text(yaml.safe_dump(demo, sort_keys=False))
    assert str(load_space(space).reduce) == DEFAULT_REDUCE


def test_a_saved_sweep_keeps_its_reduction_and_one_saved_without_loads_as_best(tmp_path):
    settings = SweepSettings(out=str(tmp_path / "new"), space="demo", reduce="last")
    settings.save()
    assert str(sweep_space(load_settings(settings.folder)).reduce) == "last"
    older = tmp_path / "older"
    older.mkdir()
    values = yaml.safe_load((settings.folder / "sweep.yaml").read_text())
    for key in ("reduce", "reeval_top", "reeval_seeds"):  # keys an older version did not know
        del values[key]
    (older / "sweep.yaml").write_text(yaml.safe_dump(values))
    loaded = load_settings(older)
    assert loaded.reduce == "best" and str(sweep_space(loaded).reduce) == "best"
