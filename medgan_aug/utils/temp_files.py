"""Finding and removing the temporary files a killed atomic write leaves behind.

:func:`medgan_aug.utils.atomic.atomic_path` writes ``<folder>/<name>`` through a temporary file
``<folder>/.<name>.<random>.tmp<ext>`` (``tempfile.mkstemp``: 8 random characters from ``[a-z0-9_]``;
``<ext>`` is ``<name>``'s suffix unless the writer asked for another) and removes it on any error, but a
process killed during the write (SIGKILL, power loss) leaves it in place. Nothing reads such a file: it is
an orphan once its writer is gone. A run that starts again in a folder removes the orphans of the files it
writes there (:func:`remove_orphan_temp_files`), and only those: a name must match the temporary pattern
*and* belong to one of the given target names, so a user's own dotfiles, files named ``*.tmp`` and the
temporary files of other writers are kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["temp_name_pattern", "orphan_temp_files", "remove_orphan_temp_files"]


def temp_name_pattern(target: str) -> re.Pattern[str]:
    """The names of :func:`~medgan_aug.utils.atomic.atomic_path`'s temporary files for targets ``target``.

    Args:
        target: a regular expression for the final file names (e.g. ``r"ckpt_\\d{8}\\.pt"``), without anchors.

    Returns:
        A compiled pattern that matches ``.<target>.<8 random chars>.tmp`` plus an optional extension.
    """
    return re.compile(rf"^\.(?:{target})\.[a-z0-9_]{{8}}\.tmp(?:\.[A-Za-z0-9]+)?$")


def orphan_temp_files(folder: str | os.PathLike, targets: Iterable[str]) -> list[Path]:
    """Regular files in ``folder`` (not below it) named like a temporary file of one of ``targets``.

    Args:
        folder: the folder to look in (missing: nothing found).
        targets: regular expressions of the final names, as for :func:`temp_name_pattern`.

    Returns:
        The matching paths, sorted; symbolic links and folders are never returned.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    patterns = [temp_name_pattern(t) for t in targets]
    found = []
    for entry in folder.iterdir():
        if any(p.match(entry.name) for p in patterns) and entry.is_file() and not entry.is_symlink():
            found.append(entry)
    return sorted(found)


def remove_orphan_temp_files(folder: str | os.PathLike, targets: Iterable[str]) -> list[Path]:
    """Delete :func:`orphan_temp_files` of ``folder``; returns the paths removed.

    Call it only where no other process writes these targets at the same time (a run owns its folder):
    a live writer's temporary file would be removed under it.
    """
    removed = []
    for path in orphan_temp_files(folder, targets):
        try:
            path.unlink()
        except FileNotFoundError:  # gone meanwhile: nothing to do
            continue
        removed.append(path)
    return removed
