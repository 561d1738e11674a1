"""``medgan-aug report`` and ``export-bundle`` on a diffusion run (``--model ddpm``), unchanged commands.

A tiny conditional ddpm run (UNet base width 4, 8 iterations, 2 DDIM steps with guidance 1; the pattern of
tests/test_diffusion.py) on the packaged NIH1000 sample: the report writes every file with finite numbers,
says what does not apply to a diffusion generator and counts what sampling cost; the bundle's inference gives
exactly ``SyntheticDataset.from_run``'s images, its metadata names the family, and weights of one family are
refused, in one line, by a bundle of the other.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import TINY_DDPM
from PIL import Image

from medgan_aug.apps.report.report import REPORT_FILES, write_report
from medgan_aug.apps.report.sampling import planned_images
from medgan_aug.apps.train import GANConfig, train_gan
from medgan_aug.bundle.export import export_bundle
from medgan_aug.bundle.load import load_bundle_dataset
from medgan_aug.cli import main as cli_main
from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.networks.model_file import save_generator

NUM = 20  # the report's smallest synthetic set: 20 images, 20 noise vectors per finding for faithfulness


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddpm") / "run"
    config = GANConfig(out=str(out), iterations=8, checkpoint_every=8, sample_every=4, **TINY_DDPM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train_gan(config)


@pytest.fixture(scope="module")
def report(ddpm_run) -> dict:
    """``medgan-aug report`` through the command line, at 1 DDIM step instead of the run's 2 (the tests that
    take it are marked slow)."""
    argv = ["report", "--run", str(ddpm_run), "--num", str(NUM), "--extractor-iterations", "20"]
    assert (
        cli_main([*argv, "--repeats", "2", "--sampling-steps", "1", "--threads", "1", "--no-progress"]) == 0
    )
    return json.loads((ddpm_run / "metrics.json").read_text())


# ------------------------------------------------------------------------------ report


@pytest.mark.slow
def test_report_writes_every_file_with_finite_numbers(ddpm_run, report):
    for name in REPORT_FILES:
        assert (ddpm_run / name).is_file(), name
    with Image.open(ddpm_run / "losses.png") as im:
        assert im.size == (900, 360)
    assert report["generator"]["family"] == "ddpm" and report["generator"]["conditional"] is True
    assert report["generator"]["arch"]["num_inference_steps"] == 1  # --sampling-steps, not the run's 2
    d = report["distances"]
    for key in ("frechet_distance", "kid", "precision", "recall", "density", "coverage"):
        assert all(math.isfinite(v) for v in d[key].values()), key
    # 8 iterations of a tiny UNet make noise: far above the real-vs-real floor, far from held-out patients
    assert d["frechet_distance"]["value"] > 2 * d["frechet_distance"]["floor"]
    for name, space in report["heldout_anchored"]["spaces"].items():
        assert math.isfinite(space["ratio"]) and space["ratio"] > 1, name
    c = report["conditional_fidelity"]
    assert 0.0 <= c["auc"] <= 1.0 and c["n_synthetic"] == NUM
    f = report["label_faithfulness"]
    assert f["n"] == NUM and len(f["per_label"]) == 14
    assert all(-1.0 <= e["shift"] <= 1.0 and 0.0 <= e["auc"] <= 1.0 for e in f["per_label"].values())
    px = report["memorization"]["pixel"]
    assert px["n_synthetic"] == NUM and 0.0 <= px["share_flagged"] <= 1.0 and px["n_exact_copies"] == 0


@pytest.mark.slow
def test_report_counts_what_sampling_cost_and_says_what_does_not_apply(ddpm_run, report):
    s = report["sampling"]
    planned = CHUNK_SIZE + CHUNK_SIZE + 2 * 14 * NUM + 15 * 8  # set, collage, faithfulness, per-finding grid
    assert planned_images(NUM, num_labels=14, collage=NUM, faithfulness=NUM, per_finding_columns=8) == planned
    # unconditional: the evaluated set alone, in whole chunks (collage tiles come from it, nothing to switch)
    assert (
        planned_images(300, num_labels=0, collage=32, faithfulness=0, per_finding_columns=8) == 2 * CHUNK_SIZE
    )
    assert s["images_generated"] == s["images_planned"] == planned
    assert (s["family"], s["ddim_steps"], s["guidance_scale"], s["network_passes_per_image"]) == (
        "ddpm",
        1,
        1.0,
        2,  # guidance: a conditional and an unconditional pass per step
    )
    assert s["seconds"] > 0 and s["images_per_second"] == pytest.approx(planned / s["seconds"], rel=1e-2)
    assert set(report["not_applicable"]) == {"discriminator_logits", "latent_space"}
    html = (ddpm_run / "report.html").read_text()
    assert "<h1>Diffusion generator report: run</h1>" in html and "1 DDIM steps at guidance scale 1" in html
    assert "Not applicable to this generator family" in html and "DDPM noise-prediction loss" in html
    assert "D mean logits" not in html


def test_report_refuses_sampling_steps_for_a_dcgan_run_and_bad_values(ddpm_run, tmp_path, capsys):
    assert cli_main(["report", "--run", str(ddpm_run), "--sampling-steps", "0", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == "medgan-aug report: error: sampling_steps must be an integer >= 1, got 0\n"
    dcgan = tmp_path / "dcgan"
    dcgan.mkdir()
    shutil.copy(ddpm_run / "config.json", dcgan / "config.json")
    save_generator(DCGANGenerator(28, 16, 0, 4), dcgan / "generator.pt", meta={})
    with pytest.raises(
        ValueError, match=f"sampling_steps applies to a diffusion run .*{dcgan} is a dcgan run"
    ):
        write_report(dcgan, num_samples=NUM, sampling_steps=5, progress=False)


# ------------------------------------------------------------------------------ bundle


@pytest.fixture(scope="module")
def bundle(ddpm_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "ddpm_bundle"
    argv = ["export-bundle", "--run", str(ddpm_run), "--out", str(out), "--num-samples", "6", "--seed", "1"]
    assert cli_main(argv) == 0
    return out


def test_bundle_metadata_names_the_family(bundle):
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["medgan_aug"]["family"] == "ddpm" and meta["medgan_aug"]["arch"]["padded_size"] == 32
    assert meta["description"].startswith("A conditional diffusion (DDPM) generator trained")
    assert any("Denoising Diffusion Probabilistic Models" in r for r in meta["references"])
    assert not any("Radford" in r for r in meta["references"])
    assert meta["network_data_format"]["inputs"]["latent"]["spatial_shape"] == [32 * 32]
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    assert config["network_def"]["_target_"] == "medgan_aug.networks.DiffusionGenerator"
    assert (config["sampling_steps"], config["guidance_scale"]) == (2, 1.0)  # the run's
    assert "diffusion (DDPM) chest X-ray generator" in (bundle / "docs" / "README.md").read_text()


@pytest.mark.slow
def test_bundle_gives_the_images_of_synthetic_dataset_from_run(bundle, ddpm_run):
    n = 12
    from_bundle = load_bundle_dataset(bundle, num_samples=n, seed=5)
    assert isinstance(from_bundle.generator, DiffusionGenerator)
    reference = SyntheticDataset.from_run(ddpm_run, n, seed=5)
    a, b = from_bundle.get_batch(np.arange(n)), reference.get_batch(np.arange(n))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    # the bundle's sampling_steps id is the generator's DDIM steps
    one_step = load_bundle_dataset(bundle, num_samples=n, seed=5, sampling_steps=1).get_batch(np.arange(n))
    reference.generator.set_sampling(num_inference_steps=1)
    reference.clear_cache()
    assert torch.equal(one_step["image"], reference.get_batch(np.arange(n))["image"])
    assert not torch.equal(one_step["image"], a["image"])


@pytest.mark.slow
def test_monai_bundle_run_writes_the_same_images(bundle, ddpm_run, tmp_path):
    out = tmp_path / "gen.npz"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*cmd, "--seed", "4", "--output_path", str(out)], cwd=bundle, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = SyntheticDataset.from_run(ddpm_run, 6, seed=4).get_batch(np.arange(6))
    with np.load(out, allow_pickle=False) as f:
        assert f["images"].shape == (6, 1, 28, 28)  # the bundle's default --num-samples
        assert np.array_equal(f["images"], reference["image"].numpy())
        assert np.array_equal(f["labels"], reference["label"].numpy())


def test_weights_of_one_family_are_refused_by_a_bundle_of_the_other(bundle, tmp_path):
    torch.manual_seed(0)
    generator = tmp_path / "dcgan.pt"
    save_generator(DCGANGenerator(28, 8, 0, 8), generator, meta={"flag": "chestmnist", "iterations": 1})
    dcgan_bundle = export_bundle(generator, tmp_path / "dcgan_bundle")
    ddpm_bundle = shutil.copytree(bundle, tmp_path / "ddpm_bundle")
    ddpm_weights = ddpm_bundle / "models" / "model.pt"
    dcgan_weights = dcgan_bundle / "models" / "model.pt"
    ddpm_copy = tmp_path / "ddpm_model.pt"
    shutil.copy(ddpm_weights, ddpm_copy)
    shutil.copy(dcgan_weights, ddpm_weights)
    shutil.copy(ddpm_copy, dcgan_weights)
    for folder, network in (
        (ddpm_bundle, "DiffusionGenerator (a --model ddpm generator)"),
        (dcgan_bundle, "DCGANGenerator (a --model dcgan generator)"),
    ):
        with pytest.raises(ValueError) as err:
            load_bundle_dataset(folder, num_samples=2)
        message = str(err.value)
        assert "\n" not in message and message.startswith(
            f"bundle weights {folder / 'models' / 'model.pt'} do not fit the configured network {network}: "
        )
        assert "missing keys" in message and "unexpected" in message
