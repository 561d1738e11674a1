"""Reading files the project did not write: content digests."""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_md5"]


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
