"""Reading a GAN run back for its report: its record (``config.json``), the real data it was trained on, its
losses. Every reader of a run's data goes through :func:`run_data_source`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgan_aug.data.samples import sample_path
from medgan_aug.data.sources import dataset_source

__all__ = ["load_run_record", "run_data_source", "resolve_real_file", "read_losses"]


def load_run_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``<run>/config.json`` as written by :func:`medgan_aug.apps.train_gan`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a GAN run directory (medgan-aug train)")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ValueError(f"{path} lacks the 'config' section of a medgan-aug training run")
    for key in ("flag", "size", "fraction", "subset_seed"):
        if key not in record["config"]:
            raise ValueError(f"{path}: config lacks {key!r}")
    if not (run_dir / "generator.pt").is_file():
        raise FileNotFoundError(
            f"{run_dir / 'generator.pt'} not found: the run has not finished (continue it with "
            f"`medgan-aug train ... --out {run_dir} --resume`)"
        )
    return record


def run_data_source(
    record: dict[str, Any], run_dir: str | os.PathLike, real: str | os.PathLike | None = None
) -> dict[str, Any]:
    """The :class:`MedMNISTDataset` arguments of the data a run was trained on: ``real`` if given, else the
    source its ``config.json`` records (a packaged sample, a file, or medmnist's official file under a root;
    :func:`medgan_aug.data.sources.dataset_source`). A relative recorded path is tried relative to the working
    directory, the run directory and its parent, then as the absolute path the trainer read."""
    cfg = record["config"]
    if real is not None:
        if not Path(real).is_file():
            kind = "is a folder, not a file" if Path(real).is_dir() else "does not exist"
            raise FileNotFoundError(f"--real file {real} {kind}")
        return dataset_source({"flag": cfg["flag"], "size": int(cfg["size"]), "path": Path(real)})
    run_dir = Path(run_dir)
    try:
        kwargs = dataset_source(
            {**cfg, "size": int(cfg["size"])},
            search=[run_dir, run_dir.parent],
            fallback=record.get("data", {}).get("source"),
        )
    except FileNotFoundError as err:
        raise FileNotFoundError(f"the run's real data: {err}; pass it with --real FILE.npz") from err
    if "path" in kwargs and not Path(kwargs["path"]).is_file():
        raise FileNotFoundError(
            f"the run's real data file {kwargs['path']} (config.json) was not found; pass it with --real FILE.npz"
        )
    return kwargs


def resolve_real_file(
    record: dict[str, Any], run_dir: str | os.PathLike, real: str | os.PathLike | None
) -> Path | None:
    """The real ``.npz`` a run is compared with (:func:`run_data_source`): ``real``, the recorded file, the
    packaged sample's file; None for medmnist's official file (found under the recorded root)."""
    kwargs = run_data_source(record, run_dir, real)
    if "sample" in kwargs:
        return sample_path(kwargs["sample"])
    return kwargs.get("path")


def read_losses(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Columns of a trainer ``losses.csv`` as float arrays (header row names them)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (the trainer writes losses.csv)")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path} has no loss rows")
    header = lines[0].split(",")
    try:
        rows = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]], dtype=float)
    except ValueError as err:
        raise ValueError(f"{path} has a non-numeric row: {err}") from err
    if rows.ndim != 2 or rows.shape[1] != len(header):
        raise ValueError(f"{path}: rows do not match the header {header}")
    return {name: rows[:, j] for j, name in enumerate(header)}
