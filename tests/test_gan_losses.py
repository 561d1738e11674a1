"""Every GAN loss term against values computed by hand; ADA's probability rule; the terms in a real run."""

from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest
import torch
from engine_helpers import StopAt, tiny_gan_config

from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.engines.gan_losses import (
    LeCamAnchors,
    auxiliary_classification_loss,
    consistency_penalty,
    discriminator_loss,
    generator_loss,
    lecam_penalty,
)
from medgan_aug.handlers.checkpoint import CheckpointManager, load_checkpoint
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_aug.networks.model_file import load_generator
from medgan_aug.transforms.adaptive import AdaptiveAugment
from medgan_aug.transforms.diffaugment import DiffAugment


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


REAL, FAKE = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])


def test_adversarial_losses_on_known_logits():
    """Non-saturating BCE (Goodfellow et al. 2014) and hinge (Lim & Ye 2017), by hand."""
    expected_d = (softplus(-0.0) + softplus(-2.0)) / 2 + (softplus(0.0) + softplus(-1.0)) / 2
    assert discriminator_loss("bce", REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_loss("bce", FAKE).item() == pytest.approx((softplus(0.0) + softplus(1.0)) / 2, rel=1e-6)
    assert discriminator_loss("hinge", REAL, FAKE).item() == pytest.approx(
        1.0
    )  # relu(1-r): 1,0; relu(1+f): 1,0
    assert generator_loss("hinge", FAKE).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="loss must be one of"):
        discriminator_loss("wgan", REAL, FAKE)


def test_lecam_penalty_and_anchors_by_hand():
    # anchors a_real = 0.5, a_fake = -0.5: relu(r - a_fake)^2 = relu([0.5, 2.5])^2 = [0.25, 6.25] -> 3.25;
    # relu(a_real - f)^2 = relu([0.5, 1.5])^2 = [0.25, 2.25] -> 1.25
    assert lecam_penalty(REAL, FAKE, 0.5, -0.5).item() == pytest.approx(4.5)
    # D already inside the anchors: no penalty
    assert lecam_penalty(torch.tensor([-1.0]), torch.tensor([1.0]), 0.0, 0.0).item() == 0.0
    anchors = LeCamAnchors(decay=0.9)
    anchors.update(1.0, -1.0)  # first update: the batch means
    assert (anchors.real, anchors.fake) == (1.0, -1.0)
    anchors.update(2.0, 0.0)
    assert anchors.real == pytest.approx(0.9 * 1.0 + 0.1 * 2.0) and anchors.fake == pytest.approx(-0.9)
    restored = LeCamAnchors()
    restored.load_state_dict(anchors.state_dict())
    assert (restored.decay, restored.real, restored.fake) == (0.9, anchors.real, anchors.fake)
    with pytest.raises(ValueError, match="decay"):
        LeCamAnchors(1.0)


def test_consistency_and_auxiliary_losses_by_hand():
    assert consistency_penalty(REAL, FAKE).item() == pytest.approx((0.0 + 9.0) / 2)
    with pytest.raises(ValueError, match="shape"):
        consistency_penalty(REAL, torch.zeros(3))
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # -log sigmoid(l) for positives = softplus(-l); -log(1 - sigmoid(l)) for negatives = softplus(l)
    expected = (softplus(-0.0) + softplus(2.0) + softplus(-1.0) + softplus(-0.0)) / 4
    assert auxiliary_classification_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_discriminator_auxiliary_head():
    d = DCGANDiscriminator(28, num_labels=3, base_channels=8, auxiliary_classifier=True)
    x, y = torch.randn(5, 1, 28, 28), torch.zeros(5, 3)
    logit, aux = d.forward_with_aux(x, y)
    assert logit.shape == (5,) and aux.shape == (5, 3)
    assert torch.equal(d(x, y), logit) and d.arch["auxiliary_classifier"] is True
    assert DCGANDiscriminator(28, 3, 8).forward_with_aux(x, y)[1] is None
    with pytest.raises(ValueError, match="auxiliary_classifier=True needs num_labels"):
        DCGANDiscriminator(28, 0, 8, auxiliary_classifier=True)


def test_ada_probability_follows_the_overfitting_heuristic():
    ada = AdaptiveAugment(DiffAugment("translation"), target=0.6, speed_kimg=1.0, interval=2)
    ada.observe(torch.ones(50))  # r_t = 1 > 0.6, but p moves only every 2nd step
    assert ada.p == 0.0
    ada.observe(torch.ones(50))  # 100 images / (1 * 1000) = +0.1
    assert ada.p == pytest.approx(0.1)
    ada.observe(torch.tensor([1.0, -1.0] * 25))
    ada.observe(torch.tensor([1.0, -1.0] * 25))  # r_t = 0 < 0.6: -0.1
    assert ada.p == pytest.approx(0.0)
    ada.observe(-torch.ones(50))
    ada.observe(-torch.ones(50))
    assert ada.p == 0.0  # clipped at 0
    restored = AdaptiveAugment(DiffAugment("translation"), speed_kimg=1.0, interval=2)
    restored.load_state_dict(ada.state_dict())
    assert restored.p == ada.p and torch.equal(restored.generator.get_state(), ada.generator.get_state())


def test_ada_gates_whole_images():
    x = torch.randn(64, 1, 28, 28)
    off = AdaptiveAugment(DiffAugment("color", seed=1), initial_p=0.0, seed=2)
    assert torch.equal(off(x), x)
    on = AdaptiveAugment(DiffAugment("color", seed=1), initial_p=1.0, seed=2)
    assert torch.allclose(on(x), DiffAugment("color", seed=1)(x))
    half = AdaptiveAugment(DiffAugment("color", seed=1), initial_p=0.5, seed=2)
    changed = (half(x) != x).flatten(1).any(1)
    assert 15 < int(changed.sum()) < 49  # about half the images, each wholly augmented or not
    with pytest.raises(ValueError, match="target"):
        AdaptiveAugment(DiffAugment(), target=1.5)


def _cfg(path, out, **kw) -> GANConfig:
    base = dict(
        path=str(path),
        iterations=12,
        checkpoint_every=5,
        sample_every=100,
        seed=1,
        lecam_weight=0.3,
        bcr_weight=1.0,
        aux_weight=1.0,
        ada_target=0.1,
        ada_kimg=0.5,
    )
    base.update(kw)
    return tiny_gan_config(out, **base)


def test_every_term_in_a_real_run_and_exact_resume(chest28_path, tmp_path):
    ref = train_gan(_cfg(chest28_path, tmp_path / "ref"))
    rows = list(csv.DictReader(open(ref / "losses.csv")))
    assert len(rows) == 12
    for key in ("lecam", "bcr", "aux_d", "aux_g"):
        assert all(np.isfinite(float(r[key])) for r in rows) and any(float(r[key]) > 0 for r in rows), key
    p = [float(r["ada_p"]) for r in rows]
    assert p[0] == 0.0 and max(p) > 0  # target 0.1: D is above it early, so p rises
    state = load_checkpoint(CheckpointManager(ref / "checkpoints").list()[-1][1])
    assert state["lecam"]["real"] is not None and "p" in state["augment"]
    assert "discriminator" in state and any(k.startswith("aux.") for k in state["discriminator"])

    out = tmp_path / "resumed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out), handlers=[StopAt(8)])
    train_gan(_cfg(chest28_path, out, resume=True))  # from the checkpoint of iteration 5
    assert (out / "losses.csv").read_text() == (ref / "losses.csv").read_text()
    a, _ = load_generator(ref / "generator.pt")
    b, _ = load_generator(out / "generator.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_a_run_started_before_the_new_settings_resumes(chest28_path, tmp_path):
    """config.json and losses.csv of an older version lack the new fields; the run still resumes."""
    plain = dict(
        lecam_weight=0.0,
        bcr_weight=0.0,
        aux_weight=0.0,
        ada_target=0.0,
        ada_kimg=100.0,
        precision="fp32",
        channels_last=False,
        iterations=7,
    )
    out = tmp_path / "old"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out, **plain), handlers=[StopAt(6)])
    record = json.loads((out / "config.json").read_text())
    for key in (
        "lecam_weight",
        "bcr_weight",
        "aux_weight",
        "ada_target",
        "ada_kimg",
        "precision",
        "channels_last",
    ):
        del record["config"][key]
    del record["precision_used"]
    (out / "config.json").write_text(json.dumps(record))
    old_columns = "iteration,epoch,loss_d,loss_g,d_real,d_fake,r1,lr_g,lr_d"
    lines = [ln.split(",") for ln in (out / "losses.csv").read_text().splitlines()]
    keep = [lines[0].index(c) for c in old_columns.split(",")]
    (out / "losses.csv").write_text("\n".join(",".join(r[i] for i in keep) for r in lines) + "\n")
    train_gan(_cfg(chest28_path, out, resume=True, **plain))
    rows = (out / "losses.csv").read_text().splitlines()
    assert rows[0] == old_columns and len(rows) == 8 and all(len(r.split(",")) == 9 for r in rows)
    with pytest.raises(Exception, match="lecam_weight: saved 0.0 vs now 0.3"):
        train_gan(_cfg(chest28_path, out, resume=True, **{**plain, "lecam_weight": 0.3}))
    with pytest.raises(Exception, match="channels_last: saved False vs now True"):
        train_gan(_cfg(chest28_path, out, resume=True, **{**plain, "channels_last": True}))
    with pytest.raises(Exception, match="trained in fp32 but would continue in bf16.*--precision fp32"):
        train_gan(_cfg(chest28_path, out, resume=True, **{**plain, "precision": "bf16"}))


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(bcr_weight=1.0, diffaugment=""), "bcr_weight compares two DiffAugment views"),
        (dict(lecam_weight=-1.0), "lecam_weight must be a number >= 0"),
        (dict(ada_target=1.0), "ada_target must be in"),
        (dict(ada_kimg=0), "ada_kimg must be a positive"),
    ],
)
def test_config_names_the_bad_setting(kw, message):
    base = dict(conditional=True, out="x")
    with pytest.raises(ValueError, match=message):
        GANConfig(**{**base, **kw})


def test_recipe_defaults_on_conditional_and_unconditional_runs(chest28_path, tmp_path):
    """The defaults (ADA over DiffAugment, AC-GAN loss) apply to a conditional run; an unconditional one
    trains without the auxiliary head."""
    from medgan_aug.apps.train import build_gan_trainer, load_gan_subset

    defaults = GANConfig()
    assert (defaults.base_channels, defaults.ada_target, defaults.aux_weight) == (32, 0.6, 1.0)
    for conditional in (True, False):
        config = GANConfig(
            path=str(chest28_path), conditional=conditional, fraction=0.1, out=str(tmp_path / "x")
        )
        trainer = build_gan_trainer(config, load_gan_subset(config))
        assert isinstance(trainer.augment, AdaptiveAugment) and trainer.augment.target == 0.6
        assert trainer.aux_weight == (1.0 if conditional else 0.0)
        assert trainer.discriminator.auxiliary_classifier is conditional
    off = GANConfig(path=str(chest28_path), conditional=True, diffaugment="", out=str(tmp_path / "y"))
    assert build_gan_trainer(off, load_gan_subset(off)).augment is None  # no policy: nothing to adapt


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(loss="wgan"), "loss must be one of"),
        (dict(d_steps=0), "d_steps must be an integer >= 1, got 0"),
        (dict(d_steps=True), "d_steps must be an integer >= 1, got True"),
        (dict(r1_gamma=-0.1), "r1_gamma must be a number >= 0, got -0.1"),
        (dict(bcr_weight=float("nan")), "bcr_weight must be a number >= 0, got nan"),
        (dict(aux_weight="1"), "aux_weight must be a number >= 0, got '1'"),
        (dict(lecam_decay=1.0), r"lecam_decay must be a number in \[0, 1\), got 1.0"),
    ],
)
def test_gan_objective_names_the_bad_field(kw, message):
    from medgan_aug.engines.gan_losses import GANObjective

    with pytest.raises(ValueError, match=message):
        GANObjective(**kw)


def test_gan_trainer_takes_the_objective_and_checks_it_against_its_networks():
    """The trainer reads every term from its GANObjective; one that needs a part it lacks is refused."""
    from medgan_aug.data.batches import SeededBatches
    from medgan_aug.engines.gan_losses import GANObjective
    from medgan_aug.engines.gan_trainer import GANTrainer

    G = DCGANGenerator(28, latent_dim=8, num_labels=0, base_channels=8)
    D = DCGANDiscriminator(28, 0, 8)
    images = torch.rand(8, 1, 28, 28) * 2 - 1

    def build(objective, augment=None):
        return GANTrainer(
            "cpu",
            G,
            D,
            torch.optim.Adam(G.parameters()),
            torch.optim.Adam(D.parameters()),
            SeededBatches(images, None, 4, 0),
            2,
            objective=objective,
            augment=augment,
        )

    objective = GANObjective(loss="hinge", d_steps=2, r1_gamma=0.5, lecam_weight=0.3, lecam_decay=0.9)
    trainer = build(objective)
    assert trainer.objective is objective
    assert (trainer.loss, trainer.d_steps, trainer.r1_gamma, trainer.lecam_weight) == ("hinge", 2, 0.5, 0.3)
    assert trainer.lecam is not None and trainer.lecam.decay == 0.9
    assert build(None).objective == GANObjective()
    with pytest.raises(ValueError, match="bcr_weight > 0 needs an augmentation"):
        build(GANObjective(bcr_weight=1.0))
    with pytest.raises(
        ValueError, match="aux_weight > 0 needs a discriminator built with auxiliary_classifier"
    ):
        build(GANObjective(aux_weight=1.0))
    with pytest.raises(TypeError, match="objective must be a GANObjective or None, got dict"):
        build({"loss": "hinge"})
