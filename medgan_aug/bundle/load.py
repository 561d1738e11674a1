"""Loading an exported bundle back: its weights, its label pool, and its :class:`SyntheticDataset`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.model_file import generator_family
from medgan_aug.utils.serialization import safe_torch_load

__all__ = ["load_weights", "load_label_pool", "load_bundle_dataset"]


def _described(network: nn.Module) -> str:
    """``DiffusionGenerator (a --model ddpm generator)``, or the class name of another network."""
    try:
        return f"{type(network).__name__} (a --model {generator_family(network)} generator)"
    except TypeError:
        return type(network).__name__


def load_weights(
    network: nn.Module, path: str | os.PathLike, device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a bundle's ``models/model.pt`` (a state_dict, read with ``weights_only=True``) into ``network``.

    Returns:
        ``network`` on ``device``, in eval mode.

    Raises:
        FileNotFoundError: no such file. medgan_aug.utils.CheckpointError: unreadable or unsafe file.
        ValueError: the weights do not fit ``network``, e.g. a diffusion generator's weights in a DCGAN
            bundle or the reverse (one line naming the file, the network and its family).
    """
    state = safe_torch_load(path, map_location="cpu", what="bundle weights")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"bundle weights {path} are not a state_dict (a dict of tensors)")
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        expected = set(network.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        keys = f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        if not missing and not unexpected:
            keys = " ".join(str(err).split())  # shapes that differ: torch's message, on one line
        raise ValueError(
            f"bundle weights {path} do not fit the configured network {_described(network)}: {keys}"
        ) from err
    return network.to(device).eval()


def load_label_pool(path: str | os.PathLike) -> np.ndarray:
    """Read ``models/label_pool.npy`` (float32 ``(M, L)``, no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label pool {path} does not exist (a conditional bundle needs it)")
    try:
        pool = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"label pool {path} is not a readable .npy array: {err}") from err
    if pool.ndim != 2 or pool.dtype != np.float32:
        raise ValueError(f"label pool {path} must be a float32 (M, L) array, got {pool.dtype} {pool.shape}")
    return pool


def load_bundle_dataset(
    bundle: str | os.PathLike, num_samples: int | None = None, seed: int | None = None, **override: Any
) -> SyntheticDataset:
    """The bundle's ``dataset`` (a :class:`SyntheticDataset`) through MONAI's ``ConfigParser``.

    Args:
        bundle: the bundle folder.
        num_samples, seed: override the config's defaults.
        override: other config ids to override (e.g. ``device="cuda"``, ``label_sampler="balanced"``,
            ``sampling_steps=25`` for a diffusion bundle).

    Raises:
        FileNotFoundError: not a bundle folder. ValueError, TypeError, OSError: what the bundle's loaders
            raise (e.g. weights that do not fit the configured network), unwrapped from MONAI's
            "Failed to instantiate" error.
    """
    from monai.bundle import ConfigParser

    bundle = Path(bundle)
    config = bundle / "configs" / "inference.json"
    if not config.is_file():
        raise FileNotFoundError(f"{bundle} is not a medgan_aug bundle: {config} does not exist")
    parser = ConfigParser()
    parser.read_config(config)
    parser.read_meta(bundle / "configs" / "metadata.json")
    parser["bundle_root"] = os.fspath(bundle)
    if num_samples is not None:
        parser["num_samples"] = num_samples
    if seed is not None:
        parser["seed"] = seed
    for key, value in override.items():
        parser[key] = value
    try:
        return parser.get_parsed_content("dataset")
    except RuntimeError as err:  # MONAI wraps a component's error in "Failed to instantiate ...": show ours
        cause = err.__cause__
        while isinstance(cause, RuntimeError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (ValueError, TypeError, OSError)):
            raise cause from err
        raise
