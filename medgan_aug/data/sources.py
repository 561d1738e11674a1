"""Where a data set comes from: the one translation of data settings into :class:`MedMNISTDataset` arguments.

A run records its data source as the settings it was given (``path``, ``sample``, ``root``/``download``, with
``flag`` and ``size``: the fields of :mod:`medgan_aug.apps.data_settings`). Every command that opens a file
from such settings -- ``train``, ``classify``, ``data info``, and ``report`` reading a run's data back --
goes through :func:`dataset_source`, so a source that one of them accepts the others accept too: a
packaged sample, a local file (a relative one looked for in the given folders too) or medmnist's official
file under a root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medgan_aug.utils.errors import MedMNISTFileError

__all__ = ["dataset_source", "require_images"]


def dataset_source(
    settings: Mapping[str, Any],
    *,
    search: Sequence[str | os.PathLike] = (),
    fallback: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The keyword arguments of :class:`~medgan_aug.data.MedMNISTDataset` (less ``split``) for data settings.

    Args:
        settings: a mapping with ``flag`` and ``size`` and at most one source: ``sample`` (a packaged
            sample), ``path`` (a MedMNIST-format file) or ``root``/``download`` (medmnist's official file;
            the default when neither ``sample`` nor ``path`` is set). Other keys are ignored, so a run's
            saved settings can be passed whole.
        search: folders a relative ``path`` is also looked for in, after the working directory (a run's
            folder and its parent, where a recorded relative path may have pointed from).
        fallback: a file to use when a relative ``path`` is found nowhere (e.g. the absolute path a run
            recorded of the file it read).

    Returns:
        ``{"flag", "size"}`` plus ``{"sample"}``, ``{"path"}`` or ``{"root", "download"}``.

    Raises:
        ValueError: more than one source is set (``sample``, ``path``, ``root``/``download``).
        FileNotFoundError: a relative ``path`` with ``search`` folders is found in none of them (the message
            lists where it looked).
    """
    kwargs: dict[str, Any] = {"flag": settings.get("flag") or "chestmnist", "size": settings.get("size")}
    sample, path = settings.get("sample"), settings.get("path")
    official = [f"{key} {settings[key]}" for key in ("root", "download") if settings.get(key)]
    given = [f"{key} {settings[key]}" for key in ("sample", "path") if settings.get(key)] + official
    if len(given) > 1 and (sample or path):
        raise ValueError(f"give one data source (sample, path, or root/download), got {', '.join(given)}")
    if sample:
        return {**kwargs, "sample": sample}
    if path:
        return {**kwargs, "path": _find_file(Path(path), search, fallback)}
    return {**kwargs, "root": settings.get("root"), "download": bool(settings.get("download", False))}


def _find_file(path: Path, search: Sequence[str | os.PathLike], fallback: str | os.PathLike | None) -> Path:
    if path.is_absolute() or (not search and fallback is None):
        return path  # MedMNISTDataset names the file if it is missing
    candidates = [path, *(Path(folder) / path for folder in search)]
    candidates += [] if fallback is None else [Path(fallback)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"the data file {os.fspath(path)!r} was not found (tried {', '.join(map(str, candidates))})"
    )


def require_images(dataset: Any, needed_for: str) -> None:
    """Raise unless a split holds at least one image; the message names the file and the split.

    Args:
        dataset: a :class:`~medgan_aug.data.MedMNISTDataset` (``source``, ``split``, ``len``).
        needed_for: what needs the images, for the message (``"training the GAN"``).

    Raises:
        MedMNISTFileError: the split is empty.
    """
    if len(dataset) == 0:
        raise MedMNISTFileError(
            f"{dataset.source}: the {dataset.split} split has no images ({dataset.split}_images is empty), "
            f"and {needed_for} needs at least one"
        )
