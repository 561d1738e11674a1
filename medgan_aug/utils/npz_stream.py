"""Write a ``.npz`` larger than memory: each array is streamed into its ``.npy`` member, block by block.

``np.savez`` needs every array whole in memory. A ``.npz`` is a zip of ``.npy`` files, and a ``.npy`` file is
a short header (dtype, shape) followed by the raw C-order bytes, so an array whose shape is known up front can
be written one block of rows at a time: :meth:`NpzStreamWriter.stream` writes the header, then each block
as it comes, into one zip member. Members are stored (``ZIP_STORED``), not deflated, so the size of the
file is known before it is written (:func:`npz_size`; checked against the free disk space by
:func:`medgan_aug.utils.disk_space.require_free_space`). ``np.load`` reads stored and deflated members
alike (``np.savez`` itself stores, ``np.savez_compressed`` deflates); members over 4 GiB use zip64.
Members carry a fixed date (1980-01-01), so the same arrays always give the same file, byte for byte.

A writer can sign its file (:meth:`NpzStreamWriter.mark`): a small member :data:`WRITER_MEMBER` names it
(``"medgan_aug generate"``), and :func:`npz_writer` reads the name back, so ``overwrite`` can tell a file
medgan_aug wrote from a user's own ``.npz`` (:func:`medgan_aug.utils.outputs.check_output_file`).
Readers that look members up by name (``np.load``, ``medmnist``) are not affected by the extra member.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

__all__ = [
    "ArraySpec",
    "WRITER_MEMBER",
    "npy_header",
    "npz_size",
    "ArrayStream",
    "NpzStreamWriter",
    "npz_writer",
    "signed_by",
    "writer_spec",
]


#: An array's dtype and full shape, known before its rows are written.
ArraySpec = tuple[np.dtype, tuple[int, ...]]

# Bounds of the zip structures around one member (local header 30 + central header 46 + zip64 extras of
# 20 + 28 bytes, plus the name twice) and at the end of the file (end records 22 + zip64 56 + 20).
_MEMBER_OVERHEAD = 30 + 46 + 20 + 28
_END_OVERHEAD = 22 + 56 + 20

#: The member (``<name>.npy``, a 0-d string array) that names the medgan_aug writer of a ``.npz``.
WRITER_MEMBER = "medgan_aug_writer"

# A writer's name is a few words: a larger member is not a marker (and is not read).
_WRITER_MAX_BYTES = 4096

# Members carry this date rather than the time of writing: the same arrays give the same bytes.
_MEMBER_DATE = (1980, 1, 1, 0, 0, 0)


def npy_header(dtype: np.dtype | type | str, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header (format 1.0, C order) of an array of ``dtype`` and ``shape``, as ``np.save`` writes it."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise ValueError(f"cannot stream an array of Python objects (dtype {dtype})")
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": tuple(int(n) for n in shape),
    }
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npz_size(arrays: Mapping[str, ArraySpec]) -> int:
    """An upper bound (exact to ~100 bytes per member) of the size of the ``.npz`` holding ``arrays``.

    Args:
        arrays: member name (without ``.npy``) -> ``(dtype, shape)``.
    """
    total = _END_OVERHEAD
    for name, (dtype, shape) in arrays.items():
        member = f"{name}.npy".encode()
        total += _MEMBER_OVERHEAD + 2 * len(member) + len(npy_header(dtype, shape))
        total += math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    return total


def writer_spec(writer: str) -> ArraySpec:
    """The :data:`ArraySpec` of the :meth:`NpzStreamWriter.mark` member for ``writer``, for :func:`npz_size`."""
    return np.asarray(writer, dtype=str).dtype, ()


def _member(name: str) -> zipfile.ZipInfo:
    """The zip entry of array ``name``: ``name.npy``, stored, with a fixed date so equal arrays give equal files."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=_MEMBER_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


class ArrayStream:
    """The open ``.npy`` member of one array: :meth:`write` appends rows, in order, until ``shape[0]``."""

    def __init__(self, fh: BinaryIO, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self._fh, self.name, self.dtype, self.shape = fh, name, dtype, shape
        self.rows_written = 0

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` (dtype and trailing shape as declared) after the rows written so far.

        Raises:
            ValueError: wrong dtype or trailing shape, or more rows than ``shape[0]``.
        """
        rows = np.asarray(rows)
        if rows.dtype != self.dtype or rows.shape[1:] != self.shape[1:]:
            raise ValueError(
                f"{self.name}: rows must be {self.dtype} (n, {', '.join(map(str, self.shape[1:]))}), "
                f"got {rows.dtype} {rows.shape}"
            )
        if self.rows_written + len(rows) > self.shape[0]:
            raise ValueError(
                f"{self.name}: {self.rows_written + len(rows)} rows written, shape says {self.shape[0]}"
            )
        self._fh.write(memoryview(np.ascontiguousarray(rows)).cast("B"))
        self.rows_written += len(rows)

    def write_from(self, fh: BinaryIO, block_bytes: int = 1 << 22) -> None:
        """Append the rows a binary file holds from its current position to its end (raw C-order bytes of
        this array's dtype and trailing shape, e.g. rows spooled there while another member was written),
        ``block_bytes`` at a time."""
        row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])
        rows = max(1, block_bytes // max(row_bytes, 1))
        while block := fh.read(rows * row_bytes):
            if len(block) % row_bytes:
                raise ValueError(f"{self.name}: the spooled rows end with a partial row")
            self.write(np.frombuffer(block, self.dtype).reshape(-1, *self.shape[1:]))


class NpzStreamWriter:
    """A ``.npz`` written member by member; arrays given whole or streamed in blocks of rows.

    Args:
        file: a path or a binary file open for writing (seekable: each member's header is completed
            after its data, as ``zipfile`` does).

    Example::

        with NpzStreamWriter(path) as npz, npz.stream("images", np.uint8, (n, 28, 28)) as images:
            for block in blocks:
                images.write(block)
    """

    def __init__(self, file: str | os.PathLike | BinaryIO) -> None:
        self._zip = zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    @contextmanager
    def stream(
        self, name: str, dtype: np.dtype | type | str, shape: tuple[int, ...]
    ) -> Iterator[ArrayStream]:
        """Open member ``name.npy`` for an array of ``dtype`` and ``shape``; yield its :class:`ArrayStream`.

        Raises:
            ValueError: fewer rows than ``shape[0]`` were written (checked when the block ends without error).
        """
        dtype, shape = np.dtype(dtype), tuple(int(n) for n in shape)
        header = npy_header(dtype, shape)
        size = len(header) + math.prod(shape) * dtype.itemsize
        with self._zip.open(_member(name), "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as fh:
            fh.write(header)
            stream = ArrayStream(fh, name, dtype, shape)
            yield stream
            if stream.rows_written != shape[0]:
                raise ValueError(f"{name}: {stream.rows_written} rows written, shape says {shape[0]}")

    def write(self, name: str, array: np.ndarray) -> None:
        """Write a whole (small) array as member ``name.npy``, as ``np.savez`` does."""
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
        self._zip.writestr(_member(name), buffer.getvalue())

    def mark(self, writer: str) -> None:
        """Sign the file: member :data:`WRITER_MEMBER` holds ``writer`` (``"medgan_aug generate"``)."""
        self.write(WRITER_MEMBER, np.asarray(writer, dtype=str))

    def close(self) -> None:
        """Write the zip's central directory; the file is complete."""
        self._zip.close()

    def __enter__(self) -> NpzStreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def npz_writer(path: str | os.PathLike) -> str | None:
    """The writer a ``.npz`` names in its :data:`WRITER_MEMBER` member (:meth:`NpzStreamWriter.mark`).

    Only that member is read (at most 4 KiB, without pickles), whatever the file holds otherwise.

    Returns:
        The writer's name; None when the file is not a readable zip or has no such (0-d string) member.

    Raises:
        OSError: the file cannot be opened or read (missing, no permission, a read error).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(f"{WRITER_MEMBER}.npy")
            except KeyError:
                return None
            if info.file_size > _WRITER_MAX_BYTES:
                return None
            with archive.open(info) as fh:
                value = np.lib.format.read_array(fh, allow_pickle=False)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ):
        return None  # not a zip, a damaged or encrypted member, or not an array: not signed
    if value.dtype.kind != "U" or value.shape != ():
        return None
    return str(value)


def signed_by(path: str | os.PathLike, writer: str, writer_name: str) -> str | None:
    """None when the ``.npz`` at ``path`` is signed by ``writer`` (:func:`npz_writer`), else why not (for the
    ``ours`` check of :func:`medgan_aug.utils.outputs.check_output_file`).

    Args:
        path: the file.
        writer: the expected :data:`WRITER_MEMBER` value.
        writer_name: how messages name that writer (``"medgan-aug generate"``).
    """
    try:
        found = npz_writer(path)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if found == writer:
        return None
    if found is not None:
        return f"was written by {found}, not by {writer_name}"
    return f"was not written by {writer_name} (it has no {WRITER_MEMBER} member)"
