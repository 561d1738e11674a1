"""DCGAN generator/discriminator, downstream classifiers, and their model files."""

from __future__ import annotations

from medgan_aug.networks.classifiers import (
    CLASSIFIER_NAMES,
    ResNet18Classifier,
    SmallCNN,
    build_classifier,
    load_classifier,
    loss_for_task,
    save_classifier,
    scores_from_logits,
)
from medgan_aug.networks.dcgan import (
    SUPPORTED_SIZES,
    DCGANDiscriminator,
    DCGANGenerator,
    count_parameters,
    standing_batchnorm_stats,
    to_unit_range,
)
from medgan_aug.networks.model_file import (
    GENERATOR_FILE,
    GENERATOR_FORMAT,
    GENERATOR_VERSION,
    check_generator_protocol,
    load_generator,
    resolve_generator_file,
    save_generator,
)
