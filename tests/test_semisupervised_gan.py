"""The semi-supervised conditional GAN (``GANTrainer(labelled=...)``, issue 21) on the real NIH1000 images.

D's adversarial loss sees every real image (unlabelled ones without the projection term), AC-GAN's
auxiliary loss only the labelled real ones, G is conditioned only on labels of labelled rows, and without
unlabelled rows training is bit for bit what it was.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from ignite.engine import Events

import medgan_aug.engines.semi_supervised as semi_supervised
from medgan_aug.data.batches import SeededBatches
from medgan_aug.engines.gan_losses import GANObjective
from medgan_aug.engines.gan_trainer import GANTrainer
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_aug.transforms.diffaugment import DiffAugment

N = 96  # training images used (the first N of the 691 in the packaged NIH1000 sample)
ABSENT = object()  # _trainer passes no labelled argument at all


@pytest.fixture(scope="module")
def chest(chest28_path) -> tuple[torch.Tensor, torch.Tensor]:
    """Real 28 px chest X-rays in G's range [-1, 1] and their 14 findings as float vectors."""
    data = np.load(chest28_path)
    images = torch.from_numpy(data["train_images"][:N]).float().div(127.5).sub(1.0)[:, None]
    return images, torch.from_numpy(data["train_labels"][:N]).float()


def _pool(labels: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """The targets a pool carries: zeros on unlabelled rows."""
    return torch.where(labelled[:, None], labels, torch.zeros_like(labels))


OBJECTIVE_FIELDS = {field.name for field in dataclasses.fields(GANObjective)}


def _trainer(images, targets, labelled=ABSENT, *, conditional=True, seed=0, **kw) -> GANTrainer:
    torch.manual_seed(seed)
    labels = targets.shape[1] if conditional else 0
    G = DCGANGenerator(28, latent_dim=16, num_labels=labels, base_channels=8)
    D = DCGANDiscriminator(28, labels, 8, auxiliary_classifier=conditional and kw.get("aux_weight", 0) > 0)
    batches = SeededBatches(images, targets if conditional else None, batch_size=16, seed=seed)
    extra = {} if labelled is ABSENT else {"labelled": labelled}
    terms = {name: kw.pop(name) for name in OBJECTIVE_FIELDS if name in kw}
    return GANTrainer(
        "cpu",
        G,
        D,
        torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999)),
        batches,
        kw.pop("iterations", 4),
        objective=GANObjective(**terms),
        noise_seed=seed,
        **kw,
        **extra,
    )


def _run(trainer: GANTrainer) -> list[dict]:
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(dict(e.state.output)))
    trainer.run()
    return outputs


FULL = dict(aux_weight=1.0, r1_gamma=0.1, lecam_weight=0.3, bcr_weight=1.0, d_steps=2)


def _augment(seed: int = 0) -> DiffAugment:
    return DiffAugment("translation,cutout", seed=seed)


def test_aux_loss_sees_only_labelled_real_rows(chest, monkeypatch):
    """(a) Spy on the real-image auxiliary loss: each call gets exactly the batch's labelled rows."""
    images, labels = chest
    labelled = torch.arange(N) % 3 == 0
    targets = _pool(labels, labelled)
    seen = []

    def spy(logits, y):
        seen.append(y.clone())
        return original(logits, y)

    original = semi_supervised.auxiliary_classification_loss
    monkeypatch.setattr(semi_supervised, "auxiliary_classification_loss", spy)
    trainer = _trainer(images, targets, labelled, aux_weight=1.0, iterations=5)
    _run(trainer)
    assert len(seen) == 5  # one D step per iteration
    for it, y in enumerate(seen):
        idx = torch.from_numpy(trainer.batches.indices(it))
        keep = idx[labelled[idx]]
        assert 0 < len(keep) < 16 and torch.equal(y, labels[keep])  # the true labels, no unlabelled row


def test_aux_gradient_on_unlabelled_real_images_is_zero(chest):
    """(a) The auxiliary term has exactly zero gradient w.r.t. every unlabelled real image (D in eval mode,
    so BatchNorm's batch statistics do not couple the rows), nonzero w.r.t. the labelled ones; a batch with
    no labelled row gives exactly 0 and zero gradients, not NaN."""
    images, labels = chest
    labelled = torch.arange(N) % 4 == 0
    trainer = _trainer(images, _pool(labels, labelled), labelled, aux_weight=1.0)
    D = trainer.discriminator.eval()
    x = images[:16].clone().requires_grad_(True)
    rows = labelled[:16]
    _, aux = D.forward_with_aux(x, labels[:16], rows)
    trainer.semi.real_aux_loss(aux, labels[:16], rows).backward()
    per_image = x.grad.flatten(1).abs().sum(1)
    assert torch.all(per_image[~rows] == 0) and torch.all(per_image[rows] > 0)

    none = torch.zeros(16, dtype=torch.bool)
    x.grad = None
    D.zero_grad()
    _, aux = D.forward_with_aux(x, labels[:16], none)
    loss = trainer.semi.real_aux_loss(aux, labels[:16], none)
    loss.backward()
    assert loss.item() == 0.0 and not x.grad.abs().any()
    assert all(p.grad is not None and not p.grad.abs().any() for p in D.aux.parameters())


def test_projection_term_absent_for_unlabelled_rows_only(chest):
    """(b) Labelled rows: the logit without a mask, bit for bit; unlabelled rows: the unconditional term
    (the logit with an all-zero label), whatever their label row holds, and no gradient into the embedding."""
    images, labels = chest
    torch.manual_seed(1)
    D = DCGANDiscriminator(28, 14, 8, auxiliary_classifier=True)
    x, y = images[:16], labels[:16].clone()
    y[y.sum(1) == 0, 0] = 1.0  # every row with a finding, so the projection term is nonzero
    rows = torch.arange(16) % 2 == 0
    full, aux_full = D.forward_with_aux(x, y)
    masked, aux_masked = D.forward_with_aux(x, y, rows)
    unconditional = D(x, torch.zeros_like(y))
    assert torch.equal(masked[rows], full[rows]) and torch.equal(aux_masked, aux_full)
    assert torch.equal(masked[~rows], unconditional[~rows])
    assert (masked[~rows] - full[~rows]).abs().min() > 0  # the term was there without the mask
    D.zero_grad()
    D(x, y, rows)[~rows].sum().backward()
    assert not D.embed.weight.grad.abs().any()
    D.zero_grad()
    D(x, y, rows)[rows].sum().backward()
    assert D.embed.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"labelled must be a bool tensor of shape \(16,\)"):
        D(x, y, rows[:8])
    with pytest.raises(ValueError, match="labelled must be a bool tensor"):
        D(x, y, rows.long())


def test_fake_labels_come_from_labelled_rows_only(chest):
    """(c) Every label G is conditioned on is a labelled row's: the batch's own on its labelled rows, a
    labelled training row's on the others (never an unlabelled row's zeros); D scores fake i with the
    projection term exactly when real i has it."""
    images, labels = chest
    has_finding = labels.sum(1) > 0
    labelled = has_finding & (torch.arange(N) % 2 == 0)  # labelled rows all carry a finding
    trainer = _trainer(images, _pool(labels, labelled), labelled, aux_weight=1.0, iterations=6)
    assert torch.equal(trainer.conditioning_labels, labels[labelled])
    allowed = {tuple(r.tolist()) for r in labels[labelled]}
    g_labels, d_rows = [], []
    trainer.generator.register_forward_pre_hook(lambda m, args: g_labels.append(args[1].clone()))
    D = trainer.discriminator
    forward = D.forward_with_aux

    def record(x, y=None, rows=None):
        d_rows.append(rows.clone())
        return forward(x, y, rows)

    D.forward_with_aux = record
    _run(trainer)
    assert len(g_labels) == 12 and len(d_rows) == 18  # per iteration: G twice (D step, G step); D 3 times
    for it in range(6):
        idx = torch.from_numpy(trainer.batches.indices(it))
        rows = labelled[idx]
        for y in g_labels[2 * it : 2 * it + 2]:
            assert torch.equal(y[rows], labels[idx][rows])  # labelled rows: the real batch's labels
            assert all(tuple(r.tolist()) in allowed for r in y)  # never a zero row of an unlabelled image
        assert all(torch.equal(r, rows) for r in d_rows[3 * it : 3 * it + 3])
    assert sum(int((~labelled[torch.from_numpy(trainer.batches.indices(i))]).sum()) for i in range(6)) > 30


@pytest.mark.parametrize("options", [{}, FULL], ids=["plain", "aux-r1-lecam-bcr"])
def test_no_unlabelled_rows_trains_bit_identically(chest, options):
    """(d) labelled=None, no argument and an all-True mask: the same losses and weights, bit for bit; a
    mask with unlabelled rows changes them (so the comparison can fail)."""
    images, labels = chest

    def run(labelled):
        kw = dict(options, augment=_augment() if options else None)
        trainer = _trainer(images, labels, labelled, **kw)
        return _run(trainer), trainer.generator.state_dict()

    base_out, base_g = run(ABSENT)  # today's call, without the argument
    for labelled in (None, torch.ones(N, dtype=torch.bool)):
        out, g = run(labelled)
        assert out == base_out and all(torch.equal(g[k], base_g[k]) for k in g)
    assert len(base_out) == 4
    mixed_out, _ = run(torch.arange(N) % 2 == 0)
    assert [o["loss_d"] for o in mixed_out] != [o["loss_d"] for o in base_out]


def test_ninety_percent_unlabelled_trains_and_resumes_exactly(chest):
    """(e) 90% unlabelled rows, every loss term on: finite losses; ``aux_d`` is exactly 0 on a batch without
    a labelled image; stopping, saving :meth:`training_state` and resuming ends bit-identical."""
    images, labels = chest
    labelled = torch.zeros(N, dtype=torch.bool)
    labelled[torch.randperm(N, generator=torch.Generator().manual_seed(0))[: N // 10]] = True
    targets = _pool(labels, labelled)

    def trainer(iterations):
        return _trainer(images, targets, labelled, augment=_augment(), iterations=iterations, **FULL)

    straight = trainer(12)
    outputs = _run(straight)
    assert len(outputs) == 12
    assert all(math.isfinite(v) for o in outputs for v in o.values() if isinstance(v, float))
    counts = [int(labelled[torch.from_numpy(straight.batches.indices(i))].sum()) for i in range(12)]
    assert 0 in counts and any(c > 0 for c in counts)  # the seed gives both kinds of batch
    for count, out in zip(counts, outputs):
        assert (out["aux_d"] == 0.0) == (count == 0)

    first = trainer(12)
    first.iterations = 5
    _run(first)
    state = first.training_state()
    resumed = trainer(12)
    resumed.load_training_state(state)
    assert [o["loss_d"] for o in _run(resumed)] == [o["loss_d"] for o in outputs[5:]]
    for key, value in straight.generator_ema.state_dict().items():
        assert torch.equal(value, resumed.generator_ema.state_dict()[key]), key


@pytest.mark.parametrize(
    "labelled, message",
    [
        (
            torch.ones(N - 1, dtype=torch.bool),
            f"labelled has {N - 1} flags but there are {N} training images",
        ),
        (torch.ones(N, dtype=torch.uint8), "labelled must be a 1-D bool tensor"),
        (torch.ones(N, 1, dtype=torch.bool), "labelled must be a 1-D bool tensor"),
        ([True] * N, "labelled must be a 1-D bool tensor"),
        (torch.zeros(N, dtype=torch.bool), "labelled has no True flag: a conditional GAN needs"),
    ],
    ids=["length", "uint8", "2-D", "list", "none-labelled"],
)
def test_bad_masks_are_one_clear_error(chest, labelled, message):
    """(f) A wrong mask is refused at construction with one line naming ``labelled``."""
    images, labels = chest
    with pytest.raises(ValueError, match=message) as info:
        _trainer(images, labels, labelled)
    assert "\n" not in str(info.value)


def test_unconditional_trainer_ignores_the_mask(chest):
    """An unconditional GAN may train on a wholly unlabelled pool: the flags change nothing."""
    images, labels = chest
    plain = _run(_trainer(images, labels, conditional=False))
    trainer = _trainer(images, labels, torch.zeros(N, dtype=torch.bool), conditional=False)
    assert trainer.labelled is None and trainer.conditioning_labels is None
    assert _run(trainer) == plain


_WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch, torch.distributed as dist
    from ignite.engine import Events
    from medgan_aug.data import sample_path
    from medgan_aug.engines.distributed import Shard, ShardedBatches, ShardedDiffAugment
    from medgan_aug.engines.gan_losses import GANObjective
    from medgan_aug.engines.gan_trainer import GANTrainer
    from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
    from medgan_aug.transforms.diffaugment import DiffAugment

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    shard = Shard(dist.get_rank(), dist.get_world_size(), dist.get_rank(), torch.device("cpu"))
    data = np.load(sample_path("nih1000"))
    n = int(sys.argv[2])
    images = torch.from_numpy(data["train_images"][:n]).float().div(127.5).sub(1.0)[:, None]
    labels = torch.from_numpy(data["train_labels"][:n]).float()
    labelled = torch.arange(n) % 4 == 0
    targets = torch.where(labelled[:, None], labels, torch.zeros_like(labels))
    torch.manual_seed(0)
    G = shard.prepare(DCGANGenerator(28, latent_dim=16, num_labels=14, base_channels=8))
    D = shard.prepare(DCGANDiscriminator(28, 14, 8, auxiliary_classifier=True))
    trainer = GANTrainer(
        "cpu", G, D,
        torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999)),
        ShardedBatches(images, targets, 16, 0, shard), 6, noise_seed=0, objective=GANObjective(aux_weight=1.0),
        augment=ShardedDiffAugment(DiffAugment("translation,cutout", seed=0), shard), shard=shard,
        labelled=labelled,
    )
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output["loss_d"]))
    trainer.run()
    if shard.is_main:
        torch.save(G.state_dict(), sys.argv[1])
        print("RESULT " + json.dumps(outputs))
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_as_one_with_unlabelled_rows(chest, tmp_path):
    """Under torchrun (2 processes, gloo) each rank's flags, fake-label draws and auxiliary-loss weights
    follow its slice of the global batch: the losses and G equal one process's up to summation order."""
    images, labels = chest
    labelled = torch.arange(N) % 4 == 0
    one = _trainer(
        images, _pool(labels, labelled), labelled, aux_weight=1.0, augment=_augment(), iterations=6
    )
    expected = [o["loss_d"] for o in _run(one)]
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(script), str(tmp_path / "g.pt"), str(N),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    assert np.allclose(json.loads(line[len("RESULT ") :]), expected, atol=1e-5, rtol=0)
    two = torch.load(tmp_path / "g.pt", weights_only=True)
    one_g = one.generator.state_dict()
    assert max((two[k].double() - one_g[k].double()).abs().max().item() for k in two) < 1e-5
