"""Locks between processes that share a results folder: one lock file per piece of work.

Several processes may work in one folder (a study started twice, overlapping ``--shard``\\ s, array jobs on
a shared disk). Each piece of work (a GAN, a classifier run, an evaluation, the summary) is done under
its own lock, so no two processes do the same thing at once, and a process that finds a lock taken can
skip that work and come back to it (:func:`work_lock` with ``wait=False``, then ``wait=True``).

The locks are :class:`filelock.FileLock`, which on Linux and macOS is :class:`filelock.UnixFileLock`: an
``flock(2)`` on the lock file. The kernel holds such a lock for the open file, not for the file's name,
and drops it when the holder's process ends however it ends (an exception, Ctrl-C, SIGKILL, the OOM
killer), so a killed holder never leaves a stale lock behind and no lock needs a timeout or a PID check.
On a network file system that is as good as its ``flock``: Linux NFS clients map it onto NFS byte-range
locks, which the server frees when the client goes away.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

__all__ = ["work_lock"]


@contextmanager
def work_lock(path: str | os.PathLike, *, wait: bool) -> Iterator[bool]:
    """Hold the lock at ``path`` while the block runs, if this process can have it.

    Args:
        path: the lock file (its folder is created); one file per piece of work.
        wait: wait for another process to release the lock (True), or give up at once (False).

    Yields:
        True while this process holds the lock; False (holding nothing) when another process holds it and
        ``wait`` is False. The caller then skips the work and comes back to it later.

    The lock is not re-entrant across :func:`work_lock` calls: a process must not ask for a lock it
    already holds (it would wait for itself).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
