"""DCGAN generator/discriminator, the diffusion generator, downstream classifiers, and the one model-file
format for all of them."""

from __future__ import annotations

from medgan_aug.networks.classifiers import (
    CLASSIFIER_NAMES,
    CLASSIFIERS,
    ResNet18Classifier,
    SmallCNN,
    build_classifier,
    loss_for_task,
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
from medgan_aug.networks.diffusion import DiffusionGenerator, LabelContext
from medgan_aug.networks.model_file import (
    GENERATOR_FAMILIES,
    GENERATOR_FILE,
    GENERATOR_FORMAT,
    GENERATOR_VERSION,
    MODEL_FORMAT,
    MODEL_VERSION,
    NETWORKS,
    check_generator_protocol,
    generator_family,
    load_any_generator,
    load_classifier,
    load_diffusion_generator,
    load_generator,
    load_model,
    resolve_generator_file,
    save_classifier,
    save_generator,
    save_model,
)
