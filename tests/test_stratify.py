"""low_data_indices: nested, stratified, deterministic subsets; the stated guarantee, measured."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.stratify import low_data_indices, strata_matrix, stratified_order

FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


@pytest.fixture(scope="module")
def chest_labels(chest28_path):
    return MedMNISTDataset(path=chest28_path, split="train").labels


def test_subsets_are_nested_sorted_and_sized(chest_labels):
    for seed in (0, 1, 2):
        subsets = [low_data_indices(chest_labels, fraction=f, seed=seed) for f in FRACTIONS]
        assert [len(s) for s in subsets] == [7, 35, 69, 173, 346, 691]
        for small, large in zip(subsets, subsets[1:]):
            assert set(small) <= set(large)
        assert all(np.array_equal(s, np.sort(s)) for s in subsets)
        assert np.array_equal(subsets[-1], np.arange(691))
    assert not np.array_equal(
        low_data_indices(chest_labels, n=50, seed=0), low_data_indices(chest_labels, n=50, seed=1)
    )


def test_deterministic_and_pinned(chest_labels):
    """Same answer every call; the pinned rows catch a change of algorithm or of numpy's RandomState stream."""
    first = low_data_indices(chest_labels, fraction=0.01, seed=0)
    assert np.array_equal(first, low_data_indices(chest_labels.copy(), fraction=0.01, seed=0))
    assert first.tolist() == PINNED_1PCT_SEED0


def test_coverage_guarantee_every_finding_kept_once_n_reaches_strata(chest_labels):
    strata = strata_matrix(chest_labels)
    n_strata = int((strata.sum(0) > 0).sum())
    assert n_strata == 15  # 14 findings + "no finding"
    for seed in range(5):
        rows = low_data_indices(chest_labels, n=n_strata, seed=seed)
        assert (chest_labels[rows].sum(0) >= 1).all(), seed


def test_every_prefix_tracks_shares_better_than_random(chest_labels):
    strata = strata_matrix(chest_labels).astype(np.int64)
    total, n_rows = strata.sum(0), len(strata)
    expected = np.arange(1, n_rows + 1)[:, None] * total / n_rows

    def worst(order):
        return np.abs(np.cumsum(strata[order], axis=0) - expected).max()

    stratified = [worst(stratified_order(chest_labels, seed)) for seed in range(5)]
    shuffled = [worst(np.random.RandomState(seed).permutation(n_rows)) for seed in range(5)]
    assert max(stratified) <= 4.5  # measured 2.9-3.9 over 20 seeds
    assert max(stratified) < min(shuffled)


def test_binary_labels_are_stratified(pneumonia_path):
    labels = MedMNISTDataset(flag="pneumoniamnist", path=pneumonia_path, split="train").labels
    rows = low_data_indices(labels, fraction=0.01, seed=3)
    share = labels[rows].mean()
    assert len(rows) == 47 and abs(share - labels.mean()) <= 1 / 47


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"fraction": 0.0}, r"fraction must be in \(0, 1\], got 0.0"),
        ({"fraction": 1.5}, r"fraction must be in \(0, 1\], got 1.5"),
        ({"n": 692}, r"n=692 is larger than the split \(691 rows\)"),
        ({"n": 0}, "n must be an integer >= 1, got 0"),
        ({}, "exactly one of fraction= or n="),
        ({"fraction": 0.1, "n": 5}, "exactly one of fraction= or n="),
    ],
)
def test_refuses_bad_sizes(chest_labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        low_data_indices(chest_labels, **kwargs)


PINNED_1PCT_SEED0 = [88, 109, 304, 348, 354, 355, 401]
