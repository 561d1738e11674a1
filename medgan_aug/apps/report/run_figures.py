"""The report's figures for one run, drawn from its loaded inputs (:mod:`medgan_aug.apps.report.inputs`) and
its pixel-space memorization audit (:mod:`medgan_aug.metrics.memorization`); the drawing itself is in
:mod:`medgan_aug.apps.report.figures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medgan_aug.apps.report.figures import (
    closest_pairs_figure,
    loss_curves_figure,
    nn_distance_histogram,
    per_finding_grid,
    real_vs_synthetic_collage,
    sample_progression,
)
from medgan_aug.apps.report.inputs import PER_FINDING_COLUMNS, ReportInputs
from medgan_aug.apps.report.run_files import read_losses
from medgan_aug.apps.report.settings import ReportSettings
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.metrics.memorization import MemorizationAudit

__all__ = ["write_figures"]


def _sample_grids(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for p in sorted((run_dir / "samples").glob("iter_*.png")):
        try:
            out.append((int(p.stem.split("_", 1)[1]), p))
        except ValueError:
            continue
    return out


def _collage(inp: ReportInputs, s: ReportSettings) -> str:
    """``real_vs_synthetic.png``: GAN training images beside generated ones (a conditional generator's tile
    conditioned on the label vector of the real tile at the same place)."""
    rng = np.random.default_rng(s.seed)
    pick = np.sort(rng.choice(len(inp.gan_train_idx), inp.n_collage, replace=False))
    real_tiles = inp.gan_train_images[torch.from_numpy(pick)]
    if inp.conditional:
        labels = inp.train.targets[inp.subset_idx[pick]]
        fake_tiles = SyntheticDataset(
            inp.generator, inp.n_collage, labels=labels, seed=int(s.seed) + 1, device=s.device
        ).get_batch(np.arange(inp.n_collage))["image"]
    else:
        fake_tiles = inp.syn_images[: inp.n_collage]
    return real_vs_synthetic_collage(
        real_tiles,
        fake_tiles,
        inp.run_dir / "real_vs_synthetic.png",
        titles=(
            "real (GAN training images)",
            "synthetic (same labels, row by row)" if inp.conditional else "synthetic",
        ),
    ).name


def _training_figures(inp: ReportInputs, s: ReportSettings, files: dict[str, str]) -> None:
    """The run's own record as pictures, into ``files``: the sample progression (PNG and GIF), the loss
    curves, and for a conditional generator one row per finding at the same noise."""
    run_dir = inp.run_dir
    grids = _sample_grids(run_dir)
    if grids:
        g, a = sample_progression(
            grids, inp.train.size, run_dir / "progression.png", run_dir / "progression.gif"
        )
        files["progression"], files["progression_gif"] = g.name, a.name
    losses_path = run_dir / "losses.csv"
    if losses_path.is_file():
        files["losses"] = loss_curves_figure(read_losses(losses_path), run_dir / "losses.png").name
    if inp.conditional:
        generator = inp.generator
        names = list(inp.gen_meta.get("label_names") or inp.train.label_names)
        if len(names) == int(generator.num_labels) + 1:  # binary flag: the one label is the positive class
            names = names[1:]
        files["per_finding"] = per_finding_grid(
            generator, names, run_dir / "per_finding.png", columns=PER_FINDING_COLUMNS, seed=s.seed
        ).name


def write_figures(inp: ReportInputs, s: ReportSettings, audit_px: MemorizationAudit) -> dict[str, str]:
    """Every figure of the report, written into the run directory; returns figure key -> file name.
    Stops the sampling meter once the last generated image (the per-finding grid) is made."""
    files: dict[str, str] = {"real_vs_synthetic": _collage(inp, s)}
    _training_figures(inp, s, files)
    inp.meter.stop()
    files["memorization_pairs"] = closest_pairs_figure(
        inp.syn_images,
        inp.gan_train_images,
        audit_px.closest(8),
        inp.run_dir / "memorization_pairs.png",
        threshold=audit_px.threshold,
    ).name
    files["memorization_hist"] = nn_distance_histogram(
        audit_px.synthetic_distances,
        audit_px.heldout_distances,
        audit_px.threshold,
        inp.run_dir / "memorization_hist.png",
        space="pixel",
    ).name
    return files
