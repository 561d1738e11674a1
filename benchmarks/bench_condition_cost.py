"""Seconds per classifier training step of every study condition, relative to ``real``, side by side.

Each condition trains the study's classifier (:func:`medgan_aug.engines.train_classifier`, SmallCNN by
default, Adam, BCE) for ``--steps`` steps on the real NIH sample (the packaged ``nih1000``, 28 px) with the
batch transform the study builds for it (:func:`medgan_aug.apps.study.conditions.condition_batch_transform`);
the generated images come from a materialized :class:`SyntheticDataset` of an untrained DCGAN (the cost of
mixing does not depend on the weights); ``real+pseudo@0.5`` draws the training images outside a 25% subset,
labelled by an untrained classifier (:func:`medgan_aug.apps.teacher.pseudo_labelled_pool`; the teacher's
training is a cost of its own, not per step). ``synthetic-pretrain+real`` runs both of its phases
(:func:`medgan_aug.apps.study.pretraining.train_arm`: ``--steps`` synthetic steps, then ``--steps`` real ones),
and its seconds are divided by the real steps: its cost per step of the ``real`` budget, about 2x by
construction. One more arm, ``real+classical (per item)``, is the previous per-item MONAI
``classical_augmentation`` on the dataset, for reference.

The conditions run in turn within each of ``--rounds`` rounds, so load from other processes hits all of
them alike; the table gives each condition's median seconds per step over the rounds and the median over
rounds of its ratio to ``real`` in the same round (paired, so slow drifts of the machine's load cancel).
The study's target: every mixing condition <= 1.1x ``real``.

Usage::

    python benchmarks/bench_condition_cost.py [--steps 40] [--rounds 3] [--batch-size 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from medgan_aug.apps.study.conditions import condition_batch_transform, parse_condition
from medgan_aug.apps.study.pretraining import train_arm
from medgan_aug.apps.teacher import pseudo_labelled_pool, teacher_labeller
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.data.teacher_labelled import TeacherLabelledDataset
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.transforms.classical import classical_augmentation

CONDITIONS = (
    "real",
    "real+classical",
    "real+synthetic@0.5",
    "real+shuffled@0.5",
    "real+synthetic@0.5+classical",
    "real+mixup",
    "real+cutmix",
    "synthetic-only",
    "real+pseudo@0.5",
    "synthetic-pretrain+real",
)
PER_ITEM = "real+classical (per item, before)"


def seconds_per_step(
    arm: str, args: argparse.Namespace, source: SyntheticDataset, pseudo: TeacherLabelledDataset
) -> float:
    """Wall seconds per real step of ``args.steps`` real steps of one arm (DataLoader, transform, forward,
    backward; for ``synthetic-pretrain+real`` its synthetic steps too)."""
    per_item = arm == PER_ITEM
    train = MedMNISTDataset(sample="nih1000", transform=classical_augmentation(28) if per_item else None)
    condition = parse_condition("real+classical" if per_item else arm)
    batch_transform = None
    if not per_item:
        batch_transform = condition_batch_transform(
            condition,
            source if condition.needs_gan else None,
            pseudo=pseudo if condition.needs_pool else None,
        )
    model = build_classifier(args.classifier, 1, train.num_labels, 28, seed=0)
    started = time.perf_counter()
    train_arm(
        model, train, condition, synthetic=source, task=train.task, iterations=args.steps,
        batch_size=args.batch_size, lr=1e-3, seed=0, batch_transform=batch_transform,
    )  # fmt: skip
    return (time.perf_counter() - started) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per condition and round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (each runs every condition once)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--classifier", default="small_cnn", choices=("small_cnn", "resnet18"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    real = MedMNISTDataset(sample="nih1000")
    torch.manual_seed(0)
    generator = DCGANGenerator(28, num_labels=real.num_labels, base_channels=32)
    source = SyntheticDataset(generator, 5000, label_pool=real.targets, seed=0).materialize()
    teacher = build_classifier(args.classifier, 1, real.num_labels, 28, seed=1)  # untrained: same cost
    labelled = low_data_indices(real.labels, fraction=0.25, seed=0)
    pseudo = pseudo_labelled_pool({"sample": "nih1000"}, labelled, teacher_labeller(teacher, real.task))
    arms = (*CONDITIONS, PER_ITEM)
    for arm in arms:  # warm-up: first-call costs out of the timings
        seconds_per_step(arm, argparse.Namespace(**{**vars(args), "steps": 2}), source, pseudo)
    timings: dict[str, list[float]] = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm in arms:
            timings[arm].append(seconds_per_step(arm, args, source, pseudo))

    reference = np.asarray(timings["real"])
    print(
        f"{args.classifier}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds, "
        f"{args.threads} thread(s), torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    print(f"{'condition':<36} {'s/step (median)':>16} {'vs real':>8}   ratio to real per round")
    for arm in arms:
        ratios = np.asarray(timings[arm]) / reference
        rounds = " ".join(f"{r:.2f}" for r in ratios)
        print(f"{arm:<36} {np.median(timings[arm]):>16.4f} {np.median(ratios):>7.2f}x   {rounds}")


if __name__ == "__main__":
    main()
