"""Semi-supervised conditional GAN training: which real images carry labels, and what the GAN does with it.

:class:`~medgan_aug.engines.GANTrainer` takes ``labelled``, one bool flag per training image (issue 21: the
generator trains on a pool of images of which only some are labelled). :func:`labelled_rows` turns it into a
:class:`LabelledRows`, or None where it changes nothing (no flags, all True, or an unconditional GAN), so
such runs train exactly as before. With unlabelled images:

* **D's adversarial loss sees every real image**; an unlabelled one with no label information (its label
  row is ignored): the projection discriminator (Miyato & Koyama, "cGANs with Projection Discriminator",
  ICLR 2018) scores it by its unconditional term alone, their estimate of ``log q(x)/p(x)``, while a
  labelled row keeps the full ``log q(x, y)/p(x, y)`` logit
  (:meth:`~medgan_aug.networks.DCGANDiscriminator.forward_with_aux` with ``labelled``).
* **AC-GAN's auxiliary classification loss** (Odena, Olah & Shlens, ICML 2017) averages over the labelled
  real rows only (:meth:`LabelledRows.real_aux_loss`), and G's over every fake with the label it was asked
  for: the labelled/unlabelled split of a semi-supervised GAN's real term (Salimans et al., "Improved
  Techniques for Training GANs", NeurIPS 2016; Odena, "Semi-Supervised Learning with GANs", 2016).
* **Fakes are conditioned on labels of labelled rows only** (:meth:`LabelledRows.fake_labels`): the real
  batch's labels on its labelled rows and, on its unlabelled rows, labels drawn uniformly from the
  labelled training rows with the trainer's noise generator (checkpointed, so resume stays exact).
* **Fake row i is scored with or without the projection term as real row i is**, so both arms of D's loss
  hold the same share of conditional and unconditional logits: the split discriminator of Sricharan et al.
  ("Semi-Supervised Conditional GANs", 2017), an unconditional arm on all images and a conditional one on
  labelled pairs. Were the term on every fake but on few reals, D's optimum would not be 0 even when
  ``p_g(x, y) = p_data(x, y)``, and G would be pushed away from the data.

Under torchrun the flags of a rank's rows come from its :class:`~medgan_aug.engines.ShardedBatches`
indices, label draws are made for the global batch (each rank keeps its slice), and the auxiliary loss is
weighted so the averaged gradients equal the one-process mean over the global batch's labelled rows.
"""

from __future__ import annotations

from typing import Any

import torch

from medgan_aug.data.batches import SeededBatches
from medgan_aug.engines.gan_losses import auxiliary_classification_loss

__all__ = ["LabelledRows", "labelled_rows"]


class LabelledRows:
    """The ``labelled`` flags of a GAN's training images (see the module docstring).

    Args:
        flags: ``(N,)`` bool, one per image of ``batches``, at least one True.
        batches: the trainer's :class:`SeededBatches` (with labels).
        shard: a :class:`medgan_aug.engines.Shard` under torchrun, else None.

    Attributes:
        flags: the flags on the CPU. conditioning_labels: the labelled rows of ``batches.labels``.
    """

    def __init__(self, flags: torch.Tensor, batches: SeededBatches, shard: Any = None) -> None:
        self.flags, self.batches, self.shard = flags.cpu(), batches, shard
        self.conditioning_labels = batches.labels[self.flags.to(batches.labels.device)]

    def rows(self, iteration: int, size: int, device: torch.device | str) -> torch.Tensor:
        """The flags of batch ``iteration`` (0-based; this rank's rows under torchrun), on ``device``."""
        index = torch.from_numpy(self.batches.indices(iteration))
        if len(index) != size:
            raise RuntimeError(
                f"LabelledRows: a batch of {size} images but batch {iteration} has {len(index)}"
            )
        return self.flags[index].to(device)

    def fake_labels(self, y: torch.Tensor, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """G's labels: ``y`` on the labelled rows, a labelled training row's label (uniform draw) elsewhere.

        One draw per row of the global batch from ``generator`` (every rank makes the same draws).
        """
        world = 1 if self.shard is None else self.shard.world_size
        pick = torch.randint(len(self.conditioning_labels), (len(rows) * world,), generator=generator)
        if self.shard is not None:
            pick = self.shard.slice(pick)
        drawn = self.conditioning_labels[pick.to(self.conditioning_labels.device)]
        return torch.where(rows[:, None], y, drawn.to(device=y.device, dtype=y.dtype))

    def real_aux_loss(self, logits: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """AC-GAN's loss on the labelled real rows only: their mean, exactly 0 when the batch has none.

        Under torchrun a rank's mean is weighted by ``world_size * n_rank / n_global`` (one ``all_reduce``),
        so the ranks' averaged gradients are those of the mean over the global batch's labelled rows.
        """
        aux = auxiliary_classification_loss(logits[rows], y[rows])
        if self.shard is not None:
            local = float(rows.sum().item())
            total = self.shard.sum([local])[0]
            aux = aux * (local * self.shard.world_size / total if total else 0.0)
        return aux


def labelled_rows(
    labelled: Any, batches: SeededBatches, conditional: bool, shard: Any = None
) -> LabelledRows | None:
    """Check ``labelled`` against ``batches``; a :class:`LabelledRows`, or None where it changes nothing.

    Raises:
        ValueError: not a 1-D bool tensor, not one flag per training image, or (conditional) no True flag.
    """
    if labelled is None:
        return None
    if not isinstance(labelled, torch.Tensor) or labelled.dtype != torch.bool or labelled.ndim != 1:
        got = (
            (labelled.dtype, tuple(labelled.shape)) if isinstance(labelled, torch.Tensor) else type(labelled)
        )
        raise ValueError(f"labelled must be a 1-D bool tensor (one flag per training image), got {got}")
    if len(labelled) != batches.num_items:
        raise ValueError(
            f"labelled has {len(labelled)} flags but there are {batches.num_items} training images"
        )
    flags = labelled.detach().cpu()
    if not conditional or bool(flags.all()):
        return None
    if not bool(flags.any()):
        raise ValueError(
            "labelled has no True flag: a conditional GAN needs at least one labelled training image "
            "(train an unconditional one on a wholly unlabelled pool)"
        )
    if batches.labels is None:
        raise ValueError("labelled was given to a conditional GAN whose batches have no labels")
    return LabelledRows(flags, batches, shard)
