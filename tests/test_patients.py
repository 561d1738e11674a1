"""Patient ids in the data layer: the nih1000 sample's ids from its NIH file names, a user's
``{split}_patients`` array, None where a file does not say."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from medgan_aug.data.patients import nih1000_patient_ids, nih_patient_id, split_patients
from medgan_aug.data.samples import sample_path
from medgan_aug.utils.errors import MedMNISTFileError


def test_nih1000_patient_ids_are_the_nih_file_names_patient_part(chest28_shared_path):
    names = json.loads((chest28_shared_path.parent / "nih1000_image_ids.json").read_text())
    for split, rows in (("train", 691), ("val", 76), ("test", 233)):
        ids = nih1000_patient_ids(split)
        assert len(ids) == rows == len(names[split])
        assert ids.tolist() == [name[:8] for name in names[split]]
        assert split_patients(sample_path("nih1000"), split, rows).tolist() == ids.tolist()
    counts = {split: Counter(nih1000_patient_ids(split)) for split in ("train", "val", "test")}
    assert [len(c) for c in counts.values()] == [185, 26, 53]  # patients per split
    assert max(counts["train"].values()) == 61 and max(counts["test"].values()) == 66
    assert not (set(counts["train"]) & set(counts["test"])) and not (
        set(counts["train"]) & set(counts["val"])
    )
    assert nih_patient_id("00000231_013.png") == "00000231"
    with pytest.raises(ValueError, match="not an NIH ChestX-ray14 image name"):
        nih_patient_id("patient7.png")


def test_the_64px_nih1000_file_has_the_same_patients(chest64_path):
    assert split_patients(chest64_path, "test", 233).tolist() == nih1000_patient_ids("test").tolist()


def _write(path, **arrays):
    base = dict(
        train_images=np.zeros((3, 28, 28), np.uint8),
        train_labels=np.zeros((3, 14), np.uint8),
    )
    np.savez(path, **(base | arrays))
    return path


def test_a_user_file_gives_its_patients_array_or_none(tmp_path, pneumonia_path):
    given = _write(tmp_path / "with.npz", train_patients=np.array([7, 7, 9]))
    assert split_patients(given, "train", 3).tolist() == ["7", "7", "9"]
    named = _write(tmp_path / "named.npz", train_patients=np.array(["a", "b", "a"]))
    assert split_patients(named, "train", 3).tolist() == ["a", "b", "a"]
    assert split_patients(_write(tmp_path / "without.npz"), "train", 3) is None
    assert split_patients(pneumonia_path, "test", 621) is None


@pytest.mark.parametrize(
    "patients, message",
    [
        (np.array([1, 2]), r"train_patients has shape \(2,\), expected \(3,\)"),
        (np.array([1.0, 2.0, 3.0]), "train_patients has dtype float64, expected integer or string"),
        (np.array(["a", " ", "b"]), "empty patient id at row 1"),
    ],
)
def test_bad_patient_arrays_are_named(tmp_path, patients, message):
    path = _write(tmp_path / "bad.npz", train_patients=patients)
    with pytest.raises(MedMNISTFileError, match=message) as err:
        split_patients(path, "train", 3)
    assert str(path) in str(err.value)


def test_medmnist_dataset_carries_its_items_patients(chest28_path, tmp_path):
    from medgan_aug.data import MedMNISTDataset

    full = MedMNISTDataset(sample="nih1000", split="test")
    assert full.patients.tolist() == nih1000_patient_ids("test").tolist()
    subset = MedMNISTDataset(sample="nih1000", split="train", indices=[5, 0, 690])
    assert subset.patients.tolist() == [nih1000_patient_ids("train")[i] for i in (5, 0, 690)]
    assert MedMNISTDataset(path=_write(tmp_path / "plain.npz"), split="train").patients is None
    given = MedMNISTDataset(
        path=_write(tmp_path / "ids.npz", train_patients=np.array([3, 3, 4])), split="train"
    )
    assert given.patients.tolist() == ["3", "3", "4"]
