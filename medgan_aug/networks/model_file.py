"""The one model-file format, for every network medgan_aug saves (the EMA generator ``generator.pt``, a
``medgan-aug classify`` run's ``classifier.pt``, the metrics' feature extractor)::

    {"format": "medgan_aug.model", "version": 2,
     "network": "DCGANGenerator",   # a key of NETWORKS: the class that rebuilds it
     "arch": {...},                 # its constructor arguments (``network.arch``)
     "state_dict": {...},           # CPU tensors
     "meta": {...}}                 # plain data: None, bool, int, float, str, tensors, lists, str-keyed dicts

A file is written atomically (:func:`medgan_aug.utils.serialization.atomic_torch_save`: temporary file,
fsync, ``os.replace``; modes follow the umask) and read only through
:func:`medgan_aug.utils.serialization.safe_torch_load` (``torch.load(weights_only=True)``), so a crafted
file cannot run code. Every error names the file (:class:`medgan_aug.utils.errors.ModelFileError`).

Version 1 was two formats, ``"medgan_aug.generator"`` (``generator.pt``) and ``"medgan_aug.classifier"``
(``classifier.pt``); :func:`load_model` still reads both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.networks.classifiers import CLASSIFIERS, ResNet18Classifier, SmallCNN
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.utils.errors import CheckpointError, ModelFileError
from medgan_aug.utils.serialization import atomic_torch_save, safe_torch_load

__all__ = [
    "NETWORKS",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "save_model",
    "load_model",
    "save_generator",
    "load_generator",
    "load_diffusion_generator",
    "load_any_generator",
    "GENERATOR_FAMILIES",
    "generator_family",
    "save_classifier",
    "load_classifier",
    "GENERATOR_FILE",
    "GENERATOR_FORMAT",
    "GENERATOR_VERSION",
    "resolve_generator_file",
    "check_generator_protocol",
]


#: The networks a model file can hold, by the name it records; each has an ``arch`` property (its
#: constructor arguments).
NETWORKS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (DCGANGenerator, DCGANDiscriminator, SmallCNN, ResNet18Classifier, DiffusionGenerator)
}


#: The generator families (``GANConfig.model``) and the network a model file of each holds. Every one follows
#: the generator protocol (:func:`check_generator_protocol`), so :func:`load_any_generator` serves both.
GENERATOR_FAMILIES: dict[str, type[nn.Module]] = {"dcgan": DCGANGenerator, "ddpm": DiffusionGenerator}


MODEL_FORMAT = "medgan_aug.model"


MODEL_VERSION = 2


#: Old names of :data:`MODEL_FORMAT` and :data:`MODEL_VERSION` (generator files are model files).
GENERATOR_FORMAT, GENERATOR_VERSION = MODEL_FORMAT, MODEL_VERSION


_LEGACY_FORMATS = ("medgan_aug.generator", "medgan_aug.classifier")  # version 1, one format per kind


_LOADER_OF = {
    "DCGANGenerator": "load_generator",
    "DiffusionGenerator": "load_diffusion_generator",
    "SmallCNN": "load_classifier",
    "ResNet18Classifier": "load_classifier",
}


def _plain(value: Any, where: str) -> Any:
    """Convert meta values to weights-only-safe plain types (numpy -> lists/numbers, Path -> str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} has a {type(value).__name__}; model file meta holds plain types only")


def save_model(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``model`` to a self-describing model file, atomically (layout in the module docstring).

    Args:
        model: an instance of one of :data:`NETWORKS` (exactly that class, so the file rebuilds it).
        path: destination file; its folder is created if needed.
        meta: plain data about the model (flag, task, label_names, seed, ...); numpy values become
            numbers and nested lists, paths strings.

    Returns:
        The path written.

    Raises:
        TypeError: ``model`` is not one of :data:`NETWORKS`, or ``meta`` holds something else than
            plain types.
    """
    name = type(model).__name__
    if NETWORKS.get(name) is not type(model):
        raise TypeError(f"a model file holds one of {', '.join(NETWORKS)}; got a {type(model).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict or None, got {type(meta).__name__}")
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "network": name,
        "arch": _plain(model.arch, "arch"),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": _plain(meta or {}, "meta"),
    }
    return atomic_torch_save(payload, path)


def _legacy_network(payload: dict, path: Path) -> tuple[str, dict]:
    """(network, arch) of a version-1 generator or classifier file."""
    arch = dict(payload["arch"])
    if payload["format"] == "medgan_aug.generator":
        return "DCGANGenerator", arch
    if set(arch) != {"name", "in_channels", "num_outputs", "image_size"} or arch["name"] not in CLASSIFIERS:
        raise ModelFileError(f"classifier file {path} has a malformed 'arch' entry {arch!r}")
    return CLASSIFIERS[arch.pop("name")].__name__, arch


def _read_payload(payload: Any, path: Path) -> tuple[str, dict, dict, dict]:
    """Check a loaded file's layout; return (network, arch, state_dict, meta) for every version."""
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt != MODEL_FORMAT and fmt not in _LEGACY_FORMATS:
        raise ModelFileError(
            f"{path} is not a medgan_aug model file (format {fmt!r}, expected {MODEL_FORMAT!r}); make one "
            "with save_model, save_generator, save_classifier, `medgan-aug train` or `medgan-aug classify`"
        )
    version = payload.get("version")
    if version != (MODEL_VERSION if fmt == MODEL_FORMAT else 1):
        raise ModelFileError(
            f"model file {path} has version {version!r}; this medgan_aug reads {MODEL_FORMAT!r} version "
            f"{MODEL_VERSION} and the version-1 generator and classifier files"
        )
    for key in ("arch", "state_dict") + (("network",) if fmt == MODEL_FORMAT else ()):
        if key not in payload:
            raise ModelFileError(f"model file {path} lacks its {key!r} entry")
    if not isinstance(payload["arch"], dict) or not isinstance(payload["state_dict"], dict):
        raise ModelFileError(f"model file {path}: 'arch' and 'state_dict' must be dicts")
    if not all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values()):
        raise ModelFileError(f"model file {path}: 'state_dict' holds something else than tensors")
    meta = payload.get("meta") or {}
    if not isinstance(meta, dict):
        raise ModelFileError(f"model file {path}: 'meta' must be a dict, got {type(meta).__name__}")
    if fmt == MODEL_FORMAT:
        network, arch = payload["network"], dict(payload["arch"])
    else:
        network, arch = _legacy_network(payload, path)
    if network not in NETWORKS:
        raise ModelFileError(
            f"model file {path} holds an unknown network {network!r}; this medgan_aug rebuilds "
            f"{', '.join(NETWORKS)}"
        )
    return network, arch, payload["state_dict"], meta


def load_model(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    expect: type[nn.Module] | tuple[type[nn.Module], ...] | None = None,
) -> tuple[nn.Module, dict]:
    """Load a model file (any version) through ``torch.load(weights_only=True)`` and rebuild its network.

    Args:
        path: a file written by :func:`save_model` (or a version-1 generator/classifier file).
        map_location: device for the weights, the returned model and the tensors in ``meta``.
        expect: the class (or classes) the file must hold; another network is refused before it is built.

    Returns:
        ``(model in eval mode on map_location, meta)``.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: corrupt or truncated, refused as unsafe (a pickle that would run code), not a
            model file, an unsupported version, a missing entry, another network than ``expect``, or
            weights that do not fit the recorded architecture. Every message names the file.
    """
    path = Path(path)
    try:
        payload = safe_torch_load(path, map_location=map_location, what="model file")
    except CheckpointError as err:
        raise ModelFileError(str(err)) from err
    network, arch, state_dict, meta = _read_payload(payload, path)
    cls = NETWORKS[network]
    if expect is not None and not issubclass(cls, expect):
        wanted = expect if isinstance(expect, tuple) else (expect,)
        generators = tuple(GENERATOR_FAMILIES.values())
        family_clash = issubclass(cls, generators) and all(issubclass(c, generators) for c in wanted)
        described = _described if family_clash else (lambda name: name)
        raise ModelFileError(
            f"{path} holds a {described(network)}, not a {' or '.join(described(c.__name__) for c in wanted)}; "
            f"load it with {_LOADER_OF.get(network, 'load_model')}"
        )
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG
            model = cls(**arch)
        model.load_state_dict(state_dict)
    except (TypeError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())  # one line: torch lists missing keys on several
        raise ModelFileError(f"model file {path}: weights do not fit its {network} {arch}: {reason}") from err
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval(), meta


def _described(network: str) -> str:
    """A generator's network name with its family: ``"DCGANGenerator (a --model dcgan generator)"``."""
    family = next((f for f, cls in GENERATOR_FAMILIES.items() if cls.__name__ == network), None)
    return network if family is None else f"{network} (a --model {family} generator)"


def generator_family(generator: nn.Module) -> str:
    """The family (``"dcgan"`` or ``"ddpm"``) of a generator; TypeError for any other module."""
    for family, cls in GENERATOR_FAMILIES.items():
        if type(generator) is cls:
            return family
    raise TypeError(
        f"{type(generator).__name__} is none of the generator families {', '.join(GENERATOR_FAMILIES)}"
    )


def save_generator(generator: DCGANGenerator, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write a generator's model file (:func:`save_model` for a :class:`DCGANGenerator`).

    Args:
        generator: the (EMA) generator to store.
        path: destination file.
        meta: plain data about it (label_names, train_labels, flag, task, fraction, subset_seed, ...).
    """
    if not isinstance(generator, DCGANGenerator):
        raise TypeError(f"generator must be a DCGANGenerator, got {type(generator).__name__}")
    return save_model(generator, path, meta)


def load_generator(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[DCGANGenerator, dict]:
    """Load a generator's model file; a file holding another network is refused (:func:`load_model`)."""
    return load_model(path, map_location, expect=DCGANGenerator)  # type: ignore[return-value]


def load_diffusion_generator(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[DiffusionGenerator, dict]:
    """Load a diffusion generator's model file (``--model ddpm``); any other network is refused."""
    return load_model(path, map_location, expect=DiffusionGenerator)  # type: ignore[return-value]


def load_any_generator(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Load the generator of a run of either family (:data:`GENERATOR_FAMILIES`); other networks are refused.

    What :meth:`medgan_aug.data.SyntheticDataset.from_run` uses: both families follow the generator protocol.
    """
    return load_model(path, map_location, expect=tuple(GENERATOR_FAMILIES.values()))


def save_classifier(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write a trained classifier's model file (:func:`save_model` for a :class:`SmallCNN` or
    :class:`ResNet18Classifier`). Put in ``meta`` what makes feature distances comparable between runs
    (e.g. "flag", "task", "label_names", "train_iterations", "seed").
    """
    if not isinstance(model, tuple(CLASSIFIERS.values())):
        raise TypeError(f"model {type(model).__name__} is not a classifier; build it with build_classifier()")
    return save_model(model, path, meta)


def load_classifier(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Load a classifier's model file; a file holding another network is refused (:func:`load_model`)."""
    return load_model(path, map_location, expect=tuple(CLASSIFIERS.values()))


GENERATOR_FILE = "generator.pt"


def resolve_generator_file(run_dir_or_file: str | os.PathLike) -> Path:
    """``<run>/generator.pt`` for a run directory, the path itself for a file; FileNotFoundError otherwise."""
    path = Path(run_dir_or_file)
    if path.is_dir():
        path = path / GENERATOR_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"run directory {run_dir_or_file} has no {GENERATOR_FILE}: has training finished?"
            )
    elif not path.is_file():
        raise FileNotFoundError(f"generator run directory or file {run_dir_or_file} does not exist")
    return path


def check_generator_protocol(generator: Any) -> None:
    """TypeError unless ``generator`` has the medgan_aug generator protocol (callable, sizes as attributes)."""
    missing = [
        a for a in ("image_size", "latent_dim", "num_labels", "out_channels") if not hasattr(generator, a)
    ]
    if not callable(generator) or missing:
        raise TypeError(
            f"generator must be a callable module with image_size, latent_dim, num_labels and out_channels "
            f"(the medgan_aug generator protocol); {type(generator).__name__} lacks {missing or 'a __call__'}"
        )
