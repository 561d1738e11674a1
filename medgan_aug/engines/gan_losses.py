"""The GAN loss terms :class:`~medgan_aug.engines.GANTrainer` combines, as plain functions of logits.

* :func:`discriminator_loss` / :func:`generator_loss`: the non-saturating BCE loss of DCGAN (Goodfellow
  et al., NeurIPS 2014) or the hinge loss (Lim & Ye 2017; Miyato et al., ICLR 2018).
* :func:`lecam_penalty` with :class:`LeCamAnchors`: LeCam regularisation (Tseng, Jiang, Liu, Yang & Yang,
  "Regularizing Generative Adversarial Networks under Limited Data", CVPR 2021). D's outputs on real
  images are pulled towards a moving average of its outputs on fakes and vice versa, which bounds the
  LeCam divergence D can exploit on a small training set. The form is the one of the authors' code:
  ``mean(relu(D(x) - a_fake)^2) + mean(relu(a_real - D(G(z)))^2)`` with ``a_*`` EMAs (decay 0.99).
* :func:`consistency_penalty`: balanced consistency regularisation (bCR; Zhao, Singh, Odena et al.,
  "Improved Consistency Regularization for GANs", AAAI 2021): D should give the same logit to two random
  augmentations of the same real image and of the same fake. The paper compares ``D(x)`` with
  ``D(T(x))``; here D already sees a DiffAugment draw, so the penalty compares that logit with the logit
  of a second independent draw (one extra D forward per arm instead of two).
* :func:`auxiliary_classification_loss`: the auxiliary-classifier loss of AC-GAN (Odena, Olah & Shlens,
  "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML 2017), here beside the projection
  term: D's auxiliary head learns the findings from real images, and G is rewarded when D's head finds
  the requested findings in its fakes. D's head is trained on real images only: scoring fakes with their
  requested labels rewards D for fitting whatever G draws early in training (the bias Gong et al.,
  "Twin Auxiliary Classifiers GAN", NeurIPS 2019, describe), while real images carry the true labels.
  In semi-supervised training (unlabelled real images in the pool) the trainer passes only the labelled
  real rows; a batch without any gives an exact 0 that is still connected to the logits, so every
  parameter gets a (zero) gradient and data-parallel ranks stay in step.

* :class:`GANObjective`: which of these terms one training run combines, and their weights, as one
  checked value (what :class:`~medgan_aug.engines.GANTrainer` takes instead of seven loose keywords).

``tests/test_gan_losses.py`` checks every term against values computed by hand.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F

from medgan_aug.utils.choices import LOSSES
from medgan_aug.utils.validation import check_integer, is_real

__all__ = [
    "LOSSES",
    "GANObjective",
    "discriminator_loss",
    "generator_loss",
    "LeCamAnchors",
    "lecam_penalty",
    "consistency_penalty",
    "auxiliary_classification_loss",
]


def _check_kind(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss on real and fake logits: BCE with targets 1/0 (``"bce"``) or the hinge loss."""
    _check_kind(kind)
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """G's loss on D's fake logits: non-saturating ``-log sigmoid(D(G(z)))`` or hinge ``-D(G(z))``."""
    _check_kind(kind)
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


class LeCamAnchors:
    """Moving averages of D's mean logit on real and on fake images (the anchors of LeCam regularisation).

    Args:
        decay: EMA decay (0.99 in Tseng et al.'s code). The first update sets the anchors to the batch means.
    """

    def __init__(self, decay: float = 0.99) -> None:
        if not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCam decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.real: float | None = None
        self.fake: float | None = None

    def update(self, real_mean: float, fake_mean: float) -> None:
        """Move the anchors towards this D step's mean logits (Python floats)."""
        if self.real is None or self.fake is None:
            self.real, self.fake = float(real_mean), float(fake_mean)
            return
        self.real = self.decay * self.real + (1.0 - self.decay) * float(real_mean)
        self.fake = self.decay * self.fake + (1.0 - self.decay) * float(fake_mean)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "real": self.real, "fake": self.fake}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay, self.real, self.fake = float(state["decay"]), state["real"], state["fake"]


def lecam_penalty(
    real: torch.Tensor, fake: torch.Tensor, anchor_real: float, anchor_fake: float
) -> torch.Tensor:
    """LeCam regulariser ``mean(relu(real - anchor_fake)^2) + mean(relu(anchor_real - fake)^2)``."""
    return F.relu(real - anchor_fake).pow(2).mean() + F.relu(anchor_real - fake).pow(2).mean()


def consistency_penalty(logits: torch.Tensor, logits_other_view: torch.Tensor) -> torch.Tensor:
    """bCR term for one arm: mean squared difference of D's logits on two augmentations of the same images."""
    if logits.shape != logits_other_view.shape:
        raise ValueError(
            f"consistency_penalty: logits of shape {tuple(logits.shape)} and {tuple(logits_other_view.shape)}"
        )
    return (logits - logits_other_view).pow(2).mean()


def auxiliary_classification_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """AC-GAN's classification loss for label vectors: binary cross-entropy per finding (multi-label and
    binary tasks; for one-hot multi-class targets it is the one-vs-rest form), averaged over findings and
    rows. No rows (a batch without a labelled real image): exactly 0, with zero gradients, not NaN."""
    if logits.shape != targets.shape:
        raise ValueError(
            f"auxiliary_classification_loss: logits {tuple(logits.shape)} and targets {tuple(targets.shape)}"
        )
    if logits.shape[0] == 0:
        return logits.sum()  # 0.0, in the graph (the mean of nothing would be NaN)
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


@dataclasses.dataclass(frozen=True)
class GANObjective:
    """The discriminator and generator objective of one GAN run: the loss and the regularisers added to it.

    The defaults are plain DCGAN (non-saturating BCE, one D step, no regulariser); each weight 0 turns its
    term off. The references of each term are in this module's docstring.

    Attributes:
        loss: ``"bce"`` (Goodfellow et al. 2014) or ``"hinge"`` (Lim & Ye 2017).
        d_steps: D updates per iteration (>= 1).
        r1_gamma: R1 gradient penalty weight on real images (Mescheder, Geiger & Nowozin, ICML 2018).
        lecam_weight, lecam_decay: LeCam regularisation weight and its anchors' EMA decay in [0, 1).
        bcr_weight: balanced consistency regularisation weight (needs an augmentation in the trainer).
        aux_weight: AC-GAN auxiliary classification weight (needs ``auxiliary_classifier=True`` in D).

    Raises:
        ValueError: an unknown loss, or a count or weight out of range (the message names the field).
    """

    loss: str = "bce"
    d_steps: int = 1
    r1_gamma: float = 0.0
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99
    bcr_weight: float = 0.0
    aux_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        object.__setattr__(self, "d_steps", check_integer("d_steps", self.d_steps, 1))
        for name in ("r1_gamma", "lecam_weight", "bcr_weight", "aux_weight"):
            value = getattr(self, name)
            if not is_real(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not is_real(self.lecam_decay) or not 0.0 <= self.lecam_decay < 1.0:
            raise ValueError(f"lecam_decay must be a number in [0, 1), got {self.lecam_decay!r}")
        object.__setattr__(self, "lecam_decay", float(self.lecam_decay))
