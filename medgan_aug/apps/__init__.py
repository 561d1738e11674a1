"""What the CLI commands run: train a GAN, train and score one classifier, the study, the report."""

from __future__ import annotations

from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
from medgan_aug.apps.train import GANConfig, GANSubset, build_gan_trainer, load_gan_subset, train_gan
