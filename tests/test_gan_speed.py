"""The speed settings of GAN training (precision, channels_last) and the leaner DiffAugment.

The speed-ups themselves are measured by ``benchmarks/bench_gan_speed.py`` (ratios side by side), not here;
these tests check that the settings do what they say and keep exact resume.
"""

from __future__ import annotations

import csv
import warnings

import pytest
import torch
from engine_helpers import StopAt, tiny_gan_config

from medgan_aug.apps.train import GANConfig, build_gan_trainer, load_gan_subset, train_gan
from medgan_aug.networks.model_file import load_generator
from medgan_aug.transforms.diffaugment import DiffAugment
from medgan_aug.utils import devices
from medgan_aug.utils.devices import resolve_precision


def _cfg(path, out, **kw) -> GANConfig:
    base = dict(path=str(path), iterations=9, checkpoint_every=4, sample_every=100)
    base.update(kw)
    return tiny_gan_config(out, **base)


def test_auto_precision_follows_the_devices_native_bf16(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(devices, "native_bf16", lambda device: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(devices, "native_bf16", lambda device: False)
    assert resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of .*'fp16'"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="GANConfig.precision must be one of"):
        GANConfig(out="x", precision="half")
    with pytest.raises(ValueError, match="GANConfig.channels_last must be true or false"):
        GANConfig(out="x", channels_last="yes")


def test_bf16_computes_in_bfloat16_but_keeps_float32_weights_and_losses(chest28_path, tmp_path):
    seen: dict[str, torch.dtype] = {}
    trainers = {}
    for precision in ("fp32", "bf16"):
        config = _cfg(chest28_path, tmp_path / precision, precision=precision, channels_last=True)
        trainer = build_gan_trainer(config, load_gan_subset(config))
        first_conv = trainer.discriminator.features[0]
        first_conv.register_forward_hook(lambda m, i, o, p=precision: seen.setdefault(p, o.dtype) and None)
        trainers[precision] = trainer
    out = {p: t._iteration(t, t.batches.batch(0)) for p, t in trainers.items()}
    assert seen == {"fp32": torch.float32, "bf16": torch.bfloat16}
    for trainer in trainers.values():
        params = [*trainer.generator.parameters(), *trainer.discriminator.parameters()]
        assert all(p.dtype == torch.float32 for p in params)
        assert trainer.generator.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    # same initial weights and draws: the first losses differ only by bfloat16 rounding (~3 significant digits)
    for key in ("loss_d", "loss_g"):
        a, b = out["fp32"][key], out["bf16"][key]
        assert a != b and abs(a - b) < 0.03 * abs(a), (key, a, b)


@pytest.mark.parametrize("precision, channels_last", [("bf16", True), ("fp32", True), ("bf16", False)])
def test_each_speed_setting_resumes_bit_identically(chest28_path, tmp_path, precision, channels_last):
    kw = dict(precision=precision, channels_last=channels_last)
    ref = train_gan(_cfg(chest28_path, tmp_path / "ref", **kw))
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(chest28_path, out, **kw), handlers=[StopAt(6)])  # killed 2 after checkpoint 4
    train_gan(_cfg(chest28_path, out, resume=True, **kw))
    assert (out / "losses.csv").read_text() == (ref / "losses.csv").read_text()
    rows = list(csv.DictReader(open(ref / "losses.csv")))
    assert len(rows) == 9 and all(float(r["loss_d"]) > 0 for r in rows)
    a, _ = load_generator(ref / "generator.pt")
    b, _ = load_generator(out / "generator.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def _reference_translation(x: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
    """Shift image i by (ty[i], tx[i]) with zero fill, one image at a time by slicing."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(zip(ty.flatten().tolist(), tx.flatten().tolist())):
        ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
        src_y, src_x = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
        out[i, :, ys, xs] = x[i, :, src_y, src_x]
    return out


def _reference_cutout(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, ch: int, cw: int) -> torch.Tensor:
    out = x.clone()
    h, w = x.shape[-2:]
    for i, (cy, cx) in enumerate(zip(oy.flatten().tolist(), ox.flatten().tolist())):
        top, left = cy - ch // 2, cx - cw // 2
        out[i, :, max(0, top) : min(h, top + ch), max(0, left) : min(w, left + cw)] = 0
    return out


@pytest.mark.parametrize(
    "shape, ratio", [((16, 1, 28, 28), 0.125), ((5, 3, 9, 13), 0.3), ((4, 1, 8, 8), 0.49)]
)
def test_translation_and_cutout_equal_a_per_image_reference(shape, ratio):
    x = torch.randn(*shape)
    b, _, h, w = shape
    aug = DiffAugment(translation_ratio=ratio, cutout_ratio=ratio, seed=7)
    draws = torch.Generator().manual_seed(7)  # the same stream, read the way the operations read it
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (b, 1, 1), generator=draws)
    tx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=draws)
    assert torch.equal(aug.translation(x), _reference_translation(x, ty, tx))
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=draws)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=draws)
    assert torch.equal(aug.cutout(x), _reference_cutout(x, oy, ox, ch, cw))
    assert (aug.translation(x) != x).any()  # the draws moved something


def test_leaner_diffaugment_passes_the_gradient_of_the_reference():
    x = torch.randn(6, 1, 12, 12, requires_grad=True)
    aug = DiffAugment(policy="translation,cutout", seed=3)
    weights = torch.randn(6, 1, 12, 12)
    (aug(x) * weights).sum().backward()
    draws = torch.Generator().manual_seed(3)
    ty = torch.randint(-2, 3, (6, 1, 1), generator=draws)
    tx = torch.randint(-2, 3, (6, 1, 1), generator=draws)
    oy = torch.randint(0, 12 + 1, (6, 1, 1), generator=draws)
    ox = torch.randint(0, 12 + 1, (6, 1, 1), generator=draws)
    x_ref = x.detach().clone().requires_grad_(True)
    (_reference_cutout(_reference_translation(x_ref, ty, tx), oy, ox, 6, 6) * weights).sum().backward()
    assert torch.equal(x.grad, x_ref.grad)
