"""The shared argument checks (medgan_aug.utils.validation) and that the modules speak through them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from medgan_aug.utils.validation import check_integer, check_real, is_integer, is_real

PACKAGE = Path(__file__).resolve().parents[1] / "medgan_aug"


@pytest.mark.parametrize("value", [0, 7, -3, np.int64(5), np.int32(-1), np.uint8(200)])
def test_integers_pass(value):
    assert is_integer(value)
    assert is_real(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, np.float32(2.0), "3", None, [1]])
def test_non_integers_and_bools_fail(value):
    assert not is_integer(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "1.5", None, 1 + 2j])
def test_is_real_refuses_bools_strings_and_complex(value):
    assert not is_real(value)


def test_is_real_accepts_floats_of_every_kind():
    assert all(is_real(v) for v in (1.5, np.float32(0.25), np.float64(-2.0), math.inf, math.nan))


def test_check_integer_returns_a_python_int():
    out = check_integer("epochs", np.int64(12), 1)
    assert out == 12 and type(out) is int


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "message"),
    [
        (0, 1, None, "epochs must be an integer >= 1, got 0"),
        (True, 1, None, "epochs must be an integer >= 1, got True"),
        (2.0, 1, None, "epochs must be an integer >= 1, got 2.0"),
        (-1, 0, None, "epochs must be an integer >= 0, got -1"),
        (1001, 1, 1000, "epochs must be an integer between 1 and 1000, got 1001"),
        (0, 1, 1000, "epochs must be an integer between 1 and 1000, got 0"),
    ],
)
def test_check_integer_names_the_argument_the_bound_and_the_value(value, minimum, maximum, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_integer("epochs", value, minimum, maximum)


def test_check_integer_bounds_are_inclusive():
    assert check_integer("n", 1, 1, 1000) == 1
    assert check_integer("n", 1000, 1, 1000) == 1000


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (math.nan, {}, "lr must be a finite number, got nan"),
        (True, {}, "lr must be a finite number, got True"),
        (0.0, {"positive": True}, "lr must be a positive finite number, got 0.0"),
        (math.nan, {"positive": True}, "lr must be a positive finite number, got nan"),
        (True, {"positive": True}, "lr must be a positive finite number, got True"),
        (-0.5, {"minimum": 0.0}, "lr must be a finite number >= 0.0, got -0.5"),
    ],
)
def test_check_real_messages(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_real("lr", value, **kwargs)


def test_check_real_returns_a_python_float():
    out = check_real("lr", np.float32(0.5), positive=True)
    assert out == 0.5 and type(out) is float


def test_no_module_spells_the_bool_excluding_integer_check_by_hand():
    """The pattern this module replaced must not creep back (it had 25 copies with 6 different messages)."""
    pattern = re.compile(r"isinstance\(\w[\w.]*, bool\) or not isinstance\(")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "validation.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_a_module_raises_the_shared_message():
    from medgan_aug.data.stratify import low_data_indices

    labels = np.eye(3, dtype=np.int64)[np.arange(30) % 3]
    with pytest.raises(ValueError, match=re.escape("n must be an integer >= 1, got 0")):
        low_data_indices(labels, n=0, seed=0)
