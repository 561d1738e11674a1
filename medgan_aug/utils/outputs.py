"""What ``overwrite`` may replace: only what medgan_aug wrote, never a user's other files.

An output folder is written whole and moved into place (:func:`medgan_aug.utils.atomic.atomic_dir`), which
replaces whatever was at its path. :func:`check_output_folder` decides, before the work and again just before
the move, whether that is allowed: an absent path or an empty folder always; a folder the writer recognises
as one of its own (``ours(folder)`` returns None) with ``overwrite``; anything else (a file, a folder holding
other files) never.

An output file (``generate``'s ``.npz``) is written beside its path and moved into place
(:func:`medgan_aug.utils.atomic.atomic_path`). :func:`check_output_file` decides the same way: an absent
path always; a regular file the writer recognises as one of its own (a ``.npz`` carrying the writer's
marker, :func:`medgan_aug.utils.npz_stream.npz_writer`) with ``overwrite``; anything else (a user's own
file such as a MedMNIST download, a folder, a symbolic link) never, ``overwrite`` or not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from medgan_aug.utils.errors import OutputNotOursError

__all__ = ["check_output_folder", "check_output_file", "files_under", "unknown_files"]


def check_output_folder(
    path: str | os.PathLike,
    overwrite: bool,
    ours: Callable[[Path], str | None],
    what: str,
    replaceable: str,
) -> None:
    """Raise unless a folder may be written at ``path``.

    Args:
        path: the output folder.
        overwrite: whether the caller asked to replace an existing output.
        ours: ``folder -> None`` when ``folder`` is an output of this writer, else why it is not (``"has no
            configs/metadata.json"``).
        what: how messages name the folder (``"bundle folder"``).
        replaceable: what ``overwrite`` replaces, for messages (``"a bundle written by export-bundle"``).

    Raises:
        OutputNotOursError: ``path`` is a file, or a non-empty folder that is not ours (refused even with
            ``overwrite``; the message names the folder and why).
        FileExistsError: ``path`` is one of ours and ``overwrite`` is False.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        reason = "is a file, not a folder"
    elif not any(path.iterdir()):
        return
    else:
        reason = ours(path)
        if reason is None:
            if overwrite:
                return
            raise FileExistsError(f"{what} {path} exists; pass --overwrite (overwrite=True) to replace it")
    raise OutputNotOursError(
        f"{what} {path} {reason}: --overwrite (overwrite=True) replaces only {replaceable} or an empty "
        "folder, so it is left as it is; move its files or choose another output folder"
    )


def check_output_file(
    path: str | os.PathLike,
    overwrite: bool,
    ours: Callable[[Path], str | None],
    what: str,
    replaceable: str,
) -> None:
    """Raise unless a file may be written at ``path``.

    Args:
        path: the output file.
        overwrite: whether the caller asked to replace an existing output.
        ours: ``file -> None`` when the regular file ``file`` is an output of this writer, else why it is
            not (``"has no medgan_aug generate marker (not written by medgan-aug generate)"``).
        what: how messages name the file (``"--out"``, ``"output file"``).
        replaceable: what ``overwrite`` replaces, for messages (``"a .npz written by medgan-aug generate"``).

    Raises:
        OutputNotOursError: ``path`` is a folder, a symbolic link or another non-regular file, or a file
            that is not ours (refused even with ``overwrite``; the message names the file and why).
        FileExistsError: ``path`` is one of ours and ``overwrite`` is False.
    """
    path = Path(path)
    if path.is_symlink():
        reason = "is a symbolic link"
    elif not path.exists():
        return
    elif path.is_dir():
        reason = "is a folder, not a file"
    elif not path.is_file():
        reason = "is not a regular file"
    else:
        reason = ours(path)
        if reason is None:
            if overwrite:
                return
            raise FileExistsError(f"{what} {path} exists; pass --overwrite (overwrite=True) to replace it")
    raise OutputNotOursError(
        f"{what} {path} {reason}: --overwrite (overwrite=True) replaces only {replaceable}, so it is left as "
        "it is; move it or choose another output file"
    )


def files_under(folder: str | os.PathLike) -> list[str]:
    """Every file (and link) under ``folder`` as a sorted ``/``-separated relative path; links are not followed."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        found += [(base / name).as_posix() for name in files]
        found += [(base / name).as_posix() for name in dirs if os.path.islink(os.path.join(root, name))]
    return sorted(found)


def unknown_files(names: Iterable[str], known: Callable[[str], bool], shown: int = 3) -> str | None:
    """``"holds other files: a, b, c (and 4 more)"`` for the names ``known`` rejects; None when there are none."""
    other = [name for name in names if not known(name)]
    if not other:
        return None
    more = f" (and {len(other) - shown} more)" if len(other) > shown else ""
    return f"holds files medgan_aug does not write there: {', '.join(other[:shown])}{more}"
