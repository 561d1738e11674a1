"""Data-parallel GAN and classifier training over several processes (``torchrun``): gloo on CPU, NCCL on GPUs.

One command for one process or many::

    medgan-aug train --path ../shared/data/nih1000_chestmnist.npz --conditional --out runs/gan
    torchrun --nproc_per_node 2 -m medgan_aug train --path ../shared/data/nih1000_chestmnist.npz \
        --conditional --out runs/gan

:func:`medgan_aug.apps.train_gan` calls :func:`distributed_context`, which joins the process group
that ``torchrun`` describes in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and yields a :class:`Shard`; without ``WORLD_SIZE > 1`` it yields None
and training is the plain single-process code path, unchanged.

What a run with W processes computes, for the global batch B (``--batch-size``, divisible by W):

* **Data.** :class:`ShardedBatches`: batch ``i`` is the same B indices as in one process
  (:class:`medgan_aug.data.SeededBatches`, a pure function of ``i``), and rank r takes positions
  ``[r B/W, (r+1) B/W)`` -- a ``DistributedSampler`` over the global batch, with no sampler state to
  checkpoint.
* **Randomness.** Every rank holds the same noise and DiffAugment generators; each draw is made for the
  whole global batch and sliced (:meth:`Shard.slice`, :class:`ShardedDiffAugment`), so rank r's latents
  and augmentation parameters are exactly rows ``[r B/W, (r+1) B/W)`` of the one-process draw.
* **Gradients.** After every ``backward`` the gradients are averaged over the ranks with one
  ``all_reduce`` (:meth:`Shard.average_gradients`): the gradient of the global-batch mean loss, which is
  what ``DistributedDataParallel`` computes. It is done explicitly rather than by wrapping G and D in
  DDP because a GAN step toggles ``requires_grad`` on D and runs D inside G's step (DDP's reducer then
  waits for gradients that never come), and because R1 uses ``torch.autograd.grad(create_graph=True)``,
  which DDP does not support.
* **BatchNorm.** G and D normalise with batch statistics, and per-rank statistics over B/W images are
  not those of the B-image batch: plain BatchNorm would make W processes train a different model
  (noisier statistics) than one process. :class:`SyncBatchNorm2d` computes the statistics over the
  global batch with differentiable ``all_reduce`` sums (:func:`all_reduce_sum`), so forward *and*
  backward equal one-process BatchNorm on B images up to float summation order. (``torch.nn.SyncBatchNorm``
  would do the same but supports only GPU tensors; this one works with gloo on CPU and NCCL on GPU.)
  The EMA generator is never synchronised: it is only run on rank 0 (samples, standing statistics,
  export).
* **Losses.** Logged and divergence-checked values are means over the ranks (:meth:`Shard.mean`), so
  every rank sees the same numbers and a NaN stops all ranks at the same iteration.
* **Outputs.** Only rank 0 writes ``config.json``, checkpoints, samples, ``losses.csv``, the progress
  bar and ``generator.pt``; checks of the run folder and the resume checkpoint are made on rank 0 and
  their outcome (or error) is broadcast (:func:`run_on_main`), so a multi-node run needs the run folder
  on rank 0's machine only (and the data file on every machine). Resume works as in one process (and
  the run can be resumed with a different number of processes: same model up to float tolerance).

Result: W processes train the same generator as one process with the same global batch, to float
tolerance. Measured on CPU (``tests/test_distributed.py``: 2 processes, global batch 16, 10 iterations,
conditional, DiffAugment on): largest weight difference 2.5e-7 (summation order in the gradient and
BatchNorm reductions), against 3e-3 when each rank normalises with its own half batch; the test's
tolerance is 1e-5. With the same number of processes a resumed run is bit-identical on CPU. The NCCL/GPU
path (``--device cuda``: one GPU per process, ``cuda:LOCAL_RANK``) uses the same code but has not been
run here (no GPU on the development machines).

Classifiers (:func:`medgan_aug.engines.train_classifier` under an initialised process group, e.g.
``torchrun -m medgan_aug classify``) use the same pieces: :class:`ShardedBatchSampler` slices the
one-process batches, :meth:`Shard.prepare` synchronises BatchNorm and :meth:`Shard.average_gradients`
averages gradients; per-item augmentation, batch mixing and dropout draw from per-rank seeds
(:func:`rank_seed`). The study under ``torchrun`` instead shares out whole groups and trains each in one
process (:func:`single_process`).

Data parallelism in the manner of Li et al., "PyTorch Distributed:
Experiences on Accelerating Data Parallel Training", VLDB 2020; synchronised BatchNorm as in Peng et al.,
"MegDet: A Large Mini-Batch Object Detector", CVPR 2018.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from medgan_aug.data.batches import SeededBatches
from medgan_aug.transforms.diffaugment import DiffAugment

__all__ = [
    "all_reduce_sum",
    "SyncBatchNorm2d",
    "convert_sync_batchnorm",
    "Shard",
    "run_on_main",
    "distributed_context",
    "single_process",
    "current_shard",
    "rank_seed",
    "ShardedBatchSampler",
    "ShardedBatches",
    "ShardedDiffAugment",
]


T = TypeVar("T")


# Set by :func:`single_process`: code that would join or use the process group runs as one process.
_LOCAL_ONLY = False


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from err


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a sum is the sum of the gradients (also all-reduced).

    Backward calls itself, so double backward (R1's ``create_graph=True``) works too.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over all ranks, differentiably (every rank must call it in the same order)."""
    return _AllReduceSum.apply(tensor)


# Not torch.nn.SyncBatchNorm: it takes GPU tensors only; this one also runs with gloo on CPU (module docstring).
class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are over the batch of all processes (any device).

    Same parameters, buffers and ``state_dict`` keys as :class:`torch.nn.BatchNorm2d`; in eval mode, in
    a single process, or with ``sync = False`` it *is* BatchNorm2d. In training mode under an initialised
    process group of size > 1, mean and (biased) variance come from two differentiable sums over the
    ranks (:func:`all_reduce_sum`; two passes, as stable as one-process BatchNorm), so gradients flow
    across ranks exactly as through one-process BatchNorm on the concatenated batch; running statistics
    are updated with the global mean and unbiased variance, identically on every rank.
    """

    sync: bool = True

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.sync and dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        if dist.get_world_size() == 1:
            return super().forward(input)
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        dims = (0, 2, 3)
        local_count = input.numel() // input.shape[1]
        packed = torch.cat([input.sum(dims), input.new_tensor([float(local_count)])])
        packed = all_reduce_sum(packed)
        count = packed[-1].detach()
        mean = packed[:-1] / count
        centered = input - mean.view(1, -1, 1, 1)
        var = all_reduce_sum(centered.pow(2).sum(dims)) / count
        out = centered * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                n = float(count)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return out


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a :class:`SyncBatchNorm2d` with the same state.

    Call it before building the optimisers (the parameters are new objects). Returns ``module``.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, SyncBatchNorm2d):
            sync = SyncBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            state = child.state_dict()
            if state:
                sync = sync.to(next(iter(state.values())).device)
            sync.load_state_dict(state)
            sync.train(child.training)
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module


@dataclass
class Shard:
    """This process's place in a data-parallel run: rank, world size and the collectives training uses.

    Attributes:
        rank: global rank (0 writes outputs). world_size: number of processes.
        local_rank: rank on this machine (picks the GPU). device: where this rank trains.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes the run folder."""
        return self.rank == 0

    def local_batch_size(self, global_batch: int) -> int:
        """``global_batch // world_size``; ValueError unless it divides evenly."""
        if global_batch % self.world_size:
            raise ValueError(
                f"batch_size {global_batch} (the global batch) must be divisible by the number of processes "
                f"{self.world_size}"
            )
        return global_batch // self.world_size

    def slice(self, full: torch.Tensor) -> torch.Tensor:
        """This rank's rows ``[r n/W, (r+1) n/W)`` of a global-batch tensor of ``n`` rows."""
        b = self.local_batch_size(full.shape[0])
        return full[self.rank * b : (self.rank + 1) * b]

    def mean(self, value: torch.Tensor | float) -> float:
        """The mean of a scalar over all ranks (the same float on every rank)."""
        t = torch.as_tensor(value).detach().reshape(1).to(device=self.device, dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each of ``values`` summed over all ranks, with one ``all_reduce`` (float64)."""
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return [float(v) for v in t.tolist()]

    def average_gradients(self, module: nn.Module) -> None:
        """Average the gradients of ``module``'s parameters over all ranks (one flat ``all_reduce``).

        Parameters without a gradient are skipped; every rank has the same ones (same program).
        """
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def prepare(self, module: nn.Module) -> nn.Module:
        """:func:`convert_sync_batchnorm`, then rank 0's parameters and buffers to every rank."""
        convert_sync_batchnorm(module)
        self.broadcast_state(module)
        return module

    def broadcast_state(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank."""
        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    @staticmethod
    def unsync(module: nn.Module) -> nn.Module:
        """Make the :class:`SyncBatchNorm2d` layers of ``module`` local (for a copy run on one rank only)."""
        for m in module.modules():
            if isinstance(m, SyncBatchNorm2d):
                m.sync = False
        return module

    def barrier(self) -> None:
        dist.barrier()


def run_on_main(shard: Shard | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give its result -- or raise its exception -- on every rank.

    Used for what depends on the run folder (existence checks, the resume checkpoint), which only rank 0
    needs to see. Without a shard it is ``fn()``.
    """
    if shard is None:
        return fn()
    payload: list[Any] = [None]
    if shard.is_main:
        try:
            payload[0] = ("ok", fn())
        except Exception as err:  # re-raised below, on every rank
            payload[0] = ("error", err)
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        raise value
    return value


@contextmanager
def distributed_context(device: str = "cpu", timeout_minutes: float = 30.0) -> Iterator[Shard | None]:
    """Join the ``torchrun`` process group if the environment has one; yield a :class:`Shard` or None.

    With ``WORLD_SIZE`` unset or 1: yields None (single process; nothing is initialised). Otherwise
    initialises ``torch.distributed`` from the environment (``env://``) unless it already is -- NCCL when
    ``device`` is ``"cuda"``/``"cuda:N"``/``"auto"`` with a GPU, gloo otherwise -- and destroys the group
    on exit if it created it. On GPUs each process uses ``cuda:LOCAL_RANK``.

    Raises:
        ValueError: a CUDA device was asked for but none is available, or a bad torchrun environment.
    """
    world = _env_int("WORLD_SIZE", 1)
    if _LOCAL_ONLY or (world <= 1 and not (dist.is_available() and dist.is_initialized())):
        yield None
        return
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    want_cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if want_cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available")
        torch_device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
    created = False
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if want_cuda else "gloo", timeout=timedelta(minutes=timeout_minutes)
        )
        created = True
    shard = Shard(dist.get_rank(), dist.get_world_size(), local_rank, torch_device)
    if shard.rank != rank and "RANK" in os.environ:
        raise ValueError(f"process group rank {shard.rank} differs from RANK={rank}")
    try:
        yield shard
    finally:
        if created:
            dist.destroy_process_group()


@contextmanager
def single_process() -> Iterator[None]:
    """Inside this block, training runs as one process even under ``torchrun`` or a process group.

    :func:`distributed_context` yields None and :func:`current_shard` returns None, so
    :func:`~medgan_aug.apps.train_gan` and :func:`~medgan_aug.engines.train_classifier` train alone.
    Used by the study, whose ``torchrun`` processes each take whole (fraction, seed) groups.
    """
    global _LOCAL_ONLY
    previous, _LOCAL_ONLY = _LOCAL_ONLY, True
    try:
        yield
    finally:
        _LOCAL_ONLY = previous


def current_shard(device: str | torch.device = "cpu") -> Shard | None:
    """This process's :class:`Shard` if a process group of more than one process is initialised, else None.

    The caller owns the process group (e.g. :func:`distributed_context`, or its own
    ``torch.distributed.init_process_group``); ``device`` is where this rank trains. None inside
    :func:`single_process`.
    """
    if _LOCAL_ONLY or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return Shard(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), torch.device(device))


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank ``rank``'s own random streams in a run seeded with ``seed`` (NumPy ``SeedSequence``).

    Ranks of a data-parallel run share the seed that orders the data (so they agree on the global batch)
    but must not share the streams of per-item augmentation, batch mixing and dropout: with one seed,
    item k of every rank's slice would get the same augmentation and the same dropout mask. Distinct
    ranks get independent 32-bit seeds; the same (seed, rank) always gets the same one.
    """
    return int(np.random.SeedSequence([int(seed) % 2**63, int(rank)]).generate_state(1)[0])


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Rank r's slice ``[r B/W, (r+1) B/W)`` of every batch of a one-process batch sampler.

    ``batch_sampler`` (e.g. ``BatchSampler(RandomSampler(dataset, generator=g), B, drop_last)``) is run
    identically on every rank (same generator seed), so the ranks' slices together are exactly the
    one-process batches, and no sampler state needs to be shared: a ``DistributedSampler`` over the global
    batch. Every batch must divide evenly by the number of processes.
    """

    def __init__(self, batch_sampler: Any, shard: Shard) -> None:
        self.batch_sampler = batch_sampler
        self.shard = shard

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batch_sampler:
            b = self.shard.local_batch_size(len(batch))
            yield list(batch[self.shard.rank * b : (self.shard.rank + 1) * b])

    def __len__(self) -> int:
        return len(self.batch_sampler)


class ShardedBatches(SeededBatches):
    """:class:`~medgan_aug.data.SeededBatches` where each rank gets its slice of the global batch.

    ``batch_size`` is the global batch B; rank r's batch ``i`` is positions ``[r B/W, (r+1) B/W)`` of the
    one-process batch ``i``. ``len()`` (the ignite epoch length) is the one-process value.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        batch_size: int,
        seed: int,
        shard: Shard,
    ) -> None:
        super().__init__(images, labels, batch_size, seed)
        self.shard = shard
        self.local_batch_size = shard.local_batch_size(self.batch_size)

    def indices(self, iteration: int) -> np.ndarray:
        """This rank's row indices of global batch ``iteration``."""
        b, r = self.local_batch_size, self.shard.rank
        return super().indices(iteration)[r * b : (r + 1) * b]


class ShardedDiffAugment(DiffAugment):
    """:class:`~medgan_aug.transforms.DiffAugment` drawing its parameters for the global batch.

    Every rank's generator is in the same state; each draw has the one-process shape (global batch
    first) and the rank keeps its rows, so augmentation equals the one-process augmentation row for row.
    """

    def __init__(self, augment: DiffAugment, shard: Shard) -> None:
        super().__init__(
            augment.policy, augment.translation_ratio, augment.cutout_ratio, generator=augment.generator
        )
        self.shard = shard

    def _rand(self, *shape: int, x: torch.Tensor) -> torch.Tensor:
        full = torch.rand(shape[0] * self.shard.world_size, *shape[1:], generator=self.generator)
        return self.shard.slice(full).to(device=x.device, dtype=x.dtype)

    def _randint(self, low: int, high: int, shape: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        full_shape = (shape[0] * self.shard.world_size, *shape[1:])
        return self.shard.slice(torch.randint(low, high, full_shape, generator=self.generator)).to(x.device)
