"""What a generator report works from: its settings, checked once, and the run's data and generated images,
loaded once for every later step (:func:`medgan_aug.apps.report.report.write_report`).

:func:`load_inputs` reads the real train/val/test splits of the file the run names, recomputes the subset
the GAN was trained on (checked against the run's recorded digest), loads the generator of either family
(:meth:`SyntheticDataset.from_run`) and generates the ``num_samples`` evaluated images, counting what
sampling costs (:class:`medgan_aug.apps.report.sampling.SamplingMeter`).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.apps.report.instrument import FAITHFULNESS_SAMPLES, split_images
from medgan_aug.apps.report.run_files import run_data_source
from medgan_aug.apps.report.sampling import SamplingMeter, planned_images
from medgan_aug.apps.report.settings import ReportSettings
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.sources import require_images
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.model_file import generator_family
from medgan_aug.utils.tasks import is_softmax_task

__all__ = ["PER_FINDING_COLUMNS", "ReportSettings", "ReportInputs", "load_inputs"]


#: Columns (noise vectors) of ``per_finding.png``.
PER_FINDING_COLUMNS = 8


@dataclass
class ReportInputs:
    """The run's real data, its generator and the evaluated generated images, as every step needs them.

    ``train_images`` is the whole real training split, ``subset_idx`` the labelled subset's rows,
    ``gan_train_images`` its rows ``gan_train_idx`` (what the GAN saw: the subset, or every row for a run
    trained on ``--pool train``), ``heldout_images``/``heldout_targets`` val + test; ``syn_images``/``syn_labels`` the
    ``num_samples`` generated images (labels: their conditioning, None for an unconditional generator);
    ``meter`` counts every image the generator makes until the figures are drawn.
    """

    run_dir: Path
    train: MedMNISTDataset
    splits: dict[str, MedMNISTDataset]
    subset_idx: np.ndarray
    gan_train_idx: np.ndarray
    train_images: torch.Tensor
    gan_train_images: torch.Tensor
    heldout_images: torch.Tensor
    heldout_targets: np.ndarray
    generator: nn.Module
    gen_meta: dict[str, Any]
    family: str
    conditional: bool
    task: str
    measures_faithfulness: bool
    n_collage: int
    meter: SamplingMeter
    syn_images: torch.Tensor
    syn_labels: torch.Tensor | None


def _gan_subset(record: dict[str, Any], train: Any) -> np.ndarray:
    """Row indices of train the GAN saw, checked against the run's recorded digest."""

    cfg, subset = record["config"], record.get("subset", {})
    expected = record.get("data", {}).get("train_size")
    if expected is not None and int(expected) != len(train):
        raise ValueError(
            f"the real file {train.source} has {len(train)} training images but the run was trained on a "
            f"file with {expected}: pass the run's data file with --real"
        )
    idx = low_data_indices(train.labels, fraction=float(cfg["fraction"]), seed=int(cfg["subset_seed"]))
    digest = hashlib.sha256(np.asarray(idx, dtype="<i8").tobytes()).hexdigest()
    if subset.get("indices_sha256") not in (None, digest):
        raise ValueError(
            f"the training subset recomputed from {train.source} (fraction {cfg['fraction']}, subset seed "
            f"{cfg['subset_seed']}) differs from the run's: pass the run's data file with --real"
        )
    return np.asarray(idx, dtype=np.int64)


def _gan_train_rows(record: dict[str, Any], train: Any, subset_idx: np.ndarray) -> np.ndarray:
    """Rows of ``train`` the generator trained on: the labelled subset, or every row for ``--pool train``.

    A pool file's own images are not in the data file, so the audit of such a run covers its labelled subset
    only (one warning says so).
    """
    pool = record["config"].get("pool", "labelled")
    if pool == "labelled":
        return subset_idx
    if pool == "train":
        return np.arange(len(train), dtype=np.int64)
    warnings.warn(
        f"the generator also trained on the pool file {pool}, whose images are not in {train.source}: the "
        "memorization audit compares its images with the labelled subset only",
        stacklevel=4,
    )
    return subset_idx


def _load_generator(run_dir: Path, train: MedMNISTDataset, s: ReportSettings) -> SyntheticDataset:
    """The run's generator as the evaluated synthetic set, with the report's DDIM steps (diffusion runs),
    checked to make images of the real data's size and channels."""
    synthetic = SyntheticDataset.from_run(run_dir, int(s.num_samples), seed=int(s.seed), device=s.device)
    generator = synthetic.generator
    family = generator_family(generator)
    if s.sampling_steps is not None:
        if family != "ddpm":
            raise ValueError(
                f"sampling_steps applies to a diffusion run (--model ddpm); {run_dir} is a {family} run"
            )
        generator.set_sampling(num_inference_steps=int(s.sampling_steps))
    if generator.image_size != train.size or generator.out_channels != train.num_channels:
        raise ValueError(
            f"generator makes {generator.out_channels}x{generator.image_size}px images but the real data is "
            f"{train.num_channels}x{train.size}px"
        )
    return synthetic


def load_inputs(run_dir: Path, record: dict[str, Any], s: ReportSettings) -> ReportInputs:
    """Step 1 of the report: the real splits, the GAN's training subset, the generator and its
    ``num_samples`` images (sampling counted from here until the figures are drawn)."""
    source = run_data_source(record, run_dir, s.real)
    splits = {split: MedMNISTDataset(split=split, **source) for split in ("train", "val", "test")}
    train = splits["train"]
    require_images(train, "the report")
    subset_idx = _gan_subset(record, train)
    gan_train_idx = _gan_train_rows(record, train, subset_idx)
    train_images = split_images(train)
    gan_train_images = train_images[torch.from_numpy(gan_train_idx)]
    heldout_images = torch.cat([split_images(splits["val"]), split_images(splits["test"])])
    heldout_targets = np.concatenate([splits["val"].targets, splits["test"].targets])
    synthetic = _load_generator(run_dir, train, s)
    generator, gen_meta = synthetic.generator, dict(synthetic.meta)
    family = generator_family(generator)
    conditional = generator.num_labels > 0
    task = str(train.task)
    measures_faithfulness = conditional and not is_softmax_task(task)
    n_collage = int(min(s.collage_count, len(subset_idx), s.num_samples))
    meter = SamplingMeter(
        generator,
        planned_images(
            int(s.num_samples),
            num_labels=int(generator.num_labels),
            collage=n_collage,
            faithfulness=min(int(s.num_samples), FAITHFULNESS_SAMPLES) if measures_faithfulness else 0,
            per_finding_columns=PER_FINDING_COLUMNS,
        ),
        progress=s.progress and family == "ddpm",  # a DCGAN samples a report's images in about a second
    ).start()
    batch = synthetic.get_batch(np.arange(int(s.num_samples)))
    return ReportInputs(
        run_dir=run_dir,
        train=train,
        splits=splits,
        subset_idx=subset_idx,
        gan_train_idx=gan_train_idx,
        train_images=train_images,
        gan_train_images=gan_train_images,
        heldout_images=heldout_images,
        heldout_targets=heldout_targets,
        generator=generator,
        gen_meta=gen_meta,
        family=family,
        conditional=conditional,
        task=task,
        measures_faithfulness=measures_faithfulness,
        n_collage=n_collage,
        meter=meter,
        syn_images=batch["image"],
        syn_labels=batch.get("label"),
    )
