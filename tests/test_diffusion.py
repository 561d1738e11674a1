"""The diffusion generator (``--model ddpm``): MONAI's DiffusionModelUNet behind the generator protocol.

Tiny UNets (base_channels 4, a few DDIM steps) so each test takes seconds on one thread: determinism per
(seed, index), classifier-free guidance, the unconditional model's refusal of labels, model files that load
only as their family, bit-identical resume (stopped in process, and SIGKILLed through the command line), and a
ddpm run serving ``SyntheticDataset.from_run``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from engine_helpers import TINY_DDPM, StopAt

from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset
from medgan_aug.handlers.checkpoint import CheckpointManager
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.networks.model_file import (
    load_any_generator,
    load_diffusion_generator,
    load_generator,
    save_generator,
    save_model,
)
from medgan_aug.utils.errors import ModelFileError

REPO = Path(__file__).resolve().parents[1]


def _cfg(out: Path, **kw) -> GANConfig:
    settings = dict(TINY_DDPM, iterations=8, checkpoint_every=3, n_saved=10, sample_every=4)
    settings.update(kw)
    return GANConfig(out=str(out), **settings)


def _random_weights(generator: DiffusionGenerator, seed: int = 0) -> DiffusionGenerator:
    """Perturb every weight: MONAI zero-initialises the UNet's output and attention projections, so an
    untrained model ignores its context (and guidance could not change anything)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=rng))
    return generator.eval()


def _tiny(num_labels: int = 14, **kw) -> DiffusionGenerator:
    torch.manual_seed(0)
    return _random_weights(DiffusionGenerator(28, num_labels, base_channels=4, num_inference_steps=3, **kw))


def _assert_same_weights(a: Path, b: Path) -> None:
    ga, _ = load_diffusion_generator(a)
    gb, _ = load_diffusion_generator(b)
    sa, sb = ga.state_dict(), gb.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


# ------------------------------------------------------------------------------ the network


def test_generator_protocol_shapes_and_range():
    g = _tiny()
    assert (g.image_size, g.num_labels, g.out_channels, g.padded_size, g.latent_dim) == (28, 14, 1, 32, 1024)
    z, y = torch.randn(3, g.latent_dim), torch.zeros(3, 14)
    out = g(z, y)
    assert out.shape == (3, 1, 28, 28) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1 and out.std() > 0.01
    padded = g.pad_images(torch.rand(2, 1, 28, 28))
    assert padded.shape == (2, 1, 32, 32) and torch.equal(g.crop_images(padded), padded[..., 2:30, 2:30])
    assert torch.equal(padded[..., 0, 2:30], padded[..., 4, 2:30])  # reflect: row -2 mirrors row 2
    with pytest.raises(ValueError, match=r"z must have shape \(B, 1024\)"):
        g(torch.randn(3, 100), y)
    with pytest.raises(ValueError, match=r"labels must have shape \(3, 14\)"):
        g(z, torch.zeros(3, 2))


@pytest.mark.slow
def test_same_index_and_seed_give_the_same_image():
    g = _tiny()
    pool = torch.eye(14)[[0, 2, 5]]
    n = CHUNK_SIZE + 4  # two chunks
    a = SyntheticDataset(g, n, label_pool=pool, seed=7)
    b = SyntheticDataset(g, n, label_pool=pool, seed=7, batch_size=1)
    late = b[CHUNK_SIZE + 1]  # another access order and block size
    early = b[5]
    assert torch.equal(a[5]["image"], early["image"]) and torch.equal(a[5]["label"], early["label"])
    assert torch.equal(a[CHUNK_SIZE + 1]["image"], late["image"])
    other = SyntheticDataset(g, n, label_pool=pool, seed=8)
    assert not torch.equal(other[5]["image"], a[5]["image"])
    assert not torch.equal(a[4]["image"], a[5]["image"])


def test_guidance_changes_conditional_images_and_labels_matter():
    g = _tiny()
    z = torch.randn(4, g.latent_dim, generator=torch.Generator().manual_seed(1))
    y = torch.eye(14)[[0, 1, 2, 3]]
    plain = g(z, y)
    assert torch.equal(plain, g(z, y))  # DDIM with eta 0: deterministic
    assert (g(z, torch.zeros(4, 14)) - plain).abs().mean() > 1e-3  # the context conditions the images
    g.set_sampling(guidance_scale=3.0)
    guided = g(z, y)
    assert (guided - plain).abs().mean() > 1e-3
    assert torch.equal(guided, g(z, y))
    g.set_sampling(guidance_scale=0.0)
    assert torch.equal(g(z, y), plain)
    g.set_sampling(num_inference_steps=5)
    assert not torch.equal(g(z, y), plain)  # the steps are a sampling setting too
    assert g.arch["num_inference_steps"] == 5


def test_unconditional_model_refuses_labels_in_one_line():
    g = _tiny(num_labels=0)
    z = torch.randn(2, g.latent_dim)
    assert g(z).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError) as err:
        g(z, torch.zeros(2, 14))
    message = str(err.value)
    assert "\n" not in message and "unconditional (num_labels=0): it takes no labels" in message
    with pytest.raises(ValueError, match="guidance_scale > 0 needs a conditional model"):
        g.set_sampling(guidance_scale=1.0)
    with pytest.raises(ValueError, match="unconditional"):
        SyntheticDataset(g, 10, labels=torch.zeros(14))
    labelled = SyntheticDataset(g, 10, labeller=lambda images: images.mean(dim=(1, 2, 3))[:, None])
    assert labelled[3]["label"].shape == (1,)


def test_a_model_file_loads_only_as_its_family(tmp_path):
    diffusion = save_model(_tiny(), tmp_path / "ddpm.pt", meta={"model": "ddpm"})
    dcgan = save_generator(DCGANGenerator(28, 16, 14, 4), tmp_path / "dcgan.pt", meta={})
    with pytest.raises(ModelFileError) as err:
        load_generator(diffusion)
    assert str(err.value) == (
        f"{diffusion} holds a DiffusionGenerator (a --model ddpm generator), not a DCGANGenerator (a --model "
        "dcgan generator); load it with load_diffusion_generator"
    )
    with pytest.raises(ModelFileError) as err:
        load_diffusion_generator(dcgan)
    assert str(err.value) == (
        f"{dcgan} holds a DCGANGenerator (a --model dcgan generator), not a DiffusionGenerator (a --model "
        "ddpm generator); load it with load_generator"
    )
    loaded, meta = load_diffusion_generator(diffusion)
    assert type(loaded) is DiffusionGenerator and loaded.arch == _tiny().arch and meta == {"model": "ddpm"}
    assert type(load_any_generator(dcgan)[0]) is DCGANGenerator
    assert type(load_any_generator(diffusion)[0]) is DiffusionGenerator
    z, y = torch.randn(2, 1024), torch.eye(14)[:2]
    assert torch.equal(loaded(z, y), _tiny()(z, y))


# ------------------------------------------------------------------------------ settings


def test_diffusion_settings_stay_out_of_dcgan_runs():
    dcgan = GANConfig(out="x")
    assert not {"model", "sampling_steps", "guidance_scale", "label_dropout"} & set(dcgan.to_dict())
    with pytest.raises(ValueError, match="GANConfig.guidance_scale applies to model='ddpm'"):
        GANConfig(out="x", guidance_scale=2.0)
    ddpm = GANConfig(out="x", model="ddpm", guidance_scale=2.0).to_dict()
    assert (ddpm["model"], ddpm["sampling_steps"], ddpm["guidance_scale"], ddpm["label_dropout"]) == (
        "ddpm",
        50,
        2.0,
        0.1,
    )
    with pytest.raises(ValueError, match="GANConfig.model must be one of"):
        GANConfig(out="x", model="vae")
    with pytest.raises(ValueError, match="label_dropout must be in"):
        GANConfig(out="x", model="ddpm", label_dropout=1.0)


# ------------------------------------------------------------------------------ training runs


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> Path:
    """A tiny conditional ddpm run trained in one go."""
    return train_gan(_cfg(tmp_path_factory.mktemp("ddpm") / "direct"))


def test_a_ddpm_run_writes_the_run_folder(direct):
    names = sorted(p.relative_to(direct).as_posix() for p in direct.rglob("*") if p.is_file())
    assert names == [
        "checkpoints/ckpt_00000003.pt",
        "checkpoints/ckpt_00000006.pt",
        "checkpoints/ckpt_00000008.pt",
        "config.json",
        "generator.pt",
        "losses.csv",
        "samples/iter_00000004.png",
        "samples/iter_00000008.png",
    ]
    record = json.loads((direct / "config.json").read_text())
    assert record["config"]["model"] == "ddpm" and record["training_seconds"] > 0
    rows = (direct / "losses.csv").read_text().splitlines()
    assert rows[0] == "iteration,epoch,loss,lr" and len(rows) == 9
    assert all(0.0 < float(r.split(",")[2]) < 10.0 for r in rows[1:])
    generator, meta = load_diffusion_generator(direct / "generator.pt")
    assert (generator.num_labels, generator.num_inference_steps, generator.guidance_scale) == (14, 2, 1.0)
    assert meta["model"] == "ddpm" and meta["iterations"] == 8 and meta["train_labels"].shape == (69, 14)


@pytest.mark.slow
def test_stopped_after_a_checkpoint_then_resumed_is_bit_identical(direct, tmp_path):
    out = tmp_path / "stopped"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(out), handlers=[StopAt(5)])  # checkpoint at 3, stopped in iteration 5
    assert not (out / "generator.pt").exists()
    assert [it for it, _ in CheckpointManager(out / "checkpoints").list()] == [3]
    train_gan(_cfg(out, resume=True))
    _assert_same_weights(direct / "generator.pt", out / "generator.pt")
    assert (out / "losses.csv").read_bytes() == (direct / "losses.csv").read_bytes()
    assert (out / "samples" / "iter_00000008.png").read_bytes() == (
        direct / "samples" / "iter_00000008.png"
    ).read_bytes()


def test_resume_refuses_another_generator_family(direct, tmp_path):
    from medgan_aug.utils.errors import ResumeError

    out = tmp_path / "copy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_gan(_cfg(out, iterations=3))
    dcgan = {k: v for k, v in TINY_DDPM.items() if k not in ("model", "sampling_steps")}
    with pytest.raises(ResumeError, match="model: saved 'ddpm' vs now 'dcgan'"):
        train_gan(GANConfig(out=str(out), iterations=3, checkpoint_every=3, resume=True, **dcgan))


@pytest.mark.slow
def test_sigkilled_command_line_run_resumes_bit_identically(direct, tmp_path):
    """``python -m medgan_aug train --model ddpm`` SIGKILLed right after its first checkpoint, then
    resumed through the command line: the end equals the uninterrupted run."""
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "medgan_aug", "train", "--out", str(out), "--iterations", "8"]
    for key, value in dict(TINY_DDPM, checkpoint_every=3, n_saved=10, sample_every=4).items():
        if key == "progress":
            argv.append("--no-progress")
        elif key == "conditional":
            argv.append("--conditional")
        else:
            argv += ["--" + key.replace("_", "-"), str(value)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = CheckpointManager(out / "checkpoints")
    deadline = time.monotonic() + 120
    while not ckpts.list() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    assert not (out / "generator.pt").exists() and ckpts.list()
    resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same_weights(direct / "generator.pt", out / "generator.pt")
    assert (out / "losses.csv").read_bytes() == (direct / "losses.csv").read_bytes()


@pytest.mark.slow
def test_a_ddpm_run_serves_synthetic_dataset_from_run(direct):
    train_labels = load_diffusion_generator(direct / "generator.pt")[1]["train_labels"].float()
    a = SyntheticDataset.from_run(direct, 6, seed=2)
    b = SyntheticDataset.from_run(direct / "generator.pt", 6, seed=2)
    assert isinstance(a.generator, DiffusionGenerator) and a.conditional
    item = a[4]
    assert sorted(item) == ["image", "label", "synthetic"] and item["synthetic"] is True
    assert item["image"].shape == (1, 28, 28) and item["image"].dtype == torch.float32
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].shape == (14,)
    assert any(torch.equal(item["label"], row) for row in train_labels)  # joint resampling of real vectors
    assert torch.equal(b[4]["image"], item["image"]) and torch.equal(b[4]["label"], item["label"])
    batch = a.get_batch([4, 0])
    assert torch.equal(batch["image"][0], item["image"])
