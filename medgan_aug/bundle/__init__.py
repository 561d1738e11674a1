"""Export a trained generator as a MONAI bundle, and load one back."""

from __future__ import annotations

from medgan_aug.bundle.export import export_bundle
from medgan_aug.bundle.files import BUNDLE_FILES, LABEL_POOL_FILE
from medgan_aug.bundle.inference_output import write_synthetic
from medgan_aug.bundle.load import load_bundle_dataset, load_label_pool, load_weights
from medgan_aug.bundle.metadata import (
    DATA_PROVENANCE,
    LOGGING_CONF,
    MEDMNIST_PROVENANCE,
    UNKNOWN_PROVENANCE,
    bundle_readme,
    inference_config,
    network_data_format,
    package_versions,
    run_record,
    training_data_record,
)
