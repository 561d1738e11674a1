"""MedMNIST loading and checks, stratified low-data subsets, seeded batch order, generated data sets and label samplers."""

from __future__ import annotations

from medgan_aug.data.batches import SeededBatches
from medgan_aug.data.label_samplers import (
    BalancedLabelSampler,
    JointLabelSampler,
    LabelSampler,
    as_label_pool,
    chunk_generator,
    meta_label_pool,
)
from medgan_aug.data.medmnist import (
    SPLITS,
    MedMNISTDataset,
    file_md5,
    flag_info,
    label_vectors,
    load_medmnist_npz,
    official_file,
    output_names,
)
from medgan_aug.data.samples import SAMPLES, sample_flag, sample_path
from medgan_aug.data.sources import dataset_source, require_images
from medgan_aug.data.stratify import low_data_indices, strata_matrix, stratified_order
from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset
