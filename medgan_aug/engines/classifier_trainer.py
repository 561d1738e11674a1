"""Downstream classifiers for the augmentation study and as an in-domain feature extractor.

One training engine serves real, synthetic and mixed data: anything that yields the shared dict items
``{"image": float32 (C, H, W) in [0, 1], "label": float32 (L,)}`` goes through :func:`train_classifier`,
which runs a :class:`~medgan_aug.engines.classifier_engine.ClassifierTrainer` (MONAI's
``SupervisedTrainer``) with the handlers the GAN trainer uses too (progress bar, loss log, the finite-loss
check). A ``batch_transform`` (for example ``MixSyntheticd``) acts on each collated batch before the step.

Two architectures, both built by :func:`build_classifier`:

- ``"small_cnn"``: :class:`SmallCNN`, a few conv blocks; the fast CPU default.
- ``"resnet18"``: MONAI's 2D ResNet-18 (He et al., "Deep Residual Learning for Image Recognition",
  CVPR 2016), with a 3x3 first convolution and no max-pool as MedMNIST v2 uses at 28 px
  (Yang et al., "MedMNIST v2", Scientific Data 2023).

Both have ``features(x)`` (the penultimate embedding), used by generator evaluation for Fréchet / kernel
distances and precision/recall on in-domain features, and both can be saved to and loaded from a
self-describing weights-only file (:func:`save_classifier`, :func:`load_classifier`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch
from monai.data import DataLoader
from torch import nn

from medgan_aug.engines.classifier_engine import ClassifierTrainer, check_classifier_batch
from medgan_aug.engines.distributed import ShardedBatchSampler, current_shard, rank_seed
from medgan_aug.handlers.loss_log import LossHistory
from medgan_aug.handlers.progress import IterationProgress
from medgan_aug.networks.classifiers import loss_for_task, scores_from_logits
from medgan_aug.utils.tasks import check_task
from medgan_aug.utils.validation import check_integer, check_real

__all__ = ["train_classifier", "predict", "extract_features"]


def train_classifier(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    task: str,
    iterations: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    batch_transform: Callable[[dict], dict] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    num_workers: int = 0,
    distributed: bool | None = None,
    handlers: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train ``model`` in place for a fixed number of optimiser steps (Adam, loss by task).

    Batches are drawn by reshuffling ``dataset`` every pass (no replacement within a pass); the last
    incomplete batch of a pass is dropped when the dataset holds at least one full batch, so every step
    sees ``batch_size`` items (before ``batch_transform``).

    Determinism: for a fixed ``seed`` the run is reproducible, and does not change the caller's global
    random state. The shuffling comes from a ``torch.Generator`` seeded with ``seed``; MONAI's
    ``DataLoader`` seeds the random transforms inside ``dataset`` (e.g. :func:`classical_augmentation`)
    from that generator; a ``batch_transform`` with ``set_random_state`` (MONAI ``Randomizable``, such as
    ``MixSyntheticd``) is re-seeded from ``seed``; dropout and anything else drawing from torch's global
    generator run inside ``torch.random.fork_rng`` seeded with ``seed``. Initial weights come from
    :func:`build_classifier` (pass its ``seed``). Bit-identical weights hold on CPU for the same
    torch build, thread count and ``num_workers``; on GPU, non-deterministic cuDNN kernels can differ
    unless ``torch.use_deterministic_algorithms(True)`` is set by the caller.

    Args:
        model: a classifier from :func:`build_classifier` (any module mapping (B, C, H, W) to (B, L)).
        dataset: a map-style dataset of dict items {"image": (C, H, W), "label": (L,)}; real, synthetic
            and mixed data go through the same code.
        task: medmnist task string; chooses the loss (:func:`loss_for_task`).
        iterations: number of optimiser steps (>= 1).
        batch_size: items per batch drawn from ``dataset``.
        lr: Adam learning rate.
        seed: the run's seed.
        batch_transform: callable on the collated batch dict returning a batch dict (may add keys such
            as "synthetic" or change the batch size); applied before every step.
        device: torch device.
        progress: show a tqdm progress bar (on rank 0 only under data parallelism).
        num_workers: DataLoader worker processes (0 loads in-process).
        distributed: data-parallel training over the initialised ``torch.distributed`` process group
            (e.g. under ``torchrun``, with :func:`medgan_aug.engines.distributed_context`). None: if
            one of more than one process is initialised; False: never; True: require one.
        handlers: more ignite/MONAI handlers (objects with ``attach(engine)``), e.g. a
            :class:`~medgan_aug.handlers.ValidationSelection` that keeps the best state on a validation
            score and stops early; they may call ``engine.terminate()``.

    Data parallelism (W processes; the caller owns the process group and calls this on every rank):
    ``batch_size`` is the global batch B (divisible by W). Every rank draws the one-process order of
    batches from ``seed`` and trains on its slice of B/W items
    (:class:`~medgan_aug.engines.ShardedBatchSampler`); BatchNorm layers become
    :class:`~medgan_aug.engines.SyncBatchNorm2d` (statistics over the global batch, in place in
    ``model``); rank 0's initial weights are broadcast; after each backward the gradients are averaged
    over the ranks, the gradient ``DistributedDataParallel`` computes. Per-item augmentation,
    ``batch_transform`` and dropout draw from per-rank seeds (:func:`~medgan_aug.engines.rank_seed`)
    so ranks do not repeat each other's random draws. Without such draws (no random transforms, no
    dropout) W processes train the model one process trains with the same B, up to float summation
    order (tested); with them, the same distribution of models. Logged losses and the finite check use
    the mean over ranks, so a NaN stops every rank at the same step.

    Returns:
        dict with ``losses`` (list of per-step losses; global-batch means under data parallelism),
        ``iterations``, ``examples_seen`` (images after ``batch_transform``, over all ranks), ``seconds``
        and ``world_size``.

    Raises:
        TrainingDivergenceError: (a ``FloatingPointError``) the loss of step k (1-based) is NaN or
            infinite; raised before that step's backward pass and optimiser step, so ``model`` holds the
            weights after k - 1 steps.
        ValueError, TypeError: bad arguments, or a batch without the dict layout (named in the message).
    """
    check_task(task)
    for arg, value in (("iterations", iterations), ("batch_size", batch_size)):
        check_integer(arg, value, 1)
    check_real("lr", lr, positive=True)
    if batch_transform is not None and not callable(batch_transform):
        raise TypeError(f"batch_transform must be callable or None, got {type(batch_transform).__name__}")
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError as err:
        raise TypeError(
            f"dataset must be a map-style dataset with len(), got {type(dataset).__name__}"
        ) from err
    if n == 0:
        raise ValueError("dataset is empty: nothing to train on")

    shard = _classifier_shard(distributed, device)
    global_batch = min(int(batch_size), n)
    if shard is not None and global_batch % shard.world_size:
        cut = f", cut to the dataset's {n} items" if n < batch_size else ""
        raise ValueError(
            f"batch_size {batch_size} (the global batch{cut}) must be divisible by the number "
            f"of processes {shard.world_size}"
        )
    device = torch.device(device)
    model.to(device).train()
    if shard is not None:
        shard.prepare(
            model
        )  # synchronised BatchNorm (new parameters: before the optimiser), rank 0's weights
    criterion = loss_for_task(task)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # Own seeds for this process's random draws: the run's seed in one process, a per-rank seed otherwise.
    own_seed = int(seed)
    if shard is not None:
        own_seed = rank_seed(seed, shard.rank)
    loader = _training_loader(dataset, global_batch, n >= batch_size, int(seed), num_workers, shard)
    if batch_transform is not None and hasattr(batch_transform, "set_random_state"):
        batch_transform.set_random_state(seed=(own_seed + 1) % (2**32))

    engine = ClassifierTrainer(
        model,
        loader,
        optimizer,
        criterion,
        iterations,
        device,
        batch_transform,
        shard,
        list(handlers) or None,
    )
    log = LossHistory(("loss",))
    log.attach(engine)
    bar = IterationProgress() if progress and (shard is None or shard.is_main) else None
    if bar is not None:
        bar.attach(engine)
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(own_seed)
            engine.run()
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return {
        "losses": log.history["loss"],
        "iterations": engine.state.iteration,
        "examples_seen": engine.examples_seen,
        "seconds": time.perf_counter() - start,
        "world_size": 1 if shard is None else shard.world_size,
    }


def _classifier_shard(distributed: bool | None, device: str | torch.device) -> Any:
    """The :class:`~medgan_aug.engines.Shard` to train on, or None for one process."""
    if distributed not in (None, True, False):
        raise ValueError(f"distributed must be None, True or False, got {distributed!r}")
    if distributed is False:
        return None

    shard = current_shard(device)
    if distributed and shard is None:
        raise ValueError(
            "distributed=True needs an initialised torch.distributed process group of more than "
            "one process (start with torchrun and join it, e.g. with distributed_context())"
        )
    return shard


def _training_loader(
    dataset: torch.utils.data.Dataset, batch: int, drop_last: bool, seed: int, num_workers: int, shard: Any
) -> DataLoader:
    """The training DataLoader: reshuffled every pass from ``seed``; under a shard, this rank's slices.

    One process: ``DataLoader(shuffle=True, generator)``. Under a shard the same generator drives the
    same ``RandomSampler`` that ``shuffle=True`` builds (so the ranks' slices are exactly the one-process
    batches), while the dataset's random transforms are re-seeded per rank (MONAI seeds them from the
    shared generator, which would give item k of every rank the same augmentation).
    """
    generator = torch.Generator().manual_seed(seed)
    if shard is None:
        return DataLoader(
            dataset,
            batch_size=batch,
            shuffle=True,
            drop_last=drop_last,
            generator=generator,
            num_workers=num_workers,
        )
    from monai.data.utils import set_rnd
    from torch.utils.data import BatchSampler, RandomSampler

    sampler = ShardedBatchSampler(
        BatchSampler(RandomSampler(dataset, generator=generator), batch, drop_last), shard
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        generator=generator,
        num_workers=num_workers,
        worker_init_fn=functools.partial(_rank_worker_init, rank=shard.rank),
    )
    if num_workers == 0:
        set_rnd(dataset, rank_seed(seed, shard.rank))
    return loader


def _rank_worker_init(worker_id: int, rank: int) -> None:
    """DataLoader worker seeding as MONAI's ``worker_init_fn``, with the rank mixed into the seed."""
    from monai.data.utils import set_rnd

    info = torch.utils.data.get_worker_info()
    set_rnd(info.dataset, seed=rank_seed(info.seed, rank))


def _infer_task(dataset: Any, task: str | None) -> str:
    if task is not None:
        return check_task(task)
    found = getattr(dataset, "task", None)
    if found is None and hasattr(dataset, "dataset"):  # torch Subset
        found = getattr(dataset.dataset, "task", None)
    return check_task(found) if found is not None else "multi-label, binary-class"


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 256,
    *,
    task: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and targets for every item of ``dataset``, in order.

    Args:
        model: trained classifier.
        dataset: dict-item dataset.
        batch_size: inference batch size.
        task: medmnist task string (softmax for multi-class/ordinal, sigmoid otherwise); default: the
            dataset's ``.task`` attribute, else multi-label.
        device: torch device.

    Returns:
        ``(scores, targets)``: float64 arrays (N, L); scores are probabilities.
    """
    task = _infer_task(dataset, task)
    check_integer("batch_size", batch_size, 1)
    was_training = model.training
    model.to(device).eval()
    scores, targets = [], []
    # An own generator: MONAI's DataLoader otherwise draws from and re-seeds torch's global RNG.
    for batch in DataLoader(
        dataset, batch_size=int(batch_size), shuffle=False, num_workers=0, generator=torch.Generator()
    ):
        images, labels = check_classifier_batch(batch, model, "dataset batch")
        scores.append(scores_from_logits(model(images.to(device)), task).cpu().double().numpy())
        targets.append(labels.double().numpy())
    model.train(was_training)
    if not scores:
        raise ValueError("dataset is empty: nothing to predict")
    return np.concatenate(scores), np.concatenate(targets)


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: torch.Tensor | torch.utils.data.Dataset,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Penultimate embeddings (N, D) of a (N, C, H, W) tensor in [0, 1] or of a dict-item dataset."""
    if not hasattr(model, "features"):
        raise TypeError(f"model {type(model).__name__} has no features(x) method")
    was_training = model.training
    model.to(device).eval()
    out = []
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        chunks = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    else:
        chunks = (
            b["image"]
            for b in DataLoader(images, batch_size=batch_size, shuffle=False, generator=torch.Generator())
        )
    for chunk in chunks:
        out.append(model.features(chunk.as_subclass(torch.Tensor).float().to(device)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, getattr(model, "embedding_dim", 0)), np.float32)
