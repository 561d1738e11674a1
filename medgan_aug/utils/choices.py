"""The values the choice settings take (losses, schedules, precisions, classifier networks).

Plain tuples in a module that imports nothing, so the settings dataclasses (``GANConfig``,
``ClassifierRunConfig``) and ``medgan-aug --help`` can list them without importing torch; the modules that
implement the choices import them from here.
"""

from __future__ import annotations

__all__ = ["CLASSIFIER_NAMES", "LOSSES", "LR_SCHEDULES", "PRECISIONS"]

LOSSES = ("bce", "hinge")
"""GAN losses (:func:`medgan_aug.engines.gan_losses.discriminator_loss`)."""

LR_SCHEDULES = ("constant", "linear", "cosine")
"""Learning-rate schedules of the GAN trainer (:class:`medgan_aug.engines.GANTrainer`)."""

PRECISIONS = ("auto", "fp32", "bf16")
"""Compute precisions (:func:`medgan_aug.utils.devices.resolve_precision`)."""

CLASSIFIER_NAMES = ("small_cnn", "resnet18")
"""Classifier networks (:func:`medgan_aug.networks.classifiers.build_classifier`)."""
