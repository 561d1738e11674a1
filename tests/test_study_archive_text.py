"""The text form of a study archive (medgan_aug.apps.study.archive_text): per-finding score ranks keep every
number the summary computes from scores, bit for bit."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from medgan_aug.apps.study.archive_text import (
    TEXT_ARCHIVE_FORMAT,
    decode_scores,
    encode_scores,
    read_text_archive,
    write_text_archive,
)
from medgan_aug.metrics.hierarchical_bootstrap import hierarchical_paired_bootstrap_delta, resampled_auc
from medgan_aug.utils.errors import CorruptFileError


def _scores_with_ties_and_halves(rng: np.random.Generator, rows: int, findings: int) -> np.ndarray:
    scores = rng.random((rows, findings)).astype(np.float32)
    scores[: rows // 4] = np.round(scores[: rows // 4], 1)  # ties, some of them exactly at 0.5
    scores[0, 0] = scores[1, 0] = 0.5
    scores[2, :] = 1.0
    return scores


def test_decoded_scores_keep_order_ties_and_the_side_of_one_half():
    rng = np.random.default_rng(0)
    scores = _scores_with_ties_and_halves(rng, 200, 5)
    decoded = decode_scores(*encode_scores(scores))
    assert decoded.dtype == np.float32 and decoded.shape == scores.shape
    for j in range(scores.shape[1]):
        a, b = scores[:, j], decoded[:, j]
        assert np.array_equal(np.sign(a[:, None] - a[None, :]), np.sign(b[:, None] - b[None, :]))
    assert np.array_equal(scores > 0.5, decoded > 0.5)
    assert ((decoded > 0) & (decoded < 1)).all()


def test_every_bootstrap_auc_and_accuracy_is_bit_identical():
    rng = np.random.default_rng(1)
    targets = (rng.random((150, 4)) < 0.3).astype(np.uint8)
    base = _scores_with_ties_and_halves(rng, 150, 4)
    arm = np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1).astype(np.float32)
    weights = rng.multinomial(150, np.full(150, 1 / 150), size=50).astype(float)
    back = [decode_scores(*encode_scores(s)) for s in (base, arm)]
    assert np.array_equal(
        resampled_auc(targets, base, weights), resampled_auc(targets, back[0], weights), True
    )
    patients = np.repeat(np.arange(50), 3)
    for metric in ("auc", "acc"):
        kw = dict(n_boot=200, seed=3, metric=metric, clusters=patients)
        original = hierarchical_paired_bootstrap_delta(targets, [[base]], [[arm]], **kw)
        rebuilt = hierarchical_paired_bootstrap_delta(targets, [[back[0]]], [[back[1]]], **kw)
        assert _same(original, rebuilt), metric
    # the 0.5 side matters: plain ranks scaled to [0, 1] keep every AUC but not the accuracy
    plain = [np.argsort(np.argsort(s, axis=0), axis=0).astype(np.float32) / 150 for s in (base, arm)]
    kw = dict(n_boot=200, seed=3, metric="acc", clusters=patients)
    original = hierarchical_paired_bootstrap_delta(targets, [[base]], [[arm]], **kw)
    assert not _same(original, hierarchical_paired_bootstrap_delta(targets, [[plain[0]]], [[plain[1]]], **kw))


def _same(a: dict, b: dict) -> bool:
    """Two bootstrap results equal in every field: arrays bit for bit (NaN equal to NaN), the rest by repr."""
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k], equal_nan=True)
        if isinstance(a[k], np.ndarray)
        else repr(a[k]) == repr(b[k])
        for k in a
    )


def _meta(task: str = "multi-label, binary-class") -> dict:
    return {
        "format": "medgan_aug.study_archive/1",
        "config": {"name": "x"},
        "records": [{"key": "k0", "task": task}, {"key": "k1", "task": task}],
        "gan_evaluations": {},
    }


def test_write_then_read_round_trip_and_same_bytes_twice(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {
        "scores_0": rng.random((30, 3)).astype(np.float32),
        "targets_0": (rng.random((30, 3)) < 0.5).astype(np.uint8),
        "patients_0": np.array([f"p{i // 2}" for i in range(30)]),
        "scores_1": rng.random(30).astype(np.float32),
        "targets_1": (rng.random(30) < 0.5).astype(np.uint8),
    }
    first = write_text_archive(tmp_path / "a.json.gz", _meta(), arrays)
    second = write_text_archive(tmp_path / "b.json.gz", _meta(), arrays)
    assert first.read_bytes() == second.read_bytes()  # no time stamp or name in the gzip header
    meta, back = read_text_archive(first)
    assert meta == _meta() | {"format": TEXT_ARCHIVE_FORMAT}
    assert sorted(back) == sorted(arrays)
    assert back["scores_1"].shape == (30,) and back["scores_0"].shape == (30, 3)
    assert np.array_equal(back["targets_0"], arrays["targets_0"])
    assert np.array_equal(back["patients_0"], arrays["patients_0"])
    assert np.array_equal(
        np.argsort(back["scores_1"], kind="stable"), np.argsort(arrays["scores_1"], kind="stable")
    )


def test_a_softmax_study_is_refused_with_the_way_out(tmp_path):
    arrays = {f"{k}_{i}": np.zeros((4, 3), np.float32) for k in ("scores", "targets") for i in (0, 1)}
    with pytest.raises(ValueError, match="k0 is a multi-class run.*pack it as .npz"):
        write_text_archive(tmp_path / "a.json.gz", _meta("multi-class"), arrays)
    assert not (tmp_path / "a.json.gz").exists()


@pytest.mark.parametrize(
    "payload",
    [b"not gzip", gzip.compress(b"{not json"), gzip.compress(json.dumps({"format": "other"}).encode())],
)
def test_a_damaged_archive_gives_one_line_naming_it(tmp_path, payload):
    path = tmp_path / "bad.json.gz"
    path.write_bytes(payload)
    with pytest.raises(CorruptFileError, match="bad.json.gz is not a readable medgan_aug study archive"):
        read_text_archive(path)
