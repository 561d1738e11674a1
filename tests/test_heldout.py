"""Held-out-anchored distances: equal n, the patient-disjoint floor, the ratio's meaning, the neutral space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan_aug.data import MedMNISTDataset
from medgan_aug.data.patients import nih1000_patient_ids
from medgan_aug.metrics.heldout import (
    heldout_anchored_distances,
    patient_disjoint_halves,
    random_cnn_features,
)


def test_patient_disjoint_halves_share_no_patient_and_are_balanced():
    ids = nih1000_patient_ids("train")  # 691 images of 185 patients, up to 61 each
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = patient_disjoint_halves(ids, rng)
        assert not set(ids[a]) & set(ids[b])
        assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(len(ids)))
        assert abs(a.size - b.size) <= 61
    with pytest.raises(ValueError, match="at least two patients"):
        patient_disjoint_halves(["p"] * 5, rng)


def _clustered(rng, patients, per_patient, dim=8, patient_sd=3.0):
    """Features with a strong per-patient offset: images of one patient sit together."""
    centres = rng.normal(0, patient_sd, (patients, dim))
    rows = np.repeat(centres, per_patient, axis=0) + rng.normal(0, 1, (patients * per_patient, dim))
    return rows, np.repeat(np.arange(patients), per_patient)


def test_floor_between_patient_disjoint_halves_is_far_above_random_halves():
    rng = np.random.default_rng(1)
    train, ids = _clustered(rng, 40, 10)
    heldout, _ = _clustered(rng, 20, 6)
    synthetic = train[rng.choice(len(train), 200)] + rng.normal(0, 0.1, (200, 8))  # copies of train patients
    by_patient = heldout_anchored_distances(heldout, train, synthetic, train_patients=ids, repeats=3, seed=0)
    random_halves = heldout_anchored_distances(heldout, train, synthetic, repeats=3, seed=0)
    assert by_patient["floor_kind"] == "patient-disjoint training halves"
    assert random_halves["floor_kind"] == "random training halves"
    fd = "frechet_distance"
    assert by_patient[fd]["floor"] > 3 * random_halves[fd]["floor"]
    # a generator that copies the training patients is as far from new patients as real training images
    assert by_patient["ratio"] == pytest.approx(1.0, abs=0.25)
    assert by_patient["n"] == 120  # held-out size, the smallest set


def test_ratio_reads_closer_and_farther_than_real_training_images():
    rng = np.random.default_rng(2)
    train = rng.normal(0, 1, (300, 6))
    heldout = rng.normal(0.5, 1, (150, 6))  # new patients: a shifted population
    like_heldout = rng.normal(0.5, 1, (300, 6))
    far = rng.normal(3, 1, (300, 6))
    close = heldout_anchored_distances(heldout, train, like_heldout, repeats=3)
    worse = heldout_anchored_distances(heldout, train, far, repeats=3)
    assert close["ratio"] < 0.6 < 3 < worse["ratio"]
    assert worse["precision"]["synthetic"] < 0.2 < 0.6 < worse["precision"]["train"]
    assert close["n"] == worse["n"] == 150
    for metric in ("frechet_distance", "kid", "precision", "recall"):
        assert set(close[metric]) >= {"synthetic", "train", "floor", "synthetic_std"}


def test_bad_inputs_are_named():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    with pytest.raises(ValueError, match="feature widths differ"):
        heldout_anchored_distances(x, x, rng.normal(size=(20, 5)))
    with pytest.raises(ValueError, match=r"train_patients must hold one id per training row \(20\)"):
        heldout_anchored_distances(x, x, x, train_patients=np.arange(19))
    with pytest.raises(ValueError, match="too few images"):
        heldout_anchored_distances(x[:3], x, x)
    with pytest.raises(ValueError, match="synthetic_features must be a finite"):
        heldout_anchored_distances(x, x, np.full((20, 4), np.nan))


def test_random_cnn_features_are_fixed_and_separate_real_from_noise():
    real = MedMNISTDataset(sample="nih1000", split="test")
    images = torch.from_numpy(real.images[:64]).float().div(255).unsqueeze(1)
    first, again = random_cnn_features(images), random_cnn_features(images)
    np.testing.assert_array_equal(first, again)
    assert first.shape[0] == 64 and first.dtype == np.float64
    noise = random_cnn_features(torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    more_real = torch.from_numpy(real.images[64:128]).float().div(255).unsqueeze(1)
    result = heldout_anchored_distances(first, random_cnn_features(more_real), noise, repeats=2)
    assert result["ratio"] > 5  # noise is far from X-rays even in untrained features
