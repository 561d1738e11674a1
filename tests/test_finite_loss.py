"""Tests for the finite-loss check both engines share (medgan_aug.handlers.finite_loss), and the in-memory
loss log (medgan_aug.handlers.loss_log.LossHistory)."""

from __future__ import annotations

import math

import pytest
from ignite.engine import Engine

from medgan_aug.handlers.finite_loss import check_finite_loss
from medgan_aug.handlers.loss_log import LossHistory
from medgan_aug.utils.errors import GANDivergenceError, TrainingDivergenceError


def test_a_finite_loss_passes_through_unchanged():
    assert check_finite_loss(0.125, "loss", 3) == 0.125


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_raises_naming_the_step(value):
    with pytest.raises(TrainingDivergenceError) as err:
        check_finite_loss(value, "loss", 4, label="classifier training", advice="Try a lower learning rate.")
    assert (
        str(err.value)
        == f"classifier training diverged at step 4: loss is {value}. Try a lower learning rate."
    )
    assert isinstance(err.value, FloatingPointError)


def test_the_gan_form_of_the_message():
    with pytest.raises(GANDivergenceError) as err:
        check_finite_loss(
            math.nan, "loss_g", 12, label="GAN training", step_name="iteration", context={"loss_d": 0.69314},
            advice="The last good checkpoint is kept.", error=GANDivergenceError,
        )  # fmt: skip
    assert str(err.value) == (
        "GAN training diverged at iteration 12: loss_g is nan (loss_d=0.6931). The last good checkpoint is kept."
    )


def test_loss_history_keeps_each_iterations_values():
    engine = Engine(lambda e, b: {"loss": 0.5 * e.state.iteration, "other": b})
    log = LossHistory(("loss", "other"))
    log.attach(engine)
    engine.run([7, 8, 9], max_epochs=1)
    assert log.history == {"loss": [0.5, 1.0, 1.5], "other": [7.0, 8.0, 9.0]}
