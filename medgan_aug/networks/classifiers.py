"""Downstream classifiers for the study: a small CNN and MONAI's ResNet-18, their losses and model files.

The ResNet-18 is MONAI's ``monai.networks.nets.ResNet`` (He et al., CVPR 2016) with a 28/64 px stem, as in
MedMNIST v2's baselines (Yang et al., Scientific Data 2023).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from monai.networks.nets import ResNet
from torch import nn

from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.tasks import is_softmax_task

__all__ = [
    "CLASSIFIER_NAMES",
    "SmallCNN",
    "ResNet18Classifier",
    "build_classifier",
    "loss_for_task",
    "scores_from_logits",
    "save_classifier",
    "load_classifier",
]


CLASSIFIER_NAMES = ("small_cnn", "resnet18")


_FILE_FORMAT = "medgan_aug.classifier"


_FILE_VERSION = 1


class SmallCNN(nn.Module):
    """A small convolutional classifier for MedMNIST-sized images (fast on CPU).

    Conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool) with widths 32, 64, 128 (plus a fourth 128
    block for images larger than 32 px), adaptive average pooling to 2x2, a 128-unit ReLU embedding
    (returned by :meth:`features`) and a linear head.

    Args:
        in_channels: image channels C (1 for chest X-rays).
        num_outputs: logits per image (findings for multi-label, 1 for binary-class, classes otherwise).
        image_size: square image side (28, 64, ...); decides the number of conv blocks.
        embedding_dim: width of the penultimate embedding.
        dropout: dropout before the head (training only).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_outputs: int = 14,
        image_size: int = 28,
        embedding_dim: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        widths = [32, 64, 128] + ([128] if image_size > 32 else [])
        blocks: list[nn.Module] = []
        prev = in_channels
        for w in widths:
            blocks += [
                nn.Conv2d(prev, w, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            prev = w
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(prev * 4, embedding_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embedding_dim, num_outputs))
        self.embedding_dim = embedding_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding (B, embedding_dim)."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_outputs)."""
        return self.head(self.features(x))


class ResNet18Classifier(nn.Module):
    """MONAI 2D ResNet-18 with a separate linear head, so :meth:`features` gives the 512-d pooled embedding.

    The first convolution is 3x3 without max-pool (MedMNIST v2's ResNet at 28 px); its stride is 1 for
    images up to 32 px and 2 above, which keeps 64 px training affordable on CPU.

    Args:
        in_channels: image channels C.
        num_outputs: logits per image.
        image_size: square image side.
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 14, image_size: int = 28) -> None:
        super().__init__()
        self.backbone = ResNet(
            block="basic",
            layers=[2, 2, 2, 2],
            block_inplanes=[64, 128, 256, 512],
            spatial_dims=2,
            n_input_channels=in_channels,
            conv1_t_size=3,
            conv1_t_stride=1 if image_size <= 32 else 2,
            no_max_pool=True,
            feed_forward=False,
        )
        self.embedding_dim = 512
        self.head = nn.Linear(512, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (B, 512)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_outputs)."""
        return self.head(self.features(x))


def build_classifier(
    name: str,
    in_channels: int,
    num_outputs: int,
    image_size: int,
    *,
    seed: int | None = None,
) -> nn.Module:
    """Build a downstream classifier.

    Args:
        name: ``"small_cnn"`` or ``"resnet18"``.
        in_channels: image channels C (>= 1).
        num_outputs: logits per image (>= 1).
        image_size: square image side in pixels (>= 16).
        seed: if given, the weight initialisation is drawn from this seed without touching the
            caller's global torch random state.

    Returns:
        The model, with ``.arch`` (the arguments above, used by :func:`save_classifier`).
    """
    if name not in CLASSIFIER_NAMES:
        raise ValueError(f"name must be one of {CLASSIFIER_NAMES}, got {name!r}")
    for arg, value, low in (
        ("in_channels", in_channels, 1),
        ("num_outputs", num_outputs, 1),
        ("image_size", image_size, 16),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")
    cls = SmallCNN if name == "small_cnn" else ResNet18Classifier
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        model = cls(in_channels=int(in_channels), num_outputs=int(num_outputs), image_size=int(image_size))
    model.arch = {  # type: ignore[assignment]
        "name": name,
        "in_channels": int(in_channels),
        "num_outputs": int(num_outputs),
        "image_size": int(image_size),
    }
    return model


def loss_for_task(task: str) -> nn.Module:
    """The training loss for a medmnist task string.

    BCE-with-logits for ``"multi-label, binary-class"`` (multi-hot (L,) labels) and ``"binary-class"``
    ((1,) 0/1 labels, one logit); cross-entropy with class-probability targets for ``"multi-class"`` and
    ``"ordinal-regression"`` (one-hot (C,) labels, which also admits soft labels from batch mixing).
    """
    return nn.CrossEntropyLoss() if is_softmax_task(task) else nn.BCEWithLogitsLoss()


def scores_from_logits(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Probabilities from logits: softmax over classes for multi-class/ordinal, sigmoid otherwise."""
    return torch.softmax(logits, dim=1) if is_softmax_task(task) else torch.sigmoid(logits)


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} keys must be str, got {k!r}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} must hold plain types (None, bool, int, float, str, list, dict, tensor), "
        f"got {type(value).__name__}"
    )


def save_classifier(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write a trained classifier to a self-describing weights-only file, atomically.

    The file holds ``{"format": "medgan_aug.classifier", "version": 1, "arch": {name, in_channels,
    num_outputs, image_size}, "state_dict": ..., "meta": {...}}``. Put in ``meta`` what makes feature
    distances comparable between runs (e.g. "flag", "task", "label_names", "train_iterations", "seed").

    Args:
        model: a model from :func:`build_classifier` (it carries ``.arch``).
        path: destination file.
        meta: plain-typed metadata.
    """
    arch = getattr(model, "arch", None)
    if not isinstance(arch, dict):
        raise TypeError(f"model {type(model).__name__} has no .arch; build it with build_classifier()")
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict or None, got {type(meta).__name__}")
    _check_plain(meta, "meta")
    payload = {
        "format": _FILE_FORMAT,
        "version": _FILE_VERSION,
        "arch": dict(arch),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_classifier(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Load a classifier written by :func:`save_classifier` (``torch.load(weights_only=True)``).

    Returns:
        ``(model in eval mode, meta)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is corrupt, not a classifier file, or of an unsupported version.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"classifier file not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read classifier file {path}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a medgan_aug classifier file (format {found!r})")
    if payload.get("version") != _FILE_VERSION:
        raise ValueError(
            f"{path}: unsupported classifier file version {payload.get('version')!r} "
            f"(this code reads version {_FILE_VERSION})"
        )
    arch = payload.get("arch")
    if not isinstance(arch, dict) or set(arch) != {"name", "in_channels", "num_outputs", "image_size"}:
        raise ValueError(f"{path}: malformed 'arch' entry {arch!r}")
    model = build_classifier(arch["name"], arch["in_channels"], arch["num_outputs"], arch["image_size"])
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as err:
        raise ValueError(f"{path}: state_dict does not match arch {arch}: {err}") from err
    model.to(map_location).eval()
    return model, dict(payload.get("meta") or {})
