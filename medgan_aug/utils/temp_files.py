"""The names of atomic writes' temporary files, and removing the ones a killed write left behind.

:func:`medgan_aug.utils.atomic.atomic_path` writes ``<folder>/<name>`` through a temporary file beside it,
named by :func:`temp_name`::

    .<head>~<digest>.<random>.tmp<ext>

* ``<head>``: ``<name>`` itself, cut to its first :data:`HEAD_BYTES` bytes (whole characters) when longer;
* ``<digest>``: the first 8 hex digits of the SHA-256 of the whole ``<name>`` (its file-system bytes), so a
  cut head still says which target the file is for;
* ``<random>``: 8 characters from ``[a-z0-9_]``, so concurrent writers of one target never share a name;
* ``<ext>``: ``<name>``'s suffix (or the one the writer asked for) when it is 1 to 16 characters from
  ``[A-Za-z0-9_-]`` after the dot, else nothing: writers that choose the format by the extension
  (``np.savez`` adds ``.npz`` to a name without it) get it, and the name stays short.

A temporary name is therefore at most 1 + 40 + 1 + 8 + 1 + 8 + 4 + 17 = 80 bytes, whatever ``<name>``:
every legal target name (up to 255 bytes, ``NAME_MAX``) can be written. (Before, names were
``.<name>.<random>.tmp<ext>``, about 20 bytes longer than the target: a 246-255 byte name failed.)

The writer holds an exclusive ``flock`` on its temporary file until it is moved into place or removed
(:func:`hold_temp_file`); the kernel drops it when the writer dies. A temporary file nobody holds is an
orphan: nothing reads it. A run that starts again in a folder removes the orphans of the files it writes
there (:func:`remove_orphan_temp_files`), and only those: a name must be a temporary name *of one of the
given targets* and no live writer may hold it, so a user's own dotfiles, files named ``*.tmp``, the
temporary files of other targets and those of a writer still at work are kept. Orphans named in the older
``.<name>.<random>.tmp<ext>`` form are recognised too.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

try:  # POSIX; elsewhere no writer is ever seen as live (remove orphans only where nobody writes)
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "HEAD_BYTES",
    "TEMP_NAME",
    "temp_prefix",
    "temp_ext",
    "temp_name",
    "hold_temp_file",
    "is_temp_name_of",
    "orphan_temp_files",
    "remove_orphan_temp_files",
]


#: Bytes of the target's name kept at the start of a temporary name.
HEAD_BYTES = 40

#: Any temporary name: ``.<head>~<digest>.<random>.tmp<ext>`` (groups ``head`` and ``digest``).
TEMP_NAME = re.compile(
    r"(?s)^\.(?P<head>.+)~(?P<digest>[0-9a-f]{8})\.[a-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9_-]{1,16})?$"
)

_EXT = re.compile(r"\.[A-Za-z0-9_-]{1,16}")
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile.mkstemp's alphabet


def _head(name: str) -> str:
    """``name`` cut to at most :data:`HEAD_BYTES` bytes, at a character boundary."""
    while len(os.fsencode(name)) > HEAD_BYTES:
        name = name[:-1]
    return name


def _digest(name: str) -> str:
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:8]


def temp_prefix(name: str) -> str:
    """``.<head>~<digest>.``: how every temporary name of target ``name`` starts."""
    return f".{_head(name)}~{_digest(name)}."


def temp_ext(ext: str) -> str:
    """``ext`` (``".npz"``) when a temporary name may end in it, else ``""`` (too long, or odd characters)."""
    return ext if _EXT.fullmatch(ext) else ""


def temp_name(name: str, ext: str) -> str:
    """A new random temporary name for target ``name``: ``.<head>~<digest>.<random>.tmp<ext>``.

    Args:
        name: the target's file name (no folder).
        ext: the extension the writer wants (``name``'s suffix, usually); dropped unless :func:`temp_ext`
            keeps it.
    """
    random_part = "".join(secrets.choice(_RANDOM_CHARS) for _ in range(8))
    return f"{temp_prefix(name)}{random_part}.tmp{temp_ext(ext)}"


def hold_temp_file(fd: int) -> None:
    """Mark the temporary file open as ``fd`` as being written: an exclusive ``flock`` until ``fd`` closes.

    :func:`remove_orphan_temp_files` keeps a file held this way. Best effort: a file system without
    ``flock`` leaves it unheld.
    """
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass


def _held(path: Path) -> bool:
    """Whether a live writer holds ``path`` (:func:`hold_temp_file`)."""
    if fcntl is None:  # pragma: no cover
        return False
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _legacy_pattern(target: str) -> re.Pattern[str]:
    """The older temporary names ``.<target>.<8 random>.tmp<ext>`` (``tempfile.mkstemp``) of targets ``target``."""
    return re.compile(rf"^\.(?:{target})\.[a-z0-9_]{{8}}\.tmp(?:\.[A-Za-z0-9]+)?$")


def is_temp_name_of(entry: str, targets: Iterable[str] = (), names: Iterable[str] = ()) -> bool:
    """Whether ``entry`` is a temporary name of one of ``targets`` or ``names``.

    Args:
        entry: a file name (no folder).
        targets: regular expressions of target names (``r"ckpt_\\d{8}\\.pt"``), without anchors. A
            temporary name keeps only :data:`HEAD_BYTES` bytes of its target, so these match targets of
            up to that length (the files a run writes); longer targets go in ``names``.
        names: exact target names, of any length.
    """
    targets, names = list(targets), list(names)
    found = TEMP_NAME.match(entry)
    if found is not None:
        head, digest = found["head"], found["digest"]
        if any(_head(name) == head and _digest(name) == digest for name in names):
            return True
        whole = _digest(head) == digest  # the head is the target's whole name
        if whole and any(re.fullmatch(target, head, flags=re.DOTALL) for target in targets):
            return True
    legacy = [*targets, *(re.escape(name) for name in names)]
    return any(_legacy_pattern(target).match(entry) for target in legacy)


def orphan_temp_files(
    folder: str | os.PathLike, targets: Iterable[str] = (), names: Iterable[str] = ()
) -> list[Path]:
    """Regular files in ``folder`` (not below it) named like a temporary file of one of the targets, that
    no live writer holds.

    Args:
        folder: the folder to look in (missing: nothing found).
        targets, names: the targets, as for :func:`is_temp_name_of`.

    Returns:
        The matching paths, sorted; symbolic links and folders are never returned.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    targets, names = list(targets), list(names)
    found = []
    for entry in folder.iterdir():
        if not is_temp_name_of(entry.name, targets, names):
            continue
        if entry.is_file() and not entry.is_symlink() and not _held(entry):
            found.append(entry)
    return sorted(found)


def remove_orphan_temp_files(
    folder: str | os.PathLike, targets: Iterable[str] = (), names: Iterable[str] = ()
) -> list[Path]:
    """Delete :func:`orphan_temp_files` of ``folder``; returns the paths removed.

    A writer's own temporary file is held from the moment it is created (:func:`hold_temp_file`), so a
    live writer's file is kept, except in the instant between its creation and its ``flock``, and except
    on file systems without ``flock``: call it where the caller expects to be the targets' only writer (a
    run owns its folder; ``generate`` writes its ``--out``).
    """
    removed = []
    for path in orphan_temp_files(folder, targets, names):
        try:
            path.unlink()
        except FileNotFoundError:  # gone meanwhile: nothing to do
            continue
        removed.append(path)
    return removed
