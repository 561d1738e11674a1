"""Downstream classifiers for the study: a small CNN and MONAI's ResNet-18, and their losses.

Their model files are :func:`medgan_aug.networks.save_classifier` / :func:`~medgan_aug.networks.load_classifier`
(:mod:`medgan_aug.networks.model_file`).

The ResNet-18 is MONAI's ``monai.networks.nets.ResNet`` (He et al., CVPR 2016) with a 28/64 px stem, as in
MedMNIST v2's baselines (Yang et al., Scientific Data 2023).
"""

from __future__ import annotations

import torch
from monai.networks.nets import ResNet
from torch import nn

from medgan_aug.utils.choices import CLASSIFIER_NAMES
from medgan_aug.utils.tasks import is_softmax_task
from medgan_aug.utils.validation import check_integer

__all__ = [
    "CLASSIFIER_NAMES",
    "CLASSIFIERS",
    "SmallCNN",
    "ResNet18Classifier",
    "build_classifier",
    "loss_for_task",
    "scores_from_logits",
]


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
        self._arch = {
            "in_channels": in_channels,
            "num_outputs": num_outputs,
            "image_size": image_size,
            "embedding_dim": embedding_dim,
            "dropout": dropout,
        }

    @property
    def arch(self) -> dict[str, int | float]:
        """The constructor arguments (what a model file records)."""
        return dict(self._arch)

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
        self._arch = {"in_channels": in_channels, "num_outputs": num_outputs, "image_size": image_size}

    @property
    def arch(self) -> dict[str, int]:
        """The constructor arguments (what a model file records)."""
        return dict(self._arch)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (B, 512)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_outputs)."""
        return self.head(self.features(x))


#: The classifier classes by the names ``build_classifier``, the CLI and the study use.
CLASSIFIERS: dict[str, type[nn.Module]] = {"small_cnn": SmallCNN, "resnet18": ResNet18Classifier}


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
        The model; its ``.arch`` holds its constructor arguments (what :func:`save_classifier` records).
    """
    if name not in CLASSIFIER_NAMES:
        raise ValueError(f"name must be one of {CLASSIFIER_NAMES}, got {name!r}")
    for arg, value, low in (
        ("in_channels", in_channels, 1),
        ("num_outputs", num_outputs, 1),
        ("image_size", image_size, 16),
    ):
        check_integer(arg, value, low)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        return CLASSIFIERS[name](
            in_channels=int(in_channels), num_outputs=int(num_outputs), image_size=int(image_size)
        )


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
