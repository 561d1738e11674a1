"""Images labelled with a teacher classifier's soft scores: generated images, or unlabelled real ones.

:class:`TeacherLabelledDataset` wraps a dict-item dataset (a :class:`~medgan_aug.data.SyntheticDataset`,
or a :class:`~medgan_aug.data.MedMNISTDataset` of the training images outside the labelled subset) and
gives every item the teacher's scores for its image as its ``"label"``: probabilities (sigmoid per finding,
softmax over classes), never rounded, so the classifier trains on soft targets. Two uses in the study:

* pseudo-labelling (Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep
  Neural Networks", ICML 2013 workshop), here with soft targets: the unlabelled real pool, the control
  ``real+pseudo@R`` that a generator trained on unlabelled images has to beat;
* teacher labels for generated images (``synthetic: {labels: teacher}``), which an unconditional generator
  trained on an unlabelled pool needs, and which replace a conditional generator's conditioning labels.

The scores are computed once, when the dataset is built, in fixed chunks of :data:`CHUNK_SIZE` items, so
item ``i`` depends only on the source's item ``i`` and the teacher (not on access order or batch size).
The object has what :class:`~medgan_aug.transforms.MixSyntheticd` reads from a source (``get_batch``,
``has_labels``, ``num_labels``, ``num_channels``, ``image_size``), so both uses go through the same
batch transform as ``real+synthetic@R``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from medgan_aug.data.label_samplers import label_permutation
from medgan_aug.data.synthetic import CHUNK_SIZE
from medgan_aug.utils.validation import is_integer

__all__ = ["TeacherLabelledDataset"]


class TeacherLabelledDataset(Dataset):
    """``source``'s images with a labeller's soft scores as their labels (see the module docstring).

    Args:
        source: a map-style dataset of dict items with an ``"image"`` (C, H, W) in [0, 1]; a ``get_batch``
            method (as :class:`~medgan_aug.data.SyntheticDataset` has) is used to gather images when present.
        labeller: images ``(B, C, H, W)`` in [0, 1] -> probabilities ``(B, L)`` in [0, 1] (not logits),
            e.g. :func:`medgan_aug.apps.teacher.teacher_labeller`; called once per chunk, without gradients.
        synthetic: the value of the items' ``"synthetic"`` flag (True for generated images, False for real
            ones).
        shuffle_labels_seed: permute the scores among the items with this seed (the placebo: images kept,
            image-label pairing broken; :func:`~medgan_aug.data.label_samplers.label_permutation`).

    Attributes:
        scores: float32 ``(N, L)`` tensor, the teacher's score of every item (after any shuffle).

    Raises:
        TypeError: ``labeller`` is not callable, or ``source`` has no length.
        ValueError: an empty ``source``, or a labeller that returns anything but ``(B, L)`` finite
            probabilities in [0, 1].
    """

    def __init__(
        self,
        source: Any,
        labeller: Callable[[torch.Tensor], torch.Tensor],
        *,
        synthetic: bool = True,
        shuffle_labels_seed: int | None = None,
    ) -> None:
        if not callable(labeller):
            raise TypeError(
                f"labeller must be callable (images -> probabilities), got {type(labeller).__name__}"
            )
        try:
            size = len(source)
        except TypeError as err:
            raise TypeError(
                f"source must be a map-style dataset with len(), got {type(source).__name__}"
            ) from err
        if size == 0:
            raise ValueError("source is empty: there are no images to label")
        self.source, self.synthetic = source, bool(synthetic)
        first = self.images([0])
        self.num_channels, self.image_size = int(first.shape[1]), int(first.shape[2])
        chunks = [
            self._label(labeller, np.arange(start, min(start + CHUNK_SIZE, size)))
            for start in range(0, size, CHUNK_SIZE)
        ]
        self.scores = torch.cat(chunks).contiguous()
        self.shuffle_labels_seed: int | None = None
        if shuffle_labels_seed is not None:
            order = torch.from_numpy(label_permutation(size, shuffle_labels_seed))
            self.scores = self.scores[order].contiguous()
            self.shuffle_labels_seed = int(shuffle_labels_seed)

    @torch.no_grad()
    def _label(self, labeller: Callable[[torch.Tensor], torch.Tensor], rows: np.ndarray) -> torch.Tensor:
        scores = torch.as_tensor(labeller(self.images(rows))).detach().float().cpu()
        if scores.ndim != 2 or scores.shape[0] != len(rows):
            raise ValueError(
                f"labeller must return (B, L) scores for B={len(rows)} images, got shape {tuple(scores.shape)}"
            )
        if not torch.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
            raise ValueError(
                "labeller must return probabilities in [0, 1] (sigmoid or softmax of the logits), got values "
                f"in [{scores.min().item():.3g}, {scores.max().item():.3g}]"
            )
        return scores

    # ------------------------------------------------------------------ what MixSyntheticd reads
    @property
    def has_labels(self) -> bool:
        return True

    @property
    def num_labels(self) -> int:
        return int(self.scores.shape[1])

    @property
    def targets(self) -> np.ndarray:
        """Every item's label ``(N, L)`` float32 (the teacher's scores)."""
        return self.scores.numpy().copy()

    def images(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """The source's images for ``indices`` as one float32 ``(n, C, H, W)`` tensor."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if hasattr(self.source, "get_batch"):
            images = self.source.get_batch(index)["image"]
        else:
            images = torch.stack([torch.as_tensor(self.source[int(i)]["image"]) for i in index])
        return images.as_subclass(torch.Tensor).float() if isinstance(images, torch.Tensor) else images

    def get_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """Collated items for ``indices``: ``{"image": (n, C, H, W), "label": (n, L), "synthetic": (n,)}``."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"indices out of range for TeacherLabelledDataset of {len(self)} items")
        index = index % len(self)
        return {
            "image": self.images(index),
            "label": self.scores[torch.from_numpy(index)],
            "synthetic": torch.full((index.size,), self.synthetic, dtype=torch.bool),
        }

    def with_shuffled_labels(self, shuffle_labels_seed: int) -> TeacherLabelledDataset:
        """A copy whose scores are permuted among the items (the placebo); images shared, teacher not rerun.

        The permutation applies to the unshuffled scores, also when this dataset is shuffled already.
        """
        order = torch.from_numpy(label_permutation(len(self), shuffle_labels_seed))
        paired = self.scores
        if self.shuffle_labels_seed is not None:  # undo this dataset's own permutation first
            own = torch.from_numpy(label_permutation(len(self), self.shuffle_labels_seed))
            paired = torch.empty_like(self.scores)
            paired[own] = self.scores
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.scores, copy.shuffle_labels_seed = paired[order].contiguous(), int(shuffle_labels_seed)
        return copy

    # ------------------------------------------------------------------ dataset
    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not is_integer(index):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for TeacherLabelledDataset of {len(self)} items")
        batch = self.get_batch([int(index)])
        return {"image": batch["image"][0], "label": batch["label"][0], "synthetic": self.synthetic}

    def __repr__(self) -> str:
        shuffled = (
            "" if self.shuffle_labels_seed is None else f", shuffle_labels_seed={self.shuffle_labels_seed}"
        )
        return (
            f"TeacherLabelledDataset(n={len(self)}, image=({self.num_channels}, {self.image_size}, "
            f"{self.image_size}), labels={self.num_labels}, synthetic={self.synthetic}{shuffled})"
        )
