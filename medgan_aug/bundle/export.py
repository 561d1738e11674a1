"""Export a trained generator as a MONAI bundle (its inference writes with :mod:`.inference_output`).

A MONAI bundle (https://monai.readthedocs.io/en/latest/mb_specification.html) is a folder that carries
a network's weights with machine-readable metadata and runnable configs::

    <bundle>/
        configs/metadata.json    versions, task, network data format (inputs: latent z (latent_dim,)
                                 and, if conditional, a finding vector (L,); output 1xHxW in [0, 1]),
                                 the training data, its source and licence, the run record
        configs/inference.json   generate N images with SyntheticDataset into an .npz (or a PNG folder)
        configs/logging.conf     Python logging set-up read by ``monai.bundle``
        models/model.pt          the EMA generator's state_dict (``torch.load(weights_only=True)``)
        models/label_pool.npy    conditional generators: the training subset's label vectors (float32
                                 (M, L)) that the "joint" / "balanced" label samplers resample
        docs/README.md           model card: what it is, how to run it, data and licences

Run it from the bundle folder (``--bundle_root`` elsewhere)::

    python -m monai.bundle run --config_file configs/inference.json --num_samples 500 --seed 1

Equality with the library: the bundle's inference builds a
:class:`medgan_aug.data.SyntheticDataset` from the same weights, the same label pool and the same
seed, so its images are *exactly* those of ``SyntheticDataset.from_run(run, N, seed=seed)`` on the
same device (chunked seeding, see :mod:`medgan_aug.data.synthetic`); ``tests/test_bundle.py`` checks it
bit for bit on CPU.

Either generator family exports: the conditional DCGAN of Radford, Metz & Chintala, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks" (ICLR 2016), conditioned as
in Mirza & Osindero, "Conditional Generative Adversarial Nets" (arXiv:1411.1784, 2014); or the diffusion
generator (``--model ddpm``: MONAI's ``DiffusionModelUNet`` trained as a DDPM, Ho et al. NeurIPS 2020, sampled
with deterministic DDIM, Song et al. ICLR 2021, with classifier-free guidance, Ho & Salimans 2022). The
metadata names the family (``medgan_aug.family``); a diffusion bundle's inference config exposes
``sampling_steps`` and ``guidance_scale``, whose defaults are the run's, so its images equal
``SyntheticDataset.from_run``'s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgan_aug.bundle.files import LABEL_POOL_FILE, METADATA_SCHEMA, bundle_problem
from medgan_aug.bundle.inference_output import write_synthetic
from medgan_aug.bundle.metadata import (
    FAMILY_TEXT,
    LOGGING_CONF,
    bundle_readme,
    inference_config,
    network_data_format,
    package_versions,
    run_record,
    training_data_record,
)
from medgan_aug.data.label_samplers import meta_label_pool
from medgan_aug.data.synthetic import CHUNK_SIZE
from medgan_aug.networks.model_file import generator_family, load_any_generator, resolve_generator_file
from medgan_aug.utils.atomic import atomic_dir
from medgan_aug.utils.outputs import check_output_folder
from medgan_aug.utils.serialization import atomic_torch_save
from medgan_aug.utils.validation import check_integer

__all__ = ["export_bundle", "write_synthetic"]  # write_synthetic: from inference_output


def export_bundle(
    run: str | os.PathLike,
    out: str | os.PathLike,
    overwrite: bool = False,
    num_samples: int = 64,
    seed: int = 0,
    version: str = "0.1.0",
    name: str | None = None,
) -> Path:
    """Write a MONAI bundle for a training run's EMA generator, DCGAN or diffusion (layout in the module
    docstring).

    The folder is built next to ``out`` and moved into place when complete, so an interrupted export
    never leaves a half bundle under ``out``.

    Args:
        run: a run directory holding ``generator.pt`` (its ``config.json`` adds the run record), or a
            generator file.
        out: the bundle folder to create.
        overwrite: replace an existing ``out`` that is a bundle written here (recognised by its
            ``configs/metadata.json``, holding only bundle files and ``outputs/``). A folder with other
            files is never replaced.
        num_samples, seed: defaults of the bundle's inference (overridable at run time).
        version: the bundle's version string.
        name: the bundle's name (default: ``out``'s folder name).

    Returns:
        The bundle folder.

    Raises:
        FileNotFoundError: no such run / generator file.
        FileExistsError: ``out`` is a bundle and ``overwrite`` is False.
        medgan_aug.utils.errors.OutputNotOursError: ``out`` is a file, or a non-empty folder that is not
            one of our bundles (``overwrite`` or not); the message names the folder and why.
        ValueError: bad ``num_samples``/``seed``, or an unusable generator file or run record.
    """
    for arg, value, low in (("num_samples", num_samples, 1), ("seed", seed, 0)):
        check_integer(arg, value, low)
    out = Path(out)
    _check_bundle_folder(out, overwrite)
    gen_file = resolve_generator_file(run)
    run_dir = gen_file.parent if Path(run).is_file() else Path(run)
    generator, meta = load_any_generator(gen_file)
    family = generator_family(generator)
    meta = dict(meta or {})
    record = run_record(run_dir)
    label_names = meta.get("label_names")
    label_names = list(label_names) if label_names is not None else None
    if generator.num_labels and label_names is not None and len(label_names) != generator.num_labels:
        label_names = None  # e.g. a binary flag stores two class names for one label column
    name = name or out.name

    metadata = _bundle_metadata(generator, family, meta, record, label_names, name, version)
    with atomic_dir(out, may_replace=lambda path: _check_bundle_folder(path, overwrite)) as tmp:
        for sub in ("configs", "models", "docs"):
            (tmp / sub).mkdir()
        weights = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
        atomic_torch_save(weights, tmp / "models/model.pt")
        if generator.num_labels:
            pool = meta_label_pool(meta, int(generator.num_labels), gen_file)
            np.save(tmp / LABEL_POOL_FILE, np.ascontiguousarray(pool, dtype=np.float32), allow_pickle=False)
        (tmp / "configs/metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        inference = inference_config(generator, label_names, int(num_samples), int(seed))
        (tmp / "configs/inference.json").write_text(json.dumps(inference, indent=2) + "\n")
        (tmp / "configs/logging.conf").write_text(LOGGING_CONF)
        (tmp / "docs/README.md").write_text(bundle_readme(metadata, name))
    return out


def _bundle_metadata(
    generator: Any,
    family: str,
    meta: dict[str, Any],
    record: dict[str, Any],
    label_names: list[str] | None,
    name: str,
    version: str,
) -> dict[str, Any]:
    """``configs/metadata.json`` of a bundle: MONAI's metadata schema (what it is, for what, from which data,
    its inputs and outputs) plus a ``medgan_aug`` section (family, architecture, labels, seeding, the run)."""
    run_info = {
        k: meta.get(k)
        for k in ("iterations", "seed", "ema_decay", "fraction", "subset_seed", "conditional")
        if k in meta
    }
    training_data = training_data_record(meta, record)
    kind = "conditional" if generator.num_labels else "unconditional"
    metadata = {
        "schema": METADATA_SCHEMA,
        "version": str(version),
        "changelog": {str(version): "exported by medgan-aug export-bundle"},
        **package_versions(),
        "name": name,
        "task": f"Generate synthetic {generator.image_size}x{generator.image_size} chest X-rays "
        f"({training_data['flag'] or 'MedMNIST'})",
        "description": f"A {kind} {FAMILY_TEXT[family]['name']} generator trained with medgan_aug on "
        f"{training_data['num_images']} real training images ({training_data['flag']}); it makes "
        "synthetic images (with their finding labels when conditional) for data augmentation.",
        "authors": "medgan_aug (model trained and exported by its user)",
        "copyright": "see the licences of the training data below",
        "intended_use": "Research on data augmentation for chest X-ray classifiers. Not for clinical use: "
        "synthetic images are not diagnostic and the labels are conditioning inputs, not findings read "
        "from the images.",
        "data_source": training_data["source"],
        "data_type": "npz (MedMNIST format)",
        "training_data": training_data,
        "references": [
            *FAMILY_TEXT[family]["references"],
            training_data["citation"],
            training_data["medmnist"]["citation"],
        ],
        "network_data_format": network_data_format(generator, label_names),
        "medgan_aug": {
            "family": family,
            "arch": generator.arch,
            "label_names": label_names,
            "label_sampler": "joint" if generator.num_labels else None,
            "chunk_size": CHUNK_SIZE,
            "seeding": "item i depends only on (seed, i): latents and labels of chunk k = i // chunk_size "
            "come from medgan_aug.data.chunk_generator(seed, k)",
            "run": run_info,
            "training_config": record.get("config", {}),
        },
    }
    metadata["references"] = [r for r in metadata["references"] if r]
    metadata["medgan_aug"]["training_config"].pop("out", None)  # a local path of the exporting machine
    metadata["medgan_aug"]["training_config"].pop("path", None)

    return metadata


def _check_bundle_folder(out: Path, overwrite: bool) -> None:
    check_output_folder(out, overwrite, bundle_problem, "bundle folder", "a bundle written by export-bundle")
