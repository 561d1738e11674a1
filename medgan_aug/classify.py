"""Downstream classifiers for the augmentation study and as an in-domain feature extractor.

One training loop serves real, synthetic and mixed data: anything that yields the shared dict items
``{"image": float32 (C, H, W) in [0, 1], "label": float32 (L,)}`` goes through :func:`train_classifier`.
A ``batch_transform`` (for example ``MixSyntheticd``) acts on each collated batch before the step.

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
import math
import os
import time
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
import torch
from monai.data import DataLoader
from monai.networks.nets import ResNet
from monai.transforms import (
    Compose,
    EnsureTyped,
    RandAdjustContrastd,
    RandAffined,
    RandGaussianNoised,
    ScaleIntensityRanged,
)
from torch import nn

from medgan_aug.atomic import atomic_path

__all__ = [
    "CLASSIFIER_NAMES",
    "TASKS",
    "SmallCNN",
    "ResNet18Classifier",
    "build_classifier",
    "loss_for_task",
    "scores_from_logits",
    "train_classifier",
    "predict",
    "extract_features",
    "classical_augmentation",
    "save_classifier",
    "load_classifier",
]

CLASSIFIER_NAMES = ("small_cnn", "resnet18")
TASKS = ("multi-label, binary-class", "binary-class", "multi-class", "ordinal-regression")
_FILE_FORMAT = "medgan_aug.classifier"
_FILE_VERSION = 1


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} (medmnist task strings), got {task!r}")
    return task


def _is_softmax_task(task: str) -> bool:
    return _check_task(task) in ("multi-class", "ordinal-regression")


# --------------------------------------------------------------------------------------------- models
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
    for arg, value, low in (("in_channels", in_channels, 1), ("num_outputs", num_outputs, 1),
                            ("image_size", image_size, 16)):
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
    return nn.CrossEntropyLoss() if _is_softmax_task(task) else nn.BCEWithLogitsLoss()


def scores_from_logits(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Probabilities from logits: softmax over classes for multi-class/ordinal, sigmoid otherwise."""
    return torch.softmax(logits, dim=1) if _is_softmax_task(task) else torch.sigmoid(logits)


# ------------------------------------------------------------------------------------------- training
def _check_batch(batch: Any, model: nn.Module, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, Mapping) or "image" not in batch or "label" not in batch:
        keys = list(batch.keys()) if isinstance(batch, Mapping) else type(batch).__name__
        raise ValueError(f"{where} must be a dict with 'image' and 'label', got {keys}")
    images, labels = batch["image"], batch["label"]
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"{where}['image'] must be a (B, C, H, W) tensor, got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{where}['label'] must be a (B, L) tensor matching the image batch "
                         f"{tuple(images.shape)}, got {getattr(labels, 'shape', type(labels).__name__)}")
    arch = getattr(model, "arch", None)
    if arch is not None:
        if images.shape[1] != arch["in_channels"]:
            raise ValueError(f"{where}['image'] has {images.shape[1]} channels, the model expects "
                             f"in_channels={arch['in_channels']}")
        if labels.shape[1] != arch["num_outputs"]:
            raise ValueError(f"{where}['label'] has width {labels.shape[1]}, the model has "
                             f"num_outputs={arch['num_outputs']}")
    return images.as_subclass(torch.Tensor).float(), labels.as_subclass(torch.Tensor).float()


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
            (e.g. under ``torchrun``, with :func:`medgan_aug.distributed.distributed_context`). None: if
            one of more than one process is initialised; False: never; True: require one.

    Data parallelism (W processes; the caller owns the process group and calls this on every rank):
    ``batch_size`` is the global batch B (divisible by W). Every rank draws the one-process order of
    batches from ``seed`` and trains on its slice of B/W items
    (:class:`~medgan_aug.distributed.ShardedBatchSampler`); BatchNorm layers become
    :class:`~medgan_aug.distributed.SyncBatchNorm2d` (statistics over the global batch, in place in
    ``model``); rank 0's initial weights are broadcast; after each backward the gradients are averaged
    over the ranks, the gradient ``DistributedDataParallel`` computes. Per-item augmentation,
    ``batch_transform`` and dropout draw from per-rank seeds (:func:`~medgan_aug.distributed.rank_seed`)
    so ranks do not repeat each other's random draws. Without such draws (no random transforms, no
    dropout) W processes train the model one process trains with the same B, up to float summation
    order (tested); with them, the same distribution of models. Logged losses and the finite check use
    the mean over ranks, so a NaN stops every rank at the same step.

    Returns:
        dict with ``losses`` (list of per-step losses; global-batch means under data parallelism),
        ``iterations``, ``examples_seen`` (images after ``batch_transform``, over all ranks), ``seconds``
        and ``world_size``.
    """
    _check_task(task)
    for arg, value in (("iterations", iterations), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
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
        raise ValueError(f"batch_size {batch_size} (the global batch{cut}) must be divisible by the number "
                         f"of processes {shard.world_size}")
    device = torch.device(device)
    model.to(device).train()
    if shard is not None:
        shard.prepare(model)  # synchronised BatchNorm (new parameters: before the optimiser), rank 0's weights
    criterion = loss_for_task(task)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # Own seeds for this process's random draws: the run's seed in one process, a per-rank seed otherwise.
    own_seed = int(seed)
    if shard is not None:
        from medgan_aug.distributed import rank_seed

        own_seed = rank_seed(seed, shard.rank)
    loader = _training_loader(dataset, global_batch, n >= batch_size, int(seed), num_workers, shard)
    if batch_transform is not None and hasattr(batch_transform, "set_random_state"):
        batch_transform.set_random_state(seed=(own_seed + 1) % (2**32))

    losses: list[float] = []
    seen = 0
    start = time.perf_counter()
    bar = None
    if progress and (shard is None or shard.is_main):
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, desc="classifier", unit="it")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(own_seed)
        step = 0
        while step < iterations:
            for batch in loader:
                if batch_transform is not None:
                    batch = batch_transform(batch)
                images, labels = _check_batch(batch, model, "batch" if batch_transform is None
                                              else "batch returned by batch_transform")
                images, labels = images.to(device), labels.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(images), labels)
                if shard is None:
                    loss_value, batch_items = float(loss.detach()), int(images.shape[0])
                else:  # global-batch mean loss and size: every rank sees the same numbers
                    loss_sum, batch_items = shard.sum([float(loss.detach()), float(images.shape[0])])
                    loss_value, batch_items = loss_sum / shard.world_size, int(batch_items)
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"non-finite training loss {loss_value} at step {step}")
                loss.backward()
                if shard is not None:
                    shard.average_gradients(model)
                optimizer.step()
                losses.append(loss_value)
                seen += batch_items
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if step >= iterations:
                    break
    if bar is not None:
        bar.close()
    model.eval()
    return {"losses": losses, "iterations": step, "examples_seen": seen,
            "seconds": time.perf_counter() - start, "world_size": 1 if shard is None else shard.world_size}


def _classifier_shard(distributed: bool | None, device: str | torch.device) -> Any:
    """The :class:`~medgan_aug.distributed.Shard` to train on, or None for one process."""
    if distributed not in (None, True, False):
        raise ValueError(f"distributed must be None, True or False, got {distributed!r}")
    if distributed is False:
        return None
    from medgan_aug.distributed import current_shard

    shard = current_shard(device)
    if distributed and shard is None:
        raise ValueError("distributed=True needs an initialised torch.distributed process group of more than "
                         "one process (start with torchrun and join it, e.g. with distributed_context())")
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
        return DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=drop_last, generator=generator,
                          num_workers=num_workers)
    from monai.data.utils import set_rnd
    from torch.utils.data import BatchSampler, RandomSampler

    from medgan_aug.distributed import ShardedBatchSampler, rank_seed

    sampler = ShardedBatchSampler(BatchSampler(RandomSampler(dataset, generator=generator), batch, drop_last),
                                  shard)
    loader = DataLoader(dataset, batch_sampler=sampler, generator=generator, num_workers=num_workers,
                        worker_init_fn=functools.partial(_rank_worker_init, rank=shard.rank))
    if num_workers == 0:
        set_rnd(dataset, rank_seed(seed, shard.rank))
    return loader


def _rank_worker_init(worker_id: int, rank: int) -> None:
    """DataLoader worker seeding as MONAI's ``worker_init_fn``, with the rank mixed into the seed."""
    from monai.data.utils import set_rnd

    from medgan_aug.distributed import rank_seed

    info = torch.utils.data.get_worker_info()
    set_rnd(info.dataset, seed=rank_seed(info.seed, rank))


def _infer_task(dataset: Any, task: str | None) -> str:
    if task is not None:
        return _check_task(task)
    found = getattr(dataset, "task", None)
    if found is None and hasattr(dataset, "dataset"):  # torch Subset
        found = getattr(dataset.dataset, "task", None)
    return _check_task(found) if found is not None else "multi-label, binary-class"


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
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    was_training = model.training
    model.to(device).eval()
    scores, targets = [], []
    # An own generator: MONAI's DataLoader otherwise draws from and re-seeds torch's global RNG.
    for batch in DataLoader(
        dataset, batch_size=int(batch_size), shuffle=False, num_workers=0, generator=torch.Generator()
    ):
        images, labels = _check_batch(batch, model, "dataset batch")
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
        chunks = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    else:
        chunks = (
            b["image"]
            for b in DataLoader(images, batch_size=batch_size, shuffle=False, generator=torch.Generator())
        )
    for chunk in chunks:
        out.append(model.features(chunk.as_subclass(torch.Tensor).float().to(device)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, getattr(model, "embedding_dim", 0)), np.float32)


# -------------------------------------------------------------------------------------- augmentation
def classical_augmentation(
    image_size: int,
    *,
    prob: float = 0.5,
    rotate_degrees: float = 10.0,
    translate_fraction: float = 0.05,
    scale_fraction: float = 0.1,
    noise_std: float = 0.02,
    gamma_range: tuple[float, float] = (0.8, 1.25),
    keys: str = "image",
    seed: int | None = None,
) -> Compose:
    """Classical per-item augmentation for chest X-rays (MONAI dict transforms on ``"image"``).

    Random affine (rotation within ±``rotate_degrees``, translation within ±``translate_fraction`` of the
    side, per-axis scaling within ±``scale_fraction``), Gaussian noise, and a random gamma contrast
    change, each applied with probability ``prob``; the result is clipped to [0, 1] and returned as a
    plain float32 tensor of the input shape.

    There is deliberately NO left-right flip: chest radiographs are not left-right symmetric (the heart
    lies on the patient's left, the aortic arch and stomach bubble too, the liver on the right), so a
    mirrored film is an anatomically impossible image (situs inversus aside) and teaches the classifier
    a wrong anatomy, e.g. for cardiomegaly. Vertical flips and 90° rotations are excluded for the same
    reason.

    Args:
        image_size: image side in pixels (sets translation in pixels).
        prob: probability of each of the three random transforms.
        rotate_degrees: maximal absolute rotation.
        translate_fraction: maximal absolute translation as a fraction of ``image_size``.
        scale_fraction: maximal relative zoom in or out.
        noise_std: standard deviation of the additive Gaussian noise (intensities in [0, 1]).
        gamma_range: range of the contrast gamma.
        keys: dict key(s) of the image.
        seed: if given, seeds all random transforms (MONAI ``set_random_state``). ``train_classifier``
            re-seeds dataset transforms from its own seed anyway.

    Returns:
        A MONAI ``Compose``.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    for arg, value in (("rotate_degrees", rotate_degrees), ("translate_fraction", translate_fraction),
                       ("scale_fraction", scale_fraction), ("noise_std", noise_std)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")
    if len(gamma_range) != 2 or not 0 < gamma_range[0] <= gamma_range[1]:
        raise ValueError(f"gamma_range must be (low, high) with 0 < low <= high, got {gamma_range!r}")
    shift = translate_fraction * image_size
    transform = Compose([
        RandAffined(
            keys=keys,
            prob=prob,
            rotate_range=(math.radians(rotate_degrees),),
            translate_range=(shift, shift),
            scale_range=(scale_fraction, scale_fraction),
            mode="bilinear",
            padding_mode="border",
        ),
        RandAdjustContrastd(keys=keys, prob=prob, gamma=tuple(gamma_range)),
        RandGaussianNoised(keys=keys, prob=prob, mean=0.0, std=noise_std),
        ScaleIntensityRanged(keys=keys, a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
        EnsureTyped(keys=keys, data_type="tensor", dtype=torch.float32, track_meta=False),
    ])
    if seed is not None:
        transform.set_random_state(seed=int(seed))
    return transform


# ------------------------------------------------------------------------------------------ save/load
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
    raise TypeError(f"{where} must hold plain types (None, bool, int, float, str, list, dict, tensor), "
                    f"got {type(value).__name__}")


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
        raise ValueError(f"{path}: unsupported classifier file version {payload.get('version')!r} "
                         f"(this code reads version {_FILE_VERSION})")
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
