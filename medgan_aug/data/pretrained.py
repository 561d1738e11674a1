"""Pretrained generators shipped inside the package, the way torchvision ships named weights.

Each is the EMA generator of one ``medgan-aug train`` run with the default recipe (conditional DCGAN,
Radford et al. 2016, with ADA, Karras et al. 2020, and the AC-GAN loss, Odena et al. 2017) on the **whole**
training split of a data set, stored as a model file (:mod:`medgan_aug.networks.model_file`) whose floating
weights are float16 (:func:`pack_pretrained`; :func:`~medgan_aug.networks.model_file.load_model` upcasts them
to the float32 network). The file is checked against its MD5 on every load, like the packaged sample
(:mod:`medgan_aug.data.samples`), and its model card (data, licence, recipe, report numbers, what it must not be
used for) sits beside it in ``pretrained_files/``.

Use: ``SyntheticDataset.pretrained("nih1000")``, or ``--pretrained nih1000`` instead of ``--run`` on
``medgan-aug generate``, ``classify`` and ``report``. A generator that saw every training image must not serve a
low-data study on the same data: its images carry information from images the study withholds.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from medgan_aug.networks.model_file import GENERATOR_FILE, load_any_generator, save_model
from medgan_aug.utils.atomic import atomic_path, atomic_write_text
from medgan_aug.utils.errors import ModelFileError
from medgan_aug.utils.files import file_md5

__all__ = [
    "PRETRAINED",
    "pretrained_dir",
    "pretrained_path",
    "pretrained_card",
    "pretrained_run_folder",
    "pack_pretrained",
]

#: name -> file in ``medgan_aug/data/pretrained_files``, its model card, MD5 and what it was trained on.
PRETRAINED: dict[str, dict[str, Any]] = {
    "nih1000": {
        "file": "nih1000.pt",
        "card": "nih1000.md",
        "md5": "cc7bf4a7df844c8d023528c09b2fa808",
        "description": "conditional DCGAN, 28 px, the 14 ChestMNIST findings, all 691 NIH1000 training images",
    },
    "pneumoniamnist": {
        "file": "pneumoniamnist.pt",
        "card": "pneumoniamnist.md",
        "md5": "7598aa8effd2600badc87c1b4131656b",
        "description": "conditional DCGAN, 28 px, normal/pneumonia, all 4,682 PneumoniaMNIST training images",
    },
}


def _entry(name: str) -> dict[str, Any]:
    if not isinstance(name, str) or name not in PRETRAINED:
        raise ValueError(
            f"unknown pretrained generator {name!r}; the package ships: {', '.join(sorted(PRETRAINED))}"
        )
    return PRETRAINED[name]


def pretrained_dir() -> Path:
    """The installed folder of the pretrained generators and their model cards."""
    return Path(str(resources.files("medgan_aug.data").joinpath("pretrained_files")))


def pretrained_card(name: str) -> Path:
    """The model card (Markdown) of pretrained generator ``name``; ValueError for an unknown name."""
    return pretrained_dir() / _entry(name)["card"]


def pretrained_path(name: str) -> Path:
    """The installed model file of pretrained generator ``name``, checked against its MD5.

    Raises:
        ValueError: no such pretrained generator (the message lists the shipped ones).
        ModelFileError: the file is missing from the installation or altered (MD5 differs).
    """
    entry = _entry(name)
    path = pretrained_dir() / entry["file"]
    if not path.is_file():
        raise ModelFileError(
            f"pretrained generator {name!r}: {path} is missing from this installation; reinstall medgan_aug "
            "(the file ships as package data)"
        )
    actual = file_md5(path)
    if actual != entry["md5"]:
        raise ModelFileError(
            f"pretrained generator {name!r}: {path} has MD5 {actual}, expected {entry['md5']} (altered or "
            "truncated; reinstall medgan_aug)"
        )
    return path


def pretrained_run_folder(name: str, out: str | os.PathLike) -> Path:
    """Make ``out`` a run folder of pretrained generator ``name`` (``config.json`` as its training run wrote
    it, ``generator.pt`` the packaged file), so that what reads a run folder, such as ``medgan-aug report``,
    reads it.

    Raises:
        ValueError: an unknown name, or ``out`` already holds another generator or another run's config.
        ModelFileError: the packaged file fails its MD5 check.
    """
    source = pretrained_path(name)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    record = _run_record(name, source)
    target, config = out / GENERATOR_FILE, out / "config.json"
    if target.exists() and file_md5(target) != PRETRAINED[name]["md5"]:
        raise ValueError(f"--out {out} already holds another {GENERATOR_FILE}; choose an empty folder")
    if config.exists() and json.loads(config.read_text()).get("config") != record.get("config"):
        raise ValueError(f"--out {out} already holds another run's config.json; choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config, json.dumps(record, indent=2) + "\n")
    if not target.exists():
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    return out


def _run_record(name: str, path: Path) -> dict[str, Any]:
    """The training run's ``config.json`` record that :func:`pack_pretrained` stored in the file's meta."""
    _, meta = load_any_generator(path)
    record = meta.get("run_record")
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ModelFileError(
            f"pretrained generator {name!r}: {path} lacks its run record (meta 'run_record')"
        )
    return record


def pack_pretrained(run_dir: str | os.PathLike, dest: str | os.PathLike, half: bool = True) -> Path:
    """Write the package file of a finished training run: its EMA generator with floating weights in float16
    (``half``; other tensors as they are), the generator's meta plus ``run_record`` (the run's ``config.json``)
    and ``weights_dtype``. What ``experiments/pretrained_generators.py pack`` runs.

    Args:
        run_dir: a finished ``medgan-aug train`` run (``config.json`` and ``generator.pt``).
        dest: the file to write (atomically).
        half: store float16 weights (False: float32, as trained).

    Raises:
        FileNotFoundError: the run lacks ``config.json`` or ``generator.pt``.
        ModelFileError: its generator file is unusable.
    """
    run_dir = Path(run_dir)
    config = run_dir / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: {run_dir} is not a finished training run")
    generator, meta = load_any_generator(run_dir / GENERATOR_FILE)
    if half:
        generator = generator.to(torch.float16)
    meta = {
        **meta,
        "run_record": json.loads(config.read_text()),
        "weights_dtype": "float16" if half else "float32",
    }
    return save_model(generator, dest, meta)
