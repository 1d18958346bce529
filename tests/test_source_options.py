"""The source options table: every sersweep key it names exists in the run config, every CLI
flag in ``launch.py``, and the README holds exactly the table the list generates."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

import launch
from sermodels.config import DataConfig, RunConfig
from sermodels.source_options import OPTIONS, markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- source-options:begin -->", "<!-- source-options:end -->"


def config_keys() -> set[str]:
    from sermodels.config import SERConfig, SGANConfig, TrainConfig

    sections = {"data": DataConfig, "train": TrainConfig, "sgan": SGANConfig, "ser": SERConfig}
    assert set(sections) | {"model"} == {f.name for f in fields(RunConfig)}
    return {f"{name}.{f.name}" for name, cls in sections.items() for f in fields(cls)}


def cli_flags() -> dict[str, set[str]]:
    """Each command's flags, as its help lists them."""
    commands = launch.parser().command_parsers
    return {
        name: set(re.findall(r"--[a-z][a-z-]*", p.format_help())) for name, p in commands.items()
    }


@pytest.mark.parametrize("option", OPTIONS, ids=[f"{o.project}{o.flag}" for o in OPTIONS])
def test_each_source_option_names_something_that_exists(option):
    if not option.ours:
        assert option.note, f"{option.flag}: say why there is no counterpart"
    elif option.ours.startswith("launch.py"):
        _, command, *flag = option.ours.split()
        flags = cli_flags()
        assert command in flags, option
        assert not flag or flag[0] in flags[command], option
    else:
        assert option.ours in config_keys(), option


def test_the_readme_table_is_the_generated_one():
    text = README.read_text()
    table = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert table == markdown_table(), "run `python -m sermodels.source_options` into the README"


def test_every_source_flag_is_listed_once():
    flags = [(o.project, o.flag) for o in OPTIONS]
    assert len(flags) == len(set(flags))
