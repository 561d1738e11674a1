"""The report's settings live once (ReportSettings): the command's options and write_report's defaults."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from medgan_aug.apps.report.settings import ReportSettings
from medgan_aug.cli import build_parser
from medgan_aug.cli.options import config_from_args


def test_report_options_parse_into_the_settings_defaults_and_overrides():
    parser = build_parser()
    args = parser.parse_args(["report", "--run", "r"])
    assert config_from_args(ReportSettings, args) == ReportSettings()
    args = parser.parse_args(
        ["report", "--run", "r", "--num", "50", "--inception", "--no-progress", "--sampling-steps", "10"]
    )
    settings = config_from_args(ReportSettings, args)
    assert (settings.num_samples, settings.inception_fid, settings.progress, settings.sampling_steps) == (
        50,
        True,
        False,
        10,
    )


def test_write_report_defaults_are_the_settings_defaults():
    from medgan_aug.apps.report.report import write_report

    parameters = inspect.signature(write_report).parameters
    for field in dataclasses.fields(ReportSettings):
        assert parameters[field.name].default == field.default, field.name


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"num_samples": 19}, "num_samples must be an integer >= 20, got 19"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"sampling_steps": 0}, "sampling_steps must be an integer >= 1, got 0"),
    ],
)
def test_bad_settings_name_the_field(kw, message):
    with pytest.raises(ValueError, match=message):
        ReportSettings(**kw)
