"""Study conditions: what the training batches of one arm hold, and the batch transform that makes them.

Every condition trains on the same real batches (same items, same order, for a seed), as a collated batch
dict; a condition only changes what a batch transform does to that batch before the step
(:func:`condition_batch_transform`). All augmentation is batch-level, so no arm pays for per-item work:

* ``+classical``: :class:`~medgan_aug.transforms.BatchClassicalAugmentationd` (per-item affine, gamma
  contrast and noise, applied to the whole batch at once); always first, so only real rows are augmented;
* ``+synthetic@R``: :class:`~medgan_aug.transforms.MixSyntheticd` replaces a share R of the rows by
  generated items;
* ``+shuffled@R``: the same, from the same generated images with their labels permuted among the
  generated items (:meth:`~medgan_aug.data.SyntheticDataset.with_shuffled_labels`): the placebo;
* ``+pseudo@R``: the same transform, drawing from the real training images outside the labelled subset
  with a teacher's soft scores as labels (:class:`~medgan_aug.data.teacher_labelled.TeacherLabelledDataset`; Lee 2013);
* ``+mixup`` / ``+cutmix``: :class:`~medgan_aug.transforms.MixUpBatchd` /
  :class:`~medgan_aug.transforms.CutMixBatchd` (MONAI's ``MixUp`` / ``CutMix``, targets mixed alike).

One condition adds a phase before the real batches instead: ``synthetic-pretrain[@N]+real`` trains first on
generated images only, then exactly as ``real`` (its real phase's transform is built here, the two phases
are run by :func:`medgan_aug.apps.study.pretraining.train_arm`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from monai.transforms import Compose

from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.data.teacher_labelled import TeacherLabelledDataset
from medgan_aug.transforms.classical import BatchClassicalAugmentationd
from medgan_aug.transforms.mix import MixSyntheticd
from medgan_aug.transforms.regularization import CutMixBatchd, MixUpBatchd

__all__ = ["MIXERS", "PRETRAIN", "Condition", "parse_condition", "condition_batch_transform"]


#: Batch regularisers a condition may add to the real batches.
MIXERS = ("mixup", "cutmix")

_FORMS = (
    "real, real+classical, real+synthetic@R, real+shuffled@R, real+pseudo@R (0<R<1), real+mixup, "
    "real+cutmix (each of the last five at most once, one of them, optionally with +classical), "
    "synthetic-only, or synthetic-pretrain+real, synthetic-pretrain@N+real (N >= 1 synthetic steps), "
    "optionally with +classical"
)

#: Prefix of the synthetic pretraining conditions (``synthetic-pretrain[@N]+real[+classical]``).
PRETRAIN = "synthetic-pretrain"


@dataclasses.dataclass(frozen=True)
class Condition:
    """What the training batches of one study arm hold.

    Names (R: the share of every batch replaced by generated images, 0 < R < 1):

    * ``real``: the real batches as they are (the reference every arm is compared with);
    * ``real+classical``: classical augmentation (a small random affine, gamma contrast, Gaussian noise;
      no flips), drawn per item and applied to the batch;
    * ``real+synthetic@R``: a share R of every batch replaced by images of the group's GAN with their
      conditioning labels;
    * ``real+shuffled@R``: the placebo: the same generated images, with their labels permuted among the
      generated items (a fixed permutation seeded by the study seed), so the images carry no label
      information; a gain of ``synthetic@R`` over ``shuffled@R`` is what the labels of the generated
      images add;
    * ``real+pseudo@R``: pseudo-labelling (Lee, "Pseudo-Label", ICML 2013 workshop): a share R of every
      batch replaced by real training-split images outside the labelled subset (never val or test images),
      labelled with the soft scores (probabilities, never rounded) of the cell's teacher, the classifier
      the ``real`` arm trains (:mod:`medgan_aug.apps.teacher`); the control a generator trained on
      unlabelled images must beat. A subset that is the whole training split (fraction 1.0) has no pool;
    * ``real+mixup``, ``real+cutmix``: the regularisers users already have, MixUp (Zhang et al., ICLR
      2018) and CutMix (Yun et al., ICCV 2019) on the real batches;
    * any of the above with ``+classical`` (e.g. ``real+synthetic@R+classical``): classical augmentation
      of the real rows first;
    * ``synthetic-only``: every row generated;
    * ``synthetic-pretrain+real`` and ``synthetic-pretrain@N+real``: synthetic pretraining followed by real
      fine-tuning (RoentGen-v2, 2025, found it beat mixing generated images into the real batches): the
      classifier first trains N steps (default: the real budget, ``classifier.iterations``) on the group's
      generated images only (same batch size, learning rate and optimiser; labels as ``synthetic.labels``
      says), then trains exactly as the ``real`` arm: the same real batches in the same order, for the same
      number of steps. The weights carry over; the Adam state is new for the real phase (the usual fine-tuning
      practice, and so the real phase is the ``real`` arm's training from other initial weights).
      ``synthetic-pretrain+real+classical`` adds classical augmentation to the real phase. The name puts the
      phases in training order, and the number of synthetic steps in the name (so in the run's key, and a
      study can compare several lengths as arms; ``@N`` is a step count, not a share like ``synthetic@R``).

    Attributes:
        name: the condition's name.
        synthetic_ratio: share of generated rows (1.0 for ``synthetic-only``, 0 without a GAN).
        classical: classical augmentation of the real rows.
        shuffled_labels: the generated rows carry permuted labels (the placebo).
        mixer: ``"mixup"``, ``"cutmix"`` or None.
        pseudo_ratio: share of rows replaced by teacher-labelled unlabelled real images (0 without).
        synthetic_pretrain: the classifier trains on generated images only before its real steps.
        pretrain_iterations: the number N of those synthetic steps; None: as many as the real ones.
    """

    name: str
    synthetic_ratio: float = 0.0
    classical: bool = False
    shuffled_labels: bool = False
    mixer: str | None = None
    pseudo_ratio: float = 0.0
    synthetic_pretrain: bool = False
    pretrain_iterations: int | None = None

    @property
    def needs_gan(self) -> bool:
        return self.synthetic_ratio > 0 or self.synthetic_pretrain

    def pretrain_steps(self, iterations: int) -> int:
        """Synthetic pretraining steps of this arm when its real phase does ``iterations`` steps: 0 without
        pretraining, N for ``synthetic-pretrain@N+real``, else ``iterations``."""
        if not self.synthetic_pretrain:
            return 0
        return int(iterations) if self.pretrain_iterations is None else self.pretrain_iterations

    @property
    def needs_pool(self) -> bool:
        """Whether the arm draws unlabelled real training images (``real+pseudo@R``), labelled by a teacher."""
        return self.pseudo_ratio > 0


def parse_condition(name: str) -> Condition:
    """Parse a condition name (see :class:`Condition`), with a clear error for anything else.

    Raises:
        ValueError: an unknown name; the message lists the forms accepted.
    """
    if not isinstance(name, str):
        raise ValueError(f"unknown condition {name!r}: a condition is a name (str); use {_FORMS}")
    if name == "synthetic-only":
        return Condition(name, synthetic_ratio=1.0)
    if name.startswith(PRETRAIN):
        return _parse_pretrain(name)
    parts = name.split("+")
    fields: dict[str, Any] = {}
    ok = parts[0] == "real"
    for part in parts[1:]:
        kind, _, value = part.partition("@")
        if part == "classical" and "classical" not in fields:
            fields["classical"] = True
        elif "mix" in fields:  # one way of mixing a batch
            ok = False
        elif kind in ("synthetic", "shuffled", "pseudo") and value:
            try:
                ratio = float(value)
            except ValueError:
                ratio = float("nan")
            ok = ok and 0.0 < ratio < 1.0
            if kind == "pseudo":
                fields.update(mix=kind, pseudo_ratio=ratio)
            else:
                fields.update(mix=kind, synthetic_ratio=ratio, shuffled_labels=kind == "shuffled")
        elif part in MIXERS:
            fields.update(mix=part, mixer=part)
        else:
            ok = False
    if not ok:
        raise ValueError(f"unknown condition {name!r}; use {_FORMS}")
    fields.pop("mix", None)
    return Condition(name, **fields)


def _parse_pretrain(name: str) -> Condition:
    """``synthetic-pretrain[@N]+real[+classical]``, N a positive integer written in ASCII digits."""
    head, _, rest = name.partition("+")
    count = head[len(PRETRAIN) :]
    digits = count[1:]
    steps_ok = not count or (count[0] == "@" and digits.isascii() and digits.isdigit() and int(digits) > 0)
    if not steps_ok or rest not in ("real", "real+classical"):
        raise ValueError(f"unknown condition {name!r}; use {_FORMS}")
    return Condition(
        name,
        classical=rest == "real+classical",
        synthetic_pretrain=True,
        pretrain_iterations=int(digits) if count else None,
    )


def condition_batch_transform(
    condition: Condition,
    synthetic: SyntheticDataset | TeacherLabelledDataset | None = None,
    *,
    shuffle_labels_seed: int = 0,
    pseudo: TeacherLabelledDataset | None = None,
) -> Callable[[dict], dict] | None:
    """The batch transform of ``condition`` for :func:`~medgan_aug.engines.train_classifier` (None for ``real``).

    ``train_classifier`` seeds it from the run's seed (``set_random_state``). A condition with generated
    rows alone is a bare :class:`~medgan_aug.transforms.MixSyntheticd` (``mode="replace"``), exactly as
    the study has always built it (same random stream, so earlier runs stay reproducible); with
    ``+classical`` the two are chained in a MONAI ``Compose``, classical first. ``real+pseudo@R`` is the
    same ``MixSyntheticd``, drawing from ``pseudo`` (unlabelled real images with a teacher's soft scores).
    For ``synthetic-pretrain[@N]+real`` it is the real phase's (None, or classical augmentation); its
    generated images (``synthetic``, required all the same) are the pretraining phase's dataset
    (:func:`medgan_aug.apps.study.pretraining.train_arm`), never mixed into the real batches.

    Args:
        condition: the arm (:func:`parse_condition`).
        synthetic: the group's generated items (conditions with a GAN), with their conditioning labels
            or, wrapped in a :class:`~medgan_aug.data.teacher_labelled.TeacherLabelledDataset`, a teacher's soft scores;
            for ``shuffled@R`` the labels are permuted here, with ``shuffle_labels_seed``.
        shuffle_labels_seed: seed of the placebo's label permutation.
        pseudo: for ``real+pseudo@R``: the teacher-labelled unlabelled real images
            (:func:`medgan_aug.apps.teacher.pseudo_labelled_pool`).

    Raises:
        TypeError: ``condition`` is not a :class:`Condition`.
        ValueError: a condition with generated rows without ``synthetic``, or ``synthetic`` given for one
            without; likewise ``pseudo`` for ``real+pseudo@R``.
    """
    if not isinstance(condition, Condition):
        raise TypeError(
            f"condition must be a Condition (parse_condition(name)), got {type(condition).__name__}"
        )
    if condition.needs_gan and synthetic is None:
        raise ValueError(f"condition {condition.name!r} mixes in generated images: give synthetic=")
    if not condition.needs_gan and synthetic is not None:
        raise ValueError(f"synthetic= is only used by conditions with generated rows, not {condition.name!r}")
    if condition.needs_pool != (pseudo is not None):
        raise ValueError(
            f"condition {condition.name!r} mixes in pseudo-labelled real images: give pseudo="
            if condition.needs_pool
            else f"pseudo= is only used by real+pseudo@R conditions, not {condition.name!r}"
        )
    steps: list[Callable] = [BatchClassicalAugmentationd(keys="image")] if condition.classical else []
    if condition.synthetic_ratio > 0:
        assert synthetic is not None
        source = (
            synthetic.with_shuffled_labels(shuffle_labels_seed) if condition.shuffled_labels else synthetic
        )
        steps.append(MixSyntheticd(source=source, ratio=condition.synthetic_ratio, mode="replace"))
    elif condition.needs_pool:
        steps.append(MixSyntheticd(source=pseudo, ratio=condition.pseudo_ratio, mode="replace"))
    elif condition.mixer is not None:
        steps.append({"mixup": MixUpBatchd, "cutmix": CutMixBatchd}[condition.mixer](keys=("image", "label")))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else Compose(steps)
