"""DCGAN generator and (projection) discriminator for 28x28 and 64x64 MedMNIST images.

Architecture after Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks" (ICLR 2016): transposed convolutions + BatchNorm + ReLU
in G with a tanh output, strided convolutions + LeakyReLU(0.2) in D, weights drawn from N(0, 0.02)
(MONAI's :func:`monai.networks.utils.normal_init`).

Conditioning on a finding vector (``num_labels > 0``; multi-hot for ChestMNIST's 14 findings, a single
0/1 column for PneumoniaMNIST, one-hot for multi-class flags):

* G concatenates the label vector with ``z``. G's first layer is a transposed convolution on a 1x1 input,
  i.e. a linear map, so this equals a learned label embedding added to the projected noise (Mirza &
  Osindero, "Conditional Generative Adversarial Nets", 2014) without an extra layer.
* D is a projection discriminator (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018):
  ``logit = w . h(x) + <E y, h(x)>`` with ``h(x)`` the flattened last feature map and ``E`` a bias-free
  linear embedding of the label vector. For a multi-hot ``y`` the projection is the sum of the active
  findings' embeddings, the natural multi-label extension; an all-zero ("no finding") vector leaves the
  unconditional term. Rows whose label is unknown (semi-supervised training on unlabelled images) are
  marked with ``labelled`` and get no projection term at all, whatever their label row holds: their logit
  is the unconditional term ``w . h(x)`` alone, Miyato & Koyama's estimate of ``log q(x) / p(x)``.

Optional spectral normalisation in D (Miyato et al., "Spectral Normalization for GANs", ICLR 2018)
wraps every convolution, the output layer and the embedding; D's BatchNorm layers are then left out, as
in SN-GAN.

Shapes and parameter counts (``latent_dim=100``, ``base_channels=64`` = c, 1 channel, L labels; measured)::

    network  layers (output shape for a batch of B)                            params L=0   params L=14
    G 28     (B,100+L,1,1) -> 4c@7x7 -> 2c@14x14 -> c@28x28 -> 3x3 conv, tanh      1,911,233     2,086,849
    D 28     (B,1,28,28) -> c@14x14 -> 2c@7x7 -> 4c@4x4 -> flatten 4096 -> (B,)      431,937       489,281
    G 64     (B,100+L,1,1) -> 8c@4x4 -> 4c@8x8 -> 2c@16x16 -> c@32x32 -> 1@64x64    3,574,657     3,689,345
    D 64     (B,1,64,64) -> c@32 -> 2c@16 -> 4c@8 -> 8c@4x4 -> flatten 8192 -> (B,) 2,763,585     2,878,273

(``tests/test_networks.py`` checks these numbers.) With ``base_channels=16`` the 28x28 pair has 354,929 /
28,113 parameters (unconditional): small enough for CPU tests.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.utils import normal_init
from torch import nn

from medgan_aug.utils.validation import check_integer

__all__ = [
    "standing_batchnorm_stats",
    "SUPPORTED_SIZES",
    "count_parameters",
    "to_unit_range",
    "LatentConvTranspose2d",
    "DCGANGenerator",
    "DCGANDiscriminator",
]


SUPPORTED_SIZES = (28, 64)


def _check_size(image_size: Any) -> int:
    if isinstance(image_size, bool) or image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size must be one of {SUPPORTED_SIZES}, got {image_size!r}")
    return int(image_size)


def _num_labels(num_labels: Any) -> int:
    return 0 if num_labels is None else check_integer("num_labels", num_labels, 0)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map generator output from [-1, 1] (tanh) to [0, 1], clamped: the one place images leave G's range."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def _check_labels(labels: torch.Tensor | None, num_labels: int, batch: int, who: str) -> torch.Tensor | None:
    if num_labels == 0:
        if labels is not None:
            raise ValueError(f"{who} was built with num_labels=0 (unconditional) but labels were given")
        return None
    if labels is None:
        raise ValueError(
            f"{who} is conditional (num_labels={num_labels}): labels of shape (B, {num_labels}) are required"
        )
    if not isinstance(labels, torch.Tensor) or labels.ndim != 2 or labels.shape != (batch, num_labels):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{who}: labels must be a tensor of shape ({batch}, {num_labels}), got {shape}")
    return labels.float()


def _check_rows(labelled: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    if labelled is None:
        return None
    if not isinstance(labelled, torch.Tensor) or labelled.dtype != torch.bool or labelled.shape != (batch,):
        got = labelled if not isinstance(labelled, torch.Tensor) else (labelled.dtype, tuple(labelled.shape))
        raise ValueError(f"DCGANDiscriminator: labelled must be a bool tensor of shape ({batch},), got {got}")
    return labelled


class LatentConvTranspose2d(nn.ConvTranspose2d):
    """G's first layer: a transposed convolution of the 1x1 latent input, computed as one matrix product.

    On a 1x1 input with stride 1 and no padding, ``ConvTranspose2d(cin, cout, k)`` is the linear map
    ``out[b, o, i, j] = sum_c x[b, c] * w[c, o, i, j]`` (+ bias). oneDNN runs it as a general
    deconvolution, which on the 2-core CPU took 4x as long as the same product through ``torch.mm``
    (bf16 autocast, forward + backward, batch 64, 114 -> 128 x 7 x 7); a whole training iteration is 1.16x
    faster (``benchmarks/bench_gan_speed.py --plain-first-layer``). Parameters, initialisation and
    state-dict keys are those of :class:`torch.nn.ConvTranspose2d`, so model files are unchanged; any other
    input falls back to it. On that CPU the results were bit-identical to ``nn.ConvTranspose2d``'s (a
    3,658-iteration training run reproduced an earlier one exactly); the tests check float tolerance.
    The output has the weight's memory format (channels-last when the module was converted to it).
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        plain = (
            self.stride == (1, 1)
            and self.padding == (0, 0)
            and self.output_padding == (0, 0)
            and self.dilation == (1, 1)
            and self.groups == 1
        )
        if output_size is not None or not plain or x.ndim != 4 or x.shape[-2:] != (1, 1):
            return super().forward(x, output_size)
        w = self.weight
        cin, cout, kh, kw = w.shape
        if w.is_contiguous():
            out = (x.flatten(1) @ w.reshape(cin, -1)).view(-1, cout, kh, kw)
        else:  # channels-last weight: (cin, kh, kw, cout) in memory, so is the output
            out = (x.flatten(1) @ w.permute(0, 2, 3, 1).reshape(cin, -1)).view(-1, kh, kw, cout)
            out = out.permute(0, 3, 1, 2)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1).to(out.dtype)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016), optionally conditional on a label vector.

    Args:
        image_size: 28 or 64.
        latent_dim: size of the noise vector ``z``.
        num_labels: width of the label vector to condition on (0 or None: unconditional).
        base_channels: channel width ``c`` of the last hidden layer (the layers have 8c/4c/2c/c).
        out_channels: image channels (1 for ChestMNIST).

    Shapes: ``forward(z (B, latent_dim), labels (B, num_labels) | None) -> (B, out_channels, H, W)`` in
    [-1, 1]. See the module docstring for the layers and parameter counts.
    """

    def __init__(
        self,
        image_size: int = 28,
        latent_dim: int = 100,
        num_labels: int | None = 0,
        base_channels: int = 64,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        self.image_size = _check_size(image_size)
        self.latent_dim = check_integer("latent_dim", latent_dim, 1)
        self.num_labels = _num_labels(num_labels)
        self.base_channels = check_integer("base_channels", base_channels, 1)
        self.out_channels = check_integer("out_channels", out_channels, 1)
        c, nin = self.base_channels, self.latent_dim + self.num_labels

        def up(cin: int, cout: int, k: int = 4, s: int = 2, p: int = 1) -> list[nn.Module]:
            conv = (LatentConvTranspose2d if (s, p) == (1, 0) else nn.ConvTranspose2d)(
                cin, cout, k, s, p, bias=False
            )
            return [conv, nn.BatchNorm2d(cout), nn.ReLU(True)]

        if self.image_size == 28:
            layers = [
                *up(nin, 4 * c, 7, 1, 0),  # 7x7
                *up(4 * c, 2 * c),  # 14x14
                *up(2 * c, c),  # 28x28
                nn.Conv2d(c, self.out_channels, 3, 1, 1),
            ]
        else:
            layers = [
                *up(nin, 8 * c, 4, 1, 0),  # 4x4
                *up(8 * c, 4 * c),  # 8x8
                *up(4 * c, 2 * c),  # 16x16
                *up(2 * c, c),  # 32x32
                nn.ConvTranspose2d(c, self.out_channels, 4, 2, 1),  # 64x64
            ]
        self.net = nn.Sequential(*layers, nn.Tanh())
        self.apply(normal_init)

    @property
    def arch(self) -> dict[str, int]:
        """The constructor arguments (what a model file records)."""
        return {
            "image_size": self.image_size,
            "latent_dim": self.latent_dim,
            "num_labels": self.num_labels,
            "base_channels": self.base_channels,
            "out_channels": self.out_channels,
        }

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"DCGANGenerator: z must have shape (B, {self.latent_dim}), got {shape}")
        y = _check_labels(labels, self.num_labels, z.shape[0], "DCGANGenerator")
        h = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        return self.net(h[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016); a projection discriminator when conditional.

    Args:
        image_size: 28 or 64.
        num_labels: label width for the projection term (0 or None: unconditional).
        base_channels: width ``c`` of the first layer (then 2c, 4c[, 8c]).
        in_channels: image channels.
        spectral_norm: wrap every weight layer in spectral normalisation (Miyato et al. 2018) and drop
            BatchNorm.
        auxiliary_classifier: add AC-GAN's auxiliary head (Odena et al., ICML 2017), a linear map from the
            features ``h(x)`` to one logit per label, read by :meth:`forward_with_aux` (needs
            ``num_labels > 0``).

    Shapes: ``forward(x (B, in_channels, H, W), labels (B, num_labels) | None) -> (B,)`` raw logits;
    ``forward_with_aux`` also returns the auxiliary logits ``(B, num_labels)``.
    """

    def __init__(
        self,
        image_size: int = 28,
        num_labels: int | None = 0,
        base_channels: int = 64,
        in_channels: int = 1,
        spectral_norm: bool = False,
        auxiliary_classifier: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = _check_size(image_size)
        self.num_labels = _num_labels(num_labels)
        if auxiliary_classifier and not self.num_labels:
            raise ValueError("auxiliary_classifier=True needs num_labels > 0 (a conditional discriminator)")
        self.auxiliary_classifier = bool(auxiliary_classifier)
        self.base_channels = check_integer("base_channels", base_channels, 1)
        self.in_channels = check_integer("in_channels", in_channels, 1)
        self.spectral_norm = bool(spectral_norm)
        c = self.base_channels

        def down(cin: int, cout: int, k: int = 4, s: int = 2, p: int = 1, bn: bool = True) -> list[nn.Module]:
            use_bn = bn and not self.spectral_norm
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, p, bias=not use_bn)]
            if use_bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        if self.image_size == 28:
            layers = [*down(self.in_channels, c, bn=False), *down(c, 2 * c), *down(2 * c, 4 * c, 3, 2, 1)]
            self.num_features = 4 * c * 4 * 4
        else:
            layers = [
                *down(self.in_channels, c, bn=False),
                *down(c, 2 * c),
                *down(2 * c, 4 * c),
                *down(4 * c, 8 * c),
            ]
            self.num_features = 8 * c * 4 * 4
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(self.num_features, 1)
        self.embed = nn.Linear(self.num_labels, self.num_features, bias=False) if self.num_labels else None
        self.aux = nn.Linear(self.num_features, self.num_labels) if self.auxiliary_classifier else None
        self.apply(normal_init)
        if self.spectral_norm:
            sn = nn.utils.parametrizations.spectral_norm
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    sn(module)

    @property
    def arch(self) -> dict[str, int | bool]:
        """The constructor arguments (what a model file records)."""
        return {
            "image_size": self.image_size,
            "num_labels": self.num_labels,
            "base_channels": self.base_channels,
            "in_channels": self.in_channels,
            "spectral_norm": self.spectral_norm,
            "auxiliary_classifier": self.auxiliary_classifier,
        }

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, labelled: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.forward_with_aux(x, labels, labelled)[0]

    def forward_with_aux(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, labelled: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits and, with ``auxiliary_classifier``, the auxiliary per-label logits (else None).

        ``labelled``: optional ``(B,)`` bool tensor; rows where it is False get no projection term (their
        label row is ignored), rows where it is True the same logit as without it. None: every row labelled.
        """
        expected = (self.in_channels, self.image_size, self.image_size)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"DCGANDiscriminator: x must have shape (B, {', '.join(map(str, expected))}), got {shape}"
            )
        y = _check_labels(labels, self.num_labels, x.shape[0], "DCGANDiscriminator")
        rows = _check_rows(labelled, x.shape[0])
        h = self.features(x).flatten(1)
        logit = self.fc(h).squeeze(1)
        if y is not None and self.embed is not None:
            projection = (self.embed(y.to(h.dtype)) * h).sum(dim=1)
            if rows is not None:  # unlabelled rows: no term (and no gradient through it)
                projection = torch.where(rows.to(projection.device), projection, projection.new_zeros(()))
            logit = logit + projection
        return logit, (None if self.aux is None else self.aux(h))


@torch.no_grad()
def standing_batchnorm_stats(
    generator: nn.Module,
    labels_pool: torch.Tensor | None = None,
    batches: int = 16,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Re-estimate a generator's BatchNorm running statistics as the average over ``batches`` batches
    of fresh noise (Brock, Donahue & Simonyan, "Large Scale GAN Training", ICLR 2019: standing stats).

    Args:
        generator: a :class:`DCGANGenerator` (modified in place; returned in eval mode).
        labels_pool: rows to draw conditioning labels from (required if the generator is conditional).
        batches, batch_size: how much noise to average over.
        seed: seed of the noise (and label draws).
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if batches <= 0 or not norms:
        return generator.eval()
    device = next(generator.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    rng = torch.Generator().manual_seed(int(seed))
    generator.train()
    for _ in range(batches):
        z = torch.randn(batch_size, generator.latent_dim, generator=rng).to(device)
        y = None
        if generator.num_labels:
            if labels_pool is None:
                raise ValueError("labels_pool is required for a conditional generator")
            y = labels_pool[
                torch.randint(len(labels_pool), (batch_size,), generator=rng).to(labels_pool.device)
            ]
            y = y.to(device)
        generator(z, y)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return generator.eval()
