"""The project's exception hierarchy: every error medgan_aug raises on purpose derives from
:class:`MedganAugError`, so callers (and the ``medgan-aug`` command line, which turns each into one line and
exit code 1) can catch them in one place.

Errors that are also bad input keep the built-in base a Python user expects (``ValueError`` for a bad file's
content, ``FloatingPointError`` for a diverged loss), so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = [
    "MedganAugError",
    "CheckpointError",
    "CorruptFileError",
    "UnsafeFileError",
    "ResumeError",
    "MedMNISTFileError",
    "ModelFileError",
    "GeneratorFileError",
    "TrainingDivergenceError",
    "GANDivergenceError",
    "InsufficientDiskSpaceError",
    "OutputNotOursError",
]


class MedganAugError(Exception):
    """Base of every error medgan_aug raises on purpose; the message names the file or argument."""


class CheckpointError(MedganAugError, RuntimeError):
    """A checkpoint (or model file) cannot be used; the message names the file."""


class CorruptFileError(CheckpointError):
    """The file is truncated or otherwise unreadable (e.g. the process was killed while writing it)."""


class UnsafeFileError(CheckpointError):
    """The file's pickle asks for objects outside ``torch.load(weights_only=True)``'s allow-list: refused."""


class ResumeError(MedganAugError, ValueError):
    """A run cannot be resumed as asked (other settings, other data, an impossible ``iterations``); the
    message says what differs and what to run instead."""


class MedMNISTFileError(MedganAugError, ValueError):
    """A MedMNIST ``.npz`` file is missing, corrupt, or does not have the MedMNIST layout."""


class ModelFileError(CheckpointError, ValueError):
    """A model file (generator, classifier) is missing pieces, has the wrong format/version/kind, or cannot
    be read; the message names the file."""


#: The name of :class:`ModelFileError` from when only generators had model files.
GeneratorFileError = ModelFileError


class TrainingDivergenceError(MedganAugError, FloatingPointError):
    """A training loss became NaN or infinite; the message names the step (no optimiser step was taken)."""


class GANDivergenceError(TrainingDivergenceError, RuntimeError):
    """A GAN loss became NaN or infinite; the message names the iteration and the losses."""


class InsufficientDiskSpaceError(MedganAugError, OSError):
    """An output would not fit in the free space of its disk; refused before anything is written. The message
    names the file and both sizes (``errno`` is None: nothing failed yet)."""


class OutputNotOursError(MedganAugError, FileExistsError):
    """An output path holds something medgan_aug did not write (a file, a folder with other files): it is never
    replaced, ``overwrite`` or not. The message names the path and why."""
