"""Label samplers for conditional generators: joint (real label vectors) and balanced (per finding), and
the per-chunk random generator that makes every generated item a function of ``(seed, index)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from medgan_aug.utils.validation import check_integer

__all__ = [
    "LabelSampler",
    "as_label_pool",
    "JointLabelSampler",
    "BalancedLabelSampler",
    "chunk_generator",
    "meta_label_pool",
    "resolve_labels",
    "label_permutation",
]


class LabelSampler(Protocol):
    """What :class:`SyntheticDataset` needs from a label sampler."""

    num_labels: int

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Return ``n`` float32 label vectors ``(n, num_labels)`` drawn with ``generator`` only."""
        ...


def as_label_pool(pool: Any, name: str = "label_pool") -> torch.Tensor:
    """Validate a real label matrix ``(M, L)`` with values in [0, 1] and return it as float32."""
    try:
        tensor = torch.as_tensor(np.asarray(pool, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric (M, L) matrix, got {type(pool).__name__}: {err}") from err
    if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (M, L) label matrix, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all() or tensor.min() < 0 or tensor.max() > 1:
        raise ValueError(
            f"{name} values must lie in [0, 1], got range [{tensor.min().item()}, {tensor.max().item()}]"
        )
    return tensor.contiguous()


class JointLabelSampler:
    """Resample whole real label vectors uniformly (with replacement) from a pool.

    Keeps the joint distribution of findings (co-occurrence included), not only the per-finding
    marginals; the expected per-finding rate is the pool's mean vector.

    Args:
        pool: real label vectors ``(M, L)``, e.g. the training subset's multi-hot matrix.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = as_label_pool(pool)
        self.num_labels = int(self.pool.shape[1])

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` label vectors, rows of the pool chosen uniformly with ``generator``."""
        index = torch.randint(self.pool.shape[0], (n,), generator=generator)
        return self.pool[index]

    def expected_rates(self) -> torch.Tensor:
        """Probability that each finding is positive in a sampled vector (float64 ``(L,)``)."""
        return (self.pool >= 0.5).double().mean(0)

    def __repr__(self) -> str:
        return f"JointLabelSampler(pool={tuple(self.pool.shape)})"


class BalancedLabelSampler:
    """Class-balanced resampling of real label vectors: rare findings become as frequent as common ones.

    Scheme (two steps, per item):

    1. choose a class uniformly among the K findings with at least one positive in the pool, plus the
       "no finding" class (the all-zero vector) when the pool has such rows; so ``K' = K (+ 1)`` classes;
    2. resample uniformly one real vector of the pool that belongs to that class (finding ``j`` positive,
       i.e. value >= 0.5; or all findings negative).

    The vector is a real one, so co-occurring findings come along with the chosen one and each finding's
    rate is at least ``1 / K'`` (about 6.7 % for ChestMNIST's 14 findings plus "no finding"). The exact
    expected rate of finding ``j`` is ``sum_c (1 / K') * mean_{rows in c}[row_j >= 0.5]``
    (:meth:`expected_rates`). With one-hot (multi-class) or ``(1,)`` binary labels this is plain uniform
    class balancing. Class-balanced resampling as in Buda et al., "A systematic study of the class
    imbalance problem in convolutional neural networks", Neural Networks 2018.

    Args:
        pool: real label vectors ``(M, L)``.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = as_label_pool(pool)
        self.num_labels = int(self.pool.shape[1])
        positive = self.pool >= 0.5
        members: list[torch.Tensor] = [
            torch.nonzero(positive[:, j]).flatten() for j in range(self.num_labels)
        ]
        self.class_names: list[str] = [f"finding {j}" for j in range(self.num_labels)]
        keep = [j for j, m in enumerate(members) if m.numel() > 0]
        members = [members[j] for j in keep]
        self.class_names = [self.class_names[j] for j in keep]
        negative = torch.nonzero(~positive.any(1)).flatten()
        if negative.numel() > 0:
            members.append(negative)
            self.class_names.append("no finding")
        self._counts = torch.tensor([m.numel() for m in members], dtype=torch.float64)
        self._offsets = torch.cumsum(torch.tensor([0] + [m.numel() for m in members[:-1]]), 0)
        self._members = torch.cat(members)
        self._classes = members

    @property
    def num_classes(self) -> int:
        """``K'``: findings with a positive in the pool, plus "no finding" if present."""
        return len(self._classes)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` label vectors drawn by the two-step scheme with ``generator`` only."""
        cls = torch.randint(self.num_classes, (n,), generator=generator)
        u = torch.rand(n, dtype=torch.float64, generator=generator)
        within = torch.minimum((u * self._counts[cls]).long(), self._counts[cls].long() - 1)
        return self.pool[self._members[self._offsets[cls] + within]]

    def expected_rates(self) -> torch.Tensor:
        """Exact probability that each finding is positive in a sampled vector (float64 ``(L,)``)."""
        positive = (self.pool >= 0.5).double()
        return torch.stack([positive[m].mean(0) for m in self._classes]).mean(0)

    def __repr__(self) -> str:
        return f"BalancedLabelSampler(pool={tuple(self.pool.shape)}, classes={self.num_classes})"


def chunk_generator(seed: int, chunk: int) -> torch.Generator:
    """The CPU ``torch.Generator`` of chunk ``chunk`` under ``seed`` (NumPy ``SeedSequence`` mixing)."""
    state = np.random.SeedSequence([int(seed), int(chunk)]).generate_state(2, np.uint32)
    generator = torch.Generator(device="cpu")
    generator.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return generator


def meta_label_pool(meta: dict, num_labels: int, source: Path) -> np.ndarray:
    """The run's training label matrix from generator meta, as item-form vectors of width ``num_labels``."""
    if "train_labels" not in meta or meta["train_labels"] is None:
        raise ValueError(
            f"{source}: generator meta has no 'train_labels' to resample labels from; pass labels= or a "
            "label_sampler object"
        )
    pool = np.asarray(
        meta["train_labels"].cpu().numpy() if torch.is_tensor(meta["train_labels"]) else meta["train_labels"],
        dtype=np.float32,
    )
    if pool.ndim == 1:
        pool = pool[:, None]
    if pool.ndim == 2 and pool.shape[1] == 1 and num_labels > 1:  # stored class indices -> one-hot
        index = pool[:, 0].astype(np.int64)
        if index.min() < 0 or index.max() >= num_labels:
            raise ValueError(
                f"{source}: meta train_labels holds class {index.max()} >= num_labels={num_labels}"
            )
        pool = np.eye(num_labels, dtype=np.float32)[index]
    if pool.ndim != 2 or pool.shape[1] != num_labels:
        raise ValueError(
            f"{source}: meta train_labels has shape {pool.shape} but the generator takes {num_labels} labels"
        )
    return pool


def resolve_labels(
    num_labels: int,
    num_samples: int,
    labels: Any = None,
    label_sampler: Any = None,
    label_pool: Any = None,
    has_labeller: bool = False,
) -> tuple[LabelSampler | None, torch.Tensor | None]:
    """Check the label options of a :class:`~medgan_aug.data.SyntheticDataset` and build its label source.

    Args:
        num_labels: the generator's ``num_labels`` (0: unconditional).
        num_samples: the dataset's length.
        labels, label_sampler, label_pool: as in :class:`~medgan_aug.data.SyntheticDataset`.
        has_labeller: whether a ``labeller`` was given.

    Returns:
        ``(sampler, fixed)``: the label sampler, or the fixed ``(num_samples, L)`` label matrix (at most one
        of them; both None for an unconditional generator).

    Raises:
        TypeError, ValueError: options that do not fit the generator or each other (named in the message).
    """
    width = int(num_labels)
    if width == 0:
        if labels is not None or label_sampler is not None or label_pool is not None:
            raise ValueError(
                "the generator is unconditional (num_labels=0): labels, label_sampler and label_pool "
                "do not apply; label its images with labeller=(images -> labels) instead"
            )
        return None, None
    if has_labeller:
        raise ValueError(
            f"labeller is for unconditional generators; this one is conditional (num_labels={width}): "
            "its labels are the conditioning vectors (labels= or label_sampler=)"
        )
    if labels is not None and (label_sampler is not None or label_pool is not None):
        raise ValueError("give either labels= (a fixed label matrix) or label_sampler=/label_pool=, not both")
    if labels is not None:
        fixed = torch.as_tensor(np.asarray(labels, dtype=np.float32))
        if fixed.ndim == 1:
            fixed = fixed.expand(num_samples, -1)
        if fixed.ndim != 2 or fixed.shape != (num_samples, width):
            raise ValueError(
                f"labels must have shape ({num_samples}, {width}) or ({width},) for num_samples="
                f"{num_samples} and a generator with num_labels={width}; got {tuple(fixed.shape)}"
            )
        as_label_pool(fixed, "labels")
        return None, fixed.contiguous()
    if label_sampler is None and label_pool is None:
        raise ValueError(
            f"the generator is conditional (num_labels={width}): give labels=, label_sampler= or a "
            "label_pool= of real label vectors (SyntheticDataset.from_run takes the run's)"
        )
    if label_sampler is None or isinstance(label_sampler, str):
        mode = label_sampler or "joint"
        if mode not in ("joint", "balanced"):
            raise ValueError(
                f"label_sampler must be one of ('joint', 'balanced') or a sampler object, got {mode!r}"
            )
        if label_pool is None:
            raise ValueError(f"label_sampler={mode!r} resamples real label vectors: give label_pool=(M, L)")
        sampler: Any = JointLabelSampler(label_pool) if mode == "joint" else BalancedLabelSampler(label_pool)
    else:
        if label_pool is not None:
            raise ValueError("label_pool= is only used with label_sampler='joint' or 'balanced'")
        sampler = label_sampler
        if not callable(getattr(sampler, "sample", None)) or not hasattr(sampler, "num_labels"):
            raise TypeError(
                f"label_sampler must be 'joint', 'balanced' or an object with num_labels and "
                f"sample(n, generator); got {type(sampler).__name__}"
            )
    if int(sampler.num_labels) != width:
        raise ValueError(
            f"label width mismatch: the label sampler gives {sampler.num_labels} labels but the "
            f"generator takes num_labels={width}"
        )
    return sampler, None


def label_permutation(num_samples: int, shuffle_labels_seed: int) -> np.ndarray:
    """The fixed permutation of a label-shuffled dataset: item ``i`` gets the label of item ``perm[i]``.

    ``numpy.random.default_rng(shuffle_labels_seed).permutation(num_samples)``: a function of the two
    arguments only, independent of the images' seed.

    Raises:
        ValueError: ``num_samples`` not a positive int, or ``shuffle_labels_seed`` not a non-negative int.
    """
    check_integer("num_samples", num_samples, 1)
    seed = shuffle_labels_seed
    check_integer("shuffle_labels_seed", seed, 0)
    return np.random.default_rng(int(seed)).permutation(int(num_samples))
